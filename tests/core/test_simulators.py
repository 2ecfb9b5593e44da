"""Built-in simulators, the lines drawing convention, and plugin loading with its refusals."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from magan_gui.core.parameters import ParameterSpace
from magan_gui.core.simulators import (
    CirclesSimulator,
    LinesSimulator,
    LoadedSimulator,
    NoiseSharingSimulator,
    Simulator,
    SimulatorError,
    load_simulator,
)
from tests.conftest import BLOB_PLUGIN, LINES_MEAN, LINES_STD


def test_public_imports():
    from magan_gui import Parameter
    from magan_gui import SimulatorError as TopLevelError
    from magan_gui import load_simulator as top_level_load

    assert Parameter.__name__ == "Parameter"
    assert TopLevelError is SimulatorError
    assert top_level_load is load_simulator


@pytest.mark.parametrize("name, n_params", [("lines", 4), ("circles", 5)])
def test_builtin_images_shape_dtype_range(name, n_params):
    sim = load_simulator(name)
    assert sim.name == name and sim.image_shape == (28, 28) and len(sim.parameters) == n_params
    space = ParameterSpace(sim.parameters)
    params = space.sample_uniform(64, generator=torch.Generator().manual_seed(0))
    images = sim.simulate(params)
    assert images.shape == (64, 28, 28)
    assert images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    # something is drawn in every image
    assert bool((images.flatten(1).max(1).values > 0.5).all())


def test_load_simulator_strips_spaces():
    assert isinstance(load_simulator("  lines ").plugin, LinesSimulator)


def _column_centroid(image: torch.Tensor) -> float:
    profile = image.sum(0)
    return float((profile * torch.arange(image.shape[1])).sum() / profile.sum())


def test_lines_image_moves_with_x0():
    sim = LinesSimulator()
    base = torch.tensor([[1.0, 8.0, 0.5, 8.0]])
    moved = base.clone()
    moved[0, 1] += 4.0
    a, b = sim.simulate(base)[0], sim.simulate(moved)[0]
    # the brightest column and the column centroid both shift right by about 4 px
    shift_argmax = int(a.sum(0).argmax()) - int(b.sum(0).argmax())
    assert shift_argmax == -4
    assert _column_centroid(b) - _column_centroid(a) == pytest.approx(4.0, abs=0.3)
    # the leftmost lit column starts at x0
    lit_a = torch.nonzero(a.max(0).values > 0.5).flatten()
    lit_b = torch.nonzero(b.max(0).values > 0.5).flatten()
    assert int(lit_a.min()) == 8 and int(lit_b.min()) == 12


def test_lines_segment_endpoints_follow_the_drawing_convention():
    sim = LinesSimulator()
    m, x0, c, steps = LINES_MEAN
    image = sim.simulate(torch.tensor([LINES_MEAN]))[0]
    h = sim.image_shape[0]
    x_end, y_end = x0 + steps, c + m * steps  # (19, 14): y grows upward from the bottom row
    assert float(image[h - 1 - round(y_end), round(x_end)]) > 0.9
    # the start (x0, c) lies on the bottom rows
    assert float(image[h - 1, round(x0)]) > 0.6
    # nothing is drawn beyond the end of the segment
    assert float(image[:, round(x_end) + 2:].max()) < 0.01
    assert float(image[: h - 1 - round(y_end) - 2].max()) < 0.01


def test_lines_paper_population_stays_in_frame_pure_parameters():
    gen = np.random.default_rng(0)
    p = gen.normal(LINES_MEAN, LINES_STD, size=(10000, 4))
    m, x0, c, steps = p.T
    y_end = c + m * steps
    x_end = x0 + steps
    assert np.mean(y_end < 27) > 0.99
    assert np.mean(x_end < 27) > 0.99
    assert np.mean((x0 >= 0) & (c >= -0.5)) > 0.99


def test_lines_mean_image_brightest_pixels_inside_frame():
    sim = LinesSimulator()
    image = sim.simulate(torch.tensor([LINES_MEAN]))[0].numpy()
    rows, cols = np.nonzero(image > 0.5)
    # the bright stroke spans from the bottom rows up to the middle, well away from the top and sides
    assert rows.min() >= 10 and cols.min() >= 8 and cols.max() <= 21
    total = image.sum()
    # the stroke is not clipped by the frame: brightness of a length-L line with Gaussian width 0.6
    length = np.hypot(LINES_MEAN[3], LINES_MEAN[0] * LINES_MEAN[3])
    assert total > 0.8 * np.sqrt(2 * np.pi) * 0.6 * length
    # its brightness centre lies in the inner part of the frame
    yy, xx = np.mgrid[0:28, 0:28]
    assert 8 < (image * xx).sum() / total < 20 and 8 < (image * yy).sum() / total < 24


def test_circles_is_deterministic_given_shared_noise():
    sim = CirclesSimulator()
    assert load_simulator("circles").shares_noise and not load_simulator("lines").shares_noise
    params = torch.tensor([[18.0, 18.0, 8.0, 0.15, 0.9]] * 3)
    noise = sim.sample_noise(3, generator=torch.Generator().manual_seed(1))
    assert noise.shape == (3, 28, 28)
    a = sim.simulate(params, noise=noise)
    b = sim.simulate(params, noise=noise.clone())
    assert torch.equal(a, b)
    other = sim.sample_noise(3, generator=torch.Generator().manual_seed(2))
    c = sim.simulate(params, noise=other)
    assert not torch.allclose(a, c)
    # same noise + different parameters -> different image; zero noise amplitude -> noise has no effect
    quiet = params.clone()
    quiet[:, 3] = 0.0
    assert torch.equal(sim.simulate(quiet, noise=noise), sim.simulate(quiet, noise=other))


def test_circles_fresh_noise_without_shared_noise():
    sim = CirclesSimulator()
    params = torch.tensor([[18.0, 18.0, 8.0, 0.3, 0.9]])
    assert not torch.equal(sim.simulate(params), sim.simulate(params))


def test_loaded_simulator_returns_float32_for_float64_parameters():
    sim = load_simulator("lines")
    out = sim.simulate(torch.tensor([[1.0, 8.0, 0.5, 8.0]], dtype=torch.float64))
    assert out.dtype == torch.float32 and out.shape == (1, 28, 28)


# -- plugins ----------------------------------------------------------------------------------------------
def test_the_shower_plugin_is_a_black_box_with_counting_noise():
    sim = load_simulator(f"{BLOB_PLUGIN.parent / 'shower_plugin.py'}:Shower")
    assert sim.image_shape == (20, 48) and sim.stochastic and not sim.shares_noise
    params = torch.tensor([[2500.0, 18.0, 2.2]] * 2000)
    a, b = sim.simulate(params), sim.simulate(params)
    assert a.shape == (2000, 20, 48) and 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert not torch.equal(a, b)   # its own generator draws anew on every call
    # Poisson counts: in a pixel the variance of the count equals its mean (no clipping here)
    counts = a * 40.0
    mean, var = counts.mean(0), counts.var(0)
    bright = mean > 5
    assert torch.allclose(var[bright], mean[bright], rtol=0.2)
    expected = torch.from_numpy(sim.plugin.mean_counts(params[:1].double().numpy())[0]).float()
    assert torch.allclose(mean, expected, atol=0.6)


def test_blob_plugin_loads_and_returns_numpy():
    sim = load_simulator(f"{BLOB_PLUGIN}:Blob")
    assert sim.name == "blob"
    assert sim.image_shape == (32, 32)
    assert [p.name for p in sim.parameters] == ["x0", "y0", "sigma", "amp"]
    assert sim.stochastic is False
    params = torch.tensor([[16.0, 10.0, 2.0, 0.8], [9.0, 20.0, 1.5, 1.0]])
    raw = sim.plugin.simulate(params)
    assert isinstance(raw, np.ndarray)
    images = sim.simulate(params)
    assert isinstance(images, torch.Tensor) and images.dtype == torch.float32
    assert images.shape == (2, 32, 32)
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    # the spot sits at (x0, y0) with its peak brightness amp
    assert np.unravel_index(int(images[0].argmax()), (32, 32)) == (10, 16)
    assert float(images[0].max()) == pytest.approx(0.8, abs=1e-5)


PLUGIN_HEADER = """
import numpy as np
import torch
from magan_gui import Parameter
"""

GOOD_CLASS = """
class Sim:
    name = "tiny"
    image_shape = (16, 16)
    parameters = [Parameter("a", 0.0, 1.0)]
    stochastic = False

    def simulate(self, params):
        return {body}
