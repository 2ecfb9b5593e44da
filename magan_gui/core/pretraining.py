"""Pretraining: teach the emulator E to mimic the simulator T over the whole parameter box.

Modes
-----
``pixel``          a pixel loss |E(r) - T(r)|^2: the fastest route to fidelity for deterministic
                   simulators and for stochastic ones that share their random draws.
``energy``         for stochastic simulators that keep their random numbers to themselves (black
                   boxes): E takes a random latent (a short vector and a per-pixel field) and learns
                   the distribution of T's images at each r with the energy score, a proper scoring
                   rule that needs one draw per parameter set, so it learns from a bank:
                   E||E(r,l) - T(r)|| - 1/2 E||E(r,l) - E(r,l')||, over whole images, and per
                   pixel, per block of pixels and on the image's total (multi-scale CRPS).
``siamese``        the paper: a Siamese network S learns same-versus-different on (T(r), T(r))
                   and (T(r), E(r)) with label smoothing and flips (SGD); E learns to fool S (Adam).
                   A black box needs two fresh draws at the same r for it, so never from a bank.
``siamese+pixel``  the Siamese loss plus the pixel loss.
``auto``           ``pixel`` when E can be fed T's noise (or T is deterministic), else ``energy``.

The held-out fidelity figure is the pixel MSE for deterministic emulators, and for black boxes
the multi-scale CRPS (see ``energy_scores``): both in image units of [-1, 1], lower is better.
Its verdict (``emulator_verdict``) compares it with the same score of a parameter-blind guess on
the same held-out images (their mean image; for black boxes, other held-out images as draws).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from .bank import BankData
from .checkpoints import CheckpointError
from .emulator import TrainedEmulator, parameters_to_json
from .errors import ConfigError, one_line
from .networks import Emulator, NetworkSizes, Siamese
from .progress import PretrainSnapshot, RunControl
from .simulators import LoadedSimulator
from .training import TrainingRun, seeded_initialisation, smooth_labels, to_unit_images

PRETRAIN_MODES = ("auto", "pixel", "energy", "siamese", "siamese+pixel")
LATENT_DIM_BLACK_BOX = 8
SATURATION_LIMIT = 6.0  # |pre-tanh output| beyond this is penalised (tanh(6) = 1 - 1.2e-5)
START_SEED_STRIDE = 100003


@dataclass
class PretrainConfig:
    """Settings of a pretraining run (see the module docstring for the modes)."""

    iterations: int = 2000
    bank_iterations: int = 0           # iterations when learning from a bank (0: ``iterations``)
    bank_starts: int = 4               # pixel modes on a bank: initialisations tried before training (best kept)
    start_iterations: int = 250        # iterations each tried initialisation trains before they are compared
    start: int = 0                     # the initialisation: start k draws the first weights from seed + k * 100003
    batch_size: int = 64
    mode: str = "auto"
    lr_emulator: float = 1e-3          # Adam; cosine-decayed to 5% by the end in the pixel modes
    lr_siamese: float = 0.01           # SGD with momentum 0.9
    pixel_weight: float = 1.0          # weight of the pixel loss in siamese+pixel
    label_flip: float = 0.05           # fraction of Siamese labels flipped
    width: float = 1.0                 # network width multiplier
    heldout: int = 512                 # held-out parameter sets for the fidelity metric
    eval_every: int = 100              # iterations between fidelity evaluations
    grid_rows: int = 5                 # fixed parameter sets shown as the emulator-vs-simulator grid
    snapshot_seconds: float = 0.5      # at most one progress snapshot per this many seconds
    checkpoint_seconds: float = 60.0   # write the resumable file at least this often (if a path is set)
    seed: int = 0

    def validate(self) -> None:
        """Raise ConfigError with a clear sentence for settings that cannot work."""
        if self.mode not in PRETRAIN_MODES:
            raise ConfigError(f"pretraining mode must be one of {', '.join(PRETRAIN_MODES)}, got {self.mode!r}")
        for name in ("iterations", "batch_size", "heldout", "eval_every", "grid_rows", "bank_starts",
                     "start_iterations"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.bank_iterations < 0:
            raise ConfigError(f"bank_iterations must be 0 (as iterations) or more, got {self.bank_iterations}")
        if self.lr_emulator <= 0 or self.lr_siamese <= 0 or self.width <= 0:
            raise ConfigError("learning rates and width must be positive")

    def for_bank(self) -> PretrainConfig:
        """These settings for learning from a bank: ``bank_iterations`` when set.  A bank's images
        cost nothing more to revisit, and an emulator learnt from 36,000 stored images goes on
        improving well past the iterations fresh simulations need (lines: held-out MSE 0.0014 after
        2,000, 0.00054 after 5,000)."""
        return replace(self, iterations=self.bank_iterations or self.iterations)


def _window_sizes(n: int, cells: int) -> torch.Tensor:
    """How many of n pixels each of ``cells`` adaptive-pooling windows spans (they may overlap)."""
    i = torch.arange(cells)
    return (torch.div((i + 1) * n + cells - 1, cells, rounding_mode="floor")
            - torch.div(i * n, cells, rounding_mode="floor")).float()


@functools.lru_cache(maxsize=16)
def _block_scales(h: int, w: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Per scale 2, 4, ...: the square root of each block's pixel count, made once per image shape
    and device (not per training step)."""
    scales, k = [], 2
    while k < max(h, w):
        cells = (math.ceil(h / k), math.ceil(w / k))
        scales.append(torch.outer(_window_sizes(h, cells[0]), _window_sizes(w, cells[1])).sqrt().to(device, dtype))
        k *= 2
    return tuple(scales)


