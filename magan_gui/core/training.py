"""The training-run skeleton that pretraining and calibration share, and the pieces of GAN
training both use.

``TrainingRun.run`` owns the loop: run control (pause, stop), the per-iteration loss log, the
evaluation cadence, rate-bounded progress snapshots, the checkpoint timer, the final evaluation
and checkpoint.  A stage subclasses it and keeps only its own mathematics in named hooks:
``step`` (one iteration), ``evaluate``, ``snapshot_fields`` (what its snapshots carry),
``finish`` (what the run returns) and ``checkpoint_payload`` / ``restore``.

A run that diverges (a loss or a weight becomes NaN or infinite) goes back to its last finite
state, records why in ``diverged`` and ends as a stopped run: nothing non-finite is returned or
written.  The check costs no host round-trip per iteration: a flag on the device collects the
losses' finiteness and is read where the loop reads the device anyway (evaluations, snapshots,
checkpoints).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import torch

from .checkpoints import CheckpointError, load_checkpoint, payload_to_cpu, restore_rng, save_checkpoint
from .errors import MaganError, TrainingError, one_line
from .progress import Observer, ProgressLog, RunControl, Snapshot
from .simulators import LoadedSimulator

Result = TypeVar("Result")


def saved_iteration(state: dict[str, Any]) -> int:
    """The iteration a saved run (a checkpoint payload) stopped at."""
    return int(json.loads(state["meta"])["iteration"])


class OutOfMemory(TrainingError):
    """The device ran out of memory during a run (its last finite state is kept where a file was asked for)."""


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA out-of-memory error, or the CPU allocator's."""
    return isinstance(exc, torch.OutOfMemoryError) or (isinstance(exc, RuntimeError)
                                                        and "can't allocate memory" in str(exc))


class RunConfig(Protocol):
    """The settings every training stage has (``PretrainConfig``, ``CalibrationConfig``)."""

    iterations: int
    eval_every: int
    snapshot_seconds: float
    checkpoint_seconds: float
    seed: int

    def validate(self) -> None:
        """Raise ConfigError for settings that cannot work."""
        ...


