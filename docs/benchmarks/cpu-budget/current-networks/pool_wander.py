"""How much of a budgeted lines result's spread is the pooled snapshots' wander (budget 10,000).

For each calibration seed: every parameter's std ratio as pooled (the product's result), with each
pooled snapshot's samples moved to the common mean ("centred"), from the last snapshot alone, and the
wander (std of the snapshots' means, in true std).

usage: pool_wander.py EMULATOR.pt CALSEEDS   (the emulator calibration_seeds.py writes)
"""
import copy
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from magan_gui.core import workflow
from magan_gui.core.calibration import Calibrator
from magan_gui.core.emulator import TrainedEmulator
from magan_gui.core.simulators import load_simulator

stash = {}
orig = Calibrator._pooled_samples
def pooled(self, n, seed):
    """The product's pooling, after keeping 2,000 samples of each pooled snapshot."""
    net = copy.deepcopy(self.generator_avg)
    parts = []
    for k, (_, it, state) in enumerate(self.candidates):
        net.load_state_dict(state)
        parts.append((it, self.sample(2000, generator=net, seed=seed + 100 + k)))
    stash["parts"] = parts
    return orig(self, n, seed)
Calibrator._pooled_samples = pooled

torch.set_num_threads(2)
sim = load_simulator("lines")
configs = workflow.stage_configs(sim.name, "quick", seed=0)
emulator = TrainedEmulator.from_payload(torch.load(sys.argv[1], weights_only=True))
true = workflow.example_closure_set(sim, 0, "cpu")
for seed in [int(s) for s in sys.argv[2].split(",")]:
    config = replace(configs.calibrate, simulation_budget=10000, seed=seed).for_budget()
    t = time.time()
    cal = workflow.calibrate(sim, emulator, true, config, "cpu")
    rows = cal.result["parameters"]
    parts = stash["parts"]
    allp = np.concatenate([p for _, p in parts])
    mu = allp.mean(0)
    centred = np.concatenate([p - p.mean(0) + mu for _, p in parts])
    within = np.mean([p.std(0) for _, p in parts], axis=0)
    wander = np.std([p.mean(0) for _, p in parts], axis=0)
    out = []
    for j, r in enumerate(rows):
        scale = r["std_ratio"] / allp[:, j].std()
        out.append(f"{r['name']} pooled {r['std_ratio']:.2f} centred {centred[:, j].std() * scale:.2f} "
                   f"last {parts[-1][1][:, j].std() * scale:.2f} wander {wander[j] * scale:.2f}")
    print(f"seed {seed} ({len(parts)} snapshots, {time.time() - t:.0f} s): " + "; ".join(out), flush=True)
