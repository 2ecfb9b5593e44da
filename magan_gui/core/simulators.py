"""Simulators: the plugin contract, the paper's two case studies as built-ins, and loading.

The contract is declared as two protocols: ``Simulator`` (``name``, ``image_shape``,
``parameters``, ``stochastic`` and ``simulate(params)``; README, "Simulator plugins") and
``NoiseSharingSimulator``, a stochastic simulator that also offers its random numbers:
``sample_noise(n, generator, device)`` returns its draws and ``simulate(params, noise=...)`` uses
them.  The engine then feeds the same draws to the emulator, which turns the stochastic map into
a deterministic one it can learn by regression.

``load_simulator`` checks a user's object once and wraps it in a ``LoadedSimulator``: the one
place that knows how to call it (with shared noise or not) and turns what it returns into float32
images on the training device.  The user's object is never modified.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from .errors import MaganError
from .parameters import Parameter, ParameterSpace

# Width (Gaussian sigma, in pixels) of the drawn line and ring: sub-pixel positions stay visible.
_STROKE_SIGMA = 0.6


class SimulatorError(MaganError, ValueError):
    """A simulator could not be loaded or broke its contract; the message is one sentence for the user."""


def _pixel_grid(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates: x grows to the right, y grows upwards from the bottom row."""
    xs = torch.arange(width, dtype=torch.float32, device=device)
    ys = torch.arange(height - 1, -1, -1, dtype=torch.float32, device=device)
    return xs.view(1, 1, width), ys.view(1, height, 1)


@runtime_checkable
class Simulator(Protocol):
    """What a simulator plugin provides (README, "Simulator plugins").

    ``simulate`` takes float32 parameters (N, P) in physical units, in the column order of
    ``parameters``, and returns (N, H, W) images in [0, 1] as a torch.Tensor or NumPy array.
    ``name`` and ``stochastic`` may be left out: the spec names the simulator, and it is taken
    as deterministic.
    """

    image_shape: tuple[int, int]
    parameters: Sequence[Parameter]

    def simulate(self, params: torch.Tensor) -> torch.Tensor | np.ndarray:
        """Images (N, H, W) in [0, 1] for parameters (N, P)."""
        ...


