"""Reusable plot widgets: image mosaics, loss curves, parameter histograms, a step scrubber,
a colour scale and the "Export…" button every plot carries.

Following pyqtgraph's performance advice, each grid is one ImageItem holding a mosaic array
with fixed levels, and every curve is created once and updated with ``setData``.
"""

from __future__ import annotations

import csv
import importlib
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import QBuffer, QEvent, QIODevice, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPolygonF
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QToolButton,
    QWidget,
)

from ..core.errors import OutputError
from ..core.files import write_atomically
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
        self.colormap = pg.colormap.get(cmap)
        self.image.setLookupTable(self.colormap.getLookupTable(nPts=256))
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
        # every iteration's losses, in buffers that double when full: a long run's curves are not copied
        # whole at each snapshot (growing copies fragmented the heap: resident memory crept up)
        self._steps = np.zeros(0, np.int64)
        self._values: dict[str, np.ndarray] = {}
        self._count = 0
        self.raw: dict[str, pg.PlotDataItem] = {}
        self.smooth: dict[str, pg.PlotDataItem] = {}
        self.window = 50
        self.smoothing = True
        self.limit_step: int | None = None

    @property
    def steps(self) -> np.ndarray:
        """Every logged step (a view of the buffer)."""
        return self._steps[:self._count]

    @property
    def values(self) -> dict[str, np.ndarray]:
        """Every logged step's value of each loss, NaN where a loss was not logged (views of the buffers)."""
        return {key: buffer[:self._count] for key, buffer in self._values.items()}

    def clear_data(self) -> None:
        """Forget all curves (a new run)."""
        self._steps, self._values, self._count = np.zeros(0, np.int64), {}, 0
        for item in list(self.raw.values()) + list(self.smooth.values()):
            self.removeItem(item)
        self.raw, self.smooth = {}, {}
        self.plotItem.legend.clear()

    def append(self, steps: np.ndarray, losses: dict[str, np.ndarray]) -> None:
        """Add the steps and losses of one snapshot and redraw."""
        if len(steps) == 0:
            return
        start, end = self._count, self._count + len(steps)
        if end > len(self._steps):
            capacity = max(1024, 2 * len(self._steps), end)
            self._steps = np.resize(self._steps, capacity)
            for key, buffer in self._values.items():
                grown = np.full(capacity, np.nan, np.float32)
                grown[:start] = buffer[:start]
                self._values[key] = grown
        self._steps[start:end] = steps
        for key in set(self._values) | set(losses):
            if key not in self._values:
                self._values[key] = np.full(len(self._steps), np.nan, np.float32)
            self._values[key][start:end] = losses.get(key, np.nan)
        self._count = end
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

    def shown(self) -> slice:
        """The stored steps drawn now: all, or those up to the scrubber's step."""
        if self.limit_step is None:
            return slice(None)
        return slice(0, int(np.searchsorted(self.steps, self.limit_step, "right")))

    def table(self) -> tuple[list[str], list[list]]:
        """The drawn steps and each loss's logged value at them (the moving average is not data: left out)."""
        keep, keys = self.shown(), sorted(self.values)
        columns = [self.values[k][keep] for k in keys]
        return ["step", *keys], [[int(step), *(c[i] for c in columns)] for i, step in enumerate(self.steps[keep])]

    def redraw(self) -> None:
        """Update every curve from the stored arrays."""
        keep = self.shown()
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
        self.samples: np.ndarray | None = None

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
        self.samples = values
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

    def table(self) -> tuple[list[str], list[list]]:
        """Per bin: its edges, and the count and plotted density of the best match and (when shown) the true values."""
        header, columns = ["bin_low", "bin_high"], [self.edges[:-1], self.edges[1:]]
        for name, values in (("best_match", self.samples), ("true", self.true_values)):
            if values is not None:
                header += [f"{name}_count", f"{name}_density"]
                columns += [np.histogram(values, self.edges)[0], np.histogram(values, self.edges, density=True)[0]]
        return header, [list(row) for row in zip(*columns)]


