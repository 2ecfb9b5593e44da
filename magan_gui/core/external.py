"""External programs as simulators: a TOML file declares the program and the engine runs it per batch.

A simulator written in any language (a Geant4 job, a Fortran code, a shell script) joins the engine
through a small TOML file (DESIGN.md, "External programs")::

    name = "beamspot"
    image_shape = [24, 40]          # height, width
    stochastic = true
    command = "{python} beamspot.py --params {params_file} --out {images_file} --seed {seed}"
    timeout = 60                    # seconds per call (default 600)
    params_format = "npy"           # "npy" (default) or "csv"
    images_format = "npy"           # "npy" (default) or "h5" (dataset "images")
    [[parameters]]
    name = "x"
    low = 8.0
    high = 32.0
    unit = "px"
    default = 20.0
    [example]                       # optional: a closure test's population
    mean = [20.0]
    std = [1.5]

For every batch the engine writes the parameters (N, P) in physical units to ``{params_file}``
(``.npy`` float64, or ``.csv`` with a header of the parameter names), runs the command in the TOML
file's folder and reads (N, H, W) images in [0, 1] back from ``{images_file}`` (``.npy`` or HDF5
with an ``images`` dataset).  The files live in a fresh temporary folder per call, ``{workdir}``.
The program draws its own random numbers from ``{seed}``, which comes from NumPy's global
generator: the bank seeds that generator per chunk, so a chunk gets the same images whichever
process runs it.  Other placeholders: ``{python}`` (this Python) and ``{n}`` (number of sets).
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import string
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from .parameters import Parameter
from .simulators import SimulatorError

PLACEHOLDERS = ("python", "params_file", "images_file", "seed", "n", "workdir")
KNOWN_KEYS = ("name", "image_shape", "stochastic", "command", "timeout", "params_format", "images_format",
              "parameters", "example")
REQUIRED_KEYS = ("image_shape", "stochastic", "command", "parameters")
PARAMETER_KEYS = ("name", "low", "high", "unit", "default")
EXAMPLE_KEYS = ("mean", "std")
PARAMS_FORMATS = ("npy", "csv")
IMAGES_FORMATS = ("npy", "h5")
DEFAULT_TIMEOUT = 600.0
STDERR_LINES, STDERR_CHARS = 3, 300  # how much of a failing program's stderr a message quotes


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _output_tail(stderr: bytes, stdout: bytes) -> str:
    """The last few lines the program printed (stderr, or stdout when stderr is empty), on one line."""
    for stream in (stderr, stdout):
        lines = [_one_line(line) for line in stream.decode("utf-8", "replace").splitlines()]
        lines = [line for line in lines if line]
        if lines:
            tail = " | ".join(lines[-STDERR_LINES:])
            where = "stderr" if stream is stderr else "stdout"
            if len(tail) > STDERR_CHARS:
                tail = "..." + tail[-(STDERR_CHARS - 3):]
            return f"{where}: {tail}"
    return "it printed nothing"


class ExternalProgram:
    """A simulator that runs an external program, declared by a TOML file (see the module's docstring).

    Attributes follow the simulator contract: ``name``, ``image_shape``, ``parameters``,
    ``stochastic`` and ``example_population`` (or None).  It has no ``sample_noise``: the program
    keeps its own random numbers.  Every problem raises SimulatorError with one line.

    Attributes
    ----------
    path : Path
        The TOML file; its folder is the command's working directory.
    command : list[str]
        The command template split into tokens, placeholders still in them.
    timeout : float
        Seconds one call may run before the program (its whole process group) is killed.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self._label = f"simulator file {str(self.path)!r}"
        table = self._read()
        name = table.get("name", self.path.stem)
        if not isinstance(name, str) or not name.strip():
            raise self._error(f"'name' must be a non-empty string, got {name!r}")
        self.name: str = name.strip()
        self._label = f"simulator {self.name!r} ({self.path.name})"
        unknown = sorted(set(table) - set(KNOWN_KEYS))
        if unknown:
            raise self._error(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                              f"(known keys: {', '.join(KNOWN_KEYS)})")
        missing = [key for key in REQUIRED_KEYS if key not in table]
        if missing:
            raise self._error(f"missing required key{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
        shape = table["image_shape"]
        if (not isinstance(shape, list) or len(shape) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
            raise self._error(f"'image_shape' must be [height, width], two positive integers, got {shape!r}")
        self.image_shape: tuple[int, int] = (shape[0], shape[1])
        if not isinstance(table["stochastic"], bool):
            raise self._error(f"'stochastic' must be true or false, got {table['stochastic']!r}")
        self.stochastic: bool = table["stochastic"]
        self.timeout = table.get("timeout", DEFAULT_TIMEOUT)
        if not _is_number(self.timeout) or self.timeout <= 0:
            raise self._error(f"'timeout' must be a positive number of seconds, got {self.timeout!r}")
        self.timeout = float(self.timeout)
        self.params_format = self._choice(table, "params_format", PARAMS_FORMATS)
        self.images_format = self._choice(table, "images_format", IMAGES_FORMATS)
        self.command = self._parse_command(table["command"])
        self.parameters: list[Parameter] = self._parse_parameters(table["parameters"])
        self.example_population = self._parse_example(table.get("example"))

    def __repr__(self) -> str:
        return f"ExternalProgram({str(self.path)!r})"

    # -- the TOML file --------------------------------------------------------------------------------
    def _error(self, message: str) -> SimulatorError:
        return SimulatorError(f"{self._label}: {message}")

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            raise SimulatorError(f"{self._label} does not exist")
        try:
            with open(self.path, "rb") as fh:
                return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise self._error(f"not valid TOML: {_one_line(exc)}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise self._error(f"could not be read: {_one_line(exc)}") from exc

    def _choice(self, table: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
        value = table.get(key, allowed[0])
        if value not in allowed:
            raise self._error(f"{key!r} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value

    def _parse_command(self, command: Any) -> list[str]:
        if not isinstance(command, str) or not command.strip():
            raise self._error(f"'command' must be a non-empty string, got {command!r}")
        try:
            tokens = shlex.split(command)
        except ValueError as exc:
            raise self._error(f"'command' cannot be split into words ({exc}): {command!r}") from exc
        used = set()
        for token in tokens:
            try:
                fields = [field for _, field, _, _ in string.Formatter().parse(token) if field is not None]
            except ValueError as exc:
                raise self._error(f"'command' has a bad placeholder in {token!r} ({exc}); "
                                  "write {{ and }} for literal braces") from exc
            for field in fields:
                if field not in PLACEHOLDERS:
                    raise self._error(f"'command' has an unknown placeholder {{{field}}} "
                                      f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
                used.add(field)
        for needed in ("params_file", "images_file"):
            if needed not in used and "workdir" not in used:
                raise self._error(f"'command' must pass {{{needed}}} (or {{workdir}}) to the program")
        return tokens

    def _parse_parameters(self, entries: Any) -> list[Parameter]:
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise self._error("'parameters' must be one or more [[parameters]] tables")
        parameters = []
        for i, entry in enumerate(entries, start=1):
            where = f"parameter {entry.get('name', i)!r}"
            unknown = sorted(set(entry) - set(PARAMETER_KEYS))
            if unknown:
                raise self._error(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                                  f"{', '.join(map(repr, unknown))} (known keys: {', '.join(PARAMETER_KEYS)})")
            missing = [key for key in ("name", "low", "high") if key not in entry]
            if missing:
                raise self._error(f"{where}: missing required key{'s' if len(missing) > 1 else ''} "
                                  f"{', '.join(map(repr, missing))}")
            name, unit = entry["name"], entry.get("unit", "")
            if not isinstance(name, str) or not name.strip():
                raise self._error(f"parameter {i}: 'name' must be a non-empty string, got {name!r}")
            if not isinstance(unit, str):
                raise self._error(f"{where}: 'unit' must be a string, got {unit!r}")
            for key in ("low", "high", "default"):
                if key in entry and not _is_number(entry[key]):
                    raise self._error(f"{where}: {key!r} must be a finite number, got {entry[key]!r}")
            low, high = float(entry["low"]), float(entry["high"])
            if not low < high:
                raise self._error(f"{where}: low ({low:g}) must be below high ({high:g})")
            default = float(entry["default"]) if "default" in entry else None
            if default is not None and not low <= default <= high:
                raise self._error(f"{where}: default {default:g} lies outside [{low:g}, {high:g}]")
            parameters.append(Parameter(name.strip(), low=low, high=high, unit=unit, default=default))
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            raise self._error(f"parameter names must be unique, got {names}")
        return parameters

    def _parse_example(self, example: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        if example is None:
            return None
        if not isinstance(example, dict):
            raise self._error("'example' must be a table with 'mean' and 'std'")
        unknown = sorted(set(example) - set(EXAMPLE_KEYS))
        if unknown:
            raise self._error(f"[example]: unknown key{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(map(repr, unknown))} (known keys: mean, std)")
        n = len(self.parameters)
        values = []
        for key in EXAMPLE_KEYS:
            row = example.get(key)
            if not isinstance(row, list) or len(row) != n or not all(_is_number(v) for v in row):
                raise self._error(f"[example]: {key!r} must be a list of {n} numbers (one per parameter), "
                                  f"got {row!r}")
            values.append(tuple(float(v) for v in row))
        if any(s < 0 for s in values[1]):
            raise self._error(f"[example]: 'std' must not be negative, got {list(values[1])}")
        return values[0], values[1]

    # -- running the program --------------------------------------------------------------------------
    def simulate(self, params) -> np.ndarray:
        """Run the program on parameters (N, P), physical units; return its images (N, H, W) as float32."""
        if hasattr(params, "detach"):
            params = params.detach().cpu().numpy()
        p = np.asarray(params, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != len(self.parameters):
            raise self._error(f"simulate() needs parameters of shape (N, {len(self.parameters)}), got {p.shape}")
        seed = int(np.random.randint(0, 2**31 - 1))
        with tempfile.TemporaryDirectory(prefix="magan-external-") as workdir:
            params_file = Path(workdir) / f"params.{self.params_format}"
            images_file = Path(workdir) / f"images.{self.images_format}"
            self._write_params(params_file, p)
            values = {"python": sys.executable, "params_file": str(params_file), "images_file": str(images_file),
                      "seed": str(seed), "n": str(len(p)), "workdir": workdir}
            argv = [token.format(**values) for token in self.command]
            self._run(argv)
            images = self._read_images(images_file)
        expected = (len(p), *self.image_shape)
        if images.shape != expected:
            raise self._error(f"the program wrote images of shape {images.shape}, expected {expected} (N, H, W)")
        return images

    def _write_params(self, path: Path, p: np.ndarray) -> None:
        if self.params_format == "npy":
            np.save(path, p)
        else:
            header = ",".join(parameter.name for parameter in self.parameters)
            np.savetxt(path, p, delimiter=",", header=header, comments="", fmt="%.17g")

    def _run(self, argv: list[str]) -> None:
        folder = self.path.resolve().parent
        program = argv[0] if argv else ""
        try:
            proc = subprocess.Popen(argv, cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except FileNotFoundError as exc:
            if "/" in program or os.sep in program:
                where = f"(looked up from folder {str(folder)!r}, the TOML file's folder)"
            else:
                where = (f"on PATH (the command runs in folder {str(folder)!r}; write ./{program} "
                         "for a program there)")
            raise self._error(f"program {program!r} not found {where}") from exc
        except PermissionError as exc:
            raise self._error(f"program {program!r} is not executable (run from folder {str(folder)!r})") from exc
        except OSError as exc:
            raise self._error(f"program {program!r} could not be started: {_one_line(exc)}") from exc
        try:
            stdout, stderr = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(proc)
            raise self._error(f"the program ran longer than {self.timeout:g} s and was stopped; "
                              f"raise 'timeout = ...' (seconds) in {self.path.name} if it needs longer") from exc
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C, a stopped run): leave nothing behind
                _kill_group(proc)
        if proc.returncode != 0:
            status = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
                      else f"exited with status {proc.returncode}")
            raise self._error(f"the program {status}; {_output_tail(stderr, stdout)}")

    def _read_images(self, path: Path) -> np.ndarray:
        if not path.is_file():
            raise self._error(f"the program wrote no images file {path.name} (pass it {{images_file}} and write "
                              f"{self.images_format} there)")
        try:
            if self.images_format == "npy":
                array = np.load(path, allow_pickle=False)
            else:
                import h5py

                with h5py.File(path, "r") as fh:
                    if "images" not in fh:
                        raise ValueError(f"no dataset 'images' (found {', '.join(fh) or 'nothing'})")
                    array = fh["images"][()]
            return np.asarray(array, dtype=np.float32)
        except Exception as exc:  # a broken file can fail in any way
            raise self._error(f"could not read the images file {path.name} the program wrote: "
                              f"{type(exc).__name__}: {_one_line(exc)}") from exc


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the program and everything it started (its process group), and reap it."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows has no process groups of this kind
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        pass
