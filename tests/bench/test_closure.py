"""The paper-reproduction benchmarks: distances in parameter space, figure columns, summaries."""

from __future__ import annotations

import numpy as np
import pytest

from magan_gui.bench.closure import (
    accuracy_markdown,
    classifier_two_sample_test,
    closure_test,
    parameter_space_distances,
    scaled_columns,
    sliced_wasserstein,
    summarise_accuracy,
    write_figures,
)
from magan_gui.core.calibration import CalibrationConfig
from magan_gui.core.pretraining import PretrainConfig


def test_sliced_wasserstein_is_zero_for_one_sample_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert sliced_wasserstein(a, a) == pytest.approx(0.0, abs=1e-12)
    near = sliced_wasserstein(a, rng.normal(size=(4000, 3)))
    shifted = sliced_wasserstein(a, rng.normal(size=(4000, 3)) + np.array([1.0, 0.0, 0.0]))
    assert near < 0.06
    # a unit shift along one of 3 axes projects to |u_x| on a random direction: mean about 0.5
    assert 0.35 < shifted < 0.65


def test_classifier_test_tells_apart_only_different_samples():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(1500, 2))
    same = classifier_two_sample_test(a, rng.normal(size=(1500, 2)), steps=200)
    narrow = classifier_two_sample_test(a, 0.3 * rng.normal(size=(1500, 2)), steps=200)
    assert same["accuracy"] < 0.56 and same["p_value"] > 0.001
    assert narrow["accuracy"] > 0.75 and narrow["p_value"] < 1e-6


def test_distances_have_a_floor_below_a_miscalibration():
    rng = np.random.default_rng(2)
    true = rng.normal([1.5, 10.0], [0.3, 0.5], size=(3000, 2))
    good = rng.normal([1.5, 10.0], [0.3, 0.5], size=(3000, 2))
    wide = rng.normal([1.5, 10.0], [0.6, 0.5], size=(3000, 2))
    d_good = parameter_space_distances(good, true, ((1.5, 10.0), (0.3, 0.5)))
    d_wide = parameter_space_distances(wide, true, ((1.5, 10.0), (0.3, 0.5)))
    assert d_good["sliced_wasserstein"] < 2 * d_good["sliced_wasserstein_floor"] + 0.02
    assert d_wide["sliced_wasserstein"] > 5 * d_wide["sliced_wasserstein_floor"]
    assert d_wide["c2st_accuracy"] > d_good["c2st_accuracy"] + 0.05


def test_scaled_columns_keep_the_papers_fractions():
    assert scaled_columns((1e3, 5e3, 1e4, 1e5, 5e5), 5e5, 2000) == [4, 20, 40, 400, 2000]
    assert scaled_columns((10, 100, 1e3, 1e4, 3e4), 3e4, 30) == [1, 10, 30]  # merged where they meet


@pytest.fixture(scope="module")
def tiny_runs():
    pre = PretrainConfig(iterations=40, batch_size=16, heldout=32, eval_every=10, width=0.5)
    cal = CalibrationConfig(iterations=30, batch_size=16, eval_every=10, eval_samples=128, n_samples=600,
                            snapshot_samples=100, snapshot_seconds=0.0, discriminator_optimizer="adam",
                            lr_discriminator=2e-4)
    return [closure_test("lines", seed, "quick", "cpu", n_true=600, figures=seed == 0, log=lambda _: None,
                         pretrain=pre, calibrate=cal) for seed in (0, 1)]


def test_closure_test_reports_truth_distances_trace_and_figure_columns(tiny_runs, tmp_path):
    run = tiny_runs[0]
    assert run.seed == 0 and run.simulator == "lines"
    assert [row["name"] for row in run.result["parameters"]] == ["m", "x0", "c", "x_steps"]
    assert all("bias_in_true_std" in row for row in run.result["parameters"])
    assert 0.0 <= run.distances["c2st_accuracy"] <= 1.0 and run.distances["sliced_wasserstein"] > 0
    # the paper's Fig. 4 columns scaled to 40 iterations, and Fig. 5's to 30
    assert [i for i, _ in run.pretrain_columns] == scaled_columns((1e3, 5e3, 1e4, 1e5, 5e5), 5e5, 40)
    assert [i for i, _ in run.calibrate_columns] == scaled_columns((10, 100, 1e3, 1e4, 3e4), 3e4, 30)
    assert run.trace and run.trace[-1]["iteration"] <= 30 and run.trace[0]["max_abs_bias"] >= 0
    paths = write_figures(run, tmp_path)
    assert sorted(p.name for p in paths) == ["fig4_lines_pretraining.png", "fig5_lines_calibration.png"]
    assert not tiny_runs[1].pretrain_columns  # figures only where asked


def test_accuracy_summary_aggregates_seeds_and_quotes_the_paper(tiny_runs):
    summary = summarise_accuracy(tiny_runs)
    m = summary["parameters"][0]
    biases = [r.result["parameters"][0]["bias_in_true_std"] for r in tiny_runs]
    assert m["abs_bias_mean"] == pytest.approx(np.mean(np.abs(biases)))
    assert m["abs_bias_worst"] == pytest.approx(max(abs(b) for b in biases))
    assert m["paper_mean"] == 1.501 and m["paper_std_ratio"] == pytest.approx(0.266 / 0.3)
    # 40 pretraining iterations cannot calibrate: the targets must be reported as missed
    assert summary["meets_targets"] is False
    text = accuracy_markdown([summary])
    assert "| m |" in text and "1.501 / 0.266" in text and "missed" in text
