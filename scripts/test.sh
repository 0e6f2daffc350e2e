#!/usr/bin/env bash
# Set up and run the whole test suite: services, virtualenv, lint, types, schema, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
bash scripts/setup.sh ml,dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/strawberry export-schema graph.schema:schema | diff -u schema.graphql - \
  || { echo "schema.graphql is stale: regenerate it" >&2; exit 1; }
.venv/bin/pytest "$@"
