"""Comparing results: loading and refusing files, the parameters in common, differences in units of the
combined uncertainty, and ``magan compare`` as a user runs it."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from magan_gui.cli import main
from magan_gui.core.comparison import (
    NO_UNCERTAINTY_NOTE,
    ResultFileError,
    compare_runs,
    format_comparison,
    load_run,
    load_runs,
    run_from_result,
    unique_labels,
)
from magan_gui.core.project import Project
from magan_gui.core.results import RESULT_FORMAT, samples_path_for, write_result

LINES = [("m", ""), ("b", "px"), ("w", "px"), ("i", "")]


def make_result(means, stds, names=LINES, simulator="lines", uncertainties=None, true=None) -> dict:
    """A minimal valid result document; ``uncertainties``: (mean_u, std_u) per parameter, as an ensemble adds."""
    rows = []
    for k, (name, unit) in enumerate(names):
        row = {"name": name, "unit": unit, "mean": means[k], "std": stds[k], "default": 0.0}
        if uncertainties is not None:
            row["mean_uncertainty"], row["std_uncertainty"] = uncertainties[k]
        if true is not None:
            row["true_mean"], row["true_std"] = true[k]
        rows.append(row)
    return {"format": RESULT_FORMAT, "simulator": simulator, "parameters": rows, "n_samples": 200,
            "correlation": {"names": [n for n, _ in names], "matrix": np.eye(len(names)).tolist()}, "seed": 0}


def write_run(folder: Path, name: str, means, stds, n: int = 200, seed: int = 0, **kwargs) -> Path:
    """Write a result JSON and its samples CSV (normal samples of the given means and stds) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    result = make_result(means, stds, **kwargs)
    samples = np.random.default_rng(seed).normal(means, stds, size=(n, len(means)))
    path = folder / name
    write_result(path, result, samples)
    return path


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


MEANS_A, STDS_A = [1.5, 10.0, 0.5, 9.0], [0.3, 0.5, 0.1, 0.5]
MEANS_B, STDS_B = [1.6, 10.0, 0.45, 9.2], [0.25, 0.5, 0.1, 0.6]


# -- loading -----------------------------------------------------------------------------------------------
def test_loads_a_result_with_its_samples(tmp_path):
    path = write_run(tmp_path, "a.json", MEANS_A, STDS_A, n=300)
    run = load_run(path)
    assert run.label == "a.json" and run.simulator == "lines" and run.source == str(path)
    assert [p.name for p in run.parameters] == ["m", "b", "w", "i"]
    assert run.parameter("b").unit == "px" and run.parameter("b").label == "b [px]"
    assert run.parameter("m").mean == 1.5 and run.parameter("m").mean_uncertainty is None
    assert run.samples.shape == (300, 4)
    assert run.column("w").mean() == pytest.approx(0.5, abs=0.03)
    assert run.column("nope") is None and run.parameter("nope") is None


def test_a_result_without_a_samples_file_named_loads_without_samples(tmp_path):
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(make_result(MEANS_A, STDS_A)))
    run = load_run(path)
    assert run.samples is None and run.column("m") is None and run.parameter("m").std == 0.3


@pytest.mark.parametrize("content, expected", [
    (None, "no such file"),
    ("{not json", "not JSON"),
    ("[1, 2]", "not a magan result file (it holds a JSON list"),
    ('{"simulator": "lines", "parameters": []}', 'has no "format"'),
    ('{"format": "magan-project/1"}', "its format is 'magan-project/1'"),
    (json.dumps({"format": RESULT_FORMAT, "simulator": "lines", "parameters": [{"name": "m", "std": 1}]}),
     "m's mean is missing"),
    (json.dumps({"format": RESULT_FORMAT, "simulator": "lines", "parameters": [
        {"name": "m", "mean": 1, "std": 1, "mean_uncertainty": "big"}]}), "mean_uncertainty is not a number"),
    (json.dumps({"format": RESULT_FORMAT, "simulator": "lines", "parameters": [
        {"name": "m", "mean": 1, "std": 1}, {"name": "m", "mean": 1, "std": 1}]}), "appears twice"),
])
def test_files_that_are_not_results_are_refused_in_one_sentence(tmp_path, content, expected):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ResultFileError) as info:
        load_run(path)
    message = str(info.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_a_folder_or_binary_file_is_refused(tmp_path):
    with pytest.raises(ResultFileError, match="a folder"):
        load_run(tmp_path)
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ResultFileError, match="cannot read it as a result file"):
        load_run(binary)


