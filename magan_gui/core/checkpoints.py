"""Checkpoint files: written atomically, read without executing code from the file.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts saved with ``torch.save``
and loaded with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from .errors import MaganError
from .files import write_atomically


class CheckpointError(MaganError, ValueError):
    """A checkpoint file is missing, corrupt, unsafe or of the wrong kind."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically: a crash mid-write leaves the previous file intact."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomically(path, buffer.getvalue())


def load_checkpoint(path: str | Path, kind: str) -> dict[str, Any]:
    """Read a checkpoint of the given ``kind`` ("emulator", "calibration"...) onto the CPU, safely."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(f"{path}: not a readable magan checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(payload, dict) or payload.get("kind") != kind:
        found = payload.get("kind") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: expected a {kind} file, found {found!r}")
    bad = non_finite_entry(payload)
    if bad is not None:
        raise CheckpointError(f"{path}: {bad} holds NaN or infinite values (saved from a diverged run?); "
                              "it cannot be used")
    return payload


def non_finite_entry(value: Any, where: str = "") -> str | None:
    """The key path of the first floating-point tensor in ``value`` with a NaN or infinity, or None."""
    if isinstance(value, torch.Tensor):
        return (where or "a tensor") if value.is_floating_point() and not bool(torch.isfinite(value).all()) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        found = non_finite_entry(item, f"{where}/{key}" if where else str(key))
        if found is not None:
            return found
    return None


def restore_rng(generator: torch.Generator, state: torch.Tensor, fallback_seed: int) -> None:
    """Continue ``generator``'s random stream from ``state``; a state saved on another kind of device
    (CPU versus CUDA) cannot be set, and the stream then restarts from ``fallback_seed``."""
    try:
        generator.set_state(state)
    except (RuntimeError, TypeError, ValueError):
        generator.manual_seed(fallback_seed)


def payload_to_cpu(value: Any) -> Any:
    """A copy of a checkpoint payload with every tensor on the CPU, sharing no storage with training."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: payload_to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(payload_to_cpu(v) for v in value)
    return value