"""


def _plugin(tmp_path, source: str, name: str = "plugin.py"):
    path = tmp_path / name
    path.write_text(PLUGIN_HEADER + textwrap.dedent(source))
    return path


def test_good_tmp_plugin_loads(tmp_path):
    path = _plugin(tmp_path, GOOD_CLASS.format(body="torch.zeros(params.shape[0], 16, 16)"))
    sim = load_simulator(f"{path}:Sim")
    assert sim.image_shape == (16, 16)


def test_plugin_without_name_gets_spec_as_name(tmp_path):
    source = GOOD_CLASS.format(body="torch.zeros(params.shape[0], 16, 16)").replace('    name = "tiny"\n', "")
    path = _plugin(tmp_path, source)
    sim = load_simulator(f"{path}:Sim")
    assert sim.name == f"{path}:Sim"


def test_plugin_file_missing(tmp_path):
    with pytest.raises(SimulatorError, match="does not exist"):
        load_simulator(f"{tmp_path / 'nope.py'}:Sim")


def test_plugin_class_missing(tmp_path):
    path = _plugin(tmp_path, GOOD_CLASS.format(body="torch.zeros(params.shape[0], 16, 16)"))
    with pytest.raises(SimulatorError, match="defines no 'Other'"):
        load_simulator(f"{path}:Other")


def test_plugin_import_error(tmp_path):
    path = _plugin(tmp_path, "import no_such_module_for_magan_tests\n")
    with pytest.raises(SimulatorError, match="could not be imported: ModuleNotFoundError"):
        load_simulator(f"{path}:Sim")


def test_plugin_syntax_error(tmp_path):
    path = _plugin(tmp_path, "def broken(:\n    pass\n")
    with pytest.raises(SimulatorError, match="could not be imported: SyntaxError"):
        load_simulator(f"{path}:Sim")


def test_plugin_missing_parameters(tmp_path):
    source = GOOD_CLASS.format(body="torch.zeros(params.shape[0], 16, 16)").replace(
        '    parameters = [Parameter("a", 0.0, 1.0)]\n', "")
    path = _plugin(tmp_path, source)
    with pytest.raises(SimulatorError, match="no attribute 'parameters'"):
        load_simulator(f"{path}:Sim")


def test_plugin_parameters_not_parameter_objects(tmp_path):
    source = GOOD_CLASS.format(body="torch.zeros(params.shape[0], 16, 16)").replace(
        'parameters = [Parameter("a", 0.0, 1.0)]', 'parameters = [("a", 0.0, 1.0)]')
    path = _plugin(tmp_path, source)
    with pytest.raises(SimulatorError, match="parameters must be a non-empty list"):
        load_simulator(f"{path}:Sim")


def test_plugin_duplicate_parameter_names(tmp_path):
    source = GOOD_CLASS.format(body="torch.zeros(params.shape[0], 16, 16)").replace(
        'parameters = [Parameter("a", 0.0, 1.0)]', 'parameters = [Parameter("a", 0.0, 1.0), Parameter("a", 1, 2)]')
    path = _plugin(tmp_path, source)
    with pytest.raises(SimulatorError, match="must be unique"):
        load_simulator(f"{path}:Sim")


def test_plugin_bad_image_shape(tmp_path):
    source = GOOD_CLASS.format(body="torch.zeros(params.shape[0], 16, 16)").replace(
        "image_shape = (16, 16)", "image_shape = (16,)")
    path = _plugin(tmp_path, source)
    with pytest.raises(SimulatorError, match="image_shape must be"):
        load_simulator(f"{path}:Sim")


@pytest.mark.parametrize("body, message", [
    ("torch.zeros(params.shape[0], 16, 15)", r"returned shape \(4, 16, 15\), expected \(4, 16, 16\)"),
    ("torch.zeros(16, 16)", r"returned shape \(16, 16\)"),
    ("torch.full((params.shape[0], 16, 16), float('nan'))", "NaN or infinite"),
    ("np.full((params.shape[0], 16, 16), 2.0)", r"expected values in \[0, 1\]"),
    ("-torch.ones(params.shape[0], 16, 16)", r"expected values in \[0, 1\]"),
    ("[[0.0]]", "returned list, expected a torch.Tensor or NumPy array"),
])
def test_plugin_bad_output(tmp_path, body, message):
    path = _plugin(tmp_path, GOOD_CLASS.format(body=body))
    with pytest.raises(SimulatorError, match=message):
        load_simulator(f"{path}:Sim")


def test_plugin_exception_inside_simulate(tmp_path):
    path = _plugin(tmp_path, GOOD_CLASS.format(body="1 / 0"))
    with pytest.raises(SimulatorError, match=r"raised ZeroDivisionError in simulate\(\)"):
        load_simulator(f"{path}:Sim")


def test_plugin_constructor_raises(tmp_path):
    source = GOOD_CLASS.format(body="torch.zeros(params.shape[0], 16, 16)") + textwrap.dedent("""
        def __init__(self):
            raise RuntimeError("no licence")
    """).replace("\n", "\n    ")
    path = _plugin(tmp_path, source)
    with pytest.raises(SimulatorError, match="could not be created: RuntimeError: no licence"):
        load_simulator(f"{path}:Sim")


@pytest.mark.parametrize("spec", ["nosuchthing", "plugin.py:", ":Sim", "", "   "])
def test_bad_spec_strings(spec):
    with pytest.raises(SimulatorError):
        load_simulator(spec)


def test_unknown_builtin_names_the_choices():
    with pytest.raises(SimulatorError, match="unknown simulator 'nosuchthing'.*lines, circles"):
        load_simulator("nosuchthing")


def test_simulator_error_is_a_value_error():
    assert issubclass(SimulatorError, ValueError)


def test_loading_never_modifies_the_plugin(tmp_path):
    source = GOOD_CLASS.format(body="np.zeros((params.shape[0], 16, 16), dtype=np.float64)").replace(
        '    name = "tiny"\n', "").replace("    stochastic = False\n", "").replace(
        "image_shape = (16, 16)", "image_shape = [16, 16]")
    path = _plugin(tmp_path, source)
    sim = load_simulator(f"{path}:Sim")
    plugin = sim.plugin
    # the adapter answers what the plugin left out, without writing it onto the plugin
    assert sim.name == f"{path}:Sim" and sim.stochastic is False and sim.image_shape == (16, 16)
    assert not hasattr(plugin, "name") and not hasattr(plugin, "stochastic") and plugin.image_shape == [16, 16]
    images = sim.simulate(torch.zeros(3, 1))
    assert isinstance(images, torch.Tensor) and images.dtype == torch.float32 and images.shape == (3, 16, 16)


def test_the_contract_is_declared_as_protocols():
    assert isinstance(LinesSimulator(), Simulator) and not isinstance(LinesSimulator(), NoiseSharingSimulator)
    assert isinstance(CirclesSimulator(), NoiseSharingSimulator)
    assert isinstance(load_simulator("lines"), LoadedSimulator)
    # a deterministic simulator shares no noise; a noise-sharing one hands out its draws
    assert load_simulator("lines").sample_noise(2) is None
    assert load_simulator("circles").sample_noise(2, generator=torch.Generator().manual_seed(0)).shape == (2, 28, 28)


def test_a_spec_can_give_parameters_other_ranges():
    narrowed = load_simulator("lines@m=1.0:2.0, c=0.2:0.8")
    base = load_simulator("lines")
    assert narrowed.spec == "lines@m=1.0:2.0, c=0.2:0.8" and narrowed.name == base.name
    ranges = {p.name: (p.low, p.high) for p in narrowed.parameters}
    assert ranges["m"] == (1.0, 2.0) and ranges["c"] == (0.2, 0.8)
    assert ranges["x0"] == (base.parameters[1].low, base.parameters[1].high)   # the others as they were
    params = narrowed.space.to_physical(torch.zeros(1, 4))
    assert params[0, 0].item() == pytest.approx(1.5)   # the middle of the new box
    # the same images as the simulator itself at the same physical parameters
    assert torch.equal(narrowed.simulate(params), base.simulate(params))
    assert load_simulator("blackbox:circles@b=0.6:0.9").parameters[4].high == 0.9


@pytest.mark.parametrize("spec, message", [
    ("lines@m=2", "write name=low:high"),
    ("lines@m=a:b", "write name=low:high"),
    ("lines@q=0:1", "has no parameter 'q'"),
    ("lines@m=2:1", "low .2.0. must be below high"),
])
def test_bad_parameter_ranges_are_refused_in_one_line(spec, message):
    with pytest.raises(SimulatorError, match=message):
        load_simulator(spec)
