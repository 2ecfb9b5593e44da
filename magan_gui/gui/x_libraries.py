"""Which system libraries Qt's X11 platform plugin lacks, named as Debian/Ubuntu packages.

Without them Qt aborts at start with a message that names only one library (and often the wrong
one).  This looks before Qt does: ``ldd`` on the plugin lists every library that cannot be found.
Run ``python -m magan_gui.gui.x_libraries`` to check a machine (``scripts/setup.sh`` does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# the library files Qt 6's xcb plugin loads, by the Debian/Ubuntu package that ships each
PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-sync.so.1": "libxcb-sync1", "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-xinput.so.0": "libxcb-xinput0", "libxcb-util.so.1": "libxcb-util1", "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1", "libX11.so.6": "libx11-6", "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1", "libOpenGL.so.0": "libopengl0", "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6", "libdbus-1.so.3": "libdbus-1-3", "libglib-2.0.so.0": "libglib2.0-0",
    "libSM.so.6": "libsm6", "libICE.so.6": "libice6",
}


def parse_ldd(text: str) -> list[str]:
    """The library names ``ldd`` reports as 'not found', in order, without repeats."""
    missing: list[str] = []
    for line in text.splitlines():
        name, _, where = line.strip().partition("=>")
        if "not found" in where and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def xcb_plugin() -> Path | None:
    """PySide6's X11 platform plugin, if this PySide6 has one."""
    import PySide6  # the package only: no Qt library is loaded

    path = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return path if path.is_file() else None


def missing_libraries() -> list[str]:
    """Libraries the xcb plugin needs and the system lacks ([] when all are there, or nothing to check)."""
    plugin = xcb_plugin()
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_ldd(out.stdout)


def problem_line(missing: list[str]) -> str:
    """One line naming what to install, or '' when nothing is missing."""
    if not missing:
        return ""
    packages = [PACKAGES.get(name, name) for name in missing]
    return (f"the app's X11 display needs system libraries that are missing ({', '.join(missing)}); on "
            f"Debian/Ubuntu: sudo apt-get install {' '.join(dict.fromkeys(packages))}")


def uses_x11(environ: dict[str, str] | None = None) -> bool:
    """True when Qt would pick its X11 plugin: Linux, and no other platform asked for."""
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if not sys.platform.startswith("linux"):
        return False
    if platform:
        return platform == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def main() -> int:
    line = problem_line(missing_libraries())
    if line:
        print(f"magan-gui: {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
