"""The pipeline's one home: presets applied once, stages run, resumed and chained through it."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from magan_gui.core import workflow
from magan_gui.core.errors import ConfigError, TrainingError
from magan_gui.core.progress import CalibrationSnapshot, PretrainSnapshot, RunControl
from magan_gui.core.simulators import load_simulator
from tests.conftest import BLOB_PLUGIN, tiny_pretrain_config


def tiny_configs(seed: int = 0) -> workflow.StageConfigs:
    configs = workflow.stage_configs("lines", "quick", seed=seed, iterations=20)
    return workflow.StageConfigs(
        replace(tiny_pretrain_config(iterations=20, snapshot_seconds=0.0), seed=seed),
        replace(configs.calibrate, batch_size=16, eval_every=10, eval_samples=64, n_samples=200,
                snapshot_samples=50, snapshot_seconds=0.0))


def test_stage_configs_apply_the_preset_its_simulator_overrides_and_the_given_values():
    lines, circles = workflow.stage_configs("lines"), workflow.stage_configs("circles")
    assert lines.pretrain.iterations == 1600 and circles.pretrain.iterations == 2000  # [simulators.circles]
    assert lines.calibrate.iterations == 2000 and lines.calibrate.for_budget().iterations == 2000
    both = workflow.stage_configs("circles", "quick", seed=7, iterations=25)
    assert (both.pretrain.seed, both.calibrate.seed, both.pretrain.iterations, both.calibrate.iterations) == \
        (7, 7, 25, 25)
    assert workflow.stage_configs(None, "full").pretrain.batch_size == 256


def test_run_pipeline_pretrains_reports_the_emulator_then_calibrates_through_it(lines, lines_true):
    seen: list[object] = []
    run = workflow.run_pipeline(lines, lines_true, tiny_configs(), "cpu", observer=seen.append,
                                on_pretrained=seen.append)
    kinds = [type(item).__name__ for item in seen]
    handover = kinds.index("Pretraining")
    assert set(kinds[:handover]) == {"PretrainSnapshot"} and set(kinds[handover + 1:]) == {"CalibrationSnapshot"}
    assert seen[handover] is run.pretraining and not run.pretraining.stopped
    assert isinstance(seen[handover - 1], PretrainSnapshot) and seen[handover - 1].final
    assert isinstance(seen[-1], CalibrationSnapshot) and seen[-1].final
    assert run.calibration.result["emulator"]["iterations"] == 20
    assert run.calibration.outcome.iteration == 20 and run.calibration.state["kind"] == "calibration"


def test_a_pipeline_stopped_during_pretraining_does_not_calibrate(lines, lines_true):
    control = RunControl()

    def stop_soon(snap) -> None:
        if snap.iteration >= 5:
            control.stop()

    run = workflow.run_pipeline(lines, lines_true, tiny_configs(), "cpu", observer=stop_soon, control=control)
    assert run.pretraining.stopped and run.calibration is None
    assert run.pretraining.emulator.meta["iteration"] < 20


def test_continuing_a_finished_run_is_refused_and_a_longer_one_goes_on(lines):
    first = workflow.pretrain(lines, tiny_pretrain_config(iterations=10), "cpu")
    assert workflow.saved_iteration(first.state) == 10
    with pytest.raises(TrainingError, match="already has 10 iterations"):
        workflow.pretrain(lines, tiny_pretrain_config(iterations=10), "cpu", resume=first.state)
    longer = workflow.pretrain(lines, tiny_pretrain_config(iterations=15), "cpu", resume=first.state)
    assert longer.emulator.meta["iteration"] == 15 and longer.history["fidelity_step"][-1] == 15


def test_the_example_needs_a_builtin_population(lines):
    true = workflow.example_closure_set(lines, seed=2, device="cpu", n=50)
    assert len(true) == 50 and "seed 1002" in true.source
    with pytest.raises(ConfigError, match="no example population"):
        workflow.example_closure_set(load_simulator(f"{BLOB_PLUGIN}:Blob"), seed=0, device="cpu", n=5)


def test_building_and_running_a_stage_leaves_the_process_random_state_alone(lines):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    workflow.pretrain(lines, tiny_pretrain_config(iterations=3), "cpu")
    assert torch.equal(torch.rand(3), expected)
