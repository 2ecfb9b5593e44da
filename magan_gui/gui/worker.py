"""Runs engine jobs in a worker thread and turns their snapshots into Qt signals.

One ``EngineWorker`` object is moved to a ``QThread``; it never touches a widget.  The engine
calls the worker's observer from the worker thread; the observer emits a signal, and Qt queues
it to the GUI thread.  Back-pressure: while the GUI has not drawn the previous snapshot, newer
ones are dropped (their losses are kept and folded into the next one sent), so the GUI never
accumulates a backlog and no logged step is lost.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from ..core.errors import MaganError
from ..core.progress import RunControl, Snapshot

Job = Callable[[Callable[[Any], None], RunControl], Any]


def cpu_cores() -> int:
    """The cores this process may run on (read from the OS, so it does not matter what torch was told)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else max(1, os.cpu_count() or 1)


def keep_gui_thread_serial() -> None:
    """Run the GUI thread's own (light) tensor work on one thread.

    Each thread that runs parallel torch work keeps its own OpenMP thread pool.  A second pool on
    the GUI thread makes libgomp count more threads than cores, and it then stops spin-waiting
    between the worker's parallel regions, which made training in the app about 10% slower
    (12.6 against 13.8 it/s in one measurement).
    """
    torch.set_num_threads(1)


def training_threads() -> int:
    """Torch threads for a training job, which runs at the GUI's own (normal) priority.

    On Linux training takes every core: the scheduler still hands the GUI thread, which sleeps
    between events, a core the moment it wakes (event-loop p99 4 ms at full training speed).  A
    lowered priority (nice +10) was measured to hand the cores to any other program as well: with a
    busy loop beside it the app trained at 48% of ``magan calibrate``'s speed; at normal priority at
    90%, p99 6 ms (``scripts/bench_gui.py --busy``).  Elsewhere training leaves the GUI a core.
    """
    cores = cpu_cores()
    return cores if sys.platform.startswith("linux") else max(1, cores - 1)


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's malloc_trim); False where there is none.

    A long run in the app allocates and frees arrays of every size in two threads; glibc keeps the
    freed pages, and resident memory crept up by steps late in a 50,000-iteration run.
    """
    trim = getattr(libc(), "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The C library, loaded once (None where there is none to find)."""
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def merge_losses(held: Snapshot | None, snap: Snapshot) -> Snapshot:
    """Prepend the losses of a dropped snapshot to the next one, so every step reaches the GUI."""
    if held is None:
        return snap

    def part(losses: dict[str, np.ndarray], key: str, n: int) -> np.ndarray:
        # a loss missing from one snapshot is NaN over its steps, so every curve stays aligned with the steps
        return np.asarray(losses[key], np.float32) if key in losses else np.full(n, np.nan, np.float32)

    steps = np.concatenate([held.loss_steps, snap.loss_steps])
    n_held, n_new = len(held.loss_steps), len(snap.loss_steps)
    losses = {k: np.concatenate([part(held.losses, k, n_held), part(snap.losses, k, n_new)])
              for k in set(held.losses) | set(snap.losses)}
    snap.loss_steps, snap.losses = steps, losses
    return snap


class EngineWorker(QObject):
    """Runs one job (a pretraining or calibration) in its thread; reports through signals.

    Signals
    -------
    snapshot(object)     a Snapshot to draw; call ``drawn()`` when done so the next one can come
    stage_done(object)   what a finished stage of a multi-stage job produced (always delivered, in order)
    finished(object)     the job's return value
    failed(str)          a readable error message (the job raised)
    """

    snapshot = Signal(object)
    stage_done = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, job: Job, threads: int | None = None):
        super().__init__()
        self.job = job
        self.control = RunControl()
        self.threads = threads
        self._lock = threading.Lock()
        self._in_flight = False
        self._held: Snapshot | None = None

    def observe(self, snap: Any) -> None:
        """Engine observer (worker thread): emit a snapshot now, or hold it until the GUI has drawn the
        last one; anything else (a stage's outcome) is sent at once."""
        if not isinstance(snap, Snapshot):
            self.stage_done.emit(snap)
            return
        with self._lock:
            snap = merge_losses(self._held, snap)
            if self._in_flight and not snap.final:
                self._held = snap
                return
            self._held = None
            self._in_flight = True
        self.snapshot.emit(snap)

    @Slot()
    def drawn(self) -> None:
        """Called by the GUI thread after drawing a snapshot."""
        with self._lock:
            self._in_flight = False

    @Slot()
    def run(self) -> None:
        """Thread entry point: run the job, then emit finished or failed."""
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            result = self.job(self.observe, self.control)
        except Exception as exc:  # anything from the engine or a plugin becomes a message in the window
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if not isinstance(exc, MaganError):  # a bug: keep its traceback for the report
                traceback.print_exc()
                message = f"{type(exc).__name__}: {message}"
            self.failed.emit(message)
            return
        self.finished.emit(result)


def start_worker(job: Job, parent: QObject, threads: int | None = None) -> tuple[EngineWorker, QThread]:
    """Create a worker and its thread, wire finished/failed -> quit -> deleteLater, and start it."""
    thread = QThread(parent)
    worker = EngineWorker(job, threads)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # quit() is thread-safe: called directly from the worker thread, the thread ends even while the GUI
    # thread is blocked in QThread.wait() (closing the window during a run); queued, it would deadlock there
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    worker.failed.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    # The worker is not deleteLater()-ed in its own thread: destroying a Python-owned QObject there
    # takes Qt's connection mutex and then waits for the GIL, while the GUI thread may hold the GIL
    # and wait for that mutex (seen as a hang).  The owner drops its reference once the thread has
    # finished, so the worker is destroyed in the GUI thread.
    thread.finished.connect(thread.deleteLater)
    thread.start()
    return worker, thread
