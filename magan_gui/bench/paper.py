"""The paper's published numbers (Alonso-Monsalve & Whitehead, IEEE TNNLS 2020), in one place.

The true populations of its closure tests (Tables I and II) are the built-in simulators'
``example_population``: they define the built-in examples, so they live with the simulators.
"""

from __future__ import annotations

from ..core.simulators import BUILTIN_SIMULATORS

# Tables I and II, the true rows: (means, stds) of the closure-test population per case study.
PAPER_TRUTH: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    name: cls.example_population for name, cls in BUILTIN_SIMULATORS.items()}

# Tables I and II, the best-match rows: means, then standard deviations.
PAPER_BEST_MATCH: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "lines": ((1.501, 9.988, 0.512, 9.003), (0.266, 0.418, 0.129, 0.432)),
    "circles": ((18.082, 18.035, 7.950, 0.152, 0.892), (0.833, 0.795, 0.411, 0.072, 0.083)),
}

# Table III: seconds for 10K / 100K / 1M images of the CPU simulator and the emulator on CPU and GPU.
PAPER_TABLE_III = {
    "lines": {"simulator": (2.143, 21.368, 213.798), "emulator_cpu": (6.539, 66.536, 672.633),
              "emulator_gpu": (1.625, 4.901, 36.656)},
    "circles": {"simulator": (47.367, 471.842, 4773.626), "emulator_cpu": (6.540, 66.541, 671.628),
                "emulator_gpu": (1.623, 4.907, 36.671)},
}
TABLE_III_IMAGES = (10000, 100000, 1000000)

# Where the figures put their columns, in iterations of the paper's runs: Fig. 4 of 500k lines
# pretraining iterations, Fig. 6 of 1M circles ones, Fig. 5 and 7 of 30k calibration iterations.
FIG4_COLUMNS = (1e3, 5e3, 1e4, 1e5, 5e5)
FIG6_COLUMNS = (1e3, 5e3, 1e4, 2e4, 5e4, 6e4, 7e4, 8e4, 1e5, 2e5, 5e5, 1e6)
FIG57_COLUMNS = (10, 100, 1e3, 1e4, 3e4)
PRETRAIN_ITERATIONS = {"lines": 5e5, "circles": 1e6}
CALIBRATION_ITERATIONS = 3e4
