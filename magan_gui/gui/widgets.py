"""Reusable plot widgets: image mosaics, loss curves, parameter histograms and a step scrubber.

Following pyqtgraph's performance advice, each grid is one ImageItem holding a mosaic array
with fixed levels, and every curve is created once and updated with ``setData``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QSpinBox, QWidget

from ..core.images import mosaic

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


class ImageGrid(pg.GraphicsLayoutWidget):
    """A grid of images drawn as one mosaic in one ImageItem, with a title and column captions."""

    def __init__(self, title: str = "", levels: tuple[float, float] = (0.0, 1.0), cmap: str = "viridis",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setBackground("w")
        self.label = self.addLabel(title, row=0, col=0, color="#222", size="10pt")
        self.view = self.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(pg.colormap.get(cmap).getLookupTable(nPts=256))
        self.levels = levels
        self.view.addItem(self.image)
        self.caption = self.addLabel("", row=2, col=0, color="#444", size="9pt")
        self.setMinimumSize(220, 180)
        self.last_array: np.ndarray | None = None

    def set_rows(self, rows: list[list[np.ndarray]], caption: str = "") -> None:
        """Show ``rows`` of (H, W) images; ``caption`` below (e.g. what the columns are)."""
        array = mosaic(rows)
        self.last_array = array
        self.image.setImage(array, levels=self.levels, autoLevels=False)
        self.view.setRange(xRange=(0, array.shape[1]), yRange=(0, array.shape[0]), padding=0.02)
        self.caption.setText(caption)


class LossPlot(pg.PlotWidget):
    """Loss curves: every logged step, raw and thin, plus an optional moving average on top."""

    def __init__(self, title: str = "losses", parent: QWidget | None = None):
        super().__init__(parent, background="w")
        self.setTitle(title, color="#222", size="10pt")
        self.addLegend(offset=(-10, 10), labelTextColor="#222")
        self.setLabel("bottom", "iteration")
        self.showGrid(x=True, y=True, alpha=0.2)
        # long runs log every iteration: draw at most about a point per pixel (peaks kept)
        self.setDownsampling(auto=True, mode="peak")
        self.setClipToView(True)
        self.steps = np.zeros(0, np.int64)
        self.values: dict[str, np.ndarray] = {}
        self.raw: dict[str, pg.PlotDataItem] = {}
        self.smooth: dict[str, pg.PlotDataItem] = {}
        self.window = 50
        self.smoothing = True
        self.limit_step: int | None = None

    def clear_data(self) -> None:
        """Forget all curves (a new run)."""
        self.steps = np.zeros(0, np.int64)
        self.values = {}
        for item in list(self.raw.values()) + list(self.smooth.values()):
            self.removeItem(item)
        self.raw, self.smooth = {}, {}
        self.plotItem.legend.clear()

    def append(self, steps: np.ndarray, losses: dict[str, np.ndarray]) -> None:
        """Add the steps and losses of one snapshot and redraw."""
        if len(steps) == 0:
            return
        n_old = len(self.steps)
        self.steps = np.concatenate([self.steps, steps])
        for key in set(self.values) | set(losses):
            old = self.values.get(key, np.full(n_old, np.nan, np.float32))
            new = losses.get(key, np.full(len(steps), np.nan, np.float32))
            self.values[key] = np.concatenate([old, new])
        self.redraw()

    def set_smoothing(self, enabled: bool, window: int | None = None) -> None:
        """Show or hide the moving average (window in iterations)."""
        self.smoothing = enabled
        if window:
            self.window = int(window)
        self.redraw()

    def show_until(self, step: int | None) -> None:
        """Draw only the steps up to ``step`` (the scrubber), or everything (None)."""
        self.limit_step = step
        self.redraw()

    def redraw(self) -> None:
        """Update every curve from the stored arrays."""
        keep = slice(None) if self.limit_step is None else slice(0, int(np.searchsorted(self.steps,
                                                                                         self.limit_step, "right")))
        steps = self.steps[keep]
        for i, (key, values) in enumerate(sorted(self.values.items())):
            colour = PALETTE[i % len(PALETTE)]
            values = values[keep]
            if key not in self.raw:
                raw_pen = pg.mkPen(pg.mkColor(colour).lighter(160), width=1)
                self.raw[key] = self.plot([], [], pen=raw_pen, name=None if self.smoothing else key)
                self.smooth[key] = self.plot([], [], pen=pg.mkPen(colour, width=2), name=key)
            self.raw[key].setData(steps, values)
            if self.smoothing and len(values) >= 2:
                w = max(1, min(self.window, len(values)))
                finite = np.nan_to_num(values, nan=0.0)
                counts = np.convolve(np.isfinite(values).astype(float), np.ones(w), "valid")
                avg = np.convolve(finite, np.ones(w), "valid") / np.maximum(counts, 1)
                self.smooth[key].setData(steps[w - 1:], avg)
            else:
                self.smooth[key].setData([], [])


class SmoothingControl(QWidget):
    """A 'moving average' checkbox and its window, driving one or more LossPlots."""

    def __init__(self, plots: list[LossPlot], parent: QWidget | None = None):
        super().__init__(parent)
        self.plots = plots
        self.check = QCheckBox("moving average over")
        self.check.setChecked(True)
        self.check.setToolTip("Draw a moving average of each loss over the raw curve (the raw values are always kept)")
        self.window = QSpinBox()
        self.window.setRange(2, 5000)
        self.window.setValue(50)
        self.window.setSuffix(" it")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check)
        layout.addWidget(self.window)
        layout.addStretch(1)
        self.check.toggled.connect(self._apply)
        self.window.valueChanged.connect(self._apply)

    def _apply(self) -> None:
        for plot in self.plots:
            plot.set_smoothing(self.check.isChecked(), self.window.value())


class StepScrubber(QWidget):
    """A slider over the kept snapshots; at its right end it follows the live run."""

    moved = Signal(int)  # index of the snapshot to show

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Look back at any snapshot of this run; drag to the right end to follow it live")
        self.label = QLabel("no snapshots yet")
        self.label.setMinimumWidth(200)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("step:"))
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self.iterations: list[int] = []
        self.slider.valueChanged.connect(self._changed)

    @property
    def following(self) -> bool:
        """True when the slider sits at the newest snapshot."""
        return self.slider.value() >= self.slider.maximum()

    def reset(self) -> None:
        """Forget the snapshots (a new run)."""
        self.iterations = []
        self.slider.blockSignals(True)
        self.slider.setRange(0, 0)
        self.slider.blockSignals(False)
        self.label.setText("no snapshots yet")

    def add(self, iteration: int) -> None:
        """Register a new snapshot; move along if following."""
        follow = self.following or not self.iterations
        self.iterations.append(iteration)
        self.slider.blockSignals(True)
        self.slider.setMaximum(len(self.iterations) - 1)
        if follow:
            self.slider.setValue(len(self.iterations) - 1)
        self.slider.blockSignals(False)
        self._update_label()

    def replace(self, iterations: list[int], index: int) -> None:
        """Take a new list of snapshots (after thinning) and point at ``index``."""
        self.iterations = list(iterations)
        self.slider.blockSignals(True)
        self.slider.setMaximum(max(0, len(self.iterations) - 1))
        self.slider.setValue(min(index, len(self.iterations) - 1))
        self.slider.blockSignals(False)
        self._update_label()

    def _update_label(self) -> None:
        if self.iterations:
            i = self.slider.value()
            live = " (live)" if self.following else ""
            self.label.setText(f"snapshot {i + 1}/{len(self.iterations)}, iteration {self.iterations[i]}{live}")

    def _changed(self, value: int) -> None:
        self._update_label()
        self.moved.emit(value)


HISTOGRAM_KEY = (f'<span style="color:{PALETTE[0]}"><b>━━</b></span> best match &nbsp;&nbsp; '
                 '<span style="background-color:#d6d6d6">&nbsp;&nbsp;&nbsp;&nbsp;</span> true (closure test) '
                 '&nbsp;&nbsp; '
                 f'<span style="color:{PALETTE[1]}"><b>╍╍</b></span> default value')  # the histograms' legend


class ParameterHistogram(pg.PlotWidget):
    """Histogram of generator samples for one parameter against its references."""

    def __init__(self, label: str, low: float, high: float, default: float, parent: QWidget | None = None):
        super().__init__(parent, background="w")
        self.setTitle(label, color="#222", size="10pt")
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.getAxis("left").setStyle(showValues=False)
        self.setLabel("left", "density")
        self.low, self.high, self.default = low, high, default
        self.edges = np.linspace(low, high, 81)
        dashes = pg.mkPen(PALETTE[1], width=1, style=Qt.PenStyle.DashLine)
        self.true_curve = self.plot([], [], stepMode="center", fillLevel=0,
                                    brush=pg.mkBrush(150, 150, 150, 90), pen=pg.mkPen("#777", width=1))
        self.gen_curve = self.plot([], [], stepMode="center", pen=pg.mkPen(PALETTE[0], width=2))
        self.default_line = pg.InfiniteLine(default, angle=90, pen=dashes)
        self.addItem(self.default_line)
        self.view_range: tuple[float, float] | None = None
        self.true_values: np.ndarray | None = None

    def set_true(self, values: np.ndarray | None) -> None:
        """The true per-image values (closure test), drawn as a grey filled histogram."""
        self.true_values = values
        if values is None:
            self.true_curve.setData([], [])
            return
        counts, _ = np.histogram(values, self.edges, density=True)
        self.true_curve.setData(self.edges, counts)

    def set_samples(self, values: np.ndarray) -> None:
        """Generator samples (physical units)."""
        counts, _ = np.histogram(values, self.edges, density=True)
        self.gen_curve.setData(self.edges, counts)
        pool = values if self.true_values is None else np.concatenate([values, self.true_values])
        lo, hi = np.percentile(pool, [0.5, 99.5])
        if self.default is not None:  # the default's line stays in view: on data it is the only reference
            lo, hi = min(lo, self.default), max(hi, self.default)
        margin = 0.25 * (hi - lo) + 1e-6
        wanted = (max(self.low, lo - margin), min(self.high, hi + margin))
        if self.view_range is None or abs(wanted[0] - self.view_range[0]) + abs(wanted[1] - self.view_range[1]) > \
                0.1 * (self.view_range[1] - self.view_range[0]):
            self.view_range = wanted
            self.setXRange(*wanted, padding=0)
        self.enableAutoRange(axis="y")
