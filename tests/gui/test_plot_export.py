"""Every plot's "Export…" button, clicked after a tiny run as a person would, and the difference's colour scale."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtGui import QImage

import magan_gui.gui.widgets as widgets_module
from magan_gui.gui.widgets import EXPORT_FILTERS, ImageGrid, LossPlot, PlotExport

from .conftest import TINY, close_message_boxes, set_tiny
from .test_main_window import calibrate, click, load_emulator_by_dialog

IMAGE = 28  # the lines simulator's images are 28x28


@pytest.fixture()
def save_as(monkeypatch):
    """Answer the next save dialogs with ``(path, filter)``; keeps the filters each dialog offered."""
    offered: list[list[str]] = []

    def answer(path, chosen: str) -> None:
        def dialog(parent, caption, suggested, filters):
            offered.append(filters.split(";;"))
            return str(path), chosen

        monkeypatch.setattr(widgets_module.QFileDialog, "getSaveFileName", staticmethod(dialog))

    answer.offered = offered
    return answer


def export_button(plot):
    """The plot's "Export…" button."""
    [export] = plot.findChildren(PlotExport)
    return export.button


def export(qtbot, plot, save_as, path, chosen: str) -> None:
    """Click the plot's Export… button, choosing ``path`` and the filter ``chosen`` in the dialog."""
    save_as(path, chosen)
    click(qtbot, export_button(plot))


