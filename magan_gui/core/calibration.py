"""Calibration (the paper's training stage): a generator G of simulator parameters learns, through
the frozen emulator E, to make images a discriminator D cannot tell from the true images.

D sees true images against simulated fakes T(G(z)) (the paper's standard configuration, the
default: D then cannot latch onto the emulator's small artefacts) or emulated fakes E(G(z))
(the paper's speed-up for expensive simulators).  G's gradient always flows through E.

The last generator iterate wanders; the result uses an exponential moving average of G's
weights and pools the samples of the few evaluated averages, from the later part of the run,
whose simulated images match the true images' per-pixel mean and spread best.  That check
needs no true parameters, so it works on data.  Pooling averages out the remaining wander.

Under a simulation budget (``simulation_budget`` > 0) the run makes at most that many simulator
images, all of them fakes for D: every few iterations it simulates one batch at G's current
parameters, and D takes that batch whole as its fakes until the next.  D still compares
simulator images with true images only (no emulator artefacts to latch onto), at a cost spread
evenly over the run.  A fake batch is always one generator state's batch, never a mixture of
older ones: D sees each batch's spread, and a mixture of states is wider than the generator is,
which D would teach it to narrow.  The evaluations compare the true images with the simulated
batches of about the last 1 / (1 - ema) iterations, the span G's weight average covers, and the
image grid shows the latest batch: both cost nothing more.  Those batches come from the generator
being trained, not from the average an evaluation keeps, and D's few fakes make the run wander
more (lines: c's mean by ±0.4 true std between evaluations), so the result pools every
evaluation of the later part of the run instead of the few best (c's bias on 3 seeds: −0.22,
−0.31, −0.11 true std with the best 5; −0.06, −0.17, −0.07 with all).

A black-box stochastic simulator (one that keeps its random numbers) needs more: its emulator
learnt the simulator's randomness only approximately, and a generator that learns through
emulated images narrows the parameters whose effect the emulator's noise blurs too much.  Under a
budget its images therefore reach both D and G as the recent simulated batches (those the weight
average spans) moved to G's current parameters: each simulated image plus the emulator's change
from the parameters it was made at to G's parameters for the same latent draw, at one emulator
latent.  The images keep the simulator's own noise, the emulator supplies only the gradient and
the small move, and a mixture of generator states no longer arises (each image is moved to the
current state).  For a deterministic or noise-sharing simulator fresh emulated images are
faithful and serve G better: reusing the same few hundred simulations in G's step let weakly
constrained parameters spread (measured on lines: c's std up to 2.5 times the truth).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from .checkpoints import CheckpointError
from .data import TrueImages
from .emulator import TrainedEmulator, parameters_to_json
from .errors import ConfigError, one_line
from .networks import Discriminator, Generator, NetworkSizes
from .progress import CalibrationSnapshot
from .simulators import LoadedSimulator
from .training import TrainingRun, seeded_initialisation, smooth_labels, to_unit_images

DISCRIMINATOR_INPUTS = ("simulated", "emulated")
MIN_BUDGET_REFRESHES = 8  # a budget must pay for at least this many simulated batches of D's fakes


@dataclass
class CalibrationConfig:
    """Settings of a calibration run."""

    iterations: int = 3000
    batch_size: int = 64
    discriminator_on: str = "simulated"   # "simulated" T(G(z)) or "emulated" E(G(z)) fakes for D
    simulation_budget: int = 0            # most fresh simulator images the run may make; 0: no cap
    budget_iterations: int = 0            # iterations under a simulation budget (0: ``iterations``)
    lr_generator: float = 2e-4            # Adam (beta1 0.5)
    lr_discriminator: float = 0.02        # SGD with momentum 0.9, or Adam (beta1 0.5)
    discriminator_optimizer: str = "sgd"  # "sgd" (the paper) or "adam"
    discriminator_steps: int = 1          # D updates per G update
    latent_dim: int = 0                   # 0: max(8, 2 * number of parameters)
    label_flip: float = 0.05
    ema: float = 0.995                    # generator weight averaging
    lr_decay_start: float = 0.5           # fraction of the run after which both learning rates fall ...
    lr_final_factor: float = 0.1          # ... linearly to this fraction of their value at the end
    eval_every: int = 100
    eval_samples: int = 2048              # images per side in the per-pixel mean/std check
    n_samples: int = 10000                # best-match samples in the result
    pool_size: int = 5                    # evaluated generators pooled into the result ...
    pool_from: float = 0.5                # ... chosen from this fraction of the run onwards
    grid_rows: int = 3                    # generated vs true images shown
    snapshot_samples: int = 1000          # generator samples per progress snapshot
    snapshot_seconds: float = 0.5
    checkpoint_seconds: float = 60.0
    seed: int = 0

    def validate(self) -> None:
        """Raise ConfigError with a clear sentence for settings that cannot work."""
        if self.discriminator_on not in DISCRIMINATOR_INPUTS:
            raise ConfigError(f"discriminator input must be 'simulated' or 'emulated', got {self.discriminator_on!r}")
        for name in ("iterations", "batch_size", "eval_every", "eval_samples", "n_samples", "grid_rows",
                     "pool_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.discriminator_optimizer not in ("sgd", "adam"):
            raise ConfigError(f"discriminator optimizer must be 'sgd' or 'adam', got {self.discriminator_optimizer!r}")
        if not 0.0 <= self.lr_decay_start <= 1.0 or not 0.0 < self.lr_final_factor <= 1.0:
            raise ConfigError("lr_decay_start must be in [0, 1] and lr_final_factor in (0, 1]")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema must be in [0, 1), got {self.ema}")
        if self.budget_iterations < 0:
            raise ConfigError(f"budget_iterations must be 0 (as iterations) or more, got {self.budget_iterations}")
        if self.simulation_budget < 0:
            raise ConfigError(f"simulation budget must be 0 (no cap) or positive, got {self.simulation_budget}")
        if 0 < self.simulation_budget < self.minimum_budget:
            raise ConfigError(f"a simulation budget of {self.simulation_budget:,} images is below the "
                              f"{self.minimum_budget:,} this calibration needs ({MIN_BUDGET_REFRESHES} simulated "
                              f"batches of {self.batch_size} at the generator's parameters)")

    def for_budget(self) -> CalibrationConfig:
        """These settings as a run under their simulation budget takes them: ``budget_iterations``
        when set and a budget is.  D's fakes are then one simulated batch replayed for several
        iterations, and the run needs more of them than with fresh fakes every iteration (the budget
        benchmarks were measured with 4,000 on the quick preset, which calibrates with 2,000 otherwise)."""
        if not self.budgeted or not self.budget_iterations:
            return self
        return replace(self, iterations=self.budget_iterations)

    @property
    def minimum_budget(self) -> int:
        """The smallest simulation budget the budgeted route can work with."""
        return MIN_BUDGET_REFRESHES * self.batch_size

    @property
    def budgeted(self) -> bool:
        """True when fresh simulations are capped."""
        return self.simulation_budget > 0


@dataclass
class CalibrationOutcome:
    """What a calibration produced: best-match samples and how they were chosen."""

    samples: np.ndarray                      # (n_samples, P) physical units
    iteration: int                           # iterations run
    chosen_iterations: list[int]             # evaluations whose generators were pooled
    image_distance: float                    # their mean per-pixel mean/std distance to the true images
    wall_time: float
    history: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: bool = False
    simulations: int = 0                     # fresh simulator images the calibration made
    diverged: str | None = None              # why the run went back to its last finite state, if it did
    noise_floor: float = float("nan")        # image_distance between true images, as many as an evaluation's


class Calibrator(TrainingRun[CalibrationOutcome]):
    """One calibration run against a set of true images; resumable from its checkpoint file.

    The constructor simulates the evaluation reference: with a slow simulator, build it where
    waiting does no harm (the app does so in its worker thread).
    """

    stage = "calibrate"
    title = "calibration"
    evaluation_size = "eval_samples"
    snapshot_type = CalibrationSnapshot
    eval_steps_key = "eval_step"
    checkpoint_kind = "calibration"

    def __init__(self, simulator: LoadedSimulator, emulator: TrainedEmulator, true: TrueImages,
                 config: CalibrationConfig, device: torch.device | str = "cpu"):
        super().__init__(config, device)
        self.simulator, self.space = simulator, simulator.space
        if [p.name for p in emulator.parameters] != self.space.names:
            raise ConfigError(f"the emulator was trained for parameters {[p.name for p in emulator.parameters]}, "
                              f"the simulator has {self.space.names}")
        other = [f"{e.name} [{e.low:g}, {e.high:g}] (simulator: [{p.low:g}, {p.high:g}])"
                 for e, p in zip(emulator.parameters, simulator.parameters) if (e.low, e.high) != (p.low, p.high)]
        if other:
            raise ConfigError(f"the emulator was trained for other parameter ranges: {', '.join(other)}")
        if tuple(emulator.image_shape) != tuple(simulator.image_shape):
            raise ConfigError(f"the emulator makes {emulator.image_shape} images, the simulator "
                              f"{tuple(simulator.image_shape)}")
        if true.shape != tuple(simulator.image_shape):
            raise ConfigError(f"true images are {true.shape}, the simulator makes {tuple(simulator.image_shape)}")
        self.true = true
        self.emulator = emulator.to(self.device)
        for p in self.emulator.net.parameters():
            p.requires_grad_(False)
        self.true_images = torch.from_numpy(np.ascontiguousarray(true.images)).to(self.device).unsqueeze(1) * 2 - 1
        n_params = len(self.space)
        self.latent_dim = config.latent_dim or max(8, 2 * n_params)
        sizes = NetworkSizes.for_image(simulator.image_shape)
        with seeded_initialisation(config.seed):
            self.generator = Generator(n_params, self.latent_dim, sizes.hidden).to(self.device)
            self.generator_avg = copy.deepcopy(self.generator).requires_grad_(False)
            self.discriminator = Discriminator(simulator.image_shape, sizes).to(self.device)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_generator, betas=(0.5, 0.999))
        if config.discriminator_optimizer == "adam":
            self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_discriminator,
                                          betas=(0.5, 0.999))
        else:
            self.opt_d = torch.optim.SGD(self.discriminator.parameters(), lr=config.lr_discriminator, momentum=0.9)
        self.history = {"eval_step": [], "image_distance": []}
        # the pool_size best evaluations so far, later-window ones first: (distance, iteration, state)
        self.candidates: list[tuple[float, int, dict[str, torch.Tensor]]] = []
        self.recent: list[torch.Tensor] = []  # under a budget: the latest simulated batches, newest first
        # ... and per batch what made it: (G's latent, T's noise, E's latent, E's images at those parameters)
        self.recent_inputs: list[tuple[torch.Tensor | None, ...]] = []
        self.moved_pool: tuple[torch.Tensor | None, ...] | None = None  # both, concatenated once per refresh
        # under a budget, a black box's images reach D and G as recent simulations moved to G's parameters
        self.moves_simulated = config.budgeted and simulator.stochastic and not simulator.shares_noise
        self.refreshed_at = -1
        self.pool_size = config.pool_size
        if config.budgeted and not self.moves_simulated:
            # an evaluation scores the recent simulated batches of the generator being trained, not the
            # averaged one it keeps: too weak a basis to pick a few, so every evaluation of the window is pooled
            window = config.iterations - int(np.ceil(config.pool_from * config.iterations))
            self.pool_size = max(config.pool_size, window // config.eval_every + 1)
        if config.budgeted:
            # one batch every this many iterations spends the budget evenly over the run
            self.refresh_every = max(1, -(-config.iterations * config.batch_size // config.simulation_budget))
            # the batches of the iterations the generator's weight average spans, for evaluations
            self.evaluation_batches = max(2, round(1.0 / ((1.0 - config.ema) * self.refresh_every)))
        self._prepare_evaluation()

    # -- sampling -------------------------------------------------------------------------------------
    def _noise(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The simulator's shared noise and the emulator's latent for n images (None when unused)."""
        noise = self.simulator.sample_noise(n, generator=gen, device=self.device)
        latent = (torch.randn(n, self.emulator.net.latent_dim, generator=gen, device=self.device)
                  if self.emulator.net.latent_dim else None)
        return noise, latent

    def _simulate(self, normalised: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return self.simulate(normalised, noise, check=self.iteration == 0)

    def _real_batch(self, n: int) -> torch.Tensor:
        idx = torch.randint(0, self.true_images.shape[0], (n,), generator=self.gen, device=self.device)
        return self.true_images[idx]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.nn.Module | None = None, seed: int | None = None) -> np.ndarray:
        """n best-match parameter sets in physical units from the (averaged) generator."""
        net = generator or self.generator_avg
        gen = self.gen if seed is None else torch.Generator(device=self.device).manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=gen, device=self.device)
        return self.space.to_physical(net(z)).cpu().numpy()

    # -- evaluation -----------------------------------------------------------------------------------
    def _prepare_evaluation(self) -> None:
        cfg = self.config
        gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 104729)
        n = min(cfg.eval_samples, self.true_images.shape[0])
        idx = torch.randperm(self.true_images.shape[0], generator=gen, device=self.device)[:n]
        true = self.true_images[idx]
        self.eval_true_mean, self.eval_true_std = true.mean(0), true.std(0)
        self.eval_z = torch.randn(n, self.latent_dim, generator=gen, device=self.device)
        self.eval_noise, _ = self._noise(n, gen)
        self.grid_z = self.eval_z[:cfg.grid_rows]
        self.grid_true = ((self.true_images[idx[:cfg.grid_rows]].squeeze(1) + 1) * 0.5).cpu().numpy()
        self.noise_floor = self._noise_floor(idx[n:], gen)

    @torch.no_grad()
    def _noise_floor(self, others: torch.Tensor, gen: torch.Generator) -> float:
        """The image distance a perfect calibration would show: other true images, as many as an
        evaluation simulates, against the evaluation's true images (mean of 8 draws).  True images
        left over from the evaluation set are used first; too few, and they are drawn again from all."""
        cfg = self.config
        n_images = (self.evaluation_batches * cfg.batch_size if cfg.budgeted else self.eval_z.shape[0])
        pool = others if len(others) >= n_images else torch.arange(self.true_images.shape[0], device=self.device)
        total = 0.0
        for _ in range(8):
            pick = pool[torch.randperm(len(pool), generator=gen, device=self.device)[:n_images]]
            total += self._distance_to_truth(self.true_images[pick])
        return total / 8

    def _distance_to_truth(self, images: torch.Tensor) -> float:
        """RMS difference of per-pixel mean plus RMS difference of per-pixel std, ``images`` vs the true ones."""
        d_mean = (images.mean(0) - self.eval_true_mean).pow(2).mean().sqrt()
        d_std = (images.std(0) - self.eval_true_std).pow(2).mean().sqrt()
        return float(d_mean + d_std)

    @torch.no_grad()
    def image_distance(self, generator: torch.nn.Module | None = None) -> float:
        """RMS difference of per-pixel mean plus RMS difference of per-pixel std, simulated vs true.

        Uses fixed latent draws, so successive evaluations differ only by the generator.  Under a
        budget: the recent simulated batches, from the iterations the weight average spans.
        """
        if self.moves_simulated:
            images = self._moved_simulations(generator or self.generator_avg)
        elif self.config.budgeted:
            images = torch.cat(self.recent[:self.evaluation_batches])
        else:
            net = generator or self.generator_avg
            images = torch.cat([self._simulate(net(self.eval_z[s:s + 1024]),
                                               None if self.eval_noise is None else self.eval_noise[s:s + 1024])
                                for s in range(0, self.eval_z.shape[0], 1024)])
        return self._distance_to_truth(images)

    @torch.no_grad()
    def grid(self) -> np.ndarray:
        """Images simulated from the averaged generator's parameters, (rows, H, W) in [0, 1]; under a
        budget the newest simulated fakes (from the generator being trained), which cost nothing more."""
        if self.config.budgeted:
            if not self.recent:
                return self.grid_true[:0]
            return to_unit_images(self.recent[0][:self.config.grid_rows]).numpy()
        params = self.generator_avg(self.grid_z)
        noise = None if self.eval_noise is None else self.eval_noise[:params.shape[0]]
        return to_unit_images(self._simulate(params, noise)).numpy()

    def last_simulations(self) -> np.ndarray | None:
        """Under a budget, the last simulated batches at the generator's parameters ((N, H, W) in [0, 1]):
        the image-space checks use them instead of simulating more.  None without a budget."""
        if not self.config.budgeted or not self.recent:
            return None
        return to_unit_images(torch.cat(self.recent)).numpy()

    @torch.no_grad()
    def _replayed_fakes(self, n: int) -> torch.Tensor:
        """D's fakes under a budget: the latest simulated batch, refreshed on schedule (the evaluations
        use the recent batches too)."""
        cfg = self.config
        due = not self.recent or (self.iteration % self.refresh_every == 0 and self.refreshed_at != self.iteration)
        if due and self.simulations + n <= cfg.simulation_budget:
            self.refreshed_at = self.iteration
            z = torch.randn(n, self.latent_dim, generator=self.gen, device=self.device)
            noise, latent = self._noise(n, self.gen)
            params = self.generator(z)
            self.recent = [self._simulate(params, noise)] + self.recent[:self.evaluation_batches - 1]
            if self.moves_simulated:
                self.recent_inputs = ([(z, noise, latent, self.emulator.net(params, noise, latent))]
                                      + self.recent_inputs[:self.evaluation_batches - 1])
                self.moved_pool = None
        if not self.recent:
            raise ConfigError("the simulation budget is spent before the first batch of fakes")
        return self._moved_simulations(self.generator, n) if self.moves_simulated else self.recent[0]

    def _moved_simulations(self, generator: torch.nn.Module, n: int = 0, grad: bool = False) -> torch.Tensor:
        """The recent simulated images (n drawn at random, or all) moved to ``generator``'s parameters for
        their latent draws: each image plus the emulator's change from the parameters it was simulated
        at to the new ones, at the same emulator latent.  The image keeps the simulator's own noise;
        the emulator's errors in its randomness cancel in the difference.  ``grad``: differentiable in
        the generator (for G's step)."""
        if self.moved_pool is None:  # D's and G's steps draw from it every iteration: concatenate once
            self.moved_pool = (torch.cat(self.recent), *(None if parts[0] is None else torch.cat(parts)
                                                         for parts in zip(*self.recent_inputs)))
        images, z, noise, latent, then = self.moved_pool
        if n:
            idx = torch.randint(0, images.shape[0], (n,), generator=self.gen, device=self.device)
            images, z, noise, latent, then = (None if t is None else t[idx] for t in (images, z, noise, latent, then))
        with torch.set_grad_enabled(grad):
            return (images + self.emulator.net(generator(z), noise, latent) - then).clamp(-1.0, 1.0)

    # -- training -------------------------------------------------------------------------------------
    def _lr_factor(self) -> float:
        """Learning-rate multiplier: 1, then a linear fall late in the run so the generator settles."""
        cfg = self.config
        progress = self.iteration / max(1, cfg.iterations)
        if progress <= cfg.lr_decay_start or cfg.lr_decay_start >= 1.0:
            return 1.0
        frac = min(1.0, (progress - cfg.lr_decay_start) / (1.0 - cfg.lr_decay_start))
        return 1.0 - frac * (1.0 - cfg.lr_final_factor)

    def step(self) -> dict[str, torch.Tensor]:
        """One discriminator step and one generator step; returns their losses as detached 0-d tensors."""
        cfg, n = self.config, self.config.batch_size
        factor = self._lr_factor()
        for opt, lr in ((self.opt_g, cfg.lr_generator), (self.opt_d, cfg.lr_discriminator)):
            for group in opt.param_groups:
                group["lr"] = lr * factor
        for _ in range(cfg.discriminator_steps):
            z = torch.randn(n, self.latent_dim, generator=self.gen, device=self.device)
            noise, latent = self._noise(n, self.gen)
            with torch.no_grad():
                replayed = self._replayed_fakes(n) if cfg.budgeted else None
                if cfg.discriminator_on == "emulated":
                    fake = self.emulator.net(self.generator(z), noise, latent)
                elif replayed is not None:
                    fake = replayed
                else:
                    fake = self._simulate(self.generator(z), noise)
            real = self._real_batch(n)
            real_labels = smooth_labels(n, True, cfg.label_flip, self.gen, self.device)
            fake_labels = smooth_labels(n, False, cfg.label_flip, self.gen, self.device)
            # one pass over both batches (each keeps its own minibatch statistics): fewer, larger kernels
            logits = self.discriminator(torch.cat([real, fake]), groups=2)
            d_loss = (F.binary_cross_entropy_with_logits(logits[:n], real_labels)
                      + F.binary_cross_entropy_with_logits(logits[n:], fake_labels))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()

        if self.moves_simulated:
            images = self._moved_simulations(self.generator, n, grad=True)
        else:
            z = torch.randn(n, self.latent_dim, generator=self.gen, device=self.device)
            noise, latent = self._noise(n, self.gen)
            images = self.emulator.net(self.generator(z), noise, latent)
        self.discriminator.requires_grad_(False)
        g_loss = F.binary_cross_entropy_with_logits(self.discriminator(images), torch.ones(n, device=self.device))
        self.discriminator.requires_grad_(True)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        with torch.no_grad():  # one fused update of the weight average, not one kernel per tensor
            torch._foreach_lerp_(list(self.generator_avg.parameters()), list(self.generator.parameters()),
                                 1.0 - cfg.ema)
        self.iteration += 1
        return {"discriminator": d_loss.detach(), "generator": g_loss.detach()}

    def evaluate(self) -> None:
        """Measure the averaged generator's image distance and keep it if it is among the best."""
        distance = self.image_distance()
        self.history["eval_step"].append(self.iteration)
        self.history["image_distance"].append(distance)
        self.candidates.append((distance, self.iteration, self._averaged_weights()))
        self.candidates.sort(key=lambda c: (not self._in_pool_window(c[1]), c[0]))
        del self.candidates[self.pool_size:]

    def _in_pool_window(self, iteration: int) -> bool:
        return iteration >= self.config.pool_from * self.config.iterations

    def _pooled_samples(self, n: int, seed: int) -> np.ndarray:
        """n samples drawn in equal shares from the pooled generators (shuffled together)."""
        net = copy.deepcopy(self.generator_avg)
        shares = np.array_split(np.arange(n), len(self.candidates))
        parts = []
        for k, ((_, _, state), share) in enumerate(zip(self.candidates, shares)):
            net.load_state_dict(state)
            parts.append(self.sample(len(share), generator=net, seed=seed + k))
        samples = np.concatenate(parts)
        return samples[np.random.default_rng(seed).permutation(n)]

    def snapshot_fields(self, result: CalibrationOutcome | None = None) -> dict[str, Any]:
        """Samples of the averaged generator (of the pooled result, at the end) and the image grid."""
        n = self.config.snapshot_samples
        samples = result.samples[:n] if result is not None else self.sample(n, seed=self.config.seed + 1)
        distances = self.history["image_distance"]
        return {"image_distance": distances[-1] if distances else None, "parameter_names": self.space.names,
                "samples": samples, "generated": self.grid(), "true": self.grid_true}

    def trained_networks(self) -> list[torch.nn.Module]:
        return [self.generator, self.generator_avg, self.discriminator]

    def _averaged_weights(self) -> dict[str, torch.Tensor]:
        """A copy of the averaged generator's weights as they are now (a pooling candidate)."""
        return {k: v.detach().clone() for k, v in self.generator_avg.state_dict().items()}

    def finish(self, stopped: bool) -> CalibrationOutcome:
        """Pool the best evaluated generators' samples into the result."""
        if not self.candidates:  # diverged before its first evaluation: the averaged generator as it is
            self.candidates = [(float("nan"), self.iteration, self._averaged_weights())]
        return CalibrationOutcome(samples=self._pooled_samples(self.config.n_samples, seed=self.config.seed + 2),
                                  iteration=self.iteration, chosen_iterations=sorted(c[1] for c in self.candidates),
                                  image_distance=float(np.mean([c[0] for c in self.candidates])),
                                  noise_floor=self.noise_floor,
                                  wall_time=self.wall_time, history=dict(self.history), stopped_early=stopped,
                                  simulations=self.simulations, diverged=self.diverged)

    # -- files ----------------------------------------------------------------------------------------
    def checkpoint_payload(self) -> dict[str, Any]:
        """Resumable state, loadable with weights_only (no code in the file)."""
        meta = {"parameters": parameters_to_json(self.simulator.parameters), "config": asdict(self.config),
                "iteration": self.iteration, "wall_time": self.wall_time, "true_sha256": self.true.sha256,
                "candidates": [(c[0], c[1]) for c in self.candidates], "simulations": {"fresh": self.simulations},
                "latent_dim": self.latent_dim}
        return {"kind": "calibration", "meta": json.dumps(meta), **self.progress_state(),
                "generator": self.generator.state_dict(), "generator_avg": self.generator_avg.state_dict(),
                "candidate_generators": [c[2] for c in self.candidates],
                "discriminator": self.discriminator.state_dict(),
                "opt_generator": self.opt_g.state_dict(), "opt_discriminator": self.opt_d.state_dict()}

    def restore(self, payload: dict[str, Any], source: str = "the saved run") -> None:
        """Continue the calibration in ``payload`` (a ``checkpoint_payload``); ``source`` names it in errors."""
        meta = json.loads(payload["meta"])
        if meta["parameters"] != parameters_to_json(self.simulator.parameters):
            raise CheckpointError(f"{source}: was made for other simulator parameters")
        if meta["true_sha256"] != self.true.sha256:
            raise CheckpointError(f"{source}: was made with other true images (checksum differs)")
        if int(meta["latent_dim"]) != self.latent_dim:
            raise CheckpointError(f"{source}: generator latent size {meta['latent_dim']} differs from "
                                  f"{self.latent_dim}")
        try:
            self.generator.load_state_dict(payload["generator"])
            self.generator_avg.load_state_dict(payload["generator_avg"])
            self.discriminator.load_state_dict(payload["discriminator"])
            self.opt_g.load_state_dict(payload["opt_generator"])
            self.opt_d.load_state_dict(payload["opt_discriminator"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{source}: does not match this network configuration ({one_line(exc)})") from exc
        self.candidates = [(float(d), int(i), {k: v.to(self.device) for k, v in state.items()}) for (d, i), state
                           in zip(meta["candidates"], payload["candidate_generators"])]
        self.restore_progress(meta, payload)
