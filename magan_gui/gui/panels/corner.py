"""The corner plot of the best-match samples: every parameter's histogram, every pair's 2-D histogram,
and their correlation coefficients, with the true per-image parameters overlaid in a closure test."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QWidget

from ...core.parameters import Parameter
from ..session import Session
from ..widgets import PALETTE

BINS_1D = 40
BINS_2D = 32
SAMPLE_COLOUR = PALETTE[0]
TRUE_COLOUR = "#333333"
# white for empty bins, so the plot reads like a printed corner plot; dark blue where samples pile up
DENSITY_MAP = pg.ColorMap([0.0, 1.0], [(255, 255, 255), (8, 48, 107)])
CORNER_KEY = (f'<span style="color:{SAMPLE_COLOUR}"><b>━━</b></span> best match &nbsp;&nbsp; '
              '<span style="background-color:#c8c8c8">&nbsp;&nbsp;&nbsp;&nbsp;</span> true (closure test) &nbsp;&nbsp; '
              f'<span style="color:{TRUE_COLOUR}">◯</span> true 1σ ellipse')


def value_range(values: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """The axis range for a parameter: its central 99% with a margin, kept inside its box [low, high]."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    margin = 0.1 * (hi - lo)
    lo, hi = max(low, lo - margin), min(high, hi + margin)
    if not hi > lo:  # every sample equal (or the box is a point): a small window around the value
        pad = max(abs(lo) * 1e-3, 1e-6)
        lo, hi = lo - pad, hi + pad
    return float(lo), float(hi)


def correlations(values: np.ndarray) -> np.ndarray:
    """The (P, P) correlation matrix of samples (N, P); NaN where a parameter does not vary."""
    std = values.std(axis=0)
    centred = (values - values.mean(axis=0)) / np.where(std > 0, std, np.nan)
    return centred.T @ centred / len(values)


def ellipse(points: np.ndarray, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """The 1σ ellipse (x, y) of the covariance of 2-D ``points`` (M, 2), around their mean."""
    mean = points.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(points, rowvar=False))
    angle = np.linspace(0.0, 2 * np.pi, n)
    circle = np.stack([np.cos(angle), np.sin(angle)])
    curve = mean[:, None] + (vectors * np.sqrt(np.clip(values, 0.0, None))) @ circle
    return curve[0], curve[1]


def coefficient_text(r: float) -> str:
    """A correlation coefficient to two decimals with its sign; "0.00" rather than a signed zero, "n/a" for NaN."""
    if not np.isfinite(r):
        return "n/a"
    return "0.00" if round(r, 2) == 0 else f"{r:+.2f}"


def axis_label(parameter: Parameter) -> str:
    """A parameter's name with its unit in brackets (when it has one)."""
    return parameter.name + (f" [{parameter.unit}]" if parameter.unit else "")


