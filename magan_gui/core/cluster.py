"""Bank chunks on a Dask cluster: a LocalCluster, an existing scheduler, or a dask-jobqueue batch cluster.

``magan bank --cluster SPEC`` sends each chunk of a bank (see ``bank.py``) to Dask as one task with
its own seed.  SPEC is ``local:K`` (K worker processes on this computer), ``tcp://host:port`` (a
running scheduler) or the path of a YAML or TOML file describing a dask-jobqueue cluster (Slurm,
HTCondor, PBS, SGE, LSF).  Dask is an optional extra: this module imports it only when a cluster
is asked for, and its absence is one line naming the extra.

Nothing is lost and nothing is made twice: a worker that dies while it runs a chunk has the chunk
rerun elsewhere by the scheduler; a chunk whose simulator raises is retried a bounded number of
times and then reported with the simulator's own message, while every other chunk still finishes;
the bank commits each chunk as it arrives, so an interrupted client resumes with ``--resume``.
The workers need the same environment as this computer (magan-gui installed, the simulator's file
at the same path): on a batch cluster, a shared filesystem and the same virtual environment.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import time
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MaganError

EXTRA_HINT = "pip install 'magan-gui[cluster]'"
JOBQUEUE_KINDS = {"slurm": "SLURMCluster", "htcondor": "HTCondorCluster", "pbs": "PBSCluster",
                  "sge": "SGECluster", "lsf": "LSFCluster"}
SCALING_KEYS = ("jobs", "adapt_minimum_jobs", "adapt_maximum_jobs")  # a fixed number of jobs, or adaptive bounds
CHUNK_RETRIES = 2          # a chunk whose simulator raises is tried this many more times
CONNECT_SECONDS = 10.0
HEARTBEAT_SECONDS = 0.2  # how often a wait for chunks looks at the stop flag and the workers


class ClusterError(MaganError, ValueError):
    """A cluster that cannot be reached or described, or Dask missing."""


@dataclass
class ExecutorStatus:
    """What the executor has seen so far, for progress displays and the bank's summary."""

    description: str = "this process"
    dask: bool = False               # the chunks run on Dask (else in this computer's processes)
    workers: int = 1                 # workers connected now
    retried: int = 0                 # chunk runs repeated (a worker died under it, or its simulator raised)
    failed: int = 0                  # chunks given up on after their retries
    dashboard: str | None = None     # the Dask dashboard's address, when it serves one
    errors: list[str] = field(default_factory=list)   # the simulator's message for each failed chunk


def _import_dask():
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(f"--cluster needs Dask, which is not installed: {EXTRA_HINT}") from exc
    return distributed


def parse_spec(spec: str) -> tuple[str, Any]:
    """("local", K), ("address", "tcp://...") or ("jobqueue", Path): refuses anything else in one line."""
    text = (spec or "").strip()
    if text.startswith("local:"):
        try:
            workers = int(text[len("local:"):])
        except ValueError:
            workers = 0
        if workers < 1:
            raise ClusterError(f"cluster {spec!r}: local:K needs a number of workers K of at least 1")
        return "local", workers
    if "://" in text:
        return "address", text
    path = Path(text).expanduser()
    if path.suffix.lower() in (".yaml", ".yml", ".toml"):
        if not path.is_file():
            raise ClusterError(f"jobqueue file {str(path)!r} does not exist")
        return "jobqueue", path
    raise ClusterError(f"cluster {spec!r}: use local:K, a scheduler address such as tcp://host:8786, "
                       "or a dask-jobqueue file (.yaml or .toml)")


