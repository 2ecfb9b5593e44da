"""Comparing calibration results: load result files (or projects), line up the parameters they share,
and measure each run's means and stds against a reference run in units of their combined uncertainty.

The command line (``magan compare``) and the app's comparison window both build their tables here,
so they show the same numbers.  A run's uncertainties are the ensemble's ``mean_uncertainty`` and
``std_uncertainty`` of each result row, present only when ``magan calibrate --ensemble K`` ran.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MaganError, one_line
from .results import RESULT_FORMAT

ZIP_MAGIC = b"PK\x03\x04"   # project files are torch checkpoints, i.e. zip archives
NO_UNCERTAINTY_NOTE = "n/a: a run has no uncertainties; `magan calibrate --ensemble K` gives each figure an uncertainty"


class ResultFileError(MaganError, ValueError):
    """A result file (or project) that cannot be compared: missing, not JSON, not a magan result, bad samples."""


@dataclass(frozen=True)
class ParameterSummary:
    """One parameter's best-match figures in one run (physical units)."""

    name: str
    unit: str
    mean: float
    std: float
    mean_uncertainty: float | None = None   # from an ensemble; None when none ran
    std_uncertainty: float | None = None
    true_mean: float | None = None          # closure tests only
    true_std: float | None = None

    @property
    def label(self) -> str:
        """The name with its unit in brackets (when it has one)."""
        return self.name + (f" [{self.unit}]" if self.unit else "")


@dataclass
class ResultRun:
    """One calibration result ready to compare: its figures per parameter and, when available, its samples."""

    label: str                              # what tables and legends call it (the file name, unique)
    source: str                             # the file it came from, or a description ("this session")
    simulator: str
    parameters: list[ParameterSummary]
    samples: np.ndarray | None              # (N, P), columns in the order of ``parameters``
    result: dict[str, Any] = field(repr=False)

    def parameter(self, name: str) -> ParameterSummary | None:
        """The figures of parameter ``name``, or None when this run does not have it."""
        return next((p for p in self.parameters if p.name == name), None)

    def column(self, name: str) -> np.ndarray | None:
        """The samples of parameter ``name``, or None (no samples, or no such parameter)."""
        if self.samples is None:
            return None
        index = next((i for i, p in enumerate(self.parameters) if p.name == name), None)
        return None if index is None else self.samples[:, index]


@dataclass(frozen=True)
class ComparisonEntry:
    """One run's figures for one parameter, and (after the reference) its differences from the reference.

    ``*_difference`` is this run's value minus the reference's; ``*_pull`` is that difference in units of
    the combined uncertainty ``sqrt(u_ref² + u_run²)``, None when either run has no uncertainty for it.
    """

    parameter: str
    run: int                                # index into ``Comparison.runs``
    figures: ParameterSummary
    mean_difference: float | None = None
    std_difference: float | None = None
    mean_pull: float | None = None
    std_pull: float | None = None


@dataclass
class Comparison:
    """The comparison table of several runs over the parameters they share; run 0 is the reference."""

    runs: list[ResultRun]
    names: list[str]                        # the parameters in common, in the reference's order
    entries: list[ComparisonEntry]          # parameter-major: every run for names[0], then names[1]...
    notes: list[str]                        # what was left out and why, one sentence each

    def entries_for(self, name: str) -> list[ComparisonEntry]:
        """Every run's entry for parameter ``name``, reference first."""
        return [e for e in self.entries if e.parameter == name]

    @property
    def missing_uncertainties(self) -> bool:
        """True when some difference has no size in units of the uncertainty (a run without an ensemble)."""
        return any(e.run > 0 and (e.mean_pull is None or e.std_pull is None) for e in self.entries)


