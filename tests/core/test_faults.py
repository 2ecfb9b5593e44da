"""Faults in a run: a divergence (NaN or inf) goes back to the last finite state and says so, writing
nothing non-finite; running out of memory keeps the last finite state and names the setting to lower;
non-finite files are refused on load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from magan_gui.core import workflow
from magan_gui.core.calibration import CalibrationConfig, Calibrator
from magan_gui.core.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from magan_gui.core.emulator import TrainedEmulator
from magan_gui.core.pretraining import Pretrainer
from magan_gui.core.project import Project
from magan_gui.core.results import format_summary
from magan_gui.core.training import OutOfMemory
from tests.conftest import tiny_pretrain_config


def _poison_at(trainer, iteration: int) -> None:
    """Make one weight NaN right after ``iteration``'s step: a divergence at a known moment."""
    step = trainer.step
    net = trainer.trained_networks()[0]

    def poisoned_step():
        losses = step()
        if trainer.iteration == iteration:
            with torch.no_grad():
                next(net.parameters()).view(-1)[0] = float("nan")
        return losses

    trainer.step = poisoned_step


def _all_finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def test_pretraining_goes_back_to_its_last_finite_evaluation(lines, tmp_path):
    path = tmp_path / "emulator.pt"
    trainer = Pretrainer(lines, tiny_pretrain_config(iterations=80, eval_every=20), "cpu")
    _poison_at(trainer, 45)
    emulator = trainer.run(checkpoint_path=path)
    assert trainer.iteration == 40  # found at the evaluation of 60, back to the one of 40
    assert "diverged" in trainer.diverged and "iteration 60" in trainer.diverged and "iteration 40" in trainer.diverged
    assert _all_finite(emulator.net)
    assert trainer.history["fidelity_step"] == [20, 40]
    saved = TrainedEmulator.load(path)  # finite, so it loads, and it is the state of iteration 40
    assert saved.meta["iteration"] == 40 and _all_finite(saved.net)
    # the saved run continues from there
    again = Pretrainer(lines, tiny_pretrain_config(iterations=80, eval_every=20), "cpu")
    again.resume_from(path)
    again.run()
    assert again.iteration == 80 and again.diverged is None


def test_a_huge_learning_rate_diverges_at_once_and_writes_no_emulator(lines, tmp_path):
    path = tmp_path / "emulator.pt"
    result = workflow.pretrain(lines, tiny_pretrain_config(iterations=60, lr_emulator=1e6), "cpu",
                               checkpoint_path=path)
    assert result.diverged and result.stopped
    assert result.emulator.meta["iteration"] == 0 and _all_finite(result.emulator.net)
    assert not path.exists()


def test_calibration_divergence_is_kept_finite_and_marked_in_the_result(lines, lines_true, tiny_emulator):
    seen = []
    simulate = lines.simulate

    def watching(params, noise=None, check=False):
        seen.append(bool(torch.isfinite(params).all()))
        return simulate(params, noise, check)

    lines.simulate = watching
    try:
        config = CalibrationConfig(iterations=60, batch_size=16, eval_every=20, eval_samples=64, n_samples=200,
                                   snapshot_seconds=1e9, checkpoint_seconds=1e9, lr_generator=1e6,
                                   lr_discriminator=1e6, discriminator_optimizer="adam")
        calibration = workflow.calibrate(lines, tiny_emulator, lines_true, config, "cpu")
    finally:
        del lines.simulate
    outcome, result = calibration.outcome, calibration.result
    assert outcome.diverged and outcome.stopped_early
    assert all(seen), "a diverging generator's NaN parameters reached the simulator"
    assert np.isfinite(outcome.samples).all()
    assert result["converged"] is False and "diverged" in result["image_check"]["note"]


