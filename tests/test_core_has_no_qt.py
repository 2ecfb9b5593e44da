"""The engine, the benchmarks and the command line run without Qt; the engine imports none of the layers above it."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "magan_gui"
CORE_MODULES = sorted(f"magan_gui.core.{p.stem}" for p in (PACKAGE / "core").glob("*.py") if p.stem != "__init__")
QT_FREE_MODULES = CORE_MODULES + sorted(f"magan_gui.{group}.{p.stem}" for group in ("bench", "cli")
                                        for p in (PACKAGE / group).glob("*.py")
                                        if p.stem not in ("__init__", "__main__"))

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


def test_core_bench_and_cli_import_without_qt():
    assert "magan_gui.core.progress" in CORE_MODULES and len(CORE_MODULES) >= 10
    assert "magan_gui.bench.closure" in QT_FREE_MODULES and "magan_gui.cli.runs" in QT_FREE_MODULES
    script = f"MODULES = {QT_FREE_MODULES!r}\n" + SCRIPT
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"ok {len(QT_FREE_MODULES)}"


def _imported_packages(path: Path) -> set[str]:
    """The magan_gui sub-packages a module imports (relative imports resolved from magan_gui/core)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 2 and node.module:                       # from ..bench import ...
                found.add(node.module.split(".")[0])
            elif node.level == 0 and (node.module or "").startswith("magan_gui."):
                found.add(node.module.split(".")[1])
    return found


def test_the_engine_imports_no_layer_above_it():
    for path in (PACKAGE / "core").glob("*.py"):
        above = _imported_packages(path) & {"bench", "cli", "gui"}
        assert not above, f"{path.name} imports magan_gui.{sorted(above)}: the engine must stand alone"
