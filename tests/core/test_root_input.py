"""True images from ROOT files (the `root` extra): TH2 histograms by name pattern, tree branches of fixed-size
arrays, the selector after the path, the orientation, and every refusal in one line."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from magan_gui.cli import main
from magan_gui.core import data
from magan_gui.core.data import DataError, load_true_images, split_root_selector

uproot = pytest.importorskip("uproot")


def _hist(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A TH2 whose picture (as ROOT draws it, y up) is ``image`` (row 0 at the top): counts are [x bin, y bin]."""
    h, w = image.shape
    return image[::-1].T.copy(), np.arange(w + 1.0), np.arange(h + 1.0)


def _write(path, objects: dict) -> str:
    """A ROOT file holding ``objects`` (name -> an image for a TH2, or a dict of branches for a TTree)."""
    with uproot.recreate(path) as file:
        for name, obj in objects.items():
            if isinstance(obj, dict):
                file.mktree(name, {key: (value.dtype, value.shape[1:]) for key, value in obj.items()})
                file[name].extend(obj)
            else:
                file[name] = _hist(obj)
    return str(path)


def _constant(value: float, shape=(3, 4)) -> np.ndarray:
    return np.full(shape, value)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# -- TH2 histograms -----------------------------------------------------------------------------------------
def test_th2_set_by_pattern_in_natural_order(tmp_path):
    path = _write(tmp_path / "hists.root", {"hit_10": _constant(0.3), "hit_2": _constant(0.2), "hit_1": _constant(0.1),
                                            "other_1": _constant(0.9), "dir/hit_5": _constant(0.5)})
    true = load_true_images(f"{path}:hit_*", expected_shape=(3, 4))
    assert true.images.shape == (3, 3, 4) and true.images.dtype == np.float32
    np.testing.assert_allclose(true.images[:, 0, 0], [0.1, 0.2, 0.3])   # hit_1, hit_2, hit_10: not by text
    assert true.params is None and true.source == f"{path}:hit_*"
    inside = load_true_images(f"{path}:dir/hit_*")                      # a pattern does not reach into dir/
    np.testing.assert_allclose(inside.images[:, 0, 0], [0.5])
    single = load_true_images(f"{path}:other_1")                         # one histogram by its name
    np.testing.assert_allclose(single.images, np.full((1, 3, 4), 0.9))


def test_a_file_of_histograms_only_needs_no_selector(tmp_path):
    path = _write(tmp_path / "hists.root", {f"h{i}": _constant(i / 20) for i in (12, 3, 1)} | {"d/h2": _constant(0.1)})
    true = load_true_images(path, expected_shape=(3, 4))
    np.testing.assert_allclose(true.images[:, 0, 0], [0.1, 0.05, 0.15, 0.6])   # d/h2, h1, h3, h12


def test_orientation_rows_are_y_bins_with_the_highest_at_the_top(tmp_path):
    # one count at low x and high y, two at high x and low y, filled as physicists fill histograms
    x, y = np.array([0.5, 3.5, 3.5]), np.array([2.5, 0.5, 0.5])
    counts, xedges, yedges = np.histogram2d(x, y, bins=(4, 3), range=((0, 4), (0, 3)))
    with uproot.recreate(tmp_path / "one.root") as file:
        file["h"] = (counts / 2, xedges, yedges)
    image = load_true_images(tmp_path / "one.root").images[0]
    assert image.shape == (3, 4)                      # (y bins, x bins)
    expected = np.zeros((3, 4))
    expected[0, 0] = 0.5                              # top left: the highest y bin, the lowest x bin
    expected[2, 3] = 1.0                              # bottom right
    np.testing.assert_allclose(image, expected)


def test_under_and_overflow_bins_are_left_out(tmp_path):
    from uproot.writing.identify import to_TAxis, to_TH2x

    nx, ny = 4, 3
    full = np.full((ny + 2, nx + 2), 99.0)           # ROOT's bin layout: [y bin, x bin], flow bins around
    inner = np.linspace(0, 1, nx * ny).reshape(ny, nx)
    full[1:-1, 1:-1] = inner
    zero = dict.fromkeys(("fEntries", "fTsumw", "fTsumw2", "fTsumwx", "fTsumwx2", "fTsumwy", "fTsumwy2",
                          "fTsumwxy"), 0.0)
    hist = to_TH2x(fName="h", fTitle="", data=full.ravel(), fSumw2=np.zeros(full.size), **zero,
                   fXaxis=to_TAxis("xaxis", "", nx, 0, nx), fYaxis=to_TAxis("yaxis", "", ny, 0, ny))
    with uproot.recreate(tmp_path / "flow.root") as file:
        file["h"] = hist
    image = load_true_images(tmp_path / "flow.root", expected_shape=(3, 4)).images[0]
    np.testing.assert_allclose(image, inner[::-1], atol=1e-7)   # y bin 1 is the bottom row


