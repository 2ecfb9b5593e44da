"""magan-gui: calibrate a simulator against detector images with a model-assisted GAN.

The engine (``magan_gui.core``) runs without Qt; the app lives in ``magan_gui.gui``.
"""

from .core.parameters import Parameter
from .core.simulators import SimulatorError, load_simulator

__version__ = "0.1.0"

__all__ = ["Parameter", "SimulatorError", "load_simulator", "__version__"]
