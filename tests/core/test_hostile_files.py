"""Files that are not what they claim: each is refused with one line (a MaganError), no code runs,
nothing hangs, nothing asks for memory it should not.  True-image loaders are fuzzed with random and
mutated inputs; checkpoints, emulators and projects are given absurd shapes, wrong types and missing keys."""

from __future__ import annotations

import collections
import io
import json
import pickle
import zipfile

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from magan_gui.core import workflow
from magan_gui.core.calibration import CalibrationConfig, Calibrator
from magan_gui.core.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from magan_gui.core.data import DataError, TrueImages, load_true_images
from magan_gui.core.emulator import TrainedEmulator
from magan_gui.core.errors import MaganError
from magan_gui.core.project import Project

SHAPE = (28, 28)
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_file(folder, kind: str):
    """A small valid true-image file (or folder) of each accepted kind."""
    images = np.random.default_rng(0).random((3, *SHAPE)).astype(np.float32)
    if kind == "npy":
        path = folder / "images.npy"
        np.save(path, images)
    elif kind == "npz":
        path = folder / "images.npz"
        np.savez_compressed(path, images=images, params=np.zeros((3, 2)), param_names=np.array(["a", "b"]))
    elif kind == "h5":
        path = folder / "images.h5"
        with h5py.File(path, "w") as fh:
            fh["images"] = images
    else:
        path = folder / "pngs"
        path.mkdir()
        for i, image in enumerate(images):
            Image.fromarray((image * 255).astype(np.uint8)).save(path / f"{i}.png")
    return path


def _load_or_refuse(path) -> None:
    """The property every loader keeps: a checked result, or one line of MaganError, nothing else."""
    try:
        true = load_true_images(path, SHAPE, ["a", "b"])
    except MaganError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return
    assert isinstance(true, TrueImages) and true.images.dtype == np.float32 and true.shape == SHAPE
    assert np.isfinite(true.images).all() and true.images.min() >= 0 and true.images.max() <= 1


@FUZZ
@given(kind=st.sampled_from(["npy", "npz", "h5"]), data=st.binary(max_size=4096))
def test_random_bytes_are_refused(tmp_path_factory, kind, data):
    path = tmp_path_factory.mktemp("random") / f"images.{kind}"
    path.write_bytes(data)
    _load_or_refuse(path)


@FUZZ
@given(kind=st.sampled_from(["npy", "npz", "h5", "png"]), cuts=st.lists(
    st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255), st.sampled_from(["flip", "cut", "insert"])),
    min_size=1, max_size=4))
def test_mutated_valid_files_load_checked_or_are_refused(tmp_path_factory, kind, cuts):
    path = _valid_file(tmp_path_factory.mktemp("mutated"), kind)
    target = next(path.iterdir()) if path.is_dir() else path
    data = bytearray(target.read_bytes())
    for where, value, how in cuts:
        i = int(where * len(data))
        if how == "flip":
            data[i] = value
        elif how == "cut":
            del data[i:]
        else:
            data[i:i] = bytes([value]) * 16
        if not data:
            break
    target.write_bytes(bytes(data))
    _load_or_refuse(path)


def test_declared_sizes_beyond_memory_are_refused_before_reading(tmp_path):
    # a compressed .npz whose header declares 4 TB, and a sparse HDF5 dataset of the same size
    npz = tmp_path / "bomb.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**9, 32, 32)})
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images.npy", header.getvalue() + b"\0" * 4096)
    with pytest.raises(DataError, match=r"declares \(1000000000, 32, 32\) values .* more than half"):
        load_true_images(npz)
    h5 = tmp_path / "sparse.h5"
    with h5py.File(h5, "w") as fh:
        fh.create_dataset("images", shape=(10**9, 32, 32), dtype="f4", chunks=(1, 32, 32))
    assert h5.stat().st_size < 100_000
    with pytest.raises(DataError, match="declares"):
        load_true_images(h5)


