"""Throughput measurements: the vectorised simulators and the emulator against a per-image loop.

Two references draw the same images as the built-ins one image at a time: with NumPy over each
image's pixels, and in plain Python pixel by pixel, the way a straightforward Monte Carlo script
does (the paper's Table III rates, 4.7 ms per circles image, are those of such a loop).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .parameters import ParameterSpace
from .simulators import _STROKE_SIGMA, run_simulator, uses_common_noise


def _lines_one(p: np.ndarray, h: int, w: int) -> np.ndarray:
    m, x0, c, steps = p
    xs, ys = np.arange(w, dtype=np.float32)[None, :], np.arange(h - 1, -1, -1, dtype=np.float32)[:, None]
    dx, dy = steps, m * steps
    t = np.clip(((xs - x0) * dx + (ys - c) * dy) / max(dx * dx + dy * dy, 1e-6), 0.0, 1.0)
    dist2 = (xs - x0 - t * dx) ** 2 + (ys - c - t * dy) ** 2
    return np.exp(-0.5 * dist2 / _STROKE_SIGMA**2)


def _circles_one(p: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    x0, y0, r, n, b = p
    xs, ys = np.arange(w, dtype=np.float32)[None, :], np.arange(h - 1, -1, -1, dtype=np.float32)[:, None]
    ring = np.exp(-0.5 * (np.sqrt((xs - x0) ** 2 + (ys - y0) ** 2) - r) ** 2 / _STROKE_SIGMA**2)
    return np.clip(b * ring + n * rng.random((h, w), dtype=np.float32), 0.0, 1.0)


def _lines_pixels(p: np.ndarray, h: int, w: int) -> list[list[float]]:
    m, x0, c, steps = (float(v) for v in p)
    dx, dy = steps, m * steps
    length2 = max(dx * dx + dy * dy, 1e-6)
    image = []
    for row in range(h):
        y = h - 1 - row
        line = []
        for x in range(w):
            t = min(1.0, max(0.0, ((x - x0) * dx + (y - c) * dy) / length2))
            d2 = (x - x0 - t * dx) ** 2 + (y - c - t * dy) ** 2
            line.append(math.exp(-0.5 * d2 / _STROKE_SIGMA**2))
        image.append(line)
    return image


def _circles_pixels(p: np.ndarray, h: int, w: int, rng: random.Random) -> list[list[float]]:
    x0, y0, r, n, b = (float(v) for v in p)
    image = []
    for row in range(h):
        y = h - 1 - row
        line = []
        for x in range(w):
            ring = math.exp(-0.5 * (math.hypot(x - x0, y - y0) - r) ** 2 / _STROKE_SIGMA**2)
            line.append(min(1.0, max(0.0, b * ring + n * rng.random())))
        image.append(line)
    return image


def per_image_references(name: str) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """One-image-at-a-time loops for a built-in simulator: NumPy per image, Python per pixel."""
    rng, py_rng = np.random.default_rng(0), random.Random(0)
    if name == "lines":
        return {"per-image NumPy loop": lambda ps: np.stack([_lines_one(p, 28, 28) for p in ps]),
                "per-pixel Python loop": lambda ps: np.array([_lines_pixels(p, 28, 28) for p in ps])}
    if name == "circles":
        return {"per-image NumPy loop": lambda ps: np.stack([_circles_one(p, 28, 28, rng) for p in ps]),
                "per-pixel Python loop": lambda ps: np.array([_circles_pixels(p, 28, 28, py_rng) for p in ps])}
    return {}


@dataclass
class Throughput:
    """Images per second of one image source at one batch count."""

    source: str
    n_images: int
    seconds: float
    max_error: float | None = None  # emulator variants: largest pixel difference from float32

    @property
    def images_per_second(self) -> float:
        """n_images / seconds."""
        return self.n_images / self.seconds if self.seconds > 0 else float("inf")


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def simulator_throughput(simulator: Any, n_images: int, device: torch.device, batch: int = 8192,
                         reference_images: int = 1000, emulator: Any = None, emulator_batch: int | None = None,
                         seed: int = 0) -> list[Throughput]:
    """Time the vectorised simulator (and an emulator, and the one-at-a-time loops) on n_images.

    The loops run on ``reference_images`` only and are reported at that count: their time grows
    linearly, so their rate is what matters.  The emulator runs in batches of ``emulator_batch``
    (large batches of full-resolution feature maps would exhaust the memory).
    """
    space = ParameterSpace(simulator.parameters)
    gen = torch.Generator(device=device).manual_seed(seed)
    params = space.sample_uniform(n_images, generator=gen, device=device)

    def vectorised() -> None:
        for s in range(0, n_images, batch):
            chunk = params[s:s + batch]
            noise = simulator.sample_noise(chunk.shape[0], generator=gen, device=device) \
                if uses_common_noise(simulator) else None
            run_simulator(simulator, chunk, noise)

    if n_images <= batch:
        vectorised()  # warm-up: first-call allocations would dominate a small run
    results = [Throughput(f"{simulator.name} simulator (vectorised, {device})", n_images,
                          _timed(vectorised, device))]
    if emulator is not None:
        # 10,000 divides the paper's image counts; the CPU works best on smaller batches
        batch = emulator_batch or (10000 if device.type == "cuda" else 2048)
        results += emulator_throughput(emulator, params, device, batch)
    ref_params = params[:reference_images].cpu().numpy()
    for label, loop in per_image_references(simulator.name).items() if reference_images > 0 else ():
        results.append(Throughput(f"{simulator.name} {label} (cpu)", ref_params.shape[0],
                                  _timed(lambda loop=loop: loop(ref_params), torch.device("cpu"))))
    return results


def emulator_variants(device: torch.device) -> list[tuple[str, torch.dtype | None, bool]]:
    """(label, autocast dtype, compiled) of the emulator set-ups timed on a device.

    On a GPU: float32 (TF32 matrix units), bfloat16 autocast, and bfloat16 compiled with
    ``torch.compile``; on the CPU, float32 only (bfloat16 convolutions are slower there).
    """
    if device.type != "cuda":
        return [("float32", None, False)]
    return [("float32/TF32", None, False), ("bf16 autocast", torch.bfloat16, False),
            ("bf16 autocast, torch.compile", torch.bfloat16, True)]


@torch.no_grad()
def emulator_throughput(emulator: Any, params: torch.Tensor, device: torch.device, batch: int,
                        variants: list[tuple[str, torch.dtype | None, bool]] | None = None) -> list[Throughput]:
    """Time the emulator on ``params`` in each variant; each row notes its largest pixel error against float32."""
    emulator.to(device)
    net, space = emulator.net.eval(), emulator.space
    gen = torch.Generator(device=device).manual_seed(1)
    probe = params[:min(batch, 1024)]
    probe_noise = emulator.sample_noise(probe.shape[0], generator=gen, device=device)
    reference = emulator.simulate(probe, probe_noise)
    rows = []
    for label, dtype, compiled in variants or emulator_variants(device):
        model = torch.compile(net, dynamic=False) if compiled else net

        def images(chunk: torch.Tensor, noise: torch.Tensor | None, model=model, dtype=dtype,
                   compiled=compiled) -> torch.Tensor:
            n = chunk.shape[0]
            if compiled and n < batch:  # a compiled graph has one batch shape: pad, then drop the padding
                chunk = torch.cat([chunk, chunk[-1:].expand(batch - n, -1)])
                noise = None if noise is None else torch.cat([noise, noise[-1:].expand(batch - n, *noise.shape[1:])])
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = model(space.to_normalised(chunk), noise if net.noise_image else None,
                            noise if net.latent_dim else None)
            return (out[:n].squeeze(1).float() + 1.0) * 0.5

        def run_all(images=images) -> None:
            for s in range(0, params.shape[0], batch):
                chunk = params[s:s + batch]
                images(chunk, emulator.sample_noise(chunk.shape[0], generator=gen, device=device))

        for _ in range(2):  # warm-up: compilation, cuDNN algorithm choice, allocations
            images(params[:batch], emulator.sample_noise(min(batch, params.shape[0]), generator=gen, device=device))
            images(probe, probe_noise)
        error = float((images(probe, probe_noise) - reference).abs().max())
        rows.append(Throughput(f"emulator ({device}, {label})", params.shape[0], _timed(run_all, device),
                               max_error=error))
    return rows


# The paper's Table III (seconds for 10K / 100K / 1M images): CPU simulator, emulator on CPU and GPU.
PAPER_TABLE_III = {
    "lines": {"simulator": (2.143, 21.368, 213.798), "emulator_cpu": (6.539, 66.536, 672.633),
              "emulator_gpu": (1.625, 4.901, 36.656)},
    "circles": {"simulator": (47.367, 471.842, 4773.626), "emulator_cpu": (6.540, 66.541, 671.628),
                "emulator_gpu": (1.623, 4.907, 36.671)},
}
