"""The simulation bank: a fixed design, chunks committed as they finish, resumption, refusals, and
pretraining from it without a single fresh simulation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import h5py
import numpy as np
import pytest
import torch

from magan_gui.core import workflow
from magan_gui.core.bank import BankError, BankSnapshot, build_bank, check_bank, design, load_bank
from magan_gui.core.errors import ConfigError
from magan_gui.core.pretraining import Pretrainer
from magan_gui.core.progress import RunControl
from magan_gui.core.simulators import load_simulator
from tests.conftest import REPO_ROOT, tiny_pretrain_config

SLOW_PLUGIN = REPO_ROOT / "scripts" / "slow_plugin.py"


def _images(path) -> np.ndarray:
    with h5py.File(path, "r") as fh:
        return fh["images"][()]


def test_a_bank_is_a_space_filling_design_simulated_once(lines, tmp_path):
    path = tmp_path / "bank.h5"
    seen: list[BankSnapshot] = []
    summary = build_bank(lines, path, 100, seed=3, chunk_size=32, observer=seen.append, snapshot_seconds=0.0)
    assert not summary.stopped and summary.made_now == 100 and summary.chunks == 4
    bank = load_bank(path, lines)
    assert bank.params.shape == (100, 4) and bank.images.shape == (100, 28, 28) and bank.noise is None
    low, high = lines.space.low.numpy(), lines.space.high.numpy()
    assert np.all(bank.params >= low) and np.all(bank.params <= high)
    np.testing.assert_allclose(bank.params, design(lines, 100, 3), rtol=1e-6)
    # every image is the simulator's image of its parameters, and no two are alike
    np.testing.assert_allclose(bank.images[:5], lines.simulate(torch.from_numpy(bank.params[:5])).numpy(), atol=1e-6)
    assert len(np.unique(bank.images.reshape(100, -1), axis=0)) == 100
    assert [s.iteration for s in seen] == [32, 64, 96, 100] and seen[-1].final and seen[-1].stage == "bank"


def test_a_noise_sharing_simulator_banks_its_noise_and_a_black_box_one_does_not(circles, tmp_path):
    build_bank(circles, tmp_path / "c.h5", 40, chunk_size=16)
    shared = load_bank(tmp_path / "c.h5", circles)
    assert shared.noise.shape == (40, 28, 28)
    params = torch.from_numpy(shared.params[:3])
    np.testing.assert_allclose(shared.images[:3], circles.simulate(params, torch.from_numpy(shared.noise[:3])).numpy(),
                               atol=1e-6)
    black_box = load_simulator("blackbox:circles")
    assert black_box.stochastic and not black_box.shares_noise and black_box.sample_noise(2) is None
    build_bank(black_box, tmp_path / "b.h5", 40, chunk_size=16)
    assert load_bank(tmp_path / "b.h5", black_box).noise is None
    with pytest.raises(BankError, match="shared noise"):
        load_bank(tmp_path / "b.h5", circles)


def test_a_stopped_bank_resumes_without_redoing_or_losing_a_chunk(lines, tmp_path):
    whole = tmp_path / "whole.h5"
    build_bank(lines, whole, 90, seed=1, chunk_size=20)
    path = tmp_path / "part.h5"
    control = RunControl()
    stopped = build_bank(lines, path, 90, seed=1, chunk_size=20, control=control, snapshot_seconds=0.0,
                         observer=lambda snap: control.stop())
    assert stopped.stopped and stopped.made_now == 20
    with pytest.raises(BankError, match="only 1 of 5 chunks are done"):
        load_bank(path, lines)
    rest = build_bank(lines, path, 5, resume=True)          # n and seed come from the file
    assert rest.made_now == 70 and not rest.stopped
    np.testing.assert_array_equal(_images(path), _images(whole))


def test_two_worker_processes_make_the_same_bank(tmp_path, monkeypatch):
    monkeypatch.setenv("MAGAN_SLOW_SECONDS", "0")   # the spawned workers inherit it
    simulator = load_simulator(f"{SLOW_PLUGIN}:SlowBlob")
    build_bank(simulator, tmp_path / "one.h5", 60, chunk_size=16)
    summary = build_bank(simulator, tmp_path / "two.h5", 60, chunk_size=16, workers=2)
    assert summary.workers == 2 and summary.made_now == 60
    np.testing.assert_array_equal(_images(tmp_path / "one.h5"), _images(tmp_path / "two.h5"))


def test_a_bank_killed_mid_run_resumes_to_exactly_its_images(tmp_path, monkeypatch):
    path = tmp_path / "killed.h5"
    command = [sys.executable, "-m", "magan_gui.cli", "bank", "--simulator", f"{SLOW_PLUGIN}:SlowBlob", "-n", "96",
               "--chunk-size", "16", "-o", str(path), "--quiet", "--device", "cpu"]
    env = dict(os.environ, MAGAN_SLOW_SECONDS="0.02")
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:  # a look while the bank is written: without the lock, which would make the writer wait
            with h5py.File(path, "r", locking=False) as fh:
                if fh["chunk_done"][()].sum() >= 2:
                    break
        except (OSError, KeyError):
            continue
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with h5py.File(path, "r") as fh:
        done = int(fh["chunk_done"][()].sum())
    assert 1 <= done < 6       # killed mid-run (a look at a file being written may run a flag ahead)
    resumed = subprocess.run(command + ["--resume"], cwd=REPO_ROOT, env=dict(env, MAGAN_SLOW_SECONDS="0"),
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    images = _images(path)
    assert len(np.unique(images.reshape(96, -1), axis=0)) == 96
    simulator = load_simulator(f"{SLOW_PLUGIN}:SlowBlob")
    with h5py.File(path, "r") as fh:
        params = fh["params"][()]
    monkeypatch.setenv("MAGAN_SLOW_SECONDS", "0")
    np.testing.assert_allclose(images, simulator.simulate(torch.from_numpy(params)).numpy(), atol=1e-6)


def _plugin_with_ranges(tmp_path, high: float, shape: tuple[int, int] = (16, 16)):
    path = tmp_path / f"plugin_{high}_{shape[1]}.py"
    path.write_text(textwrap.dedent(f"""
        import torch
        from magan_gui import Parameter

        class Sim:
            name = "ranged"
            image_shape = {shape}
            parameters = [Parameter("a", 0.0, {high})]

            def simulate(self, params):
                return torch.ones(params.shape[0], *self.image_shape) * params[:, :1, None] / {high}
    """))
    return load_simulator(f"{path}:Sim")


def test_a_bank_of_another_simulator_or_other_ranges_or_shape_is_refused(lines, circles, tmp_path):
    build_bank(lines, tmp_path / "lines.h5", 30, chunk_size=16)
    with pytest.raises(BankError, match="a bank of simulator 'lines', not 'circles'"):
        check_bank(tmp_path / "lines.h5", circles)
    build_bank(_plugin_with_ranges(tmp_path, 1.0), tmp_path / "ranged.h5", 30, chunk_size=16)
    with pytest.raises(BankError, match="other parameters or ranges"):
        check_bank(tmp_path / "ranged.h5", _plugin_with_ranges(tmp_path, 2.0))
    with pytest.raises(BankError, match="holds 16x16 images, the simulator makes 16x24"):
        check_bank(tmp_path / "ranged.h5", _plugin_with_ranges(tmp_path, 1.0, (16, 24)))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes((tmp_path / "lines.h5").read_bytes()[:4000])
    with pytest.raises(BankError, match="not a readable bank file"):
        check_bank(truncated, lines)
    with pytest.raises(BankError, match="no such bank file"):
        check_bank(tmp_path / "missing.h5", lines)


def test_pretraining_from_a_bank_makes_no_simulation(tmp_path):
    lines = load_simulator("lines")
    build_bank(lines, tmp_path / "bank.h5", 400, chunk_size=128)
    bank = load_bank(tmp_path / "bank.h5", lines)
    made = lines.images_made
    trainer = Pretrainer(lines, tiny_pretrain_config(iterations=60, mode="pixel", heldout=64), "cpu", bank)
    before = trainer.fidelity()
    emulator = trainer.run()
    assert lines.images_made == made, "pretraining from a bank must not call the simulator"
    assert emulator.meta["simulations"] == {"fresh": 0, "bank": 400, "bank_path": str(tmp_path / "bank.h5")}
    assert trainer.fidelity() < 0.5 * before
    assert len(trainer.heldout_images) == 40 and len(trainer.train_rows) == 360   # a tenth held out


def test_a_bank_pretraining_trains_the_best_of_several_initialisations(tmp_path):
    lines = load_simulator("lines")
    build_bank(lines, tmp_path / "bank.h5", 300, chunk_size=128)
    config = tiny_pretrain_config(iterations=30, mode="pixel", heldout=64, bank_starts=3, start_iterations=15)
    result = workflow.pretrain(lines, config, "cpu", bank=tmp_path / "bank.h5", checkpoint_path=tmp_path / "e.pt")
    meta = result.emulator.meta
    scores = meta["start_scores"]
    assert len(scores) == 3 and len(set(scores)) == 3   # three different starts, each scored
    chosen = meta["config"]["start"]
    assert scores[chosen] == min(scores)
    # the run is the one begun from that initialisation: after the trial's iterations it scores the same
    again = Pretrainer(lines, replace(config, start=chosen), "cpu", load_bank(tmp_path / "bank.h5", lines))
    for _ in range(15):
        again.step()
    assert again.fidelity() == pytest.approx(scores[chosen], rel=1e-5)
    # a continued run keeps saying which initialisation it came from
    resumed = workflow.pretrain(lines, replace(config, iterations=40), "cpu", bank=tmp_path / "bank.h5",
                                resume=tmp_path / "e.pt")
    assert resumed.emulator.meta["config"]["start"] == chosen and resumed.emulator.meta["start_scores"] == scores


def test_a_black_box_bank_pretraining_tries_no_other_initialisation(tmp_path):
    black_box = load_simulator("blackbox:circles")
    build_bank(black_box, tmp_path / "b.h5", 200, chunk_size=100)
    config = tiny_pretrain_config(iterations=3, bank_starts=4, start_iterations=5)
    result = workflow.pretrain(black_box, config, "cpu", bank=tmp_path / "b.h5")
    assert result.mode == "energy" and result.emulator.meta["start_scores"] == []
    assert result.emulator.meta["config"]["start"] == 0


def test_a_fresh_pretraining_counts_what_it_simulated(lines):
    trainer = Pretrainer(lines, tiny_pretrain_config(iterations=5, batch_size=8, heldout=32), "cpu")
    trainer.run()
    assert trainer.trained_emulator().meta["simulations"]["fresh"] == 32 + 5 * 8


def test_a_black_box_stochastic_simulator_learns_its_randomness_from_a_bank(tmp_path):
    black_box = load_simulator("blackbox:circles")
    build_bank(black_box, tmp_path / "b.h5", 200, chunk_size=50)
    bank = load_bank(tmp_path / "b.h5", black_box)
    made = black_box.images_made
    trainer = Pretrainer(black_box, tiny_pretrain_config(iterations=30, eval_every=10), "cpu", bank)
    assert trainer.mode == "energy" and trainer.emulator.latent_field
    before = trainer.fidelity()
    emulator = trainer.run()
    assert black_box.images_made == made, "pretraining from a bank must not call the simulator"
    assert emulator.meta["fidelity_metric"] == "multi-scale CRPS" and emulator.meta["simulations"]["fresh"] == 0
    assert trainer.fidelity() < before
    # two draws at the same parameters differ pixel by pixel, as the simulator's white noise does
    params = torch.tensor([[18.0, 18.0, 8.0, 0.15, 0.9]] * 2)
    a, b = emulator.simulate(params), emulator.simulate(params)
    assert (a - b).abs().mean() > 1e-3
    with pytest.raises(ConfigError, match="which a bank does not hold"):
        Pretrainer(black_box, tiny_pretrain_config(iterations=5, mode="siamese"), "cpu", bank)
