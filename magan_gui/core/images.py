"""Image grids as arrays and PNG files, without Qt: the app draws the same mosaics on screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def mosaic(rows: list[list[np.ndarray]], gap: int = 1, fill: float = 0.25) -> np.ndarray:
    """Tile equally sized (H, W) images, ``rows`` of columns, into one array with grey gaps."""
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=0)
    if not n_rows or not n_cols:
        return np.zeros((1, 1), np.float32)
    h, w = np.asarray(rows[0][0]).shape
    out = np.full((n_rows * (h + gap) - gap, n_cols * (w + gap) - gap), fill, np.float32)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            out[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = image
    return out


def save_grid_png(path: str | Path, columns: list[np.ndarray], captions: list[str], title: str = "",
                  scale: int = 4) -> Path:
    """Write a figure of image columns (each (rows, H, W) in [0, 1]) with a caption above each column.

    Grey levels as in the paper's figures; pixels are enlarged ``scale`` times without smoothing.
    """
    from PIL import Image, ImageDraw

    n_rows = max(c.shape[0] for c in columns)
    grid = mosaic([[np.clip(col[i], 0.0, 1.0) for col in columns] for i in range(n_rows)], gap=2, fill=1.0)
    body = Image.fromarray((grid * 255).astype(np.uint8), mode="L").resize(
        (grid.shape[1] * scale, grid.shape[0] * scale), Image.Resampling.NEAREST)
    top = 34 if title else 18
    canvas = Image.new("L", (body.width + 8, body.height + top + 4), 255)
    canvas.paste(body, (4, top))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 2), title, fill=0)
    cell = (columns[0].shape[2] + 2) * scale
    for j, caption in enumerate(captions):
        draw.text((4 + j * cell + 2, top - 14), caption, fill=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
