"""Ensemble calibrations: members with their own seeds and bootstrap resamples, pooled, with uncertainties."""

from __future__ import annotations

import json

import numpy as np
import pytest

from magan_gui.cli import main
from magan_gui.core import workflow
from magan_gui.core.errors import ConfigError
from magan_gui.core.progress import RunControl
from magan_gui.core.results import format_summary
from tests.core.test_calibration import tiny_config


@pytest.fixture(scope="module")
def ensemble(lines, lines_true, tiny_emulator_path):
    from magan_gui.core.emulator import TrainedEmulator

    snaps = []
    calibration = workflow.calibrate(lines, TrainedEmulator.load(tiny_emulator_path), lines_true,
                                     tiny_config(snapshot_seconds=0.0), "cpu", observer=snaps.append, members=3)
    return calibration, snaps


def test_members_are_pooled_and_each_figure_gets_its_standard_error(ensemble, lines_true):
    calibration, _ = ensemble
    result, samples = calibration.result, calibration.outcome.samples
    entry = result["ensemble"]
    assert entry["members"] == 3 and entry["seeds"] == [0, 1, 2] and entry["bootstrap"] is True
    means = np.array([m["mean"] for m in entry["per_member"]])
    stds = np.array([m["std"] for m in entry["per_member"]])
    assert not np.allclose(means[0], means[1])            # other seeds, other resamples: other answers
    assert samples.shape == (500, 4) and calibration.state is None
    for i, row in enumerate(result["parameters"]):
        assert row["mean"] == pytest.approx(samples[:, i].mean(), rel=1e-5)
        assert row["mean_uncertainty"] == pytest.approx(means[:, i].std(ddof=1) / np.sqrt(3), rel=1e-6)
        assert row["std_uncertainty"] == pytest.approx(stds[:, i].std(ddof=1) / np.sqrt(3), rel=1e-6)
        assert row["bias_uncertainty"] == pytest.approx(row["mean_uncertainty"] / row["true_std"])
    assert np.asarray(result["correlation"]["uncertainty"]).shape == (4, 4)
    # the closure test's truth is that of the true images given, not of a resample
    assert result["parameters"][0]["true_mean"] == pytest.approx(float(lines_true.params[:, 0].mean()), rel=1e-5)
    assert result["simulations"]["calibration"] == calibration.outcome.simulations > 0
    summary = format_summary(result)
    assert "ensemble of 3 calibrations (seeds 0, 1, 2" in summary and " ±" in summary


def test_progress_counts_across_members(ensemble):
    _, snaps = ensemble
    iterations = [s.iteration for s in snaps]
    assert iterations == sorted(iterations) and iterations[-1] == 120
    assert {s.iterations for s in snaps} == {120}
    assert [s.final for s in snaps].count(True) == 1 and snaps[-1].final
    steps = np.concatenate([s.loss_steps for s in snaps])
    assert np.all(np.diff(steps) > 0) and steps[-1] == 120


def test_a_budget_is_shared_by_the_members(lines, lines_true, tiny_emulator):
    config = tiny_config(simulation_budget=16 * 8 * 3)
    calibration = workflow.calibrate(lines, tiny_emulator, lines_true, config, "cpu", members=3)
    assert calibration.outcome.simulations <= 16 * 8 * 3
    assert calibration.result["simulations"]["calibration"] <= 16 * 8 * 3
    assert calibration.result["simulations"]["result_checks"] == 0   # the checks use the members' last batches
    with pytest.raises(ConfigError, match="shared by 4 ensemble members gives each 96"):
        workflow.calibrate(lines, tiny_emulator, lines_true, tiny_config(simulation_budget=16 * 8 * 3), "cpu",
                           members=4)


def test_a_stopped_ensemble_keeps_the_members_it_ran(lines, lines_true, tiny_emulator):
    control = RunControl()

    def stop_in_second_member(snap):
        if snap.iteration > 45:
            control.stop()

    calibration = workflow.calibrate(lines, tiny_emulator, lines_true, tiny_config(snapshot_seconds=0.0), "cpu",
                                     members=3, observer=stop_in_second_member, control=control)
    entry = calibration.result["ensemble"]
    assert entry["members"] == 2 and entry["planned_members"] == 3
    assert calibration.outcome.stopped_early
    assert "2 calibrations" in format_summary(calibration.result) and "3 planned" in format_summary(calibration.result)


def test_cli_ensemble(tmp_path, tiny_emulator_path, lines_true, capsys):
    true_path = tmp_path / "true.npz"
    lines_true.save_npz(true_path)
    out = tmp_path / "result.json"
    args = ["calibrate", "--simulator", "lines", "--emulator", str(tiny_emulator_path), "--true", str(true_path),
            "-o", str(out), "--iterations", "30", "--batch-size", "16", "--device", "cpu", "--quiet"]
    assert main(args + ["--ensemble", "--resume"]) == 2
    assert "cannot be continued" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(args + ["--ensemble", "1"])
    assert main(args + ["--ensemble", "2"]) == 0
    printed = capsys.readouterr().out
    assert "ensemble of 2 calibrations" in printed and "magan tune" in printed
    result = json.loads(out.read_text())
    assert result["ensemble"]["members"] == 2 and "mean_uncertainty" in result["parameters"][0]
    assert not (tmp_path / "result.checkpoint.pt").exists()
