"""The simulation bank: simulator images made once, stored with their parameters, reused by every step.

A bank is an HDF5 file (see DESIGN.md's "Simulation bank"): ``params`` (N, P) in physical units, a
scrambled Sobol design over the parameter box; ``images`` (N, H, W) in [0, 1]; ``noise`` (N, H, W)
when the simulator shares its random numbers (the emulator is fed them); ``chunk_done`` (one flag
per chunk); attributes naming the simulator, its parameters and ranges, the image shape, the seed
and the chunk size.  The design is fixed by the seed before anything is simulated, so chunks are
independent tasks: each is simulated with its own seed and committed as it finishes, and a bank
that was interrupted continues where it stopped without redoing or losing a chunk.  The same seed
gives the same bank whichever worker ran a chunk (for simulators whose randomness comes from
torch's or NumPy's global generators, or from the shared noise).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cluster import ExecutorStatus
from .emulator import parameters_to_json
from .errors import MaganError
from .files import refuse_existing
from .progress import RunControl, Snapshot
from .simulators import LoadedSimulator, load_simulator

BANK_FORMAT = "magan-bank/1"
DEFAULT_CHUNK = 256


class BankError(MaganError, ValueError):
    """A bank file is missing, unreadable, incomplete, or made for another simulator."""


@dataclass
class BankSnapshot(Snapshot):
    """Progress of a bank: ``iteration`` counts the images made, ``rate`` is in images per second.

    Attributes
    ----------
    latest : np.ndarray
        A few images of the chunk just committed, (rows, H, W) in [0, 1].
    executor : ExecutorStatus
        Where the chunks run: workers connected, chunks retried and failed, the dashboard.
    """

    latest: np.ndarray | None = None
    executor: ExecutorStatus | None = None


@dataclass
class BankData:
    """A complete bank in memory, as pretraining reads it."""

    params: np.ndarray              # (N, P) physical units
    images: np.ndarray              # (N, H, W) in [0, 1]
    noise: np.ndarray | None        # (N, H, W) the shared random numbers, when the simulator shares them
    path: str

    def __len__(self) -> int:
        return int(self.params.shape[0])


@dataclass
class BankSummary:
    """What a bank run did."""

    path: Path
    n_images: int
    made_now: int                   # images simulated by this run (the rest were there already)
    seconds: float
    stopped: bool
    chunks: int = 0                 # chunks simulated by this run
    workers: int = 1
    executor: ExecutorStatus | None = None


def design(simulator: LoadedSimulator, n: int, seed: int) -> np.ndarray:
    """The bank's parameter sets: n points of a scrambled Sobol sequence over the box, physical units."""
    engine = torch.quasirandom.SobolEngine(len(simulator.space), scramble=True, seed=seed)
    unit = engine.draw(n, dtype=torch.float64).float()
    return simulator.space.to_physical(unit * 2.0 - 1.0).numpy()


def chunk_seed(seed: int, chunk: int) -> int:
    """The random seed of one chunk: fixed by the bank's seed and the chunk's index alone."""
    return int((int(seed) * 1_000_003 + int(chunk) * 7919 + 17) % (2**31 - 1))


