"""Run control and progress reporting shared by pretraining and calibration.

The engine loops call an observer with small NumPy snapshots at a bounded rate; a RunControl
lets another thread pause, resume or stop a loop, taking effect between two iterations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch


class RunControl:
    """Thread-safe pause / resume / stop flags, checked by the engine between iterations."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stopped = threading.Event()

    def pause(self) -> None:
        """Hold the loop before its next iteration."""
        self._running.clear()

    def resume(self) -> None:
        """Let a paused loop go on."""
        self._running.set()

    def stop(self) -> None:
        """End the loop before its next iteration (a paused loop wakes up to stop)."""
        self._stopped.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        """True while paused and not stopped."""
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        """True once stop() was called."""
        return self._stopped.is_set()

    def proceed(self) -> bool:
        """Block while paused; return False if the loop should stop."""
        while not self._running.wait(0.1):
            pass
        return not self._stopped.is_set()


@dataclass
class Snapshot:
    """What a loop reports: progress and the losses logged since the previous snapshot.

    Each stage sends its own subclass (``PretrainSnapshot``, ``CalibrationSnapshot``) with what it
    evaluated and the images to draw.

    Attributes
    ----------
    stage : str
        "pretrain" or "calibrate".
    iteration, iterations : int
        Iterations done and planned.
    elapsed, eta : float
        Seconds spent and estimated seconds left.
    rate : float
        Iterations per second over the recent past.
    loss_steps : np.ndarray
        Iteration numbers of the new loss values (every iteration is kept, none sampled).
    losses : dict of str to np.ndarray
        New loss values by loss name, aligned with ``loss_steps``.
    final : bool
        True for the last snapshot of a run.
    simulations : int
        Fresh simulator images the run has made so far.
    simulation_budget : int
        The most it may make; 0 when there is no cap.
    """

    stage: str
    iteration: int
    iterations: int
    elapsed: float
    eta: float
    rate: float
    loss_steps: np.ndarray
    losses: dict[str, np.ndarray]
    final: bool = False
    simulations: int = 0
    simulation_budget: int = 0

    def metrics(self) -> dict[str, float]:
        """The evaluation numbers as a flat name -> value dict, the form project files keep."""
        return {}


@dataclass
class PretrainSnapshot(Snapshot):
    """Pretraining progress: held-out fidelity and the emulator-versus-simulator grid.

    Attributes
    ----------
    fidelity_mse : float or None
        Latest held-out fidelity figure (images in [-1, 1], lower is better); None before the first
        evaluation.
    fidelity_metric : str
        What that figure is: "pixel MSE", or "multi-scale CRPS" (the energy score of pixels, pixel
        blocks and the image's total) for the emulator of a black-box stochastic simulator.
    fidelity_iteration : int or None
        The iteration that evaluation was made at.
    emulated, simulated : np.ndarray
        (rows, H, W) images in [0, 1] of the fixed grid parameter sets.
    grid_params : np.ndarray
        (rows, P) those parameter sets, physical units.
    """

    fidelity_mse: float | None = None
    fidelity_metric: str = "pixel MSE"
    fidelity_iteration: int | None = None
    emulated: np.ndarray | None = None
    simulated: np.ndarray | None = None
    grid_params: np.ndarray | None = None

    def metrics(self) -> dict[str, float]:
        if self.fidelity_mse is None:
            return {}
        return {"fidelity_mse": self.fidelity_mse, "fidelity_iteration": self.fidelity_iteration}


@dataclass
class CalibrationSnapshot(Snapshot):
    """Calibration progress: the averaged generator's samples, image distance and image grid.

    Attributes
    ----------
    image_distance : float or None
        Latest per-pixel mean/std distance between simulated and true images.
    parameter_names : list of str
        Column names of ``samples``.
    samples : np.ndarray
        (n, P) parameter sets from the generator, physical units.
    generated, true : np.ndarray
        (rows, H, W) images in [0, 1]: simulated from generated parameters, and true ones.
    """

    image_distance: float | None = None
    parameter_names: list[str] = field(default_factory=list)
    samples: np.ndarray | None = None
    generated: np.ndarray | None = None
    true: np.ndarray | None = None

    @property
    def means(self) -> np.ndarray:
        """Per-parameter mean of ``samples``."""
        return self.samples.mean(axis=0)

    @property
    def stds(self) -> np.ndarray:
        """Per-parameter standard deviation of ``samples``."""
        return self.samples.std(axis=0, ddof=1)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {} if self.image_distance is None else {"image_distance": self.image_distance}
        if self.samples is not None:
            for name, mean, std in zip(self.parameter_names, self.means, self.stds):
                out[f"mean/{name}"], out[f"std/{name}"] = float(mean), float(std)
        return out


