"""RunControl semantics and the ProgressLog's bounded, lossless reporting."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from magan_gui.core.progress import PretrainSnapshot, ProgressLog, RunControl, Snapshot


def test_run_control_initial_state():
    control = RunControl()
    assert not control.paused and not control.stopped
    assert control.proceed() is True


def test_pause_and_resume_flags():
    control = RunControl()
    control.pause()
    assert control.paused and not control.stopped
    control.resume()
    assert not control.paused
    assert control.proceed() is True


def test_stop_makes_proceed_false_and_is_final():
    control = RunControl()
    control.stop()
    assert control.stopped and not control.paused
    assert control.proceed() is False
    control.resume()
    assert control.proceed() is False
    control.pause()
    control.stop()
    assert control.proceed() is False


def test_stop_wakes_a_paused_proceed():
    control = RunControl()
    control.pause()
    timer = threading.Timer(0.2, control.stop)
    timer.start()
    try:
        assert control.proceed() is False
    finally:
        timer.cancel()
    assert control.stopped


def test_resume_wakes_a_paused_proceed():
    control = RunControl()
    control.pause()
    timer = threading.Timer(0.2, control.resume)
    timer.start()
    try:
        assert control.proceed() is True
    finally:
        timer.cancel()


def _drive(log: ProgressLog, iterations: int, snaps: list[Snapshot]) -> None:
    for i in range(1, iterations + 1):
        log.log(i, loss=float(i), other=-float(i))
        if log.due(i):
            log.emit(i)
    log.emit(iterations, final=True)


def test_large_interval_only_final_emission():
    snaps: list[Snapshot] = []
    log = ProgressLog("pretrain", 50, interval=1e12, observer=snaps.append)
    emitted_at = [i for i in range(1, 50) if log.due(i)]
    assert emitted_at == []
    assert log.due(50)  # the end of the run is always due
    _drive(log, 50, snaps)
    assert [s.iteration for s in snaps] == [50, 50]
    assert [s.final for s in snaps] == [False, True]


def test_rate_bound_at_most_one_snapshot_per_interval():
    snaps: list[Snapshot] = []
    log = ProgressLog("calibrate", 200, interval=3600.0, observer=snaps.append)
    _drive(log, 200, snaps)
    mid_run = [s for s in snaps if s.iteration < 200]
    assert len(mid_run) <= 1  # at most one before the end within an hour-long interval
    assert snaps[-1].final and snaps[-1].iteration == 200


def test_no_observer_never_due():
    log = ProgressLog("pretrain", 10, interval=0.0, observer=None)
    assert not log.due(1) and not log.due(10)


@pytest.mark.parametrize("interval, every", [(0.0, 7), (0.0, 1), (1e12, 1)])
def test_every_logged_loss_reaches_the_observer_exactly_once(interval, every):
    snaps: list[Snapshot] = []
    n = 50
    log = ProgressLog("pretrain", n, interval=interval, observer=snaps.append)
    for i in range(1, n + 1):
        log.log(i, loss=i * 0.5, other=-i)
        if i % every == 0 and log.due(i):
            log.emit(i)
    log.emit(n, final=True)
    steps = np.concatenate([s.loss_steps for s in snaps])
    np.testing.assert_array_equal(steps, np.arange(1, n + 1))
    losses = np.concatenate([s.losses.get("loss", np.zeros(0, np.float32)) for s in snaps])
    others = np.concatenate([s.losses.get("other", np.zeros(0, np.float32)) for s in snaps])
    np.testing.assert_allclose(losses, np.arange(1, n + 1) * 0.5)
    np.testing.assert_allclose(others, -np.arange(1, n + 1))
    for s in snaps:
        assert s.loss_steps.dtype == np.int64
        for values in s.losses.values():
            assert values.shape == s.loss_steps.shape and values.dtype == np.float32


def test_emit_returns_the_snapshot_it_sends():
    sent = []
    log = ProgressLog("pretrain", 4, interval=0.0, start_iteration=2, observer=sent.append)
    log.log(3, loss=1.0)
    snap = log.emit(3, kind=PretrainSnapshot, fidelity_mse=0.5, fidelity_iteration=3)
    assert snap.stage == "pretrain" and snap.iteration == 3 and snap.iterations == 4
    assert isinstance(snap, PretrainSnapshot) and snap.metrics() == {"fidelity_mse": 0.5, "fidelity_iteration": 3}
    assert list(snap.loss_steps) == [3]
    assert snap.elapsed >= 0 and sent == [snap]
    # a second emit carries nothing already sent
    assert len(log.emit(4).loss_steps) == 0


def test_tensor_losses_reach_the_snapshot_as_floats_and_fixed_columns_are_due():
    import torch

    snaps = []
    log = ProgressLog("pretrain", 10, interval=1e9, observer=snaps.append, snapshot_at=(3,))
    log.log(1, loss=torch.tensor(0.5))
    log.due(1)  # the first snapshot is always due (nothing was sent yet)
    log.emit(1)
    log.log(2, loss=torch.tensor(0.25))
    assert not log.due(2) and log.due(3) and log.due(10)
    log.log(3, loss=torch.tensor(0.125))
    log.emit(3)
    assert snaps[1].losses["loss"].dtype == np.float32
    assert snaps[1].losses["loss"].tolist() == [0.25, 0.125] and snaps[1].loss_steps.tolist() == [2, 3]


def test_without_an_observer_nothing_accumulates():
    log = ProgressLog("calibrate", 10, interval=0.0)
    for i in range(100):
        log.log(i, loss=1.0)
    assert log._steps == [] and log._losses == {}