def read_jobqueue_file(path: Path) -> tuple[type, dict[str, Any], dict[str, Any]]:
    """The dask-jobqueue cluster class, its keyword arguments, and the scaling (jobs or adapt bounds)."""
    try:
        if path.suffix.lower() == ".toml":
            settings = tomllib.loads(path.read_text())
        else:
            import yaml

            settings = yaml.safe_load(path.read_text())
    except Exception as exc:  # a syntax error of either format, or an unreadable file
        raise ClusterError(f"jobqueue file {str(path)!r} cannot be read: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if not isinstance(settings, dict):
        raise ClusterError(f"jobqueue file {str(path)!r} must hold key = value settings")
    settings = dict(settings["cluster"] if set(settings) == {"cluster"} else settings)  # [cluster] table or top level
    kind = str(settings.pop("kind", "")).lower()
    if kind not in JOBQUEUE_KINDS:
        raise ClusterError(f"jobqueue file {str(path)!r}: kind must be one of {', '.join(JOBQUEUE_KINDS)}, "
                           f"got {kind or 'nothing'!r}")
    _import_dask()
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ClusterError(f"a jobqueue file needs dask-jobqueue, which is not installed: {EXTRA_HINT}") from exc
    cls = getattr(dask_jobqueue, JOBQUEUE_KINDS[kind])
    known = {"kind", *SCALING_KEYS}
    for owner in (*cls.__mro__, *cls.job_cls.__mro__):
        if "__init__" in vars(owner):
            known |= {name for name, p in inspect.signature(owner.__init__).parameters.items()
                      if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    known -= {"self", "args", "kwargs", "base_class_kwargs", "scheduler", "loop", "asynchronous", "name", "job_cls",
              "config_name", "n_workers", "scheduler_cls"}
    for key in settings:
        if key not in known:
            close = (difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.5)
                     or sorted(k for k in known if k[:4] == key[:4])[:3])
            raise ClusterError(f"jobqueue file {str(path)!r}: unknown key {key!r} for a {kind} cluster"
                               + (f" (did you mean {', '.join(close)}?)" if close else ""))
    scaling = {k: settings.pop(k) for k in SCALING_KEYS if k in settings}
    if "jobs" in scaling and len(scaling) > 1:
        raise ClusterError(f"jobqueue file {str(path)!r}: give either jobs or adapt_minimum_jobs/"
                           "adapt_maximum_jobs, not both")
    if not scaling:
        scaling = {"jobs": 1}
    for key, value in scaling.items():
        if not isinstance(value, int) or value < 0:
            raise ClusterError(f"jobqueue file {str(path)!r}: {key} must be a whole number, got {value!r}")
    return cls, settings, scaling


@contextmanager
def connect(spec: str, status: ExecutorStatus) -> Iterator[Any]:
    """A Dask client for ``spec``; the cluster this started (if any) is closed on the way out."""
    kind, value = parse_spec(spec)
    distributed = _import_dask()
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # a lost worker is handled here; Dask's own log would repeat it
    cluster = None
    try:
        if kind == "local":
            cluster = distributed.LocalCluster(n_workers=value, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
        elif kind == "address":
            try:
                client = distributed.Client(value, timeout=CONNECT_SECONDS)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ClusterError(f"no Dask scheduler answered at {value} within {CONNECT_SECONDS:.0f} s "
                                   f"({type(exc).__name__})") from exc
        else:
            cls, settings, scaling = read_jobqueue_file(value)
            try:
                cluster = cls(**settings)
            except Exception as exc:  # the jobqueue class checks its own settings
                raise ClusterError(f"jobqueue file {str(value)!r}: {type(exc).__name__}: {exc}") from exc
            if "jobs" in scaling:
                cluster.scale(jobs=scaling["jobs"])
            else:
                cluster.adapt(minimum_jobs=scaling.get("adapt_minimum_jobs", 0),
                              maximum_jobs=scaling.get("adapt_maximum_jobs", 1))
            client = distributed.Client(cluster)
        try:
            status.description, status.dask = spec, True
            services = client.scheduler_info(n_workers=0).get("services", {})
            status.dashboard = client.dashboard_link if "dashboard" in services else None
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
        quiet.setLevel(level)


# -- on the workers -----------------------------------------------------------------------------------
_simulators: dict[str, Any] = {}   # per worker process: each simulator loaded once


def run_chunk(spec: str, chunk: int, params: np.ndarray, seed: int) -> tuple[int, np.ndarray, np.ndarray | None]:
    """One bank chunk on a Dask worker: the same images as any other executor makes for this seed."""
    # Register Dask's NumPy serialisers (they import numpy.ma, which parses signatures with ast) here,
    # before any result needs them: left to the first result, that import runs in Dask's serialising
    # thread beside this one, and Python 3.11 before 3.11.8 can then fail it with "AST constructor
    # recursion depth mismatch" (CPython gh-106905; seen once in the test suite on 3.11.7).
    import distributed.protocol.numpy  # noqa: F401
    import torch

    from .bank import simulate_chunk
    from .simulators import load_simulator

    torch.set_num_threads(1)  # as in the local worker processes: the workers share the cores
    if spec not in _simulators:
        _simulators[spec] = load_simulator(spec)
    return (chunk, *simulate_chunk(_simulators[spec], params, seed))


# -- on the client ------------------------------------------------------------------------------------
def chunks_on_cluster(client, simulator_spec: str, todo: list[tuple[int, np.ndarray, int]],
                      status: ExecutorStatus, control=None, retries: int = CHUNK_RETRIES
                      ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None] | None]:
    """Run the chunks of ``todo`` through ``client`` (see ``connect``), yielding each as it finishes,
    and None a few times a second while none has.

    ``status`` is kept up to date (workers connected, chunks retried and failed).  Failed chunks are
    counted and their messages kept, and the others go on; stopping through ``control`` cancels
    what has not finished.
    """
    distributed = _import_dask()

    def attempts(dask_scheduler, keys):  # defined here: pickled by value, for a scheduler without magan_gui
        out = {}
        for key in keys:
            task = dask_scheduler.tasks.get(key)
            if task is not None:  # runs lost with a worker, plus reruns after the simulator raised
                out[key] = int(task.suspicious) + max(0, retries - int(task.retries or 0))
        return out

    run = uuid.uuid4().hex[:8]  # task keys unique to this run on a shared scheduler
    futures = {client.submit(run_chunk, simulator_spec, chunk, params, seed, retries=retries, pure=False,
                             key=f"magan-chunk-{run}-{chunk}"): chunk
               for chunk, params, seed in todo}
    queue = distributed.as_completed(list(futures))
    try:
        while not queue.is_empty():
            if control is not None and (control.stopped or not control.proceed()):
                return
            status.workers = len(client.nthreads())
            if not queue.has_ready():
                time.sleep(HEARTBEAT_SECONDS)
                yield None  # no chunk yet: the caller may still show the workers connected
                continue
            batch = queue.next_batch(block=False)
            try:
                counted = client.run_on_scheduler(attempts, keys=[f.key for f in batch])
            except Exception:  # a scheduler refusing the question costs only the count
                counted = {}
            status.retried += sum(counted.values())
            for future in batch:
                chunk = futures.pop(future)
                if future.status == "error":
                    status.failed += 1
                    status.errors.append(_failure(chunk, future, retries))
                elif future.status == "finished":
                    yield future.result()
                future.release()
    finally:
        if futures:
            client.cancel(list(futures))


def _failure(chunk: int, future, retries: int) -> str:
    exc = future.exception()
    name = type(exc).__name__
    if name == "KilledWorker":
        return f"chunk {chunk} took down the worker running it on every try (a crash or running out of memory)"
    text = str(exc).splitlines()[0] if str(exc) else name
    return f"chunk {chunk} failed {retries + 1} times: {text}"
