"""EngineWorker on a real QThread, with fake jobs: back-pressure, merged losses, errors, pause and stop."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import torch
from PySide6.QtCore import QObject, Slot

from magan_gui.core.errors import ConfigError
from magan_gui.core.progress import Snapshot
from magan_gui.gui.worker import cpu_cores, merge_losses, start_worker, training_threads

N = 400  # snapshots a fake job sends


def snapshot(i: int, final: bool = False, n: int = N) -> Snapshot:
    """The snapshot after iteration i: one loss step (i) with two losses."""
    return Snapshot(stage="pretrain", iteration=i, iterations=n, elapsed=0.0, eta=0.0, rate=0.0,
                    loss_steps=np.array([i], np.int64),
                    losses={"a": np.array([float(i)], np.float32), "b": np.array([-float(i)], np.float32)},
                    final=final)


class Harness(QObject):
    """Stands for the GUI: lives in the main thread, runs ``job`` through start_worker, records what arrives.

    The job is held at a gate until every connection is made, so no signal can be missed.
    """

    def __init__(self, job, call_drawn: bool, threads: int | None = None):
        super().__init__()
        self.call_drawn = call_drawn
        self.snapshots: list[Snapshot] = []
        self.results: list = []
        self.failures: list[str] = []
        self.thread_done = False
        self.slot_threads: set[int] = set()
        gate = self.gate = threading.Event()

        def gated(observe, control):
            if not gate.wait(30):
                raise RuntimeError("the test never opened the gate")
            return job(observe, control)

        self.worker, thread = start_worker(gated, self, threads)
        self.control = self.worker.control
        self.worker.snapshot.connect(self.on_snapshot)
        self.worker.finished.connect(self.on_finished)
        self.worker.failed.connect(self.on_failed)
        thread.finished.connect(self.on_thread_finished)
        self.thread = thread  # deleted (deleteLater) once finished: only touch it before that

    def go(self) -> Harness:
        self.gate.set()
        return self

    @Slot(object)
    def on_snapshot(self, snap: Snapshot) -> None:
        self.snapshots.append(snap)
        self.slot_threads.add(threading.get_ident())
        if self.call_drawn:
            self.worker.drawn()

    @Slot(object)
    def on_finished(self, result) -> None:
        self.results.append(result)

    @Slot(str)
    def on_failed(self, message: str) -> None:
        self.failures.append(message)

    @Slot()
    def on_thread_finished(self) -> None:
        self.thread_done = True


def delivered_steps(snaps: list[Snapshot]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    steps = np.concatenate([s.loss_steps for s in snaps])
    losses = {k: np.concatenate([s.losses[k] for s in snaps]) for k in ("a", "b")}
    return steps, losses


def test_back_pressure_holds_snapshots_until_drawn(qtbot):
    sent_all = threading.Event()
    release = threading.Event()

    def job(observe, control):
        for i in range(1, N):
            observe(snapshot(i))
        sent_all.set()
        release.wait(30)
        observe(snapshot(N, final=True))
        return "done"

    h = Harness(job, call_drawn=False).go()
    qtbot.waitUntil(sent_all.is_set, timeout=10000)
    qtbot.wait(100)  # every queued signal has had its chance to arrive
    assert len(h.snapshots) == 1, "only one snapshot may be in flight while the GUI has not drawn it"
    assert h.snapshots[0].iteration == 1

    h.worker.drawn()
    release.set()
    qtbot.waitUntil(lambda: h.thread_done, timeout=10000)
    assert h.results == ["done"] and h.failures == []
    assert len(h.snapshots) == 2
    last = h.snapshots[-1]
    assert last.final and last.iteration == N
    steps, losses = delivered_steps(h.snapshots)
    assert np.array_equal(steps, np.arange(1, N + 1)), "every loss step arrives exactly once, in order"
    assert np.array_equal(losses["a"], steps.astype(np.float32))
    assert np.array_equal(losses["b"], -steps.astype(np.float32))
    assert h.slot_threads == {threading.get_ident()}  # drawn in the GUI thread


def test_final_snapshot_is_delivered_even_while_one_is_in_flight(qtbot):
    def job(observe, control):
        for i in range(1, N + 1):
            observe(snapshot(i, final=i == N))
        return N

    h = Harness(job, call_drawn=False).go()     # the GUI never says it has drawn anything
    qtbot.waitUntil(lambda: h.thread_done, timeout=10000)
    assert [s.iteration for s in h.snapshots] == [1, N]
    assert h.snapshots[-1].final
    steps, _ = delivered_steps(h.snapshots)
    assert np.array_equal(steps, np.arange(1, N + 1))


def test_fast_job_with_a_drawing_gui_loses_no_step(qtbot):
    def job(observe, control):
        for i in range(1, N + 1):
            observe(snapshot(i, final=i == N))
        return N

    h = Harness(job, call_drawn=True).go()
    qtbot.waitUntil(lambda: h.thread_done, timeout=10000)
    assert h.results == [N]
    assert 1 <= len(h.snapshots) <= N
    assert sum(s.final for s in h.snapshots) == 1 and h.snapshots[-1].final
    steps, losses = delivered_steps(h.snapshots)
    assert np.array_equal(steps, np.arange(1, N + 1))
    assert np.array_equal(losses["a"], steps.astype(np.float32))


def test_merge_losses_keeps_every_step_and_aligns_new_losses():
    held = snapshot(1)
    held.losses.pop("b")                       # a loss that only the later snapshot has
    merged = merge_losses(held, snapshot(2))
    assert np.array_equal(merged.loss_steps, [1, 2])
    assert np.array_equal(merged.losses["a"], [1.0, 2.0])
    assert len(merged.losses["b"]) == 2 and np.isnan(merged.losses["b"][0]) and merged.losses["b"][1] == -2.0
    assert merge_losses(None, held) is held


def test_a_failing_job_reports_a_readable_message(qtbot):
    def job(observe, control):
        observe(snapshot(1))
        raise RuntimeError("the plugin broke\nTraceback details nobody wants in a message box")

    h = Harness(job, call_drawn=True).go()
    qtbot.waitUntil(lambda: h.thread_done, timeout=10000)
    assert h.failures == ["RuntimeError: the plugin broke"] and h.results == []

    def bad_value(observe, control):
        raise ConfigError("batch size must be at least 1")

    h = Harness(bad_value, call_drawn=True).go()
    qtbot.waitUntil(lambda: h.thread_done, timeout=10000)
    assert h.failures == ["batch size must be at least 1"]   # a user error is shown as it is

    def bug(observe, control):
        raise ValueError("math domain error")

    h = Harness(bug, call_drawn=True).go()
    qtbot.waitUntil(lambda: h.thread_done, timeout=10000)
    assert h.failures == ["ValueError: math domain error"]   # a bug names its type (and prints its traceback)

    def empty(observe, control):
        raise KeyError()

    h = Harness(empty, call_drawn=True).go()
    qtbot.waitUntil(lambda: h.thread_done, timeout=10000)
    assert h.failures == ["KeyError: KeyError"]


def test_pause_resume_and_stop_through_control(qtbot):
    counter = {"n": 0}

    def job(observe, control):
        while control.proceed():
            counter["n"] += 1
            time.sleep(0.002)  # the fake iteration (worker thread)
        return counter["n"]

    h = Harness(job, call_drawn=True).go()
    qtbot.waitUntil(lambda: counter["n"] > 5, timeout=10000)
    h.control.pause()
    assert h.control.paused
    qtbot.wait(50)                              # the iteration under way ends
    held = counter["n"]
    qtbot.wait(300)
    assert counter["n"] == held, "a paused job must not iterate"

    h.control.resume()
    qtbot.waitUntil(lambda: counter["n"] > held + 5, timeout=10000)
    h.control.stop()
    qtbot.waitUntil(lambda: h.thread_done, timeout=10000)
    assert h.control.stopped
    assert len(h.results) == 1 and h.results[0] >= held + 5


def test_stop_wakes_a_paused_job(qtbot):
    def job(observe, control):
        control.pause()
        return control.proceed()

    h = Harness(job, call_drawn=True).go()
    qtbot.waitUntil(lambda: h.control.paused, timeout=10000)
    qtbot.wait(150)
    assert not h.thread_done                   # still held by the pause
    h.control.stop()
    qtbot.waitUntil(lambda: h.thread_done, timeout=10000)
    assert h.results == [False]


def test_thread_ends_while_the_gui_thread_waits_for_it(qtbot):
    """Closing the window blocks the GUI thread in QThread.wait(): the thread must still end."""
    started = threading.Event()

    def job(observe, control):
        started.set()
        while control.proceed():
            time.sleep(0.002)
        return None

    h = Harness(job, call_drawn=True).go()
    qtbot.waitUntil(started.is_set, timeout=10000)
    h.control.stop()
    t0 = time.perf_counter()
    assert h.thread.wait(10000), "the thread did not end while the GUI thread was blocked in wait()"
    assert time.perf_counter() - t0 < 5
    qtbot.waitUntil(lambda: h.thread_done, timeout=10000)


def test_training_gets_every_core_at_the_gui_threads_own_priority(qtbot):
    """The app's thread policy: on Linux all cores at normal priority (a raised nice value handed the
    cores to every other program too), elsewhere one core left free."""
    seen: dict[str, int] = {}

    def job(observe, control):
        seen["threads"] = torch.get_num_threads()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if hasattr(os, "getpriority") else 0
        return "done"

    threads = training_threads()
    h = Harness(job, call_drawn=True, threads=threads).go()
    qtbot.waitUntil(lambda: h.results == ["done"] and h.thread_done, timeout=10000)
    if sys.platform.startswith("linux"):
        assert threads == cpu_cores()
        assert seen["nice"] == os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    else:
        assert threads == max(1, cpu_cores() - 1)
    assert seen["threads"] == threads
