"""Presets: named TOML files of pretraining and calibration settings, shipped as package data in
``magan_gui/presets`` (read through importlib.resources, so they are found from a wheel too)."""

from __future__ import annotations

import tomllib
from dataclasses import fields, replace
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

from .errors import MaganError

T = TypeVar("T")


class PresetError(MaganError, ValueError):
    """A preset is missing or holds unknown settings."""


def _preset_dir() -> Traversable:
    return files("magan_gui") / "presets"


def preset_names() -> list[str]:
    """Names of the presets shipped with the package."""
    return sorted(p.name.removesuffix(".toml") for p in _preset_dir().iterdir()
                  if p.name.endswith(".toml") and p.is_file())


def load_preset(name_or_path: str) -> dict[str, Any]:
    """Read a preset by name ("quick", "paper") or from a .toml path."""
    source: Traversable | Path | None = None
    if Path(name_or_path).suffix == ".toml":
        source = Path(name_or_path)
    elif name_or_path in preset_names():   # a shipped name only: no "../x" out of the package's folder
        source = _preset_dir() / f"{name_or_path}.toml"
    if source is None or not source.is_file():
        raise PresetError(f"unknown preset {name_or_path!r}: use one of {', '.join(preset_names())} or a .toml file")
    try:
        return tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"{source}: {exc}") from exc


def apply_preset(config: T, preset: dict[str, Any], section: str, simulator: str | None = None) -> T:
    """Return ``config`` with the preset's ``[section]`` values, then ``[simulators.NAME.section]``'s."""
    values = dict(preset.get(section, {}))
    if simulator:
        values.update(preset.get("simulators", {}).get(simulator, {}).get(section, {}))
    known = {f.name for f in fields(config)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise PresetError(f"preset section [{section}] has unknown settings: {', '.join(unknown)}")
    return replace(config, **values)  # type: ignore[type-var]
