"""Example simulator plugin: a Gaussian spot on a 32x32 sensor, written in plain NumPy.

Use it as ``--simulator magan_gui/examples/blob_plugin.py:Blob`` from a checkout; from any install,
``magan plugin-template -o my_simulator.py`` writes a copy to start from.  It shows the whole plugin contract:
a class with name, image_shape, parameters, stochastic and simulate().  It is loaded by path, like
any plugin, so it imports only public names from ``magan_gui``.
"""

import numpy as np

from magan_gui import Parameter


class Blob:
    """A round Gaussian spot: centre (x0, y0), width sigma, peak brightness amp."""

    name = "blob"
    image_shape = (32, 32)
    parameters = [
        Parameter("x0", low=8.0, high=24.0, unit="px", default=16.0),
        Parameter("y0", low=8.0, high=24.0, unit="px", default=16.0),
        Parameter("sigma", low=1.0, high=4.0, unit="px", default=2.0),
        Parameter("amp", low=0.3, high=1.0, unit="", default=0.8),
    ]
    stochastic = False

    def simulate(self, params):
        """params: (N, 4) float32 tensor in physical units -> (N, 32, 32) NumPy images in [0, 1]."""
        p = np.asarray(params.detach().cpu(), dtype=np.float32)
        h, w = self.image_shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        x0, y0, sigma, amp = (p[:, i, None, None] for i in range(4))
        r2 = (xx - x0) ** 2 + (yy - y0) ** 2
        return np.clip(amp * np.exp(-0.5 * r2 / sigma**2), 0.0, 1.0)
