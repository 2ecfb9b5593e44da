"""The run comparison window: several results (files, projects, this session's) overlaid parameter by
parameter, with the table ``magan compare`` prints."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFontDatabase
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.comparison import (
    COLUMNS,
    Comparison,
    ResultRun,
    compare_runs,
    comparison_footnotes,
    comparison_rows,
    load_run,
    run_from_result,
)
from ...core.errors import MaganError
from ..widgets import PALETTE, PlotExport

SESSION_LABEL = "this session"
BINS = 50

PULL_ALARM = 2.0   # a difference of more than this many combined uncertainties is shaded in the table


def run_colour(index: int) -> str:
    """The colour of the run at ``index`` in the list, in every plot and in the table."""
    return PALETTE[index % len(PALETTE)]


def plot_columns(count: int) -> int:
    """Histograms per row: up to four side by side (lines), else three (rows of equal width)."""
    return count if count <= 4 else 3


class ComparisonWindow(QWidget):
    """A window of its own (never modal) comparing results: the runs loaded, one overlaid histogram per
    parameter they share, and the comparison table (the first run is the reference)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("runComparison")
        self.setWindowTitle("Compare results")
        self.runs: list[ResultRun] = []
        self.comparison: Comparison | None = None
        self.last_folder = str(Path.cwd())
        self.plots: dict[str, pg.PlotWidget] = {}
        self.curves: dict[str, dict[str, pg.PlotDataItem]] = {}       # parameter -> run label -> histogram
        self.bands: dict[str, dict[str, pg.LinearRegionItem]] = {}    # ... -> mean ± std, for runs without samples

        self.add_button = QPushButton("Add result files…")
        self.add_button.setToolTip("Add result files (.json, with their .samples.csv beside them) or project files "
                                   "(.magan) to the comparison")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take the selected run out of the comparison")
        self.reference_button = QPushButton("Make reference")
        self.reference_button.setToolTip("Compare the other runs with the selected one (the table's first run)")
        self.run_list = QListWidget()
        self.run_list.setToolTip("The runs compared; the first is the reference the differences are taken from")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.key = QLabel("")   # one legend above the histograms: in each plot it would cover the curves
        self.key.setWordWrap(True)
        self.plot_area = QWidget()
        self.plot_grid = QGridLayout(self.plot_area)
        self.plot_grid.setContentsMargins(0, 0, 0, 0)
        plots = QWidget()
        plots_layout = QVBoxLayout(plots)
        plots_layout.setContentsMargins(0, 0, 0, 0)
        plots_layout.addWidget(self.key)
        plots_layout.addWidget(self.plot_area, 1)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)  # a dense table
        self.table.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.table.setToolTip("Δ: difference from the reference run; Δ/σ: in units of the combined uncertainty "
                              f"(shaded beyond {PULL_ALARM:g})")
        self.footnotes = QLabel("")
        self.footnotes.setWordWrap(True)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(QLabel("runs (the first is the reference)"))
        side_layout.addWidget(self.run_list, 1)
        for button in (self.add_button, self.reference_button, self.remove_button):
            side_layout.addWidget(button)
        upper = QSplitter(Qt.Orientation.Horizontal)
        upper.addWidget(side)
        upper.addWidget(plots)
        upper.setStretchFactor(1, 1)
        upper.setSizes([320, 800])
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.table, 1)
        lower_layout.addWidget(self.footnotes)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(upper)
        splitter.addWidget(lower)
        splitter.setSizes([400, 330])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        self.resize(1120, 780)

        self.add_button.clicked.connect(self.choose_files)
        self.remove_button.clicked.connect(self.remove_selected)
        self.reference_button.clicked.connect(self.make_reference)
        self.run_list.currentRowChanged.connect(lambda _: self._enable())
        self.refresh()

    # -- the runs ---------------------------------------------------------------------------------------
    def choose_files(self) -> None:
        """Ask for result or project files, then add them."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Add results to compare", self.last_folder,
                                                "Results and projects (*.json *.magan);;All files (*)")
        if paths:
            self.add_files(paths)

    def add_files(self, paths: Sequence[str | Path]) -> list[str]:
        """Load result files (or projects) into the comparison; returns the problems, also said in the window."""
        problems = []
        for path in paths:
            path = Path(path)
            if any(run.source == str(path) for run in self.runs):
                problems.append(f"{path}: already in the comparison")
                continue
            try:
                run = load_run(path, self._label_for(path))
            except MaganError as exc:
                problems.append(str(exc))
                continue
            self.runs.append(run)
            self.last_folder = str(path.parent)
        self.refresh()
        if problems:
            self._say("; ".join(problems), error=True)
        return problems

    def _label_for(self, path: Path) -> str:
        """The file name, or folder/name when another run has the name, numbered if still taken."""
        taken = {run.label for run in self.runs}
        label = path.name if path.name not in taken else f"{path.parent.name}/{path.name}"
        k = 2
        while label in taken:
            label, k = f"{path.name} ({k})", k + 1
        return label

    def set_session_run(self, result: dict | None, samples: np.ndarray | None) -> None:
        """Put this session's result first (the reference), replacing an earlier one; None takes it out."""
        self.runs = [run for run in self.runs if run.source != SESSION_LABEL]
        if result is not None:
            try:
                self.runs.insert(0, run_from_result(result, samples, SESSION_LABEL, SESSION_LABEL))
            except MaganError as exc:
                self._say(str(exc), error=True)
        self.refresh()

    def remove_selected(self) -> None:
        """Take the selected run out of the comparison."""
        row = self.run_list.currentRow()
        if 0 <= row < len(self.runs):
            del self.runs[row]
            self.refresh()

    def make_reference(self) -> None:
        """Move the selected run to the top: the others are compared with it."""
        row = self.run_list.currentRow()
        if 0 < row < len(self.runs):
            self.runs.insert(0, self.runs.pop(row))
            self.refresh()
            self.run_list.setCurrentRow(0)

    def _enable(self) -> None:
        row = self.run_list.currentRow()
        self.remove_button.setEnabled(0 <= row < len(self.runs))
        self.reference_button.setEnabled(0 < row < len(self.runs))

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet("color: #b00020;" if error else "")
        self.status.setText(text)

    # -- drawing ----------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw the list, the histograms and the table from the runs."""
        self.run_list.clear()
        for k, run in enumerate(self.runs):
            samples = f"{len(run.samples):,} samples" if run.samples is not None else "no samples"
            item = QListWidgetItem(f"■ {run.label}  ({run.simulator}, {samples})")
            item.setForeground(QColor(run_colour(k)))
            item.setToolTip(run.source)
            self.run_list.addItem(item)
        self._enable()
        self.comparison = None
        if not self.runs:
            self._draw([], None)
            self._say("Add result files (or project files) to compare their best-match parameters.")
            return
        try:
            self.comparison = compare_runs(self.runs)
        except MaganError as exc:
            self._draw([], None)
            self._say(str(exc), error=True)
            return
        self._draw(self.comparison.names, self.comparison)
        without = [run.label for run in self.runs if run.samples is None]
        lines = [] if len(self.runs) > 1 else ["add another result to compare with this one"]
        if without:
            lines.append(f"{', '.join(without)}: no samples, so no histogram: the mean ± std is drawn as a band")
        self._say("; ".join(lines))

    def _draw(self, names: list[str], comparison: Comparison | None) -> None:
        for plot in self.plots.values():
            self.plot_grid.removeWidget(plot)
            plot.hide()
            plot.deleteLater()
        self.plots, self.curves, self.bands = {}, {}, {}
        self.table.setRowCount(0)
        self.footnotes.setText("")
        self.key.setText("")
        if comparison is None:
            return
        columns = plot_columns(len(names))
        for k, name in enumerate(names):
            plot = self._histogram(name)
            self.plot_grid.addWidget(plot, k // columns, k % columns)
            self.plots[name] = plot
        self.key.setText(" &nbsp;&nbsp; ".join(
            f'<span style="color:{run_colour(k)}"><b>{"━━" if run.samples is not None else "╍╍"}</b></span> '
            + html.escape(run.label) + ("" if run.samples is not None else " (mean ± std)")
            for k, run in enumerate(self.runs)))
        rows = comparison_rows(comparison)
        self.table.setRowCount(len(rows))
        for r, (entry, cells) in enumerate(zip(comparison.entries, rows)):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if c == 1:
                    item.setForeground(QColor(run_colour(entry.run)))
                pull = {5: entry.mean_pull, 7: entry.std_pull}.get(c)
                if pull is not None and abs(pull) > PULL_ALARM:
                    item.setBackground(QColor(255, 215, 215))
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.footnotes.setText("\n".join(comparison_footnotes(comparison)))

    def _histogram(self, name: str) -> pg.PlotWidget:
        """One parameter's plot: every run's samples as a density histogram, or its mean ± std as a band."""
        runs = self.runs
        label = runs[0].parameter(name).label
        plot = pg.PlotWidget(background="w")
        plot.setMinimumSize(160, 160)
        plot.setTitle(label, color="#222", size="10pt")
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.getAxis("left").setStyle(showValues=False)
        plot.setLabel("left", "density")
        columns = [run.column(name) for run in runs]
        pooled = [c for c in columns if c is not None]
        figures = [run.parameter(name) for run, c in zip(runs, columns) if c is None]
        bounds = [(p.mean - p.std, p.mean + p.std) for p in figures]
        lows = [np.percentile(c, 0.5) for c in pooled] + [b[0] for b in bounds]
        highs = [np.percentile(c, 99.5) for c in pooled] + [b[1] for b in bounds]
        lo, hi = min(lows), max(highs)
        margin = 0.1 * (hi - lo) if hi > lo else max(abs(lo) * 1e-3, 1e-6)
        edges = np.linspace(lo - margin, hi + margin, BINS + 1)
        self.curves[name], self.bands[name] = {}, {}
        for k, (run, column) in enumerate(zip(runs, columns)):
            colour = run_colour(k)
            if column is not None:
                counts, _ = np.histogram(column, edges, density=True)
                self.curves[name][run.label] = plot.plot(edges, counts, stepMode="center",
                                                         pen=pg.mkPen(colour, width=2))
                continue
            p = run.parameter(name)
            fill = QColor(colour)
            fill.setAlpha(45)
            band = pg.LinearRegionItem((p.mean - p.std, p.mean + p.std), movable=False, brush=fill,
                                       pen=pg.mkPen(colour, width=1))
            plot.addItem(band)
            plot.addItem(pg.InfiniteLine(p.mean, angle=90, pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine)))
            self.bands[name][run.label] = band
        plot.setXRange(edges[0], edges[-1], padding=0)
        export = PlotExport(plot, f"{name} comparison")
        export.written.connect(lambda path: self._say(f"exported {path}"))
        export.failed.connect(lambda why: self._say(why, error=True))
        return plot