def test_counts_above_one_are_refused_with_advice_to_normalise(tmp_path):
    counts = np.random.default_rng(0).poisson(5.0, (3, 4)).astype(float)
    path = _write(tmp_path / "counts.root", {"h1": counts, "h2": counts / counts.max()})
    with pytest.raises(DataError) as exc:
        load_true_images(f"{path}:h*", expected_shape=(3, 4))
    message = _one_line(exc)
    assert f"span [{counts.min() / counts.max():.4g}, {counts.max():.4g}], expected [0, 1]" in message
    assert "normalise" in message and "largest count" in message
    assert len(load_true_images(f"{path}:h2")) == 1     # the normalised one alone is fine


def test_histograms_of_different_shapes_are_refused(tmp_path):
    path = _write(tmp_path / "mixed.root", {"a": _constant(0.1), "b": _constant(0.1, (5, 6))})
    with pytest.raises(DataError) as exc:
        load_true_images(path)
    message = _one_line(exc)
    assert "different shapes (3x4, 5x6)" in message and ":PATTERN" in message


# -- tree branches ------------------------------------------------------------------------------------------
def test_tree_branch_of_images(tmp_path):
    images = np.random.default_rng(1).random((7, 3, 4)).astype(np.float32)
    path = _write(tmp_path / "tree.root", {"events": {"image": images, "run": np.arange(7)}})
    for spec in (path, f"{path}:events", f"{path}:events/image"):   # the file's only branch of images
        true = load_true_images(spec, expected_shape=(3, 4))
        np.testing.assert_array_equal(true.images, images)
        assert true.params is None


def test_flattened_branch_is_reshaped_row_by_row_to_the_simulators_shape(tmp_path):
    flat = np.random.default_rng(2).random((5, 12))
    path = _write(tmp_path / "flat.root", {"events": {"pixels": flat}})
    true = load_true_images(f"{path}:events/pixels", expected_shape=(3, 4))
    np.testing.assert_allclose(true.images, flat.reshape(5, 3, 4), rtol=1e-6)
    assert len(load_true_images(path, expected_shape=(3, 4))) == 5      # unambiguous for a 3x4 simulator
    for shape, words in (((5, 5), "12 values per entry, but the simulator's 5x5 images have 25"),
                         (None, "only when the simulator's image size is known")):
        with pytest.raises(DataError) as exc:
            load_true_images(f"{path}:events/pixels", expected_shape=shape)
        assert words in _one_line(exc)


def test_integer_branches_are_scaled_by_their_dtype_maximum(tmp_path):
    raw = np.random.default_rng(3).integers(0, 256, (4, 3, 4)).astype(np.uint8)
    wide = raw.astype(np.int16) * 100
    path = _write(tmp_path / "ints.root", {"t": {"u8": raw, "i16": wide}})
    np.testing.assert_allclose(load_true_images(f"{path}:t/u8").images, raw / 255.0, rtol=1e-6)
    np.testing.assert_allclose(load_true_images(f"{path}:t/i16").images, wide / 32767.0, rtol=1e-6)


def test_float_branch_above_one_is_refused_with_advice(tmp_path):
    path = _write(tmp_path / "big.root", {"t": {"adc": np.full((2, 3, 4), 40.0)}})
    with pytest.raises(DataError) as exc:
        load_true_images(path)
    assert "[40, 40], expected [0, 1]" in _one_line(exc) and "normalise" in str(exc.value)


def test_branches_that_hold_no_images_are_refused(tmp_path):
    path = _write(tmp_path / "mixed.root", {"t": {"n": np.arange(3), "cube": np.zeros((3, 2, 2, 2))}})
    for selector, words in (("t/n", "one number"), ("t/cube", "2x2x2 arrays per entry")):
        with pytest.raises(DataError) as exc:
            load_true_images(f"{path}:{selector}")
        assert words in _one_line(exc)
    with pytest.raises(DataError) as exc:
        load_true_images(path)
    assert "no TH2 histograms and no tree branch of fixed-size images" in _one_line(exc)
    assert "t/n (branch, 3 x int64_t)" in str(exc.value)


