"""The plot widgets on their own: image grids, loss curves, the step scrubber and histograms."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QWidget

from magan_gui.gui.widgets import ImageGrid, LossPlot, ParameterHistogram, SmoothingControl, StepScrubber

from .conftest import flush_events, new_visible_top_levels


def test_image_grid_shows_the_mosaic(qtbot):
    grid = ImageGrid("t")
    qtbot.addWidget(grid)
    grid.set_rows([[np.zeros((6, 6)), np.ones((6, 6))]], "two")
    assert grid.last_array.shape == (6, 13)
    assert grid.image.image.shape == (6, 13)
    assert grid.caption.text == "two"


# -- loss curves ---------------------------------------------------------------------------------------
def _curve(item):
    x, y = item.getData()
    return (np.zeros(0) if x is None else np.asarray(x)), (np.zeros(0) if y is None else np.asarray(y))


def test_loss_plot_keeps_every_step_and_smooths(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_smoothing(True, 5)
    rng = np.random.default_rng(0)
    values = rng.normal(size=60).astype(np.float32)
    for start in (0, 7, 30):
        stop = {0: 7, 7: 30, 30: 60}[start]
        plot.append(np.arange(start + 1, stop + 1), {"d": values[start:stop]})
    plot.append(np.zeros(0, np.int64), {})  # an empty snapshot changes nothing
    assert np.array_equal(plot.steps, np.arange(1, 61))
    assert np.array_equal(plot.values["d"], values)
    x, y = _curve(plot.raw["d"])
    assert np.array_equal(x, np.arange(1, 61)) and np.allclose(y, values)
    x, y = _curve(plot.smooth["d"])
    assert len(x) == len(y) == 60 - 5 + 1
    assert x[0] == 5 and x[-1] == 60
    assert y[-1] == pytest.approx(values[-5:].mean(), rel=1e-5)

    plot.set_smoothing(True, 20)
    assert len(_curve(plot.smooth["d"])[1]) == 60 - 20 + 1
    plot.set_smoothing(False)
    assert len(_curve(plot.smooth["d"])[1]) == 0
    assert len(_curve(plot.raw["d"])[1]) == 60        # raw values are always kept

    plot.show_until(25)
    assert len(_curve(plot.raw["d"])[0]) == 25
    plot.show_until(None)
    assert len(_curve(plot.raw["d"])[0]) == 60


def test_loss_plot_aligns_a_loss_that_appears_later(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.append(np.arange(1, 4), {"a": np.ones(3, np.float32)})
    plot.append(np.arange(4, 6), {"a": np.ones(2, np.float32), "b": np.full(2, 2.0, np.float32)})
    assert len(plot.values["a"]) == len(plot.values["b"]) == 5
    assert np.isnan(plot.values["b"][:3]).all() and np.all(plot.values["b"][3:] == 2.0)
    plot.clear_data()
    assert len(plot.steps) == 0 and plot.values == {} and plot.raw == {}


def test_smoothing_control_drives_its_plots(qtbot):
    plots = [LossPlot(), LossPlot()]
    control = SmoothingControl(plots)
    for w in (*plots, control):
        qtbot.addWidget(w)
    control.window.setValue(7)
    assert all(p.window == 7 and p.smoothing for p in plots)
    control.check.setChecked(False)
    assert not any(p.smoothing for p in plots)


# -- scrubber ------------------------------------------------------------------------------------------
def test_step_scrubber_follows_the_live_end_until_moved_back(qtbot):
    scrubber = StepScrubber()
    qtbot.addWidget(scrubber)
    assert scrubber.label.text() == "no snapshots yet"
    for it in (10, 20, 30):
        scrubber.add(it)
    assert scrubber.following and scrubber.slider.value() == 2
    assert scrubber.label.text().endswith("iteration 30 (live)")

    with qtbot.waitSignal(scrubber.moved) as blocker:
        scrubber.slider.setValue(0)
    assert blocker.args == [0]
    assert not scrubber.following
    assert "live" not in scrubber.label.text() and "iteration 10" in scrubber.label.text()

    with qtbot.assertNotEmitted(scrubber.moved):
        scrubber.add(40)                      # a new snapshot does not pull the user back
    assert scrubber.slider.value() == 0 and scrubber.slider.maximum() == 3
    assert "snapshot 1/4" in scrubber.label.text()

    scrubber.slider.setValue(scrubber.slider.maximum())   # back to the right end: live again
    assert scrubber.following
    scrubber.add(50)
    assert scrubber.slider.value() == 4 and scrubber.label.text().endswith("(live)")

    scrubber.reset()
    assert scrubber.iterations == [] and scrubber.slider.maximum() == 0
    scrubber.add(5)
    assert scrubber.following and scrubber.label.text().endswith("iteration 5 (live)")


# -- histograms ----------------------------------------------------------------------------------------
def test_parameter_histogram_sets_data(qtbot):
    hist = ParameterHistogram("m", 0.5, 2.5, 1.0)
    qtbot.addWidget(hist)
    rng = np.random.default_rng(1)
    true = rng.normal(1.5, 0.1, 5000)
    hist.set_true(true)
    x, y = _curve(hist.true_curve)
    assert len(x) == len(hist.edges) and len(y) == len(hist.edges) - 1
    assert np.sum(y * np.diff(x)) == pytest.approx(1.0, abs=1e-6)   # a density over [low, high]

    samples = rng.normal(1.2, 0.05, 5000)
    hist.set_samples(samples)
    x, y = _curve(hist.gen_curve)
    assert np.sum(y * np.diff(x)) == pytest.approx(1.0, abs=1e-6)
    assert x[np.argmax(y)] == pytest.approx(1.2, abs=0.05)
    lo, hi = hist.view_range
    assert 0.5 <= lo < 1.0 and 1.6 < hi <= 2.5     # both populations in view, inside the bounds
    assert hist.default_line.value() == 1.0

    hist.set_true(None)
    assert len(_curve(hist.true_curve)[1]) == 0 and hist.true_values is None


def test_the_default_value_stays_in_view_when_the_range_follows_the_data(qtbot):
    hist = ParameterHistogram("x0", 6.0, 14.0, 9.0)   # data far from the default, as x0 in the closure test
    qtbot.addWidget(hist)
    hist.set_samples(np.random.default_rng(2).normal(11.0, 0.1, 5000))
    lo, hi = hist.view_range
    assert lo < 9.0 < hi <= 14.0 and hi > 11.2


# -- the leak check itself -----------------------------------------------------------------------------
def test_leak_check_sees_a_shown_parentless_widget(qapp):
    flush_events()
    before = set(qapp.topLevelWidgets())
    stray = QWidget()
    stray.setWindowTitle("stray")
    stray.show()
    try:
        assert new_visible_top_levels(before) == [stray]
    finally:
        stray.close()
        stray.deleteLater()
        flush_events()
    assert new_visible_top_levels(before) == []


def test_loss_curves_grow_in_place_through_a_long_run(qtbot):
    from magan_gui.gui.widgets import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    buffers = set()
    for start in range(0, 30_000, 300):   # 100 snapshots of 300 iterations; a second loss from step 15,000
        steps = np.arange(start + 1, start + 301)
        losses = {"a": np.full(300, 1.0, np.float32)}
        if start >= 15_000:
            losses["b"] = np.full(300, 2.0, np.float32)
        plot.append(steps, losses)
        buffers.add(id(plot._steps))
    assert np.array_equal(plot.steps, np.arange(1, 30_001))
    assert np.all(plot.values["a"] == 1.0)
    b = plot.values["b"]
    assert np.isnan(b[:15_000]).all() and np.all(b[15_000:] == 2.0)
    assert len(buffers) <= 7, "the buffers were copied at every snapshot"   # 1024 doubling to 30,000: 6 sizes
