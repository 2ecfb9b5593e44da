"""True images: synthetic closure-test sets and the accepted file formats, each validated."""

from __future__ import annotations

import fnmatch
import hashlib
import math
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import MaganError
from .simulators import LoadedSimulator

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
MEMORY_SHARE = 0.5  # true images may take at most this share of the computer's memory, as float32
SCALE_ADVICE = "scale them, or store integers"  # how a refusal of float pixels outside [0, 1] ends


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this system: assume a modest machine
        return 8 << 30


def _check_declared_size(shape: tuple[int, ...], what: str) -> None:
    """Refuse an array whose declared shape would not fit in memory, before reading it: a small
    compressed or sparse file can declare terabytes."""
    if any(int(n) < 0 for n in shape):
        raise DataError(f"{what}: declares a negative size {tuple(shape)}")
    need = 4 * math.prod(int(n) for n in shape)
    if need > MEMORY_SHARE * _memory_bytes():
        raise DataError(f"{what}: declares {tuple(shape)} values ({need / 2**30:,.1f} GiB as float32), more than "
                        f"half of this computer's memory ({_memory_bytes() / 2**30:.0f} GiB)")


class DataError(MaganError, ValueError):
    """True images could not be loaded or were refused; the message says what was found."""


@dataclass
class TrueImages:
    """A set of true images in [0, 1] with optional known per-image parameters (closure tests).

    Attributes
    ----------
    images : np.ndarray
        float32 (N, H, W) in [0, 1].
    params : np.ndarray or None
        float32 (N, P) true parameters in physical units, when known.
    param_names : list of str or None
        Column names of ``params``.
    source : str
        Where the images came from (a path, or a description of the synthetic draw).
    sha256 : str
        Checksum of the image array, for the result file's provenance.
    """

    images: np.ndarray
    params: np.ndarray | None = None
    param_names: list[str] | None = None
    source: str = ""
    sha256: str = field(default="")

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(np.ascontiguousarray(self.images, dtype=np.float32).tobytes()).hexdigest()

    @property
    def shape(self) -> tuple[int, int]:
        """Image (height, width)."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def save_npz(self, path: str | Path) -> None:
        """Write the set as .npz (``images``, and ``params``/``param_names`` when known)."""
        arrays: dict[str, Any] = {"images": self.images.astype(np.float32)}
        if self.params is not None:
            arrays["params"] = self.params.astype(np.float32)
            arrays["param_names"] = np.array(self.param_names or [])
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def make_closure_set(simulator: LoadedSimulator, mean: Sequence[float], std: Sequence[float], n: int,
                     seed: int = 0, device: torch.device | str = "cpu", batch: int = 4096) -> TrueImages:
    """Simulate n true images with parameters drawn per image from independent Gaussians.

    This is the paper's closure test: the true parameters are kept with the images.
    """
    space = simulator.space
    p = len(space)
    if len(mean) != p or len(std) != p:
        raise DataError(f"simulator {simulator.name!r} has {p} parameters ({', '.join(space.names)}); "
                        f"got {len(mean)} means and {len(std)} stds")
    if n < 1:
        raise DataError(f"the number of images must be at least 1, got {n}")
    if any(s < 0 for s in std) or not all(np.isfinite(list(mean) + list(std))):
        raise DataError("means must be finite and stds finite and non-negative")
    gen = torch.Generator(device=device).manual_seed(seed)
    mu = torch.tensor(mean, dtype=torch.float32, device=device)
    sigma = torch.tensor(std, dtype=torch.float32, device=device)
    params = mu + sigma * torch.randn(n, p, generator=gen, device=device)
    chunks = []
    for start in range(0, n, batch):
        chunk = params[start:start + batch]
        noise = simulator.sample_noise(chunk.shape[0], generator=gen, device=device)
        chunks.append(simulator.simulate(chunk, noise, check=True).cpu())
    desc = f"closure test: {simulator.name}, mean={list(mean)}, std={list(std)}, n={n}, seed={seed}"
    return TrueImages(torch.cat(chunks).numpy(), params.cpu().numpy(), space.names, desc)


def _to_unit_range(array: np.ndarray, what: str, advice: str = SCALE_ADVICE) -> np.ndarray:
    """Scale integer images by their dtype's maximum; take floats as given; refuse the rest."""
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and array.min() < 0:
            raise DataError(f"{what}: signed integer images with negative values (min {array.min()}) "
                            "cannot be scaled to [0, 1]")
        return array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise DataError(f"{what}: {bad} pixel{' is' if bad == 1 else 's are'} NaN or infinite")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(f"{what}: float pixel values span [{lo:.4g}, {hi:.4g}], expected [0, 1] ({advice})")
        return array
    raise DataError(f"{what}: images have dtype {array.dtype}, expected integers or floats")


