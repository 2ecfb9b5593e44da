"""Parameter validation and the physical <-> normalised map of ParameterSpace."""

from __future__ import annotations

import math

import pytest
import torch

from magan_gui.core.parameters import Parameter, ParameterSpace


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_parameter_refuses_empty_or_non_string_name(name):
    with pytest.raises(ValueError, match="non-empty name"):
        Parameter(name, 0.0, 1.0)


@pytest.mark.parametrize("low, high", [(1.0, 1.0), (2.0, 1.0), (0, -5)])
def test_parameter_refuses_low_not_below_high(low, high):
    with pytest.raises(ValueError, match="must be below high"):
        Parameter("a", low, high)


@pytest.mark.parametrize("low, high, label", [
    (float("nan"), 1.0, "low"), (0.0, float("nan"), "high"),
    (float("-inf"), 1.0, "low"), (0.0, float("inf"), "high"), ("0", 1.0, "low"),
])
def test_parameter_refuses_non_finite_bounds(low, high, label):
    with pytest.raises(ValueError, match=f"{label} must be a finite number"):
        Parameter("a", low, high)


def test_parameter_default_filled_to_midpoint():
    p = Parameter("x", -2.0, 6.0, unit="px")
    assert p.default == pytest.approx(2.0)
    assert p.label == "x [px]"
    assert Parameter("y", 0.0, 1.0).label == "y"


def test_parameter_keeps_given_default_and_refuses_nan_default():
    assert Parameter("x", 0.0, 10.0, default=3.0).default == 3.0
    with pytest.raises(ValueError, match="default must be a finite number"):
        Parameter("x", 0.0, 10.0, default=float("nan"))


def test_parameter_is_immutable():
    p = Parameter("x", 0.0, 1.0)
    with pytest.raises(AttributeError):
        p.low = -1.0  # type: ignore[misc]


@pytest.fixture()
def space():
    return ParameterSpace([Parameter("a", 0.5, 2.5), Parameter("b", -10.0, 30.0), Parameter("c", 6.0, 12.0)])


def test_space_names_defaults_and_length(space):
    assert len(space) == 3
    assert space.names == ["a", "b", "c"]
    torch.testing.assert_close(space.defaults, torch.tensor([1.5, 10.0, 9.0]))


def test_bounds_map_to_minus_one_and_plus_one(space):
    bounds = torch.stack([space.low, space.high])
    torch.testing.assert_close(space.to_normalised(bounds), torch.tensor([[-1.0] * 3, [1.0] * 3]))
    torch.testing.assert_close(space.to_physical(torch.tensor([[-1.0] * 3, [1.0] * 3])), bounds)
    # the midpoint maps to zero
    torch.testing.assert_close(space.to_normalised(space.defaults[None]), torch.zeros(1, 3))


def test_round_trip_physical_normalised(space):
    gen = torch.Generator().manual_seed(3)
    physical = space.low + torch.rand(200, 3, generator=gen) * (space.high - space.low)
    back = space.to_physical(space.to_normalised(physical))
    torch.testing.assert_close(back, physical, atol=1e-5, rtol=1e-5)
    normalised = torch.rand(200, 3, generator=gen) * 2 - 1
    torch.testing.assert_close(space.to_normalised(space.to_physical(normalised)), normalised, atol=1e-6, rtol=1e-5)


def test_sample_uniform_stays_within_bounds_and_fills_them(space):
    draws = space.sample_uniform(5000, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (5000, 3)
    assert bool((draws >= space.low).all()) and bool((draws <= space.high).all())
    # uniform over the box: the mean is near the midpoint, the range is nearly the full box
    width = space.high - space.low
    assert torch.allclose(draws.mean(0), (space.low + space.high) / 2, atol=0.05 * float(width.max()))
    assert bool(((draws.max(0).values - draws.min(0).values) > 0.98 * width).all())


def test_sample_uniform_reproducible_with_generator(space):
    a = space.sample_uniform(10, generator=torch.Generator().manual_seed(42))
    b = space.sample_uniform(10, generator=torch.Generator().manual_seed(42))
    c = space.sample_uniform(10, generator=torch.Generator().manual_seed(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_space_is_float32_and_finite(space):
    assert space.low.dtype == torch.float32
    assert all(math.isfinite(v) for v in space.high.tolist())
