"""A trained emulator: the network plus what it needs to act as a fast simulator on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .checkpoints import CheckpointError, load_checkpoint
from .networks import Emulator, NetworkSizes
from .parameters import Parameter, ParameterSpace


def parameters_to_json(parameters: list[Parameter]) -> list[dict[str, Any]]:
    """Plain dicts for files: name, low, high, unit, default."""
    return [{"name": p.name, "low": p.low, "high": p.high, "unit": p.unit, "default": p.default}
            for p in parameters]


def parameters_from_json(items: list[dict[str, Any]]) -> list[Parameter]:
    """Inverse of parameters_to_json."""
    return [Parameter(d["name"], d["low"], d["high"], d.get("unit", ""), d.get("default")) for d in items]


class TrainedEmulator:
    """An emulator network with its simulator's parameter space; also usable as a simulator.

    ``simulate(params)`` takes physical parameters (N, P) and returns (N, H, W) images in [0, 1],
    like the simulator it learned.  Stochastic emulators draw their own noise unless given it.
    """

    stochastic = False

    def __init__(self, net: Emulator, parameters: list[Parameter], meta: dict[str, Any]):
        self.net = net.eval()
        self.parameters = list(parameters)
        self.space = ParameterSpace(self.parameters)
        self.meta = dict(meta)
        self.name = f"emulator of {meta.get('simulator', '?')}"
        self.image_shape = tuple(net.image_shape)
        self.stochastic = net.noise_image or net.latent_dim > 0

    @property
    def device(self) -> torch.device:
        """Where the network's weights live."""
        return next(self.net.parameters()).device

    def to(self, device: torch.device | str) -> TrainedEmulator:
        """Move the network to a device; returns self."""
        self.net.to(device)
        return self

    def sample_noise(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor | None:
        """The emulator's random input for n images, or None if it is deterministic.

        A noise image (N, H, W) for emulators fed the simulator's draws, a latent vector
        (N, L) for emulators of black-box stochastic simulators.  Pass a seeded generator
        for reproducible images.
        """
        device = device or self.device
        if self.net.noise_image:
            return torch.rand(n, *self.image_shape, generator=generator, device=device)
        if self.net.latent_dim:
            return torch.randn(n, self.net.latent_dim, generator=generator, device=device)
        return None

    @torch.no_grad()
    def simulate(self, params: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Emulated images in [0, 1] for physical params (N, P); ``noise`` as from ``sample_noise``."""
        params = torch.as_tensor(params, dtype=torch.float32, device=self.device)
        if noise is None:
            noise = self.sample_noise(params.shape[0])
        noise = None if noise is None else noise.to(self.device)
        out = self.net(self.space.to_normalised(params), noise if self.net.noise_image else None,
                       noise if self.net.latent_dim else None)
        return (out.squeeze(1) + 1.0) * 0.5

    def export_torchscript(self, path: str | Path) -> None:
        """Write a self-contained TorchScript module: physical params (and noise) in, [0, 1] images out."""
        module = _ScriptableEmulator(self.net, self.space).cpu().eval()
        example = (torch.zeros(2, len(self.parameters)),)
        if self.net.noise_image:
            example += (torch.rand(2, *self.image_shape),)
        if self.net.latent_dim:
            example += (torch.randn(2, self.net.latent_dim),)
        traced = torch.jit.trace(module, example)
        extra = {"meta.json": json.dumps({**self.meta, "parameters": parameters_to_json(self.parameters),
                                          "inputs": ["params"] + (["noise"] if self.net.noise_image else [])
                                          + (["latent"] if self.net.latent_dim else [])})}
        torch.jit.save(traced, str(path), _extra_files=extra)

    @staticmethod
    def from_payload(payload: dict[str, Any]) -> TrainedEmulator:
        """Rebuild from an emulator checkpoint's dict (see Pretrainer.checkpoint_payload)."""
        try:
            meta = json.loads(payload["meta"])
            parameters = parameters_from_json(meta["parameters"])
            net = Emulator(len(parameters), tuple(meta["image_shape"]), NetworkSizes(**meta["sizes"]),
                           noise_image=bool(meta["noise_image"]), latent_dim=int(meta["latent_dim"]))
            net.load_state_dict(payload["emulator"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"emulator file is incomplete or from another version: {exc}") from exc
        return TrainedEmulator(net, parameters, meta)

    @staticmethod
    def load(path: str | Path) -> TrainedEmulator:
        """Load an emulator written by ``magan pretrain`` (never executes code from the file)."""
        return TrainedEmulator.from_payload(load_checkpoint(path, "emulator"))


class _ScriptableEmulator(torch.nn.Module):
    """Wraps the network with the physical-to-normalised map for TorchScript export."""

    def __init__(self, net: Emulator, space: ParameterSpace):
        super().__init__()
        self.net = net
        self.register_buffer("low", space.low.clone())
        self.register_buffer("high", space.high.clone())

    def forward(self, params: torch.Tensor, noise: torch.Tensor | None = None,
                latent: torch.Tensor | None = None) -> torch.Tensor:
        normalised = (params - self.low) / (self.high - self.low) * 2.0 - 1.0
        return (self.net(normalised, noise, latent).squeeze(1) + 1.0) * 0.5
