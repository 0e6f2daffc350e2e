#!/usr/bin/env bash
# Create ./.venv with torch 2.13.0 first (a CPU build: an unpinned torch pulls a multi-GB CUDA
# build), then weft with the extras given as arguments (default: ml).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-ml}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  .venv/bin/pip install --quiet torch==2.13.0
fi
.venv/bin/pip install --quiet -e ".[${extras}]"