def test_a_calibration_far_from_the_truth_is_marked_not_converged(lines, lines_true, tiny_emulator):
    # a generator that never trains: its images are far from the true ones, compared with true images' own spread
    config = CalibrationConfig(iterations=20, batch_size=16, eval_every=10, eval_samples=128, n_samples=200,
                               snapshot_seconds=1e9, checkpoint_seconds=1e9, lr_generator=1e-12)
    calibrator = Calibrator(lines, tiny_emulator, lines_true, config, "cpu")
    assert 0 < calibrator.noise_floor < 0.1
    result = workflow.calibrate(lines, tiny_emulator, lines_true, config, "cpu").result
    check = result["image_check"]
    assert result["converged"] is False and check["ratio"] > check["limit"]
    assert "not converged" in check["note"]
    summary = format_summary(result)
    assert f"image check: {check['ratio']:.2f} times the true images' own difference (limit 3): NOT CONVERGED" \
        in summary and "  NOT CONVERGED: its images differ" in summary


def test_the_noise_floor_of_true_images_is_below_the_limit(lines, lines_true, tiny_emulator):
    # the check itself: true images against other true images pass it, with room to spare
    config = CalibrationConfig(iterations=10, batch_size=16, eval_samples=64, snapshot_seconds=1e9)
    calibrator = Calibrator(lines, tiny_emulator, lines_true, config, "cpu")
    other = calibrator.true_images[torch.randperm(len(calibrator.true_images))[:64]]
    ratio = calibrator._distance_to_truth(other) / calibrator.noise_floor
    assert ratio < 2.0


def test_non_finite_files_are_refused_on_load(tiny_emulator_path, lines, lines_true, tmp_path):
    payload = load_checkpoint(tiny_emulator_path, "emulator")
    name = next(iter(payload["emulator"]))
    payload["emulator"][name] = payload["emulator"][name].clone().fill_(float("inf"))
    bad = tmp_path / "nan_emulator.pt"
    save_checkpoint(bad, payload)
    with pytest.raises(CheckpointError, match="NaN or infinite") as info:
        TrainedEmulator.load(bad)
    assert name in str(info.value) and "\n" not in str(info.value)
    project = tmp_path / "nan.magan"
    Project("lines", true=lines_true, samples=np.full((4, 4), np.nan)).save(project)
    with pytest.raises(CheckpointError, match="samples holds NaN"):
        Project.load(project)


def test_running_out_of_memory_keeps_the_last_finite_state_and_names_the_settings(lines, tmp_path):
    path = tmp_path / "emulator.pt"
    trainer = Pretrainer(lines, tiny_pretrain_config(iterations=80, eval_every=20), "cpu")
    step = trainer.step

    def step_then_run_out():
        if trainer.iteration == 45:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return step()

    trainer.step = step_then_run_out
    with pytest.raises(OutOfMemory) as info:
        trainer.run(checkpoint_path=path)
    message = str(info.value)
    assert "\n" not in message and "ran out of CPU memory at iteration 45" in message
    assert "batch size (now 16)" in message and "heldout (now 32)" in message
    assert f"the state of iteration 40 is kept in {path}" in message
    assert TrainedEmulator.load(path).meta["iteration"] == 40


def test_running_out_of_memory_before_any_evaluation_leaves_the_old_file(lines, tiny_emulator_path, tmp_path):
    path = tmp_path / "emulator.pt"
    path.write_bytes(tiny_emulator_path.read_bytes())
    trainer = Pretrainer(lines, tiny_pretrain_config(iterations=80, eval_every=20), "cpu")
    trainer.step = lambda: (_ for _ in ()).throw(RuntimeError("DefaultCPUAllocator: can't allocate memory"))
    with pytest.raises(OutOfMemory, match="is as it was"):
        trainer.run(checkpoint_path=path)
    assert path.read_bytes() == tiny_emulator_path.read_bytes()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_real_cuda_out_of_memory_names_the_batch_size(lines, tmp_path):
    # a batch of 2^22 lines images asks the emulator for hundreds of GiB of activations
    trainer = Pretrainer(lines, tiny_pretrain_config(iterations=5, batch_size=2**22), "cuda")
    expected = r"ran out of CUDA memory at iteration 0: lower the batch size \(now 4194304\)"
    with pytest.raises(OutOfMemory, match=expected):
        trainer.run(checkpoint_path=tmp_path / "emulator.pt")
    assert not (tmp_path / "emulator.pt").exists()
    torch.cuda.empty_cache()
    assert Pretrainer(lines, tiny_pretrain_config(iterations=3), "cuda").run().meta["iteration"] == 3
