"""What the pretraining and calibration panels share: run controls, progress, losses and the scrubber."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core import workflow
from ...core.errors import TrainingError
from ...core.progress import Snapshot, format_seconds
from ..session import Session
from ..widgets import LossPlot, PlotExport, SmoothingControl, StepScrubber

# Snapshots whose images and samples are kept for the scrubber (about 40 kB each for calibration)
MAX_KEPT_SNAPSHOTS = 300


class RunPanel(QWidget):
    """Base of the panels that run an engine loop: subclasses add settings and draw snapshots.

    The main window owns the worker thread; a panel asks for a run with ``start_requested`` and
    is fed snapshots through ``on_snapshot``.
    """

    start_requested = Signal(object)   # a job: callable(observer, control) -> result
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()
    error = Signal(str)
    message = Signal(str)  # what was done, for the status bar (e.g. where a plot was exported)

    stage = ""
    run_name = ""  # what the run is called in file names and messages ("pretraining")
    # shown from Start until the first snapshot: with a slow simulator this set-up takes minutes
    preparing = "starting…"
    snapshot_seconds = 0.5   # the engine reports at most twice a second: drawing leaves the training its cores

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.snapshots: list[Snapshot] = []
        self.metrics_log: list[list] = []  # [iteration, metrics] of every snapshot, never thinned
        self.running = False
        self.paused = False
        self.startable = True  # False while any job runs (this panel's or another's)

        self.start_button = QPushButton("Start")
        self.continue_button = QPushButton("Continue")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.start_button.setToolTip("Start a run with these settings (Ctrl+R)")
        self.continue_button.setToolTip("Train further from where the last run ended (or the reopened project's "
                                        "run), up to 'iterations' in all; the curves go on")
        self.pause_button.setToolTip("Pause or resume between two iterations (Ctrl+P)")
        self.stop_button.setToolTip("Stop after the current iteration; what was learned is kept (Ctrl+.)")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m iterations")
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        self.saved = QLabel("")  # the last export's path: the status line belongs to the run
        self.saved.setWordWrap(True)
        self.saved.setStyleSheet("color: #555")
        self.saved.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scrubber = StepScrubber()
        self.losses = LossPlot("losses; thick: moving average")  # short: the title row holds the Export… button
        self.losses.setToolTip("Every iteration's logged loss (thin) and its moving average (thick)")
        self.smoothing = SmoothingControl([self.losses])

        self.settings = QFormLayout()
        box = QGroupBox("Settings")
        box.setLayout(self.settings)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.continue_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        self.controls = QVBoxLayout()
        self.controls.addWidget(box)
        self.controls.addLayout(buttons)
        self.controls.addWidget(self.progress)
        self.controls.addWidget(self.status)
        self.controls.addWidget(self.saved)
        self.controls_widget = QWidget()
        self.controls_widget.setLayout(self.controls)
        self.controls_widget.setMaximumWidth(360)

        self.start_button.clicked.connect(lambda: self.request_start())
        self.continue_button.clicked.connect(lambda: self.request_start(resume=True))
        session.emulator_changed.connect(lambda _: self.set_startable(self.startable))
        session.result_changed.connect(lambda _: self.set_startable(self.startable))
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_requested)
        self.scrubber.moved.connect(self.show_snapshot)
        self.add_export(self.losses, f"{self.run_name} losses", table=self.losses.table)
        self.set_running(False)

    def add_export(self, plot, name: str, table=None, array=None) -> PlotExport:
        """Give ``plot`` its "Export…" button, reporting here: failures as errors, the path written below the status."""
        export = PlotExport(plot, name, table=table, array=array)
        export.failed.connect(self.error)
        export.written.connect(self._exported)
        return export

    def _exported(self, path: str) -> None:
        self.saved.setText(f"exported {path}")
        self.message.emit(f"exported {path}")

    # -- run state ------------------------------------------------------------------------------------
    def add_common_settings(self, iterations_tip: str, batch_tip: str, seed_tip: str,
                            extra: list[tuple[str, QWidget]] = ()) -> None:
        """The iterations, batch size and seed boxes every run has, with ``extra`` rows before the seed."""
        self.iterations = QSpinBox()
        self.iterations.setRange(1, 10_000_000)
        self.iterations.setToolTip(iterations_tip)
        self.batch = QSpinBox()
        self.batch.setRange(1, 65536)
        self.batch.setToolTip(batch_tip)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip(seed_tip)
        self.settings.addRow("iterations", self.iterations)
        self.settings.addRow("batch size", self.batch)
        for label, widget in extra:
            self.settings.addRow(label, widget)
        self.settings.addRow("seed", self.seed)

    def show_config(self, config) -> None:
        """Put a config's iterations, batch size and seed into the boxes."""
        self.iterations.setValue(config.iterations)
        self.batch.setValue(config.batch_size)
        self.seed.setValue(config.seed)

    def read_config(self, config):
        """``config`` with the boxes' iterations, batch size and seed, and the panel's snapshot rate."""
        config.iterations, config.batch_size = self.iterations.value(), self.batch.value()
        config.seed, config.snapshot_seconds = self.seed.value(), self.snapshot_seconds
        return config

    @property
    def saved_state(self) -> dict | None:
        """The resumable state of this stage's last run (or of a reopened project), if any."""
        return self.session.training_state.get(self.stage)

    def request_start(self, resume: bool = False) -> None:
        """Build the job from the settings and ask the main window to run it.

        ``resume``: continue the last run (``saved_state``) up to the iterations set; its curves stay.
        """
        if resume:
            try:  # said at once, before a worker starts
                workflow.require_more_iterations(workflow.saved_iteration(self.saved_state), self.iterations.value(),
                                                 "the last run")
            except TrainingError as exc:
                self.error.emit(str(exc))
                return
        job = self.make_job(resume)
        if job is None:
            return
        if resume:
            self.follow_live()  # a view scrubbed back would otherwise stay there through the whole run
        else:
            self.begin_run()
        self.start_requested.emit(job)

    def follow_live(self) -> None:
        """Put the scrubber at the newest snapshot, so the view follows the run again."""
        if self.snapshots:
            self.scrubber.slider.setValue(self.scrubber.slider.maximum())
        self.losses.show_until(None)

    def begin_run(self) -> None:
        """Forget the previous run's snapshots and curves: a new run starts."""
        self.snapshots, self.metrics_log = [], []
        self.scrubber.reset()
        self.losses.clear_data()
        self.progress.setValue(0)

    def toggle_pause(self) -> None:
        """Pause a running job, or resume a paused one."""
        if not self.running:
            return
        if self.paused:
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    def set_paused(self, paused: bool) -> None:
        """Show the paused state."""
        self.paused = paused
        self.pause_button.setText("Resume" if paused else "Pause")
        if paused:
            self.status.setText(self.status.text().split(" — paused")[0] + " — paused")

    def set_running(self, running: bool) -> None:
        """Enable the buttons that make sense now; a run that starts says what it does before its first step."""
        if running and not self.running:
            self.progress.setMaximum(self.iterations.value())
            self.status.setText(self.preparing)
        self.running = running
        self.set_startable(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        for i in range(self.settings.rowCount()):
            field = self.settings.itemAt(i, QFormLayout.ItemRole.FieldRole)
            if field is not None and field.widget() is not None:
                field.widget().setEnabled(not running)
        if not running:
            self.set_paused(False)

    def set_startable(self, startable: bool) -> None:
        """Enable Start, and Continue when there is a run to continue; both off while any job runs."""
        self.startable = startable
        self.start_button.setEnabled(startable)
        self.continue_button.setEnabled(startable and self.saved_state is not None)

    # -- snapshots ------------------------------------------------------------------------------------
    def on_snapshot(self, snap: Snapshot) -> None:
        """Keep the snapshot, update progress and losses, and draw it if the scrubber follows.

        Every snapshot's metrics are kept; of their images and samples at most
        ``MAX_KEPT_SNAPSHOTS``: beyond that every other older one is dropped, so a long run's
        memory stays bounded and the scrubber still spans the whole run, evenly.
        """
        self.metrics_log.append([snap.iteration, snap.metrics()])
        self.snapshots.append(snap)
        self.progress.setMaximum(snap.iterations)
        self.progress.setValue(snap.iteration)
        self.losses.append(snap.loss_steps, snap.losses)
        self.status.setText(self.describe(snap) + (" — paused" if self.paused else ""))
        following = self.scrubber.following
        self.scrubber.add(snap.iteration)
        if len(self.snapshots) > MAX_KEPT_SNAPSHOTS:
            looking_at = self.scrubber.slider.value()
            self.snapshots = self.snapshots[:-1][::2] + [self.snapshots[-1]]
            self.scrubber.replace([s.iteration for s in self.snapshots],
                                  len(self.snapshots) - 1 if following else looking_at // 2)
        if following:
            self.draw(len(self.snapshots) - 1)

    def show_snapshot(self, index: int) -> None:
        """The scrubber moved: draw that snapshot and the losses up to it."""
        if 0 <= index < len(self.snapshots):
            self.draw(index)
            live = index == len(self.snapshots) - 1
            self.losses.show_until(None if live else self.snapshots[index].iteration)

    def describe(self, snap: Snapshot) -> str:
        """Status text: iteration, speed, time left."""
        text = (f"iteration {snap.iteration} of {snap.iterations} · {snap.rate:.1f} it/s · "
                f"elapsed {format_seconds(snap.elapsed)} · left {format_seconds(snap.eta)} · "
                f"{snap.simulations:,} simulator images")
        return text + (f" of a budget of {snap.simulation_budget:,}" if snap.simulation_budget else "")

    # -- project files --------------------------------------------------------------------------------
    def history(self) -> dict:
        """Every logged loss and each snapshot's metrics, as plain lists (for a project file)."""
        return {"steps": self.losses.steps.tolist(),
                "losses": {k: v.tolist() for k, v in self.losses.values.items()},
                "metrics": list(self.metrics_log)}

    def restore_history(self, history: dict) -> None:
        """Redraw the loss curves of a saved run (its image snapshots are not kept in projects)."""
        self.snapshots, self.metrics_log = [], [list(m) for m in history.get("metrics", [])]
        self.scrubber.reset()
        self.losses.clear_data()
        steps = np.asarray(history.get("steps", []), np.int64)
        losses = {k: np.asarray(v, np.float32) for k, v in history.get("losses", {}).items()}
        self.losses.append(steps, losses)
        if len(steps):  # against the iterations the run was set to (a stopped run's bar is not full)
            self.progress.setMaximum(max(self.iterations.value(), int(steps[-1])))
            self.progress.setValue(int(steps[-1]))
            self.status.setText(f"reopened from a project: {int(steps[-1])} iterations logged")

    # -- for subclasses -------------------------------------------------------------------------------
    def make_job(self, resume: bool = False):
        """Return callable(observer, control) -> result, or None after emitting an error.

        The job builds its trainer itself, in the worker thread: a trainer's constructor simulates
        its held-out and evaluation sets, which takes minutes with a slow simulator.
        ``resume``: the job continues ``saved_state`` instead of starting afresh.
        """
        raise NotImplementedError

    def draw(self, index: int) -> None:
        """Draw snapshot ``index`` (images, histograms...)."""
        raise NotImplementedError

    def on_finished(self, result) -> None:
        """The job ended normally with ``result``."""
        raise NotImplementedError
