#!/usr/bin/env bash
# Create .venv and install magan-gui (editable) with its test tools.  Torch is pinned to the
# CPU build that pip finds locally; on a machine with CUDA, install the torch you want first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
# root: the tests write and read ROOT files; setuptools: check_wheel.sh builds offline
.venv/bin/python -m pip install -q -e ".[test,cluster,root]" "setuptools>=68"
# The app's X11 libraries (Linux): one line naming the missing packages, if any; the tests need none.
.venv/bin/python -m magan_gui.gui.x_libraries || true
