"""The main window: four panels in working order, the worker thread, menus, shortcuts and status."""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from PySide6.QtCore import QSettings, Qt, QThread, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
    QTextBrowser,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..core import workflow
from ..core.bank import BankSummary
from ..core.calibration import CalibrationOutcome
from ..core.checkpoints import CheckpointError
from ..core.data import TrueImages
from ..core.device import available_devices
from ..core.progress import Snapshot
from ..core.project import Project
from ..core.simulators import BUILTIN_SIMULATORS, LoadedSimulator
from .panels.bank import BankPanel
from .panels.calibration import CalibrationPanel
from .panels.explorer import EmulatorExplorer
from .panels.image_checks import ImageChecksPanel
from .panels.pretraining import PretrainingPanel
from .panels.results import ResultsPanel
from .panels.run_panel import RunPanel
from .panels.true_images import TrueImagesPanel
from .session import Session
from .worker import EngineWorker, keep_gui_thread_serial, release_free_memory, start_worker, training_threads

RECENT_PROJECTS_KEY = "recent_projects"   # a JSON list: an ini file reads a one-item list back as a string
MAX_RECENT_PROJECTS = 8
README_PATH = Path(__file__).resolve().parents[2] / "README.md"   # beside the package in a source checkout

# Help ▸ Quick start. The names are those the window shows (tabs, buttons, menus): keep them in step.
QUICK_START_HTML = """
<h3>magan-gui in six panels</h3>
<p>magan-gui calibrates a simulator's parameters against true images: it trains an emulator of the simulator,
then a generator of parameters whose simulated images a discriminator cannot tell from the true ones.
Work through the tabs from left to right; <b>Run ▸ Run all</b> (Ctrl+Shift+R) pretrains and then calibrates in
one go.</p>
<p><b>1 True images.</b> Choose the simulator (lines, circles, or a plugin file…) and, with
<b>Parameter ranges…</b> if needed, the range of each parameter. Then either generate a closure test (a true
mean and std per parameter, the number of images and a seed, then <b>Generate closure-test images</b>) or load
your data with <b>Load true images…</b> (.npz, .npy, .h5, .root) or <b>Load folder…</b> (PNG or TIFF files);
files dropped on the panel load too. A ROOT file holding several sets of images takes a selector typed after its
path in the path line (<code>file.root:hits_*</code> or <code>file.root:tree/branch</code>), then Enter.</p>
<p><b>2 Bank</b> (optional, for an expensive simulator). Simulate the simulator once over the parameter box into
a bank file (.h5), in one or more workers; <b>Stop</b> keeps every finished chunk and <b>Resume</b> finishes the
file. <b>Use an existing bank…</b> takes one made by <code>magan bank</code>. Pretraining can then learn from the
bank and calls the simulator not once.</p>
<p><b>3 Pretraining.</b> Trains the emulator. The grid shows the emulator over training against the simulator
on fixed parameter sets (with |emulator − simulator| beside them), next to the losses and the held-out
fidelity. When it ends, the status line gives the emulator's verdict: good (good enough to calibrate with),
rough or poor (train it longer). <b>Load emulator…</b> uses one trained before.</p>
<p><b>4 Calibration.</b> Trains the generator through the emulator. One histogram per parameter shows the
generated parameters (blue) over the true per-image values (grey, in a closure test) and the default value
(red dashes); the table gives the best-match mean and std against the truth, the bias in true σ and the std
ratio. An orange note warns before Start when the emulator is rough or poor, and a red
"Not converged" or "Mismatch" warning appears when the result's own image checks fail. <b>Ensemble members</b>
above 1 calibrates that many times (own seeds, bootstrap resamples of the true images) and gives every figure
in the table a ± from their spread.</p>
<p><b>5 Results.</b> The best-match table, the correlations, the provenance and a corner plot of the
best-match samples. <b>Export best-match parameters…</b> (Ctrl+E) writes the result JSON with the samples CSV
beside it; <b>Export eigentunes…</b> writes the ±1σ variations along the covariance's principal axes as files to
re-simulate; <b>Export emulator…</b> saves the emulator; <b>Save plots as PNG…</b> saves a picture of every
panel; <b>Compare with other results…</b> overlays other result files or projects.</p>
<p><b>6 Image checks.</b> Images simulated at the best match against the true images: mean, std and pull maps,
row and column projections, the intensity histogram, and a classifier test whose verdict is green, or red when
the simulator cannot reproduce the images at any parameters. It needs no true parameters: use it on data.</p>
<p><b>View ▸ Emulator explorer</b> (Ctrl+Shift+X) opens a dock with one slider per parameter: the emulator's
image follows the sliders, beside the simulator's image for the same values (<b>Simulate</b>, or on release)
and their difference. <b>Best match</b>, <b>Sample</b> and <b>Default</b> set the sliders.</p>
<h3>Runs</h3>
<p>Each run panel has <b>Start</b>, <b>Continue</b> (trains the last run further), <b>Pause</b> and <b>Stop</b>;
the Run menu and the toolbar have them too: Start (Ctrl+R), Pause / resume (Ctrl+P), Stop (Ctrl+.). Stop ends the
run after the current iteration and keeps what it reached. The toolbar's device box picks the CPU or a GPU.</p>
<h3>Projects</h3>
<p><b>File ▸ Save project</b> (Ctrl+S) writes the whole calibration to one .magan file: true images, emulator,
settings, curves and result. <b>File ▸ Open project</b> (Ctrl+O) reopens it, to look at or to Continue;
<b>File ▸ Open Recent</b> lists the last projects. Each finished stage is also autosaved: after a crash, or work
closed without saving, <b>File ▸ Recover the autosave</b> brings it back.</p>
<h3>Without a window</h3>
<p>The same engine runs headless with the <code>magan</code> command: <code>magan example</code> runs this
closure test, and <code>magan simulate</code>, <code>magan bank</code>, <code>magan pretrain</code> and
<code>magan calibrate</code> run the steps one by one; <code>magan tune</code> writes a result's eigentunes and
<code>magan compare</code> compares results. <code>magan --help</code> lists them all.</p>
"""