@contextmanager
def seeded_initialisation(seed: int):
    """Initialise networks from ``seed`` without touching the process's random state.

    torch's layers draw their initial weights from the global generator; forking it keeps a run
    reproducible from its own seed and leaves other code's random numbers alone.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def smooth_labels(n: int, positive: bool, flip: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """The paper's noisy labels: U(0.7, 1.2) for real / same, U(0, 0.3) for fake / different, a
    fraction ``flip`` of them swapped."""
    u = torch.rand(n, generator=gen, device=device)
    flipped = torch.rand(n, generator=gen, device=device) < flip
    return torch.where(flipped ^ positive, 0.7 + 0.5 * u, 0.3 * u)


def simulate_for_networks(simulator: LoadedSimulator, normalised: torch.Tensor, noise: torch.Tensor | None,
                          check: bool = False) -> torch.Tensor:
    """Simulated images as the networks see them: (N, 1, H, W) in [-1, 1], from parameters in [-1, 1]."""
    images = simulator.simulate(simulator.space.to_physical(normalised), noise, check=check)
    return images.unsqueeze(1) * 2.0 - 1.0


def to_unit_images(images: torch.Tensor) -> torch.Tensor:
    """Network images (N, 1, H, W) in [-1, 1] as (N, H, W) in [0, 1] on the host, for drawing."""
    return ((images.squeeze(1) + 1.0) * 0.5).clamp(0, 1).float().cpu()


class TrainingRun(Generic[Result]):
    """One resumable training run: the loop, its snapshots and checkpoints; stages fill in the hooks.

    Attributes
    ----------
    config : RunConfig
        The stage's settings.
    device : torch.device
        Where the networks run.
    gen : torch.Generator
        The run's own random stream (saved in checkpoints).
    iteration : int
        Iterations done.
    wall_time : float
        Seconds of training so far, over all resumptions.
    history : dict
        The stage's evaluation history (JSON-able lists), saved in checkpoints.
    """

    stage = ""
    title = ""            # the stage in a sentence: "pretraining", "calibration"
    evaluation_size = ""  # the config field that sizes its evaluations, the other setting that takes memory
    snapshot_type: type[Snapshot] = Snapshot
    eval_steps_key = ""   # the ``history`` list of iterations at which ``evaluate`` ran
    checkpoint_kind = ""  # the ``kind`` of this stage's checkpoint files

    def __init__(self, config: RunConfig, device: torch.device | str):
        config.validate()
        self.config, self.device = config, torch.device(device)
        self.gen = torch.Generator(device=self.device).manual_seed(config.seed)
        self.iteration = 0
        self.wall_time = 0.0
        self.history: dict[str, list] = {}
        self.last_evaluated = -1
        self.simulations = 0  # fresh simulator images this run has made (over all resumptions)
        self.simulator: LoadedSimulator  # set by the stage
        self.diverged: str | None = None  # why the run went back to its last finite state, if it did
        self.last_good: dict[str, Any] | None = None  # a CPU copy of the last state checked finite

    def simulate(self, normalised: torch.Tensor, noise: torch.Tensor | None, check: bool = False) -> torch.Tensor:
        """Fresh simulator images as the networks see them (see ``simulate_for_networks``), counted."""
        self.simulations += len(normalised)
        # a diverging network must never hand a simulator NaN; the loop's finiteness check stops the run
        normalised = torch.nan_to_num(normalised, nan=0.0).clamp(-1.0, 1.0)
        return simulate_for_networks(self.simulator, normalised, noise, check)

    # -- hooks ----------------------------------------------------------------------------------------
    def step(self) -> dict[str, torch.Tensor]:
        """One iteration (increments ``iteration``); its losses as detached 0-d tensors (no host round-trip)."""
        raise NotImplementedError

    def evaluate(self) -> None:
        """Measure the current state and record it in ``history``."""
        raise NotImplementedError

    def snapshot_fields(self, result: Result | None = None) -> dict[str, Any]:
        """The stage's own snapshot fields; ``result`` is given for the final snapshot."""
        raise NotImplementedError

    def finish(self, stopped: bool) -> Result:
        """What the run returns once the loop has ended (``stopped``: before all its iterations)."""
        raise NotImplementedError

    def set_training(self, training: bool) -> None:
        """Switch the networks between training and evaluation behaviour."""

    def trained_networks(self) -> list[torch.nn.Module]:
        """The networks this stage trains, whose weights must stay finite."""
        raise NotImplementedError

    def checkpoint_payload(self) -> dict[str, Any]:
        """Everything needed to resume, loadable with ``torch.load(weights_only=True)``."""
        raise NotImplementedError

    def restore(self, payload: dict[str, Any], source: str = "the saved run") -> None:
        """Continue the run in ``payload`` (a ``checkpoint_payload``); ``source`` names it in errors."""
        raise NotImplementedError

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, observer: Observer | None = None, control: RunControl | None = None,
            checkpoint_path: str | Path | None = None, snapshot_at: Collection[int] = ()) -> Result:
        """Train until ``config.iterations`` or a stop; report snapshots; return ``finish``'s result.

        ``snapshot_at`` adds snapshots at those iterations (the fixed columns of the paper's
        figures).  With ``checkpoint_path`` the resumable state is rewritten atomically every
        ``checkpoint_seconds`` and at the end.  Running out of memory raises ``OutOfMemory`` with
        the last finite state written to ``checkpoint_path``.
        """
        started_at = self.iteration
        try:
            return self._run(observer, control, checkpoint_path, snapshot_at)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            raise self._out_of_memory(checkpoint_path, started_at) from exc

    def _run(self, observer: Observer | None, control: RunControl | None, checkpoint_path: str | Path | None,
             snapshot_at: Collection[int]) -> Result:
        cfg = self.config
        log = ProgressLog(self.stage, cfg.iterations, cfg.snapshot_seconds, self.iteration, observer, snapshot_at)
        wall0, last_checkpoint = self.wall_time, time.perf_counter()
        started_at, stopped = self.iteration, False
        finite = torch.ones((), dtype=torch.bool, device=self.device)
        self.last_good = payload_to_cpu(self.checkpoint_payload())
        self.set_training(True)
        while self.iteration < cfg.iterations:
            if control is not None and not control.proceed():
                stopped = True
                break
            losses = self.step()
            finite &= torch.isfinite(torch.stack(list(losses.values()))).all()
            log.log(self.iteration, **losses)
            self.wall_time = wall0 + log.elapsed
            evaluate = self.iteration % cfg.eval_every == 0 or self.iteration == cfg.iterations
            snapshot = log.due(self.iteration)
            checkpoint = bool(checkpoint_path) and time.perf_counter() - last_checkpoint > cfg.checkpoint_seconds
            if (evaluate or snapshot or checkpoint) and not self._finite(finite):
                self._fall_back()
                stopped = True
                break
            if evaluate:
                self._evaluate()
            if snapshot:
                log.emit(self.iteration, kind=self.snapshot_type, **self._counts(), **self.snapshot_fields())
            if evaluate or checkpoint:  # the state to go back to should the run diverge later
                self.last_good = payload_to_cpu(self.checkpoint_payload())
            if checkpoint:
                save_checkpoint(checkpoint_path, self.last_good)
                last_checkpoint = time.perf_counter()
        if self.diverged is None and self.last_evaluated != self.iteration:
            if self._finite(finite):
                self._evaluate()
            else:
                self._fall_back()
                stopped = True
        self.set_training(False)
        if checkpoint_path and (self.diverged is None or self.iteration > started_at):
            save_checkpoint(checkpoint_path, self.checkpoint_payload())
        result = self.finish(stopped)
        if observer is not None:
            log.emit(self.iteration, final=True, kind=self.snapshot_type, **self._counts(),
                     **self.snapshot_fields(result))
        return result

    def _finite(self, losses_finite: torch.Tensor) -> bool:
        """Whether every loss so far and every trained weight is finite (one read from the device)."""
        checks = [losses_finite] + [torch.isfinite(p).all() for net in self.trained_networks()
                                    for p in net.parameters()]
        return bool(torch.stack(checks).all())

    def _fall_back(self) -> None:
        """Go back to ``last_good`` after a divergence found at this iteration, and say so in ``diverged``."""
        found_at, made = self.iteration, self.simulations
        self.restore(self.last_good, "the last finite state")
        self.simulations = made  # the images made since were still consumed
        self.diverged = (f"{self.title} diverged: a loss or weight became NaN or infinite by iteration {found_at}; "
                         f"the run went back to iteration {self.iteration}, its last finite state")

    def _out_of_memory(self, checkpoint_path: str | Path | None, started_at: int) -> OutOfMemory:
        """The error for a run that ran out of memory, its last finite state written first if it is new."""
        found_at = self.iteration
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        good = self.last_good
        kept = started_at if good is None else saved_iteration(good)
        if checkpoint_path and kept > started_at:
            save_checkpoint(checkpoint_path, good)
            where = f"the state of iteration {kept} is kept in {checkpoint_path}"
        elif checkpoint_path and Path(checkpoint_path).exists():
            where = f"{checkpoint_path} is as it was"
        else:
            where = "nothing was written"
        size = self.evaluation_size
        return OutOfMemory(f"{self.title} ran out of {self.device.type.upper()} memory at iteration {found_at}: "
                           f"lower the batch size (now {self.config.batch_size}) or the preset's {size} (now "
                           f"{getattr(self.config, size)}); {where}")

    def _counts(self) -> dict[str, int]:
        """The simulator images made so far, and the cap on them, for snapshots."""
        return {"simulations": self.simulations,
                "simulation_budget": int(getattr(self.config, "simulation_budget", 0))}

    def _evaluate(self) -> None:
        self.evaluate()
        self.last_evaluated = self.iteration

    # -- checkpoints ----------------------------------------------------------------------------------
    def resume_from(self, path: str | Path) -> None:
        """Continue the run saved in the checkpoint file ``path``."""
        self.continue_from(load_checkpoint(path, self.checkpoint_kind), str(path))

    def continue_from(self, payload: dict[str, Any], source: str) -> None:
        """``restore``, with a saved run that lacks a key or holds a value of the wrong type refused in one line."""
        try:
            self.restore(payload, source)
        except MaganError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise CheckpointError(f"{source}: incomplete or from another version ({type(exc).__name__}: "
                                  f"{one_line(exc)})") from exc

    def progress_state(self) -> dict[str, Any]:
        """The loop's part of a checkpoint: history and random state (iteration and time go in the meta)."""
        return {"history": json.dumps(self.history), "rng": self.gen.get_state()}

    def restore_progress(self, meta: dict[str, Any], payload: dict[str, Any]) -> None:
        """Continue the loop where a checkpoint left it: iteration, time, history and random stream."""
        self.iteration, self.wall_time = int(meta["iteration"]), float(meta["wall_time"])
        self.simulations = int(meta.get("simulations", {}).get("fresh", 0))
        restore_rng(self.gen, payload["rng"], self.config.seed + self.iteration)
        self.history = json.loads(payload["history"])
        steps = self.history.get(self.eval_steps_key) or [-1]
        self.last_evaluated = int(steps[-1])
