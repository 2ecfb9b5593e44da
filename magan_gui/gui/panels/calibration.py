"""Calibration panel: the generator's parameter distributions forming, live (the paper's Tables I/II, Fig. 5/7)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core import workflow
from ...core.calibration import DISCRIMINATOR_INPUTS, CalibrationConfig
from ...core.errors import ConfigError
from ...core.pretraining import emulator_verdict
from ...core.progress import CalibrationSnapshot
from ..session import Session
from ..widgets import HISTOGRAM_KEY, ImageGrid, ParameterHistogram
from .pretraining import MAX_HISTORY_COLUMNS, spaced_indices
from .run_panel import RunPanel

TABLE_COLUMNS = ["best\nmean", "best\nstd", "true\nmean", "true\nstd", "bias\n/ true σ", "std\nratio", "default",
                 "best 68%\ninterval"]


class CalibrationPanel(RunPanel):
    """Panel 3: histograms per parameter against the references, the live table, images and losses."""

    stage = "calibrate"
    run_name = "calibration"
    preparing = "starting: simulating the evaluation images before the first iteration…"

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(session, parent)
        self.disc_input = QComboBox()
        self.disc_input.addItems(DISCRIMINATOR_INPUTS)
        self.disc_input.setToolTip("Fakes shown to the discriminator: simulated T(G(z)) (the paper's standard, "
                                   "more accurate) or emulated E(G(z)) (faster when the simulator is slow)")
        self.budget_input = QSpinBox()
        self.budget_input.setRange(0, 1_000_000_000)
        self.budget_input.setSingleStep(1000)
        self.budget_input.setGroupSeparatorShown(True)
        self.budget_input.setSpecialValueText("no cap")
        self.budget_input.setToolTip("The most fresh simulator images this calibration may make, evaluations "
                                     "included. With a cap, one batch is simulated at the generator's parameters "
                                     "every few iterations, spread evenly over the run: the discriminator's fakes "
                                     "and the evaluations come from those batches (for a black-box stochastic "
                                     "simulator, the generator learns from them too). "
                                     "0: no cap (a fresh simulated batch every iteration). Setting a cap sets "
                                     "the iterations to the preset's for a budgeted run (quick: 4,000). Measured "
                                     "within 50,000 images in all: a bank of 30,000, a cap of 20,000 and 3 "
                                     "ensemble members met the accuracy bars on every case study and seed.")
        self._capped = False  # whether the iterations shown are the preset's for a capped run
        self.budget_input.valueChanged.connect(self._budget_changed)
        self.members_input = QSpinBox()
        self.members_input.setRange(1, 50)
        self.members_input.setSpecialValueText("1 (no ensemble)")
        self.members_input.setToolTip("Calibrate this many times, each with its own seed and bootstrap resample of "
                                      "the true images, and pool them: every best-match figure then has an "
                                      f"uncertainty from their spread. Takes that many times as long; "
                                      f"{workflow.ENSEMBLE_MEMBERS} is the fewest that give a useful spread; a "
                                      "simulation budget is shared by the members. An ensemble cannot be continued.")
        self.add_common_settings("Generator updates; the quick preset uses 4000",
                                 "Images per discriminator and generator update",
                                 "Random seed: the same seed and settings give the same calibration",
                                 [("discriminator sees", self.disc_input),
                                  ("simulation budget", self.budget_input),
                                  ("ensemble members", self.members_input)])
        # said before Start is pressed: a calibration is only as good as the emulator it learns through
        self.emulator_warning = QLabel()
        self.emulator_warning.setWordWrap(True)
        self.emulator_warning.setStyleSheet("color: #b35900")
        self.emulator_warning.setVisible(False)
        self.controls.addWidget(self.emulator_warning)
        session.emulator_changed.connect(self._judge_emulator)
        # said after a run: the result's own image-space check failed, or the run diverged
        self.convergence_warning = QLabel()
        self.convergence_warning.setWordWrap(True)
        self.convergence_warning.setStyleSheet("color: #b00020")
        self.convergence_warning.setVisible(False)
        self.controls.addWidget(self.convergence_warning)
        self.controls.addStretch(1)

        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.table.setToolTip("Best-match mean and std of the generator's parameters beside the true (closure "
                              "test) values; bias in units of the true std, std ratio best/true")
        self.table.setMinimumHeight(140)
        # columns as wide as their numbers (a narrow window scrolls the table rather than cutting them)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.images = ImageGrid("simulated from generated parameters")  # the caption names the true column
        self.add_export(self.images, "calibration images", array=lambda: self.images.last_array)
        self.hist_area = QWidget()
        self.hist_layout = QGridLayout(self.hist_area)
        self.hist_layout.setContentsMargins(0, 0, 0, 0)
        self.histograms: list[ParameterHistogram] = []
        self.hist_key = QLabel(HISTOGRAM_KEY)  # one key above the histograms: in a plot it would hide data
        hist_box = QWidget()
        hist_column = QVBoxLayout(hist_box)
        hist_column.setContentsMargins(0, 0, 0, 0)
        hist_column.addWidget(self.hist_key)
        hist_column.addWidget(self.hist_area, 1)

        right = QGridLayout()
        right.addWidget(hist_box, 0, 0, 1, 2)
        right.addWidget(self.table, 1, 0)
        right.addWidget(self.images, 1, 1, 2, 1)
        losses = QVBoxLayout()
        losses.addWidget(self.losses)
        losses.addWidget(self.smoothing)
        right.addLayout(losses, 2, 0)
        right.addWidget(self.scrubber, 3, 0, 1, 2)
        right.setRowStretch(0, 3)
        right.setRowStretch(1, 2)
        right.setRowStretch(2, 2)
        right.setColumnStretch(0, 3)
        right.setColumnStretch(1, 2)
        layout = QHBoxLayout(self)
        layout.addWidget(self.controls_widget)
        layout.addLayout(right, 1)

        session.simulator_changed.connect(self.apply_defaults)
        session.true_changed.connect(self._show_true)

    def apply_defaults(self, simulator) -> None:
        """Settings from the session's preset; one histogram per parameter."""
        config = self.session.stage_configs().calibrate
        self.show_config(config.for_budget())
        self.disc_input.setCurrentText(config.discriminator_on)
        self._capped = config.budgeted
        self.budget_input.setValue(config.simulation_budget)
        for h in self.histograms:
            self.hist_layout.removeWidget(h)
            h.deleteLater()
        self.histograms = []
        n = len(simulator.parameters)
        cols = 3 if n > 4 else max(1, n)
        cols = 2 if n == 4 else cols
        for i, p in enumerate(simulator.parameters):
            h = ParameterHistogram(p.label, p.low, p.high, p.default)
            h.setToolTip(f"{p.name}: generator samples (blue) against the true per-image values (grey, closure "
                         f"test) and the default simulation's value {p.default} (red dashes)")
            self.add_export(h, f"calibration histogram of {p.name}", table=h.table)
            self.hist_layout.addWidget(h, i // cols, i % cols)
            self.histograms.append(h)
        self.table.setRowCount(n)
        self.table.setVerticalHeaderLabels([p.label for p in simulator.parameters])
        self.table.clearContents()
        self._show_true(self.session.true)

    def _budget_changed(self, budget: int) -> None:
        """The preset's iterations for a capped or uncapped run, when the cap is switched on or off
        (changing a cap's size keeps the iterations the user chose)."""
        if (budget > 0) == self._capped:
            return
        self._capped = budget > 0
        config = self.session.stage_configs().calibrate
        self.iterations.setValue(replace(config, simulation_budget=budget).for_budget().iterations)

    def _judge_emulator(self, emulator) -> None:
        verdict, sentence = ("good", "") if emulator is None else emulator_verdict(emulator.meta)
        self.emulator_warning.setText(f"⚠ The emulator's {sentence}." if verdict in ("rough", "poor") else "")
        self.emulator_warning.setVisible(verdict in ("rough", "poor"))

    def _show_true(self, true) -> None:
        params = None if true is None else true.params
        for i, h in enumerate(self.histograms):
            h.set_true(None if params is None else params[:, i])
        if params is not None:
            for i in range(min(len(self.histograms), params.shape[1])):
                self._set_cell(i, 2, params[:, i].mean())
                self._set_cell(i, 3, params[:, i].std(ddof=1))
        if self.session.simulator is not None:
            for i, p in enumerate(self.session.simulator.parameters):
                self._set_cell(i, 6, p.default)

    def _set_cell(self, row: int, col: int, value: float | None, error: float | None = None) -> None:
        """A number in the table; with ``error`` (an ensemble's standard error) as ``value ± error``."""
        # bias and std ratio are read to two decimals; values keep four significant digits
        spec = ".2f" if col in (4, 5) else ".4g"
        text = "—" if value is None or not np.isfinite(value) else format(value, spec)
        if error is not None and value is not None and np.isfinite(value):
            text += f" ± {error:{'.2f' if col in (4, 5) else '.2g'}}"
        self.table.setItem(row, col, QTableWidgetItem(text))

    def _set_interval(self, row: int, low: float, high: float) -> None:
        """The central 68% of the best-match samples (16th to 84th percentile)."""
        self.table.setItem(row, 7, QTableWidgetItem(f"{low:.4g} – {high:.4g}"))

    def config(self) -> CalibrationConfig:
        """The settings as a CalibrationConfig."""
        base = self.session.stage_configs().calibrate
        base.discriminator_on = self.disc_input.currentText()
        base.simulation_budget = self.budget_input.value()
        return self.read_config(base)

    def missing_input(self) -> str | None:
        """What a calibration still needs before it can start, or None."""
        s = self.session
        return ("a simulator" if s.simulator is None else "true images" if s.true is None
                else "an emulator (pretrain or load one)" if s.emulator is None else None)

    def make_job(self, resume: bool = False):
        missing = self.missing_input()
        if missing:
            self.error.emit(f"calibration needs {missing} first")
            return None
        s = self.session
        config, state = self.config(), self.saved_state if resume else None
        try:
            config.validate()
        except ConfigError as exc:
            self.error.emit(str(exc))
            return None
        simulator, true, emulator, device, path = s.simulator, s.true, s.emulator, s.device, s.emulator_path
        members = 1 if resume else self.members_input.value()   # Continue goes on with the single run it has

        def job(observe, control) -> workflow.Calibration:
            return workflow.calibrate(simulator, emulator, true, config, device, emulator_path=path,
                                      observer=observe, control=control, resume=state, members=members)

        return job

    def draw(self, index: int) -> None:
        snap: CalibrationSnapshot = self.snapshots[index]
        samples = snap.samples
        for i, h in enumerate(self.histograms):
            h.set_samples(samples[:, i])
        true = self.session.true
        for i in range(samples.shape[1]):
            mean, std = samples[:, i].mean(), samples[:, i].std(ddof=1)
            self._set_cell(i, 0, mean)
            self._set_cell(i, 1, std)
            self._set_interval(i, *np.percentile(samples[:, i], [16.0, 84.0]))
            if true is not None and true.params is not None:
                t_mean, t_std = true.params[:, i].mean(), true.params[:, i].std(ddof=1)
                self._set_cell(i, 4, (mean - t_mean) / t_std if t_std > 0 else None)
                self._set_cell(i, 5, std / t_std if t_std > 0 else None)
        picks = spaced_indices(index, MAX_HISTORY_COLUMNS)
        columns = [self.snapshots[i].generated for i in picks] + [snap.true]
        rows = [[col[r] for col in columns] for r in range(columns[0].shape[0])]
        self.images.set_rows(rows, "iterations " + ", ".join(str(self.snapshots[i].iteration) for i in picks)
                             + "; last column: true")

    def describe(self, snap: CalibrationSnapshot) -> str:
        text = super().describe(snap)
        if snap.image_distance is not None:
            text += f" · image distance {snap.image_distance:.4f}"
        return text

    def on_finished(self, calibration: workflow.Calibration) -> None:
        outcome, result, state = calibration.outcome, calibration.result, calibration.state
        ending = "diverged" if outcome.diverged else "stopped early" if outcome.stopped_early else "done"
        ensemble = result.get("ensemble")
        if ensemble:
            self.status.setText(f"{ending}: an ensemble of {ensemble['members']} calibrations in "
                                f"{outcome.wall_time:.0f} s; the table shows each figure ± its standard error "
                                "— see Results")
        else:
            self.status.setText(f"{ending}: {outcome.iteration} iterations in {outcome.wall_time:.0f} s; best match "
                                f"pooled from iterations {', '.join(map(str, outcome.chosen_iterations))} "
                                "— see Results")
        self.show_outcome(outcome, result, state)

    def show_outcome(self, outcome, result, state: dict | None = None) -> None:
        """Draw a finished calibration's samples and table and hand it (and its state) to the session."""
        warnings = []
        if result.get("converged") is False:
            warnings.append(f"⚠ Not converged: {result['image_check']['note']}.")
        if (result.get("image_checks") or {}).get("reproduces") is False:
            warnings.append(f"⚠ Mismatch: {result['image_checks']['note']} (tab 6, Image checks).")
        self.convergence_warning.setText("\n".join(warnings))
        self.convergence_warning.setVisible(bool(warnings))
        for i, h in enumerate(self.histograms):
            h.set_samples(outcome.samples[:, i])
        for i, row in enumerate(result["parameters"]):
            self._set_cell(i, 0, row["mean"], row.get("mean_uncertainty"))
            self._set_cell(i, 1, row["std"], row.get("std_uncertainty"))
            if "16" in row.get("quantiles", {}):
                self._set_interval(i, row["quantiles"]["16"], row["quantiles"]["84"])
            if row.get("bias_in_true_std") is not None:
                self._set_cell(i, 4, row["bias_in_true_std"], row.get("bias_uncertainty"))
                self._set_cell(i, 5, row["std_ratio"], row.get("std_ratio_uncertainty"))
        self.session.set_result(outcome, result, state)
