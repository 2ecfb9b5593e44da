"""Pretraining panel: train the emulator and watch it learn the simulator (the paper's Fig. 4 and 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core import workflow
from ...core.checkpoints import CheckpointError
from ...core.emulator import TrainedEmulator
from ...core.pretraining import PRETRAIN_MODES, PretrainConfig, emulator_verdict, starts_to_try
from ...core.progress import PretrainSnapshot
from ..session import Session
from ..widgets import ColourScale, ImageGrid
from .run_panel import RunPanel

MAX_HISTORY_COLUMNS = 6


def spaced_indices(last: int, count: int) -> list[int]:
    """Up to ``count`` snapshot indices from 0 to ``last``, spaced geometrically (early ones matter)."""
    if last <= 0:
        return [0]
    picks = np.unique(np.round(np.geomspace(1, last + 1, count)).astype(int) - 1)
    return [int(i) for i in picks]


class PretrainingPanel(RunPanel):
    """Panel 2: the emulator against the simulator on fixed parameter sets, losses and fidelity."""

    stage = "pretrain"
    run_name = "pretraining"

    @property
    def preparing(self) -> str:
        """What the run does before its first iteration."""
        if self.chosen_bank() is None:
            return "starting: simulating the held-out images (fixed parameter sets) before the first iteration…"
        config, simulator = self.config(), self.session.simulator
        if simulator is None or starts_to_try(simulator, config) < 2:
            return "starting: loading the bank…"
        return (f"starting: trying {config.bank_starts} initialisations on the bank ({config.start_iterations} "
                "iterations each) to train the best one…")

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(session, parent)
        self.mode = QComboBox()
        self.mode.addItems(PRETRAIN_MODES)
        self.mode.setToolTip("auto: pixel loss when the emulator can see the simulator's noise (fastest); "
                             "siamese: the paper's adversarial Siamese training; siamese+pixel: both")
        self.add_common_settings("Emulator updates; the quick preset uses 2000 (lines) or 3000 (circles), "
                                 "and 5000 (lines) or 3000 (circles) when learning from a bank",
                                 "Parameter sets simulated per update",
                                 "Random seed: the same seed and settings give the same emulator",
                                 [("mode", self.mode)])
        self.from_bank = QCheckBox("learn from the bank")
        self.from_bank.setToolTip("Train on the stored simulations of the Bank panel instead of fresh ones: "
                                  "the run then calls the simulator not once")
        self.from_bank.setEnabled(False)
        self.from_bank.toggled.connect(self._source_changed)
        self.settings.addRow("", self.from_bank)
        self.load_button = QPushButton("Load emulator…")
        self.load_button.setToolTip("Use an emulator trained before (a file from magan pretrain or this app)")
        self.controls.addWidget(self.load_button)
        self.controls.addStretch(1)

        self.grid = ImageGrid("emulator over training vs simulator")
        # every column, the difference included, is drawn over the grid's fixed levels: the scale says so
        low, high = self.grid.levels
        self.difference_scale = ColourScale(self.grid, "colours (every column):", "largest |difference|")
        self.difference_scale.setToolTip(
            f"The images and the |emulator − simulator| column share one fixed colour scale, {low:g} to {high:g} "
            "(images in [0, 1]); the marker shows the largest difference in the snapshot shown")
        self.losses.setLogMode(y=True)  # a pixel MSE spans decades
        self.difference = QCheckBox("show |emulator − simulator|")
        self.difference.setChecked(True)
        self.difference.setToolTip("Add a column with the absolute pixel difference of the latest emulator")
        self.fidelity = pg.PlotWidget(background="w")
        self.fidelity_title = "pixel MSE"
        self.fidelity.setTitle("held-out pixel MSE", color="#222", size="10pt")
        self.fidelity.setLabel("left", "images in [-1, 1]")  # the scale the figure is measured on, in exports too
        self.fidelity.getAxis("left").enableAutoSIPrefix(False)  # a log axis reads 0.09, not 9·10¹ (x0.001)
        self.fidelity.setLogMode(y=True)
        self.fidelity.setLabel("bottom", "iteration")
        self.fidelity.showGrid(x=True, y=True, alpha=0.2)
        self.fidelity_curve = self.fidelity.plot([], [], pen=pg.mkPen("#d62728", width=2), symbol="o", symbolSize=4)
        self.fidelity_points: tuple[list[int], list[float]] = ([], [])  # as measured (the plot holds log10 of them)
        self.add_export(self.grid, "pretraining images", array=lambda: self.grid.last_array)
        self.add_export(self.fidelity, "pretraining fidelity", table=self._fidelity_table)

        grid_column = QVBoxLayout()
        grid_column.addWidget(self.grid, 1)
        grid_column.addWidget(self.difference_scale)
        right = QGridLayout()
        right.addLayout(grid_column, 0, 0, 2, 1)
        right.addWidget(self.losses, 0, 1)
        right.addWidget(self.fidelity, 1, 1)
        options = QHBoxLayout()
        options.addWidget(self.difference)
        options.addWidget(self.smoothing)
        right.addLayout(options, 2, 0, 1, 2)
        right.addWidget(self.scrubber, 3, 0, 1, 2)
        right.setColumnStretch(0, 3)
        right.setColumnStretch(1, 2)
        layout = QHBoxLayout(self)
        layout.addWidget(self.controls_widget)
        layout.addLayout(right, 1)

        self.load_button.clicked.connect(self.choose_emulator)
        self.difference.toggled.connect(lambda _: self.show_snapshot(self.scrubber.slider.value()))
        session.simulator_changed.connect(self.apply_defaults)
        session.bank_changed.connect(self._bank_changed)
        self.last_folder = str(Path.cwd())

    def _bank_changed(self, path: str | None) -> None:
        self.from_bank.setEnabled(path is not None and not self.running)
        self.from_bank.setChecked(path is not None)
        self.from_bank.setText(f"learn from the bank ({self.session.bank_size:,} images)" if path
                               else "learn from the bank")

    def _source_changed(self, from_bank: bool) -> None:
        """The preset's iterations for the chosen source: more from a bank, where revisiting costs nothing."""
        config = self.session.stage_configs().pretrain
        self.iterations.setValue((config.for_bank() if from_bank else config).iterations)

    def chosen_bank(self) -> str | None:
        """The bank pretraining learns from, or None for fresh simulations."""
        return self.session.bank_path if self.from_bank.isChecked() else None

    def set_running(self, running: bool) -> None:
        super().set_running(running)
        if hasattr(self, "from_bank"):  # the base class calls this before the checkbox exists
            self.from_bank.setEnabled(not running and self.session.bank_path is not None)

    def apply_defaults(self, simulator) -> None:
        """Settings from the session's preset for this simulator."""
        config = self.session.stage_configs().pretrain
        self.show_config(config.for_bank() if self.chosen_bank() else config)
        self.mode.setCurrentText(config.mode)

    def config(self) -> PretrainConfig:
        """The settings as a PretrainConfig."""
        base = self.session.stage_configs().pretrain
        base.mode = self.mode.currentText()
        return self.read_config(base)

    def make_job(self, resume: bool = False):
        simulator = self.session.simulator
        if simulator is None:
            self.error.emit("choose a simulator on the True images panel first")
            return None
        config, device = self.config(), self.session.device
        state = self.saved_state if resume else None
        bank = self.chosen_bank()

        def job(observe, control) -> workflow.Pretraining:
            return workflow.pretrain(simulator, config, device, observer=observe, control=control, resume=state,
                                     bank=bank)

        return job

    def draw(self, index: int) -> None:
        snap: PretrainSnapshot = self.snapshots[index]
        picks = spaced_indices(index, MAX_HISTORY_COLUMNS)
        columns = [self.snapshots[i].emulated for i in picks] + [snap.simulated]
        caption = "emulator at iterations " + ", ".join(str(self.snapshots[i].iteration) for i in picks)
        caption += "; simulator"
        difference = np.abs(snap.emulated - snap.simulated)
        if self.difference.isChecked():
            columns.append(difference)
            caption += "; |difference|"
        rows = [[col[r] for col in columns] for r in range(columns[0].shape[0])]
        self.grid.set_rows(rows, caption)
        self.difference_scale.mark(float(difference.max()) if self.difference.isChecked() else None)
        self._draw_fidelity([m for m in self.metrics_log if m[0] <= snap.iteration])

    def _draw_fidelity(self, metrics: list) -> None:
        """One point per evaluation (snapshots repeat the latest one until the next)."""
        points = {int(m.get("fidelity_iteration", step)): m["fidelity_mse"] for step, m in metrics
                  if "fidelity_mse" in m}
        steps = sorted(points)
        self.fidelity_points = (steps, [points[k] for k in steps])
        self.fidelity_curve.setData(*self.fidelity_points)

    def _fidelity_table(self) -> tuple[list[str], list[list]]:
        """The plotted evaluations: iteration and the held-out figure."""
        steps, values = self.fidelity_points
        return ["iteration", f"held-out {self.fidelity_title}"], [list(row) for row in zip(steps, values)]

    def describe(self, snap: PretrainSnapshot) -> str:
        text = super().describe(snap)
        if snap.fidelity_mse is not None:
            text += f" · held-out {snap.fidelity_metric} {snap.fidelity_mse:.5f}"
        if snap.fidelity_metric != self.fidelity_title:
            self.fidelity_title = snap.fidelity_metric
            self.fidelity.setTitle(f"held-out {snap.fidelity_metric}", color="#222", size="10pt")
        return text

    def restore_history(self, history: dict) -> None:
        super().restore_history(history)
        self._draw_fidelity(history.get("metrics", []))

    def on_finished(self, pretraining: workflow.Pretraining) -> None:
        meta = pretraining.emulator.meta
        if pretraining.diverged and not meta["iteration"]:  # nothing learnt: the session keeps what it had
            self.status.setText("diverged before it learnt anything: no emulator was kept")
            return
        ending = " Stopped early: press Continue to train it further." if pretraining.stopped else ""
        state = "diverged" if pretraining.diverged else "stopped" if pretraining.stopped else "done"
        self.status.setText(f"{state}: {meta['iteration']} iterations in "
                            f"{meta['wall_time']:.0f} s. The emulator's {emulator_verdict(meta)[1]}.{ending}")
        self.session.set_emulator(pretraining.emulator, state=pretraining.state)

    def choose_emulator(self) -> None:
        """Load an emulator file for the current simulator."""
        path, _ = QFileDialog.getOpenFileName(self, "Emulator", self.last_folder, "Emulator (*.pt);;All files (*)")
        if path:
            self.load_emulator(path)

    def load_emulator(self, path: str) -> bool:
        """Load an emulator file if it matches the simulator; say why not otherwise."""
        try:
            emulator = TrainedEmulator.load(path)
        except CheckpointError as exc:
            self.error.emit(str(exc))
            return False
        simulator = self.session.simulator
        if simulator is not None and ([p.name for p in emulator.parameters] != [p.name for p in simulator.parameters]
                                      or tuple(emulator.image_shape) != tuple(simulator.image_shape)):
            self.error.emit(f"{path} emulates {emulator.meta.get('simulator')!r}, not the current simulator "
                            f"{simulator.name!r}")
            return False
        self.last_folder = str(Path(path).parent)
        self.session.set_emulator(emulator, path)
        self.status.setText(f"loaded {path}: {emulator_verdict(emulator.meta)[1]}")
        return True