class ColourBar(QWidget):
    """A horizontal strip of a colour map over its levels, with an optional marker above one value."""

    MARKER = 6  # pixels of the marker's triangle above the strip

    def __init__(self, colormap: pg.ColorMap, levels: tuple[float, float], parent: QWidget | None = None):
        super().__init__(parent)
        lut = np.ascontiguousarray(colormap.getLookupTable(nPts=256, alpha=False), np.uint8)
        self.strip = QImage(lut.tobytes(), 256, 1, 3 * 256, QImage.Format.Format_RGB888).copy()
        self.levels = levels
        self.marker: float | None = None
        self.setMinimumSize(80, 18)

    def set_marker(self, value: float | None) -> None:
        """Mark ``value`` (clamped to the levels, as the image clamps it), or nothing (None)."""
        self.marker = value
        self.update()

    def marker_x(self) -> float | None:
        """The marker's horizontal position in pixels, or None."""
        if self.marker is None:
            return None
        low, high = self.levels
        fraction = min(max((self.marker - low) / (high - low), 0.0), 1.0)
        return 1 + fraction * (self.width() - 3)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        strip = self.rect().adjusted(1, self.MARKER + 1, -1, -1)
        painter.drawImage(strip, self.strip)
        painter.setPen(QColor("#666"))
        painter.drawRect(strip.adjusted(0, 0, -1, -1))
        x = self.marker_x()
        if x is not None:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#222"))
            painter.drawPolygon(QPolygonF([QPointF(x - 4, 0), QPointF(x + 4, 0), QPointF(x, self.MARKER)]))
        painter.end()


class ColourScale(QWidget):
    """The colour map an ImageGrid draws with, over its fixed levels, and a marked value such as a column's largest.

    The ends are the grid's own levels, so the scale says exactly which colour means which pixel value.
    """

    def __init__(self, grid: ImageGrid, title: str, value_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.value_name = value_name
        self.title = QLabel(title)
        low, high = grid.levels
        self.low_label = QLabel(format(low, ".3g"))
        self.high_label = QLabel(format(high, ".3g"))
        self.bar = ColourBar(grid.colormap, grid.levels)
        self.value_label = QLabel("")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.low_label)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.high_label)
        layout.addWidget(self.value_label)

    def mark(self, value: float | None) -> None:
        """Mark ``value`` on the bar and say it to 3 significant digits; None clears both."""
        self.bar.set_marker(value)
        self.value_label.setText("" if value is None else f"▼ {self.value_name}: {value:.3g}")


EXPORT_FILTERS = {"svg": "SVG (*.svg)", "png": "PNG (*.png)", "csv": "CSV data (*.csv)",
                  "npy": "NumPy array (*.npy)"}


@contextmanager
def svg_paths_may_close() -> Iterator[None]:
    """Let pyqtgraph's SVG export read paths that end in "Z" (close path), while it runs.

    Qt 6.10 and later write that Z, and every ViewBox's clip path has one; pyqtgraph 0.14.0 reads each path
    token as "x,y" and fails on it (pyqtgraph issue 3485, fixed after 0.14.0). Its coordinate fixer is
    handed the paths without their Zs, which go back where they were: it maps one token to one token.
    """
    module = importlib.import_module("pyqtgraph.exporters.SVGExporter")
    original = module.correctCoordinates

    def correct_coordinates(node, defs, item, options):
        closed = []
        for path in node.getElementsByTagName("path"):
            tokens = path.getAttribute("d").split()
            where = [i for i, token in enumerate(tokens) if token.upper() == "Z"]
            if where:
                closed.append((path, where))
                path.setAttribute("d", " ".join(t for t in tokens if t.upper() != "Z"))
        original(node, defs, item, options)
        for path, where in closed:
            tokens = path.getAttribute("d").split()
            for i in where:
                tokens.insert(i, "Z")
            path.setAttribute("d", " ".join(tokens))

    module.correctCoordinates = correct_coordinates
    try:
        yield
    finally:
        module.correctCoordinates = original


