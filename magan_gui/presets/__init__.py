"""Package data: the shipped preset TOML files (quick, full, paper); read them with
:mod:`magan_gui.core.presets`.  This file only makes the folder a package that setuptools ships."""
