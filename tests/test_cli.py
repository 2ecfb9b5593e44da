"""The `magan` command, run in-process: outputs, refusals as one line on stderr, exit codes."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from magan_gui.cli import main
from magan_gui.core.emulator import TrainedEmulator
from tests.conftest import REPO_ROOT

LINES_MEAN = "1.5,10,0.5,9"
LINES_STD = "0.3,0.5,0.1,0.5"

TINY_PRESET = """
[pretrain]
iterations = 30
bank_iterations = 40
start_iterations = 10
batch_size = 16
heldout = 32
eval_every = 10
grid_rows = 2

[calibrate]
iterations = 20
batch_size = 16
eval_every = 10
eval_samples = 128
n_samples = 500
snapshot_samples = 100
discriminator_optimizer = "adam"
lr_discriminator = 2e-4
"""


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _assert_one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"magan {command}: error:"), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "tiny.toml").write_text(TINY_PRESET)
    return folder


@pytest.fixture(scope="module")
def pretrained(workdir):
    """`magan pretrain` once for the module: (exit code, stdout, stderr, emulator path)."""
    path = workdir / "emulator.pt"
    code, out, err = _run("pretrain", "--simulator", "lines", "-o", str(path), "--iterations", "30",
                          "--batch-size", "16", "--preset", str(workdir / "tiny.toml"), "--device", "cpu")
    return code, out, err, path


@pytest.fixture(scope="module")
def true_npz(workdir):
    path = workdir / "true.npz"
    code, _, _ = _run("simulate", "--simulator", "lines", "--mean", LINES_MEAN, "--std", LINES_STD, "-n", "200",
                      "-o", str(path), "--device", "cpu", "--seed", "1")
    assert code == 0
    return path


# -- simulate ---------------------------------------------------------------------------------------------
def test_simulate_writes_npz_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "true.npz"
    argv = ["simulate", "--simulator", "lines", "--mean", LINES_MEAN, "--std", LINES_STD, "-n", "50",
            "-o", str(out), "--device", "cpu"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "wrote 50 lines images" in captured.out and captured.err == ""
    with np.load(out) as data:
        assert data["images"].shape == (50, 28, 28)
        assert data["params"].shape == (50, 4)
        assert list(data["param_names"]) == ["m", "x0", "c", "x_steps"]
        first = data["images"].copy()

    assert main(argv) == 2
    captured = capsys.readouterr()
    line = _assert_one_error_line(captured.err, "simulate")
    assert "already exists" in line and "--force" in line
    with np.load(out) as data:
        assert np.array_equal(data["images"], first)

    assert main(argv + ["--force", "--seed", "5"]) == 0
    with np.load(out) as data:
        assert not np.array_equal(data["images"], first)


def test_simulate_is_reproducible_by_seed(tmp_path):
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for p in paths:
        assert _run("simulate", "--simulator", "circles", "--mean", "18,18,8,0.15,0.9", "--std",
                    "0.8,0.8,0.5,0.05,0.05", "-n", "20", "-o", str(p), "--seed", "3", "--device", "cpu")[0] == 0
    with np.load(paths[0]) as a, np.load(paths[1]) as b:
        assert np.array_equal(a["images"], b["images"])


def test_simulate_wrong_number_of_means(tmp_path):
    code, _, err = _run("simulate", "--simulator", "lines", "--mean", "1.5,10,0.5", "--std", LINES_STD,
                        "-n", "10", "-o", str(tmp_path / "x.npz"), "--device", "cpu")
    assert code == 2
    line = _assert_one_error_line(err, "simulate")
    assert "4 parameters" in line and "got 3 means" in line
    assert not (tmp_path / "x.npz").exists()


def test_simulate_unknown_simulator(tmp_path):
    code, _, err = _run("simulate", "--simulator", "nosuchthing", "--mean", "1", "--std", "1",
                        "-o", str(tmp_path / "x.npz"))
    assert code == 2
    assert "unknown simulator 'nosuchthing'" in _assert_one_error_line(err, "simulate")


def test_simulate_refuses_non_npz_output(tmp_path):
    code, _, err = _run("simulate", "--simulator", "lines", "--mean", LINES_MEAN, "--std", LINES_STD,
                        "-o", str(tmp_path / "x.npy"))
    assert code == 2
    assert ".npz" in _assert_one_error_line(err, "simulate")


def test_bad_number_text_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--simulator", "lines", "--mean", "a,b", "--std", LINES_STD, "-o", str(tmp_path / "x.npz")])
    assert exc.value.code == 2
    assert "expected comma-separated numbers" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_gpu(tmp_path):
    code, _, err = _run("simulate", "--simulator", "lines", "--mean", LINES_MEAN, "--std", LINES_STD, "-n", "5",
                        "-o", str(tmp_path / "x.npz"), "--device", "cuda")
    assert code == 2
    assert "no CUDA GPU" in _assert_one_error_line(err, "simulate")
    assert not (tmp_path / "x.npz").exists()


def test_unknown_device(tmp_path):
    code, _, err = _run("simulate", "--simulator", "lines", "--mean", LINES_MEAN, "--std", LINES_STD, "-n", "5",
                        "-o", str(tmp_path / "x.npz"), "--device", "tpu")
    assert code == 2
    assert "unknown device 'tpu'" in _assert_one_error_line(err, "simulate")


# -- pretrain and emulate -------------------------------------------------------------------------------
def test_pretrain_writes_emulator(pretrained):
    code, out, err, path = pretrained
    assert code == 0, err
    assert "pretraining done" in out and "30 iterations" in out
    assert "pretrain [" in err  # the progress bar
    emulator = TrainedEmulator.load(path)
    assert emulator.meta["iteration"] == 30 and emulator.meta["config"]["batch_size"] == 16
    assert emulator.meta["config"]["heldout"] == 32  # from the preset file


def test_pretrain_refuses_existing_output(pretrained, workdir):
    code, _, err = _run("pretrain", "--simulator", "lines", "-o", str(pretrained[3]), "--iterations", "5")
    assert code == 2
    assert "already exists" in _assert_one_error_line(err, "pretrain")


def test_pretrain_unknown_preset(tmp_path):
    code, _, err = _run("pretrain", "--simulator", "lines", "-o", str(tmp_path / "e.pt"), "--preset", "nosuch")
    assert code == 2
    assert "unknown preset 'nosuch'" in _assert_one_error_line(err, "pretrain")


def test_pretrain_resume_without_file(tmp_path):
    code, _, err = _run("pretrain", "--simulator", "lines", "-o", str(tmp_path / "e.pt"), "--resume")
    assert code == 2
    assert "no such file" in _assert_one_error_line(err, "pretrain")


def test_emulate_writes_images(pretrained, tmp_path):
    out = tmp_path / "emulated.npz"
    code, stdout, err = _run("emulate", "--emulator", str(pretrained[3]), "--mean", LINES_MEAN, "--std", LINES_STD,
                             "-n", "20", "-o", str(out), "--device", "cpu")
    assert code == 0, err
    assert "wrote 20 emulated images" in stdout
    with np.load(out) as data:
        images = data["images"]
        assert images.shape == (20, 28, 28)
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert data["params"].shape == (20, 4)


def test_emulate_export_program(pretrained, tmp_path):
    path = tmp_path / "emulator.pt2"
    code, stdout, err = _run("emulate", "--emulator", str(pretrained[3]), "--export", str(path))
    assert code == 0, err
    assert "torch.export.load" in stdout
    module = torch.export.load(str(path)).module()
    with torch.no_grad():
        images = module(torch.tensor([[1.5, 10.0, 0.5, 9.0]]))
    assert images.shape == (1, 28, 28)
    code, _, err = _run("emulate", "--emulator", str(pretrained[3]), "--export", str(path))
    assert code == 2 and "already exists" in _assert_one_error_line(err, "emulate")


def test_emulate_needs_mean_or_export(pretrained, tmp_path):
    code, _, err = _run("emulate", "--emulator", str(pretrained[3]), "-o", str(tmp_path / "x.npz"))
    assert code == 2
    assert "--mean" in _assert_one_error_line(err, "emulate")
    code, _, err = _run("emulate", "--emulator", str(pretrained[3]), "--mean", "1,2", "-o", str(tmp_path / "x.npz"))
    assert code == 2
    assert "4 parameters" in _assert_one_error_line(err, "emulate")


def test_emulate_refuses_a_non_emulator_file(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x00" * 100)
    code, _, err = _run("emulate", "--emulator", str(path), "--export", str(tmp_path / "x.ts"))
    assert code == 2
    assert "not a readable magan checkpoint" in _assert_one_error_line(err, "emulate")


def test_emulate_stochastic_emulator_is_reproducible_by_seed(circles, tmp_path):
    """`--seed` must fix the emulated noise too, as `magan simulate --seed` does for the simulator."""
    from magan_gui.core.pretraining import Pretrainer
    from tests.conftest import tiny_pretrain_config

    path = tmp_path / "circles.pt"
    Pretrainer(circles, tiny_pretrain_config(iterations=2, heldout=16), "cpu").run(checkpoint_path=path)
    outputs = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for out in outputs:
        code, _, err = _run("emulate", "--emulator", str(path), "--mean", "18,18,8,0.3,0.9", "--std", "0,0,0,0,0",
                            "-n", "4", "-o", str(out), "--seed", "0", "--device", "cpu")
        assert code == 0, err
    with np.load(outputs[0]) as a, np.load(outputs[1]) as b:
        assert np.array_equal(a["params"], b["params"])
        np.testing.assert_array_equal(a["images"], b["images"])


# -- calibrate --------------------------------------------------------------------------------------------
def test_calibrate_missing_true_file(pretrained, tmp_path):
    code, _, err = _run("calibrate", "--simulator", "lines", "--emulator", str(pretrained[3]),
                        "--true", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "r.json"))
    assert code == 2
    assert "no such file or folder" in _assert_one_error_line(err, "calibrate")


def test_calibrate_true_images_of_wrong_shape(pretrained, tmp_path):
    true = tmp_path / "big.npy"
    np.save(true, np.zeros((10, 32, 32), dtype=np.uint8))
    code, _, err = _run("calibrate", "--simulator", "lines", "--emulator", str(pretrained[3]),
                        "--true", str(true), "-o", str(tmp_path / "r.json"))
    assert code == 2
    assert "32x32 but the simulator makes 28x28" in _assert_one_error_line(err, "calibrate")
    assert not (tmp_path / "r.json").exists()


def test_calibrate_missing_emulator(true_npz, tmp_path):
    code, _, err = _run("calibrate", "--simulator", "lines", "--emulator", str(tmp_path / "none.pt"),
                        "--true", str(true_npz), "-o", str(tmp_path / "r.json"))
    assert code == 2
    assert "no such file" in _assert_one_error_line(err, "calibrate")


def test_calibrate_with_emulator_of_another_simulator(pretrained, tmp_path):
    true = tmp_path / "circles.npz"
    assert _run("simulate", "--simulator", "circles", "--mean", "18,18,8,0.15,0.9", "--std", "0.8,0.8,0.5,0.05,0.05",
                "-n", "10", "-o", str(true), "--device", "cpu")[0] == 0
    code, _, err = _run("calibrate", "--simulator", "circles", "--emulator", str(pretrained[3]),
                        "--true", str(true), "-o", str(tmp_path / "r.json"), "--device", "cpu")
    assert code == 2
    assert "emulator was trained for parameters" in _assert_one_error_line(err, "calibrate")


def test_calibrate_refuses_non_json_output(pretrained, true_npz, tmp_path):
    code, _, err = _run("calibrate", "--simulator", "lines", "--emulator", str(pretrained[3]),
                        "--true", str(true_npz), "-o", str(tmp_path / "r.txt"))
    assert code == 2
    assert ".json" in _assert_one_error_line(err, "calibrate")


def test_calibrate_end_to_end(pretrained, true_npz, workdir, tmp_path):
    result = tmp_path / "result.json"
    argv = ["calibrate", "--simulator", "lines", "--emulator", str(pretrained[3]), "--true", str(true_npz),
            "-o", str(result), "--preset", str(workdir / "tiny.toml"), "--device", "cpu", "--quiet"]
    code, out, err = _run(*argv)
    assert code == 0, err
    doc = json.loads(result.read_text())
    assert doc["simulator"] == "lines" and doc["n_samples"] == 500
    assert doc["calibration"]["iterations"] == 20
    assert doc["true_data"]["true_parameters_known"] is True
    assert [row["name"] for row in doc["parameters"]] == ["m", "x0", "c", "x_steps"]
    csv_lines = (tmp_path / "result.samples.csv").read_text().splitlines()
    assert csv_lines[0] == "m,x0,c,x_steps" and len(csv_lines) == 501
    assert (tmp_path / "result.checkpoint.pt").exists()
    for name in ("m", "x0", "c", "x_steps"):
        assert name in out
    assert "result written to" in out
    # a second run refuses to overwrite the result
    code, _, err = _run(*argv)
    assert code == 2 and "already exists" in _assert_one_error_line(err, "calibrate")


# -- the module entry point -------------------------------------------------------------------------------
def test_module_help_exits_zero():
    proc = subprocess.run([sys.executable, "-m", "magan_gui.cli", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("simulate", "pretrain", "calibrate", "emulate", "example"):
        assert command in proc.stdout


# -- magan bench --------------------------------------------------------------------------------------
def test_bench_speed_writes_json_and_markdown_and_refuses_to_overwrite(tmp_path):
    code, out, _ = _run("bench", "speed", "--simulator", "circles", "--images", "400", "--reference", "20",
                        "--training-iterations", "12", "--device", "cpu", "--out", str(tmp_path))
    assert code == 0, out
    doc = json.loads((tmp_path / "speed.json").read_text())
    rows = doc["simulators"]["circles"]["rows"]
    assert [r["source"].split(" (")[0] for r in rows] == ["circles simulator", "emulator",
                                                          "circles per-image NumPy loop",
                                                          "circles per-pixel Python loop"]
    assert all(r["images_per_second"] > 0 for r in rows)
    assert doc["simulators"]["circles"]["trained_emulator"] is False
    assert doc["machine"]["device"] == "cpu"
    assert "| circles simulator (vectorised, cpu) | 400 |" in (tmp_path / "speed.md").read_text()
    stages = doc["simulators"]["circles"]["training"]["stages"]
    assert [(s["stage"], s["iterations"]) for s in stages] == [("pretraining", 12), ("calibration", 12)]
    assert all(s["iterations_per_second"] > 0 and s["seconds"] >= s["loop_seconds"] > 0 for s in stages)
    assert all(s["gpu_busy"] is None for s in stages)  # no GPU share on the CPU
    assert "| calibration |" in (tmp_path / "speed.md").read_text()
    code, _, err = _run("bench", "speed", "--simulator", "circles", "--images", "400", "--device", "cpu",
                        "--out", str(tmp_path))
    assert code == 2 and "already exists" in _assert_one_error_line(err, "bench")


def test_bench_accuracy_and_efficiency_run_a_profile_end_to_end(tmp_path, workdir):
    profile = str(workdir / "tiny.toml")
    code, out, _ = _run("bench", "accuracy", "--profile", profile, "--simulators", "lines", "--seeds", "2",
                        "--figures", "--check", "--device", "cpu", "--out", str(tmp_path))
    assert code == 1, out  # --check: a 30-iteration run cannot meet the accuracy targets
    doc = json.loads((tmp_path / "accuracy.json").read_text())
    assert [r["seed"] for r in doc["runs"]] == [0, 1]
    assert doc["summaries"][0]["simulator"] == "lines" and not doc["summaries"][0]["meets_targets"]
    assert (tmp_path / "fig4_lines_pretraining.png").is_file() and (tmp_path / "fig5_lines_calibration.png").is_file()
    assert "paper μ / σ" in (tmp_path / "accuracy.md").read_text()
    stages = doc["runs"][0]["stages"]
    assert [s["stage"] for s in stages] == ["true images", "pretraining", "calibration"]
    assert stages[1]["iterations"] == 30 and stages[2]["iterations_per_second"] > 0
    assert [s["stage"] for s in doc["summaries"][0]["stages"]] == ["true images", "pretraining", "calibration"]
    assert "iterations/s" in (tmp_path / "accuracy.md").read_text()

    code, out, _ = _run("bench", "efficiency", "--profile", profile, "--simulators", "lines", "--max-iterations",
                        "20", "--device", "cpu", "--out", str(tmp_path))
    assert code == 0, out
    result = json.loads((tmp_path / "efficiency.json").read_text())["results"][0]
    assert set(result["pretraining"]) == {"siamese", "pixel"}
    siamese = result["pretraining"]["siamese"]
    assert siamese["mode"] == "siamese" and siamese["iterations_run"] == 20 and siamese["steps"][-1] == 20
    assert siamese["iterations_to_target"] is None  # 20 iterations cannot reach MSE 0.001
    assert "not reached" in (tmp_path / "efficiency.md").read_text()


def test_bench_budget_splits_the_total_and_runs_an_ensemble_within_it(tmp_path, workdir):
    code, out, err = _run("bench", "budget", "--profile", str(workdir / "tiny.toml"), "--simulators", "lines",
                          "--totals", "3000", "--bank-share", "0.6", "--ensemble", "2", "--seeds", "1",
                          "--device", "cpu", "--out", str(tmp_path))
    assert code == 0, out + err
    run = json.loads((tmp_path / "budget.json").read_text())["runs"][0]
    assert (run["budget"], run["bank"], run["members"]) == (3000, 1800, 2)
    assert run["simulations"]["bank"] == 1800 and 0 < run["simulations"]["total"] <= 3000
    assert "| 3,000 | 1,800 + 1,200, ensemble of 2 |" in (tmp_path / "budget.md").read_text()


def test_bench_unknown_profile_is_one_line(tmp_path):
    code, _, err = _run("bench", "figures", "--profile", "nonsense", "--device", "cpu", "--out", str(tmp_path))
    assert code == 2 and "unknown preset" in _assert_one_error_line(err, "bench")


def test_bench_figures_refuses_to_replace_earlier_figures(tmp_path):
    (tmp_path / "fig4_lines_pretraining.png").write_bytes(b"earlier")
    code, _, err = _run("bench", "figures", "--simulators", "lines", "--device", "cpu", "--out", str(tmp_path))
    assert code == 2 and "already exists" in _assert_one_error_line(err, "bench")
    assert (tmp_path / "fig4_lines_pretraining.png").read_bytes() == b"earlier"


# -- example, plugin-template, and errors that are not the user's ------------------------------------------
def test_example_runs_the_whole_closure_test_with_few_iterations(workdir, tmp_path):
    code, out, _ = _run("example", "--preset", str(workdir / "tiny.toml"), "--iterations", "5", "--dir",
                        str(tmp_path), "--device", "cpu", "--quiet")
    assert code == 0, out
    assert "pretraining done: lines, mode pixel, 5 iterations" in out and "result written to" in out
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["calibration"]["iterations"] == 5 and result["true_data"]["n_images"] == 10000
    assert TrainedEmulator.load(tmp_path / "emulator.pt").meta["iteration"] == 5
    code, _, err = _run("example", "--dir", str(tmp_path), "--device", "cpu")
    assert code == 2 and "already exists" in _assert_one_error_line(err, "example")


def test_plugin_template_writes_a_plugin_that_loads(tmp_path):
    from magan_gui import load_simulator

    path = tmp_path / "my_sim.py"
    code, out, _ = _run("plugin-template", "-o", str(path))
    assert code == 0 and str(path) in out
    assert load_simulator(f"{path}:Blob").image_shape == (32, 32)
    code, _, err = _run("plugin-template", "-o", str(path))
    assert code == 2 and "already exists" in _assert_one_error_line(err, "plugin-template")


def test_an_internal_error_is_not_reported_as_bad_input(monkeypatch, tmp_path):
    import magan_gui.cli.runs as runs

    def bug(*args, **kwargs):
        raise ValueError("an engine bug")

    monkeypatch.setattr(runs, "make_closure_set", bug)
    with pytest.raises(ValueError, match="an engine bug"):   # not swallowed into one line: the traceback shows
        _run("simulate", "--simulator", "lines", "--mean", LINES_MEAN, "--std", LINES_STD, "-n", "5",
             "-o", str(tmp_path / "t.npz"), "--device", "cpu")


# -- magan bank, pretraining from it, and the count of simulations ------------------------------------------
def test_bank_then_pretrain_from_it_then_calibrate_counts_every_simulation(workdir, true_npz, tmp_path):
    bank = tmp_path / "bank.h5"
    code, out, _ = _run("bank", "--simulator", "lines", "-n", "300", "-o", str(bank), "--chunk-size", "100",
                        "--quiet", "--device", "cpu")
    assert code == 0 and "300 images made now" in out
    code, _, err = _run("bank", "--simulator", "lines", "-n", "300", "-o", str(bank), "--device", "cpu")
    assert code == 2 and "already exists" in _assert_one_error_line(err, "bank")
    emulator = tmp_path / "e.pt"
    code, out, _ = _run("pretrain", "--simulator", "lines", "--bank", str(bank), "-o", str(emulator), "--preset",
                        str(workdir / "tiny.toml"), "--quiet", "--device", "cpu")
    assert code == 0, out
    meta = TrainedEmulator.load(emulator).meta
    assert meta["simulations"]["fresh"] == 0 and meta["iteration"] == 40   # the preset's bank_iterations
    code, _, _ = _run("pretrain", "--simulator", "lines", "--bank", str(bank), "-o", str(tmp_path / "e12.pt"),
                      "--preset", str(workdir / "tiny.toml"), "--iterations", "12", "--quiet", "--device", "cpu")
    assert code == 0 and TrainedEmulator.load(tmp_path / "e12.pt").meta["iteration"] == 12   # the user's word wins
    result = tmp_path / "r.json"
    code, out, _ = _run("calibrate", "--simulator", "lines", "--emulator", str(emulator), "--true", str(true_npz),
                        "-o", str(result), "--preset", str(workdir / "tiny.toml"), "--quiet", "--device", "cpu")
    assert code == 0, out
    sims = json.loads(result.read_text())["simulations"]
    assert sims["bank"] == 300 and sims["pretraining"] == 0 and sims["calibration"] > 0
    assert sims["total"] == sims["bank"] + sims["calibration"] + sims["result_checks"]
    assert f"simulator images consumed: {sims['total']:,}" in out

    # under a budget: at most that many fresh images, the result's checks included
    code, out, _ = _run("calibrate", "--simulator", "lines", "--emulator", str(emulator), "--true", str(true_npz),
                        "-o", str(result), "--preset", str(workdir / "tiny.toml"), "--quiet", "--device", "cpu",
                        "--simulation-budget", "200", "--force")
    assert code == 0, out
    budgeted = json.loads(result.read_text())
    assert 0 < budgeted["simulations"]["calibration"] <= 200 and budgeted["simulations"]["result_checks"] == 0
    assert budgeted["calibration"]["config"]["simulation_budget"] == 200
    before = result.read_bytes()
    code, _, err = _run("calibrate", "--simulator", "lines", "--emulator", str(emulator), "--true", str(true_npz),
                        "-o", str(result), "--preset", str(workdir / "tiny.toml"), "--device", "cpu",
                        "--simulation-budget", "100", "--force")
    assert code == 2 and "below the 128 this calibration needs" in _assert_one_error_line(err, "calibrate")
    assert result.read_bytes() == before   # nothing overwritten


def test_pretraining_from_a_bank_of_another_simulator_or_a_broken_file_is_one_line(tmp_path):
    bank = tmp_path / "bank.h5"
    assert _run("bank", "--simulator", "lines", "-n", "40", "-o", str(bank), "--quiet", "--device", "cpu")[0] == 0
    code, _, err = _run("pretrain", "--simulator", "circles", "--bank", str(bank), "-o", str(tmp_path / "e.pt"),
                        "--device", "cpu")
    assert code == 2 and "not 'circles'" in _assert_one_error_line(err, "pretrain")
    broken = tmp_path / "broken.h5"
    broken.write_bytes(bank.read_bytes()[:3000])
    code, _, err = _run("pretrain", "--simulator", "lines", "--bank", str(broken), "-o", str(tmp_path / "e.pt"),
                        "--device", "cpu")
    assert code == 2 and "not a readable bank file" in _assert_one_error_line(err, "pretrain")
    assert not (tmp_path / "e.pt").exists()
    code, _, err = _run("bank", "--simulator", "circles", "-n", "40", "-o", str(bank), "--resume", "--device", "cpu")
    assert code == 2 and "not 'circles'" in _assert_one_error_line(err, "bank")


# -- divergence ---------------------------------------------------------------------------------------------
def test_a_diverging_pretraining_exits_3_and_leaves_the_old_emulator(pretrained, workdir, tmp_path):
    hot = tmp_path / "hot.toml"
    hot.write_text(TINY_PRESET + "\n[simulators.lines.pretrain]\nlr_emulator = 1e6\n")
    target = tmp_path / "emulator.pt"
    target.write_bytes(pretrained[3].read_bytes())
    code, out, err = _run("pretrain", "--simulator", "lines", "-o", str(target), "--iterations", "30",
                          "--batch-size", "16", "--preset", str(hot), "--device", "cpu", "--force", "--quiet")
    assert code == 3
    line = _assert_one_error_line(err, "pretrain")
    assert "diverged" in line and "no emulator was written" in line and "lr_emulator" in line
    assert target.read_bytes() == pretrained[3].read_bytes()


def test_a_diverging_calibration_exits_3_and_writes_no_result(pretrained, true_npz, workdir, tmp_path):
    hot = tmp_path / "hot.toml"
    hot.write_text(TINY_PRESET + "\n[simulators.lines.calibrate]\nlr_generator = 1e6\nlr_discriminator = 1e6\n")
    result = tmp_path / "result.json"
    code, out, err = _run("calibrate", "--simulator", "lines", "--emulator", str(pretrained[3]), "--true",
                          str(true_npz), "-o", str(result), "--preset", str(hot), "--device", "cpu", "--quiet")
    assert code == 3
    assert "diverged" in _assert_one_error_line(err, "calibrate")
    assert not result.exists() and not (tmp_path / "result.samples.csv").exists()
