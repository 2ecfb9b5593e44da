"""The pipeline in one place: settings from a preset, true images, pretraining, calibration, result.

The command line, the benchmarks and the app all run their work through these functions, so a
change to how a stage is set up, resumed or reported is made here once.  Nothing here touches
Qt; every function can run in a worker thread and reports through the ``observer`` it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .bank import load_bank
from .calibration import CalibrationConfig, CalibrationOutcome, Calibrator
from .checkpoints import payload_to_cpu
from .data import TrueImages, make_closure_set
from .emulator import TrainedEmulator
from .errors import ConfigError, TrainingError
from .presets import apply_preset, load_preset
from .pretraining import PretrainConfig, Pretrainer, choose_start
from .progress import Observer, RunControl, Snapshot
from .results import add_ensemble, build_result, parameter_effects
from .simulators import LoadedSimulator
from .training import TrainingRun
from .training import saved_iteration as saved_iteration  # part of the pipeline API (the app reads it here)

EXAMPLE_IMAGES = 10000       # true images of a built-in's example closure test, as in the paper
EXAMPLE_SEED_OFFSET = 1000   # the example's true images are drawn from seed + this, apart from training's
ENSEMBLE_MEMBERS = 3         # an ensemble's members unless told: the fewest that give a spread, 3x one run's time
Resume = str | Path | dict[str, Any] | None  # a checkpoint file, or a checkpoint payload held in memory


@dataclass(frozen=True)
class StageConfigs:
    """The settings of both training stages."""

    pretrain: PretrainConfig
    calibrate: CalibrationConfig


def stage_configs(simulator_name: str | None, preset: str = "quick", seed: int | None = None,
                  iterations: int | None = None) -> StageConfigs:
    """Both stages' settings from a preset (a name or a .toml path) with its per-simulator overrides.

    ``seed`` and ``iterations``, when given, replace the preset's values in both stages (the
    iterations on every route: fresh, from a bank, under a budget).
    """
    values = load_preset(preset)
    pre = apply_preset(PretrainConfig(), values, "pretrain", simulator_name)
    cal = apply_preset(CalibrationConfig(), values, "calibrate", simulator_name)
    overrides = {k: v for k, v in (("seed", seed), ("iterations", iterations)) if v is not None}
    if iterations is not None:  # a count given is the count on every route: from a bank, under a budget
        return StageConfigs(replace(pre, bank_iterations=0, **overrides),
                            replace(cal, budget_iterations=0, **overrides))
    return StageConfigs(replace(pre, **overrides), replace(cal, **overrides))


def example_closure_set(simulator: LoadedSimulator, seed: int, device: torch.device | str,
                        n: int = EXAMPLE_IMAGES) -> TrueImages:
    """True images of a built-in's example closure test: the paper's population, drawn from ``seed``."""
    if simulator.example_population is None:
        raise ConfigError(f"simulator {simulator.name!r} has no example population; the examples are "
                          "the built-ins lines and circles")
    mean, std = simulator.example_population
    true = make_closure_set(simulator, mean, std, n, seed=seed + EXAMPLE_SEED_OFFSET, device=device)
    true.source = f"closure test of {simulator.name}, the paper's population, seed {seed + EXAMPLE_SEED_OFFSET}"
    return true


@dataclass
class Pretraining:
    """What a pretraining produced.

    Attributes
    ----------
    emulator : TrainedEmulator
        The emulator as the run left it.
    state : dict
        The run's resumable state (a CPU copy of its checkpoint payload).
    stopped : bool
        True when the run ended before all its iterations.
    mode : str
        The pretraining mode used ("auto" resolved).
    history : dict
        Held-out fidelity by iteration and wall time.
    diverged : str or None
        Why the run went back to its last finite state and stopped, if it diverged.
    """

    emulator: TrainedEmulator
    state: dict[str, Any]
    stopped: bool
    mode: str
    history: dict[str, list]
    diverged: str | None = None


@dataclass
class Calibration:
    """What a calibration produced: the outcome, its result document and its resumable state (None for
    an ensemble, which cannot be continued)."""

    outcome: CalibrationOutcome
    result: dict[str, Any]
    state: dict[str, Any] | None


def require_more_iterations(done: int, planned: int, source: str) -> None:
    """Refuse to continue a saved run that already has the iterations asked for."""
    if done >= planned:
        raise TrainingError(f"{source} already has {done} iterations: set iterations above that to continue it")


def _continue(run: TrainingRun, resume: Resume, source: str) -> None:
    """Load a saved run into ``run``; refuse one that has nothing left to do."""
    if isinstance(resume, dict):
        run.continue_from(resume, source)
    else:
        run.resume_from(resume)
        source = str(resume)
    require_more_iterations(run.iteration, run.config.iterations, source)


def pretrain(simulator: LoadedSimulator, config: PretrainConfig, device: torch.device | str, *,
             observer: Observer | None = None, control: RunControl | None = None,
             checkpoint_path: str | Path | None = None, resume: Resume = None,
             snapshot_at: Collection[int] = (), bank: str | Path | None = None) -> Pretraining:
    """Pretrain an emulator of ``simulator`` (or continue ``resume``); the emulator file is ``checkpoint_path``.

    With ``bank`` (a bank file of this simulator) it learns from the stored simulations and makes none;
    a fresh run first tries ``config.bank_starts`` initialisations there and trains the best
    (``choose_start``).
    """
    data = None if bank is None else load_bank(bank, simulator)
    scores: list[float] = []
    if data is not None and resume is None:
        start, scores = choose_start(simulator, config, device, data, control)
        config = replace(config, start=start)
    trainer = Pretrainer(simulator, config, device, data)
    trainer.start_scores = scores
    if resume is not None:
        _continue(trainer, resume, "the last pretraining run")
    emulator = trainer.run(observer=observer, control=control, checkpoint_path=checkpoint_path,
                           snapshot_at=snapshot_at)
    return Pretraining(emulator, payload_to_cpu(trainer.checkpoint_payload()), trainer.iteration < config.iterations,
                       trainer.mode, trainer.history, trainer.diverged)


def calibrate(simulator: LoadedSimulator, emulator: TrainedEmulator, true: TrueImages, config: CalibrationConfig,
              device: torch.device | str, *, emulator_path: str | None = None, observer: Observer | None = None,
              control: RunControl | None = None, checkpoint_path: str | Path | None = None, resume: Resume = None,
              snapshot_at: Collection[int] = (), members: int = 1) -> Calibration:
    """Calibrate ``simulator`` against ``true`` through ``emulator`` (or continue ``resume``).

    ``members`` > 1 runs an ensemble (``calibrate_ensemble``): no checkpoint, nothing to continue.
    """
    if members > 1:
        if resume is not None:
            raise ConfigError("an ensemble calibration cannot be continued: start it again")
        return calibrate_ensemble(simulator, emulator, true, config, device, members, emulator_path=emulator_path,
                                  observer=observer, control=control)
    calibrator = Calibrator(simulator, emulator, true, config, device)
    if resume is not None:
        _continue(calibrator, resume, "the last calibration")
    outcome = calibrator.run(observer=observer, control=control, checkpoint_path=checkpoint_path,
                             snapshot_at=snapshot_at)
    result = _result(simulator, emulator, outcome, true, config, device, emulator_path, calibrator.last_simulations())
    return Calibration(outcome, result, payload_to_cpu(calibrator.checkpoint_payload()))


def _result(simulator: LoadedSimulator, emulator: TrainedEmulator, outcome: CalibrationOutcome, true: TrueImages,
            config: CalibrationConfig, device: torch.device | str, emulator_path: str | None,
            check_images: np.ndarray | None) -> dict[str, Any]:
    # under a budget, how much each parameter shows in the images is measured on the emulator (free)
    effects = parameter_effects(emulator, outcome.samples, device) if config.budgeted else None
    return build_result(simulator, outcome, true, emulator.meta, asdict(config), config.seed, device,
                        emulator_path, effects=effects, check_images=check_images)


def bootstrap_resample(true: TrueImages, seed: int) -> TrueImages:
    """As many true images as ``true`` has, drawn from it with replacement (with their parameters)."""
    idx = np.random.default_rng(seed).integers(0, len(true), len(true))
    return TrueImages(true.images[idx], None if true.params is None else true.params[idx], true.param_names,
                      f"{true.source} (bootstrap resample, seed {seed})")


class _MemberProgress:
    """Reports an ensemble member's snapshots as part of one long run: iterations counted across
    members, time left including the members still to come, only the last member's end final."""

    def __init__(self, observer: Observer, member: int, members: int, iterations: int, elapsed_before: float):
        self.observer, self.member, self.members = observer, member, members
        self.offset, self.elapsed_before = member * iterations, elapsed_before

    def __call__(self, snap: Snapshot) -> None:
        done = snap.iteration / max(1, snap.iterations)
        member_time = snap.elapsed / done if done > 0 else snap.elapsed + snap.eta
        later = self.members - self.member - 1
        self.observer(replace(snap, iteration=snap.iteration + self.offset, iterations=snap.iterations * self.members,
                              loss_steps=snap.loss_steps + self.offset, elapsed=self.elapsed_before + snap.elapsed,
                              eta=snap.eta + later * member_time, final=snap.final and later == 0))


