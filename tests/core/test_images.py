"""Image mosaics and figure PNGs, without Qt."""

from __future__ import annotations

import numpy as np
from PIL import Image

from magan_gui.core.images import mosaic, save_grid_png


# -- mosaic --------------------------------------------------------------------------------------------
def test_mosaic_places_images_between_gaps():
    images = [[np.full((4, 5), 10 * i + j, np.float32) for j in range(3)] for i in range(2)]
    out = mosaic(images, gap=2, fill=-1.0)
    assert out.shape == (2 * 4 + 2, 3 * 5 + 2 * 2)
    assert out.dtype == np.float32
    for i in range(2):
        for j in range(3):
            tile = out[i * 6:i * 6 + 4, j * 7:j * 7 + 5]
            assert np.all(tile == 10 * i + j)
    assert np.all(out[4:6, :] == -1.0)                 # the gap rows
    assert np.all(out[:, 5:7] == -1.0) and np.all(out[:, 12:14] == -1.0)  # the gap columns


def test_mosaic_default_gap_ragged_rows_and_empty():
    a = np.ones((3, 3), np.float32)
    out = mosaic([[a, a, a], [a]])
    assert out.shape == (3 * 2 + 1, 3 * 3 + 2)
    assert np.all(out[4:, 4:] == 0.25)   # the missing tiles of the short row stay grey
    assert np.all(out[4:, :3] == 1.0)
    assert mosaic([]).shape == (1, 1)
    assert mosaic([[]]).shape == (1, 1)


def test_grid_png_has_one_cell_per_image_and_keeps_grey_levels(tmp_path):
    dark, bright = np.zeros((3, 8, 8), np.float32), np.ones((3, 8, 8), np.float32)
    path = save_grid_png(tmp_path / "sub" / "fig.png", [dark, bright], ["1k", "sim"], title="a title", scale=3)
    image = np.asarray(Image.open(path))
    assert image.ndim == 2 and image.shape[1] == (2 * 8 + 2) * 3 + 8
    # below the title and captions (34 rows): the first column's cells are black, the second's white
    body = image[34:, 4:]
    assert (body[:8 * 3, :8 * 3] == 0).all() and (body[:8 * 3, 10 * 3:18 * 3] == 255).all()