@runtime_checkable
class NoiseSharingSimulator(Simulator, Protocol):
    """A stochastic simulator that lets the engine draw its random numbers (common random numbers)."""

    stochastic: bool

    def sample_noise(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
        """The random draws of n images, as ``simulate(params, noise=...)`` takes them."""
        ...

    def simulate(self, params: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor | np.ndarray:
        """Images for parameters (N, P); the given draws, or fresh ones when ``noise`` is None."""
        ...


class LinesSimulator:
    """Case study 1 of the paper: a straight line segment, p = (m, x0, c, x_steps).

    Drawing convention: the segment runs from (x0, c) to (x0 + x_steps, c + m * x_steps),
    i.e. y = m * (x - x0) + c for x0 <= x <= x0 + x_steps, with pixel coordinates (x to the
    right, y up from the bottom row).  The paper writes y = m x + c, which puts 43% of its true
    population partly outside the 28x28 frame and makes x_steps unidentifiable; measuring the
    offset c at the segment's start keeps the whole population in the frame.
    """

    name = "lines"
    image_shape = (28, 28)
    parameters = [
        Parameter("m", low=0.5, high=2.5, unit="", default=1.0),
        Parameter("x0", low=6.0, high=14.0, unit="px", default=9.0),
        Parameter("c", low=0.0, high=1.0, unit="px", default=0.3),
        Parameter("x_steps", low=6.0, high=12.0, unit="px", default=8.0),
    ]
    stochastic = False
    # the paper's closure-test population (Table I): per-parameter means, then stds
    example_population = ((1.5, 10.0, 0.5, 9.0), (0.3, 0.5, 0.1, 0.5))

    def simulate(self, params: torch.Tensor) -> torch.Tensor:
        """Draw (N, 28, 28) images in [0, 1] from (N, 4) parameters, vectorised on params' device."""
        params = torch.as_tensor(params, dtype=torch.float32)
        h, w = self.image_shape
        px, py = _pixel_grid(h, w, params.device)
        m, x0, c, steps = (params[:, i].view(-1, 1, 1) for i in range(4))
        dx, dy = steps, m * steps
        length2 = (dx * dx + dy * dy).clamp_min(1e-6)
        t = (((px - x0) * dx + (py - c) * dy) / length2).clamp(0.0, 1.0)
        dist2 = (px - x0 - t * dx) ** 2 + (py - c - t * dy) ** 2
        return torch.exp(-0.5 * dist2 / _STROKE_SIGMA**2)


class CirclesSimulator:
    """Case study 2 of the paper: a ring with white noise, p = (x0, y0, r, n, b).

    image = clip(b * ring(x0, y0, r) + n * u, 0, 1) with u uniform in [0, 1) per pixel; n and b
    are fractions of the maximum brightness.  The draws u are the simulator's random numbers,
    available through ``sample_noise`` so the engine can share them with the emulator.
    """

    name = "circles"
    image_shape = (28, 28)
    parameters = [
        Parameter("x0", low=14.0, high=22.0, unit="px", default=17.0),
        Parameter("y0", low=14.0, high=22.0, unit="px", default=17.0),
        Parameter("r", low=5.0, high=11.0, unit="px", default=7.5),
        Parameter("n", low=0.0, high=0.4, unit="", default=0.1),
        Parameter("b", low=0.5, high=1.2, unit="", default=0.8),
    ]
    stochastic = True
    # the paper's closure-test population (Table II): per-parameter means, then stds
    example_population = ((18.0, 18.0, 8.0, 0.15, 0.9), (0.8, 0.8, 0.5, 0.05, 0.05))

    def sample_noise(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
        """The simulator's random draws for n images: (n, H, W) uniform in [0, 1)."""
        return torch.rand(n, *self.image_shape, generator=generator, device=device)

    def simulate(self, params: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Draw (N, 28, 28) images in [0, 1]; fresh noise unless ``noise`` is given."""
        params = torch.as_tensor(params, dtype=torch.float32)
        if noise is None:
            noise = self.sample_noise(params.shape[0], device=params.device)
        h, w = self.image_shape
        px, py = _pixel_grid(h, w, params.device)
        x0, y0, r, n, b = (params[:, i].view(-1, 1, 1) for i in range(5))
        radial = torch.sqrt((px - x0) ** 2 + (py - y0) ** 2)
        ring = torch.exp(-0.5 * (radial - r) ** 2 / _STROKE_SIGMA**2)
        return (b * ring + n * noise).clamp(0.0, 1.0)


BUILTIN_SIMULATORS: dict[str, type] = {"lines": LinesSimulator, "circles": CirclesSimulator}
BLACK_BOX_PREFIX = "blackbox:"  # "blackbox:SPEC" hides a simulator's shared noise
RANGES_MARK = "@"  # "SPEC@name=low:high,..." gives parameters other ranges than the simulator's own


class BlackBox:
    """A simulator with its shared noise hidden: it draws its own random numbers on every call, as a
    black-box Monte Carlo program does.  ``blackbox:circles`` runs the paper's case study 2 that way."""

    def __init__(self, plugin: Simulator):
        self.plugin = plugin
        self.name = getattr(plugin, "name", None)
        self.image_shape = plugin.image_shape
        self.parameters = plugin.parameters
        self.stochastic = bool(getattr(plugin, "stochastic", False))
        self.example_population = getattr(plugin, "example_population", None)

    def simulate(self, params: torch.Tensor) -> torch.Tensor | np.ndarray:
        """Images for parameters (N, P), with fresh random numbers drawn by the simulator itself."""
        return self.plugin.simulate(params)


class LoadedSimulator:
    """A checked simulator, as the engine uses it: the user's object behind one calling convention.

    Everything the engine asks of a simulator is answered here once: its name, shape and
    parameters, whether it is stochastic and whether it shares its random numbers; ``simulate``
    always returns float32 (N, H, W) tensors on the parameters' device and turns a plugin's
    exception into a SimulatorError.  The wrapped object is ``plugin``, never modified.

    Attributes
    ----------
    plugin : object
        The user's simulator (or a built-in, or a TrainedEmulator acting as one).
    spec : str
        How it was named: a built-in name or ``path/to/file.py:ClassName``.
    name : str
        Its ``name`` attribute, or the spec when it has none.
    shares_noise : bool
        True when it is stochastic and offers ``sample_noise``: the engine supplies its draws.
    example_population : tuple or None
        (means, stds) of a built-in's example closure test (the paper's population).
    """

    def __init__(self, plugin: Simulator, spec: str):
        self.plugin, self.spec = plugin, spec
        name = getattr(plugin, "name", None)
        self.name: str = name if isinstance(name, str) and name else spec
        shape = plugin.image_shape
        self.image_shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.parameters: list[Parameter] = list(plugin.parameters)
        self.space = ParameterSpace(self.parameters)
        self.stochastic = bool(getattr(plugin, "stochastic", False))
        self.shares_noise = self.stochastic and callable(getattr(plugin, "sample_noise", None))
        self.example_population = getattr(plugin, "example_population", None)
        self.images_made = 0  # simulator images made through this object: what a run consumed

    def __repr__(self) -> str:
        return f"LoadedSimulator({self.spec!r})"

    def sample_noise(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor | None:
        """The simulator's random draws for n images, or None when it does not share them."""
        if not self.shares_noise:
            return None
        return self.plugin.sample_noise(n, generator=generator, device=device)

    def simulate(self, params: torch.Tensor, noise: torch.Tensor | None = None, check: bool = False) -> torch.Tensor:
        """Float32 (N, H, W) images on params' device; ``check`` also verifies shape and range."""
        self.images_made += len(params)
        try:
            out = self.plugin.simulate(params, noise=noise) if noise is not None else self.plugin.simulate(params)
        except SimulatorError:
            raise
        except Exception as exc:  # a plugin may raise anything; the user needs one sentence
            raise SimulatorError(f"simulator {self.name!r} raised {type(exc).__name__} in simulate(): {exc}") from exc
        if isinstance(out, np.ndarray):
            out = torch.from_numpy(np.ascontiguousarray(out))
        if not isinstance(out, torch.Tensor):
            raise SimulatorError(f"simulator {self.name!r}: simulate() returned {type(out).__name__}, "
                                 "expected a torch.Tensor or NumPy array")
        device = params.device if isinstance(params, torch.Tensor) else torch.device("cpu")
        out = out.to(device=device, dtype=torch.float32)
        if check:
            self.check_output(params, out)
        return out

    def check_output(self, params: torch.Tensor, images: torch.Tensor) -> None:
        """Raise SimulatorError if a batch breaks the contract: shape, NaN, or pixels outside [0, 1]."""
        expected = (params.shape[0], *self.image_shape)
        if tuple(images.shape) != expected:
            raise SimulatorError(f"simulator {self.name!r}: simulate() returned shape {tuple(images.shape)}, "
                                 f"expected {expected} (N, height, width)")
        if not torch.isfinite(images).all():
            bad = int((~torch.isfinite(images)).sum())
            raise SimulatorError(f"simulator {self.name!r}: simulate() returned {bad} NaN or infinite "
                                 f"pixel{'' if bad == 1 else 's'}")
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise SimulatorError(f"simulator {self.name!r}: simulate() returned pixels in [{lo:.3g}, {hi:.3g}], "
                                 "expected values in [0, 1]")


def check_simulator(plugin: object, label: str) -> LoadedSimulator:
    """Check a simulator's attributes and one small batch; return it wrapped, or raise SimulatorError."""
    for attr in ("image_shape", "parameters", "simulate"):
        if not hasattr(plugin, attr):
            raise SimulatorError(f"simulator {label!r} has no attribute {attr!r} "
                                 "(see the plugin contract in the README)")
    if not callable(plugin.simulate):
        raise SimulatorError(f"simulator {label!r}: simulate must be a method")
    shape = plugin.image_shape
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or not all(isinstance(v, int) and v >= 8 for v in shape)):
        raise SimulatorError(f"simulator {label!r}: image_shape must be (height, width) integers >= 8, got {shape!r}")
    params = plugin.parameters
    if not isinstance(params, (list, tuple)) or not params or not all(isinstance(p, Parameter) for p in params):
        raise SimulatorError(f"simulator {label!r}: parameters must be a non-empty list of magan_gui.Parameter")
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise SimulatorError(f"simulator {label!r}: parameter names must be unique, got {names}")
    simulator = LoadedSimulator(plugin, label)
    probe = simulator.space.sample_uniform(4, generator=torch.Generator().manual_seed(0))
    probe[0] = simulator.space.defaults
    simulator.simulate(probe, check=True)
    return simulator


def load_simulator(spec: str) -> LoadedSimulator:
    """Load and check a simulator from a built-in name, ``path/to/file.py:ClassName`` or ``path/to/sim.toml``.

    Raises SimulatorError with one sentence naming the plugin for every way it can be wrong.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SimulatorError("no simulator given: use a built-in name (lines, circles), path/to/file.py:ClassName "
                             "or path/to/sim.toml")
    spec = spec.strip()
    base, ranges = split_ranges(spec)
    if ranges:
        return with_ranges(load_simulator(base), ranges, spec)
    if spec.startswith(BLACK_BOX_PREFIX):
        inner = load_simulator(spec[len(BLACK_BOX_PREFIX):])
        return check_simulator(BlackBox(inner.plugin), spec)
    if spec in BUILTIN_SIMULATORS:
        return check_simulator(BUILTIN_SIMULATORS[spec](), spec)
    if spec.lower().endswith(".toml"):  # an external program (core/external.py imports this module)
        from .external import ExternalProgram

        return check_simulator(ExternalProgram(spec), spec)
    path_text, sep, class_name = spec.rpartition(":")
    if not sep or not path_text or not class_name:
        raise SimulatorError(f"unknown simulator {spec!r}: use one of {', '.join(BUILTIN_SIMULATORS)}, "
                             "path/to/file.py:ClassName or path/to/sim.toml")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise SimulatorError(f"simulator file {str(path)!r} does not exist")
    module_name = f"magan_plugin_{abs(hash(str(path.resolve())))}"
    try:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError("not a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file may fail in any way
        sys.modules.pop(module_name, None)
        raise SimulatorError(f"simulator file {str(path)!r} could not be imported: "
                             f"{type(exc).__name__}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise SimulatorError(f"simulator file {str(path)!r} defines no {class_name!r}")
    try:
        plugin = cls() if inspect.isclass(cls) else cls
    except Exception as exc:
        raise SimulatorError(f"simulator {spec!r} could not be created: {type(exc).__name__}: {exc}") from exc
    return check_simulator(plugin, spec)


def split_ranges(spec: str) -> tuple[str, dict[str, tuple[float, float]]]:
    """A spec's simulator part and the parameter ranges it asks for: ``lines@m=0.5:2.5,c=0:1`` gives
    ``("lines", {"m": (0.5, 2.5), "c": (0.0, 1.0)})``; a spec without them gives ``(spec, {})``."""
    base, mark, tail = spec.rpartition(RANGES_MARK)
    if not mark or not base or "=" not in tail or "/" in tail:  # an '@' in a file path is no ranges
        return spec, {}
    ranges: dict[str, tuple[float, float]] = {}
    for item in tail.split(","):
        name, _, bounds = item.partition("=")
        low, colon, high = bounds.partition(":")
        try:
            if not name.strip() or not colon:
                raise ValueError
            ranges[name.strip()] = (float(low), float(high))
        except ValueError:
            raise SimulatorError(f"parameter range {item.strip()!r} in {spec!r}: write name=low:high, "
                                 "e.g. lines@m=0.5:2.5") from None
    return base, ranges


def with_ranges(simulator: LoadedSimulator, ranges: dict[str, tuple[float, float]], spec: str) -> LoadedSimulator:
    """``simulator`` with other parameter ranges, named ``spec``; checked at the new box's corners.

    A default outside a new range is moved to the range's middle.  The plugin itself is shared, so
    it sees physical values as before, only from another box.
    """
    names = [p.name for p in simulator.parameters]
    unknown = [n for n in ranges if n not in names]
    if unknown:
        raise SimulatorError(f"{spec!r}: simulator {simulator.name!r} has no parameter {unknown[0]!r} "
                             f"(it has {', '.join(names)})")
    parameters = []
    for p in simulator.parameters:
        low, high = ranges.get(p.name, (p.low, p.high))
        default = p.default if low <= p.default <= high else None
        try:
            parameters.append(Parameter(p.name, low, high, p.unit, default))
        except ValueError as exc:
            raise SimulatorError(f"{spec!r}: {exc}") from None
    changed = LoadedSimulator(simulator.plugin, spec)
    changed.name = simulator.name
    changed.parameters, changed.space = parameters, ParameterSpace(parameters)
    corners = torch.stack([changed.space.low, changed.space.high, changed.space.defaults])
    changed.simulate(corners, check=True)  # the plugin must cope with the new box's edges
    return changed
