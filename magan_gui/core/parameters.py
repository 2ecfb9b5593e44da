"""Simulator parameters: names, units, pretraining bounds and the map to the engine's [-1, 1] space."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Parameter:
    """One model parameter of a simulator.

    Parameters
    ----------
    name : str
        Column name in results and on the command line.
    low, high : float
        Bounds of the pretraining draws; the engine maps [low, high] to [-1, 1]
        and the generator can only produce values inside them.
    unit : str
        Physical unit shown beside values ("px", "" for dimensionless).
    default : float
        The default simulation's value, drawn as a reference.
    """

    name: str
    low: float
    high: float
    unit: str = ""
    default: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("a Parameter needs a non-empty name")
        for label, value in (("low", self.low), ("high", self.high)):
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"parameter {self.name!r}: {label} must be a finite number, got {value!r}")
        if not self.low < self.high:
            raise ValueError(f"parameter {self.name!r}: low ({self.low}) must be below high ({self.high})")
        if self.default is None:
            object.__setattr__(self, "default", 0.5 * (self.low + self.high))
        elif not (isinstance(self.default, (int, float)) and math.isfinite(self.default)):
            raise ValueError(f"parameter {self.name!r}: default must be a finite number, got {self.default!r}")

    @property
    def label(self) -> str:
        """Name with unit, for table headers and axes."""
        return f"{self.name} [{self.unit}]" if self.unit else self.name


class ParameterSpace:
    """The ordered parameters of a simulator and the affine map physical <-> normalised [-1, 1]."""

    def __init__(self, parameters: Sequence[Parameter]):
        self.parameters = list(parameters)
        self.low = torch.tensor([p.low for p in self.parameters], dtype=torch.float32)
        self.high = torch.tensor([p.high for p in self.parameters], dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def names(self) -> list[str]:
        """Parameter names in column order."""
        return [p.name for p in self.parameters]

    @property
    def defaults(self) -> torch.Tensor:
        """Default values, physical units, shape (P,)."""
        return torch.tensor([p.default for p in self.parameters], dtype=torch.float32)

    def to_physical(self, normalised: torch.Tensor) -> torch.Tensor:
        """Map (N, P) values in [-1, 1] to physical units."""
        low, high = self.low.to(normalised.device), self.high.to(normalised.device)
        return low + (normalised + 1.0) * 0.5 * (high - low)

    def to_normalised(self, physical: torch.Tensor) -> torch.Tensor:
        """Map (N, P) physical values to the engine's [-1, 1] space."""
        low, high = self.low.to(physical.device), self.high.to(physical.device)
        return (physical - low) / (high - low) * 2.0 - 1.0

    def sample_uniform(self, n: int, generator: torch.Generator | None = None,
                       device: torch.device | str = "cpu") -> torch.Tensor:
        """Draw n parameter sets uniformly inside the bounds, physical units, (n, P)."""
        u = torch.rand(n, len(self), generator=generator, device=device)
        return self.to_physical(u * 2.0 - 1.0)
