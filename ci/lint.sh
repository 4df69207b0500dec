#!/usr/bin/env bash
# ruff over the whole tree (configuration in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check toondb tests bench examples
