"""Project files: a round trip keeps everything, and a file with code or of another kind is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from magan_gui.core.checkpoints import CheckpointError, payload_to_cpu, restore_rng, save_checkpoint
from magan_gui.core.pretraining import Pretrainer
from magan_gui.core.project import Project

from ..conftest import tiny_pretrain_config


def test_round_trip_keeps_images_emulator_result_and_histories(lines_true, tiny_emulator, tmp_path):
    samples = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    result = {"simulator": "lines", "parameters": [{"name": "m", "mean": 1.5}], "n_samples": 50}
    histories = {"pretrain": {"steps": [1, 2], "losses": {"pixel_mse": [0.5, 0.25]}, "metrics": [[2, {"x": 1.0}]]}}
    path = tmp_path / "run.magan"
    Project("lines", lines_true, tiny_emulator, result, samples, {"pretrain": {"iterations": 7}}, histories).save(path)

    back = Project.load(path)
    assert back.simulator_spec == "lines"
    np.testing.assert_array_equal(back.true.images, lines_true.images)
    np.testing.assert_array_equal(back.true.params, lines_true.params)
    assert back.true.sha256 == lines_true.sha256 and back.true.param_names == lines_true.param_names
    params = torch.tensor([[1.5, 10.0, 0.5, 9.0]])
    torch.testing.assert_close(back.emulator.simulate(params), tiny_emulator.simulate(params))
    assert back.result == result and back.settings == {"pretrain": {"iterations": 7}}
    assert back.histories == histories
    np.testing.assert_array_equal(back.samples, samples)


def test_a_project_with_only_a_simulator(tmp_path):
    path = tmp_path / "empty.magan"
    Project("circles").save(path)
    back = Project.load(path)
    assert back.simulator_spec == "circles" and back.true is None and back.emulator is None and back.result is None


class Payload:
    """Stands for code smuggled into a file: unpickling it would run arbitrary code."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_refuses_code_other_kinds_and_other_formats(tmp_path):
    evil = tmp_path / "evil.magan"
    torch.save({"kind": "project", "meta": Payload()}, evil)
    with pytest.raises(CheckpointError):
        Project.load(evil)
    emulator_file = tmp_path / "emulator.magan"
    save_checkpoint(emulator_file, {"kind": "emulator"})
    with pytest.raises(CheckpointError, match="expected a project"):
        Project.load(emulator_file)
    future = tmp_path / "future.magan"
    save_checkpoint(future, {"kind": "project", "meta": '{"format": "magan-project/99", "simulator_spec": "lines"}'})
    with pytest.raises(CheckpointError, match="unknown project format"):
        Project.load(future)


def test_training_state_round_trips_and_a_run_continues_from_it(lines, tmp_path):
    """A project keeps a stopped pretraining's state; a new trainer continues it to the same result."""
    config = tiny_pretrain_config(iterations=20, mode="pixel", eval_every=10)
    straight = Pretrainer(lines, config, "cpu")
    straight.run()
    first = Pretrainer(lines, config, "cpu")
    for _ in range(10):        # a run stopped half-way
        first.step()
    state = payload_to_cpu(first.checkpoint_payload())
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(state["emulator"].values(),
                                                            first.emulator.state_dict().values()))
    path = tmp_path / "stopped.magan"
    Project("lines", training_state={"pretrain": state}).save(path)

    second = Pretrainer(lines, config, "cpu")
    second.restore(Project.load(path).training_state["pretrain"], "the project")
    assert second.iteration == 10
    second.run()
    for a, b in zip(second.emulator.parameters(), straight.emulator.parameters()):
        torch.testing.assert_close(a, b)


def test_a_malformed_training_state_is_refused(tmp_path):
    path = tmp_path / "odd.magan"
    save_checkpoint(path, {"kind": "project", "meta": '{"format": "magan-project/1", "simulator_spec": "lines"}',
                           "training_state": {"elsewhere": {}}})
    with pytest.raises(CheckpointError, match="malformed training state"):
        Project.load(path)


def test_a_random_state_from_another_device_restarts_the_stream_from_the_seed():
    gen = torch.Generator()
    restore_rng(gen, torch.zeros(3, dtype=torch.uint8), fallback_seed=7)   # not a CPU generator's state
    assert torch.equal(torch.rand(4, generator=gen), torch.rand(4, generator=torch.Generator().manual_seed(7)))
