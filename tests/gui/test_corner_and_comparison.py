"""The Results panel's corner plot, and the comparison window, driven as a person would."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

import magan_gui.gui.panels.comparison as comparison_module
from magan_gui.cli import main
from magan_gui.core import workflow
from magan_gui.core.calibration import CalibrationConfig
from magan_gui.core.emulator import TrainedEmulator
from magan_gui.core.parameters import Parameter
from magan_gui.core.results import samples_path_for
from magan_gui.gui.panels.comparison import SESSION_LABEL, ComparisonWindow, run_colour
from magan_gui.gui.panels.corner import CornerPlot, coefficient_text
from magan_gui.gui.panels.results import ResultsPanel
from magan_gui.gui.session import Session
from tests.core.test_comparison import make_result, write_run

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture(scope="module")
def calibration(lines, lines_true, tiny_emulator_path):
    """A real tiny calibration of the lines closure test: its outcome and result document."""
    config = CalibrationConfig(iterations=30, batch_size=16, eval_every=15, eval_samples=128, n_samples=600,
                               snapshot_samples=100, grid_rows=2, snapshot_seconds=1e9, checkpoint_seconds=1e9)
    return workflow.calibrate(lines, TrainedEmulator.load(tiny_emulator_path), lines_true, config, "cpu")


@pytest.fixture()
def session(lines, lines_true) -> Session:
    """A session on lines with the closure-test images and no result yet."""
    s = Session()
    s.set_simulator(lines, "lines")
    s.set_true(lines_true)
    return s


@pytest.fixture()
def panel(qtbot, session) -> ResultsPanel:
    p = ResultsPanel(session)
    qtbot.addWidget(p)
    p.resize(1200, 700)
    p.show()
    qtbot.waitExposed(p)
    return p


def show_result(qtbot, session: Session, calibration) -> None:
    with qtbot.waitSignal(session.result_changed, timeout=5000):
        session.set_result(calibration.outcome, calibration.result)


def lines_names(lines) -> list[tuple[str, str]]:
    return [(p.name, p.unit) for p in lines.parameters]


def click(qtbot, button) -> None:
    assert button.isVisible() and button.isEnabled(), f"{button.text()!r} cannot be clicked now"
    qtbot.mouseClick(button, LEFT)


def open_comparison(qtbot, panel: ResultsPanel) -> ComparisonWindow:
    click(qtbot, panel.compare_button)
    window = panel.comparison
    qtbot.waitExposed(window)
    return window


# -- corner plot -------------------------------------------------------------------------------------------
def test_the_corner_plot_draws_the_session_result(qtbot, panel, session, calibration, lines_true):
    corner = panel.findChild(CornerPlot, "cornerPlot")
    assert corner is panel.corner and corner.isVisible() and corner.cells == {}
    assert "run a calibration" in corner.title.text
    show_result(qtbot, session, calibration)
    samples = calibration.outcome.samples
    assert corner.names == ["m", "x0", "c", "x_steps"] and len(corner.cells) == 16
    # diagonal: the samples' density histogram (area 1) and the true parameters' outline
    for curve in corner.sample_curves:
        edges, density = curve.getData()
        assert len(edges) == len(density) + 1 and np.sum(density * np.diff(edges)) == pytest.approx(1, rel=0.02)
    assert len(corner.true_curves) == 4
    true_edges, true_density = corner.true_curves[1].getData()
    assert np.sum(true_density * np.diff(true_edges)) == pytest.approx(1, rel=0.02)
    # below: a 2-D histogram of every pair holding (nearly) every sample, and the truth's 1σ ellipse
    assert sorted(corner.images) == [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
    counts = corner.images[(3, 1)].image ** 2                      # drawn as sqrt(counts)
    assert counts.shape == (32, 32) and counts.sum() == pytest.approx(len(samples), rel=0.05)
    x, y = corner.ellipses[(3, 1)].getData()                       # x: x0, y: x_steps, around the true means
    assert x.mean() == pytest.approx(lines_true.params[:, 1].mean(), abs=0.05)
    assert y.mean() == pytest.approx(lines_true.params[:, 3].mean(), abs=0.05)
    # above: the correlation coefficients of the samples
    expected = np.corrcoef(samples, rowvar=False)
    for (i, j), text in corner.correlation_texts.items():
        assert i < j and text.textItem.toPlainText() == coefficient_text(expected[i, j])
    labels = [axis.labelText for axis in corner.axes]
    assert labels == ["x0 [px]", "c [px]", "x_steps [px]", "m", "x0 [px]", "c [px]", "x_steps [px]"]
    assert "true (closure test)" in corner.key.text
    with qtbot.waitSignal(session.result_changed, timeout=5000):
        session.set_result(None, None)
    assert corner.cells == {} and corner.images == {} and "run a calibration" in corner.title.text


def test_without_true_parameters_nothing_true_is_drawn(qtbot, panel, session, calibration, lines):
    session.true = None   # data of unknown parameters
    show_result(qtbot, session, calibration)
    corner = panel.corner
    assert len(corner.sample_curves) == 4 and corner.true_curves == [] and corner.ellipses == {}
    assert "true" not in corner.key.text and "best match" in corner.key.text
    assert all("true" not in t.textItem.toPlainText() for t in corner.correlation_texts.values())


@pytest.mark.parametrize("p", [2, 3, 5, 6])
def test_the_corner_plot_fits_two_to_six_parameters(qtbot, p):
    parameters = [Parameter(f"p{k}", low=-10.0, high=10.0, unit="mm" if k % 2 else "") for k in range(p)]
    rng = np.random.default_rng(p)
    samples = rng.normal(size=(2000, p))
    samples[:, 1] = -0.9 * samples[:, 0] + 0.3 * samples[:, 1]   # a strong negative correlation
    corner = CornerPlot()
    qtbot.addWidget(corner)
    corner.resize(600, 600)
    corner.show()
    corner.set_data(samples, parameters, rng.normal(size=(500, p)))
    assert len(corner.cells) == p * p and len(corner.images) == p * (p - 1) // 2
    assert len(corner.correlation_texts) == p * (p - 1) // 2 and len(corner.axes) == 2 * p - 1
    assert corner.correlation_texts[(0, 1)].textItem.toPlainText().startswith("-0.9")
    assert corner.cells[(0, 1)].background.brush().color().blue() == 255   # tinted blue: negative
    widths = {round(corner.cells[(i, j)].width()) for i in range(p) for j in range(p)}
    heights = {round(corner.cells[(i, j)].height()) for i in range(p) for j in range(p)}
    assert max(widths) - min(widths) <= 1 and max(heights) - min(heights) <= 1   # the cells line up
    assert min(widths) > 40


def test_the_corner_plot_exports_a_png(qtbot, panel, session, calibration, tmp_path):
    show_result(qtbot, session, calibration)
    button = panel.corner_export.button
    assert button.isVisible() and button.text() == "Export…"
    path = tmp_path / "corner.png"
    with qtbot.waitSignal(panel.message, timeout=5000):
        assert panel.corner_export.export(str(path))
    image = QImage(str(path))
    assert not image.isNull() and image.width() > 300
    assert str(path) in panel.saved.text()


# -- comparison window -------------------------------------------------------------------------------------
def test_compare_opens_a_window_with_this_session_first(qtbot, panel, session, calibration, lines, tmp_path):
    show_result(qtbot, session, calibration)
    window = open_comparison(qtbot, panel)
    assert window.objectName() == "runComparison" and window.isWindow() and not window.isModal()
    assert [run.label for run in window.runs] == [SESSION_LABEL]
    assert "add another result" in window.status.text()
    a = write_run(tmp_path, "a.json", [1.4, 10.1, 0.45, 9.1], [0.3, 0.5, 0.1, 0.5], names=lines_names(lines))
    b = tmp_path / "b.json"   # no samples: drawn as its mean ± std
    b.write_text(json.dumps(make_result([1.6, 9.8, 0.5, 9.0], [0.2, 0.4, 0.1, 0.4], names=lines_names(lines))))
    assert window.add_files([a, b]) == []
    assert [run.label for run in window.runs] == [SESSION_LABEL, "a.json", "b.json"]
    assert window.run_list.count() == 3 and window.run_list.item(1).text().startswith("■ a.json  (lines, 200")
    assert sorted(window.plots) == ["c", "m", "x0", "x_steps"]
    assert list(window.curves["m"]) == [SESSION_LABEL, "a.json"]
    edges, density = window.curves["m"]["a.json"].getData()
    assert np.sum(density * np.diff(edges)) == pytest.approx(1, rel=0.05)
    colours = {window.curves["m"][label].opts["pen"].color().name() for label in (SESSION_LABEL, "a.json")}
    assert len(colours) == 2                                          # a colour per run
    assert window.bands["m"]["b.json"].getRegion() == pytest.approx((1.4, 1.8))
    key = window.key.text()                                           # one legend above the histograms
    assert key.index(SESSION_LABEL) < key.index("a.json") < key.index("b.json (mean ± std)")
    assert all(run_colour(k) in key for k in range(3))
    assert "b.json: no samples" in window.status.text()
    assert window.table.rowCount() == 12 and window.table.item(0, 1).text() == SESSION_LABEL
    window.close()


def test_the_table_shows_the_numbers_magan_compare_prints(qtbot, tmp_path, lines):
    a = write_run(tmp_path, "a.json", [1.4, 10.1, 0.45, 9.1], [0.3, 0.5, 0.1, 0.5], names=lines_names(lines),
                  uncertainties=[(0.02, 0.01)] * 4)
    b = write_run(tmp_path, "b.json", [1.5, 10.0, 0.5, 9.0], [0.2, 0.4, 0.1, 0.4], names=lines_names(lines),
                  uncertainties=[(0.03, 0.02)] * 4, seed=1)
    c = write_run(tmp_path, "c.json", [1.5, 10.0, 0.5, 9.4], [0.2, 0.4, 0.1, 0.4], names=lines_names(lines))
    window = ComparisonWindow()
    qtbot.addWidget(window)
    window.show()
    assert window.add_files([a, b, c]) == []
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["compare", str(a), str(b), str(c)]) == 0
    printed = [line.split() for line in out.getvalue().splitlines()[3:15]]
    shown = [" ".join(window.table.item(r, c).text() for c in range(8)).split() for r in range(12)]
    assert shown == printed
    assert window.table.item(11, 5).text() == "n/a"                  # c.json has no ensemble
    assert "--ensemble K" in window.footnotes.text()
    pull = window.table.item(4, 5)                                    # x0 of b.json: -0.1 / 0.036 = -2.77
    assert pull.text() == "-2.77" and pull.background().color().red() == 255
    # another reference: chosen in the list; differences are then taken from it
    window.run_list.setCurrentRow(2)
    click(qtbot, window.reference_button)
    assert [run.label for run in window.runs] == ["c.json", "a.json", "b.json"]
    assert window.table.item(0, 1).text() == "c.json" and window.table.item(0, 4).text() == ""
    assert "reference (c.json)" in window.footnotes.text()
    window.run_list.setCurrentRow(1)
    click(qtbot, window.remove_button)
    assert [run.label for run in window.runs] == ["c.json", "b.json"] and window.table.rowCount() == 8
    assert sorted(window.curves["m"]) == ["b.json", "c.json"]


def test_the_add_button_asks_for_files(qtbot, tmp_path, monkeypatch, lines):
    a = write_run(tmp_path, "a.json", [1.4, 10.1, 0.45, 9.1], [0.3, 0.5, 0.1, 0.5], names=lines_names(lines))
    b = write_run(tmp_path / "other", "a.json", [1.5, 10.0, 0.5, 9.0], [0.2, 0.4, 0.1, 0.4],
                  names=lines_names(lines))
    monkeypatch.setattr(comparison_module.QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a_, **k: ([str(a), str(b)], "")))
    window = ComparisonWindow()
    qtbot.addWidget(window)
    window.show()
    click(qtbot, window.add_button)
    assert [run.label for run in window.runs] == ["a.json", "other/a.json"]   # told apart by their folders
    assert window.last_folder == str(b.parent)


def test_bad_files_are_said_in_the_window(qtbot, tmp_path, lines):
    a = write_run(tmp_path, "a.json", [1.4, 10.1, 0.45, 9.1], [0.3, 0.5, 0.1, 0.5], names=lines_names(lines))
    broken = write_run(tmp_path, "broken.json", [1.4, 10.1, 0.45, 9.1], [0.3, 0.5, 0.1, 0.5],
                       names=lines_names(lines))
    samples_path_for(broken).write_text("m,x0\n1,2\n")
    window = ComparisonWindow()
    qtbot.addWidget(window)
    window.show()
    problems = window.add_files([a, tmp_path / "missing.json", broken, a])
    assert len(problems) == 3 and "no such file" in problems[0] and "has columns m, x0" in problems[1]
    assert "already in the comparison" in problems[2]
    assert [run.label for run in window.runs] == ["a.json"]
    assert "missing.json: no such file" in window.status.text() and "b00020" in window.status.styleSheet()
    assert len(window.plots) == 4                                      # what loaded is still drawn


def test_results_without_a_parameter_in_common_are_refused(qtbot, tmp_path, lines):
    a = write_run(tmp_path, "a.json", [1.4, 10.1, 0.45, 9.1], [0.3, 0.5, 0.1, 0.5], names=lines_names(lines))
    other = write_run(tmp_path, "o.json", [1.0], [0.1], names=[("k", "")], simulator="other")
    window = ComparisonWindow()
    qtbot.addWidget(window)
    window.show()
    window.add_files([a, other])
    assert "no parameter in common" in window.status.text()
    assert window.plots == {} and window.table.rowCount() == 0 and window.run_list.count() == 2
    window.run_list.setCurrentRow(1)
    click(qtbot, window.remove_button)                               # take it out again: a.json is drawn
    assert sorted(window.plots) == ["c", "m", "x0", "x_steps"] and window.table.rowCount() == 4


def test_an_open_comparison_follows_the_session(qtbot, panel, session, calibration, tmp_path, lines):
    window = open_comparison(qtbot, panel)                           # no result yet: files only
    assert window.runs == [] and "Add result files" in window.status.text()
    a = write_run(tmp_path, "a.json", [1.4, 10.1, 0.45, 9.1], [0.3, 0.5, 0.1, 0.5], names=lines_names(lines))
    window.add_files([a])
    show_result(qtbot, session, calibration)                         # a calibration ends: it comes first
    assert [run.label for run in window.runs] == [SESSION_LABEL, "a.json"]
    assert window.runs[0].samples.shape == calibration.outcome.samples.shape
    with qtbot.waitSignal(session.result_changed, timeout=5000):
        session.set_result(None, None)
    assert [run.label for run in window.runs] == ["a.json"]
    assert open_comparison(qtbot, panel) is window                   # one window, shown again
    window.close()
