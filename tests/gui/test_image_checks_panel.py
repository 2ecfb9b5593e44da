"""The Image checks panel: the verdict, the maps, the projections and histogram, and their exports."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from magan_gui.core.data import make_closure_set
from magan_gui.core.image_checks import compare_images
from magan_gui.gui.panels.image_checks import EMPTY, ImageChecksPanel
from magan_gui.gui.session import Session
from tests.conftest import LINES_MEAN, LINES_STD
from tests.core.test_image_checks import wider_profile


@pytest.fixture(scope="module")
def image_sets(lines):
    return (make_closure_set(lines, LINES_MEAN, LINES_STD, 400, seed=21).images,
            make_closure_set(lines, LINES_MEAN, LINES_STD, 200, seed=22).images)


def test_a_matching_best_match_is_said_to_reproduce_the_images(qtbot, image_sets):
    session = Session()
    panel = ImageChecksPanel(session)
    qtbot.addWidget(panel)
    assert panel.verdict.text() == EMPTY
    true, simulated = image_sets
    session.result_changed.emit({"image_checks": compare_images(true, simulated)})
    assert panel.verdict.text().startswith("✓ The best match reproduces the true images")
    assert panel.map_items["pull"].image.shape == (28, 28)
    x, y = panel.curves["rows"][2].getData()
    assert len(x) == 28 and np.all(np.isfinite(y))


def test_a_misspecified_simulator_is_warned_about_and_its_plots_export(qtbot, image_sets, tmp_path):
    session = Session()
    panel = ImageChecksPanel(session)
    qtbot.addWidget(panel)
    true, simulated = image_sets
    checks = compare_images(wider_profile(true), simulated)
    session.result_changed.emit({"image_checks": checks})
    assert "cannot reproduce these images" in panel.verdict.text() and "b00020" in panel.verdict.styleSheet()
    # the true (wider) lines spread light to both sides: the true rows' sums stay, the pull shows where
    pull = panel.map_items["pull"].image
    assert np.abs(pull).max() > 5
    maps_export, rows_export = panel.exports[0], panel.exports[1]
    assert maps_export.export(str(tmp_path / "maps.npy"))
    assert np.load(tmp_path / "maps.npy").shape == (5, 28, 28)
    assert rows_export.export(str(tmp_path / "rows.csv"))
    with open(tmp_path / "rows.csv") as fh:
        table = list(csv.reader(fh))
    assert table[0][0] == "row" and len(table) == 29
    assert float(table[1][1]) == pytest.approx(checks["projections"]["rows_true"][0], rel=1e-6)
    session.result_changed.emit(None)
    assert panel.verdict.text() == EMPTY and not panel.map_items["pull"].isVisible()
    assert panel.curves["rows"][0].getData()[0] is None or len(panel.curves["rows"][0].getData()[0]) == 0


def test_the_calibration_panel_warns_of_a_mismatch_beside_its_table(qtbot, lines, image_sets):
    from magan_gui.gui.panels.calibration import CalibrationPanel
    from tests.core.test_results import _outcome

    session = Session()
    panel = CalibrationPanel(session)
    qtbot.addWidget(panel)
    session.set_simulator(lines, "lines")
    outcome = _outcome()
    true, simulated = image_sets
    rows = [{"name": n, "mean": float(m), "std": float(s)} for n, m, s in
            zip(["m", "x0", "c", "x_steps"], outcome.samples.mean(0), outcome.samples.std(0))]
    result = {"parameters": rows, "converged": True, "image_checks": compare_images(true, simulated)}
    panel.show_outcome(outcome, result)
    assert not panel.convergence_warning.isVisibleTo(panel)
    result = dict(result, image_checks=compare_images(wider_profile(true), simulated))
    panel.show_outcome(outcome, result)
    assert panel.convergence_warning.isVisibleTo(panel)
    assert panel.convergence_warning.text().startswith("⚠ Mismatch: the simulator cannot reproduce these images")