def checked_images(array: np.ndarray, what: str, expected_shape: tuple[int, int] | None,
                   advice: str = SCALE_ADVICE) -> np.ndarray:
    """``array`` as float32 (N, H, W) images in [0, 1], or DataError saying what is wrong (``what`` names it;
    ``advice`` says how to bring float values outside [0, 1] into range)."""
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise DataError(f"{what}: images have shape {array.shape}, expected (N, height, width)")
    if array.shape[0] == 0:
        raise DataError(f"{what}: contains no images")
    if expected_shape is not None and tuple(array.shape[1:]) != tuple(expected_shape):
        raise DataError(f"{what}: images are {array.shape[1]}x{array.shape[2]} but the simulator makes "
                        f"{expected_shape[0]}x{expected_shape[1]}; they are not resized")
    return _to_unit_range(array, what, advice)


def _numpy_load(path: Path):
    """np.load of a .npz or .npy file that refuses anything else in plain words (``_check_magic``)."""
    _check_magic(path)
    return np.load(path, allow_pickle=False)


def _check_magic(path: Path) -> None:
    """Refuse a file that is no .npz or .npy in plain words: NumPy itself would call any non-NumPy
    file "pickled data" and suggest loading it unsafely."""
    magic = (b"PK\x03\x04", b"PK\x05\x06") if path.suffix.lower() == ".npz" else (b"\x93NUMPY",)
    with open(path, "rb") as fh:
        head = fh.read(6)
    if not head.startswith(magic):
        kind = "a zip archive of arrays" if path.suffix.lower() == ".npz" else "a NumPy array file"
        raise DataError(f"{path}: not {kind}, although named {path.suffix}: was another file renamed?")