def scale_views(images: torch.Tensor) -> list[torch.Tensor]:
    """(N, 1, H, W) images at every scale: the pixels, sums over blocks of about 2x2, 4x4, ...
    pixels, and the whole image's total, each sum divided by the square root of its pixel count
    (independent pixel noise then keeps its size at every scale, so no scale dominates)."""
    h, w = images.shape[2:]
    views = [images]
    for scale in _block_scales(h, w, images.device, images.dtype):
        views.append(F.adaptive_avg_pool2d(images, tuple(scale.shape)) * scale)
    views.append(images.mean(dim=(2, 3)) * math.sqrt(h * w))
    return views


def cosine_lr_factor(progress: float) -> float:
    """Learning-rate multiplier of the regression-like modes: a cosine fall from 1 to 5% at the end."""
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def bank_split(rows: int, heldout: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A bank's rows as (held out, training), fixed by the seed; at most a tenth is held out."""
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed + 7919))
    held = min(heldout, rows // 10)
    return order[:held], order[held:]


def energy_scores(first: torch.Tensor, second: torch.Tensor, observed: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy scores of two draws from a model against one observation each, (N, 1, H, W) images.

    Returns the whole-image score (N,), with the L2 norm over pixels, and the multi-scale CRPS
    (N,): the one-dimensional energy score (CRPS) of every pixel, every 2x2, 4x4, ... block sum and
    the image's total (``scale_views``), averaged within each scale, then over the scales.  All are
    proper: in expectation lowest when the model's distribution at each parameter set is the
    observation's, so one draw per parameter set is enough to learn it.  The block and total terms
    teach how pixels fluctuate together, which the per-pixel score cannot see and the whole-image
    score sees only faintly: without them the emulator's total light varied 8x too much.
    """
    def norm(x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(x.flatten(1), dim=1)

    image = 0.5 * (norm(first - observed) + norm(second - observed)) - 0.5 * norm(first - second)
    n = first.shape[0]
    crps = []
    for view in scale_views(torch.cat([first, second, observed])):  # one pass over all three
        a, b, o = view[:n], view[n:2 * n], view[2 * n:]
        crps.append((0.5 * ((a - o).abs() + (b - o).abs()) - 0.5 * (a - b).abs()).flatten(1).mean(1))
    return image, torch.stack(crps).mean(0)


# held-out score / a parameter-blind guess's, by fidelity metric: at most the first, the emulator is as
# faithful as those that calibrated within the bars (the quick preset's 5-seed table of 2026-11-27: lines
# 0.011-0.029, circles 0.014-0.018; black boxes about 0.1); above the second it has learnt little of how
# the parameters act (lines' 160-iteration emulator: 0.47)
VERDICT_LIMITS = {"pixel MSE": (0.03, 0.1), "multi-scale CRPS": (0.15, 0.35)}
VERDICTS = {"good": "good enough to calibrate with",
            "rough": "rough: a calibration through it may be biased or too narrow; train it longer",
            "poor": "not good enough: it has learnt little of how the parameters act; train it longer before "
                    "calibrating"}


def emulator_verdict(meta: dict[str, Any]) -> tuple[str, str]:
    """("good" | "rough" | "poor" | "unknown", one sentence) for an emulator's ``meta``."""
    metric, score, reference = meta.get("fidelity_metric", "pixel MSE"), meta.get("fidelity_mse"), \
        meta.get("reference_score")
    if score is None or not reference or metric not in VERDICT_LIMITS:
        return "unknown", (f"held-out {metric} {'unknown' if score is None else f'{score:.5f}'}; no "
                           "parameter-blind reference in this file to judge it by")
    ratio = score / reference
    good, poor = VERDICT_LIMITS[metric]
    verdict = "good" if ratio <= good else "rough" if ratio <= poor else "poor"
    return verdict, (f"held-out {metric} {score:.5f} is {100 * ratio:.1f}% of a parameter-blind guess's "
                     f"({reference:.4f}): {VERDICTS[verdict]}")


def resolved_mode(simulator: LoadedSimulator, mode: str) -> str:
    """The mode ``auto`` stands for with this simulator: ``energy`` for a black-box stochastic one, else ``pixel``."""
    if mode != "auto":
        return mode
    return "energy" if simulator.stochastic and not simulator.shares_noise else "pixel"


def starts_to_try(simulator: LoadedSimulator, config: PretrainConfig) -> int:
    """How many initialisations a fresh pretraining from a bank tries: ``bank_starts`` in the pixel modes, else 1."""
    return config.bank_starts if resolved_mode(simulator, config.mode) in ("pixel", "siamese+pixel") else 1


class Pretrainer(TrainingRun[TrainedEmulator]):
    """One pretraining run; resumable from the emulator file it writes.

    Parameters
    ----------
    simulator : LoadedSimulator
        A checked simulator (see ``load_simulator``).
    config : PretrainConfig
        Settings.
    device : torch.device
        Where networks and the built-in simulators run.
    bank : BankData, optional
        Stored simulations to learn from instead of fresh ones: a part of the bank is held out
        for the fidelity figure, and the run makes no simulation at all.

    Without a bank the constructor simulates the held-out set (``config.heldout`` images): with a
    slow simulator, build it where waiting does no harm (the app does so in its worker thread).
    """

    stage = "pretrain"
    title = "pretraining"
    evaluation_size = "heldout"
    snapshot_type = PretrainSnapshot
    eval_steps_key = "fidelity_step"
    checkpoint_kind = "emulator"

    def __init__(self, simulator: LoadedSimulator, config: PretrainConfig, device: torch.device | str = "cpu",
                 bank: BankData | None = None):
        super().__init__(config, device)
        self.simulator, self.space, self.bank = simulator, simulator.space, bank
        self.common_noise = simulator.shares_noise
        black_box_stochastic = simulator.stochastic and not self.common_noise
        self.mode = resolved_mode(simulator, config.mode)
        if black_box_stochastic and self.mode in ("pixel", "siamese+pixel"):
            raise ConfigError(f"simulator {simulator.name!r} is stochastic and cannot share its random draws, so a "
                              "pixel loss would only learn the average image; use --mode energy")
        if self.mode == "energy" and not black_box_stochastic:
            raise ConfigError(f"the energy mode learns a black-box simulator's randomness; {simulator.name!r} is "
                              + ("deterministic" if not simulator.stochastic else "sharing its random draws")
                              + ": use --mode pixel")
        if bank is not None and black_box_stochastic and self.mode == "siamese":
            raise ConfigError(f"simulator {simulator.name!r} keeps its random draws to itself, and the Siamese loss "
                              "needs two draws at the same parameters, which a bank does not hold: use --mode energy")
        self.sizes = NetworkSizes.for_image(simulator.image_shape, config.width)
        self.start_scores: list[float] = []  # the held-out scores of the initialisations tried, if any
        with seeded_initialisation(config.seed + START_SEED_STRIDE * config.start):
            self.emulator = Emulator(len(self.space), simulator.image_shape, self.sizes,
                                     noise_image=self.common_noise,
                                     latent_dim=LATENT_DIM_BLACK_BOX if black_box_stochastic else 0,
                                     latent_field=self.mode == "energy").to(self.device)
            self.siamese = self.opt_s = None
            if self.mode.startswith("siamese"):
                self.siamese = Siamese(simulator.image_shape, self.sizes).to(self.device)
        self.opt_e = torch.optim.Adam(self.emulator.parameters(), lr=config.lr_emulator,
                                      betas=(0.5, 0.999) if self.siamese is not None else (0.9, 0.999))
        if self.siamese is not None:
            self.opt_s = torch.optim.SGD(self.siamese.parameters(), lr=config.lr_siamese, momentum=0.9)
        self.history = {"fidelity_step": [], "fidelity_mse": [], "fidelity_time": []}
        self._make_fixed_sets()

    # -- data -----------------------------------------------------------------------------------------
    def _draw(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Random normalised parameters, with the noise image / latent the emulator takes."""
        r = torch.rand(n, len(self.space), generator=gen, device=self.device) * 2.0 - 1.0
        noise = self.simulator.sample_noise(n, generator=gen, device=self.device)
        return r, noise, self._latent(n, gen)

    def _latent(self, n: int, gen: torch.Generator) -> torch.Tensor | None:
        """The emulator's own random input for n images (None for a deterministic emulator)."""
        if not self.emulator.latent_dim:
            return None
        return torch.randn(n, self.emulator.latent_dim, generator=gen, device=self.device)

    def _batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """A training batch: normalised parameters, noise image, latent, and the simulator's images in [-1, 1]."""
        if self.bank is None:
            r, noise, latent = self._draw(n, self.gen)
            return r, noise, latent, self.simulate(r, noise, check=self.iteration == 0)
        rows = self.train_rows[torch.randint(len(self.train_rows), (n,), generator=self.gen, device=self.device)]
        noise = None if self.bank_noise is None else self.bank_noise[rows]
        return self.bank_r[rows], noise, self._latent(n, self.gen), self.bank_images[rows]

    def _load_bank(self, bank: BankData) -> torch.Tensor:
        """Put the bank on the device; return the rows held out for fidelity (a tenth at most), fixed by the seed."""
        if len(bank) < 20:
            raise ConfigError(f"the bank {bank.path} holds {len(bank)} images: too few to train and hold some out")
        self.bank_r = self.space.to_normalised(torch.from_numpy(bank.params).to(self.device))
        self.bank_images = torch.from_numpy(bank.images).to(self.device).unsqueeze(1) * 2.0 - 1.0
        self.bank_noise = None if bank.noise is None else torch.from_numpy(bank.noise).to(self.device)
        held, train = bank_split(len(bank), self.config.heldout, self.config.seed)
        self.train_rows = train.to(self.device)
        return held.to(self.device)

    def _make_fixed_sets(self) -> None:
        """Held-out parameters for fidelity and the grid rows: fixed by the seed, never trained on."""
        if self.bank is None:
            gen = torch.Generator(device=self.device).manual_seed(self.config.seed + 7919)
            self.heldout = self._draw(self.config.heldout, gen)
            self.heldout_images = self.simulate(self.heldout[0], self.heldout[1], check=True)
        else:
            held = self._load_bank(self.bank)
            gen = torch.Generator(device=self.device).manual_seed(self.config.seed + 7919)
            self.heldout = (self.bank_r[held], None if self.bank_noise is None else self.bank_noise[held],
                            self._latent(len(held), gen))
            self.heldout_images = self.bank_images[held]
        if self.mode == "energy":  # a second fixed draw per held-out image, for the energy score
            gen = torch.Generator(device=self.device).manual_seed(self.config.seed + 7927)
            self.heldout_twin = torch.randn(self.heldout[0].shape[0], self.emulator.latent_dim, generator=gen,
                                            device=self.device)
        self.reference_score = self._parameter_blind_score()
        rows = self.config.grid_rows
        self.grid_inputs = tuple(None if t is None else t[:rows] for t in self.heldout)
        self.grid_simulated = self.heldout_images[:rows]

    @torch.no_grad()
    def _parameter_blind_score(self) -> float:
        """The fidelity score of a guess that ignores the parameters, on the held-out images: their mean
        image (pixel MSE), or two other held-out images as the two draws (multi-scale CRPS)."""
        images = self.heldout_images
        if self.mode != "energy":
            return float(((images - images.mean(dim=0, keepdim=True)) ** 2).mean())
        gen = torch.Generator(device=self.device).manual_seed(self.config.seed + 7933)
        first = torch.randperm(len(images), generator=gen, device=self.device)
        second = torch.randperm(len(images), generator=gen, device=self.device)
        total = 0.0
        for i in range(0, len(images), 256):  # in slices, as the fidelity itself
            part = slice(i, i + 256)
            total += float(energy_scores(images[first[part]], images[second[part]], images[part])[1].sum())
        return total / len(images)

    # -- evaluation -----------------------------------------------------------------------------------
    @property
    def fidelity_metric(self) -> str:
        """What the fidelity figure is (both lower-is-better, images in [-1, 1])."""
        return "multi-scale CRPS" if self.mode == "energy" else "pixel MSE"

    @torch.no_grad()
    def fidelity(self) -> float:
        """Held-out fidelity: pixel MSE (a blank image scores ~0.03 on lines), or for black boxes the
        multi-scale CRPS of two emulator draws per held-out simulator image."""
        total = 0.0
        r, noise, latent = self.heldout
        for start in range(0, r.shape[0], 256):
            sl = slice(start, start + 256)
            if self.mode == "energy":
                total += float(energy_scores(self.emulator(r[sl], None, latent[sl]),
                                             self.emulator(r[sl], None, self.heldout_twin[sl]),
                                             self.heldout_images[sl])[1].sum())
            else:
                out = self.emulator(r[sl], None if noise is None else noise[sl],
                                    None if latent is None else latent[sl])
                total += float(((out - self.heldout_images[sl]) ** 2).mean(dim=(1, 2, 3)).sum())
        return total / r.shape[0]

    def evaluate(self) -> None:
        """Record the held-out fidelity now."""
        self.history["fidelity_step"].append(self.iteration)
        self.history["fidelity_mse"].append(self.fidelity())
        self.history["fidelity_time"].append(self.wall_time)

    @torch.no_grad()
    def snapshot_fields(self, result: TrainedEmulator | None = None) -> dict[str, Any]:
        """Latest fidelity and the emulator and simulator images of the fixed grid rows."""
        r, noise, latent = self.grid_inputs
        h = self.history
        return {"fidelity_mse": h["fidelity_mse"][-1] if h["fidelity_mse"] else None,
                "fidelity_metric": self.fidelity_metric,
                "fidelity_iteration": h["fidelity_step"][-1] if h["fidelity_step"] else None,
                "emulated": to_unit_images(self.emulator(r, noise, latent)).numpy(),
                "simulated": to_unit_images(self.grid_simulated).numpy(),
                "grid_params": self.space.to_physical(r).cpu().numpy()}

    # -- training -------------------------------------------------------------------------------------
    def _lr_factor(self) -> float:
        """1 in the Siamese mode; in the pixel modes a cosine fall to 5% by the end of the run."""
        if self.mode == "siamese":
            return 1.0
        return cosine_lr_factor(self.iteration / max(1, self.config.iterations))

    def step(self) -> dict[str, torch.Tensor]:
        """One iteration; returns its losses as detached 0-d tensors (no host round-trip)."""
        cfg = self.config
        for group in self.opt_e.param_groups:
            group["lr"] = cfg.lr_emulator * self._lr_factor()
        r, noise, latent, simulated = self._batch(cfg.batch_size)
        losses: dict[str, torch.Tensor] = {}
        if self.siamese is not None:
            # Siamese step: (T, T') is "same", (T, E) is "different"
            if self.common_noise or not self.simulator.stochastic:
                twin = simulated
            else:
                twin = self.simulate(r, None)
            with torch.no_grad():
                emulated = self.emulator(r, noise, latent)
            n = r.shape[0]
            s_loss = (F.binary_cross_entropy_with_logits(self.siamese(simulated, twin),
                                                         smooth_labels(n, True, cfg.label_flip, self.gen, self.device))
                      + F.binary_cross_entropy_with_logits(self.siamese(simulated, emulated),
                                                           smooth_labels(n, False, cfg.label_flip, self.gen,
                                                                         self.device)))
            self.opt_s.zero_grad(set_to_none=True)
            s_loss.backward()
            self.opt_s.step()
            losses["siamese"] = s_loss.detach()
        logits = self.emulator.logits(r, noise, latent)
        emulated = torch.tanh(logits)
        # Keep the output in tanh's responsive range: an early overshoot to a saturated blank image
        # (pre-activations near -15) otherwise leaves no gradient, and the run never recovers.
        e_loss = F.relu(logits.abs() - SATURATION_LIMIT).pow(2).mean()
        if self.siamese is not None:
            for p in self.siamese.parameters():
                p.requires_grad_(False)
            adv = F.binary_cross_entropy_with_logits(self.siamese(simulated, emulated),
                                                     torch.ones(r.shape[0], device=self.device))
            for p in self.siamese.parameters():
                p.requires_grad_(True)
            losses["emulator_adv"] = adv.detach()
            e_loss = e_loss + adv
        if self.mode == "energy":
            twin = torch.tanh(self.emulator.logits(r, None, self._latent(r.shape[0], self.gen)))
            image_score, scales_score = energy_scores(emulated, twin, simulated)
            energy = image_score.mean() / math.sqrt(simulated[0].numel()) + scales_score.mean()
            losses["energy"] = energy.detach()
            e_loss = e_loss + energy
        if self.mode in ("pixel", "siamese+pixel"):
            pixel = F.mse_loss(emulated, simulated)
            losses["pixel_mse"] = pixel.detach()
            e_loss = e_loss + (cfg.pixel_weight if self.mode == "siamese+pixel" else 1.0) * pixel
        self.opt_e.zero_grad(set_to_none=True)
        e_loss.backward()
        self.opt_e.step()
        self.iteration += 1
        return losses

    def set_training(self, training: bool) -> None:
        self.emulator.train(training)

    def trained_networks(self) -> list[torch.nn.Module]:
        return [self.emulator] + ([] if self.siamese is None else [self.siamese])

    def finish(self, stopped: bool) -> TrainedEmulator:
        return self.trained_emulator()

    # -- files ----------------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """JSON-able description of the emulator and how it was trained."""
        fid = self.history["fidelity_mse"]
        return {"simulator": self.simulator.name, "simulator_spec": self.simulator.spec,
                "parameters": parameters_to_json(self.simulator.parameters),
                "image_shape": list(self.simulator.image_shape), "sizes": asdict(self.sizes),
                "noise_image": self.emulator.noise_image, "latent_dim": self.emulator.latent_vector,
                "latent_field": self.emulator.latent_field, "fidelity_metric": self.fidelity_metric,
                "mode": self.mode, "config": asdict(self.config), "iteration": self.iteration,
                "wall_time": self.wall_time, "fidelity_mse": fid[-1] if fid else None,
                "reference_score": self.reference_score, "start_scores": self.start_scores,
                "device": str(self.device),
                "simulations": {"fresh": self.simulations, "bank": 0 if self.bank is None else len(self.bank),
                                "bank_path": None if self.bank is None else self.bank.path}}

    def trained_emulator(self) -> TrainedEmulator:
        """The emulator as it is now, detached from training."""
        return TrainedEmulator(self.emulator, self.simulator.parameters, self.meta())

    def checkpoint_payload(self) -> dict[str, Any]:
        """Everything needed to use the emulator and to resume training, loadable with weights_only."""
        payload: dict[str, Any] = {
            "kind": "emulator", "meta": json.dumps(self.meta()),
            "emulator": self.emulator.state_dict(), "opt_emulator": self.opt_e.state_dict(),
            **self.progress_state(),
        }
        if self.siamese is not None:
            payload["siamese"] = self.siamese.state_dict()
            payload["opt_siamese"] = self.opt_s.state_dict()
        return payload

    def restore(self, payload: dict[str, Any], source: str = "the saved run") -> None:
        """Continue the run in ``payload`` (a ``checkpoint_payload``); ``source`` names it in errors."""
        meta = json.loads(payload["meta"])
        if meta["parameters"] != parameters_to_json(self.simulator.parameters) or \
                list(meta["image_shape"]) != list(self.simulator.image_shape):
            raise CheckpointError(f"{source}: was trained for simulator {meta['simulator']!r} with other parameters "
                                  "or image shape; it cannot be resumed with this one")
        if meta["mode"] != self.mode:
            raise CheckpointError(f"{source}: was trained in mode {meta['mode']!r}, not {self.mode!r}")
        # the saved run's initialisation, so its file keeps saying which one it was
        self.config = replace(self.config, start=int(meta["config"].get("start", 0)))
        self.start_scores = list(meta.get("start_scores", []))
        try:
            self.emulator.load_state_dict(payload["emulator"])
            self.opt_e.load_state_dict(payload["opt_emulator"])
            if self.siamese is not None:
                self.siamese.load_state_dict(payload["siamese"])
                self.opt_s.load_state_dict(payload["opt_siamese"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{source}: does not match this network configuration ({one_line(exc)})") from exc
        self.restore_progress(meta, payload)


def choose_start(simulator: LoadedSimulator, config: PretrainConfig, device: torch.device | str, bank: BankData,
                 control: RunControl | None = None) -> tuple[int, list[float]]:
    """The best of ``config.bank_starts`` initialisations for learning ``bank`` in a pixel mode, and each one's
    held-out score after ``config.start_iterations`` iterations (the bank's images cost nothing to revisit).

    Some initialisations learn much more slowly than others and never catch up: on one lines bank, 4 of 8
    were still near a blank image after 250 iterations, and a run from one of them ended with a held-out
    MSE of 0.00067 against 0.00010 from a quick one.  The winner then trains from its start again, so the
    run is the same as one begun from that initialisation.  A stop or pause during the trial is obeyed.
    """
    scores: list[float] = []
    starts = starts_to_try(simulator, config)
    for start in range(starts if starts > 1 else 0):
        trainer = Pretrainer(simulator, replace(config, start=start), device, bank)
        for _ in range(config.start_iterations):
            if control is not None and not control.proceed():
                return (int(np.argmin(scores)), scores) if scores else (config.start, [])
            trainer.step()
        scores.append(trainer.fidelity())
    return (int(np.argmin(scores)), scores) if scores else (config.start, [])
