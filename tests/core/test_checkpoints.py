"""Checkpoint files: atomic writes and safe, kind-checked reads."""

from __future__ import annotations

import os

import pytest
import torch

from magan_gui.core import checkpoints
from magan_gui.core.checkpoints import CheckpointError, load_checkpoint, save_checkpoint


def _payload(value: float = 1.0) -> dict:
    return {"kind": "emulator", "meta": '{"a": 1}', "weights": {"w": torch.full((3, 2), value)},
            "history": [1, 2.5, "x"], "rng": torch.Generator().manual_seed(0).get_state()}


def test_round_trip(tmp_path):
    path = tmp_path / "sub" / "model.pt"  # the folder is created
    save_checkpoint(path, _payload(2.0))
    loaded = load_checkpoint(path, "emulator")
    assert loaded["kind"] == "emulator" and loaded["meta"] == '{"a": 1}'
    assert torch.equal(loaded["weights"]["w"], torch.full((3, 2), 2.0))
    assert loaded["history"] == [1, 2.5, "x"]
    assert sorted(os.listdir(path.parent)) == ["model.pt"]


def test_overwrite_replaces_content(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, _payload(1.0))
    save_checkpoint(path, _payload(3.0))
    assert torch.equal(load_checkpoint(path, "emulator")["weights"]["w"], torch.full((3, 2), 3.0))
    assert os.listdir(tmp_path) == ["model.pt"]


def test_crash_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_checkpoint(path, _payload(1.0))
    before = path.read_bytes()

    def crashing_save(obj, fh, *args, **kwargs):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _payload(9.0))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert torch.equal(load_checkpoint(path, "emulator")["weights"]["w"], torch.full((3, 2), 1.0))
    assert os.listdir(tmp_path) == ["model.pt"]  # no temporary file left behind


def test_keyboard_interrupt_mid_write_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"

    def interrupted(obj, fh, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, _payload())
    assert os.listdir(tmp_path) == []


class Arbitrary:
    """A class the safe loader must refuse to rebuild."""

    def __init__(self):
        self.value = 42


class Exploit:
    """Unpickling this would create a file if code from the checkpoint were executed."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_refuses_pickled_arbitrary_object(tmp_path):
    path = tmp_path / "object.pt"
    torch.save(Arbitrary(), path)
    with pytest.raises(CheckpointError, match="not a readable magan checkpoint"):
        load_checkpoint(path, "emulator")


def test_refuses_arbitrary_object_inside_a_valid_looking_dict(tmp_path):
    path = tmp_path / "inner.pt"
    torch.save({"kind": "emulator", "thing": Arbitrary()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path, "emulator")


def test_never_executes_code_from_the_file(tmp_path):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "exploit.pt"
    torch.save({"kind": "emulator", "x": Exploit(target)}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path, "emulator")
    assert not target.exists()


def test_refuses_wrong_kind(tmp_path):
    path = tmp_path / "cal.pt"
    save_checkpoint(path, {"kind": "calibration"})
    with pytest.raises(CheckpointError, match="expected a emulator file, found 'calibration'"):
        load_checkpoint(path, "emulator")
    assert load_checkpoint(path, "calibration") == {"kind": "calibration"}


@pytest.mark.parametrize("payload", [[1, 2, 3], {"no_kind": 1}, torch.zeros(2)])
def test_refuses_payload_that_is_not_a_kinded_dict(tmp_path, payload):
    path = tmp_path / "odd.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="expected a emulator file"):
        load_checkpoint(path, "emulator")


def test_refuses_random_bytes(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a readable magan checkpoint"):
        load_checkpoint(path, "emulator")


def test_refuses_empty_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError):
        load_checkpoint(path, "emulator")


def test_refuses_missing_path_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt", "emulator")
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path, "emulator")


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)