def test_jagged_branch_is_refused(tmp_path):
    import awkward as ak

    with uproot.recreate(tmp_path / "jagged.root") as file:
        file.mktree("t", {"hits": "var * float32"})
        file["t"].extend({"hits": ak.Array([[0.1], [], [0.2, 0.3]])})
    with pytest.raises(DataError) as exc:
        load_true_images(f"{tmp_path / 'jagged.root'}:t/hits")
    assert "not a fixed-size array of numbers" in _one_line(exc)


def test_a_tree_written_by_dict_assignment_reads_the_same(tmp_path):
    # recent uproot writes a dict of arrays as an RNTuple, older ones as a TTree: both are read
    images = np.random.default_rng(4).random((3, 3, 4)).astype(np.float32)
    with uproot.recreate(tmp_path / "dict.root") as file:
        file["events"] = {"image": images}
    np.testing.assert_array_equal(load_true_images(f"{tmp_path / 'dict.root'}:events/image").images, images)


# -- choosing, and what the messages say --------------------------------------------------------------------
def test_ambiguous_file_lists_what_it_holds(tmp_path):
    path = _write(tmp_path / "both.root", {"hit_1": _constant(0.1), "hit_2": _constant(0.2),
                                           "events": {"image": np.zeros((2, 3, 4)), "other": np.zeros((2, 5, 5))}})
    with pytest.raises(DataError) as exc:
        load_true_images(path, expected_shape=(3, 4))
    message = _one_line(exc)
    assert "more than one set of images (2 TH2 histograms and 2 branches of images)" in message
    assert f"{path}:PATTERN (TH2 names, e.g. hit_*)" in message and f"{path}:TREE/BRANCH" in message
    assert "hit_1 (TH2D 3x4); hit_2 (TH2D 3x4); events/image (branch, 2 x double[3][4])" in message
    assert len(load_true_images(f"{path}:hit_*", expected_shape=(3, 4))) == 2
    with pytest.raises(DataError) as exc:
        load_true_images(f"{path}:events")                  # a tree with two branches of images
    assert f"name one as {path}:events/BRANCH" in _one_line(exc)
    branches = _write(tmp_path / "branches.root", {"events": {"a": np.zeros((2, 3, 4)), "b": np.zeros((2, 3, 4))}})
    with pytest.raises(DataError) as exc:
        load_true_images(branches)
    assert f"(2 branches of images); choose with {branches}:TREE/BRANCH; it holds" in _one_line(exc)


def test_contents_listing_stops_after_a_few(tmp_path):
    path = _write(tmp_path / "many.root", {f"h{i}": _constant(0.1, (3, 4 + i % 2)) for i in range(20)})
    with pytest.raises(DataError) as exc:
        load_true_images(path)
    message = _one_line(exc)
    assert "h0 (TH2D 3x4); h1 (TH2D 3x5)" in message and "; and 14 more" in message and "h19" not in message


def test_nothing_matches(tmp_path):
    path = _write(tmp_path / "hists.root", {"hit_1": _constant(0.1), "events": {"n": np.arange(2)}})
    with pytest.raises(DataError) as exc:
        load_true_images(f"{path}:track_*")
    assert "no TH2 histogram matches 'track_*'; it holds: hit_1 (TH2D 3x4); events/n (branch" in _one_line(exc)
    with pytest.raises(DataError) as exc:
        load_true_images(f"{path}:events/missing")
    assert "'events/missing' names nothing in it" in _one_line(exc)


def test_wrong_image_shape_is_refused_not_resized(tmp_path):
    path = _write(tmp_path / "small.root", {"h": _constant(0.1, (5, 4))})
    with pytest.raises(DataError) as exc:
        load_true_images(f"{path}:h*", expected_shape=(28, 28))
    assert "images are 5x4 but the simulator makes 28x28; they are not resized" in _one_line(exc)


