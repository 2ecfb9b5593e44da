"""A deliberately slow simulator plugin: a stand-in for an expensive Monte Carlo simulation.

It exists for the responsiveness benchmark (``scripts/bench_gui.py --responsiveness
scripts/slow_plugin.py:SlowBlob``): each image costs ``SECONDS_PER_IMAGE`` (50 ms) of wall time,
like a simulator that tracks particles one event at a time, so any simulation that the app runs
on its GUI thread shows up as a frozen window.  The images themselves are cheap and
deterministic: a Gaussian spot on a 16x16 sensor, centred at (x0, 7.5) with width sigma.

Set the environment variable ``MAGAN_SLOW_SECONDS`` (read at every ``simulate`` call) to
override the delay per image, e.g. ``MAGAN_SLOW_SECONDS=0`` in tests.
"""

import os
import time

import numpy as np

from magan_gui import Parameter

SECONDS_PER_IMAGE = 0.05


def seconds_per_image() -> float:
    """The delay per image: ``MAGAN_SLOW_SECONDS`` when set, else ``SECONDS_PER_IMAGE``."""
    value = os.environ.get("MAGAN_SLOW_SECONDS", "").strip()
    return max(0.0, float(value)) if value else SECONDS_PER_IMAGE


class SlowBlob:
    """A Gaussian spot at (x0, 7.5) of width sigma on 16x16 pixels, 50 ms of wall time per image."""

    name = "slow-blob"
    image_shape = (16, 16)
    parameters = [
        Parameter("x0", low=4.0, high=12.0, unit="px", default=8.0),
        Parameter("sigma", low=1.0, high=3.0, unit="px", default=2.0),
    ]
    stochastic = False

    def simulate(self, params):
        """params: (N, 2) float32 tensor (or array) in physical units -> (N, 16, 16) NumPy images in [0, 1]."""
        p = params.detach().cpu().numpy() if hasattr(params, "detach") else np.asarray(params)
        p = np.asarray(p, dtype=np.float32).reshape(-1, len(self.parameters))
        h, w = self.image_shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        y0 = (h - 1) / 2.0
        delay = seconds_per_image()
        images = np.empty((p.shape[0], h, w), dtype=np.float32)
        for i, (x0, sigma) in enumerate(p):  # one image at a time, as an event-by-event simulation would
            if delay > 0:
                time.sleep(delay)
            r2 = (xx - x0) ** 2 + (yy - y0) ** 2
            images[i] = np.exp(-0.5 * r2 / max(float(sigma), 1e-3) ** 2)
        return np.clip(images, 0.0, 1.0)
