"""Pretraining: fidelity improves, progress is complete, runs stop and resume, files load and export."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch

from magan_gui.core.checkpoints import CheckpointError, load_checkpoint
from magan_gui.core.emulator import TrainedEmulator
from magan_gui.core.errors import ConfigError
from magan_gui.core.networks import Emulator, NetworkSizes
from magan_gui.core.pretraining import PretrainConfig, Pretrainer, emulator_verdict, energy_scores, scale_views
from magan_gui.core.progress import PretrainSnapshot, RunControl
from magan_gui.core.simulators import load_simulator
from tests.conftest import tiny_pretrain_config

BLACK_BOX = """
import torch
from magan_gui import Parameter


class NoisySpot:
    \"\"\"A stochastic plugin that cannot share its random draws (no sample_noise).\"\"\"

    name = "noisy_spot"
    image_shape = (16, 16)
    parameters = [Parameter("x0", 4.0, 12.0), Parameter("n", 0.0, 0.3)]
    stochastic = True

    def simulate(self, params):
        xs = torch.arange(16, dtype=torch.float32).view(1, 1, 16)
        ys = torch.arange(16, dtype=torch.float32).view(1, 16, 1)
        x0, n = params[:, 0].view(-1, 1, 1), params[:, 1].view(-1, 1, 1)
        spot = torch.exp(-0.5 * ((xs - x0) ** 2 + (ys - 8.0) ** 2) / 4.0)
        return (0.7 * spot + n * torch.rand(params.shape[0], 16, 16)).clamp(0.0, 1.0)