def calibrate_ensemble(simulator: LoadedSimulator, emulator: TrainedEmulator, true: TrueImages,
                       config: CalibrationConfig, device: torch.device | str, members: int = ENSEMBLE_MEMBERS, *,
                       emulator_path: str | None = None, observer: Observer | None = None,
                       control: RunControl | None = None) -> Calibration:
    """Calibrate ``members`` times, each with its own seed (``config.seed + k``) against its own bootstrap
    resample of ``true``, and pool them: the result's figures are the pooled samples', each with the
    standard error that the members' spread gives it (``add_ensemble``).

    A simulation budget is shared: each member may make ``simulation_budget // members`` images.
    A stop or a divergence ends the ensemble with the members run so far (the stopped one included).
    """
    if members < 2:
        raise ConfigError(f"an ensemble needs at least 2 members, got {members}")
    member_config = replace(config, simulation_budget=config.simulation_budget // members)
    if config.budgeted and member_config.simulation_budget < config.minimum_budget:
        raise ConfigError(f"a simulation budget of {config.simulation_budget:,} images shared by {members} ensemble "
                          f"members gives each {member_config.simulation_budget:,}, below the "
                          f"{config.minimum_budget:,} a calibration needs: raise the budget or use fewer members")
    outcomes: list[CalibrationOutcome] = []
    checks: list[np.ndarray | None] = []
    seeds: list[int] = []
    for k in range(members):
        seed = config.seed + k
        calibrator = Calibrator(simulator, emulator, bootstrap_resample(true, seed), replace(member_config, seed=seed),
                                device)
        progress = None if observer is None else _MemberProgress(observer, k, members, config.iterations,
                                                                 sum(o.wall_time for o in outcomes))
        outcome = calibrator.run(observer=progress, control=control)
        outcomes.append(outcome)
        checks.append(calibrator.last_simulations())
        seeds.append(seed)
        if outcome.stopped_early or outcome.diverged:
            break
    pooled = pool_outcomes(outcomes, config.n_samples, config.seed)
    result = _result(simulator, emulator, pooled, true, config, device, emulator_path,
                     None if checks[0] is None else np.concatenate(checks))
    add_ensemble(result, [o.samples for o in outcomes], seeds, members)
    return Calibration(pooled, result, None)


def pool_outcomes(outcomes: list[CalibrationOutcome], n_samples: int, seed: int) -> CalibrationOutcome:
    """One outcome from an ensemble's: equal shares of each member's samples, shuffled together; times
    and simulations added up; the first member's history."""
    shares = np.array_split(np.arange(n_samples), len(outcomes))
    samples = np.concatenate([o.samples[:len(share)] for o, share in zip(outcomes, shares)])
    first = outcomes[0]
    return CalibrationOutcome(
        samples=samples[np.random.default_rng(seed).permutation(len(samples))], iteration=first.iteration,
        chosen_iterations=first.chosen_iterations, image_distance=float(np.mean([o.image_distance for o in outcomes])),
        wall_time=sum(o.wall_time for o in outcomes), history=first.history,
        stopped_early=any(o.stopped_early for o in outcomes), simulations=sum(o.simulations for o in outcomes),
        diverged=next((o.diverged for o in outcomes if o.diverged), None),
        noise_floor=float(np.mean([o.noise_floor for o in outcomes])))


@dataclass
class PipelineRun:
    """Both stages of one calibration from nothing; ``calibration`` is None when pretraining was stopped."""

    pretraining: Pretraining
    calibration: Calibration | None


def run_pipeline(simulator: LoadedSimulator, true: TrueImages, configs: StageConfigs, device: torch.device | str,
                 *, observer: Observer | None = None, control: RunControl | None = None,
                 emulator_path: str | Path | None = None, calibration_checkpoint: str | Path | None = None,
                 pretrain_snapshots: Collection[int] = (), calibrate_snapshots: Collection[int] = (),
                 on_pretrained: Callable[[Pretraining], None] | None = None,
                 bank: str | Path | None = None, members: int = 1) -> PipelineRun:
    """Pretrain an emulator (from ``bank`` when given), then calibrate through it: the whole method.

    ``emulator_path`` is where the emulator file is written (as it trains);
    ``on_pretrained`` hears of the emulator before calibration starts; ``members`` > 1 calibrates as
    an ensemble (no calibration checkpoint then).
    """
    pretraining = pretrain(simulator, configs.pretrain, device, observer=observer, control=control,
                           checkpoint_path=emulator_path, snapshot_at=pretrain_snapshots, bank=bank)
    if on_pretrained is not None:
        on_pretrained(pretraining)
    if pretraining.stopped or (control is not None and control.stopped):
        return PipelineRun(pretraining, None)
    calibration = calibrate(simulator, pretraining.emulator, true, configs.calibrate, device,
                            emulator_path=None if emulator_path is None else str(emulator_path),
                            observer=observer, control=control,
                            checkpoint_path=calibration_checkpoint if members == 1 else None,
                            snapshot_at=calibrate_snapshots, members=members)
    return PipelineRun(pretraining, calibration)
