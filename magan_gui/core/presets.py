"""Presets: named TOML files of pretraining and calibration settings (``resources/presets``)."""

from __future__ import annotations

import tomllib
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar

PRESET_DIR = Path(__file__).resolve().parents[2] / "resources" / "presets"
T = TypeVar("T")


class PresetError(ValueError):
    """A preset is missing or holds unknown settings."""


def preset_names() -> list[str]:
    """Names of the presets shipped with the package."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name_or_path: str) -> dict[str, Any]:
    """Read a preset by name ("quick", "paper") or from a .toml path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = PRESET_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise PresetError(f"unknown preset {name_or_path!r}: use one of {', '.join(preset_names())} or a .toml file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"{path}: {exc}") from exc


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
