#!/usr/bin/env bash
# Set up and serve weft on the embedded default: SQLite, a local object folder and in-process
# jobs under ./weft-data. GraphiQL opens at the printed address.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh ml
exec .venv/bin/weft serve "$@"