def read_csv(path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def assert_svg(path) -> None:
    head = path.read_bytes()[:200].lstrip()
    assert head.startswith(b"<?xml") or head.startswith(b"<svg"), head


def assert_png(path, min_size: int = 50) -> None:
    image = QImage(str(path))
    assert not image.isNull() and image.width() > min_size and image.height() > min_size
    assert len({image.pixel(x, image.height() // 2) for x in range(0, image.width(), 3)}) > 1, "a blank picture"


def difference_column_max(grid_array: np.ndarray, rows: int) -> float:
    """The largest pixel of the mosaic's last column (the |difference|), the grey gaps left out."""
    start = grid_array.shape[1] - IMAGE
    return max(float(grid_array[r * (IMAGE + 1):r * (IMAGE + 1) + IMAGE, start:].max()) for r in range(rows))


def pretrain(qtbot, window, wait_run):
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    set_tiny(panel)
    with qtbot.waitSignal(window.session.emulator_changed, timeout=60000):
        click(qtbot, panel.start_button)
    wait_run(window)
    return panel


@pytest.fixture()
def calibrated(qtbot, window, wait_run, monkeypatch, tiny_emulator_path):
    """The app after loading an emulator and a tiny calibration."""
    load_emulator_by_dialog(qtbot, window, monkeypatch, tiny_emulator_path)
    calibrate(qtbot, window, wait_run)
    return window


def test_pretraining_plots_export_and_the_difference_scale_follows_the_snapshot(qtbot, window, wait_run, save_as,
                                                                                  tmp_path):
    panel = pretrain(qtbot, window, wait_run)

    # losses: a name without a suffix takes the chosen filter's; one row per logged step
    export(qtbot, panel.losses, save_as, tmp_path / "losses", EXPORT_FILTERS["csv"])
    assert save_as.offered[-1] == ["SVG (*.svg)", "PNG (*.png)", "CSV data (*.csv)"]
    header, rows = read_csv(tmp_path / "losses.csv")
    keys = sorted(panel.losses.values)
    assert header == ["step", *keys] and len(rows) == TINY
    assert [int(r[0]) for r in rows] == list(range(1, TINY + 1))
    np.testing.assert_allclose([float(r[1]) for r in rows], panel.losses.values[keys[0]], rtol=1e-6)
    assert panel.saved.text() == f"exported {tmp_path / 'losses.csv'}"
    export(qtbot, panel.losses, save_as, tmp_path / "losses.svg", EXPORT_FILTERS["csv"])   # the suffix decides
    assert_svg(tmp_path / "losses.svg")
    export(qtbot, panel.losses, save_as, tmp_path / "losses.png", EXPORT_FILTERS["png"])
    assert_png(tmp_path / "losses.png")

    # fidelity: one row per held-out evaluation, the figure as measured (the plot draws its log)
    export(qtbot, panel.fidelity, save_as, tmp_path / "fidelity.csv", EXPORT_FILTERS["csv"])
    header, rows = read_csv(tmp_path / "fidelity.csv")
    steps, values = panel.fidelity_points
    assert header == ["iteration", "held-out pixel MSE"] and len(rows) == len(steps) >= 1
    assert [int(r[0]) for r in rows] == steps
    np.testing.assert_allclose([float(r[1]) for r in rows], values, rtol=1e-6)
    export(qtbot, panel.fidelity, save_as, tmp_path / "fidelity.svg", EXPORT_FILTERS["svg"])
    assert_svg(tmp_path / "fidelity.svg")

    # the image grid: a picture or its array, no CSV
    export(qtbot, panel.grid, save_as, tmp_path / "grid.png", EXPORT_FILTERS["png"])
    assert save_as.offered[-1] == ["PNG (*.png)", "NumPy array (*.npy)"]
    assert_png(tmp_path / "grid.png", min_size=100)
    export(qtbot, panel.grid, save_as, tmp_path / "grid", EXPORT_FILTERS["npy"])
    np.testing.assert_array_equal(np.load(tmp_path / "grid.npy"), panel.grid.last_array)
    assert panel.saved.text() == f"exported {tmp_path / 'grid.npy'}"

    # the colour scale states the grid's fixed levels and marks the shown snapshot's largest difference
    scale = panel.difference_scale
    assert scale.isVisible() and (scale.low_label.text(), scale.high_label.text()) == ("0", "1")
    assert panel.grid.levels == (0.0, 1.0)
    rows_shown = panel.snapshots[-1].emulated.shape[0]
    latest = difference_column_max(panel.grid.last_array, rows_shown)
    assert 0 < latest <= 1
    assert scale.value_label.text() == f"▼ largest |difference|: {latest:.3g}"
    assert scale.bar.marker == pytest.approx(latest)
    panel.scrubber.slider.setValue(0)                       # an older snapshot: its own largest difference
    first = difference_column_max(panel.grid.last_array, rows_shown)
    assert first != latest and scale.value_label.text() == f"▼ largest |difference|: {first:.3g}"
    panel.difference.setChecked(False)                      # no difference column: nothing to mark
    assert scale.value_label.text() == "" and scale.bar.marker is None
    assert close_message_boxes(window) == []


def test_calibration_plots_export(qtbot, calibrated, save_as, tmp_path):
    window = calibrated
    panel = window.calibrate_panel
    window.tabs.setCurrentWidget(panel)

    # a histogram: per bin its edges, the best match's count and plotted density, and the true values'
    histogram = panel.histograms[0]
    export(qtbot, histogram, save_as, tmp_path / "m.csv", EXPORT_FILTERS["csv"])
    header, rows = read_csv(tmp_path / "m.csv")
    assert header == ["bin_low", "bin_high", "best_match_count", "best_match_density", "true_count", "true_density"]
    assert len(rows) == len(histogram.edges) - 1
    table = np.array(rows, float)
    np.testing.assert_allclose(table[:, 0], histogram.edges[:-1], rtol=1e-6)
    np.testing.assert_allclose(table[:, 1], histogram.edges[1:], rtol=1e-6)
    def in_range(values):
        return int(((values >= histogram.low) & (values <= histogram.high)).sum())

    assert table[:, 2].sum() == in_range(window.session.outcome.samples[:, 0])
    np.testing.assert_allclose(table[:, 3], histogram.gen_curve.getData()[1], rtol=1e-5)
    true = window.session.true.params[:, 0]                   # the closure test's 10000 true values
    assert table[:, 4].sum() == in_range(true) > 0.99 * len(true)
    np.testing.assert_allclose(table[:, 5], histogram.true_curve.getData()[1], rtol=1e-5)
    export(qtbot, histogram, save_as, tmp_path / "m.svg", EXPORT_FILTERS["svg"])
    assert_svg(tmp_path / "m.svg")
    export(qtbot, histogram, save_as, tmp_path / "m.png", EXPORT_FILTERS["png"])
    assert_png(tmp_path / "m.png")

    export(qtbot, panel.losses, save_as, tmp_path / "losses.csv", EXPORT_FILTERS["csv"])
    header, rows = read_csv(tmp_path / "losses.csv")
    assert header == ["step", *sorted(panel.losses.values)] and len(rows) == TINY

    export(qtbot, panel.images, save_as, tmp_path / "images.png", EXPORT_FILTERS["png"])
    assert_png(tmp_path / "images.png", min_size=100)
    export(qtbot, panel.images, save_as, tmp_path / "images.npy", EXPORT_FILTERS["npy"])
    np.testing.assert_array_equal(np.load(tmp_path / "images.npy"), panel.images.last_array)
    assert panel.saved.text() == f"exported {tmp_path / 'images.npy'}"
    assert close_message_boxes(window) == []


def test_an_unwritable_path_is_one_error_and_the_last_export_still_shown(qtbot, window, save_as, tmp_path):
    panel = window.pretrain_panel
    window.tabs.setCurrentWidget(panel)
    export(qtbot, panel.fidelity, save_as, tmp_path / "empty.svg", EXPORT_FILTERS["svg"])  # nothing plotted yet
    assert_svg(tmp_path / "empty.svg")
    before = panel.saved.text()
    blocker = tmp_path / "a file"
    blocker.write_text("")
    missing = blocker / "losses.csv"   # a folder that is a file: the write must fail
    export(qtbot, panel.losses, save_as, missing, EXPORT_FILTERS["csv"])
    assert window.last_error.startswith(f"could not write the pretraining losses: {missing}: cannot write there")
    assert close_message_boxes(window) == [window.last_error]
    assert blocker.read_text() == "" and panel.saved.text() == before


def test_a_loss_logged_later_leaves_empty_cells_and_an_empty_grid_has_no_array(qtbot, tmp_path):
    plot = LossPlot("losses")
    qtbot.addWidget(plot)
    losses_export = PlotExport(plot, "losses", table=plot.table)
    plot.append(np.array([1, 2]), {"a": np.array([0.5, 0.25], np.float32)})
    plot.append(np.array([3]), {"a": np.array([0.125], np.float32), "b": np.array([2.0], np.float32)})
    assert losses_export.export(str(tmp_path / "l.csv"), EXPORT_FILTERS["csv"])
    assert (tmp_path / "l.csv").read_text().splitlines() == ["step,a,b", "1,0.5,", "2,0.25,", "3,0.125,2"]

    grid = ImageGrid("nothing yet")
    qtbot.addWidget(grid)
    grid_export = PlotExport(grid, "grid", array=lambda: grid.last_array)
    failures = []
    grid_export.failed.connect(failures.append)
    assert not grid_export.export(str(tmp_path / "g.npy"))
    assert failures == ["could not export the grid as NPY: nothing is drawn yet"]
    assert not (tmp_path / "g.npy").exists()