"""


@pytest.fixture(scope="module")
def black_box(tmp_path_factory):
    path = tmp_path_factory.mktemp("plugin") / "noisy.py"
    path.write_text(textwrap.dedent(BLACK_BOX))
    return load_simulator(f"{path}:NoisySpot")


@pytest.fixture(scope="module")
def pixel_run(lines):
    """A 60-iteration pixel-mode run with every snapshot recorded."""
    trainer = Pretrainer(lines, tiny_pretrain_config(iterations=60, mode="pixel", eval_every=20,
                                                        snapshot_seconds=0.0), "cpu")
    initial = trainer.fidelity()
    snaps = []
    emulator = trainer.run(observer=snaps.append)
    return trainer, emulator, snaps, initial


def test_config_validation():
    for bad in (dict(mode="gan"), dict(iterations=0), dict(batch_size=0), dict(heldout=0),
                dict(eval_every=0), dict(lr_emulator=0.0), dict(width=-1.0)):
        with pytest.raises(ValueError):
            PretrainConfig(**bad).validate()
    PretrainConfig().validate()


def test_pixel_run_reduces_heldout_fidelity_mse(pixel_run):
    trainer, emulator, _, initial = pixel_run
    history = trainer.history
    assert history["fidelity_step"] == [20, 40, 60]
    assert history["fidelity_mse"][-1] < history["fidelity_mse"][0]
    assert history["fidelity_mse"][-1] < 0.9 * initial
    assert trainer.iteration == 60 and trainer.mode == "pixel"
    assert emulator.meta["fidelity_mse"] == pytest.approx(history["fidelity_mse"][-1])
    assert emulator.meta["iteration"] == 60
    assert np.all(np.diff(history["fidelity_time"]) >= 0)


def test_snapshots_carry_grids_and_every_loss_once(pixel_run):
    trainer, _, snaps, _ = pixel_run
    rows = trainer.config.grid_rows
    assert snaps, "no snapshot was sent"
    for s in snaps:
        assert isinstance(s, PretrainSnapshot) and s.stage == "pretrain" and s.iterations == 60
        for grid in (s.emulated, s.simulated):
            assert grid.shape == (rows, 28, 28) and grid.dtype == np.float32
            assert grid.min() >= 0.0 and grid.max() <= 1.0
        assert s.grid_params.shape == (rows, 4)
    assert snaps[-1].final and snaps[-1].iteration == 60
    assert sum(s.final for s in snaps) == 1
    steps = np.concatenate([s.loss_steps for s in snaps])
    np.testing.assert_array_equal(steps, np.arange(1, 61))
    losses = np.concatenate([s.losses.get("pixel_mse", np.zeros(0)) for s in snaps])
    assert losses.shape == (60,) and np.all(np.isfinite(losses))
    assert snaps[-1].fidelity_mse == trainer.history["fidelity_mse"][-1] and snaps[-1].fidelity_iteration == 60
    assert snaps[-1].metrics()["fidelity_mse"] == snaps[-1].fidelity_mse
    # the grid's simulated row is the simulator's image of the grid parameters
    grid_params = torch.from_numpy(snaps[-1].grid_params)
    np.testing.assert_allclose(snaps[-1].simulated, trainer.simulator.simulate(grid_params).numpy(),
                               atol=1e-5)


def test_siamese_mode_logs_adversarial_losses(lines):
    trainer = Pretrainer(lines, tiny_pretrain_config(iterations=8, mode="siamese", eval_every=4), "cpu")
    snaps = []
    trainer.run(observer=snaps.append)
    assert trainer.siamese is not None
    keys = set().union(*(s.losses for s in snaps))
    assert keys == {"siamese", "emulator_adv"}
    siamese = np.concatenate([s.losses["siamese"] for s in snaps if "siamese" in s.losses])
    adv = np.concatenate([s.losses["emulator_adv"] for s in snaps if "emulator_adv" in s.losses])
    assert siamese.shape == adv.shape == (8,)
    assert np.all(np.isfinite(siamese)) and np.all(np.isfinite(adv))


def test_siamese_plus_pixel_logs_all_losses(lines):
    trainer = Pretrainer(lines, tiny_pretrain_config(iterations=3, mode="siamese+pixel"), "cpu")
    losses = trainer.step()
    assert set(losses) == {"siamese", "emulator_adv", "pixel_mse"}


def test_auto_mode_is_pixel_for_deterministic_and_shared_noise(lines, circles):
    assert Pretrainer(lines, tiny_pretrain_config(iterations=1)).mode == "pixel"
    trainer = Pretrainer(circles, tiny_pretrain_config(iterations=1))
    assert trainer.mode == "pixel" and trainer.common_noise
    assert trainer.emulator.noise_image and trainer.emulator.latent_dim == 0


def test_stop_from_observer_ends_early(lines):
    control = RunControl()
    snaps = []

    def observer(snap):
        snaps.append(snap)
        if snap.iteration >= 5:
            control.stop()

    trainer = Pretrainer(lines, tiny_pretrain_config(iterations=50, snapshot_seconds=0.0), "cpu")
    emulator = trainer.run(observer=observer, control=control)
    assert trainer.iteration == 5
    assert emulator.meta["iteration"] == 5
    assert snaps[-1].final and snaps[-1].iteration == 5
    np.testing.assert_array_equal(np.concatenate([s.loss_steps for s in snaps]), np.arange(1, 6))
    assert trainer.history["fidelity_step"][-1] == 5


def test_resume_continues_from_checkpoint(lines, tmp_path):
    path = tmp_path / "emulator.pt"
    first = Pretrainer(lines, tiny_pretrain_config(iterations=40), "cpu")
    first.run(checkpoint_path=path)
    assert load_checkpoint(path, "emulator")
    assert json.loads(load_checkpoint(path, "emulator")["meta"])["iteration"] == 40

    second = Pretrainer(lines, tiny_pretrain_config(iterations=60), "cpu")
    second.resume_from(path)
    assert second.iteration == 40
    assert second.history["fidelity_step"] == first.history["fidelity_step"]
    for a, b in zip(first.emulator.state_dict().values(), second.emulator.state_dict().values()):
        assert torch.equal(a, b)
    snaps = []
    second.run(observer=snaps.append, checkpoint_path=path)
    assert second.iteration == 60
    np.testing.assert_array_equal(np.concatenate([s.loss_steps for s in snaps]), np.arange(41, 61))
    assert second.history["fidelity_step"] == [20, 40, 60]
    assert second.wall_time >= first.wall_time
    assert json.loads(load_checkpoint(path, "emulator")["meta"])["iteration"] == 60


def test_resume_refuses_other_simulator(lines, circles, tmp_path):
    path = tmp_path / "lines.pt"
    Pretrainer(lines, tiny_pretrain_config(iterations=2), "cpu").run(checkpoint_path=path)
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        Pretrainer(circles, tiny_pretrain_config(iterations=4), "cpu").resume_from(path)
    with pytest.raises(CheckpointError, match="mode 'pixel'"):
        Pretrainer(lines, tiny_pretrain_config(iterations=4, mode="siamese"), "cpu").resume_from(path)
    with pytest.raises(CheckpointError, match="no such file"):
        Pretrainer(lines, tiny_pretrain_config(iterations=4), "cpu").resume_from(tmp_path / "missing.pt")


@pytest.mark.parametrize("mode", ["auto", "siamese"])
def test_black_box_stochastic_plugin_gets_a_latent(black_box, mode):
    trainer = Pretrainer(black_box, tiny_pretrain_config(iterations=3, eval_every=3, heldout=16, mode=mode), "cpu")
    assert trainer.mode == ("energy" if mode == "auto" else "siamese")
    assert not trainer.common_noise
    assert trainer.emulator.latent_dim > 0 and not trainer.emulator.noise_image
    # the energy mode adds a per-pixel latent field; the file remembers it
    assert trainer.emulator.latent_field == (mode == "auto")
    emulator = trainer.run()
    assert emulator.stochastic
    images = emulator.simulate(torch.tensor([[8.0, 0.1], [6.0, 0.2]]))
    assert images.shape == (2, 16, 16)
    # the latent makes the emulator stochastic too
    assert not torch.equal(images, emulator.simulate(torch.tensor([[8.0, 0.1], [6.0, 0.2]])))
    reloaded = TrainedEmulator.from_payload(emulator.payload())
    assert reloaded.net.latent_dim == emulator.net.latent_dim and reloaded.net.latent_field == emulator.net.latent_field


def test_multi_scale_score_tells_shared_fluctuations_from_pixel_noise():
    # Observations: a fixed image plus independent pixel noise.  Two models with exactly the same
    # per-pixel distribution: independent pixel noise (right) or one shift shared by all pixels
    # (wrong).  Per pixel they cannot be told apart; the block and total terms must prefer the first.
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(1, 1, 20, 48, generator=gen) - 0.5

    def pixel_noise(n: int) -> torch.Tensor:
        return base + 0.1 * torch.randn(n, 1, 20, 48, generator=gen)

    def shared_shift(n: int) -> torch.Tensor:
        return base + 0.1 * torch.randn(n, 1, 1, 1, generator=gen)

    observed = pixel_noise(512)
    right = energy_scores(pixel_noise(512), pixel_noise(512), observed)[1].mean()
    wrong = energy_scores(shared_shift(512), shared_shift(512), observed)[1].mean()
    assert wrong > 1.5 * right
    # every scale keeps independent noise at the pixels' size: the views are sums over sqrt(count)
    sizes = [float(v.std()) for v in scale_views(0.1 * torch.randn(256, 1, 20, 48, generator=gen))]
    assert len(sizes) == 7 and all(0.08 < s < 0.12 for s in sizes)


def test_latent_vector_starts_without_effect_beside_a_pixel_field():
    torch.manual_seed(0)
    net = Emulator(2, (16, 16), NetworkSizes.for_image((16, 16)), latent_dim=8, latent_field=True)
    params, field = torch.zeros(3, 2), torch.randn(3, 256)
    first = net(params, None, torch.cat([torch.randn(3, 8), field], 1))
    second = net(params, None, torch.cat([torch.randn(3, 8), field], 1))
    assert torch.equal(first, second)
    # ... but it can learn an effect: its weights get gradients
    net(params, None, torch.cat([torch.randn(3, 8), field], 1)).pow(2).sum().backward()
    assert net.fc[0].weight.grad[:, 2:].abs().sum() > 0


def test_the_energy_mode_is_for_black_boxes_only(lines):
    with pytest.raises(ConfigError, match="use --mode pixel"):
        Pretrainer(lines, tiny_pretrain_config(iterations=3, mode="energy"), "cpu")


def test_black_box_stochastic_plugin_refuses_pixel_mode(black_box):
    with pytest.raises(ValueError, match="cannot share its random draws"):
        Pretrainer(black_box, tiny_pretrain_config(iterations=3, mode="pixel"), "cpu")


def test_trained_emulator_load_simulates(lines, tiny_emulator_path):
    emulator = TrainedEmulator.load(tiny_emulator_path)
    assert emulator.image_shape == (28, 28)
    assert [p.name for p in emulator.parameters] == [p.name for p in lines.parameters]
    assert emulator.meta["simulator"] == "lines" and emulator.meta["mode"] == "pixel"
    assert not emulator.stochastic
    params = torch.tensor([[1.5, 10.0, 0.5, 9.0], [1.0, 8.0, 0.3, 8.0], [2.0, 12.0, 0.9, 7.0]])
    images = emulator.simulate(params)
    assert images.shape == (3, 28, 28)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    # deterministic, and it learned something of the simulator: closer than a blank image
    assert torch.equal(images, emulator.simulate(params))
    truth = lines.simulate(params)
    assert float(((images - truth) ** 2).mean()) < float((truth**2).mean())


def test_trained_emulator_load_refuses_other_kinds(tmp_path):
    from magan_gui.core.checkpoints import save_checkpoint

    path = tmp_path / "cal.pt"
    save_checkpoint(path, {"kind": "calibration"})
    with pytest.raises(CheckpointError, match="expected a emulator file"):
        TrainedEmulator.load(path)
    save_checkpoint(path, {"kind": "emulator", "meta": "{}"})
    with pytest.raises(CheckpointError, match="incomplete"):
        TrainedEmulator.load(path)


def test_export_program_runs_on_physical_params(tiny_emulator, tmp_path):
    path = tmp_path / "emulator.pt2"
    tiny_emulator.export_program(path)
    extra = {"meta.json": ""}
    module = torch.export.load(str(path), extra_files=extra).module()
    meta = json.loads(extra["meta.json"])
    assert meta["inputs"] == ["params"] and [p["name"] for p in meta["parameters"]] == ["m", "x0", "c", "x_steps"]
    params = torch.tensor([[1.5, 10.0, 0.5, 9.0], [1.0, 8.0, 0.3, 8.0], [2.0, 12.0, 0.9, 7.0]])
    with torch.no_grad():
        out = module(params)
    assert out.shape == (3, 28, 28)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    torch.testing.assert_close(out, tiny_emulator.simulate(params), atol=1e-5, rtol=1e-4)


def test_export_program_with_shared_noise(circles, tmp_path):
    trainer = Pretrainer(circles, tiny_pretrain_config(iterations=2, heldout=16), "cpu")
    emulator = trainer.run()
    path = tmp_path / "circles.pt2"
    emulator.export_program(path)
    module = torch.export.load(str(path)).module()
    params = torch.tensor([[18.0, 18.0, 8.0, 0.15, 0.9]] * 2)
    noise = torch.rand(2, 28, 28)
    with torch.no_grad():
        out = module(params, noise)
    assert out.shape == (2, 28, 28)
    torch.testing.assert_close(out, emulator.simulate(params, noise=noise), atol=1e-5, rtol=1e-4)


def test_a_seed_that_used_to_saturate_the_output_keeps_learning(lines):
    """Seed 3 once threw the emulator's tanh into saturation within 20 steps (MSE stuck at 0.096).

    The penalty on saturated pre-tanh outputs keeps it learning: after 150 steps it is well below.
    """
    trainer = Pretrainer(lines, PretrainConfig(iterations=2000, batch_size=64, seed=3), "cpu")
    for _ in range(150):
        trainer.step()
    assert trainer.fidelity() < 0.07


def test_the_emulator_is_judged_against_a_parameter_blind_guess(pixel_run, black_box):
    trainer, emulator, _, _ = pixel_run
    held = trainer.heldout_images                       # the mean held-out image's score, on the same images
    assert emulator.meta["reference_score"] == pytest.approx(float(held.var(dim=0, unbiased=False).mean()), rel=1e-5)
    verdict, sentence = emulator_verdict(emulator.meta)
    ratio = emulator.meta["fidelity_mse"] / emulator.meta["reference_score"]
    assert verdict == ("good" if ratio <= 0.03 else "rough" if ratio <= 0.1 else "poor")
    assert f"{100 * ratio:.1f}% of a parameter-blind guess's" in sentence
    untrained = Pretrainer(black_box, tiny_pretrain_config(iterations=1, eval_every=1, heldout=32), "cpu").run()
    assert untrained.meta["fidelity_metric"] == "multi-scale CRPS" and untrained.meta["reference_score"] > 0
    assert emulator_verdict(untrained.meta)[0] == "poor"               # one iteration has learnt nothing
    # the limits as measured: lines' good emulators 0.2-0.7%, the 160-iteration one of a first session 47%
    assert emulator_verdict({"fidelity_mse": 0.00054, "reference_score": 0.076})[0] == "good"
    assert emulator_verdict({"fidelity_mse": 0.0022, "reference_score": 0.076})[0] == "good"   # 2.9%: met the bars
    assert emulator_verdict({"fidelity_mse": 0.0040, "reference_score": 0.076})[0] == "rough"
    assert emulator_verdict({"fidelity_mse": 0.0356, "reference_score": 0.076})[0] == "poor"
    assert emulator_verdict({"fidelity_mse": 0.001})[0] == "unknown"  # a file from before the reference