def _divergence(result: Any) -> str | None:
    """Why a finished run went back to its last finite state, if it did."""
    if isinstance(result, workflow.PipelineRun):
        return _divergence(result.calibration) or result.pretraining.diverged
    if isinstance(result, workflow.Calibration):
        return result.outcome.diverged
    return result.diverged if isinstance(result, workflow.Pretraining) else None


class RunState(Enum):
    """Where the window's job stands; the value is what the status bar shows."""

    IDLE = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"


class MainWindow(QMainWindow):
    """magan-gui's window; one job at a time runs in its worker thread."""

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("magan-gui — model-assisted GAN calibration[*]")  # [*]: Qt's unsaved-changes mark
        keep_gui_thread_serial()
        self.settings = settings or QSettings("magan-gui", "magan-gui")
        self.project_path: str | None = None   # where the project was last saved or opened from
        # each finished stage is written here (atomically), so a crash or a kill loses no trained result
        self.autosave_path = Path(self.settings.fileName()).parent / "autosave.magan"
        self.ask_before_losing_work = self._ask_with_box   # "save", "discard" or "cancel"
        self.session = Session()
        self.worker: EngineWorker | None = None
        self.thread: QThread | None = None
        self.active: Any = None            # the panel whose job runs
        # during a run: freed heap pages back to the system every second (every 10 s let resident memory
        # saw-tooth 35 MiB over 16,000 iterations; every 1 s 23 MiB, at the same speed: README, Memory)
        self.memory_timer = QTimer(self)
        self.memory_timer.setInterval(1_000)
        self.memory_timer.timeout.connect(release_free_memory)
        self.last_error = ""
        self.state = RunState.IDLE

        self.true_panel = TrueImagesPanel(self.session)
        self.bank_panel = BankPanel(self.session)
        self.pretrain_panel = PretrainingPanel(self.session)
        self.calibrate_panel = CalibrationPanel(self.session)
        self.results_panel = ResultsPanel(self.session)
        self.image_checks_panel = ImageChecksPanel(self.session)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.true_panel, "1  True images")
        self.tabs.addTab(self.bank_panel, "2  Bank")
        self.tabs.addTab(self.pretrain_panel, "3  Pretraining")
        self.tabs.addTab(self.calibrate_panel, "4  Calibration")
        self.tabs.addTab(self.results_panel, "5  Results")
        self.tabs.addTab(self.image_checks_panel, "6  Image checks")
        self.setCentralWidget(self.tabs)
        # the explorer is a dock beside the panels (or floating), hidden until View ▸ Emulator explorer
        self.explorer = EmulatorExplorer(self.session)
        self.explorer_dock = QDockWidget("Emulator explorer", self)
        self.explorer_dock.setObjectName("emulatorExplorerDock")
        self.explorer_dock.setWidget(self.explorer)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.explorer_dock)
        self.explorer_dock.hide()

        self.device_box = QComboBox()
        self.device_box.addItems(available_devices())
        self.device_box.setCurrentIndex(self.device_box.count() - 1)  # a GPU when there is one
        self.device_box.setToolTip("Where training runs: the CPU or one of the CUDA GPUs found")
        self.state_label = QLabel(self.state.value)
        self.device_label = QLabel()
        self.statusBar().addPermanentWidget(self.device_label)
        self.statusBar().addPermanentWidget(self.state_label)
        self.device_box.currentTextChanged.connect(self._device_changed)
        self._device_changed(self.device_box.currentText())

        self._build_actions()
        for panel in (self.pretrain_panel, self.calibrate_panel):
            panel.start_requested.connect(lambda job, p=panel: self.run_job(p, job))
            panel.pause_requested.connect(self.pause)
            panel.resume_requested.connect(self.resume)
            panel.stop_requested.connect(self.stop)
        for panel in (self.true_panel, self.bank_panel, self.pretrain_panel, self.calibrate_panel, self.results_panel):
            panel.error.connect(self.show_error)
        self.bank_panel.start_requested.connect(lambda job: self.run_job(self.bank_panel, job))
        self.bank_panel.stop_requested.connect(self.stop)
        self.true_panel.job_requested.connect(lambda job: self.run_job(self.true_panel, job))
        for panel in (self.results_panel, self.pretrain_panel, self.calibrate_panel):
            panel.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.session.notice.connect(lambda text: self.statusBar().showMessage(text, 15000))
        # a trained (or loaded) emulator and a calibration result are the work a project keeps
        self.session.simulator_changed.connect(self._recall_run_settings)  # after the panels' preset defaults
        self.session.emulator_changed.connect(lambda emulator: self._work_changed(emulator is not None))
        self.session.result_changed.connect(lambda result: self._work_changed(result is not None))
        self.results_panel.save_pictures_requested.connect(self.save_pictures)
        self._set_busy(False, RunState.IDLE)  # Pause and Stop have nothing to act on yet
        self._restore()

    # -- actions --------------------------------------------------------------------------------------
    def _build_actions(self) -> None:
        def action(text: str, shortcut: str, slot, tip: str) -> QAction:
            a = QAction(text, self)
            a.setShortcut(QKeySequence(shortcut))
            a.setStatusTip(tip)
            a.triggered.connect(slot)
            return a

        self.start_action = action("&Start", "Ctrl+R", self.start_current, "Start pretraining or calibration "
                                   "(the panel in view)")
        self.pause_action = action("&Pause / resume", "Ctrl+P", self.toggle_pause, "Pause or resume the run")
        self.run_all_action = action("Run &all (pretrain, then calibrate)", "Ctrl+Shift+R", self.run_all,
                                     "Pretrain the emulator with the panel's settings, then calibrate")
        self.stop_action = action("S&top", "Ctrl+.", self.stop, "Stop the run after the current iteration")
        self.export_action = action("&Export best-match parameters…", "Ctrl+E", self.results_panel.choose_export,
                                    "Write the result JSON and samples CSV")
        open_project = action("&Open project…", "Ctrl+O", self.choose_project_to_open,
                              "Reopen a saved calibration: true images, emulator, settings, curves and result")
        save_project = action("&Save project…", "Ctrl+S", self.choose_project_to_save,
                              "Save the whole calibration in one file (no code inside: safe to share)")
        load_true = action("&Load true images…", "Ctrl+L", self.true_panel.choose_file, "Open true images")
        load_emulator = action("Load &emulator…", "Ctrl+Shift+O", self.pretrain_panel.choose_emulator,
                               "Use an emulator trained before")
        export_emulator = action("Export e&mulator…", "Ctrl+Shift+E", self.results_panel.choose_emulator_export,
                                 "Save the emulator")
        pictures = action("Save plots as &PNG…", "Ctrl+Shift+S", self.results_panel.choose_pictures,
                          "A picture of every panel")
        recover = action("&Recover the autosave", "", self.recover_autosave,
                         "Reopen the project written at the end of the last finished stage (after a crash, or "
                         "work closed without saving)")
        quit_action = action("&Quit", "Ctrl+Q", self.close, "Close magan-gui")
        self.recent_menu = QMenu("Open Re&cent", self)
        self.recent_menu.setStatusTip("Reopen one of the last projects saved or opened")
        # another window may have changed the shared list since this one last drew it
        self.recent_menu.aboutToShow.connect(self._rebuild_recent_menu)
        self._rebuild_recent_menu()
        file_menu = self.menuBar().addMenu("&File")
        for a in (open_project, self.recent_menu.menuAction(), save_project, recover, None, load_true,
                  load_emulator, None, self.export_action, export_emulator, pictures, None, quit_action):
            file_menu.addSeparator() if a is None else file_menu.addAction(a)
        run_menu = self.menuBar().addMenu("&Run")
        for a in (self.run_all_action, self.start_action, self.pause_action, self.stop_action):
            run_menu.addAction(a)
        self.explorer_action = self.explorer_dock.toggleViewAction()
        self.explorer_action.setText("&Emulator explorer")
        self.explorer_action.setShortcut(QKeySequence("Ctrl+Shift+X"))
        self.explorer_action.setStatusTip("Show or hide the emulator explorer: a slider per parameter, the "
                                          "emulator's image beside the simulator's")
        self.menuBar().addMenu("&View").addAction(self.explorer_action)
        self.quick_start_action = action("&Quick start", "F1", self.show_quick_start,
                                         "A short guide to the panels, runs and projects")
        self.about_action = action("&About magan-gui", "", self.show_about,
                                   "Versions, the device in use and where the README is")
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self.quick_start_action)
        help_menu.addAction(self.about_action)
        self.quick_start_dialog: QDialog | None = None   # built on first use, then shown again
        self.about_dialog: QDialog | None = None
        self.about_label: QLabel | None = None
        toolbar = QToolBar("Run")
        toolbar.setObjectName("run-toolbar")
        for a in (self.run_all_action, self.start_action, self.pause_action, self.stop_action, self.export_action):
            toolbar.addAction(a)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" device "))
        toolbar.addWidget(self.device_box)
        self.addToolBar(toolbar)

    def _device_changed(self, name: str) -> None:
        self.session.device = name
        label = torch.cuda.get_device_name(int(name.split(":")[1])) if name.startswith("cuda") else "CPU"
        self.device_label.setText(f"device: {name} ({label})")

    def current_run_panel(self) -> RunPanel | None:
        """The pretraining or calibration panel in view, if any."""
        widget = self.tabs.currentWidget()
        return widget if isinstance(widget, RunPanel) else None

    def start_current(self) -> None:
        """Start the run of the panel in view (the pretraining panel from the first tab)."""
        if self.tabs.currentWidget() is self.bank_panel:
            self.bank_panel.request_start(resume=False)
            return
        panel = self.current_run_panel() or self.pretrain_panel
        self.tabs.setCurrentWidget(panel)
        panel.request_start()

    def run_all(self) -> None:
        """Pretrain, then calibrate through the new emulator: the whole method as one job."""
        if self.busy:
            self.show_error("another run is in progress: stop it first")
            return
        s = self.session
        missing = "a simulator" if s.simulator is None else "true images" if s.true is None else None
        if missing:
            self.show_error(f"calibration needs {missing} first")
            return
        configs = workflow.StageConfigs(self.pretrain_panel.config(), self.calibrate_panel.config())
        simulator, true, device, bank = s.simulator, s.true, s.device, self.pretrain_panel.chosen_bank()

        members = self.calibrate_panel.members_input.value()

        def job(observe, control) -> workflow.PipelineRun:
            return workflow.run_pipeline(simulator, true, configs, device, observer=observe, control=control,
                                         on_pretrained=observe, bank=bank, members=members)

        self.pretrain_panel.begin_run()
        self.tabs.setCurrentWidget(self.pretrain_panel)
        self.run_job(self.pretrain_panel, job)

    def toggle_pause(self) -> None:
        """Pause or resume the running job."""
        if isinstance(self.active, RunPanel):
            self.active.toggle_pause()

    # -- jobs -----------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a job runs."""
        return self.worker is not None

    def run_job(self, panel: Any, job) -> None:
        """Run ``job`` in the worker thread on behalf of ``panel``."""
        if self.busy:
            self.show_error("another run is in progress: stop it first")
            return
        self.active = panel
        self.worker, self.thread = start_worker(job, self, training_threads())
        self.memory_timer.start()
        self.worker.snapshot.connect(self._on_snapshot)
        self.worker.stage_done.connect(self._on_stage_done)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.thread.finished.connect(self._on_thread_finished)
        self._set_busy(True, RunState.RUNNING)

    def _set_state(self, state: RunState) -> None:
        self.state = state
        self.state_label.setText(state.value)

    def _panel_for(self, snap: Snapshot) -> RunPanel | BankPanel:
        panels = {p.stage: p for p in (self.bank_panel, self.pretrain_panel, self.calibrate_panel)}
        return panels[snap.stage]

    def _on_snapshot(self, snap: Snapshot) -> None:
        try:
            self._panel_for(snap).on_snapshot(snap)
        finally:
            if self.worker is not None:
                self.worker.drawn()

    def _on_stage_done(self, outcome: Any) -> None:
        """Run all: pretraining has ended; show its emulator and hand the run over to calibration."""
        if isinstance(outcome, workflow.Pretraining):
            self.pretrain_panel.on_finished(outcome)
            self.autosave()
            self.pretrain_panel.set_running(False)
            self.pretrain_panel.set_startable(False)  # the job goes on: nothing may start beside it
            if not outcome.stopped and self.state in (RunState.RUNNING, RunState.PAUSED):
                self.active = self.calibrate_panel
                self.calibrate_panel.begin_run()
                self.calibrate_panel.set_running(True)
                self.calibrate_panel.set_paused(self.state is RunState.PAUSED)
                self.tabs.setCurrentWidget(self.calibrate_panel)

    def _on_finished(self, result: Any) -> None:
        self.active = None
        self.statusBar().clearMessage()  # an earlier error's line no longer applies
        if isinstance(result, TrueImages):
            self.session.set_true(result)
        elif isinstance(result, LoadedSimulator):
            self.session.set_simulator(result, result.spec)
        elif isinstance(result, BankSummary):
            self.bank_panel.on_finished(result)
        elif isinstance(result, workflow.Pretraining):
            self.pretrain_panel.on_finished(result)
        elif isinstance(result, workflow.Calibration):
            self.calibrate_panel.on_finished(result)
        elif isinstance(result, workflow.PipelineRun) and result.calibration is not None:
            self.calibrate_panel.on_finished(result.calibration)
        diverged = _divergence(result)
        if isinstance(result, (TrueImages, LoadedSimulator)):  # loading is no run: nothing "finished"
            self._set_state(RunState.IDLE)
        elif diverged:
            self._set_state(RunState.FAILED)
        else:
            self._set_state(RunState.STOPPED if self.state is RunState.STOPPING else RunState.FINISHED)
        if isinstance(result, (workflow.Pretraining, workflow.Calibration, workflow.PipelineRun)):
            self.autosave()
        if diverged:
            self.show_error(f"{diverged}. That state is kept. A diverging run usually needs lower learning rates: "
                            "the lr_ settings of a preset file, given as magan-gui --preset FILE.toml.")
        elif isinstance(result, (workflow.Calibration, workflow.PipelineRun)) and self.session.result is not None:
            self.statusBar().showMessage("calibration finished: see the Results panel", 8000)

    def _on_failed(self, message: str) -> None:
        if self.active is self.true_panel:
            self.true_panel.sync_box()   # a simulator that did not load: the box shows the one in use
        self.active = None
        self.show_error(message)
        self._set_state(RunState.FAILED)

    def _on_thread_finished(self) -> None:
        self.worker, self.thread = None, None
        self.memory_timer.stop()
        release_free_memory()
        self._set_busy(False, self.state)

    def _set_busy(self, busy: bool, state: RunState) -> None:
        self._set_state(state)
        for panel in (self.pretrain_panel, self.calibrate_panel):
            panel.set_running(busy and panel is self.active)
            panel.set_startable(not busy)
        self.true_panel.set_busy(busy)
        self.bank_panel.set_running(busy and self.active is self.bank_panel)
        self.bank_panel.set_startable(not busy)
        self.explorer.set_busy(busy)
        self.device_box.setEnabled(not busy)
        self.start_action.setEnabled(not busy)
        self.run_all_action.setEnabled(not busy)
        self.pause_action.setEnabled(busy)
        self.stop_action.setEnabled(busy)

    def pause(self) -> None:
        """Hold the job before its next iteration."""
        if self.worker is not None:
            self.worker.control.pause()
            if isinstance(self.active, RunPanel):
                self.active.set_paused(True)
            self._set_state(RunState.PAUSED)

    def resume(self) -> None:
        """Let a paused job go on."""
        if self.worker is not None:
            self.worker.control.resume()
            if isinstance(self.active, RunPanel):
                self.active.set_paused(False)
            self._set_state(RunState.RUNNING)

    def stop(self) -> None:
        """Ask the job to stop after its current iteration (it still reports its result)."""
        if self.worker is not None:
            self.worker.control.stop()
            self._set_state(RunState.STOPPING)

    def wait_for_thread(self, timeout_ms: int = 30000) -> bool:
        """Stop the job and wait for its thread to end."""
        thread = self.thread
        if thread is None:
            return True
        self.stop()
        return thread.wait(timeout_ms)

    def show_error(self, message: str) -> None:
        """Show a problem in the window (status bar and a message box); nothing is lost."""
        self.last_error = message
        self.statusBar().showMessage(message, 15000)
        box = QMessageBox(QMessageBox.Icon.Warning, "magan-gui", message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def save_pictures(self, folder: str) -> list[str]:
        """Grab every panel into ``folder`` as PNG; returns the paths."""
        paths = []
        current = self.tabs.currentIndex()
        for i in range(self.tabs.count()):
            self.tabs.setCurrentIndex(i)
            name = self.tabs.tabText(i).split()[-1].lower()
            path = str(Path(folder) / f"{i + 1}-{name}.png")
            self.tabs.currentWidget().grab().save(path)
            paths.append(path)
        self.tabs.setCurrentIndex(current)
        self.statusBar().showMessage(f"saved {len(paths)} pictures to {folder}", 8000)
        return paths

    # -- help ---------------------------------------------------------------------------------------
    def _closable_dialog(self, title: str, content: QWidget) -> QDialog:
        """A non-modal dialog holding ``content`` above a Close button (Esc closes it too)."""
        dialog = QDialog(self)
        dialog.setWindowTitle(title)
        layout = QVBoxLayout(dialog)
        layout.addWidget(content, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        return dialog

    def show_quick_start(self) -> QDialog:
        """Help ▸ Quick start: the workflow in a few paragraphs, beside the window (never modal)."""
        if self.quick_start_dialog is None:
            browser = QTextBrowser()
            browser.setObjectName("quick-start-text")
            browser.setHtml(QUICK_START_HTML)
            self.quick_start_dialog = self._closable_dialog("magan-gui quick start", browser)
            self.quick_start_dialog.resize(640, 520)
        self.quick_start_dialog.show()
        self.quick_start_dialog.raise_()
        self.quick_start_dialog.activateWindow()
        return self.quick_start_dialog

    def about_text(self) -> str:
        """What Help ▸ About says: the versions, the device in use and the README's path."""
        readme = (f'<a href="{README_PATH.as_uri()}">{html.escape(str(README_PATH))}</a>' if README_PATH.is_file()
                  else "not installed with this copy")
        return (f"<h3>magan-gui {__version__}</h3>"
                "<p>Calibration of simulators with a model-assisted GAN "
                "(Alonso-Monsalve &amp; Whitehead, IEEE TNNLS 2020).</p>"
                f"<p>torch {torch.__version__}<br>device in use: {html.escape(self.session.device)}<br>"
                f"README: {readme}</p>")

    def show_about(self) -> QDialog:
        """Help ▸ About magan-gui (a plain dialog: message boxes are the window's error reports)."""
        if self.about_dialog is None:
            self.about_label = QLabel()
            self.about_label.setObjectName("about-text")
            self.about_label.setWordWrap(True)
            self.about_label.setOpenExternalLinks(True)
            self.about_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
            self.about_dialog = self._closable_dialog("About magan-gui", self.about_label)
        self.about_label.setText(self.about_text())   # the device may have changed since last time
        self.about_dialog.show()
        self.about_dialog.raise_()
        self.about_dialog.activateWindow()
        return self.about_dialog

    # -- recent projects ------------------------------------------------------------------------------
    def recent_projects(self) -> list[str]:
        """The last projects saved or opened, most recent first."""
        text = self.settings.value(RECENT_PROJECTS_KEY)
        try:
            paths = json.loads(str(text)) if text else []
        except ValueError:
            return []   # an unreadable entry: start a new list rather than fail
        return [p for p in paths if isinstance(p, str)][:MAX_RECENT_PROJECTS] if isinstance(paths, list) else []

    def _set_recent_projects(self, paths: list[str]) -> None:
        self.settings.setValue(RECENT_PROJECTS_KEY, json.dumps(paths[:MAX_RECENT_PROJECTS]))
        self.settings.sync()   # a crash later in the session keeps the list
        self._rebuild_recent_menu()

    def _remember_project(self, path: str) -> None:
        """Put ``path`` first in File ▸ Open Recent (the autosave is reached by File ▸ Recover instead)."""
        path = str(Path(path).absolute())
        if Path(path) == self.autosave_path.absolute():
            return
        self._set_recent_projects([path] + [p for p in self.recent_projects() if p != path])

    def clear_recent_projects(self) -> None:
        """File ▸ Open Recent ▸ Clear list."""
        self._set_recent_projects([])

    def open_recent_project(self, path: str) -> bool:
        """Open a project of File ▸ Open Recent; one whose file is gone leaves the list."""
        if not Path(path).is_file():
            self._set_recent_projects([p for p in self.recent_projects() if p != path])
            self.show_error(f"{path} no longer exists: it was removed from File ▸ Open Recent")
            return False
        return self.open_project(path)

    def _rebuild_recent_menu(self) -> None:
        # not clear(): that deletes at once the entry whose triggered signal may be running (it opened a project)
        for old_entry in self.recent_menu.actions():
            self.recent_menu.removeAction(old_entry)
            old_entry.deleteLater()
        paths = self.recent_projects()
        for number, path in enumerate(paths, start=1):
            label = f"{Path(path).name}   ({Path(path).parent})".replace("&", "&&")  # a lone '&' marks a key
            entry = self.recent_menu.addAction(f"&{number}  {label}")
            entry.setData(path)
            entry.setStatusTip(path)
            entry.triggered.connect(lambda _checked=False, p=path: self.open_recent_project(p))
        if not paths:
            self.recent_menu.addAction("No recent projects").setEnabled(False)
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("&Clear list", self.clear_recent_projects).setEnabled(bool(paths))

    # -- projects -------------------------------------------------------------------------------------
    def choose_project_to_save(self) -> None:
        """Ask where to save the project (the dialog confirms overwriting)."""
        path, _ = QFileDialog.getSaveFileName(self, "Save project", str(Path(self.results_panel.last_folder)
                                                                          / "calibration.magan"),
                                              "magan project (*.magan)")
        if path:
            self.save_project(path if path.endswith(".magan") else path + ".magan")

    def _project(self) -> Project:
        s = self.session
        return Project(s.simulator_spec, s.true, s.emulator, s.result,
                       None if s.outcome is None else s.outcome.samples,
                       {"pretrain": asdict(self.pretrain_panel.config()),
                        "calibrate": asdict(self.calibrate_panel.config())},
                       {"pretrain": self.pretrain_panel.history(), "calibrate": self.calibrate_panel.history()},
                       dict(s.training_state))

    def save_project(self, path: str) -> bool:
        """Write the session, settings and curves to ``path``."""
        if self.session.simulator is None:
            self.show_error("nothing to save yet: choose a simulator first")
            return False
        try:
            self._project().save(path)
        except OSError as exc:
            self.show_error(f"{path}: {exc}")
            return False
        self.project_path = path
        self.setWindowModified(False)
        self._remember_project(path)
        self.statusBar().showMessage(f"project saved to {path}", 8000)
        return True

    def autosave(self) -> None:
        """Write the project to the autosave file (atomically: a kill mid-write leaves the previous one)."""
        if self.session.simulator is None:
            return
        try:
            self.autosave_path.parent.mkdir(parents=True, exist_ok=True)
            self._project().save(self.autosave_path)
        except OSError as exc:
            self.statusBar().showMessage(f"autosave to {self.autosave_path} failed: {exc}", 15000)

    def recover_autosave(self) -> bool:
        """Reopen the autosaved project (File → Recover the autosave)."""
        if not self.autosave_path.is_file():
            self.show_error(f"no autosave yet: one is written to {self.autosave_path} when a stage ends")
            return False
        return self.open_project(str(self.autosave_path))

    def _work_changed(self, new_work: bool) -> None:
        if new_work:
            self.setWindowModified(True)

    def choose_project_to_open(self) -> None:
        """Ask for a project file to open."""
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self.results_panel.last_folder,
                                              "magan project (*.magan);;All files (*)")
        if path:
            self.open_project(path)

    def open_project(self, path: str) -> bool:
        """Reopen a project; nothing in the current session is lost if the file is refused."""
        if self.busy:
            self.show_error("stop the run before opening a project")
            return False
        try:
            project = Project.load(path)
        except CheckpointError as exc:
            self.show_error(str(exc))
            return False
        spec = project.simulator_spec
        if spec not in BUILTIN_SIMULATORS:
            answer = QMessageBox.question(
                self, "magan-gui", f"This project uses the simulator plugin {spec}.\nLoading it runs that Python "
                "file on this computer. Load it?")
            if answer != QMessageBox.StandardButton.Yes:
                return False
        if not self.true_panel.select_simulator(spec):
            return False
        if project.true is not None:
            self.session.set_true(project.true)
        if project.emulator is not None:
            self.session.set_emulator(project.emulator, None, project.training_state.get("pretrain"))
        for panel, stage in ((self.pretrain_panel, "pretrain"), (self.calibrate_panel, "calibrate")):
            settings = project.settings.get(stage)
            if settings:
                panel.show_config(SimpleNamespace(**settings))
            panel.restore_history(project.histories.get(stage, {}))
        if project.result is not None and project.samples is not None:
            cal = project.result.get("calibration", {})
            outcome = CalibrationOutcome(project.samples, int(cal.get("iterations", 0)),
                                         list(cal.get("pooled_iterations", [])),
                                         float(cal.get("image_distance", float("nan"))),
                                         float(project.result.get("wall_time_s", 0.0)), cal.get("history", {}),
                                         bool(cal.get("stopped_early", False)))
            self.calibrate_panel.show_outcome(outcome, project.result, project.training_state.get("calibrate"))
        recovered = Path(path) == self.autosave_path
        self.project_path = None if recovered else path     # Save never writes over the autosave
        self.setWindowModified(recovered)
        self._remember_project(path)
        self.statusBar().showMessage(f"{'recovered the autosave' if recovered else 'opened project'} {path}", 8000)
        return True

    # -- window state ---------------------------------------------------------------------------------
    def _restore(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        for panel, key in ((self.true_panel, "true"), (self.pretrain_panel, "emulator"),
                           (self.results_panel, "export")):
            folder = self.settings.value(f"folders/{key}")
            if folder and Path(str(folder)).is_dir():
                panel.last_folder = str(folder)

    def _run_settings_key(self, stage: str) -> str:
        return f"runs/{self.session.simulator.name.replace('/', '_')}/{stage}"

    def _recall_run_settings(self, simulator) -> None:
        """The iterations, batch size and seed last used with this simulator, kept across restarts."""
        for panel in (self.pretrain_panel, self.calibrate_panel):
            text = self.settings.value(self._run_settings_key(panel.stage))
            try:
                iterations, batch, seed = json.loads(str(text)) if text else (None, None, None)
            except (ValueError, TypeError):
                continue  # an unreadable entry: the preset's values stay
            if iterations:
                panel.show_config(SimpleNamespace(iterations=int(iterations), batch_size=int(batch), seed=int(seed)))

    def _save_state(self) -> None:
        if self.session.simulator is not None:
            for panel in (self.pretrain_panel, self.calibrate_panel):
                self.settings.setValue(self._run_settings_key(panel.stage), json.dumps(
                    [panel.iterations.value(), panel.batch.value(), panel.seed.value()]))
        self.settings.setValue("geometry", self.saveGeometry())
        for panel, key in ((self.true_panel, "true"), (self.pretrain_panel, "emulator"),
                           (self.results_panel, "export")):
            self.settings.setValue(f"folders/{key}", panel.last_folder)

    def _ask_with_box(self, question: str) -> str:
        box = QMessageBox(QMessageBox.Icon.Question, "magan-gui", question,
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(QMessageBox.StandardButton(answer), "cancel")

    def _save_before_quitting(self) -> bool:
        path = self.project_path
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save project", str(Path(self.results_panel.last_folder)
                                                                              / "calibration.magan"),
                                                  "magan project (*.magan)")
            if not path:
                return False
            path = path if path.endswith(".magan") else path + ".magan"
        return self.save_project(path)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        if self.busy:
            answer = self.ask_before_losing_work(
                "A run is in progress. Stop it and save the project (with what the run has reached) before "
                "quitting?")
            if answer == "cancel":
                event.ignore()
                return
            if not self.wait_for_thread():  # never destroy a running thread: keep the window open
                self.show_error("the run did not stop in time; close the window again to retry")
                event.ignore()
                return
            QApplication.processEvents()  # the stopped run's result reaches the session (and the autosave)
        elif self.isWindowModified():
            answer = self.ask_before_losing_work(
                "The trained emulator or the calibration is not saved in a project. Save it before quitting?\n"
                f"(Whatever happens, the last finished stage is in the autosave: {self.autosave_path})")
            if answer == "cancel":
                event.ignore()
                return
        else:
            answer = "discard"
        if answer == "save" and not self._save_before_quitting():
            event.ignore()
            return
        self._save_state()
        for dialog in (self.quick_start_dialog, self.about_dialog):   # help outlives no window
            if dialog is not None:
                dialog.close()
        event.accept()