# -- loading ----------------------------------------------------------------------------------------------
def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _optional(row: dict[str, Any], key: str, where: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    if not _number(value):
        raise ResultFileError(f"{where}: {row.get('name')}'s {key} is not a number ({value!r})")
    return float(value)


def parameter_summaries(result: Any, where: str) -> list[ParameterSummary]:
    """Check that ``result`` is a magan result document and read its parameter rows.

    Raises ResultFileError naming ``where`` (the file) when it is not a result or a row is malformed.
    """
    if not isinstance(result, dict):
        raise ResultFileError(f"{where}: not a magan result file (it holds a JSON {type(result).__name__}, "
                              "not an object)")
    if "format" not in result:
        raise ResultFileError(f"{where}: not a magan result file (it has no \"format\"; expected {RESULT_FORMAT})")
    if result["format"] != RESULT_FORMAT:
        raise ResultFileError(f"{where}: not a magan result file (its format is {result['format']!r}; "
                              f"expected {RESULT_FORMAT})")
    if not isinstance(result.get("simulator"), str):
        raise ResultFileError(f"{where}: incomplete result file (no simulator name)")
    rows = result.get("parameters")
    if not isinstance(rows, list) or not rows:
        raise ResultFileError(f"{where}: incomplete result file (no parameter rows)")
    summaries = []
    for k, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            raise ResultFileError(f"{where}: parameter row {k + 1} has no name")
        for key in ("mean", "std"):
            if not _number(row.get(key)):
                raise ResultFileError(f"{where}: {row['name']}'s {key} is missing or not a number")
        unit = row.get("unit") or ""
        summaries.append(ParameterSummary(
            row["name"], unit if isinstance(unit, str) else str(unit), float(row["mean"]), float(row["std"]),
            _optional(row, "mean_uncertainty", where), _optional(row, "std_uncertainty", where),
            _optional(row, "true_mean", where), _optional(row, "true_std", where)))
    names = [p.name for p in summaries]
    if len(set(names)) != len(names):
        raise ResultFileError(f"{where}: a parameter name appears twice ({', '.join(names)})")
    return summaries


def read_samples_csv(path: Path, names: list[str], where: str) -> np.ndarray:
    """The samples CSV of a result: a header of ``names``, then one sample per row of finite numbers."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultFileError(f"{where}: its samples file {path} is missing (keep the .samples.csv beside "
                              "the result)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{where}: cannot read its samples file {path} ({one_line(exc)})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ResultFileError(f"{where}: its samples file {path} is empty")
    header = [h.strip() for h in lines[0].split(",")]
    if header != names:
        raise ResultFileError(f"{where}: its samples file {path} has columns {', '.join(header)}, not the "
                              f"result's parameters {', '.join(names)}")
    if len(lines) < 2:
        raise ResultFileError(f"{where}: its samples file {path} has no samples")
    samples = np.empty((len(lines) - 1, len(names)))
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        try:
            if len(cells) != len(names):
                raise ValueError(f"{len(cells)} values, expected {len(names)}")
            samples[i] = [float(c) for c in cells]
        except ValueError as exc:
            raise ResultFileError(f"{where}: its samples file {path} is malformed at line {i + 2} "
                                  f"({one_line(exc)})") from None
    if not np.all(np.isfinite(samples)):
        raise ResultFileError(f"{where}: its samples file {path} holds values that are not finite numbers")
    return samples


def run_from_result(result: Any, samples: np.ndarray | None, label: str, source: str) -> ResultRun:
    """A run from a result document already in memory (the app's session), checked like a file's."""
    parameters = parameter_summaries(result, source)
    if samples is not None:
        samples = np.asarray(samples, dtype=float)
        if samples.ndim != 2 or samples.shape[1] != len(parameters) or len(samples) == 0:
            raise ResultFileError(f"{source}: its samples are not a table with a column per parameter "
                                  f"({len(parameters)})")
    return ResultRun(label, source, result["simulator"], parameters, samples, result)


def _load_project(path: Path, label: str) -> ResultRun:
    from .project import Project  # torch and the networks: loaded only for a project

    project = Project.load(path)
    if project.result is None:
        raise ResultFileError(f"{path}: the project has no calibration result yet")
    return run_from_result(project.result, project.samples, label, str(path))


def load_run(path: str | Path, label: str | None = None) -> ResultRun:
    """Load a result JSON and its samples CSV (or a project file, .magan, with its result) for comparing.

    Raises ResultFileError (one sentence) when the file is missing, not JSON, not a magan result, or
    its samples file is missing or malformed.  A result that names no samples file loads without samples.
    """
    path = Path(path)
    label = label or path.name
    try:
        with path.open("rb") as stream:
            if stream.read(4) == ZIP_MAGIC:
                return _load_project(path, label)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ResultFileError(f"{path}: a folder, not a result file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{path}: cannot read it as a result file ({one_line(exc)})") from None
    try:
        result = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{path}: not a result file (not JSON: {exc.msg} at line {exc.lineno})") from None
    parameters = parameter_summaries(result, str(path))
    samples = None
    csv_name = result.get("samples_csv")
    if csv_name is not None:
        if not isinstance(csv_name, str) or not csv_name:
            raise ResultFileError(f"{path}: its samples_csv is not a file name")
        csv_path = path.parent / csv_name
        samples = read_samples_csv(csv_path, [p.name for p in parameters], str(path))
    return ResultRun(label, str(path), result["simulator"], parameters, samples, result)


def unique_labels(paths: Sequence[str | Path]) -> list[str]:
    """Short names for runs: the file name, with its folder where two share a name, numbered if still equal."""
    paths = [Path(p) for p in paths]
    names = [p.name for p in paths]
    labels = [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 and p.parent.name else p.name for p in paths]
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[i] = f"{label} ({seen[label]})"
    return labels


def load_runs(paths: Sequence[str | Path]) -> list[ResultRun]:
    """Load several result files (or projects), each with a label unique among them."""
    return [load_run(path, label) for path, label in zip(paths, unique_labels(paths))]


# -- the table ---------------------------------------------------------------------------------------------
def _pull(difference: float, u_ref: float | None, u_run: float | None) -> float | None:
    if u_ref is None or u_run is None:
        return None
    combined = math.hypot(u_ref, u_run)
    return difference / combined if combined > 0 else None


def compare_runs(runs: Sequence[ResultRun]) -> Comparison:
    """Line up ``runs`` (the first is the reference) over the parameters all of them have, with the same unit.

    Parameters left out, and runs of different simulators, are said in ``notes``; raises ResultFileError
    when the runs have no parameter in common.
    """
    runs = list(runs)
    if not runs:
        raise ResultFileError("no results to compare")
    notes = []
    simulators = sorted({run.simulator for run in runs})
    if len(simulators) > 1:
        notes.append("the runs are of different simulators (" + "; ".join(f"{r.label}: {r.simulator}" for r in runs)
                     + "): only the parameters they share are compared")
    names, left_out = [], []
    every = [p.name for run in runs for p in run.parameters]
    for name in dict.fromkeys(every):   # every parameter once, the reference's first
        holders = [run for run in runs if run.parameter(name) is not None]
        if len(holders) < len(runs):
            left_out.append(f"{name} (only in {', '.join(r.label for r in holders)})")
            continue
        units = [run.parameter(name).unit for run in runs]
        if len(set(units)) > 1:
            left_out.append(f"{name} (units differ: " + ", ".join(f"{r.label} {u or 'none'}"
                                                                  for r, u in zip(runs, units)) + ")")
            continue
        names.append(name)
    if left_out:
        notes.append("left out: " + "; ".join(left_out))
    if not names:
        raise ResultFileError("the results have no parameter in common (" + "; ".join(
            f"{r.label}: {', '.join(p.name for p in r.parameters)}" for r in runs) + "): nothing to compare")
    entries = []
    for name in names:
        reference = runs[0].parameter(name)
        entries.append(ComparisonEntry(name, 0, reference))
        for k, run in enumerate(runs[1:], start=1):
            p = run.parameter(name)
            d_mean, d_std = p.mean - reference.mean, p.std - reference.std
            entries.append(ComparisonEntry(name, k, p, d_mean, d_std,
                                           _pull(d_mean, reference.mean_uncertainty, p.mean_uncertainty),
                                           _pull(d_std, reference.std_uncertainty, p.std_uncertainty)))
    return Comparison(runs, names, entries, notes)


def decimals_for(scale: float) -> int | None:
    """Decimal places that show ``scale`` (a parameter's reference std) to 3 significant digits; None if it is 0."""
    if not (math.isfinite(scale) and scale > 0):
        return None
    return max(0, 2 - math.floor(math.log10(scale)))


def number(value: float, decimals: int | None, sign: bool = False) -> str:
    """A figure with a parameter's decimal places (4 significant digits when it has none)."""
    plus = "+" if sign else ""
    return f"{value:{plus}.{decimals}f}" if decimals is not None else f"{value:{plus}#.4g}"


def with_uncertainty(value: float, uncertainty: float | None, decimals: int | None) -> str:
    """A figure as text, with ``± u`` when it has an uncertainty."""
    text = number(value, decimals)
    return text if uncertainty is None else f"{text} ± {number(uncertainty, decimals)}"


def pull_text(entry: ComparisonEntry, pull: float | None) -> str:
    """A difference in units of the combined uncertainty: empty for the reference, n/a without uncertainties."""
    if entry.run == 0:
        return ""
    return "n/a" if pull is None else f"{pull:+.2f}"


COLUMNS = ("parameter", "run", "mean", "std", "Δmean", "Δmean/σ", "Δstd", "Δstd/σ")


def comparison_rows(comparison: Comparison) -> list[list[str]]:
    """The table's cells as text, a row per parameter and run (the parameter named on its first row only)."""
    rows = []
    for entry in comparison.entries:
        f = entry.figures
        if entry.run == 0:  # one number format per parameter, set by the reference's spread, so the rows align
            decimals = decimals_for(f.std)
        differences = ["", "", "", ""] if entry.run == 0 else [
            number(entry.mean_difference, decimals, sign=True), pull_text(entry, entry.mean_pull),
            number(entry.std_difference, decimals, sign=True), pull_text(entry, entry.std_pull)]
        rows.append([f.label if entry.run == 0 else "", comparison.runs[entry.run].label,
                     with_uncertainty(f.mean, f.mean_uncertainty, decimals),
                     with_uncertainty(f.std, f.std_uncertainty, decimals), *differences])
    return rows


def comparison_footnotes(comparison: Comparison) -> list[str]:
    """The lines under the table: what Δ and σ mean, what is missing, and what was left out."""
    lines = []
    if len(comparison.runs) > 1:
        lines.append(f"Δ: difference from the reference ({comparison.runs[0].label}); Δ/σ: in units of the combined "
                     "uncertainty √(u_ref² + u²)")
    if comparison.missing_uncertainties:
        lines.append(NO_UNCERTAINTY_NOTE)
    return lines + comparison.notes


def format_comparison(comparison: Comparison) -> str:
    """The comparison as a plain-text table with its footnotes (what ``magan compare`` prints)."""
    runs = comparison.runs
    simulators = ", ".join(dict.fromkeys(r.simulator for r in runs))
    lines = [f"{len(runs)} results of {simulators}; reference: {runs[0].label}"]
    body = comparison_rows(comparison)
    for c in (2, 3):   # the figures line up on their "±" (and their decimal points), with or without one
        parts = [row[c].split(" ± ") for row in body]
        left = max(len(p[0]) for p in parts)
        right = max((len(p[1]) for p in parts if len(p) > 1), default=0)
        for row, p in zip(body, parts):
            tail = f" ± {p[1].ljust(right)}" if len(p) > 1 else " " * (right + 3) if right else ""
            row[c] = p[0].rjust(left) + tail
    rows = [list(COLUMNS), *body]
    widths = [max(len(row[c]) for row in rows) for c in range(len(COLUMNS))]
    for k, row in enumerate(rows):
        cells = [cell.ljust(w) if c < 2 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("-" * len(lines[-1]))
    return "\n".join(lines + comparison_footnotes(comparison))