def csv_cell(value) -> str:
    """A number as a CSV cell: integers as they are, floats to float32 precision, missing values empty."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    return "" if not np.isfinite(value) else format(value, ".9g")


class PlotExport(QObject):
    """A small "Export…" button in a plot's top-right corner, in its title's row: the plot as SVG or PNG, its data
    as CSV (``table``: () -> (header, rows)) or, for an image grid, its array as .npy (``array``: () -> array).

    An image grid's SVG would only wrap a bitmap, so grids offer PNG and .npy. Outcomes are signals, for the
    panel to report as it reports everything else.
    """

    written = Signal(str)  # the path written
    failed = Signal(str)   # why not, in one sentence
    last_folder = str(Path.cwd())  # shared by every plot: the next export opens where the last one went

    def __init__(self, plot: pg.GraphicsView, name: str,
                 table: Callable[[], tuple[list[str], list[list]]] | None = None,
                 array: Callable[[], np.ndarray | None] | None = None):
        super().__init__(plot)
        self.plot, self.name, self.table, self.array = plot, name, table, array
        self.formats = ["png", "npy"] if array is not None else ["svg", "png"] + (["csv"] if table else [])
        self.button = QToolButton(plot)
        self.button.setText("Export…")
        self.button.setToolTip(f"Save the {name} as " + ", ".join(EXPORT_FILTERS[f].split(" (")[0]
                                                                 for f in self.formats))
        self.button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.button.setStyleSheet("QToolButton { font-size: 8pt; padding: 1px 5px; color: #222; background: #f4f4f4;"
                                  " border: 1px solid #aaa; border-radius: 3px; }"
                                  " QToolButton:hover { background: #e3ecf8; border-color: #1f77b4; }")
        self.button.clicked.connect(self.choose_file)
        if isinstance(plot, pg.PlotWidget):  # its title row is 30 px high already
            title = plot.plotItem.titleLabel
        else:  # a layout's first row: its title's text, as high as the button
            title = plot.ci.getItem(0, 0)
            plot.ci.layout.setRowMinimumHeight(0, self.button.sizeHint().height() + 4)
        if isinstance(title, pg.LabelItem):  # title left, button right: a long title keeps clear of the button
            title.setText(title.text, justify="left")
        plot.installEventFilter(self)
        self.place()

    def place(self) -> None:
        """Keep the button in the top-right corner, in the title's row (above the data)."""
        self.button.adjustSize()
        self.button.move(self.plot.width() - self.button.width() - 4, 3)
        self.button.raise_()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if watched is self.plot and event.type() == QEvent.Type.Resize:
            self.place()
        return False

    def choose_file(self) -> None:
        """Ask for a file name and format, then write it."""
        stem = re.sub(r"[^\w.-]+", "-", self.name).strip("-") or "plot"
        path, chosen = QFileDialog.getSaveFileName(self.plot, f"Export the {self.name}",
                                                   str(Path(PlotExport.last_folder) / f"{stem}.{self.formats[0]}"),
                                                   ";;".join(EXPORT_FILTERS[f] for f in self.formats))
        if path:
            self.export(path, chosen)

    def export(self, path: str, chosen_filter: str = "") -> bool:
        """Write the format the name's suffix says, else the chosen filter's (adding its suffix); report either way."""
        suffix = Path(path).suffix.lower().lstrip(".")
        if suffix in self.formats:
            kind = suffix
        else:
            kind = next((f for f in self.formats if EXPORT_FILTERS[f] == chosen_filter), self.formats[0])
            path = f"{path}.{kind}"
        try:
            content = self.render(kind)
        except Exception as exc:  # pyqtgraph's exporters have their bugs: said in the window, not raised in a slot
            self.failed.emit(f"could not export the {self.name} as {kind.upper()}: {exc}")
            return False
        try:
            write_atomically(path, content)
        except OutputError as exc:
            self.failed.emit(f"could not write the {self.name}: {exc}")
            return False
        PlotExport.last_folder = str(Path(path).parent)
        self.written.emit(path)
        return True

    def render(self, kind: str) -> bytes:
        """The file's bytes: built in memory, so a path that cannot be written leaves nothing half-written."""
        item = self.plot.plotItem if isinstance(self.plot, pg.PlotWidget) else self.plot.ci
        if kind == "svg":
            with svg_paths_may_close():
                return pg.exporters.SVGExporter(item).export(toBytes=True)
        if kind == "png":
            buffer = QBuffer()
            buffer.open(QIODevice.OpenModeFlag.WriteOnly)
            pg.exporters.ImageExporter(item).export(toBytes=True).save(buffer, "PNG")
            return bytes(buffer.data())
        if kind == "npy":
            array = self.array()
            if array is None:
                raise ValueError("nothing is drawn yet")
            stream = io.BytesIO()
            np.save(stream, array)
            return stream.getvalue()
        header, rows = self.table()
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([csv_cell(v) for v in row] for row in rows)
        return text.getvalue().encode("utf-8")
