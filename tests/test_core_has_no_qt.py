"""The engine and the command line run without Qt: nothing under magan_gui.core or magan_gui.cli imports it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CORE_MODULES = sorted(f"magan_gui.core.{p.stem}" for p in (REPO_ROOT / "magan_gui" / "core").glob("*.py")
                      if p.stem != "__init__")

SCRIPT = textwrap.dedent("""
    import importlib
    import sys

    BLOCKED = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6")

    class NoQt:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the engine must not import Qt")
            return None

    sys.meta_path.insert(0, NoQt())
    try:
        import PySide6  # noqa: F401
    except ImportError:
        pass
    else:
        sys.exit("the blocker does not work")

    for name in ["magan_gui", "magan_gui.cli", *MODULES]:
        importlib.import_module(name)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    if loaded:
        sys.exit(f"Qt modules loaded: {loaded}")
    print("ok", len(MODULES))
""")


def test_core_and_cli_import_without_qt():
    assert "magan_gui.core.progress" in CORE_MODULES and len(CORE_MODULES) >= 10
    script = f"MODULES = {CORE_MODULES!r}\n" + SCRIPT
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"ok {len(CORE_MODULES)}"
