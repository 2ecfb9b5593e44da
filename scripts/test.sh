#!/usr/bin/env bash
# The test command: lint, then the whole suite (CPU, a few minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check magan_gui tests
QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest "$@"