def test_selector_split_keeps_colons_elsewhere_in_the_path(tmp_path):
    assert split_root_selector("C:/data/run.ROOT:tree/image") == (data.Path("C:/data/run.ROOT"), "tree/image")
    assert split_root_selector("/a:b/run.root") == (data.Path("/a:b/run.root"), None)
    assert split_root_selector("/a/run.root:") == (data.Path("/a/run.root"), None)
    assert split_root_selector("/a/x.npz") == (data.Path("/a/x.npz"), None)
    folder = tmp_path / "run:7"
    folder.mkdir()
    path = _write(folder / "hists.root", {"hit_1": _constant(0.1)})
    assert len(load_true_images(f"{path}:hit_*")) == 1
    with pytest.raises(DataError, match="for ROOT files only"):
        (tmp_path / "d.root").mkdir()
        load_true_images(f"{tmp_path / 'd.root'}:x")


# -- files that are not what they claim ---------------------------------------------------------------------
def test_truncated_and_renamed_files_are_refused_in_one_line(tmp_path):
    good = _write(tmp_path / "good.root", {"t": {"image": np.random.default_rng(5).random((50, 8, 8))}})
    blob = open(good, "rb").read()
    for size in (0, 3, 64, 400, len(blob) // 2):
        cut = tmp_path / f"cut{size}.root"
        cut.write_bytes(blob[:size])
        with pytest.raises(DataError) as exc:
            load_true_images(cut)
        assert str(cut) in _one_line(exc)
    renamed = tmp_path / "renamed.root"
    np.save(tmp_path / "images.npy", np.zeros((2, 3, 4)))
    renamed.write_bytes((tmp_path / "images.npy").read_bytes())
    with pytest.raises(DataError) as exc:
        load_true_images(f"{renamed}:t/image")
    assert "not a ROOT file, although named .root" in _one_line(exc)


def test_damaged_files_load_or_are_refused_in_one_line(tmp_path):
    good = _write(tmp_path / "good.root", {"h": _constant(0.5, (8, 8)), "t": {"image": np.full((20, 8, 8), 0.5)}})
    blob = open(good, "rb").read()
    rng = np.random.default_rng(6)
    for i in range(40):                                    # a few bytes changed anywhere after the magic
        damaged = bytearray(blob)
        for position in rng.integers(4, len(blob), rng.integers(1, 6)):
            damaged[position] = rng.integers(0, 256)
        path = tmp_path / f"damaged{i}.root"
        path.write_bytes(bytes(damaged))
        for spec in (f"{path}:t/image", f"{path}:h*"):
            try:
                load_true_images(spec)
            except DataError as exc:
                assert "\n" not in str(exc)


def test_declared_sizes_are_checked_before_reading(tmp_path, monkeypatch):
    path = _write(tmp_path / "both.root", {"h": _constant(0.1, (30, 30)), "t": {"image": np.zeros((200, 30, 30))}})
    monkeypatch.setattr(data, "_memory_bytes", lambda: 100_000)   # 200 x 30 x 30 floats no longer fit
    with pytest.raises(DataError) as exc:
        load_true_images(f"{path}:t/image")
    assert "declares (200, 30, 30) values" in _one_line(exc)
    monkeypatch.setattr(data, "_memory_bytes", lambda: 1000)      # nor does one histogram object
    with pytest.raises(DataError) as exc:
        load_true_images(f"{path}:h")
    assert "declares" in _one_line(exc) and "GiB of objects" in str(exc.value)


def test_without_uproot_one_line_names_the_extra(tmp_path, monkeypatch):
    path = _write(tmp_path / "hists.root", {"h": _constant(0.1)})
    monkeypatch.setitem(sys.modules, "uproot", None)      # import uproot now raises ImportError
    with pytest.raises(DataError) as exc:
        load_true_images(path)
    assert _one_line(exc).endswith("needs the ROOT extra: pip install 'magan-gui[root]'")


# -- the command line ---------------------------------------------------------------------------------------
def test_calibrate_refuses_root_images_of_the_wrong_shape_in_one_line(tmp_path, tiny_emulator_path, capsys):
    path = _write(tmp_path / "hists.root", {f"hit_{i}": _constant(0.1 * i) for i in range(1, 4)})
    output = tmp_path / "result.json"
    status = main(["calibrate", "--simulator", "lines", "--emulator", str(tiny_emulator_path),
                   "--true", f"{path}:hit_*", "-o", str(output), "--iterations", "1"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and not output.exists()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err == (f"magan calibrate: error: {path}:hit_*: images are 3x4 but the simulator makes 28x28; "
                   "they are not resized")