class CornerPlot(pg.GraphicsLayoutWidget):
    """P×P cells over the best-match samples: 1-D histograms on the diagonal, 2-D histograms below it
    (one ImageItem each, fixed bins over the samples' range), correlation coefficients above it.

    Given a session, it redraws whenever the session's result changes (and clears when there is none).
    Cells are ViewBoxes of one size; the axes sit in their own row and column, shared by a row or column.
    """

    def __init__(self, session: Session | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("cornerPlot")
        self.setBackground("w")
        self.session = session
        self.title = self.addLabel("", row=0, col=0, colspan=2, color="#222", size="10pt")
        self.key = pg.LabelItem("", color="#222", size="9pt")   # below the cells: the title row holds "Export…"
        self.ci.layout.setSpacing(3)
        self.setMinimumSize(360, 320)
        self.names: list[str] = []
        self.samples: np.ndarray | None = None
        self.true_values: np.ndarray | None = None
        self.cells: dict[tuple[int, int], pg.ViewBox] = {}
        self.sample_curves: list[pg.PlotCurveItem] = []
        self.true_curves: list[pg.PlotCurveItem] = []
        self.images: dict[tuple[int, int], pg.ImageItem] = {}
        self.ellipses: dict[tuple[int, int], pg.PlotCurveItem] = {}
        self.correlation_texts: dict[tuple[int, int], pg.TextItem] = {}
        self.correlation: np.ndarray | None = None
        self.axes: list[pg.AxisItem] = []
        self._items: list = []   # everything placed in the layout below the title, removed on a redraw
        self.clear_plot()
        if session is not None:
            session.result_changed.connect(self.show_session)

    # -- drawing ----------------------------------------------------------------------------------------
    def show_session(self, result=None) -> None:
        """Draw the session's best-match samples (and its true parameters in a closure test), or clear."""
        session = self.session
        if session is None or session.result is None or session.outcome is None or session.simulator is None:
            self.clear_plot()
            return
        true = session.true.params if session.true is not None else None
        self.set_data(session.outcome.samples, list(session.simulator.parameters), true)

    def clear_plot(self) -> None:
        """Remove every cell; say how to get a plot."""
        for item in self._items:
            self.ci.removeItem(item)
        self.key.setText("")
        self._items, self.axes, self.cells = [], [], {}
        self.sample_curves, self.true_curves = [], []
        self.images, self.ellipses, self.correlation_texts = {}, {}, {}
        self.names, self.samples, self.true_values, self.correlation = [], None, None, None
        self.title.setText("corner plot: run a calibration to see its best-match samples here")

    def set_data(self, samples: np.ndarray, parameters: Sequence[Parameter],
                 true_values: np.ndarray | None = None) -> None:
        """Draw samples (N, P) of ``parameters``; ``true_values`` (M, P), the true per-image parameters of a
        closure test, are overlaid (ignored when their columns do not match)."""
        self.clear_plot()
        samples = np.asarray(samples, dtype=float)
        p = len(parameters)
        if samples.ndim != 2 or samples.shape[1] != p or len(samples) < 2:
            return
        if true_values is not None and (true_values.ndim != 2 or true_values.shape[1] != p or len(true_values) < 2):
            true_values = None
        self.samples, self.true_values = samples, true_values
        self.names = [q.name for q in parameters]
        self.correlation = correlations(samples)
        true_corr = correlations(np.asarray(true_values, float)) if true_values is not None else None
        pooled = samples if true_values is None else np.concatenate([samples, true_values])
        ranges = [value_range(pooled[:, i], q.low, q.high) for i, q in enumerate(parameters)]
        self.ci.removeItem(self.title)   # re-placed to span the new number of columns
        self.ci.addItem(self.title, row=0, col=0, colspan=p + 1)
        self.title.setText(f"corner plot of {len(samples):,} best-match samples")
        self._place(self.key, p + 2, 1, colspan=p)
        self.key.setText(CORNER_KEY if true_values is not None else CORNER_KEY.split(" &nbsp;&nbsp; ")[0])
        font_size = {2: 18, 3: 16, 4: 14, 5: 12}.get(p, 11)
        for i in range(p):
            for j in range(p):
                view = pg.ViewBox(enableMouse=False, border=pg.mkPen("#aaa", width=1))
                view.setMenuEnabled(False)
                self._place(view, i + 1, j + 1)
                self.cells[(i, j)] = view
                if i == j:
                    self._diagonal(view, i, ranges[i])
                elif i > j:
                    self._pair(view, i, j, ranges)
                else:
                    self._coefficient(view, i, j, font_size, None if true_corr is None else true_corr[i, j])
        tick_font = QFont()
        tick_font.setPointSize(8)
        for i in range(1, p):   # y: the parameter of the row, against the row's first 2-D histogram
            self._axis("left", self.cells[(i, 0)], axis_label(parameters[i]), tick_font, i + 1, 0)
        for j in range(p):      # x: the parameter of the column
            self._axis("bottom", self.cells[(p - 1, j)], axis_label(parameters[j]), tick_font, p + 1, j + 1)

    def _place(self, item, row: int, col: int, colspan: int = 1) -> None:
        self.ci.addItem(item, row=row, col=col, colspan=colspan)
        self._items.append(item)

    def _axis(self, side: str, view: pg.ViewBox, label: str, font: QFont, row: int, col: int) -> None:
        axis = pg.AxisItem(side, pen=pg.mkPen("#666"), textPen=pg.mkPen("#222"))
        axis.setTickFont(font)
        axis.enableAutoSIPrefix(False)   # the unit is in the label: a "(x0.001)" scale beside it would confuse
        axis.setStyle(hideOverlappingLabels=True)   # a row's end label would print over the next row's
        axis.setLabel(label, color="#222", **{"font-size": "9pt"})
        axis.linkToView(view)
        self._place(axis, row, col)
        self.axes.append(axis)

    def _diagonal(self, view: pg.ViewBox, i: int, span: tuple[float, float]) -> None:
        edges = np.linspace(*span, BINS_1D + 1)
        counts, _ = np.histogram(self.samples[:, i], edges, density=True)
        top = counts.max()
        if self.true_values is not None:
            true_counts, _ = np.histogram(self.true_values[:, i], edges, density=True)
            top = max(top, true_counts.max())
            curve = pg.PlotCurveItem(edges, true_counts, stepMode="center", fillLevel=0,
                                     brush=pg.mkBrush(150, 150, 150, 110), pen=pg.mkPen("#777", width=1))
            view.addItem(curve)
            self.true_curves.append(curve)
        curve = pg.PlotCurveItem(edges, counts, stepMode="center", pen=pg.mkPen(SAMPLE_COLOUR, width=2))
        view.addItem(curve)
        self.sample_curves.append(curve)
        view.setRange(xRange=span, yRange=(0, 1.1 * top if top > 0 else 1.0), padding=0)

    def _pair(self, view: pg.ViewBox, i: int, j: int, ranges: list[tuple[float, float]]) -> None:
        (x0, x1), (y0, y1) = ranges[j], ranges[i]
        counts, _, _ = np.histogram2d(self.samples[:, j], self.samples[:, i], bins=BINS_2D, range=[(x0, x1), (y0, y1)])
        image = pg.ImageItem(np.sqrt(counts.T), axisOrder="row-major")  # sqrt: the tails stay visible
        image.setLookupTable(DENSITY_MAP.getLookupTable(nPts=256))
        image.setLevels((0.0, max(1.0, float(np.sqrt(counts.max())))))
        image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        view.addItem(image)
        self.images[(i, j)] = image
        if self.true_values is not None:
            x, y = ellipse(self.true_values[:, [j, i]])
            curve = pg.PlotCurveItem(x, y, pen=pg.mkPen(TRUE_COLOUR, width=1.5))
            view.addItem(curve)
            self.ellipses[(i, j)] = curve
        view.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)

    def _coefficient(self, view: pg.ViewBox, i: int, j: int, size: int, true_r: float | None) -> None:
        r = float(self.correlation[i, j])
        text = coefficient_text(r)
        colour = PALETTE[1] if text.startswith("+") else PALETTE[0] if text.startswith("-") else "#666"
        item = pg.TextItem(html=f'<span style="color:{colour}; font-size:{size}pt"><b>{text}</b></span>',
                           anchor=(0.5, 0.5))
        view.addItem(item)
        item.setPos(0.5, 0.55 if true_r is not None else 0.5)
        self.correlation_texts[(i, j)] = item
        if true_r is not None and np.isfinite(true_r):
            truth = pg.TextItem(html=f'<span style="color:#555; font-size:{max(7, size // 2)}pt">true '
                                     f'{coefficient_text(true_r)}</span>', anchor=(0.5, 0.5))
            view.addItem(truth)
            truth.setPos(0.5, 0.25)
        if np.isfinite(r):  # the cell tinted as the correlations table is: red positive, blue negative
            strength = int(min(1.0, abs(r)) * 90)
            view.setBackgroundColor(QColor(255, 255 - strength, 255 - strength) if r > 0
                                    else QColor(255 - strength, 255 - strength, 255))
        view.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
