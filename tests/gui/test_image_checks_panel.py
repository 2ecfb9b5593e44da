"""The Image checks tab: the verdict, the maps, the projections and histogram, and their exports; the
Calibration panel's mismatch warning."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from magan_gui.core.data import TrueImages, make_closure_set
from magan_gui.core.image_checks import compare_images
from magan_gui.gui.panels.image_checks import EMPTY
from tests.conftest import LINES_MEAN, LINES_STD
from tests.core.test_image_checks import converged_outcome, wider_profile


@pytest.fixture(scope="module")
def image_sets(lines):
    return (make_closure_set(lines, LINES_MEAN, LINES_STD, 400, seed=21).images,
            make_closure_set(lines, LINES_MEAN, LINES_STD, 200, seed=22).images)


def test_a_matching_best_match_is_said_to_reproduce_the_images(window, image_sets):
    panel = window.image_checks_panel
    assert panel.verdict.text() == EMPTY
    true, simulated = image_sets
    panel.show_result({"image_checks": compare_images(true, simulated)})
    assert panel.verdict.text().startswith("✓ The best match reproduces the true images")
    assert panel.map_items["pull"].image.shape == (28, 28)
    x, y = panel.curves["rows"][2].getData()
    assert len(x) == 28 and np.all(np.isfinite(y))


def test_a_misspecified_simulator_is_warned_about_and_its_plots_export(window, image_sets, tmp_path):
    panel = window.image_checks_panel
    true, simulated = image_sets
    checks = compare_images(wider_profile(true), simulated)
    panel.show_result({"image_checks": checks})
    assert "cannot reproduce these images" in panel.verdict.text() and "b00020" in panel.verdict.styleSheet()
    assert np.abs(panel.map_items["pull"].image).max() > 5    # the pull map shows where
    maps_export, rows_export = panel.exports[0], panel.exports[1]
    assert maps_export.export(str(tmp_path / "maps.npy"))
    assert np.load(tmp_path / "maps.npy").shape == (5, 28, 28)
    assert rows_export.export(str(tmp_path / "rows.csv"))
    with open(tmp_path / "rows.csv") as fh:
        table = list(csv.reader(fh))
    assert table[0][0] == "row" and len(table) == 29
    assert float(table[1][1]) == pytest.approx(checks["projections"]["rows_true"][0], rel=1e-6)
    panel.show_result(None)
    assert panel.verdict.text() == EMPTY and not panel.map_items["pull"].isVisible()


def test_the_calibration_panel_warns_of_a_mismatch_beside_its_table(window, lines, lines_true):
    from tests.core.test_results import _result

    panel = window.calibrate_panel
    outcome = converged_outcome()
    right, _ = _result(lines, lines_true, outcome)
    panel.show_outcome(outcome, right)
    assert not panel.convergence_warning.isVisibleTo(panel)
    assert window.image_checks_panel.verdict.text().startswith("✓")
    wide = TrueImages(wider_profile(lines_true.images), lines_true.params, lines_true.param_names, "wider lines")
    outcome = converged_outcome()
    wrong, _ = _result(lines, wide, outcome)
    panel.show_outcome(outcome, wrong)
    assert panel.convergence_warning.isVisibleTo(panel)
    assert panel.convergence_warning.text().startswith("⚠ Mismatch: the simulator cannot reproduce these images")
    assert window.image_checks_panel.verdict.text().startswith("⚠ The simulator cannot reproduce")
