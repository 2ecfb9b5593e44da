"""The result document, its JSON and CSV files, and the summary table."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from magan_gui.core.calibration import CalibrationOutcome
from magan_gui.core.data import TrueImages, make_closure_set
from magan_gui.core.errors import OutputError
from magan_gui.core.results import (
    RESULT_FORMAT,
    build_result,
    format_summary,
    parameter_effects,
    samples_path_for,
    write_result,
)
from tests.conftest import LINES_MEAN, LINES_STD

EMULATOR_META = {"fidelity_mse": 0.012, "mode": "pixel", "iteration": 150}


def _outcome(n: int = 500, seed: int = 0, mean=LINES_MEAN, std=LINES_STD) -> CalibrationOutcome:
    samples = np.random.default_rng(seed).normal(mean, std, size=(n, len(mean))).astype(np.float32)
    return CalibrationOutcome(samples=samples, iteration=40, chosen_iterations=[20, 40], image_distance=0.05,
                              wall_time=1.5, history={"eval_step": [20, 40], "image_distance": [0.05, 0.06]})


def _result(lines, true, outcome=None):
    outcome = outcome or _outcome()
    return build_result(lines, outcome, true, EMULATOR_META, {"iterations": 40}, 0, "cpu",
                        emulator_path="emulator.pt"), outcome


def test_result_fields_with_known_params(lines, lines_true):
    result, outcome = _result(lines, lines_true)
    assert result["format"] == RESULT_FORMAT
    assert result["simulator"] == "lines" and result["simulator_spec"] == "lines"
    assert result["n_samples"] == 500
    assert [row["name"] for row in result["parameters"]] == ["m", "x0", "c", "x_steps"]
    for i, (row, p) in enumerate(zip(result["parameters"], lines.parameters)):
        assert row["unit"] == p.unit and row["default"] == p.default
        assert row["low"] == p.low and row["high"] == p.high
        assert row["mean"] == pytest.approx(float(outcome.samples[:, i].mean()), rel=1e-5)
        assert row["std"] == pytest.approx(float(outcome.samples[:, i].std(ddof=1)), rel=1e-4)
        t_mean, t_std = float(lines_true.params[:, i].mean()), float(lines_true.params[:, i].std(ddof=1))
        assert row["true_mean"] == pytest.approx(t_mean, rel=1e-5)
        assert row["true_std"] == pytest.approx(t_std, rel=1e-4)
        assert row["bias_in_true_std"] == pytest.approx((row["mean"] - t_mean) / t_std, rel=1e-4, abs=1e-6)
        assert row["std_ratio"] == pytest.approx(row["std"] / t_std, rel=1e-4)
        q = row["quantiles"]
        assert list(q) == ["2.5", "16", "50", "84", "97.5"]
        assert q["2.5"] < q["50"] < q["97.5"]
    assert result["true_data"]["true_parameters_known"] is True
    assert result["true_data"]["sha256"] == lines_true.sha256 and result["true_data"]["n_images"] == 256
    assert result["emulator"] == {"path": "emulator.pt", "fidelity_mse": 0.012, "fidelity_metric": "pixel MSE",
                                  "mode": "pixel", "iterations": 150, "reference_score": None, "verdict": "unknown"}
    cal = result["calibration"]
    assert cal["pooled_iterations"] == [20, 40] and cal["iterations"] == 40 and cal["image_distance"] == 0.05
    assert result["correlation"]["names"] == ["m", "x0", "c", "x_steps"]
    corr = np.array(result["correlation"]["matrix"])
    assert corr.shape == (4, 4) and np.allclose(np.diag(corr), 1.0)
    assert set(result["versions"]) >= {"magan_gui", "torch", "numpy", "python"}
    json.dumps(result)  # the whole document is JSON-able


def test_result_without_known_params(lines, lines_true):
    plain = TrueImages(lines_true.images, source="data.npy")
    result, _ = _result(lines, plain)
    assert result["true_data"]["true_parameters_known"] is False
    for row in result["parameters"]:
        assert "true_mean" not in row and "bias_in_true_std" not in row
    text = format_summary(result)
    assert "true mean" not in text
    for name in ("m", "x0", "c", "x_steps"):
        assert name in text


def test_samples_at_a_bound_get_a_note(lines, lines_true):
    outcome = _outcome()
    outcome.samples[:, 2] = np.clip(outcome.samples[:, 2] - 0.45, 0.0, 1.0)  # c piles up at its low bound 0
    result, _ = _result(lines, lines_true, outcome)
    c_row = result["parameters"][2]
    assert "reach the bound" in c_row["note"]
    assert "note" not in result["parameters"][1]
    assert "notes:" in format_summary(result)


def test_parameter_effects_of_lines(lines):
    samples = _outcome(n=64).samples
    effects, noise_l2 = parameter_effects(lines, samples)
    assert effects.shape == (4,) and np.all(effects > 0)
    assert noise_l2 == 0.0  # deterministic simulator


def test_write_result_json_and_csv(lines, lines_true, tmp_path):
    result, outcome = _result(lines, lines_true)
    path = tmp_path / "out" / "result.json"
    csv_path = write_result(path, result, outcome.samples)
    assert csv_path == samples_path_for(path) == tmp_path / "out" / "result.samples.csv"
    doc = json.loads(path.read_text())
    assert doc["samples_csv"] == "result.samples.csv"
    assert doc["simulator"] == "lines" and doc["n_samples"] == 500
    for row in doc["parameters"]:
        assert {"name", "unit", "mean", "std", "default", "true_mean", "true_std", "bias_in_true_std"} <= set(row)
    with open(csv_path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["m", "x0", "c", "x_steps"]
    assert len(rows) == 1 + 500
    np.testing.assert_allclose(np.array(rows[1:], dtype=np.float64), outcome.samples, rtol=1e-6)
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json", "result.samples.csv"]


def test_write_result_refuses_to_overwrite(lines, lines_true, tmp_path):
    result, outcome = _result(lines, lines_true)
    path = tmp_path / "result.json"
    write_result(path, result, outcome.samples)
    before = path.read_text()
    with pytest.raises(OutputError, match="already exists"):
        write_result(path, result, outcome.samples[:10])
    assert path.read_text() == before
    write_result(path, result, outcome.samples[:10], overwrite=True)
    assert len(samples_path_for(path).read_text().splitlines()) == 11


def test_write_result_refuses_when_only_the_csv_exists(lines, lines_true, tmp_path):
    result, outcome = _result(lines, lines_true)
    path = tmp_path / "result.json"
    samples_path_for(path).write_text("keep me\n")
    with pytest.raises(OutputError):
        write_result(path, result, outcome.samples)
    assert samples_path_for(path).read_text() == "keep me\n"
    assert not path.exists()


def test_format_summary_mentions_each_parameter(lines, lines_true):
    result, _ = _result(lines, lines_true)
    text = format_summary(result)
    lines_of_text = text.splitlines()
    assert "true mean" in lines_of_text[0] and "bias" in lines_of_text[0]
    for row in result["parameters"]:
        assert any(line.startswith(row["name"]) for line in lines_of_text)
    assert "x0 [px]" in text
    assert "500 samples" in text and "iterations 20, 40 of 40" in text


def test_format_summary_with_a_fixed_true_parameter(lines, tmp_path):
    """A closure test may hold one parameter fixed (std 0, which `magan simulate` accepts)."""
    true = make_closure_set(lines, LINES_MEAN, (0.3, 0.5, 0.0, 0.5), 64, seed=0)
    result, _ = _result(lines, true)
    c_row = result["parameters"][2]
    assert c_row["true_std"] == 0.0 and c_row["bias_in_true_std"] is None
    text = format_summary(result)
    assert any(line.startswith("c [px]") for line in text.splitlines())


def test_a_result_through_a_rough_emulator_says_so(lines, lines_true):
    result, _ = _result(lines, lines_true)                 # EMULATOR_META has no reference: not judged
    assert result["emulator"]["verdict"] == "unknown" and "emulator's" not in format_summary(result)
    rough = build_result(lines, _outcome(), lines_true, dict(EMULATOR_META, reference_score=0.2),
                         {"iterations": 40}, 0, "cpu")
    assert rough["emulator"]["verdict"] == "rough" and rough["emulator"]["reference_score"] == 0.2
    assert "the emulator's held-out pixel MSE 0.01200 is 6.0% of a parameter-blind guess's" in format_summary(rough)
