"""Project files: a round trip keeps everything, and a file with code or of another kind is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from magan_gui.core.checkpoints import CheckpointError, save_checkpoint
from magan_gui.core.project import Project


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