@pytest.mark.parametrize("csv, expected", [
    (None, "samples file .* is missing"),
    ("", "is empty"),
    ("m,b,w,i\n", "has no samples"),
    ("m,b,x,i\n1,2,3,4\n", "has columns m, b, x, i, not the result's parameters m, b, w, i"),
    ("m,b,w,i\n1,2,3,4\n1,2,3\n", "malformed at line 3 .*3 values, expected 4"),
    ("m,b,w,i\n1,2,abc,4\n", "malformed at line 2"),
    ("m,b,w,i\n1,2,nan,4\n", "not finite"),
])
def test_a_missing_or_malformed_samples_file_is_refused(tmp_path, csv, expected):
    path = write_run(tmp_path, "a.json", MEANS_A, STDS_A)
    csv_path = samples_path_for(path)
    if csv is None:
        csv_path.unlink()
    else:
        csv_path.write_text(csv)
    with pytest.raises(ResultFileError, match=expected):
        load_run(path)


def test_a_project_file_is_compared_like_a_result(tmp_path):
    samples = np.random.default_rng(3).normal(MEANS_B, STDS_B, size=(100, 4)).astype(np.float32)
    Project("lines", result=make_result(MEANS_B, STDS_B), samples=samples).save(tmp_path / "p.magan")
    run = load_run(tmp_path / "p.magan")
    assert run.label == "p.magan" and run.samples.shape == (100, 4) and run.parameter("w").mean == 0.45
    Project("lines").save(tmp_path / "empty.magan")
    with pytest.raises(ResultFileError, match="has no calibration result yet"):
        load_run(tmp_path / "empty.magan")


def test_samples_in_memory_must_fit_the_result():
    result = make_result(MEANS_A, STDS_A)
    run = run_from_result(result, np.zeros((5, 4)), "this session", "this session")
    assert run.samples.shape == (5, 4)
    with pytest.raises(ResultFileError, match="a column per parameter"):
        run_from_result(result, np.zeros((5, 3)), "this session", "this session")


def test_labels_are_unique():
    assert unique_labels(["x/a.json", "y/b.json"]) == ["a.json", "b.json"]
    assert unique_labels(["x/r.json", "y/r.json"]) == ["x/r.json", "y/r.json"]
    assert unique_labels(["x/r.json", "x/r.json"]) == ["x/r.json", "x/r.json (2)"]


# -- the table ---------------------------------------------------------------------------------------------
def test_differences_in_units_of_the_combined_uncertainty(tmp_path):
    a = write_run(tmp_path, "a.json", MEANS_A, STDS_A, uncertainties=[(0.03, 0.04)] * 4)
    b = write_run(tmp_path, "b.json", MEANS_B, STDS_B, uncertainties=[(0.04, 0.03)] * 4)
    comparison = compare_runs(load_runs([a, b]))
    assert comparison.names == ["m", "b", "w", "i"] and not comparison.missing_uncertainties
    ref, other = comparison.entries_for("m")
    assert ref.run == 0 and ref.mean_difference is None and ref.mean_pull is None
    assert other.mean_difference == pytest.approx(0.1)
    assert other.mean_pull == pytest.approx(0.1 / 0.05)            # sqrt(0.03² + 0.04²) = 0.05
    assert other.std_difference == pytest.approx(-0.05)
    assert other.std_pull == pytest.approx(-0.05 / 0.05)
    assert comparison.entries_for("b")[1].mean_pull == pytest.approx(0.0)
    text = format_comparison(comparison)
    assert NO_UNCERTAINTY_NOTE not in text and "n/a" not in text
    line = next(row for row in text.splitlines() if row.split()[:1] == ["b.json"])   # m's second row
    assert line.split() == ["b.json", "1.600", "±", "0.040", "0.250", "±", "0.030",
                            "+0.100", "+2.00", "-0.050", "-1.00"]


