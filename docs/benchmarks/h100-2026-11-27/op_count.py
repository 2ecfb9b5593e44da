"""Operator calls per training iteration on the CPU, for both stages of a closure test.

On a GPU these small networks leave it idle most of the time: an iteration costs what the CPU
spends dispatching its operations, so their count predicts GPU iterations per second better than
CPU time does.  Counts every aten operator (nested ones included) and the top-level ones, as the
difference between a 20- and a 40-iteration profiled continuation (the run's closing evaluation cancels).

usage: PYTHONPATH=. python3 docs/benchmarks/h100-2026-11-27/op_count.py [SIMULATOR] [PROFILE]
"""

import sys
from dataclasses import replace

import torch
from torch.profiler import ProfilerActivity, profile

from magan_gui.core import workflow
from magan_gui.core.calibration import Calibrator
from magan_gui.core.pretraining import Pretrainer
from magan_gui.core.simulators import load_simulator


def operators_per_iteration(run, n: int = 20) -> tuple[float, float]:
    """(all, top-level) aten operator calls per iteration of ``run``, already warmed up."""
    counts = []
    for extra in (n, 2 * n):
        run.config = replace(run.config, iterations=run.iteration + extra)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run.run()
        aten = [e for e in prof.events() if e.name.startswith("aten::")]
        top = [e for e in aten if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
        counts.append((len(aten), len(top)))
    return tuple((b - a) / n for a, b in zip(*counts))


def main() -> None:
    torch.set_num_threads(2)
    sim = load_simulator(sys.argv[1] if len(sys.argv) > 1 else "circles")
    configs = workflow.stage_configs(sim.name, sys.argv[2] if len(sys.argv) > 2 else "full", seed=0)
    pretrainer = Pretrainer(sim, replace(configs.pretrain, iterations=10, eval_every=10**6), "cpu")
    emulator = pretrainer.run()
    calls, top = operators_per_iteration(pretrainer)
    print(f"pretraining: {calls:.0f} operator calls per iteration, {top:.0f} top-level")
    true = workflow.example_closure_set(sim, 0, "cpu", n=2048)
    calibrator = Calibrator(sim, emulator, true, replace(configs.calibrate, iterations=10, eval_every=10**6), "cpu")
    calibrator.run()
    calls, top = operators_per_iteration(calibrator)
    print(f"calibration: {calls:.0f} operator calls per iteration, {top:.0f} top-level")


if __name__ == "__main__":
    main()
