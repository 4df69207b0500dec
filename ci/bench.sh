#!/usr/bin/env bash
# Run the benchmarks side by side with their anchors and print the ratio tables.
#   bash ci/bench.sh            every suite in bench/
#   bash ci/bench.sh storage    only bench/bench_storage.py (likewise sql, hnsw_kernel, ipc, toon)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ $# -gt 0 ]; then
  files=(); for s in "$@"; do files+=("bench/bench_$s.py"); done
else
  files=(bench/bench_*.py)
fi
exec "$PY" -m pytest "${files[@]}" --benchmark-only -p no:cacheprovider -q \
  --benchmark-columns=median,iqr,rounds --benchmark-sort=name
