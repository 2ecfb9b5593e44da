"""``magan-gui``: the desktop app.  With no arguments it opens on the paper's case study 1 closure test."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

from .main_window import MainWindow


def build_window(simulator: str = "lines", true: str | None = None, emulator: str | None = None) -> MainWindow:
    """A main window opened on ``simulator`` with true images from ``true`` (or a closure-test set)."""
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, useOpenGL=False)
    window = MainWindow()
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
    parser.add_argument("--simulator", default="lines", help="lines, circles or path/to/file.py:ClassName")
    parser.add_argument("--true", help="true images (.npz, .npy, .h5 or a folder); default: a closure-test set")
    parser.add_argument("--emulator", help="an emulator file trained before")
    args, qt_args = parser.parse_known_args(argv)
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("magan-gui")
    app.setOrganizationName("magan-gui")
    window = build_window(args.simulator, args.true, args.emulator)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
