"""Example files shipped with the package: ``blob_plugin.py``, a complete simulator plugin, and
``shower_plugin.py``, a black-box stochastic one (its own NumPy generator, counting noise, 20x48).

The plugin is loaded by path like any user plugin (``--simulator PATH:Blob``); these functions say
where the installed copy is, so it can be used, or copied as a template, from a wheel install too.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["example_plugin_path", "example_plugin_source"]


def example_plugin_path() -> Path:
    """Path of the installed ``blob_plugin.py`` (its class is ``Blob``)."""
    # Wheels and editable installs put the package on disk, so the resource is a real file.
    return Path(str(files(__name__) / "blob_plugin.py"))


def example_plugin_source() -> str:
    """The text of ``blob_plugin.py``, to start a plugin of one's own from."""
    return (files(__name__) / "blob_plugin.py").read_text(encoding="utf-8")
