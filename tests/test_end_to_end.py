"""A small closure test from nothing on the CPU: the generator's means must move to the truth."""

from __future__ import annotations

import numpy as np

from magan_gui.core.calibration import CalibrationConfig, Calibrator
from magan_gui.core.data import make_closure_set
from magan_gui.core.pretraining import PretrainConfig, Pretrainer

# A population away from the middle of the pretraining box, where the untrained generator starts.
TRUE_MEAN = np.array([2.0, 12.0, 0.7, 10.5])
TRUE_STD = np.array([0.1, 0.3, 0.05, 0.3])


def test_calibration_moves_means_to_the_truth(lines):
    true = make_closure_set(lines, TRUE_MEAN, TRUE_STD, 2000, seed=5)
    emulator = Pretrainer(lines, PretrainConfig(iterations=400, batch_size=32, heldout=64, eval_every=200,
                                                snapshot_seconds=1e9, seed=0)).run()
    config = CalibrationConfig(iterations=400, batch_size=32, eval_every=50, eval_samples=256, n_samples=2000,
                               discriminator_optimizer="adam", lr_discriminator=2e-4, ema=0.9,
                               snapshot_seconds=1e9, seed=0)
    calibrator = Calibrator(lines, emulator, true, config)
    width = calibrator.space.high.numpy() - calibrator.space.low.numpy()
    before = np.abs(calibrator.sample(2000, seed=1).mean(axis=0) - TRUE_MEAN) / width
    outcome = calibrator.run()
    after = np.abs(outcome.samples.mean(axis=0) - TRUE_MEAN) / width
    # m, x0 and x_steps start several true stds away; each must close most of the gap
    for i, name in ((0, "m"), (1, "x0"), (3, "x_steps")):
        assert after[i] < 0.5 * before[i], f"{name}: distance to truth {before[i]:.3f} -> {after[i]:.3f} of its range"
