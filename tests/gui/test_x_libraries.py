"""A machine without some of the X libraries Qt needs: one line naming every missing one as a package."""

from __future__ import annotations

import os
import subprocess
import sys

from magan_gui.gui.x_libraries import PACKAGES, parse_ldd, problem_line, uses_x11
from tests.conftest import REPO_ROOT

LDD_OUTPUT = """\tlinux-vdso.so.1 (0x00007ffd)
\tlibxcb-icccm.so.4 => not found
\tlibQt6Gui.so.6 => /venv/PySide6/Qt/lib/libQt6Gui.so.6 (0x00007f1)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
"""


def test_ldd_output_gives_each_missing_library_once_named_by_its_package():
    missing = parse_ldd(LDD_OUTPUT)
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    line = problem_line(missing)
    assert line.endswith("sudo apt-get install libxcb-icccm4 libxcb-keysyms1") and "\n" not in line
    assert problem_line([]) == "" and PACKAGES["libxcb-cursor.so.0"] == "libxcb-cursor0"


def test_only_the_x11_platform_is_checked():
    assert uses_x11({"QT_QPA_PLATFORM": "xcb"}) == sys.platform.startswith("linux")
    assert not uses_x11({"QT_QPA_PLATFORM": "offscreen"})
    assert not uses_x11({"WAYLAND_DISPLAY": "wayland-0"})


def test_the_app_says_what_to_install_instead_of_aborting(tmp_path):
    fake = tmp_path / "ldd"       # an ldd that reports two libraries missing, as on a bare machine
    fake.write_text("#!/bin/sh\nprintf '\\tlibxcb-icccm.so.4 => not found\\n\\tlibxcb-keysyms.so.1 => not found\\n'\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}", QT_QPA_PLATFORM="xcb")
    out = subprocess.run([sys.executable, "-m", "magan_gui.gui.app"], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    if not sys.platform.startswith("linux"):
        return
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "magan-gui: the app's X11 display needs system libraries that are missing (libxcb-icccm.so.4, "
        "libxcb-keysyms.so.1); on Debian/Ubuntu: sudo apt-get install libxcb-icccm4 libxcb-keysyms1"]
