"""``magan-gui``: the desktop app.  With no arguments it opens on the paper's case study 1 closure test."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

import pyqtgraph as pg
import torch
from PySide6.QtWidgets import QApplication

from ..core.errors import MaganError
from ..core.presets import load_preset
from .main_window import MainWindow
from .x_libraries import missing_libraries, problem_line, uses_x11


def settle_the_heap() -> None:
    """Load what training imports lazily, then take the objects alive now out of full garbage collections.

    A full collection scans every object (about 330,000 once torch's optimisers have imported
    torch._dynamo) for 150 ms, holding the interpreter lock: run from the worker thread, it froze
    the window that long.  Frozen objects are never scanned again.
    """
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first optimiser imports torch._dynamo
    gc.freeze()


def build_window(simulator: str = "lines", true: str | None = None, emulator: str | None = None,
                 preset: str = "quick") -> MainWindow:
    """A main window opened on ``simulator`` with true images from ``true`` (or a closure-test set), its run
    panels starting from ``preset``'s settings."""
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, useOpenGL=False)
    settle_the_heap()
    window = MainWindow()
    window.session.preset = preset
    if not window.true_panel.select_simulator(simulator):
        window.true_panel.select_simulator("lines")
    if true:
        window.true_panel.load(true)
    else:
        window.true_panel.generate()
    if emulator:
        window.pretrain_panel.load_emulator(emulator)
    return window


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``magan-gui``."""
    parser = argparse.ArgumentParser(prog="magan-gui", description=__doc__.splitlines()[0])
    parser.add_argument("--simulator", default="lines", help="lines, circles, path/to/file.py:ClassName "
                        "or path/to/sim.toml (an external program)")
    parser.add_argument("--true", help="true images (.npz, .npy, .h5, a folder, or file.root[:selector]); "
                        "default: a closure-test set")
    parser.add_argument("--emulator", help="an emulator file trained before")
    parser.add_argument("--preset", default="quick", help="the run panels' starting settings: quick (default), "
                        "full, paper or a preset file (.toml)")
    args, qt_args = parser.parse_known_args(argv)
    try:
        load_preset(args.preset)
    except MaganError as exc:
        print(f"magan-gui: {exc}", file=sys.stderr)
        return 2
    if QApplication.instance() is None and uses_x11():
        line = problem_line(missing_libraries())
        if line:  # Qt would abort (exit 134) naming at most one of them
            print(f"magan-gui: {line}", file=sys.stderr)
            return 2
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("magan-gui")
    app.setOrganizationName("magan-gui")
    window = build_window(args.simulator, args.true, args.emulator, args.preset)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