def test_without_an_ensemble_the_raw_difference_and_n_a(tmp_path):
    a = write_run(tmp_path, "a.json", MEANS_A, STDS_A, uncertainties=[(0.03, 0.04)] * 4)
    b = write_run(tmp_path, "b.json", MEANS_B, STDS_B)                     # no ensemble
    comparison = compare_runs(load_runs([a, b]))
    other = comparison.entries_for("i")[1]
    assert other.mean_difference == pytest.approx(0.2) and other.mean_pull is None and other.std_pull is None
    assert comparison.missing_uncertainties
    text = format_comparison(comparison)
    assert text.count(NO_UNCERTAINTY_NOTE) == 1 and "--ensemble K" in text
    i_line = [row for row in text.splitlines() if row.startswith("i ")]
    assert i_line and i_line[0].split()[1:5] == ["a.json", "9.000", "±", "0.030"]
    b_line = text.splitlines()[text.splitlines().index(i_line[0]) + 1].split()
    assert b_line == ["b.json", "9.200", "0.600", "+0.200", "n/a", "+0.100", "n/a"]


def test_runs_of_different_simulators_compare_what_they_share(tmp_path):
    a = write_run(tmp_path, "a.json", MEANS_A, STDS_A)
    blob = [("x0", "px"), ("m", ""), ("b", "mm")]
    c = write_run(tmp_path, "c.json", [14.0, 1.4, 3.0], [1.0, 0.2, 0.1], names=blob, simulator="blob")
    comparison = compare_runs(load_runs([a, c]))
    assert comparison.names == ["m"]
    notes = " ".join(comparison.notes)
    assert "different simulators (a.json: lines; c.json: blob)" in notes
    assert "w (only in a.json)" in notes and "x0 (only in c.json)" in notes
    assert "b (units differ: a.json px, c.json mm)" in notes
    assert comparison.entries_for("m")[1].mean_difference == pytest.approx(-0.1)


def test_no_parameter_in_common_is_refused(tmp_path):
    a = write_run(tmp_path, "a.json", MEANS_A, STDS_A)
    c = write_run(tmp_path, "c.json", [14.0], [1.0], names=[("x0", "px")], simulator="blob")
    with pytest.raises(ResultFileError, match="no parameter in common .*a.json: m, b, w, i; c.json: x0"):
        compare_runs(load_runs([a, c]))


def test_a_zero_combined_uncertainty_has_no_pull(tmp_path):
    a = write_run(tmp_path, "a.json", MEANS_A, STDS_A, uncertainties=[(0.0, 0.0)] * 4)
    b = write_run(tmp_path, "b.json", MEANS_B, STDS_B, uncertainties=[(0.0, 0.0)] * 4)
    entry = compare_runs(load_runs([a, b])).entries_for("m")[1]
    assert entry.mean_pull is None and not math.isnan(entry.mean_difference)


