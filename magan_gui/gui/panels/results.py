"""Results panel: the best-match table, the corner plot of the samples, the exports (result file, samples,
emulator, pictures) and the comparison with other results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.checkpoints import save_checkpoint
from ...core.errors import OutputError
from ...core.results import format_summary, write_result, write_tunes
from ..session import Session
from ..widgets import PlotExport
from .comparison import ComparisonWindow
from .corner import CornerPlot


def provenance_text(result: dict) -> str:
    """The result's provenance, a line per fact."""
    true, emulator, cal = result["true_data"], result["emulator"], result["calibration"]
    fidelity = emulator.get("fidelity_mse")
    lines = [
        f"true images: {true['n_images']} of {true['image_shape'][0]}x{true['image_shape'][1]} px, "
        f"{'closure test' if true['true_parameters_known'] else 'true parameters unknown'}",
        f"  source: {true['source']}",
        f"  SHA-256: {true['sha256']}",
        f"emulator: {emulator.get('path') or '(trained in this session)'}, mode {emulator.get('mode')}, "
        f"{emulator.get('iterations')} iterations, held-out {emulator.get('fidelity_metric') or 'pixel MSE'} "
        f"{fidelity:.5f}" if fidelity is not None else
        "emulator: (unknown)",
        f"calibration: {cal['iterations']} iterations"
        f"{' (stopped early)' if cal.get('stopped_early') else ''}, discriminator on "
        f"{cal['config'].get('discriminator_on')}, batch {cal['config'].get('batch_size')}"
        + (f", simulation budget {cal['config']['simulation_budget']:,}" if cal['config'].get('simulation_budget')
           else ""),
        f"seed {result['seed']}, device {result['device']}, {result['wall_time_s']:.0f} s",
        *([] if "simulations" not in result else [
            "simulator images consumed: {total:,} (bank {bank:,}, pretraining {pretraining:,}, calibration "
            "{calibration:,}, result checks {result_checks:,})".format(**result["simulations"])]),
        "versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()),
        f"created {result['created']}",
    ]
    return "\n".join(lines)