def test_a_checkpoint_that_asks_for_terabytes_is_refused_at_once(tmp_path):
    class Storage:
        pass

    class Tensor:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2,
                    (Storage(), 0, (10**6, 10**6), (10**6, 1), False, collections.OrderedDict()))

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 10**12) if isinstance(obj, Storage) else None

    pickled = io.BytesIO()
    Writer(pickled, protocol=2).dump({"kind": "emulator", "meta": "{}", "emulator": {"w": Tensor()}})
    path = tmp_path / "huge.pt"
    with zipfile.ZipFile(path, "w") as archive:  # torch's own archive layout, 40 bytes of data
        archive.writestr("archive/data.pkl", pickled.getvalue())
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", b"\0" * 40)
        archive.writestr("archive/version", "3\n")
    with pytest.raises(CheckpointError, match="not a readable magan checkpoint"):
        load_checkpoint(path, "emulator")


def _emulator_payload(tiny_emulator_path):
    return load_checkpoint(tiny_emulator_path, "emulator")


@pytest.mark.parametrize("spoil, message", [
    (lambda p: p.pop("meta"), "incomplete"),
    (lambda p: p.__setitem__("meta", "{not json"), "incomplete"),
    (lambda p: p.__setitem__("meta", json.dumps({**json.loads(p["meta"]), "image_shape": "abc"})), "incomplete"),
    (lambda p: p["emulator"].__setitem__(next(iter(p["emulator"])), torch.zeros(3, dtype=torch.int64)),
     "not floating-point"),
    (lambda p: p["emulator"].__setitem__(next(iter(p["emulator"])), torch.zeros(7, 7)), "incomplete"),
    (lambda p: p.__setitem__("emulator", [1, 2]), "incomplete"),
])
def test_broken_emulator_files_are_refused(tiny_emulator_path, tmp_path, spoil, message):
    payload = _emulator_payload(tiny_emulator_path)
    spoil(payload)
    path = tmp_path / "broken.pt"
    save_checkpoint(path, payload)
    with pytest.raises(CheckpointError, match=message) as info:
        TrainedEmulator.load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("spoil", [
    lambda p: p.pop("generator"),
    lambda p: p.__setitem__("meta", json.dumps({k: v for k, v in json.loads(p["meta"]).items() if k != "iteration"})),
    lambda p: p.__setitem__("candidate_generators", 5),
    lambda p: p.__setitem__("history", "[]"),
])
def test_broken_calibration_checkpoints_are_refused_on_resume(lines, lines_true, tiny_emulator, tmp_path, spoil):
    config = CalibrationConfig(iterations=4, batch_size=8, eval_every=2, eval_samples=32, n_samples=50,
                               snapshot_seconds=1e9, checkpoint_seconds=1e9)
    path = tmp_path / "run.pt"
    Calibrator(lines, tiny_emulator, lines_true, config, "cpu").run(checkpoint_path=path)
    payload = load_checkpoint(path, "calibration")
    spoil(payload)
    save_checkpoint(path, payload)
    with pytest.raises(MaganError) as info:
        workflow.calibrate(lines, tiny_emulator, lines_true, CalibrationConfig(**{**config.__dict__, "iterations": 8}),
                           "cpu", resume=path)
    assert isinstance(info.value, CheckpointError) and "\n" not in str(info.value)


@pytest.mark.parametrize("spoil, message", [
    (lambda p: p.__setitem__("true_images", torch.full((2, 5, 5), 3.0)), "float pixel values span"),
    (lambda p: p.__setitem__("true_images", torch.zeros(5)), "expected .N, height, width."),
    (lambda p: p.__setitem__("samples", torch.zeros(4, dtype=torch.int32)), "samples are not a table"),
    (lambda p: p.__setitem__("true_params", torch.zeros(99, 2)), "a row per true image"),
    (lambda p: p.__setitem__("training_state", {"pretrain": 3}), "malformed training state"),
    (lambda p: p.pop("meta"), "incomplete project"),
])
def test_broken_projects_are_refused(lines_true, tmp_path, spoil, message):
    path = tmp_path / "run.magan"
    Project("lines", true=lines_true, samples=np.zeros((10, 4), np.float32)).save(path)
    payload = load_checkpoint(path, "project")
    spoil(payload)
    save_checkpoint(path, payload)
    with pytest.raises(CheckpointError, match=message) as info:
        Project.load(path)
    assert "\n" not in str(info.value)
