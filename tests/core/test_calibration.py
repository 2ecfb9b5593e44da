"""Calibration: a small run's samples and history, stopping, resuming, and configuration checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from magan_gui.core.calibration import CalibrationConfig, Calibrator
from magan_gui.core.checkpoints import CheckpointError, load_checkpoint
from magan_gui.core.data import TrueImages, make_closure_set
from magan_gui.core.errors import ConfigError
from magan_gui.core.progress import CalibrationSnapshot, RunControl
from tests.conftest import LINES_MEAN, LINES_STD


def tiny_config(**overrides) -> CalibrationConfig:
    values = dict(iterations=40, batch_size=16, eval_every=20, eval_samples=128, n_samples=500,
                  snapshot_samples=100, grid_rows=3, snapshot_seconds=1e9, checkpoint_seconds=1e9, seed=0)
    values.update(overrides)
    return CalibrationConfig(**values)


@pytest.fixture(scope="module")
def small_run(lines, lines_true, tiny_emulator_path):
    from magan_gui.core.emulator import TrainedEmulator

    calibrator = Calibrator(lines, TrainedEmulator.load(tiny_emulator_path), lines_true, tiny_config(), "cpu")
    snaps = []
    outcome = calibrator.run(observer=snaps.append)
    return calibrator, outcome, snaps


def test_samples_shape_and_bounds(lines, small_run):
    _, outcome, _ = small_run
    assert outcome.samples.shape == (500, 4)
    assert np.all(np.isfinite(outcome.samples))
    low = np.array([p.low for p in lines.parameters])
    high = np.array([p.high for p in lines.parameters])
    assert np.all(outcome.samples >= low - 1e-4) and np.all(outcome.samples <= high + 1e-4)
    # a distribution, not a single point
    assert np.all(outcome.samples.std(0) > 0)


def test_history_and_pooled_iterations(small_run):
    _, outcome, _ = small_run
    assert outcome.iteration == 40 and not outcome.stopped_early
    assert outcome.history["eval_step"] == [20, 40]
    distances = outcome.history["image_distance"]
    assert len(distances) == 2 and all(np.isfinite(d) and d > 0 for d in distances)
    # both evaluations fit in the pool (pool_size 5); the later-window one is always kept
    assert outcome.chosen_iterations == [20, 40]
    assert outcome.image_distance == pytest.approx(np.mean(distances))
    assert outcome.wall_time > 0


def test_snapshots(small_run):
    calibrator, _, snaps = small_run
    assert snaps[-1].final and snaps[-1].stage == "calibrate"
    np.testing.assert_array_equal(np.concatenate([s.loss_steps for s in snaps]), np.arange(1, 41))
    keys = set().union(*(s.losses for s in snaps))
    assert keys == {"discriminator", "generator"}
    last = snaps[-1]
    assert isinstance(last, CalibrationSnapshot)
    assert last.generated.shape == (3, 28, 28) and last.true.shape == (3, 28, 28)
    assert last.samples.shape == (100, 4) and last.parameter_names == calibrator.space.names
    np.testing.assert_allclose(last.means, last.samples.mean(axis=0))
    metrics = last.metrics()
    for name in calibrator.space.names:
        assert f"mean/{name}" in metrics and f"std/{name}" in metrics
    assert last.image_distance is not None and metrics["image_distance"] == last.image_distance


def test_sample_is_reproducible_with_a_seed(small_run):
    calibrator, _, _ = small_run
    np.testing.assert_array_equal(calibrator.sample(10, seed=3), calibrator.sample(10, seed=3))


def test_pool_keeps_the_best_later_evaluations(lines, lines_true, tiny_emulator):
    calibrator = Calibrator(lines, tiny_emulator, lines_true, tiny_config(pool_size=2, pool_from=0.5), "cpu")
    distances = iter([0.01, 0.5, 0.3, 0.2, 0.4])  # the earliest is best, but outside the window
    calibrator.image_distance = lambda generator=None: next(distances)
    for iteration in (5, 20, 25, 30, 40):
        calibrator.iteration = iteration
        calibrator._evaluate()
    assert [c[1] for c in calibrator.candidates] == [30, 25]
    samples = calibrator._pooled_samples(100, seed=0)
    assert samples.shape == (100, 4)


def test_image_distance_uses_fixed_draws(small_run):
    calibrator, _, _ = small_run
    # fixed latent draws: evaluating the same generator twice gives the same number
    first = calibrator.image_distance()
    assert first > 0.0
    assert calibrator.image_distance() == first


def test_stop_sets_stopped_early(lines, lines_true, tiny_emulator):
    control = RunControl()

    def observer(snap):
        if snap.iteration >= 3:
            control.stop()

    calibrator = Calibrator(lines, tiny_emulator, lines_true, tiny_config(snapshot_seconds=0.0), "cpu")
    outcome = calibrator.run(observer=observer, control=control)
    assert outcome.stopped_early and outcome.iteration == 3
    assert outcome.history["eval_step"] == [3]
    assert outcome.chosen_iterations == [3]
    assert outcome.samples.shape == (500, 4)


def test_checkpoint_and_resume(lines, lines_true, tiny_emulator, tmp_path):
    path = tmp_path / "cal.checkpoint.pt"
    first = Calibrator(lines, tiny_emulator, lines_true, tiny_config(iterations=20, eval_every=10), "cpu")
    first.run(checkpoint_path=path)
    meta = json.loads(load_checkpoint(path, "calibration")["meta"])
    assert meta["iteration"] == 20 and meta["true_sha256"] == lines_true.sha256

    second = Calibrator(lines, tiny_emulator, lines_true, tiny_config(iterations=30, eval_every=10), "cpu")
    second.resume_from(path)
    assert second.iteration == 20
    assert second.history == first.history
    np.testing.assert_array_equal(second.sample(5, seed=1), first.sample(5, seed=1))
    outcome = second.run()
    assert outcome.iteration == 30
    assert outcome.history["eval_step"] == [10, 20, 30]


def test_resume_refuses_other_true_images(lines, lines_true, tiny_emulator, tmp_path):
    path = tmp_path / "cal.checkpoint.pt"
    Calibrator(lines, tiny_emulator, lines_true, tiny_config(iterations=2, eval_every=2), "cpu").run(
        checkpoint_path=path)
    other = make_closure_set(lines, LINES_MEAN, LINES_STD, 64, seed=99)
    assert other.sha256 != lines_true.sha256
    calibrator = Calibrator(lines, tiny_emulator, other, tiny_config(iterations=4), "cpu")
    with pytest.raises(CheckpointError, match="other true images"):
        calibrator.resume_from(path)
    with pytest.raises(CheckpointError, match="generator latent size"):
        Calibrator(lines, tiny_emulator, lines_true, tiny_config(latent_dim=3), "cpu").resume_from(path)
    with pytest.raises(CheckpointError, match="expected a calibration file"):
        Calibrator(lines, tiny_emulator, lines_true, tiny_config(), "cpu").resume_from(
            _emulator_file(tmp_path, tiny_emulator))


def _emulator_file(tmp_path, emulator):
    from magan_gui.core.checkpoints import save_checkpoint

    path = tmp_path / "emulator.pt"
    save_checkpoint(path, {"kind": "emulator", "meta": json.dumps(emulator.meta)})
    return path


@pytest.mark.parametrize("bad, message", [
    (dict(discriminator_on="both"), "discriminator input"),
    (dict(iterations=0), "iterations must be at least 1"),
    (dict(batch_size=0), "batch_size must be at least 1"),
    (dict(eval_samples=0), "eval_samples"),
    (dict(n_samples=0), "n_samples"),
    (dict(discriminator_optimizer="rmsprop"), "discriminator optimizer"),
    (dict(ema=1.0), "ema must be in"),
    (dict(ema=-0.1), "ema must be in"),
])
def test_config_validation(bad, message):
    with pytest.raises(ValueError, match=message):
        CalibrationConfig(**bad).validate()


def test_calibrator_validates_config_and_inputs(lines, circles, lines_true, tiny_emulator):
    with pytest.raises(ValueError, match="discriminator input"):
        Calibrator(lines, tiny_emulator, lines_true, tiny_config(discriminator_on="nope"))
    with pytest.raises(ValueError, match="emulator was trained for parameters"):
        Calibrator(circles, tiny_emulator, lines_true, tiny_config())
    wrong_shape = TrueImages(np.zeros((4, 32, 32), dtype=np.float32))
    with pytest.raises(ValueError, match="true images are"):
        Calibrator(lines, tiny_emulator, wrong_shape, tiny_config())


def test_discriminator_on_emulated_runs(lines, lines_true, tiny_emulator):
    config = tiny_config(iterations=20, eval_every=10, discriminator_on="emulated", discriminator_optimizer="adam",
                         lr_discriminator=2e-4)
    outcome = Calibrator(lines, tiny_emulator, lines_true, config, "cpu").run()
    assert outcome.samples.shape == (500, 4)
    assert outcome.history["eval_step"] == [10, 20]
    assert all(np.isfinite(outcome.history["image_distance"]))


def test_circles_calibration_with_shared_noise(circles):
    from magan_gui.core.pretraining import Pretrainer
    from tests.conftest import tiny_pretrain_config

    emulator = Pretrainer(circles, tiny_pretrain_config(iterations=2, heldout=16), "cpu").run()
    true = make_closure_set(circles, (18.0, 18.0, 8.0, 0.15, 0.9), (0.8, 0.8, 0.5, 0.05, 0.05), 64, seed=0)
    outcome = Calibrator(circles, emulator, true, tiny_config(iterations=4, eval_every=2, n_samples=50), "cpu").run()
    assert outcome.samples.shape == (50, 5)
    assert outcome.history["eval_step"] == [2, 4]


def test_a_budget_is_never_exceeded_and_everything_is_counted(lines, lines_true, tiny_emulator_path):
    from magan_gui.core import workflow
    from magan_gui.core.emulator import TrainedEmulator

    # 50 iterations of batch 16 would simulate 800 fakes; the budget allows 200, evaluations included
    config = tiny_config(iterations=50, simulation_budget=200, eval_every=5, snapshot_seconds=0.0)
    made = lines.images_made
    snaps = []
    calibration = workflow.calibrate(lines, TrainedEmulator.load(tiny_emulator_path), lines_true, config, "cpu",
                                     observer=snaps.append)
    spent = lines.images_made - made
    assert 8 * 16 <= spent <= 200
    assert calibration.outcome.simulations == spent
    assert calibration.result["simulations"]["calibration"] == spent
    assert calibration.result["simulations"]["result_checks"] == 0   # measured on the emulator under a budget
    assert snaps[-1].simulations == spent and snaps[-1].simulation_budget == 200
    counts = [s.simulations for s in snaps]
    assert counts == sorted(counts) and counts[0] < spent   # spent evenly over the run, not up front
    assert calibration.outcome.samples.std(0).min() > 0
    assert snaps[-1].generated.shape == (3, 28, 28)   # the grid shows the latest simulated fakes
    # the 6 evaluations of the second half are all pooled (an evaluation scores the trained generator's
    # batches, not the average it keeps), where unbudgeted runs pool the best pool_size (5)
    assert sorted(calibration.result["calibration"]["pooled_iterations"]) == [25, 30, 35, 40, 45, 50]


def test_a_budget_below_the_minimum_is_refused():
    for shown in ("simulated", "emulated"):   # the evaluations need the simulated batches either way
        with pytest.raises(ValueError, match="below the 128 this calibration needs"):
            tiny_config(simulation_budget=100, discriminator_on=shown).validate()
    tiny_config(simulation_budget=128).validate()


def test_a_budget_with_emulated_fakes_still_evaluates_on_simulated_batches(lines, lines_true, tiny_emulator):
    calibrator = Calibrator(lines, tiny_emulator, lines_true,
                            tiny_config(iterations=20, simulation_budget=160, discriminator_on="emulated"), "cpu")
    outcome = calibrator.run()
    assert 0 < outcome.simulations <= 160 and len(outcome.history["image_distance"]) == 1


def test_a_black_box_under_a_budget_learns_from_its_own_simulations_moved_to_the_generator(lines, lines_true,
                                                                                          tiny_emulator):
    import torch

    from magan_gui.core.pretraining import Pretrainer
    from magan_gui.core.simulators import load_simulator
    from magan_gui.core.workflow import example_closure_set
    from tests.conftest import tiny_pretrain_config

    black_box = load_simulator("blackbox:circles")
    emulator = Pretrainer(black_box, tiny_pretrain_config(iterations=4, eval_every=4, heldout=16), "cpu").run()
    true = example_closure_set(black_box, 0, "cpu", n=128)
    config = tiny_config(iterations=30, simulation_budget=160, eval_every=10)
    calibrator = Calibrator(black_box, emulator, true, config, "cpu")
    assert calibrator.moves_simulated
    assert not Calibrator(lines, tiny_emulator, lines_true, config, "cpu").moves_simulated   # emulated is faithful

    # moved to the parameters they were simulated at, the images are the simulator's own, noise included
    with torch.no_grad():
        calibrator._replayed_fakes(16)
        torch.testing.assert_close(calibrator._moved_simulations(calibrator.generator), calibrator.recent[0],
                                   atol=1e-5, rtol=0)
        moved = calibrator.generator_avg
        for p in moved.parameters():
            p.add_(0.3 * torch.randn_like(p))
        assert (calibrator._moved_simulations(moved) - calibrator.recent[0]).abs().max() > 1e-3
    # G learns through the moved simulations, and the run still spends within its budget
    made = black_box.images_made
    before = [p.detach().clone() for p in calibrator.generator.parameters()]
    outcome = Calibrator(black_box, emulator, true, config, "cpu").run()
    assert 0 < black_box.images_made - made == outcome.simulations <= 160
    assert np.all(np.isfinite(outcome.samples)) and outcome.samples.std(0).min() > 0
    calibrator.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, calibrator.generator.parameters()))


def test_an_emulator_of_other_parameter_ranges_is_refused(lines_true, tiny_emulator):
    from magan_gui.core.simulators import load_simulator

    narrowed = load_simulator("lines@m=1.0:2.0")
    with pytest.raises(ConfigError, match=r"other parameter ranges: m \[0\.5, 2\.5\] \(simulator: \[1, 2\]\)"):
        Calibrator(narrowed, tiny_emulator, lines_true, tiny_config(), "cpu")