class ResultsPanel(QWidget):
    """Panel 4: what the calibration found, and the buttons that export it."""

    error = Signal(str)
    message = Signal(str)
    save_pictures_requested = Signal(str)   # a folder; the main window grabs every panel into it

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.last_folder = str(Path.cwd())
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.summary.setPlaceholderText("Run a calibration to see the best-match parameters here.")
        self.export_button = QPushButton("Export best-match parameters…")
        self.export_button.setToolTip("Write the result JSON (means, stds, quantiles, correlations, provenance) "
                                      "and the samples as CSV beside it (Ctrl+E)")
        self.emulator_button = QPushButton("Export emulator…")
        self.emulator_button.setToolTip("Save the trained emulator (.pt, for this app and magan) or as a "
                                        "torch.export program (.pt2) that runs without magan-gui")
        self.pictures_button = QPushButton("Save plots as PNG…")
        self.pictures_button.setToolTip("Save a picture of every panel (grids, histograms, curves) into a folder")
        self.tunes_button = QPushButton("Export eigentunes…")
        self.tunes_button.setToolTip("Write the best match and its ±1σ variations along the principal axes of the "
                                     "best-match covariance into a folder: eigentunes.json and one 'name value' "
                                     "text file per variation, for re-simulating (as magan tune does)")
        self.compare_button = QPushButton("Compare with other results…")
        self.compare_button.setToolTip("Open a window that overlays this result and other result files (or "
                                       "projects): histograms per parameter and a table of the differences")
        self.corner = CornerPlot(session)
        self.corner_export = PlotExport(self.corner, "corner plot")
        self.corner_export.written.connect(self._exported)
        self.corner_export.failed.connect(self.error)
        self.comparison: ComparisonWindow | None = None
        self.correlation = QTableWidget(0, 0)
        self.correlation.setToolTip("Correlation of the best-match parameters across the generator's samples")
        self.correlation.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        buttons = QHBoxLayout()
        for b in (self.export_button, self.tunes_button, self.emulator_button, self.pictures_button,
                  self.compare_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.saved = QLabel("")
        self.saved.setWordWrap(True)
        self.provenance = QPlainTextEdit()
        self.provenance.setReadOnly(True)
        self.provenance.setToolTip("Where the result came from: what the result file records for reproducing it")
        # the texts stacked on the left, wide enough for the summary's table not to wrap at the usual window size;
        # the corner plot on the right; splitters to trade space
        texts = QSplitter(Qt.Orientation.Vertical)
        texts.setChildrenCollapsible(False)
        texts.addWidget(self.summary)
        for title, widget in (("correlations of the best-match parameters", self.correlation),
                              ("provenance", self.provenance)):
            box = QWidget()
            box_layout = QVBoxLayout(box)
            box_layout.setContentsMargins(0, 4, 0, 0)
            box_layout.addWidget(QLabel(title))
            box_layout.addWidget(widget)
            texts.addWidget(box)
        texts.setSizes([300, 170, 200])
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(texts)
        self.splitter.addWidget(self.corner)
        self.splitter.setSizes([690, 560])   # proportions: the window's width is shared in this ratio
        layout = QVBoxLayout(self)
        layout.addWidget(self.splitter, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.saved)

        self.export_button.clicked.connect(self.choose_export)
        self.emulator_button.clicked.connect(self.choose_emulator_export)
        self.tunes_button.clicked.connect(self.choose_tunes_folder)
        self.pictures_button.clicked.connect(self.choose_pictures)
        self.compare_button.clicked.connect(self.open_comparison)
        session.result_changed.connect(self.show_result)
        session.emulator_changed.connect(lambda _: self._enable())
        self._enable()

    def _enable(self) -> None:
        self.export_button.setEnabled(self.session.result is not None)
        self.tunes_button.setEnabled(bool(self.session.result and self.session.result.get("eigentunes")))
        self.emulator_button.setEnabled(self.session.emulator is not None)

    def show_result(self, result) -> None:
        """Show the one-screen summary of a result (or clear it)."""
        self.summary.setPlainText("" if result is None else format_summary(result))
        self._show_correlation(result)
        self.provenance.setPlainText("" if result is None else provenance_text(result))
        self._enable()
        if self.comparison is not None:  # an open comparison follows this session's result
            self.comparison.set_session_run(*self._session_run())

    def _session_run(self) -> tuple[dict | None, np.ndarray | None]:
        outcome = self.session.outcome
        return self.session.result, None if outcome is None else outcome.samples

    def _exported(self, path: str) -> None:
        self.saved.setText(f"exported {path}")
        self.message.emit(f"exported {path}")

    def open_comparison(self) -> ComparisonWindow:
        """Show the comparison window (beside this one, not modal), this session's result in it first."""
        if self.comparison is None:
            self.comparison = ComparisonWindow(self)
            self.comparison.last_folder = self.last_folder
            self.comparison.set_session_run(*self._session_run())
        self.comparison.show()
        self.comparison.raise_()
        self.comparison.activateWindow()
        return self.comparison

    def _show_correlation(self, result) -> None:
        if result is None:
            self.correlation.setRowCount(0)
            self.correlation.setColumnCount(0)
            return
        names, matrix = result["correlation"]["names"], result["correlation"]["matrix"]
        self.correlation.setRowCount(len(names))
        self.correlation.setColumnCount(len(names))
        self.correlation.setHorizontalHeaderLabels(names)
        self.correlation.setVerticalHeaderLabels(names)
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                item = QTableWidgetItem(f"{value:+.2f}")
                strength = int(min(1.0, abs(value)) * 120)
                item.setBackground(QColor(255, 255 - strength, 255 - strength) if value > 0
                                   else QColor(255 - strength, 255 - strength, 255))
                self.correlation.setItem(i, j, item)
        self.correlation.resizeColumnsToContents()

    def choose_export(self) -> None:
        """Ask where to write the result; the dialog confirms overwriting."""
        path, _ = QFileDialog.getSaveFileName(self, "Export best-match parameters",
                                              str(Path(self.last_folder) / "result.json"), "JSON (*.json)")
        if path:
            self.export_result(path, overwrite=True)

    def export_result(self, path: str, overwrite: bool = False) -> bool:
        """Write the result JSON and samples CSV; refuse to overwrite unless told (the dialog asked)."""
        if self.session.result is None:
            self.error.emit("there is no result to export yet: run a calibration first")
            return False
        path = path if path.endswith(".json") else path + ".json"
        try:
            csv_path = write_result(path, self.session.result, self.session.outcome.samples, overwrite=overwrite)
        except OutputError as exc:
            self.error.emit(str(exc))
            return False
        self.last_folder = str(Path(path).parent)
        self.saved.setText(f"wrote {path} and {csv_path}")
        self.message.emit(f"result exported to {path}")
        return True

    def choose_tunes_folder(self) -> None:
        """Ask for a folder for the eigentune files."""
        folder = QFileDialog.getExistingDirectory(self, "Folder for the eigentunes", self.last_folder)
        if folder:
            self.export_tunes(folder, overwrite=True)

    def export_tunes(self, folder: str, overwrite: bool = False) -> bool:
        """Write the best match and its eigentunes into ``folder``; refuse to replace files unless told."""
        if not (self.session.result and self.session.result.get("eigentunes")):
            self.error.emit("there are no eigentunes to export: run a calibration first")
            return False
        try:
            paths = write_tunes(folder, self.session.result, overwrite=overwrite)
        except OutputError as exc:
            self.error.emit(str(exc))
            return False
        self.last_folder = folder
        self.saved.setText(f"wrote {len(paths)} files to {folder}: eigentunes.json, best_match.txt and "
                           f"{len(paths) - 2} variations")
        self.message.emit(f"eigentunes written to {folder}")
        return True

    def choose_emulator_export(self) -> None:
        """Ask where to save the emulator (.pt) or export it (.pt2)."""
        path, _ = QFileDialog.getSaveFileName(self, "Export emulator", str(Path(self.last_folder) / "emulator.pt"),
                                              "Emulator for magan (*.pt);;torch.export program (*.pt2)")
        if path:
            self.export_emulator(path)

    def export_emulator(self, path: str) -> bool:
        """Save the emulator as .pt (reloadable here) or .pt2 (torch.export)."""
        emulator = self.session.emulator
        if emulator is None:
            self.error.emit("there is no emulator yet: pretrain or load one first")
            return False
        try:
            if path.endswith(".pt2"):
                emulator.export_program(path)
            else:
                save_checkpoint(path, emulator.payload())
        except OSError as exc:
            self.error.emit(f"{path}: {exc}")
            return False
        self.saved.setText(f"emulator written to {path}")
        self.message.emit(f"emulator written to {path}")
        return True

    def choose_pictures(self) -> None:
        """Ask for a folder for the panel pictures."""
        folder = QFileDialog.getExistingDirectory(self, "Folder for the pictures", self.last_folder)
        if folder:
            self.save_pictures_requested.emit(folder)

