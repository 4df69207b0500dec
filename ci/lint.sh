#!/usr/bin/env bash
# ruff over the whole tree, mypy over the package, stubtest over the compiled
# extensions (configuration: pyproject.toml, ci/stubtest.ini, ci/stubtest-allowlist.txt).
# Runs in the virtual environment ci/test.sh made (the extensions built in place).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check toondb tests bench examples
.venv/bin/python -m mypy
# every compiled module (toondb/**/_x.pyx -> toondb.**._x) against its .pyi
mapfile -t extensions < <(find toondb -name '*.pyx' | sort | sed -e 's/\.pyx$//' -e 's|/|.|g')
.venv/bin/python -m mypy.stubtest --mypy-config-file ci/stubtest.ini \
    --allowlist ci/stubtest-allowlist.txt "${extensions[@]}"
