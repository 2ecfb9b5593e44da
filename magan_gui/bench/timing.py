"""Where a benchmark's time goes: wall time per stage, iterations per second and, on CUDA, the
share of the time the GPU was busy.

The busy share is the driver's utilisation figure (the fraction of each sample period in which
a kernel ran), sampled in a background thread through NVML (``torch.cuda.utilization``) or,
without it, ``nvidia-smi``.  It says how much of a stage the GPU waited for the host: Python,
kernel launches, synchronisations.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch


def _utilisation_reader(device: torch.device):
    """A function returning the GPU's utilisation in percent now, or None where it cannot be read."""
    if device.type != "cuda":
        return None
    try:
        torch.cuda.utilization(device)
        return lambda: float(torch.cuda.utilization(device))
    except Exception:  # no NVML bindings: ask the driver's command-line tool
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return None
        index = device.index if device.index is not None else torch.cuda.current_device()

        def read() -> float | None:
            out = subprocess.run([smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                  f"--id={index}"], capture_output=True, text=True, timeout=5)
            return float(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None
        return read


@dataclass
class StageTiming:
    """One stage's wall time, iterations, the training loop's own seconds (without set-up and the
    result's checks) and GPU busy share (None off CUDA or where unreadable)."""

    stage: str
    seconds: float = 0.0
    iterations: int = 0
    loop_seconds: float = 0.0
    gpu_busy: float | None = None

    def count(self, iterations: int, loop_seconds: float) -> None:
        """Record the stage's training loop: its iterations and its own seconds."""
        self.iterations, self.loop_seconds = int(iterations), float(loop_seconds)

    @property
    def iterations_per_second(self) -> float | None:
        seconds = self.loop_seconds or self.seconds
        return self.iterations / seconds if self.iterations and seconds > 0 else None

    def as_dict(self) -> dict[str, Any]:
        rate = self.iterations_per_second
        return {"stage": self.stage, "seconds": round(self.seconds, 2), "iterations": self.iterations,
                "loop_seconds": round(self.loop_seconds, 2),
                "iterations_per_second": None if rate is None else round(rate, 2),
                "gpu_busy": None if self.gpu_busy is None else round(self.gpu_busy, 3)}


class StageTimer:
    """Times consecutive stages on a device: ``begin("pretraining")`` ends the stage before it;
    ``end()`` ends the last.  A background thread samples the GPU's utilisation meanwhile."""

    def __init__(self, device: torch.device | str, period: float = 0.25):
        self.device, self.period = torch.device(device), period
        self.read = _utilisation_reader(self.device)
        self.stages: list[StageTiming] = []
        self._current: StageTiming | None = None
        self._samples: list[float] = []
        self._started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, name: str) -> StageTiming:
        self.end()
        self._current = StageTiming(name)
        self.stages.append(self._current)
        self._samples = []
        if self.read is not None:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, args=(self._samples, self._stop), daemon=True)
            self._thread.start()
        self._started = time.perf_counter()
        return self._current

    def end(self) -> None:
        if self._current is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._current.seconds = time.perf_counter() - self._started
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._samples:
            self._current.gpu_busy = sum(self._samples) / len(self._samples) / 100.0
        self._current = None

    def _sample(self, samples: list[float], stop: threading.Event) -> None:
        while not stop.wait(self.period):
            try:
                value = self.read()
            except Exception:  # the driver stopped answering: the share is what was read so far
                return
            if value is not None:
                samples.append(value)

    def as_list(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.stages]


def timing_markdown(stages: list[dict[str, Any]]) -> str:
    """A stage | seconds | iterations | it/s | GPU busy table."""
    lines = ["| stage | seconds | iterations | iterations/s (training loop) | GPU busy |", "|---|---|---|---|---|"]
    for s in stages:
        rate = "–" if s["iterations_per_second"] is None else f"{s['iterations_per_second']:.1f}"
        busy = "–" if s["gpu_busy"] is None else f"{100 * s['gpu_busy']:.0f}%"
        lines.append(f"| {s['stage']} | {s['seconds']:.1f} | {s['iterations'] or '–'} | {rate} | {busy} |")
    return "\n".join(lines)
