"""Throughput measurements (the paper's Table III): the vectorised simulators and the emulator against a per-image loop.

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

from ..core.emulator import TrainedEmulator
from ..core.networks import Emulator, NetworkSizes
from ..core.simulators import _STROKE_SIGMA, LoadedSimulator, load_simulator
from .paper import PAPER_TABLE_III, TABLE_III_IMAGES


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


def simulator_throughput(simulator: LoadedSimulator, n_images: int, device: torch.device, batch: int = 8192,
                         reference_images: int = 1000, emulator: Any = None, emulator_batch: int | None = None,
                         seed: int = 0) -> list[Throughput]:
    """Time the vectorised simulator (and an emulator, and the one-at-a-time loops) on n_images.

    The loops run on ``reference_images`` only and are reported at that count: their time grows
    linearly, so their rate is what matters.  The emulator runs in batches of ``emulator_batch``
    (large batches of full-resolution feature maps would exhaust the memory).
    """
    space = simulator.space
    gen = torch.Generator(device=device).manual_seed(seed)
    params = space.sample_uniform(n_images, generator=gen, device=device)

    def vectorised() -> None:
        for s in range(0, n_images, batch):
            chunk = params[s:s + batch]
            simulator.simulate(chunk, simulator.sample_noise(chunk.shape[0], generator=gen, device=device))

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


def _paper_seconds(kind: str, n_images: int, paper: dict[str, tuple[float, ...]]) -> float | None:
    """The paper's time for the same source and image count (a loop scales linearly from its 10K time)."""
    row = paper.get("simulator" if kind == "loop" else kind)
    if row and n_images in TABLE_III_IMAGES:
        return row[TABLE_III_IMAGES.index(n_images)]
    if row and kind == "loop":
        return round(row[0] * n_images / 10000, 4)
    return None


def speed_table(specs: list[str], images: list[int], device: torch.device, emulator_file: str | None = None,
                reference_images: int = 1000, emulator_batch: int | None = None,
                log=print) -> tuple[dict[str, Any], str]:
    """Table III on this device: per simulator, the rows measured and their ratio to the paper.

    Without ``emulator_file`` an untrained emulator of the trained architecture is timed: weights
    do not change the speed.  Returns the JSON document part (by simulator) and its Markdown.
    """
    document: dict[str, Any] = {}
    lines: list[str] = []
    for spec in specs:
        simulator = load_simulator(spec)
        if emulator_file:
            emulator, trained = TrainedEmulator.load(emulator_file), True
        else:
            net = Emulator(len(simulator.parameters), simulator.image_shape,
                           NetworkSizes.for_image(simulator.image_shape), noise_image=simulator.shares_noise)
            emulator, trained = TrainedEmulator(net, simulator.parameters, {"simulator": simulator.name}), False
        log(f"image throughput, {simulator.name}, device {device} (torch threads {torch.get_num_threads()})")
        log(f"{'source':<56}{'images':>9}{'seconds':>10}{'images/s':>12}")
        rows: list[Throughput] = []
        for n in images:
            for r in simulator_throughput(simulator, n, device, emulator=emulator, reference_images=reference_images,
                                          emulator_batch=emulator_batch):
                if any(row.source == r.source and row.n_images == r.n_images for row in rows):
                    continue
                rows.append(r)
                log(f"{r.source:<56}{r.n_images:>9}{r.seconds:>10.3f}{r.images_per_second:>12.0f}")
        paper = PAPER_TABLE_III.get(simulator.name, {})
        table = []
        for r in rows:
            kind = ("simulator" if "vectorised" in r.source else "loop" if "loop" in r.source else
                    "emulator_gpu" if device.type == "cuda" else "emulator_cpu")
            paper_s = _paper_seconds(kind, r.n_images, paper)
            table.append({"source": r.source, "images": r.n_images, "seconds": round(r.seconds, 4),
                          "images_per_second": round(r.images_per_second), "paper_seconds": paper_s,
                          "speedup_over_paper": round(paper_s / r.seconds, 2) if paper_s else None,
                          "max_pixel_error_vs_float32": r.max_error})
        document[simulator.name] = {"trained_emulator": trained, "rows": table}
        lines += [f"**{simulator.name}**" + ("" if trained else " (emulator timed with untrained weights of the "
                                                                   "trained architecture: same cost)") + "\n",
                  "| source | images | seconds | images/s | paper seconds | × paper | max pixel error vs fp32 |",
                  "|---|---|---|---|---|---|---|"]
        for t in table:
            err = "" if t["max_pixel_error_vs_float32"] is None else f"{t['max_pixel_error_vs_float32']:.1e}"
            lines.append(f"| {t['source']} | {t['images']:,} | {t['seconds']:.3f} | {t['images_per_second']:,} | "
                         f"{t['paper_seconds'] if t['paper_seconds'] is not None else '–'} | "
                         f"{t['speedup_over_paper'] if t['speedup_over_paper'] is not None else '–'} | {err} |")
        lines.append("")
    return document, "\n".join(lines)


def training_speed(spec: str, profile: str, device: torch.device, iterations: int) -> tuple[str, list[dict[str, Any]]]:
    """Both training stages of a closure test timed for ``iterations`` iterations each, at the
    profile's batch sizes: wall time (set-up included), the loop's iterations per second, and on
    CUDA the GPU busy share.  The result's image checks are not included; the accuracy benchmark
    times whole runs.  Returns the simulator's name and the stages' timings."""
    from dataclasses import replace

    from ..core import workflow
    from ..core.calibration import Calibrator
    from ..core.pretraining import Pretrainer
    from .timing import StageTimer

    simulator = load_simulator(spec)
    configs = workflow.stage_configs(simulator.name, profile, seed=0)
    true = workflow.example_closure_set(simulator, 0, device, n=2048)
    timer = StageTimer(device)
    timer.begin("pretraining")
    pretrainer = Pretrainer(simulator, replace(configs.pretrain, iterations=iterations), device)
    emulator = pretrainer.run()
    timer.stages[-1].count(pretrainer.iteration, pretrainer.wall_time)
    timer.begin("calibration")
    calibrator = Calibrator(simulator, emulator, true, replace(configs.calibrate, iterations=iterations), device)
    calibrator.run()
    timer.end()
    timer.stages[-1].count(calibrator.iteration, calibrator.wall_time)
    return simulator.name, timer.as_list()
