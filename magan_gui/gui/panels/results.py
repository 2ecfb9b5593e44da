"""Results panel: the best-match table and the exports (result file, samples, emulator, pictures)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor, QFontDatabase
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.checkpoints import save_checkpoint
from ...core.errors import OutputError
from ...core.results import format_summary, write_result
from ..session import Session


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
        self.correlation = QTableWidget(0, 0)
        self.correlation.setToolTip("Correlation of the best-match parameters across the generator's samples")
        self.correlation.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        buttons = QHBoxLayout()
        for b in (self.export_button, self.emulator_button, self.pictures_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.saved = QLabel("")
        self.saved.setWordWrap(True)
        self.provenance = QPlainTextEdit()
        self.provenance.setReadOnly(True)
        self.provenance.setToolTip("Where the result came from: what the result file records for reproducing it")
        lower = QGridLayout()
        lower.addWidget(QLabel("correlations of the best-match parameters"), 0, 0)
        lower.addWidget(QLabel("provenance"), 0, 1)
        lower.addWidget(self.correlation, 1, 0)
        lower.addWidget(self.provenance, 1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary, 2)
        layout.addLayout(lower, 3)
        layout.addLayout(buttons)
        layout.addWidget(self.saved)

        self.export_button.clicked.connect(self.choose_export)
        self.emulator_button.clicked.connect(self.choose_emulator_export)
        self.pictures_button.clicked.connect(self.choose_pictures)
        session.result_changed.connect(self.show_result)
        session.emulator_changed.connect(lambda _: self._enable())
        self._enable()

    def _enable(self) -> None:
        self.export_button.setEnabled(self.session.result is not None)
        self.emulator_button.setEnabled(self.session.emulator is not None)

    def show_result(self, result) -> None:
        """Show the one-screen summary of a result (or clear it)."""
        self.summary.setPlainText("" if result is None else format_summary(result))
        self._show_correlation(result)
        self.provenance.setPlainText("" if result is None else provenance_text(result))
        self._enable()

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

