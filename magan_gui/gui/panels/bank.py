"""Bank panel: simulate the simulator once over the parameter box, in worker processes, and keep it.

The bank is the stage for an expensive simulator: pretraining then learns from the stored images
and makes no simulation of its own (see ``core.bank``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.bank import DEFAULT_CHUNK, BankError, BankSnapshot, BankSummary, build_bank, check_bank
from ...core.cluster import EXTRA_HINT
from ...core.progress import format_seconds
from ..session import Session
from ..widgets import ImageGrid
from ..worker import cpu_cores

# where the chunks run: (label, what the target field holds, or None when it is not needed)
EXECUTORS = [("this computer", None), ("a Dask cluster on this computer", None),
             ("a Dask scheduler", "scheduler address, e.g. tcp://host:8786"),
             ("a batch cluster (dask-jobqueue file)", "jobqueue file (.yaml or .toml)")]


class BankPanel(QWidget):
    """Panel 2: make (or finish) a simulation bank and watch its images arrive."""

    stage = "bank"
    error = Signal(str)
    start_requested = Signal(object)   # a job: callable(observer, control) -> BankSummary
    stop_requested = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.last_folder = str(Path.cwd())
        self.running = False

        self.count = QSpinBox()
        self.count.setRange(20, 100_000_000)
        self.count.setValue(20000)
        self.count.setToolTip("Parameter sets to simulate, spread evenly over the pretraining box (a Sobol design)")
        self.workers = QSpinBox()
        self.workers.setRange(1, max(1, cpu_cores()))
        self.workers.setValue(1)
        self.workers.setToolTip("Simulator processes running side by side (1: inside the app's worker thread)")
        self.executor = QComboBox()
        self.executor.addItems([label for label, _ in EXECUTORS])
        self.executor.setToolTip("Where the chunks run: worker processes of this app, or Dask (a local cluster, a "
                                 "running scheduler, or Slurm/HTCondor/PBS jobs described by a dask-jobqueue file)")
        if importlib.util.find_spec("distributed") is None:  # Dask is an optional extra
            for row in range(1, len(EXECUTORS)):
                self.executor.model().item(row).setEnabled(False)
            self.executor.setToolTip(f"Dask is not installed ({EXTRA_HINT}): the chunks run on this computer")
        self.target = QLineEdit()
        self.target_button = QPushButton("File…")
        self.target_button.setToolTip("Choose the dask-jobqueue file")
        self.chunk = QSpinBox()
        self.chunk.setRange(1, 1_000_000)
        self.chunk.setValue(DEFAULT_CHUNK)
        self.chunk.setToolTip("Images per chunk: the unit of work, committed to the file as it finishes")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Seed of the design and of each chunk's random numbers")
        self.path = QLineEdit()
        self.path.setPlaceholderText("bank file (.h5)")
        self.choose_button = QPushButton("File…")
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Simulate a new bank into the file")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Finish the bank in the file: finished chunks are kept, the rest simulated")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the chunks under way; every finished chunk stays in the file")
        self.open_button = QPushButton("Use an existing bank…")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m images")
        self.status = QLabel("No bank yet. A bank is worth it when each simulation is expensive: pretraining "
                             "then learns from it and simulates nothing itself.")
        self.status.setWordWrap(True)
        self.dashboard = QLabel()
        self.dashboard.setOpenExternalLinks(True)
        self.dashboard.setVisible(False)
        self.grid = ImageGrid("latest banked images")

        form = QFormLayout()
        form.addRow("images", self.count)
        form.addRow("run on", self.executor)
        target_row = QHBoxLayout()
        target_row.addWidget(self.target, 1)
        target_row.addWidget(self.target_button)
        form.addRow("", target_row)
        form.addRow("workers", self.workers)
        form.addRow("chunk size", self.chunk)
        form.addRow("seed", self.seed)
        file_row = QHBoxLayout()
        file_row.addWidget(self.path, 1)
        file_row.addWidget(self.choose_button)
        form.addRow("file", file_row)
        box = QGroupBox("Settings")
        box.setLayout(form)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.resume_button, self.stop_button):
            buttons.addWidget(b)
        controls = QVBoxLayout()
        controls.addWidget(box)
        controls.addLayout(buttons)
        controls.addWidget(self.progress)
        controls.addWidget(self.status)
        controls.addWidget(self.dashboard)
        controls.addWidget(self.open_button)
        controls.addStretch(1)
        left = QWidget()
        left.setLayout(controls)
        left.setMaximumWidth(420)
        layout = QHBoxLayout(self)
        layout.addWidget(left)
        layout.addWidget(self.grid, 1)

        self.choose_button.clicked.connect(self.choose_file)
        self.start_button.clicked.connect(lambda: self.request_start(resume=False))
        self.resume_button.clicked.connect(lambda: self.request_start(resume=True))
        self.stop_button.clicked.connect(self.stop_requested)
        self.open_button.clicked.connect(self.choose_existing)
        self.executor.currentIndexChanged.connect(self._executor_changed)
        self.target_button.clicked.connect(self.choose_jobqueue_file)
        session.simulator_changed.connect(self._simulator_changed)
        self._executor_changed()
        self.set_running(False)

    # -- settings -------------------------------------------------------------------------------------
    def _simulator_changed(self, simulator) -> None:
        if not self.path.text():
            self.path.setText(str(Path(self.last_folder) / f"bank-{Path(simulator.name).stem}.h5"))

    def _executor_changed(self) -> None:
        """Show the field the chosen executor needs: an address, a file, or a number of workers."""
        row = self.executor.currentIndex()
        hint = EXECUTORS[row][1]
        self.target.setVisible(hint is not None)
        self.target.setPlaceholderText(hint or "")
        self.target_button.setVisible(row == 3)
        self.workers.setEnabled(row in (0, 1) and not self.running)
        self.workers.setToolTip("Dask worker processes on this computer" if row == 1 else
                                "Simulator processes running side by side (1: inside the app's worker thread)")

    def cluster_spec(self) -> str | None:
        """What the chosen executor means for build_bank's ``cluster`` (None: this computer's processes)."""
        row = self.executor.currentIndex()
        if row == 0:
            return None
        if row == 1:
            return f"local:{self.workers.value()}"
        return self.target.text().strip()

    def choose_jobqueue_file(self) -> None:
        """Pick the dask-jobqueue file that describes the batch cluster."""
        path, _ = QFileDialog.getOpenFileName(self, "dask-jobqueue file", self.last_folder,
                                              "Cluster file (*.yaml *.yml *.toml);;All files (*)")
        if path:
            self.target.setText(path)

    def choose_file(self) -> None:
        """Ask where the bank goes (the dialog confirms replacing a file)."""
        path, _ = QFileDialog.getSaveFileName(self, "Bank file", self.path.text() or self.last_folder,
                                              "Simulation bank (*.h5)")
        if path:
            self.path.setText(path if path.endswith(".h5") else path + ".h5")
            self.last_folder = str(Path(path).parent)

    def choose_existing(self) -> None:
        """Use a bank made before (by magan bank or this app) for pretraining."""
        path, _ = QFileDialog.getOpenFileName(self, "Simulation bank", self.last_folder,
                                              "Simulation bank (*.h5);;All files (*)")
        if path:
            self.use_existing(path)

    def use_existing(self, path: str) -> bool:
        """Check a bank file against the simulator and offer it to pretraining; say why not otherwise."""
        simulator = self.session.simulator
        if simulator is None:
            self.error.emit("choose a simulator on the True images panel first")
            return False
        try:
            attrs = check_bank(path, simulator)
        except BankError as exc:
            self.error.emit(str(exc))
            return False
        self.path.setText(path)
        if attrs["chunks_done"] < attrs["chunks"]:
            self.status.setText(f"{path}: {attrs['chunks_done']} of {attrs['chunks']} chunks done — press Resume "
                                "to finish it")
            return False
        self.session.set_bank(path, int(attrs["n"]))
        self.status.setText(f"using {path}: {int(attrs['n']):,} images of {simulator.name}")
        return True

    # -- runs -----------------------------------------------------------------------------------------
    def request_start(self, resume: bool) -> None:
        """Build the bank job from the settings and ask the main window to run it."""
        simulator = self.session.simulator
        path = self.path.text().strip()
        if simulator is None:
            self.error.emit("choose a simulator on the True images panel first")
            return
        if not path:
            self.error.emit("choose the bank file first")
            return
        if not resume and Path(path).exists():
            self.error.emit(f"{path} already exists: press Resume to finish it, or choose another file")
            return
        n, seed, chunk, workers = self.count.value(), self.seed.value(), self.chunk.value(), self.workers.value()
        cluster = self.cluster_spec()
        if cluster == "":
            self.error.emit(f"give the {EXECUTORS[self.executor.currentIndex()][1].split(',')[0]} first")
            return
        if cluster is not None:
            workers = 1

        def job(observe, control) -> BankSummary:
            return build_bank(simulator, path, n, seed=seed, chunk_size=chunk, workers=workers, cluster=cluster,
                              resume=resume, observer=observe, control=control)

        self.progress.setMaximum(n)
        self.progress.setValue(0)
        self.dashboard.setVisible(False)
        self.start_requested.emit(job)
        if self.running:
            self.status.setText("starting: " + ("connecting to Dask…" if cluster else
                                                "launching the worker processes…" if workers > 1 else
                                                "simulating the first chunk…"))

    def set_running(self, running: bool) -> None:
        """Enable what makes sense now."""
        self.running = running
        for w in (self.start_button, self.resume_button, self.open_button, self.choose_button, self.count,
                  self.workers, self.chunk, self.seed, self.path, self.executor, self.target, self.target_button):
            w.setEnabled(not running)
        self.stop_button.setEnabled(running)
        if not running:
            self._executor_changed()
            self.dashboard.setVisible(False)  # a cluster the bank started is gone with it

    def set_startable(self, startable: bool) -> None:
        """Start and Resume are off while another job runs."""
        for w in (self.start_button, self.resume_button):
            w.setEnabled(startable and not self.running)

    def on_snapshot(self, snap: BankSnapshot) -> None:
        """Progress: images made, images per second, time left, and the latest images."""
        self.progress.setMaximum(snap.iterations)
        self.progress.setValue(snap.iteration)
        self.status.setText(f"{snap.iteration:,} of {snap.iterations:,} images · {snap.rate:,.1f} images/s · "
                            f"elapsed {format_seconds(snap.elapsed)} · left {format_seconds(snap.eta)}"
                            + self._executor_text(snap.executor))
        link = snap.executor.dashboard if snap.executor is not None else None
        if link:
            self.dashboard.setText(f'Dask dashboard: <a href="{link}">{link}</a>')
        self.dashboard.setVisible(bool(link))
        if snap.latest is not None and len(snap.latest):
            images = np.asarray(snap.latest)
            cols = 4
            self.grid.set_rows([list(images[i:i + cols]) for i in range(0, len(images), cols)],
                               f"the last {len(images)} images of the chunk just committed")

    @staticmethod
    def _executor_text(executor) -> str:
        """Workers connected, chunks retried and failed, for a bank on Dask ('' on this computer)."""
        if executor is None or not executor.dask:
            return ""
        text = f"\n{executor.description}: {executor.workers} worker(s) connected"
        if executor.retried:
            text += f" · {executor.retried} chunk run(s) repeated"
        if executor.failed:
            text += f" · {executor.failed} chunk(s) failed"
        return text

    def on_finished(self, summary: BankSummary) -> None:
        """The bank job ended: offer a complete bank to pretraining."""
        if summary.stopped:
            self.status.setText(f"stopped: {summary.made_now:,} images made in {summary.seconds:.0f} s and kept; "
                                "press Resume to finish the bank")
            return
        rate = summary.made_now / summary.seconds if summary.seconds > 0 else float("nan")
        self.session.set_bank(str(summary.path), summary.n_images)
        self.status.setText(f"done: {summary.made_now:,} images made in {summary.seconds:.0f} s ({rate:,.1f} "
                            f"images/s); {summary.path} holds {summary.n_images:,} — pretraining can learn from it"
                            + self._executor_text(summary.executor))
