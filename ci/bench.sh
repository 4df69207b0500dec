#!/usr/bin/env bash
# Run the benchmarks side by side with their anchors and print the ratio tables.
#   bash ci/bench.sh            every suite in bench/
#   bash ci/bench.sh storage    only bench/bench_storage.py (likewise sql, dbapi, hnsw_kernel, ipc, toon)
#   bash ci/bench.sh --gate     the regression gate: a short subset (storage, SQL, DB-API, one
#                               vector search; IPC when redis-server is installed), every ratio
#                               checked against bench/floors.json (the issues' targets), the run
#                               stored in $TOONDB_BENCH_STORE (default .bench-history; see
#                               `toondb bench-history`); exits non-zero if a floor breaks or a
#                               benchmark is slower than its stored history allows
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ "${1:-}" = "--gate" ]; then
  shift
  export TOONDB_BENCH_NQ=${TOONDB_BENCH_NQ:-300}  # queries per vector search round
  subset=(
    bench/bench_storage.py
    bench/bench_sql.py
    bench/bench_dbapi.py
    "bench/bench_vector.py::test_search_single[768d-cos-10k-64]"
  )
  if command -v redis-server >/dev/null; then
    subset+=(bench/bench_ipc.py::test_get_one_client bench/bench_ipc.py::test_put_one_client)
  fi
  exec "$PY" -m pytest "${subset[@]}" --benchmark-only -p no:cacheprovider -q \
    --benchmark-columns=min,median,rounds --benchmark-sort=name \
    --benchmark-max-time=0.25 --benchmark-min-rounds=3 \
    --toondb-bench-gate --toondb-bench-floors bench/floors.json \
    --toondb-bench-store "${TOONDB_BENCH_STORE:-.bench-history}" "$@"
fi
if [ $# -gt 0 ]; then
  files=(); for s in "$@"; do files+=("bench/bench_$s.py"); done
else
  files=(bench/bench_*.py)
fi
exec "$PY" -m pytest "${files[@]}" --benchmark-only -p no:cacheprovider -q \
  --benchmark-columns=median,iqr,rounds --benchmark-sort=name
