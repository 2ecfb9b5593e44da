"""Choosing the torch device for a run."""

from __future__ import annotations

import torch

from .errors import MaganError


class DeviceError(MaganError, ValueError):
    """The requested device is not available here."""


def resolve_device(name: str = "auto") -> torch.device:
    """Turn "auto", "cpu", "cuda" or "cuda:N" into a torch.device, or raise DeviceError."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda was asked for, but PyTorch sees no CUDA GPU on this machine")
        try:
            device = torch.device(name)
        except RuntimeError as exc:
            raise DeviceError(f"unknown device {name!r}") from exc
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"{name}: only {torch.cuda.device_count()} CUDA device(s) found")
        return device
    raise DeviceError(f"unknown device {name!r}: use auto, cpu or cuda")


def available_devices() -> list[str]:
    """Device names a user can pick: "cpu" and each CUDA GPU as "cuda:N"."""
    return ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
