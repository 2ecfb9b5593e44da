"""Example external simulator: a beam spot on a 24x40 pixel sensor, as a standalone program.

magan-gui runs it through beamspot.toml (``--simulator path/to/beamspot.toml``); it needs only NumPy
and knows nothing of magan-gui, as a real simulation program would not.  It reads the parameter sets
(one row each: x, y, sigma, intensity; a .npy array or a .csv file with a header of the names),
draws its random numbers from ``--seed`` and writes the images as a .npy array (N, 24, 40) of
float32 in [0, 1].

Physics: the expected count in a pixel is a 2D Gaussian spot centred at (x, y) (pixels; x to the
right from the left edge, y upwards from the bottom edge) of width sigma, with ``intensity``
expected counts at its peak, on a flat background; each pixel counts a Poisson number of hits and
the image shows counts / FULL_SCALE, clipped to [0, 1].

Run by hand: python beamspot.py --params params.csv --out images.npy --seed 1
"""

import argparse
import csv
import sys

import numpy as np

HEIGHT, WIDTH = 24, 40
NAMES = ("x", "y", "sigma", "intensity")
BACKGROUND = 1.0     # expected counts per pixel without the beam
FULL_SCALE = 180.0   # the count shown as brightness 1


def read_params(path):
    """Parameter sets (N, 4) from a .npy array or a .csv file with a header row of the names."""
    if path.lower().endswith(".csv"):
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        header = [name.strip() for name in rows[0]]
        missing = [name for name in NAMES if name not in header]
        if missing:
            sys.exit(f"beamspot: {path} has no column {', '.join(missing)} (header: {', '.join(header)})")
        columns = [header.index(name) for name in NAMES]
        return np.array([[float(row[c]) for c in columns] for row in rows[1:] if row], dtype=np.float64).reshape(-1, 4)
    params = np.load(path, allow_pickle=False).astype(np.float64)
    if params.ndim != 2 or params.shape[1] != len(NAMES):
        sys.exit(f"beamspot: expected parameters of shape (N, {len(NAMES)}) in {path}, got {params.shape}")
    return params


def expected_counts(params):
    """Expected counts (N, 24, 40) of each pixel for parameter sets (N, 4)."""
    x, y, sigma, intensity = (params[:, i, None, None] for i in range(4))
    cols = np.arange(WIDTH, dtype=np.float64)[None, None, :] + 0.5
    rows = (HEIGHT - 0.5 - np.arange(HEIGHT, dtype=np.float64))[None, :, None]  # y of each row's centre
    r2 = (cols - x) ** 2 + (rows - y) ** 2
    return intensity * np.exp(-0.5 * r2 / sigma**2) + BACKGROUND


def main(argv=None):
    parser = argparse.ArgumentParser(description="beam spot on a 24x40 sensor (example external simulator)")
    parser.add_argument("--params", required=True, help="parameter sets: .npy (N, 4) or .csv with a header")
    parser.add_argument("--out", required=True, help="images (N, 24, 40) written here as .npy")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: fresh randomness)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    counts = rng.poisson(expected_counts(read_params(args.params)))
    images = np.clip(counts / FULL_SCALE, 0.0, 1.0).astype(np.float32)
    with open(args.out, "wb") as fh:  # exactly this name, even without a .npy suffix
        np.save(fh, images)


if __name__ == "__main__":
    main()