def _npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The shape each member of a .npz declares in its header, read without decompressing the data."""
    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, _ = read_header(member)
            shapes[name.removesuffix(".npy")] = tuple(shape)
    return shapes


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    _check_magic(path)
    for name, shape in _npz_shapes(path).items():
        _check_declared_size(shape, f"{path} ({name})")
    with _numpy_load(path) as data:
        if "images" not in data.files:
            raise DataError(f"{path}: no array named 'images' (found: {', '.join(data.files) or 'nothing'})")
        images = data["images"]
        params = data["params"] if "params" in data.files else None
        names = [str(v) for v in data["param_names"]] if "param_names" in data.files else None
    return images, params, names


def _load_hdf5(path: Path) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as fh:
        if "images" not in fh:
            raise DataError(f"{path}: no dataset named 'images' (found: {', '.join(fh.keys()) or 'nothing'})")
        images = fh["images"]
        if not isinstance(images, h5py.Dataset):
            raise DataError(f"{path}: 'images' is a group, not a dataset of images")
        _check_declared_size(images.shape, f"{path} (images)")
        return np.asarray(images)


def _load_folder(path: Path) -> np.ndarray:
    from PIL import Image

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{path}: folder holds no PNG or TIFF files")
    arrays = []
    for f in files:
        with Image.open(f) as im:
            if im.mode in ("RGB", "RGBA", "P", "LA"):
                raise DataError(f"{f}: colour image (mode {im.mode}); true images must be single-channel")
            arrays.append(np.asarray(im))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"{path}: images have different shapes {sorted(shapes)}")
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1:
        raise DataError(f"{path}: images have different pixel types {sorted(map(str, dtypes))}")
    return np.stack(arrays)


# -- ROOT files, read with uproot (the optional `root` extra) ---------------------------------------------------
ROOT_EXTRA = "pip install 'magan-gui[root]'"
ROOT_ADVICE = ("normalise them before writing the ROOT file, e.g. divide every image by the largest count of all, "
               "and save histograms as TH2F or TH2D")
ROOT_LISTED = 6  # objects a message names when it says what a ROOT file holds
_TH2_CLASS = re.compile(r"TH2[CSILFD]")  # a regular grid of bins; TH2Poly and profiles are no images
_TREE_CLASS = re.compile(r"TTree|TNtuple|TNtupleD|ROOT::(Experimental::)?RNTuple")
_GLOB_CHARS = frozenset("*?[")


def split_root_selector(path: str | os.PathLike) -> tuple[Path, str | None]:
    """Split ``file.root:selector`` into the ROOT file's path and the selector (None when there is none).

    The split is at a ":" that directly follows ".root" (any case), so colons elsewhere in a path
    (a Windows drive, a folder's name) stay in the path; a path that exists as given is never split.
    """
    text = os.fspath(path)
    if ":" not in text or Path(text).expanduser().exists():
        return Path(text).expanduser(), None
    colons = [m.end() - 1 for m in re.finditer(r"\.root:", text, flags=re.IGNORECASE)]
    if not colons:
        return Path(text).expanduser(), None
    # a folder may itself be named "x.root:y": the first split whose left part is a file wins
    at = next((i for i in colons if Path(text[:i]).expanduser().is_file()), colons[0])
    return Path(text[:at]).expanduser(), text[at + 1:].strip().strip("/") or None


def _natural_key(name: str) -> list:
    """Sort key that puts hist_2 before hist_10: runs of digits compare as numbers."""
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(re.split(r"(\d+)", name))]


def _matches(name: str, pattern: str) -> bool:
    """Glob match in which * and ? stay within one directory level: hits_* does not reach into dir/."""
    parts, wanted = name.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, wanted))


@dataclass(frozen=True)
class _RootColumn:
    """One TTree branch or RNTuple field: its entries, the fixed shape of one entry (None when an entry is
    not a fixed-size array of numbers) and how to read it while its file is open."""

    name: str
    entries: int
    typename: str
    inner_shape: tuple[int, ...] | None
    read: Callable[[], np.ndarray]

    def image_shape(self, expected_shape: tuple[int, int] | None) -> tuple[int, int] | None:
        """The (height, width) image one entry makes, or None when it makes none."""
        if self.inner_shape is not None and len(self.inner_shape) == 2:
            return (self.inner_shape[0], self.inner_shape[1])
        if (self.inner_shape is not None and len(self.inner_shape) == 1 and expected_shape is not None
                and self.inner_shape[0] == expected_shape[0] * expected_shape[1]):
            return (expected_shape[0], expected_shape[1])
        return None

    def refusal(self, where: str, expected_shape: tuple[int, int] | None) -> str:
        """Why this column makes no images, in one line."""
        shape = self.inner_shape
        if shape is None:
            return f"{where}: holds {self.typename} per entry, not a fixed-size array of numbers (an image)"
        if len(shape) == 0:
            return f"{where}: holds one number ({self.typename}) per entry, not an image"
        if len(shape) == 1 and expected_shape is None:
            return (f"{where}: holds {shape[0]} values per entry in one row; they are read as images only when "
                    "the simulator's image size is known")
        if len(shape) == 1:
            h, w = expected_shape
            return (f"{where}: holds {shape[0]} values per entry, but the simulator's {h}x{w} images have "
                    f"{h * w}; they are not resized")
        return f"{where}: holds {'x'.join(map(str, shape))} arrays per entry, expected one image (height, width)"


def _branch_column(tree_name: str, tree: Any, key: str) -> _RootColumn:
    import uproot

    branch = tree[key]
    try:
        interpretation = branch.interpretation
    except Exception:  # a type uproot cannot interpret is no image either
        interpretation = None
    shape = None
    if isinstance(interpretation, uproot.interpretation.numerical.Numerical):
        shape = tuple(int(n) for n in getattr(interpretation, "inner_shape", ()))
    return _RootColumn(f"{tree_name}/{key}", int(tree.num_entries), str(branch.typename), shape,
                       lambda: branch.array(library="np"))


def _field_column(ntuple_name: str, ntuple: Any, key: str) -> _RootColumn:
    from awkward.forms import NumpyForm, RegularForm

    field = ntuple[key]
    shape = None
    try:
        form = field.to_akform()[0].contents[0]
        sizes = []
        while isinstance(form, RegularForm):
            sizes.append(int(form.size))
            form = form.content
        if isinstance(form, NumpyForm):
            shape = (*sizes, *form.inner_shape)
    except Exception:  # records, unions, anything without a plain form: not an image
        shape = None
    return _RootColumn(f"{ntuple_name}/{key}", int(ntuple.num_entries), str(field.typename), shape,
                       lambda: field.array(library="np"))


class _RootContents:
    """What an open ROOT file holds, read as needed: TH2 histograms by name (natural order), the columns
    of its trees, and the other objects (named in messages only)."""

    def __init__(self, file: Any, path: Path):
        self.file, self.path = file, path
        self.classes = {name: str(cls) for name, cls in file.classnames(recursive=True, cycle=False).items()}
        self.hists = sorted((n for n, c in self.classes.items() if _TH2_CLASS.fullmatch(c)),
                            key=lambda n: (_natural_key(n), n))
        self.trees = [n for n, c in self.classes.items() if _TREE_CLASS.fullmatch(c)]
        self.others = [n for n, c in self.classes.items()
                       if n not in self.hists and n not in self.trees and not c.startswith("TDirectory")]
        self._images: dict[str, np.ndarray] = {}
        self._columns: dict[str, list[_RootColumn]] = {}

    def check_size(self, names: Sequence[str], what: str) -> None:
        """Refuse objects whose declared (uncompressed) size would not fit in memory, before reading them."""
        need = sum(int(self.file.key(n).data_uncompressed_bytes) for n in names)
        if need > MEMORY_SHARE * _memory_bytes():
            raise DataError(f"{what}: declares {need / 2**30:,.1f} GiB of objects, more than half of this "
                            f"computer's memory ({_memory_bytes() / 2**30:.0f} GiB)")

    def hist_image(self, name: str) -> np.ndarray:
        """The histogram's bin contents as a float64 image (y bins, x bins) without under/overflow,
        row 0 the highest y bin: the picture ROOT draws."""
        if name not in self._images:
            self.check_size([name], f"{self.path}:{name}")
            values = np.asarray(self.file[name].values(flow=False), dtype=np.float64)  # [x bin, y bin]
            self._images[name] = np.ascontiguousarray(values.T[::-1])
        return self._images[name]

    def take_images(self, names: Sequence[str]) -> np.ndarray:
        """The histograms' images stacked (N, H, W), no longer kept here (they may be large)."""
        images = np.stack([self.hist_image(n) for n in names])
        self._images.clear()
        return images

    def columns(self, tree: str) -> list[_RootColumn]:
        """The branches (TTree) or top-level fields (RNTuple) of one tree."""
        if tree not in self._columns:
            self.check_size([tree], f"{self.path}:{tree}")
            obj = self.file[tree]
            make = _field_column if "RNTuple" in self.classes[tree] else _branch_column
            keys = obj.keys() if "RNTuple" in self.classes[tree] else obj.keys(recursive=True)
            self._columns[tree] = [make(tree, obj, key) for key in keys]
        return self._columns[tree]

    def describe(self, columns: Sequence[_RootColumn] | None = None) -> str:
        """The first few objects with their kinds and shapes, in one line (``columns``: only these)."""
        if columns is None:
            columns = [c for tree in self.trees for c in self.columns(tree)]
            total = len(self.hists) + len(columns) + len(self.others)
            hists, others = self.hists[:ROOT_LISTED], self.others
        else:
            total, hists, others = len(columns), [], []
        items = []
        for name in hists:
            h, w = self.hist_image(name).shape
            items.append(f"{name} ({self.classes[name]} {h}x{w})")
        items += [f"{c.name} (branch, {c.entries} x {c.typename})" for c in columns[:ROOT_LISTED]]
        items += [f"{name} ({self.classes[name]})" for name in others[:ROOT_LISTED]]
        text = "; ".join(items[:ROOT_LISTED]) or "nothing"
        return text + (f"; and {total - ROOT_LISTED} more" if total > ROOT_LISTED else "")

    def select(self, selector: str | None, expected_shape: tuple[int, int] | None) -> list[str] | _RootColumn:
        """The TH2 names, or the column, that ``selector`` (or, without one, the file's only set of images) names."""
        if selector is None:
            return self._only_images(expected_shape)
        if _GLOB_CHARS & set(selector):
            names = [n for n in self.hists if _matches(n, selector)]
            if not names:
                raise DataError(f"{self.path}: no TH2 histogram matches {selector!r}; it holds: {self.describe()}")
            return names
        if _TH2_CLASS.fullmatch(self.classes.get(selector, "")):
            return [selector]
        if selector in self.trees:
            columns = self.columns(selector)
            images = [c for c in columns if c.image_shape(expected_shape)]
            if len(images) == 1:
                return images[0]
            raise DataError(f"{self.path}: tree {selector!r} has {len(images) or 'no'} branches of fixed-size "
                            f"images; name one as {self.path}:{selector}/BRANCH; it holds: "
                            f"{self.describe(columns)}")
        parts = selector.split("/")
        for k in range(len(parts) - 1, 0, -1):  # the branch name itself may hold "/" (sub-branches)
            tree = "/".join(parts[:k])
            if tree in self.trees:
                for column in self.columns(tree):
                    if column.name == selector:
                        return column
        kind = f" is a {self.classes[selector]}, not a TH2 histogram or a tree" if selector in self.classes \
            else " names nothing in it"
        raise DataError(f"{self.path}: {selector!r}{kind} (a selector is a TH2 name or pattern such as hits_*, "
                        f"or tree/branch); it holds: {self.describe()}")

    def _only_images(self, expected_shape: tuple[int, int] | None) -> list[str] | _RootColumn:
        """Without a selector: all TH2 histograms, or the one branch of images, when the file holds nothing else
        that could be images."""
        columns = [c for tree in self.trees for c in self.columns(tree) if c.image_shape(expected_shape)]
        if self.hists and not columns:
            return list(self.hists)
        if len(columns) == 1 and not self.hists:
            return columns[0]
        if not self.hists and not columns:
            raise DataError(f"{self.path}: holds no TH2 histograms and no tree branch of fixed-size images; "
                            f"it holds: {self.describe()}")
        sets, choices = [], []
        if self.hists:
            stem = re.sub(r"\d+$", "", self.hists[0].rsplit("/", 1)[-1]) + "*"
            sets.append(f"{len(self.hists)} TH2 histogram{'s' * (len(self.hists) > 1)}")
            choices.append(f"{self.path}:PATTERN (TH2 names, e.g. {stem})")
        if columns:
            sets.append(f"{len(columns)} branch{'es' * (len(columns) > 1)} of images")
            choices.append(f"{self.path}:TREE/BRANCH")
        raise DataError(f"{self.path}: holds more than one set of images ({' and '.join(sets)}); choose with "
                        f"{' or '.join(choices)}; it holds: {self.describe()}")


def _load_root(path: Path, selector: str | None, expected_shape: tuple[int, int] | None) -> np.ndarray:
    """Images from a ROOT file: TH2 histograms (float64, row 0 the highest y bin) or a tree branch of fixed-size
    arrays (its own dtype; (N, H*W) reshaped row by row to ``expected_shape``)."""
    with open(path, "rb") as fh:
        if fh.read(4) != b"root":
            raise DataError(f"{path}: not a ROOT file, although named {path.suffix}: was another file renamed?")
    try:
        import uproot
    except ImportError:
        raise DataError(f"{path}: reading ROOT files needs the ROOT extra: {ROOT_EXTRA}") from None
    try:
        with uproot.open(path) as file:
            return _root_images(_RootContents(file, path), selector, expected_shape)
    except DataError:
        raise
    except Exception as exc:  # uproot reports damage in many types, over several lines
        reason = (str(exc).strip().splitlines() or [""])[0].rstrip(",;: ")
        raise DataError(f"{path}: could not be read as a ROOT file; is it truncated or damaged? "
                        f"({type(exc).__name__}: {reason})") from exc


def _root_images(contents: _RootContents, selector: str | None,
                 expected_shape: tuple[int, int] | None) -> np.ndarray:
    path = contents.path
    chosen = contents.select(selector, expected_shape)
    if isinstance(chosen, _RootColumn):
        where = f"{path}:{chosen.name}"
        shape = chosen.image_shape(expected_shape)
        if shape is None:
            raise DataError(chosen.refusal(where, expected_shape))
        _check_declared_size((chosen.entries, *chosen.inner_shape), where)
        array = np.asarray(chosen.read())
        return array.reshape(array.shape[0], *shape)
    contents.check_size(chosen, f"{path}:{selector}" if selector else str(path))
    shapes = sorted({contents.hist_image(n).shape for n in chosen})
    if len(shapes) > 1:
        listed = ", ".join(f"{h}x{w}" for h, w in shapes)
        raise DataError(f"{path}: the histograms have different shapes ({listed}); choose those of one shape "
                        f"with {path}:PATTERN; it holds: {contents.describe()}")
    return contents.take_images(chosen)


def load_true_images(path: str | Path, expected_shape: tuple[int, int] | None = None,
                     param_names: Sequence[str] | None = None) -> TrueImages:
    """Load true images from .npz, .npy, HDF5 (.h5/.hdf5), a folder of PNG/TIFF files, or a ROOT file.

    Integer images are scaled by their dtype's maximum, float images must already lie in [0, 1].
    Images whose shape differs from ``expected_shape`` are refused, not resized.  Known true
    parameters (``params`` in .npz) are kept only if their columns match ``param_names``.

    A ROOT file (read with uproot, the ``root`` extra) is named ``file.root`` when it holds one set of
    images (TH2 histograms of one shape only, or a single tree branch of fixed-size image arrays), else
    ``file.root:PATTERN`` (a glob on TH2 names, ``dir/hits_*`` inside a directory) or
    ``file.root:TREE/BRANCH``.  Histograms are taken in natural name order (hist_2 before hist_10) as
    images of (y bins, x bins) without under/overflow, row 0 the highest y bin, as ROOT draws them;
    their contents are taken as given and must lie in [0, 1].  A branch of (H*W) arrays is reshaped row
    by row to ``expected_shape``.  ROOT images carry no true parameters.
    """
    path, selector = split_root_selector(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    what = f"{path}:{selector}" if selector else str(path)
    params = names = None
    is_root = path.is_file() and path.suffix.lower() == ".root"
    try:
        if selector is not None and not is_root:
            raise DataError(f"{path}: a selector after the path ({selector!r}) is for ROOT files only")
        if path.is_dir():
            images = _load_folder(path)
        elif is_root:
            images = _load_root(path, selector, expected_shape)
        elif path.suffix.lower() == ".npz":
            images, params, names = _load_npz(path)
        elif path.suffix.lower() == ".npy":
            images = _numpy_load(path)
        elif path.suffix.lower() in (".h5", ".hdf5", ".hdf"):
            images = _load_hdf5(path)
        else:
            raise DataError(f"{path}: unknown format {path.suffix or '(no suffix)'}; "
                            "use .npz, .npy, .h5/.hdf5, .root or a folder of PNG/TIFF files")
    except DataError:
        raise
    except Exception as exc:  # corrupt archives raise many different types
        if isinstance(exc, ValueError) and "allow_pickle" in str(exc):
            raise DataError(f"{path}: holds Python objects instead of numbers; save the images as a numeric "
                            "array (float or integer)") from exc
        reason = (str(exc).strip().splitlines() or [""])[0]  # some readers' messages run over many lines
        raise DataError(f"{path}: could not be read ({type(exc).__name__}: {reason})") from exc
    images = checked_images(np.asarray(images), what, expected_shape,
                            advice=ROOT_ADVICE if is_root else SCALE_ADVICE)
    if params is not None:
        if not (np.issubdtype(params.dtype, np.floating) or np.issubdtype(params.dtype, np.integer)):
            raise DataError(f"{path}: 'params' has dtype {params.dtype}, expected numbers")
        params = np.asarray(params, dtype=np.float32)
        if params.ndim != 2 or params.shape[0] != images.shape[0]:
            raise DataError(f"{path}: 'params' has shape {params.shape}, expected ({images.shape[0]}, P)")
        if param_names is not None:
            if names and list(names) != list(param_names):
                raise DataError(f"{path}: its parameters {names} do not match the simulator's {list(param_names)}")
            if params.shape[1] != len(param_names):
                raise DataError(f"{path}: 'params' has {params.shape[1]} columns, the simulator "
                                f"has {len(param_names)} parameters")
            names = list(param_names)
    return TrueImages(images, params, names, what)
