#!/usr/bin/env bash
# The README's test command: a virtual environment, the project with its test
# dependencies (editable, so the Cython extensions are built in place), pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest "$@"
