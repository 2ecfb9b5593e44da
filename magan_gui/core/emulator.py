"""A trained emulator: the network plus what it needs to act as a fast simulator on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .checkpoints import CheckpointError, load_checkpoint
from .errors import one_line
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

    def export_program(self, path: str | Path) -> None:
        """Write the emulator as a ``torch.export`` program (.pt2) that needs no magan_gui to run.

        ``torch.export.load(path).module()(params[, noise or latent])`` maps physical parameters
        (N, P) to (N, H, W) images in [0, 1], for any N; ``meta.json`` in the archive describes the
        parameters and the inputs.
        """
        device = self.device
        module = _ExportableEmulator(self.net, self.space).cpu().eval()
        example = (torch.zeros(2, len(self.parameters)),)
        random_input = self.sample_noise(2, device="cpu")
        if random_input is not None:
            example += (random_input,)
        batch = torch.export.Dim("batch", min=1)
        program = torch.export.export(module, example, dynamic_shapes=tuple({0: batch} for _ in example))
        inputs = ["params"] + (["noise"] if self.net.noise_image else []) + (["latent"] if self.net.latent_dim else [])
        meta = {**self.meta, "parameters": parameters_to_json(self.parameters), "inputs": inputs}
        torch.export.save(program, str(path), extra_files={"meta.json": json.dumps(meta)})
        self.net.to(device)

    def payload(self) -> dict[str, Any]:
        """The emulator file's content (weights and description, no training state)."""
        return {"kind": "emulator", "meta": json.dumps(self.meta),
                "emulator": {k: v.detach().cpu() for k, v in self.net.state_dict().items()}}

    @staticmethod
    def from_payload(payload: dict[str, Any]) -> TrainedEmulator:
        """Rebuild from an emulator checkpoint's dict (see Pretrainer.checkpoint_payload)."""
        try:
            meta = json.loads(payload["meta"])
            parameters = parameters_from_json(meta["parameters"])
            net = Emulator(len(parameters), tuple(meta["image_shape"]), NetworkSizes(**meta["sizes"]),
                           noise_image=bool(meta["noise_image"]), latent_dim=int(meta["latent_dim"]),
                           latent_field=bool(meta.get("latent_field", False)))
            weights = payload["emulator"]
            odd = [k for k, v in weights.items() if not (isinstance(v, torch.Tensor) and v.is_floating_point())]
            if odd:
                raise CheckpointError(f"emulator file: weights {', '.join(odd[:3])} are not floating-point tensors")
            net.load_state_dict(weights)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise CheckpointError(f"emulator file is incomplete or from another version: {one_line(exc)}") from exc
        return TrainedEmulator(net, parameters, meta)

    @staticmethod
    def load(path: str | Path) -> TrainedEmulator:
        """Load an emulator written by ``magan pretrain`` (never executes code from the file)."""
        return TrainedEmulator.from_payload(load_checkpoint(path, "emulator"))


class _ExportableEmulator(torch.nn.Module):
    """The network with the physical-to-normalised map in front and [0, 1] images out, for export."""

    def __init__(self, net: Emulator, space: ParameterSpace):
        super().__init__()
        self.net = net
        self.register_buffer("low", space.low.clone())
        self.register_buffer("high", space.high.clone())

    def forward(self, params: torch.Tensor, random_input: torch.Tensor | None = None) -> torch.Tensor:
        normalised = (params - self.low) / (self.high - self.low) * 2.0 - 1.0
        out = self.net(normalised, random_input if self.net.noise_image else None,
                       random_input if self.net.latent_dim else None)
        return (out.squeeze(1) + 1.0) * 0.5
