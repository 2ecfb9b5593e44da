"""One lines emulator from a bank (seed BANKSEED, 40,000 images unless bank=N), calibrated from several
seeds within a budget (10,000 images unless budget=N), with calibration settings changed as asked.

usage: calibration_seeds.py BANKSEED EMULATOR.pt CALSEEDS [key=value ...] [members=K] [bank=N] [budget=N]
                             [simulator=SPEC]   (lines unless given, e.g. simulator=blackbox:circles)
e.g.   calibration_seeds.py 0 emu0.pt 0,1,2,3,4 budget_iterations=6000
       calibration_seeds.py 0 emu30k.pt 0,1,2 bank=30000 budget=20000 members=3

The emulator file (and the bank beside it) is made on the first call and reused after.
"""

import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from magan_gui.core import workflow
from magan_gui.core.bank import build_bank
from magan_gui.core.emulator import TrainedEmulator
from magan_gui.core.simulators import load_simulator


def setting(key: str, text: str) -> object:
    """A CalibrationConfig value from text, as the field's type."""
    default = getattr(workflow.CalibrationConfig(), key)
    return text == "1" if isinstance(default, bool) else type(default)(text)


def main() -> None:
    torch.set_num_threads(2)
    bank_seed, emu_path = int(sys.argv[1]), Path(sys.argv[2])
    cal_seeds = [int(s) for s in sys.argv[3].split(",")]
    pairs = dict(kv.split("=", 1) for kv in sys.argv[4:])
    spec = pairs.pop("simulator", "lines")
    members = int(pairs.pop("members", 1))
    bank_size, budget = int(pairs.pop("bank", 40000)), int(pairs.pop("budget", 10000))
    extra = {k: setting(k, v) for k, v in pairs.items()}
    sim = load_simulator(spec)
    configs = workflow.stage_configs(sim.name, "quick", seed=bank_seed)
    if not emu_path.exists():
        bank = emu_path.parent / f"bank-{spec.replace(':', '-')}-{bank_size}-seed{bank_seed}.h5"
        build_bank(sim, bank, bank_size, seed=bank_seed, resume=bank.exists())
        started = time.time()
        pre = workflow.pretrain(sim, configs.pretrain.for_bank(), "cpu", bank=bank)
        torch.save(pre.emulator.payload(), emu_path)
        print(f"pretrained in {time.time() - started:.0f} s, held-out MSE {pre.emulator.meta['fidelity_mse']:.5f}",
              flush=True)
    emulator = TrainedEmulator.from_payload(torch.load(emu_path, weights_only=True))
    true = workflow.example_closure_set(sim, bank_seed, "cpu")
    for seed in cal_seeds:
        config = replace(configs.calibrate, simulation_budget=budget, seed=seed, **extra).for_budget()
        started = time.time()
        cal = workflow.calibrate(sim, emulator, true, config, "cpu", members=members)
        rows = cal.result["parameters"]
        line = "; ".join(f"{r['name']} {r['bias_in_true_std']:+.2f}/{r['std_ratio']:.2f}" for r in rows)
        ok = all(abs(r["bias_in_true_std"]) <= 0.2 and abs(r["std_ratio"] - 1) <= 0.25 for r in rows)
        print(f"calibration seed {seed} {extra} members {members}: {time.time() - started:.0f} s, "
              f"{cal.outcome.simulations} simulations: {line} {'MEETS' if ok else 'miss'}", flush=True)


if __name__ == "__main__":
    main()
