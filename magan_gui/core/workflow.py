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

import torch

from .bank import load_bank
from .calibration import CalibrationConfig, CalibrationOutcome, Calibrator
from .checkpoints import payload_to_cpu
from .data import TrueImages, make_closure_set
from .emulator import TrainedEmulator
from .errors import ConfigError, TrainingError
from .presets import apply_preset, load_preset
from .pretraining import PretrainConfig, Pretrainer, choose_start
from .progress import Observer, RunControl
from .results import build_result, parameter_effects
from .simulators import LoadedSimulator
from .training import TrainingRun
from .training import saved_iteration as saved_iteration  # part of the pipeline API (the app reads it here)

EXAMPLE_IMAGES = 10000       # true images of a built-in's example closure test, as in the paper
EXAMPLE_SEED_OFFSET = 1000   # the example's true images are drawn from seed + this, apart from training's
Resume = str | Path | dict[str, Any] | None  # a checkpoint file, or a checkpoint payload held in memory


@dataclass(frozen=True)
class StageConfigs:
    """The settings of both training stages."""

    pretrain: PretrainConfig
    calibrate: CalibrationConfig


def stage_configs(simulator_name: str | None, preset: str = "quick", seed: int | None = None,
                  iterations: int | None = None) -> StageConfigs:
    """Both stages' settings from a preset (a name or a .toml path) with its per-simulator overrides.

    ``seed`` and ``iterations``, when given, replace the preset's values in both stages.
    """
    values = load_preset(preset)
    pre = apply_preset(PretrainConfig(), values, "pretrain", simulator_name)
    cal = apply_preset(CalibrationConfig(), values, "calibrate", simulator_name)
    overrides = {k: v for k, v in (("seed", seed), ("iterations", iterations)) if v is not None}
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
    """What a calibration produced: the outcome, its result document and its resumable state."""

    outcome: CalibrationOutcome
    result: dict[str, Any]
    state: dict[str, Any]


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
              snapshot_at: Collection[int] = ()) -> Calibration:
    """Calibrate ``simulator`` against ``true`` through ``emulator`` (or continue ``resume``)."""
    calibrator = Calibrator(simulator, emulator, true, config, device)
    if resume is not None:
        _continue(calibrator, resume, "the last calibration")
    outcome = calibrator.run(observer=observer, control=control, checkpoint_path=checkpoint_path,
                             snapshot_at=snapshot_at)
    # under a budget, how much each parameter shows in the images is measured on the emulator (free)
    effects = parameter_effects(emulator, outcome.samples, device) if config.budgeted else None
    result = build_result(simulator, outcome, true, emulator.meta, asdict(config), config.seed, device,
                          emulator_path, effects=effects, check_images=calibrator.last_simulations())
    return Calibration(outcome, result, payload_to_cpu(calibrator.checkpoint_payload()))


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
                 bank: str | Path | None = None) -> PipelineRun:
    """Pretrain an emulator (from ``bank`` when given), then calibrate through it: the whole method.

    ``emulator_path`` is where the emulator file is written (as it trains);
    ``on_pretrained`` hears of the emulator before calibration starts.
    """
    pretraining = pretrain(simulator, configs.pretrain, device, observer=observer, control=control,
                           checkpoint_path=emulator_path, snapshot_at=pretrain_snapshots, bank=bank)
    if on_pretrained is not None:
        on_pretrained(pretraining)
    if pretraining.stopped or (control is not None and control.stopped):
        return PipelineRun(pretraining, None)
    calibration = calibrate(simulator, pretraining.emulator, true, configs.calibrate, device,
                            emulator_path=None if emulator_path is None else str(emulator_path),
                            observer=observer, control=control, checkpoint_path=calibration_checkpoint,
                            snapshot_at=calibrate_snapshots)
    return PipelineRun(pretraining, calibration)
