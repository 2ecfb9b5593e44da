"""Image checks on two real calibrations of lines: a closure test, and a misspecified one whose true
images are lines drawn with a wider profile (no lines parameters make them).

    PYTHONPATH=. python3 scripts/image_checks_closure.py --emulator emulator.pt [--seed 0] [--preset quick]

Prints, for each, the classifier test against its reference, the pull map's figures, the verdict
and the best-match table's biases and std ratios (README, "After calibrating").  About 15 minutes
on 2 CPU cores with the quick preset.
"""

from __future__ import annotations

import argparse

import torch
from torch.nn import functional as F

from magan_gui.core import workflow
from magan_gui.core.data import TrueImages
from magan_gui.core.emulator import TrainedEmulator
from magan_gui.core.simulators import load_simulator


def drawn_wider(true: TrueImages) -> TrueImages:
    """The same images, each convolved with (0.25, 0.5, 0.25) along its rows: wider lines."""
    x = torch.from_numpy(true.images).unsqueeze(1)
    kernel = torch.tensor([0.25, 0.5, 0.25]).view(1, 1, 1, 3)
    images = F.conv2d(F.pad(x, (1, 1, 0, 0), mode="replicate"), kernel).squeeze(1).numpy()
    return TrueImages(images, true.params, true.param_names, true.source + ", drawn wider")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", required=True, help="a lines emulator (magan pretrain --simulator lines)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    simulator = load_simulator("lines")
    emulator = TrainedEmulator.load(args.emulator)
    closure = workflow.example_closure_set(simulator, args.seed, args.device)
    config = workflow.stage_configs("lines", args.preset, seed=args.seed).calibrate
    for name, true in (("closure test", closure), ("drawn wider (misspecified)", drawn_wider(closure))):
        result = workflow.calibrate(simulator, emulator, true, config, args.device).result
        checks = result["image_checks"]
        test = checks["classifier"]
        table = "; ".join(f"{p['name']} {p['bias_in_true_std']:+.2f} / {p['std_ratio']:.2f}"
                          for p in result["parameters"])
        print(f"{name}: classifier accuracy {test['accuracy']:.3f}, reference {test['reference_accuracy']:.3f}, "
              f"limit {test['limit']:.3f}; pull mean square {checks['pull_chi2_per_pixel']:.1f}, largest "
              f"{checks['max_abs_pull']:.1f}; reproduces: {checks['reproduces']}; image-check ratio "
              f"{result['image_check']['ratio']:.2f}; bias / std ratio: {table}", flush=True)


if __name__ == "__main__":
    main()
