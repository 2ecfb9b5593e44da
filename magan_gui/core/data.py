"""True images: synthetic closure-test sets and the accepted file formats, each validated."""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import MaganError
from .simulators import LoadedSimulator

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
MEMORY_SHARE = 0.5  # true images may take at most this share of the computer's memory, as float32


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


def _to_unit_range(array: np.ndarray, what: str) -> np.ndarray:
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
            raise DataError(f"{what}: float pixel values span [{lo:.4g}, {hi:.4g}], expected [0, 1] "
                            "(scale them, or store integers)")
        return array
    raise DataError(f"{what}: images have dtype {array.dtype}, expected integers or floats")


def checked_images(array: np.ndarray, what: str, expected_shape: tuple[int, int] | None) -> np.ndarray:
    """``array`` as float32 (N, H, W) images in [0, 1], or DataError saying what is wrong (``what`` names it)."""
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise DataError(f"{what}: images have shape {array.shape}, expected (N, height, width)")
    if array.shape[0] == 0:
        raise DataError(f"{what}: contains no images")
    if expected_shape is not None and tuple(array.shape[1:]) != tuple(expected_shape):
        raise DataError(f"{what}: images are {array.shape[1]}x{array.shape[2]} but the simulator makes "
                        f"{expected_shape[0]}x{expected_shape[1]}; they are not resized")
    return _to_unit_range(array, what)


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


def load_true_images(path: str | Path, expected_shape: tuple[int, int] | None = None,
                     param_names: Sequence[str] | None = None) -> TrueImages:
    """Load true images from .npz, .npy, HDF5 (.h5/.hdf5) or a folder of PNG/TIFF files.

    Integer images are scaled by their dtype's maximum, float images must already lie in [0, 1].
    Images whose shape differs from ``expected_shape`` are refused, not resized.  Known true
    parameters (``params`` in .npz) are kept only if their columns match ``param_names``.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    what = str(path)
    params = names = None
    try:
        if path.is_dir():
            images = _load_folder(path)
        elif path.suffix.lower() == ".npz":
            images, params, names = _load_npz(path)
        elif path.suffix.lower() == ".npy":
            images = _numpy_load(path)
        elif path.suffix.lower() in (".h5", ".hdf5", ".hdf"):
            images = _load_hdf5(path)
        else:
            raise DataError(f"{path}: unknown format {path.suffix or '(no suffix)'}; "
                            "use .npz, .npy, .h5/.hdf5 or a folder of PNG/TIFF files")
    except DataError:
        raise
    except Exception as exc:  # corrupt archives raise many different types
        if isinstance(exc, ValueError) and "allow_pickle" in str(exc):
            raise DataError(f"{path}: holds Python objects instead of numbers; save the images as a numeric "
                            "array (float or integer)") from exc
        raise DataError(f"{path}: could not be read ({type(exc).__name__}: {exc})") from exc
    images = checked_images(np.asarray(images), what, expected_shape)
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
    return TrueImages(images, params, names, str(path))