Observer = Callable[[Snapshot], None]


class ProgressLog:
    """Collects per-iteration losses and decides when a snapshot is due.

    A snapshot is due at most every ``interval`` seconds, at the end, and at each iteration of
    ``snapshot_at`` (fixed columns, like the paper's figures).  Losses may be 0-d tensors: they are
    kept on their device and copied to the host once per snapshot, so a GPU loop never waits on
    a per-iteration host round-trip.  Without an observer nothing is recorded.
    """

    def __init__(self, stage: str, iterations: int, interval: float, start_iteration: int = 0,
                 observer: Optional[Observer] = None, snapshot_at: Collection[int] = ()):
        self.stage, self.iterations, self.interval = stage, iterations, interval
        self.observer = observer
        self.snapshot_at = frozenset(int(i) for i in snapshot_at)
        self.start_iteration = start_iteration
        self.t0 = time.perf_counter()
        self._last_emit = -1e9
        self._steps: list[int] = []
        self._losses: dict[str, list[float | torch.Tensor]] = {}
        self._rate_window: list[tuple[float, int]] = [(self.t0, start_iteration)]

    def log(self, iteration: int, **losses: float | torch.Tensor) -> None:
        """Record the losses of one iteration (floats, or detached 0-d tensors left on their device)."""
        if self.observer is None:
            return
        self._steps.append(iteration)
        for key, value in losses.items():
            self._losses.setdefault(key, []).append(value)

    def due(self, iteration: int) -> bool:
        """True when a snapshot should be sent now: rate bound, a fixed column, or the end of the run."""
        return self.observer is not None and (
            time.perf_counter() - self._last_emit >= self.interval or iteration >= self.iterations
            or iteration in self.snapshot_at)

    @property
    def elapsed(self) -> float:
        """Seconds since this run (or resumption) started."""
        return time.perf_counter() - self.t0

    def rate(self, iteration: int) -> float:
        """Iterations per second over the last few snapshots."""
        now = time.perf_counter()
        self._rate_window.append((now, iteration))
        self._rate_window = self._rate_window[-6:]
        (t_a, i_a), (t_b, i_b) = self._rate_window[0], self._rate_window[-1]
        return (i_b - i_a) / (t_b - t_a) if t_b > t_a and i_b > i_a else 0.0

    def emit(self, iteration: int, final: bool = False, kind: type[Snapshot] = Snapshot, **content) -> Snapshot:
        """Build a snapshot of type ``kind`` (its own fields in ``content``) with the losses gathered
        since the last one, and send it to the observer."""
        rate = self.rate(iteration)
        left = max(0, self.iterations - iteration)
        snap = kind(
            stage=self.stage, iteration=iteration, iterations=self.iterations, elapsed=self.elapsed,
            eta=left / rate if rate > 0 else float("nan"), rate=rate,
            loss_steps=np.asarray(self._steps, dtype=np.int64),
            losses={k: _to_numpy(v) for k, v in self._losses.items()},
            final=final, **content)
        self._steps, self._losses = [], {}
        self._last_emit = time.perf_counter()
        if self.observer is not None:
            self.observer(snap)
        return snap


def format_seconds(seconds: float) -> str:
    """A duration as '1:05' or '1:02:03'; '--' when unknown."""
    if not np.isfinite(seconds):
        return "--"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _to_numpy(values: list[float | torch.Tensor]) -> np.ndarray:
    """Losses as float32, with one device-to-host copy for a list of tensors."""
    if values and isinstance(values[0], torch.Tensor):
        return torch.stack(values).float().cpu().numpy()
    return np.asarray(values, dtype=np.float32)
