"""A regression gate for pytest-benchmark runs, with its history kept in a toondb
database.

The pytest plugin (toondb.pytest_plugin) drives it: ``--toondb-bench-store PATH``
stores each run (machine info, commit, every benchmark's statistics, the ratios of
the run); ``--toondb-bench-gate`` fails a run that breaks a floor of the floors
file (``--toondb-bench-floors FILE``) or is slower than its stored history (see
``gate``). ``bench_history(PATH)`` prints the trend (the ``toondb bench-history``
command).

- ``run``: a run's results and its ratios (the engine / ops / size conventions of
  ``benchmark.extra_info``, and ``extra_info["ratios"]``);
- ``store``: the runs as SQL tables in a toondb database;
- ``gate``: floors and history checks, and their report;
- ``history``: the trend table and chart.
"""

from __future__ import annotations

from toondb.benchgate.gate import DEFAULT_THRESHOLD, Floor, Floors, Report, evaluate, load_floors
from toondb.benchgate.history import bench_history
from toondb.benchgate.run import BenchResult, Run, collect, ratios_of
from toondb.benchgate.store import load_runs, save_run

__all__ = [
    "BenchResult",
    "Run",
    "collect",
    "ratios_of",
    "save_run",
    "load_runs",
    "Floor",
    "Floors",
    "Report",
    "load_floors",
    "evaluate",
    "DEFAULT_THRESHOLD",
    "bench_history",
]
