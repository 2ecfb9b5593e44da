"""True images: closure-test sets, the accepted file formats and every refusal."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image

from magan_gui.core.data import DataError, TrueImages, load_true_images, make_closure_set
from tests.conftest import LINES_MEAN, LINES_STD

SHAPE = (28, 28)


def _names(sim):
    return [p.name for p in sim.parameters]


# -- closure sets -----------------------------------------------------------------------------------------
def test_closure_set_keeps_per_image_params_with_requested_moments(lines):
    true = make_closure_set(lines, LINES_MEAN, LINES_STD, 2000, seed=5)
    assert true.images.shape == (2000, 28, 28) and true.images.dtype == np.float32
    assert true.params.shape == (2000, 4) and true.param_names == ["m", "x0", "c", "x_steps"]
    np.testing.assert_allclose(true.params.mean(0), LINES_MEAN, atol=0.05)
    np.testing.assert_allclose(true.params.std(0, ddof=1), LINES_STD, rtol=0.1)
    assert 0.0 <= true.images.min() and true.images.max() <= 1.0
    assert true.shape == (28, 28) and len(true) == 2000
    assert "closure test" in true.source


def test_closure_set_images_belong_to_their_params(lines):
    import torch

    true = make_closure_set(lines, LINES_MEAN, LINES_STD, 8, seed=2)
    again = lines.simulate(torch.from_numpy(true.params)).numpy()
    np.testing.assert_allclose(true.images, again, atol=1e-6)


def test_closure_set_reproducible_by_seed(lines, circles):
    a = make_closure_set(lines, LINES_MEAN, LINES_STD, 50, seed=3)
    b = make_closure_set(lines, LINES_MEAN, LINES_STD, 50, seed=3)
    c = make_closure_set(lines, LINES_MEAN, LINES_STD, 50, seed=4)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.params, b.params)
    assert a.sha256 == b.sha256 != c.sha256
    assert not np.array_equal(a.params, c.params)
    # a stochastic simulator's noise is seeded too
    mean, std = (18.0, 18.0, 8.0, 0.15, 0.9), (0.8, 0.8, 0.5, 0.05, 0.05)
    x = make_closure_set(circles, mean, std, 20, seed=3)
    y = make_closure_set(circles, mean, std, 20, seed=3)
    assert np.array_equal(x.images, y.images)


def test_closure_set_small_batches_match_one_batch(lines):
    a = make_closure_set(lines, LINES_MEAN, LINES_STD, 30, seed=3)
    b = make_closure_set(lines, LINES_MEAN, LINES_STD, 30, seed=3, batch=7)
    np.testing.assert_allclose(a.images, b.images)


@pytest.mark.parametrize("mean, std, n, message", [
    ((1.5, 10.0, 0.5), LINES_STD, 10, "has 4 parameters"),
    (LINES_MEAN, (0.3, 0.5), 10, "has 4 parameters"),
    (LINES_MEAN, LINES_STD, 0, "at least 1"),
    (LINES_MEAN, (0.3, -0.5, 0.1, 0.5), 10, "non-negative"),
    ((1.5, float("nan"), 0.5, 9.0), LINES_STD, 10, "finite"),
])
def test_closure_set_refusals(lines, mean, std, n, message):
    with pytest.raises(DataError, match=message):
        make_closure_set(lines, mean, std, n)


# -- formats ----------------------------------------------------------------------------------------------
def test_npz_round_trip(lines, tmp_path):
    true = make_closure_set(lines, LINES_MEAN, LINES_STD, 20, seed=0)
    path = tmp_path / "true.npz"
    true.save_npz(path)
    loaded = load_true_images(path, SHAPE, _names(lines))
    np.testing.assert_array_equal(loaded.images, true.images)
    np.testing.assert_array_equal(loaded.params, true.params)
    assert loaded.param_names == true.param_names
    assert loaded.sha256 == true.sha256
    assert loaded.source == str(path)


def test_npz_without_params_round_trip(tmp_path):
    images = np.random.default_rng(0).random((5, 28, 28)).astype(np.float32)
    path = tmp_path / "plain.npz"
    TrueImages(images).save_npz(path)
    loaded = load_true_images(path, SHAPE)
    assert loaded.params is None
    np.testing.assert_array_equal(loaded.images, images)


def test_npy_uint8_scaled_by_255(tmp_path):
    raw = np.random.default_rng(1).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    raw[0, 0, 0], raw[0, 0, 1] = 255, 0
    path = tmp_path / "images.npy"
    np.save(path, raw)
    loaded = load_true_images(path, SHAPE)
    assert loaded.images.dtype == np.float32
    np.testing.assert_allclose(loaded.images, raw / 255.0, atol=1e-7)
    assert loaded.images[0, 0, 0] == 1.0 and loaded.images[0, 0, 1] == 0.0


def test_npy_uint16_scaled_by_65535(tmp_path):
    raw = np.random.default_rng(2).integers(0, 65536, size=(3, 28, 28), dtype=np.uint16)
    raw[0, 0, 0] = 65535
    path = tmp_path / "images.npy"
    np.save(path, raw)
    loaded = load_true_images(path, SHAPE)
    np.testing.assert_allclose(loaded.images, raw / 65535.0, atol=1e-7)
    assert loaded.images.max() == 1.0


def test_npy_single_2d_image_is_one_image(tmp_path):
    path = tmp_path / "one.npy"
    np.save(path, np.full((28, 28), 0.25, dtype=np.float64))
    loaded = load_true_images(path, SHAPE)
    assert loaded.images.shape == (1, 28, 28)
    assert loaded.images.dtype == np.float32


def test_hdf5_images_dataset(tmp_path):
    images = np.random.default_rng(3).random((6, 28, 28)).astype(np.float32)
    path = tmp_path / "images.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("images", data=images)
        fh.create_dataset("other", data=np.zeros(3))
    loaded = load_true_images(path, SHAPE)
    np.testing.assert_array_equal(loaded.images, images)


def test_folder_of_pngs(tmp_path):
    rng = np.random.default_rng(4)
    arrays = [rng.integers(0, 256, size=(28, 28), dtype=np.uint8) for _ in range(3)]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, a in enumerate(arrays):
        Image.fromarray(a, mode="L").save(folder / f"img_{i:02d}.png")
    (folder / "notes.txt").write_text("not an image")
    loaded = load_true_images(folder, SHAPE)
    assert loaded.images.shape == (3, 28, 28)
    np.testing.assert_allclose(loaded.images, np.stack(arrays) / 255.0, atol=1e-7)


def test_folder_of_16bit_pngs(tmp_path):
    a = (np.arange(28 * 28).reshape(28, 28) * 83).astype(np.uint16)
    folder = tmp_path / "pngs16"
    folder.mkdir()
    Image.fromarray(a).save(folder / "a.png")
    loaded = load_true_images(folder, SHAPE)
    np.testing.assert_allclose(loaded.images[0], a / 65535.0, atol=1e-6)


# -- refusals ---------------------------------------------------------------------------------------------
def test_refuses_wrong_image_shape(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.zeros((2, 32, 32), dtype=np.float32))
    with pytest.raises(DataError, match="32x32 but the simulator makes 28x28"):
        load_true_images(path, SHAPE)


def test_refuses_wrong_dimensionality(tmp_path):
    path = tmp_path / "rgb.npy"
    np.save(path, np.zeros((2, 28, 28, 3), dtype=np.float32))
    with pytest.raises(DataError, match="expected \\(N, height, width\\)"):
        load_true_images(path, SHAPE)


def test_refuses_nan_floats(tmp_path):
    images = np.zeros((2, 28, 28), dtype=np.float32)
    images[1, 3, 4] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, images)
    with pytest.raises(DataError, match="1 pixel is NaN or infinite"):
        load_true_images(path, SHAPE)


@pytest.mark.parametrize("value", [1.5, -0.1, 255.0])
def test_refuses_floats_outside_unit_range(tmp_path, value):
    images = np.zeros((2, 28, 28), dtype=np.float64)
    images[0, 0, 0] = value
    path = tmp_path / "range.npy"
    np.save(path, images)
    with pytest.raises(DataError, match=r"expected \[0, 1\]"):
        load_true_images(path, SHAPE)


def test_refuses_negative_signed_integers(tmp_path):
    path = tmp_path / "signed.npy"
    np.save(path, np.full((1, 28, 28), -3, dtype=np.int16))
    with pytest.raises(DataError, match="negative values"):
        load_true_images(path, SHAPE)


def test_refuses_empty_array(tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((0, 28, 28), dtype=np.float32))
    with pytest.raises(DataError, match="contains no images"):
        load_true_images(path, SHAPE)


def test_refuses_unknown_suffix(tmp_path):
    path = tmp_path / "images.csv"
    path.write_text("0,1\n")
    with pytest.raises(DataError, match="unknown format .csv"):
        load_true_images(path, SHAPE)


def test_refuses_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_true_images(tmp_path / "missing.npz", SHAPE)


@pytest.mark.parametrize("suffix", [".npz", ".npy", ".h5"])
def test_refuses_corrupt_files(tmp_path, suffix):
    path = tmp_path / f"corrupt{suffix}"
    path.write_bytes(np.random.default_rng(5).bytes(2048))
    with pytest.raises(DataError, match="could not be read" if suffix == ".h5" else "was another file renamed"):
        load_true_images(path, SHAPE)
    if suffix == ".npz":   # a zip archive cut short
        np.savez(path, images=np.zeros((4, 28, 28)))
        path.write_bytes(path.read_bytes()[:300])
        with pytest.raises(DataError, match="could not be read"):
            load_true_images(path, SHAPE)


def test_a_text_file_renamed_npz_is_refused_in_plain_words(tmp_path):
    path = tmp_path / "images.npz"
    path.write_text("x,y\n1,2\n")
    with pytest.raises(DataError, match="not a zip archive of arrays, although named .npz") as info:
        load_true_images(path, SHAPE)
    assert "pickle" not in str(info.value)


def test_refuses_npz_without_images(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, pictures=np.zeros((2, 28, 28)))
    with pytest.raises(DataError, match="no array named 'images' \\(found: pictures\\)"):
        load_true_images(path, SHAPE)


def test_refuses_npz_with_pickled_objects(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="holds Python objects instead of numbers"):
        load_true_images(path, SHAPE)


def test_refuses_hdf5_without_images(tmp_path):
    path = tmp_path / "other.hdf5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("frames", data=np.zeros((2, 28, 28)))
    with pytest.raises(DataError, match="no dataset named 'images' \\(found: frames\\)"):
        load_true_images(path, SHAPE)


def test_refuses_complex_dtype(tmp_path):
    path = tmp_path / "complex.npy"
    np.save(path, np.zeros((2, 28, 28), dtype=np.complex64))
    with pytest.raises(DataError, match="dtype complex64"):
        load_true_images(path, SHAPE)


def test_refuses_folder_without_images(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing here")
    with pytest.raises(DataError, match="holds no PNG or TIFF"):
        load_true_images(folder, SHAPE)


def test_refuses_colour_pngs(tmp_path):
    folder = tmp_path / "rgb"
    folder.mkdir()
    Image.fromarray(np.zeros((28, 28, 3), dtype=np.uint8), mode="RGB").save(folder / "a.png")
    with pytest.raises(DataError, match="colour image"):
        load_true_images(folder, SHAPE)


def test_refuses_folder_with_mixed_shapes(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8), mode="L").save(folder / "a.png")
    Image.fromarray(np.zeros((28, 27), dtype=np.uint8), mode="L").save(folder / "b.png")
    with pytest.raises(DataError, match="different shapes"):
        load_true_images(folder, SHAPE)


def test_refuses_params_whose_names_mismatch_the_simulator(lines, tmp_path):
    true = make_closure_set(lines, LINES_MEAN, LINES_STD, 5, seed=0)
    path = tmp_path / "true.npz"
    true.save_npz(path)
    with pytest.raises(DataError, match="do not match the simulator's"):
        load_true_images(path, SHAPE, ["slope", "x0", "c", "x_steps"])
    # without names to check against, the file's names are kept
    assert load_true_images(path, SHAPE).param_names == ["m", "x0", "c", "x_steps"]


def test_refuses_params_with_wrong_column_count(tmp_path):
    path = tmp_path / "cols.npz"
    np.savez(path, images=np.zeros((3, 28, 28), dtype=np.float32), params=np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(DataError, match="'params' has 2 columns"):
        load_true_images(path, SHAPE, ["m", "x0", "c", "x_steps"])


def test_refuses_params_with_wrong_row_count(tmp_path):
    path = tmp_path / "rows.npz"
    np.savez(path, images=np.zeros((3, 28, 28), dtype=np.float32), params=np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(DataError, match="expected \\(3, P\\)"):
        load_true_images(path, SHAPE, ["m", "x0", "c", "x_steps"])


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)
