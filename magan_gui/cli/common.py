"""What the ``magan`` subcommands share: argument types, common options, the progress bar, Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from ..core.progress import CalibrationSnapshot, PretrainSnapshot, RunControl, Snapshot, format_seconds

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3  # training diverged: the last finite state is kept, no result written
DEVICE_HELP = "auto (CUDA when present), cpu, cuda or cuda:N"


def floats(text: str) -> list[float]:
    """Comma-separated numbers, as an argparse type."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def positive_int(text: str) -> int:
    """A whole number of at least 1, as an argparse type."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def names(text: str) -> list[str]:
    """Comma-separated names, as an argparse type."""
    return [v.strip() for v in text.split(",") if v.strip()]


def add_run_options(p: argparse.ArgumentParser, seed: bool = True) -> None:
    """--device, --seed, --force and --quiet, which every running command takes."""
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    if seed:
        p.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's, 0)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


class ProgressBar:
    """Draws snapshots as a one-line progress bar on stderr (a line per 10% when not a terminal)."""

    def __init__(self, label: str, stream: TextIO | None = None):
        self.label, self.stream = label, stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_decile = -1

    def __call__(self, snap: Snapshot) -> None:
        frac = snap.iteration / max(1, snap.iterations)
        extra = ""
        if isinstance(snap, PretrainSnapshot) and snap.fidelity_mse is not None:
            extra = f" fidelity {snap.fidelity_mse:.4f}"
        if isinstance(snap, CalibrationSnapshot) and snap.image_distance is not None:
            extra = f" image distance {snap.image_distance:.4f}"
        executor = getattr(snap, "executor", None)
        if executor is not None and executor.dask:
            extra = f" {executor.workers} worker(s)" + (f", {executor.retried} retried" if executor.retried else "")
        bar = "#" * int(frac * 24)
        unit = "images/s" if snap.stage == "bank" else "it/s"
        text = (f"{self.label} [{bar:<24}] {snap.iteration}/{snap.iterations} {snap.rate:5.1f} {unit} "
                f"left {format_seconds(snap.eta)}{extra}")
        if self.tty:
            self.stream.write("\r" + text.ljust(100) + ("\n" if snap.final else ""))
            self.stream.flush()
        elif int(frac * 10) > self._last_decile or snap.final:
            self._last_decile = int(frac * 10)
            self.stream.write(text + "\n")
            self.stream.flush()


class StageProgress:
    """One progress bar per stage: a pipeline's snapshots go to the bar of their stage."""

    def __init__(self) -> None:
        self.bars: dict[str, ProgressBar] = {}

    def __call__(self, snap: Snapshot) -> None:
        self.bars.setdefault(snap.stage, ProgressBar(snap.stage))(snap)


@contextmanager
def interruptible(control: RunControl) -> Iterator[None]:
    """Ctrl-C stops the loop at the next iteration (files are still written); a second one aborts."""
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if control.stopped:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        sys.stderr.write("\nstopping after this iteration (Ctrl-C again to abort)\n")
        control.stop()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