# -- magan compare -----------------------------------------------------------------------------------------
def test_magan_compare_prints_the_table(tmp_path):
    a = write_run(tmp_path, "a.json", MEANS_A, STDS_A, uncertainties=[(0.02, 0.01)] * 4)
    b = write_run(tmp_path, "b.json", MEANS_B, STDS_B, uncertainties=[(0.02, 0.01)] * 4)
    c = write_run(tmp_path, "c.json", MEANS_A, STDS_A)
    code, out, err = run_cli("compare", str(a), str(b), str(c))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "3 results of lines; reference: a.json"
    assert lines[1].split() == ["parameter", "run", "mean", "std", "Δmean", "Δmean/σ", "Δstd", "Δstd/σ"]
    assert set(lines[2]) == {"-"}
    assert lines[3].split()[:2] == ["m", "a.json"] and lines[6].split()[:2] == ["b", "[px]"]
    w_b = lines[3 + 2 * 3 + 1].split()                                 # w's row of b.json
    assert w_b[0] == "b.json" and w_b[-4:] == ["-0.050", "-1.77", "+0.000", "+0.00"]   # -0.05 / (sqrt(2)·0.02)
    assert lines[3 + 2 * 3 + 2].split()[-4:] == ["+0.000", "n/a", "+0.000", "n/a"]        # c.json: no ensemble
    assert len(lines) == 3 + 4 * 3 + 2
    assert lines[-2].startswith("Δ: difference from the reference (a.json)")
    assert lines[-1] == NO_UNCERTAINTY_NOTE


def test_magan_compare_needs_two_files(tmp_path):
    a = write_run(tmp_path, "a.json", MEANS_A, STDS_A)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
        main(["compare", str(a)])
    assert info.value.code == 2 and "the following arguments are required: result" in err.getvalue()


@pytest.mark.parametrize("breakage, expected", [
    ("missing", "no such file"),
    ("csv", "samples file .* is missing"),
    ("format", "not a magan result file"),
])
def test_magan_compare_refuses_bad_files_in_one_line(tmp_path, breakage, expected):
    a = write_run(tmp_path, "a.json", MEANS_A, STDS_A)
    b = write_run(tmp_path, "b.json", MEANS_B, STDS_B)
    if breakage == "missing":
        b = tmp_path / "nothing.json"
    elif breakage == "csv":
        samples_path_for(b).unlink()
    else:
        b.write_text(json.dumps({"format": "other/1"}))
    code, out, err = run_cli("compare", str(a), str(b))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("magan compare: error:") and "Traceback" not in err
    assert re.search(expected, lines[0])


def test_magan_compare_says_what_was_left_out(tmp_path):
    a = write_run(tmp_path, "a.json", MEANS_A, STDS_A)
    c = write_run(tmp_path, "c.json", [1.0, 3.0], [0.1, 0.2], names=[("m", ""), ("r", "px")], simulator="circles")
    code, out, _ = run_cli("compare", str(a), str(c))
    assert code == 0
    assert "2 results of lines, circles; reference: a.json" in out
    assert "left out: b (only in a.json); w (only in a.json); i (only in a.json); r (only in c.json)" in out
    code, _, err = run_cli("compare", str(a), str(write_run(tmp_path / "o", "d.json", [1.0], [1.0],
                                                              names=[("z", "")], simulator="x")))
    assert code == 2 and "no parameter in common" in err


def test_the_printed_figures_line_up(tmp_path):
    a = write_run(tmp_path, "a.json", MEANS_A, STDS_A, uncertainties=[(0.012, 0.008)] * 4)
    b = write_run(tmp_path, "b.json", MEANS_B, STDS_B)
    code, out, _ = run_cli("compare", str(a), str(b))
    rows = out.splitlines()[3:11]
    assert code == 0 and len({row.index("±") for row in rows if "±" in row}) == 1   # reference rows
    # every figure of a parameter has the decimals its reference std needs (3 significant digits of 0.1)
    assert rows[4].split()[-6:-4] == ["0.500", "±"] and rows[5].split()[1:3] == ["0.450", "0.100"]


def test_another_kind_of_checkpoint_is_refused_in_one_line(tiny_emulator_path, tmp_path):
    a = write_run(tmp_path, "a.json", MEANS_A, STDS_A)
    code, out, err = run_cli("compare", str(a), str(tiny_emulator_path))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert str(tiny_emulator_path) in err and "Traceback" not in err
