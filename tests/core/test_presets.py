"""Presets and the example plugin as package data: found through the package, valid for both case studies."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from magan_gui import load_simulator
from magan_gui.core.calibration import CalibrationConfig
from magan_gui.core.presets import PresetError, apply_preset, load_preset, preset_names
from magan_gui.core.pretraining import PretrainConfig
from magan_gui.examples import example_plugin_path, example_plugin_source

SHIPPED = ("quick", "full", "paper")


def test_shipped_presets_are_listed():
    names = preset_names()
    assert set(SHIPPED) <= set(names)
    assert names == sorted(names)
    assert "__init__" not in names


@pytest.mark.parametrize("simulator", ["lines", "circles"])
@pytest.mark.parametrize("name", SHIPPED)
def test_every_preset_applies_to_both_configs(name, simulator):
    preset = load_preset(name)
    assert {"pretrain", "calibrate"} <= set(preset)
    assert set(preset.get("simulators", {})) <= {"lines", "circles"}
    pre = apply_preset(PretrainConfig(), preset, "pretrain", simulator)
    cal = apply_preset(CalibrationConfig(), preset, "calibrate", simulator)
    pre.validate()
    cal.validate()
    # the preset's values are the ones in the configuration, the simulator's own section last
    expected_pre = {**preset["pretrain"], **preset.get("simulators", {}).get(simulator, {}).get("pretrain", {})}
    expected_cal = {**preset["calibrate"], **preset.get("simulators", {}).get(simulator, {}).get("calibrate", {})}
    assert {k: getattr(pre, k) for k in expected_pre} == expected_pre
    assert {k: getattr(cal, k) for k in expected_cal} == expected_cal


def test_simulator_section_overrides_the_common_one():
    quick = load_preset("quick")
    lines = apply_preset(PretrainConfig(), quick, "pretrain", "lines")
    circles = apply_preset(PretrainConfig(), quick, "pretrain", "circles")
    assert lines.iterations == quick["pretrain"]["iterations"]
    assert circles.iterations == quick["simulators"]["circles"]["pretrain"]["iterations"] != lines.iterations


@pytest.mark.parametrize("name", ["nosuch", "../core/presets", "quick.json", ""])
def test_unknown_preset_names_the_choices(name):
    with pytest.raises(PresetError) as info:
        load_preset(name)
    message = str(info.value)
    assert f"unknown preset {name!r}" in message
    for shipped in SHIPPED:
        assert shipped in message


def test_missing_toml_path_is_refused(tmp_path):
    with pytest.raises(PresetError, match="unknown preset"):
        load_preset(str(tmp_path / "absent.toml"))


def test_preset_from_a_toml_path(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text("[pretrain]\niterations = 20\n[calibrate]\niterations = 30\n"
                    "[simulators.circles.calibrate]\nbatch_size = 8\n", encoding="utf-8")
    preset = load_preset(str(path))
    assert apply_preset(PretrainConfig(), preset, "pretrain", "lines").iterations == 20
    cal = apply_preset(CalibrationConfig(), preset, "calibrate", "circles")
    assert (cal.iterations, cal.batch_size) == (30, 8)
    assert apply_preset(CalibrationConfig(), preset, "calibrate", "lines").batch_size == CalibrationConfig().batch_size


def test_broken_toml_and_unknown_settings_are_preset_errors(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[pretrain\niterations = 1\n", encoding="utf-8")
    with pytest.raises(PresetError, match="broken.toml"):
        load_preset(str(broken))
    with pytest.raises(PresetError, match=r"\[pretrain\] has unknown settings: bogus"):
        apply_preset(PretrainConfig(), {"pretrain": {"bogus": 1}}, "pretrain")
    assert "bogus" not in {f.name for f in fields(PretrainConfig)}


def test_example_plugin_ships_and_loads():
    path = example_plugin_path()
    assert path.is_file() and path.name == "blob_plugin.py"
    assert example_plugin_source() == path.read_text(encoding="utf-8")
    assert "class Blob" in example_plugin_source()
    sim = load_simulator(f"{path}:Blob")
    assert sim.name == "blob" and tuple(sim.image_shape) == (32, 32)
    assert [p.name for p in sim.parameters] == ["x0", "y0", "sigma", "amp"]


def test_learning_from_a_bank_takes_the_presets_bank_iterations():
    quick = load_preset("quick")
    lines = apply_preset(PretrainConfig(), quick, "pretrain", "lines")
    assert (lines.iterations, lines.for_bank().iterations) == (1600, 5000)
    circles = apply_preset(PretrainConfig(), quick, "pretrain", "circles")
    assert (circles.iterations, circles.for_bank().iterations) == (2000, 3000)
    assert PretrainConfig(iterations=700).for_bank().iterations == 700   # unset: the same as fresh
    with pytest.raises(ValueError, match="bank_iterations must be 0"):
        PretrainConfig(bank_iterations=-1).validate()


def test_a_budgeted_calibration_takes_the_presets_budget_iterations():
    calibrate = apply_preset(CalibrationConfig(), load_preset("quick"), "calibrate", "lines")
    assert (calibrate.iterations, calibrate.for_budget().iterations) == (2000, 2000)  # no budget: unchanged
    capped = replace(calibrate, simulation_budget=10000).for_budget()
    assert capped.iterations == 4000 and capped.simulation_budget == 10000
    assert replace(CalibrationConfig(iterations=700), simulation_budget=5000).for_budget().iterations == 700
    with pytest.raises(ValueError, match="budget_iterations must be 0"):
        CalibrationConfig(budget_iterations=-1).validate()
