#!/usr/bin/env bash
# Build the wheel and prove it works on its own: install it (not editable) into a fresh virtual
# environment outside the checkout, then run the commands from a folder where the checkout is not
# on sys.path.  Catches package data (presets, the example plugin) left out of the wheel.
# Needs .venv from scripts/setup.sh (setuptools in it: the build runs without network access).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PY=${PYTHON:-python3}

# --no-build-isolation builds with .venv's setuptools (torch==2.13.0 brings it in setup.sh).
if ! "$repo/.venv/bin/python" -c "import setuptools" 2>/dev/null; then
    echo "check_wheel: .venv has no setuptools; run: .venv/bin/python -m pip install 'setuptools>=68'" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Build from a copy of the files git would commit (tracked and new, not ignored): a stale build/
# or a local ignored file in the checkout must not make a wheel that only works here.
mkdir "$tmp/src"
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done \
    | tar --null -T - -cf - | tar -C "$tmp/src" -xf -
(cd "$tmp/src" && "$repo/.venv/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w "$tmp/dist" .)
wheel=$(ls "$tmp"/dist/magan_gui-*.whl)
echo "built $(basename "$wheel")"

# Torch first: the pinned CPU build is on local disk; a bare "torch" could pull the CUDA build.
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q "torch==2.13.0"
"$tmp/venv/bin/python" -m pip install -q "$wheel"

# From here on nothing may come from the checkout.
cd "$tmp"
export PATH="$tmp/venv/bin:$PATH"
unset PYTHONPATH
magan --help >/dev/null
QT_QPA_PLATFORM=offscreen magan-gui --help >/dev/null
python - "$repo" <<'EOF'
import sys
from pathlib import Path

import magan_gui
from magan_gui import load_simulator
from magan_gui.core.presets import preset_names
from magan_gui.examples import example_plugin_path

where = Path(magan_gui.__file__).resolve()
assert Path(sys.argv[1]).resolve() not in where.parents, f"imported from the checkout: {where}"
print(preset_names())
assert {"quick", "full", "paper"} <= set(preset_names()), preset_names()
assert example_plugin_path().is_file(), example_plugin_path()
assert load_simulator(f"{example_plugin_path()}:Blob").name == "blob"
print(f"installed at {where.parent}; example plugin {example_plugin_path()}")
EOF
magan example --iterations 20 --dir "$tmp/example" --device cpu --quiet
test -s "$tmp/example/result.json"
echo "wheel check passed"
