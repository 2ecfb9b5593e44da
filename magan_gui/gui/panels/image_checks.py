"""Image checks panel: do images simulated at the best match look like the true images?

It draws the result's image-space checks (``core.image_checks``): per-pixel mean and std maps of
both sets and the pull map between them, the row and column projections, the intensity
histogram, and the classifier two-sample test's verdict.  They need no true parameters, so this
is the panel that speaks for a calibration on real data.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..session import Session
from ..widgets import PALETTE, ColourBar, PlotExport

MAP_TITLES = (("true_mean", "true: mean"), ("simulated_mean", "best match: mean"), ("true_std", "true: std"),
              ("simulated_std", "best match: std"), ("pull", "pull (mean difference / its error)"))
PULL_LIMIT = 5.0  # the pull map's colour scale ends here: larger pulls are clearly significant anyway
EMPTY = "Run a calibration to see how images simulated at the best match compare with the true images."


def verdict_text(checks: dict) -> tuple[str, str]:
    """The classifier test's verdict as a sentence, and its colour."""
    test = checks.get("classifier")
    if not test:
        return f"No classifier test: {checks.get('note', 'too few images')}.", "#b35900"
    figures = (f"a classifier tells best-match images from the true ones with accuracy {test['accuracy']:.2f}; "
               f"two halves of the true images, {test['reference_accuracy']:.2f}; limit {test['limit']:.2f} "
               f"({checks['n_images']} images a side)")
    if checks["reproduces"]:
        return f"✓ The best match reproduces the true images: {figures}.", "#1b7a1b"
    return f"⚠ {checks['note'][0].upper()}{checks['note'][1:]}. ({figures})", "#b00020"