def simulate_chunk(simulator: LoadedSimulator, params: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (and the shared noise) of one chunk, reproducible from ``seed`` whichever process runs it.

    The global torch and NumPy generators are seeded for the call and restored afterwards, so a
    black-box simulator that draws from them gives the same images for the same chunk seed.
    """
    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            p = torch.from_numpy(np.ascontiguousarray(params, dtype=np.float32))
            noise = simulator.sample_noise(len(p), generator=torch.Generator().manual_seed(seed))
            images = simulator.simulate(p, noise, check=True)
        finally:
            np.random.set_state(numpy_state)
    return images.numpy(), None if noise is None else noise.float().numpy()


# -- the file -----------------------------------------------------------------------------------------
def _describe(simulator: LoadedSimulator) -> dict[str, Any]:
    return {"simulator": simulator.name, "simulator_spec": simulator.spec,
            "parameters": json.dumps(parameters_to_json(simulator.parameters)),
            "image_shape": json.dumps(list(simulator.image_shape)), "shares_noise": simulator.shares_noise}


def _open(path: Path, mode: str = "r"):
    import h5py

    try:
        return h5py.File(path, mode)
    except (OSError, ValueError) as exc:
        raise BankError(f"{path}: not a readable bank file ({exc})") from exc


def _read_attrs(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BankError(f"{path}: no such bank file")
    with _open(path) as fh:
        attrs = dict(fh.attrs)
        if attrs.get("format") != BANK_FORMAT:
            raise BankError(f"{path}: not a magan bank (format {attrs.get('format')!r})")
        missing = [k for k in ("params", "images", "chunk_done") if k not in fh]
        if missing:
            raise BankError(f"{path}: incomplete bank file (no {', '.join(missing)})")
        attrs["chunks_done"] = int(np.count_nonzero(fh["chunk_done"][()]))
        attrs["chunks"] = int(fh["chunk_done"].shape[0])
    return attrs


def check_bank(path: str | Path, simulator: LoadedSimulator) -> dict[str, Any]:
    """The bank's attributes, after checking it was made by this simulator (same parameters, ranges, shape)."""
    path = Path(path)
    attrs = _read_attrs(path)
    mine = _describe(simulator)
    if attrs["simulator"] != mine["simulator"]:
        raise BankError(f"{path}: a bank of simulator {attrs['simulator']!r}, not {simulator.name!r}")
    if json.loads(attrs["parameters"]) != json.loads(mine["parameters"]):
        raise BankError(f"{path}: made with other parameters or ranges than {simulator.name!r} has now")
    if json.loads(attrs["image_shape"]) != list(simulator.image_shape):
        raise BankError(f"{path}: holds {'x'.join(map(str, json.loads(attrs['image_shape'])))} images, the "
                        f"simulator makes {simulator.image_shape[0]}x{simulator.image_shape[1]}")
    if bool(attrs["shares_noise"]) != simulator.shares_noise:
        raise BankError(f"{path}: made {'with' if attrs['shares_noise'] else 'without'} the simulator's shared "
                        f"noise, and {simulator.spec!r} {'shares' if simulator.shares_noise else 'hides'} it")
    return attrs


def _create(path: Path, simulator: LoadedSimulator, n: int, seed: int, chunk_size: int) -> None:
    h, w = simulator.image_shape
    n_chunks = -(-n // chunk_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open(path, "w") as fh:
        fh.attrs.update({"format": BANK_FORMAT, "n": n, "seed": seed, "chunk_size": chunk_size,
                         **_describe(simulator)})
        fh.create_dataset("params", data=design(simulator, n, seed).astype(np.float32))
        layout = {"chunks": (min(chunk_size, n), h, w), "compression": "lzf"}
        fh.create_dataset("images", shape=(n, h, w), dtype=np.float32, **layout)
        if simulator.shares_noise:
            fh.create_dataset("noise", shape=(n, h, w), dtype=np.float32, **layout)
        fh.create_dataset("chunk_done", data=np.zeros(n_chunks, dtype=bool))


def _open_for_writing(path: Path, patience: float = 30.0):
    """The bank open for appending; waits while a reader (someone looking at the bank) holds its lock."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return _open(path, "a")
        except BankError as exc:
            if "lock" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _commit(path: Path, chunk: int, chunk_size: int, images: np.ndarray, noise: np.ndarray | None) -> None:
    """Write one chunk, then mark it done: a chunk cut off before its flag is simply made again."""
    with _open_for_writing(path) as fh:
        rows = slice(chunk * chunk_size, chunk * chunk_size + len(images))
        fh["images"][rows] = images
        if noise is not None:
            fh["noise"][rows] = noise
        fh.flush()
        fh["chunk_done"][chunk] = True


def load_bank(path: str | Path, simulator: LoadedSimulator) -> BankData:
    """Read a complete bank of ``simulator`` into memory; refuse an incomplete or foreign one."""
    path = Path(path)
    attrs = check_bank(path, simulator)
    if attrs["chunks_done"] < attrs["chunks"]:
        raise BankError(f"{path}: only {attrs['chunks_done']} of {attrs['chunks']} chunks are done; finish it with "
                        f"magan bank ... -o {path} --resume")
    with _open(path) as fh:
        try:
            return BankData(fh["params"][()], fh["images"][()], fh["noise"][()] if "noise" in fh else None,
                            str(path))
        except (OSError, KeyError, ValueError) as exc:
            raise BankError(f"{path}: its data cannot be read ({exc})") from exc


# -- making a bank ------------------------------------------------------------------------------------
_worker_simulator: LoadedSimulator | None = None  # one per worker process, loaded once by its initialiser


def _start_worker(spec: str) -> None:
    global _worker_simulator
    torch.set_num_threads(1)  # the processes share the cores: one thread each
    _worker_simulator = load_simulator(spec)
    parent = os.getppid()

    def leave_with_the_parent() -> None:  # a killed parent cannot shut its pool down: leave with it
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=leave_with_the_parent, daemon=True).start()


def _worker_chunk(chunk: int, params: np.ndarray, seed: int) -> tuple[int, np.ndarray, np.ndarray | None]:
    return (chunk, *simulate_chunk(_worker_simulator, params, seed))


def _chunks_made(simulator: LoadedSimulator, todo: list[tuple[int, np.ndarray, int]], workers: int,
                 control: RunControl | None) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """Simulate the chunks of ``todo``, in this process or in ``workers`` processes, as they finish."""
    if not todo:
        return
    if workers <= 1:
        for chunk, params, seed in todo:
            if control is not None and not control.proceed():
                return
            yield (chunk, *simulate_chunk(simulator, params, seed))
        return
    context = multiprocessing.get_context("spawn")  # fork would copy torch's threads into the children
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(simulator.spec,)) as pool:
        queue = iter(todo)
        running: set[Future] = set()
        while True:
            stopping = control is not None and (control.stopped or not control.proceed())
            while not stopping and len(running) < 2 * workers:  # a chunk ready for each worker as it frees
                item = next(queue, None)
                if item is None:
                    break
                running.add(pool.submit(_worker_chunk, *item))
            if not running:
                return
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()


def build_bank(simulator: LoadedSimulator, path: str | Path, n: int, seed: int = 0, chunk_size: int = DEFAULT_CHUNK,
               workers: int = 1, cluster: str | None = None, resume: bool = False, force: bool = False,
               observer: Callable[[BankSnapshot], None] | None = None, control: RunControl | None = None,
               snapshot_seconds: float = 0.5) -> BankSummary:
    """Make (or finish, with ``resume``) a bank of ``n`` images of ``simulator`` at ``path``.

    Chunks of ``chunk_size`` images are simulated in ``workers`` processes (1: in this process), or
    on the Dask cluster ``cluster`` (see ``cluster.py``), and committed as they finish; ``observer``
    hears of the progress.  Stopping through ``control`` keeps every finished chunk.  Chunks that
    failed for good (on a cluster, after their retries) are reported once all others are in.
    """
    path = Path(path)
    if n < 1 or chunk_size < 1 or workers < 1:
        raise BankError("the number of images, the chunk size and the workers must be at least 1")
    if resume:  # refused before a cluster is started; checked again when the file is opened
        check_bank(path, simulator)
    else:
        refuse_existing(path, force=force)
    with ExitStack() as stack:
        if cluster is not None:  # connected first: a cluster that cannot be reached touches no file
            from .cluster import chunks_on_cluster, connect

            status = ExecutorStatus(workers=0)
            client = stack.enter_context(connect(cluster, status))
            run_chunks = partial(chunks_on_cluster, client, simulator.spec, status=status, control=control)
        else:
            status = ExecutorStatus("this process" if workers == 1 else f"{workers} worker processes", workers=workers)
            run_chunks = partial(_chunks_made, simulator, workers=workers, control=control)
        return _fill_bank(simulator, path, n, seed, chunk_size, resume, force, run_chunks, status, observer,
                          snapshot_seconds)


def _fill_bank(simulator: LoadedSimulator, path: Path, n: int, seed: int, chunk_size: int, resume: bool, force: bool,
               run_chunks: Callable, status: ExecutorStatus, observer: Callable[[BankSnapshot], None] | None,
               snapshot_seconds: float) -> BankSummary:
    if resume:
        attrs = check_bank(path, simulator)
        n, seed, chunk_size = int(attrs["n"]), int(attrs["seed"]), int(attrs["chunk_size"])
    else:
        refuse_existing(path, force=force)
        _create(path, simulator, n, seed, chunk_size)
    with _open(path) as fh:
        params, done = fh["params"][()], fh["chunk_done"][()]
    todo = [(int(k), params[k * chunk_size:(k + 1) * chunk_size], chunk_seed(seed, k)) for k in np.flatnonzero(~done)]
    have = n - sum(len(item[1]) for item in todo)
    t0, last = time.perf_counter(), -1e9
    made = 0
    images = None
    for item in run_chunks(todo):
        if item is not None:
            chunk, images, noise = item
            _commit(path, chunk, chunk_size, images, noise)
            made += len(images)
        elapsed = time.perf_counter() - t0
        final = have + made == n
        if observer is not None and (final or time.perf_counter() - last >= snapshot_seconds):
            rate = made / elapsed if elapsed > 0 and made else 0.0
            observer(BankSnapshot("bank", have + made, n, elapsed, (n - have - made) / rate if rate else float("nan"),
                                  rate, np.zeros(0, np.int64), {}, final=final,
                                  latest=None if images is None else images[:8], executor=replace(status)))
            last = time.perf_counter()
    if status.failed:
        raise BankError(f"{status.failed} chunk(s) of {path} failed, {status.errors[0]}; the {have + made:,} images "
                        f"made are kept: fix the simulator and finish with --resume")
    return BankSummary(path, n, made, time.perf_counter() - t0, have + made < n, len(todo),
                       status.workers, executor=status)
