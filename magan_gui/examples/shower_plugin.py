"""Example black-box stochastic plugin: photon counts of a particle shower on a 20x48 strip.

Use it as ``--simulator magan_gui/examples/shower_plugin.py:Shower`` from a checkout.  It is what a
real Monte Carlo looks like to the engine: it draws its own random numbers (a NumPy generator of its
own, which nobody can share or seed from outside), its noise is counting (Poisson) noise whose size
depends on the parameters, and its image is not square.  The closure tests of the simulation
budget use it.
"""

import numpy as np

from magan_gui import Parameter

ROWS, DEPTH = 20, 48
FULL_SCALE = 40.0  # photon count shown as brightness 1


class Shower:
    """A shower entering from the left: total light, depth of its maximum, transverse width.

    The mean count in a pixel is the total light times a gamma-shaped longitudinal profile
    peaking at ``depth`` columns, times a Gaussian transverse profile of width ``width`` rows
    about the strip's centre; each pixel's count is Poisson-distributed about that mean.
    """

    name = "shower"
    image_shape = (ROWS, DEPTH)
    parameters = [
        Parameter("light", low=1000.0, high=4000.0, unit="photons", default=2500.0),
        Parameter("depth", low=8.0, high=32.0, unit="columns", default=18.0),
        Parameter("width", low=1.0, high=4.0, unit="rows", default=2.0),
    ]
    stochastic = True
    example_population = ((2500.0, 18.0, 2.2), (300.0, 3.0, 0.4))  # a closure test's truth: means, stds

    def __init__(self):
        self.rng = np.random.default_rng()

    def mean_counts(self, p: np.ndarray) -> np.ndarray:
        """Expected photon counts (N, 20, 48) for parameters (N, 3) in physical units."""
        light, depth, width = (p[:, i, None, None] for i in range(3))
        cols = np.arange(DEPTH, dtype=np.float64)[None, None, :] + 0.5
        rows = np.arange(ROWS, dtype=np.float64)[None, :, None] + 0.5
        shape = 4.0  # gamma profile t^(a-1) e^(-t/s) with its maximum at t = (a-1) s = depth
        scale = depth / (shape - 1.0)
        longitudinal = cols ** (shape - 1.0) * np.exp(-cols / scale)
        longitudinal = longitudinal / longitudinal.sum(axis=2, keepdims=True)
        transverse = np.exp(-0.5 * ((rows - ROWS / 2) / width) ** 2)
        transverse = transverse / transverse.sum(axis=1, keepdims=True)
        return light * longitudinal * transverse

    def simulate(self, params):
        """params: (N, 3) float32 tensor in physical units -> (N, 20, 48) NumPy images in [0, 1]."""
        p = np.asarray(params.detach().cpu(), dtype=np.float64)
        counts = self.rng.poisson(self.mean_counts(p))
        return np.clip(counts / FULL_SCALE, 0.0, 1.0).astype(np.float32)