class ImageChecksPanel(QWidget):
    """Panel 6: the best match's image-space checks, drawn from the session's result."""

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.exports: list[PlotExport] = []
        self.verdict = QLabel(EMPTY)
        self.verdict.setWordWrap(True)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)

        self.maps = pg.GraphicsLayoutWidget()
        self.maps.setBackground("w")
        self.maps.addLabel("per-pixel maps: true images against images simulated at the best match", row=0, col=0,
                           colspan=len(MAP_TITLES), color="#222", size="10pt")
        self.map_items: dict[str, pg.ImageItem] = {}
        viridis, diverging = pg.colormap.get("viridis"), pg.colormap.get("CET-D1")
        for col, (key, title) in enumerate(MAP_TITLES):
            plot = self.maps.addPlot(row=1, col=col, title=title)
            plot.titleLabel.setText(title, size="9pt", color="#222")
            plot.invertY(True)
            plot.setAspectLocked(True)
            plot.hideAxis("left")
            plot.hideAxis("bottom")
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            item = pg.ImageItem(axisOrder="row-major")
            item.setLookupTable((diverging if key == "pull" else viridis).getLookupTable(nPts=256))
            plot.addItem(item)
            self.map_items[key] = item
            self.maps.ci.layout.setColumnStretchFactor(col, 1)   # every map as wide as the others
        self.maps.setMinimumHeight(200)
        self.exports.append(PlotExport(self.maps, "image-check maps", array=self._map_array))

        self.rows_plot = self._plot("row sums (each image's sum over columns)", "row", "mean sum")
        self.columns_plot = self._plot("column sums (each image's sum over rows)", "column", "mean sum")
        self.intensity_plot = self._plot("pixel intensities", "intensity", "fraction of pixels")
        self.intensity_plot.setLogMode(y=True)
        self.curves = {}
        for name, plot in (("rows", self.rows_plot), ("columns", self.columns_plot)):
            errors = pg.ErrorBarItem(pen=pg.mkPen("#444"), beam=0.3)
            plot.addItem(errors)
            self.curves[name] = (plot.plot([], [], pen=None, symbol="o", symbolSize=4, symbolBrush="#444",
                                           symbolPen=None, name="true"),
                                 errors, plot.plot([], [], pen=pg.mkPen(PALETTE[0], width=2), name="best match"))
        self.intensity_true = self.intensity_plot.plot([], [], stepMode="center", pen=pg.mkPen("#444", width=2),
                                                       name="true")
        self.intensity_simulated = self.intensity_plot.plot([], [], stepMode="center",
                                                            pen=pg.mkPen(PALETTE[0], width=2), name="best match")
        for plot, name, table in ((self.rows_plot, "row projections", lambda: self._projection_table("rows")),
                                  (self.columns_plot, "column projections",
                                   lambda: self._projection_table("columns")),
                                  (self.intensity_plot, "intensity histogram", self._intensity_table)):
            self.exports.append(PlotExport(plot, name, table=table))

        # the pull map's colours (a plain widget: pyqtgraph's colour-bar item crashed on deletion in tests)
        pull_scale = QHBoxLayout()
        pull_scale.addStretch(1)
        pull_scale.addWidget(QLabel("pull colours:"))
        pull_scale.addWidget(QLabel(f"−{PULL_LIMIT:g}"))
        self.pull_bar = ColourBar(diverging, (-PULL_LIMIT, PULL_LIMIT))
        self.pull_bar.setFixedWidth(220)
        pull_scale.addWidget(self.pull_bar)
        pull_scale.addWidget(QLabel(f"+{PULL_LIMIT:g} (and beyond)"))

        lower = QGridLayout()
        lower.addWidget(self.rows_plot, 0, 0)
        lower.addWidget(self.columns_plot, 0, 1)
        lower.addWidget(self.intensity_plot, 0, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.verdict)
        layout.addWidget(self.summary)
        layout.addWidget(self.maps, 3)
        layout.addLayout(pull_scale)
        layout.addLayout(lower, 2)
        session.result_changed.connect(self.show_result)
        self.checks: dict | None = None

    @staticmethod
    def _plot(title: str, x: str, y: str) -> pg.PlotWidget:
        plot = pg.PlotWidget(background="w")
        plot.setTitle(title, color="#222", size="10pt")
        plot.setLabel("bottom", x)
        plot.setLabel("left", y)
        plot.addLegend(offset=(-10, 30))
        plot.setMinimumSize(220, 170)
        return plot

    def show_result(self, result) -> None:
        """Draw a result's image checks, or clear the panel (None, or a result without them)."""
        checks = None if result is None else result.get("image_checks")
        self.checks = checks
        if checks is None:
            self.verdict.setText(EMPTY if result is None else "This result has no image checks (it was written "
                                 "by an older magan-gui).")
            self.verdict.setStyleSheet("")
            self.summary.setText("")
            # hidden rather than emptied: empty image and error-bar items crashed pyqtgraph on deletion in tests
            for item in self.map_items.values():
                item.setVisible(False)
            for true, errors, simulated in self.curves.values():
                true.setData([], [])
                errors.setVisible(False)
                simulated.setData([], [])
            self.intensity_true.setData([], [])
            self.intensity_simulated.setData([], [])
            return
        text, colour = verdict_text(checks)
        self.verdict.setText(text)
        self.verdict.setStyleSheet(f"color: {colour}; font-weight: bold")
        self.summary.setText(f"pull map: mean square {checks['pull_chi2_per_pixel']:.2f} per pixel (about 1 when the "
                             f"means agree within their errors), largest |pull| {checks['max_abs_pull']:.1f}")
        maps = {k: np.asarray(v, np.float32) for k, v in checks["maps"].items()}
        brightest = max(float(maps[k].max()) for k in ("true_mean", "simulated_mean")) or 1.0
        widest = max(float(maps[k].max()) for k in ("true_std", "simulated_std")) or 1.0
        for key, item in self.map_items.items():
            levels = ((-PULL_LIMIT, PULL_LIMIT) if key == "pull" else (0.0, widest) if key.endswith("std")
                      else (0.0, brightest))
            item.setImage(maps[key], levels=levels, autoLevels=False)
            item.setVisible(True)
        proj = {k: np.asarray(v) for k, v in checks["projections"].items()}
        for name, (true, errors, simulated) in self.curves.items():
            x = np.arange(len(proj[f"{name}_true"]))
            true.setData(x, proj[f"{name}_true"])
            errors.setData(x=x, y=proj[f"{name}_true"], height=2 * proj[f"{name}_true_error"])
            errors.setVisible(True)
            simulated.setData(x, proj[f"{name}_simulated"])
        hist = checks["intensity_histogram"]
        edges = np.asarray(hist["edges"])
        floor = 1e-7  # empty bins on the log scale
        self.intensity_true.setData(edges, np.maximum(np.asarray(hist["true"]), floor))
        self.intensity_simulated.setData(edges, np.maximum(np.asarray(hist["simulated"]), floor))

    def _map_array(self) -> np.ndarray | None:
        """The five maps stacked (5, H, W), in MAP_TITLES' order, for the .npy export."""
        if self.checks is None:
            return None
        return np.stack([np.asarray(self.checks["maps"][key], np.float32) for key, _ in MAP_TITLES])

    def _projection_table(self, name: str) -> tuple[list[str], list[list]]:
        header = [name[:-1], "true_mean_sum", "true_error", "best_match_mean_sum", "best_match_error"]
        if self.checks is None:
            return header, []
        p = self.checks["projections"]
        columns = [p[f"{name}_true"], p[f"{name}_true_error"], p[f"{name}_simulated"], p[f"{name}_simulated_error"]]
        return header, [[i, *values] for i, values in enumerate(zip(*columns))]

    def _intensity_table(self) -> tuple[list[str], list[list]]:
        header = ["bin_low", "bin_high", "true_fraction", "best_match_fraction"]
        if self.checks is None:
            return header, []
        h = self.checks["intensity_histogram"]
        return header, [list(row) for row in zip(h["edges"][:-1], h["edges"][1:], h["true"], h["simulated"])]
