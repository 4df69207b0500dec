"""Benchmark runs kept in a toondb database, as three SQL tables (query them with
``toondb sql PATH "SELECT ..."``):

==============  ===========================================================================
table           columns
==============  ===========================================================================
bench_runs      id (INTEGER PRIMARY KEY), started (ISO 8601, UTC), machine_id, machine (JSON
                of pytest-benchmark's machine info), commit_id, branch, dirty (0/1),
                commit_info (JSON), passed (the gate's verdict: 1, 0, or NULL if no gate)
bench_results   run_id, fullname (together the PRIMARY KEY), name, grp, best, median, mean,
                stddev, iqr (seconds), rounds, extra_info (JSON)
bench_ratios    run_id, name (together the PRIMARY KEY), value
==============  ===========================================================================

A run is written in one transaction: a reader sees all of it or none of it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from toondb.benchgate.run import BenchResult, Run

__all__ = ["save_run", "load_runs"]

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bench_runs (id INTEGER PRIMARY KEY, started TEXT, "
    "machine_id TEXT, machine TEXT, commit_id TEXT, branch TEXT, dirty INTEGER, "
    "commit_info TEXT, passed INTEGER)",
    "CREATE TABLE IF NOT EXISTS bench_results (run_id INTEGER, fullname TEXT, name TEXT, "
    "grp TEXT, best REAL, median REAL, mean REAL, stddev REAL, iqr REAL, rounds INTEGER, "
    "extra_info TEXT, PRIMARY KEY (run_id, fullname))",
    "CREATE TABLE IF NOT EXISTS bench_ratios (run_id INTEGER, name TEXT, value REAL, "
    "PRIMARY KEY (run_id, name))",
)


def save_run(path: str | os.PathLike[str], run: Run) -> int:
    """Append run to the store at path (created if missing); its new id."""
    from toondb.database import Database

    with Database.open(path) as db:
        for sql in SCHEMA:
            db.execute_sql(sql)
        with db.transaction(immediate=True) as txn:
            commit = run.commit or {}
            res = txn.execute_sql(
                "INSERT INTO bench_runs (started, machine_id, machine, commit_id, branch, "
                "dirty, commit_info, passed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.started,
                    run.machine_id,
                    json.dumps(run.machine, sort_keys=True),
                    str(commit.get("id") or ""),
                    str(commit.get("branch") or ""),
                    1 if commit.get("dirty") else 0,
                    json.dumps(commit, sort_keys=True),
                    None if run.passed is None else int(run.passed),
                ),
            )
            assert res.lastrowid is not None  # an INSERT's rowid
            run_id = int(res.lastrowid)
            if run.results:
                txn.executemany(
                    "INSERT INTO bench_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            run_id,
                            r.fullname,
                            r.name,
                            r.group,
                            r.best,
                            r.median,
                            r.mean,
                            r.stddev,
                            r.iqr,
                            r.rounds,
                            json.dumps(r.extra_info, sort_keys=True),
                        )
                        for r in run.results
                    ],
                )
            if run.ratios:
                txn.executemany(
                    "INSERT INTO bench_ratios VALUES (?, ?, ?)",
                    [(run_id, name, value) for name, value in sorted(run.ratios.items())],
                )
    run.id = run_id
    return run_id


def load_runs(
    path: str | os.PathLike[str],
    *,
    machine_id: str | None = None,
    passed_only: bool = False,
    last: int | None = None,
) -> list[Run]:
    """The runs stored at path, oldest first: only those of machine_id if given, only
    those that passed their gate (or had none) if passed_only, the last `last` ones."""
    from toondb.database import Database

    if not os.path.exists(os.path.join(path, "toondb.data")) and not os.path.isfile(path):
        return []
    with Database.open(path, read_only=True) as db:
        txn = db.begin_transaction(read_only=True)  # one snapshot for the three tables
        try:
            return _load(txn, machine_id, passed_only, last)
        finally:
            txn.abort()


def _load(txn: Any, machine_id: str | None, passed_only: bool, last: int | None) -> list[Run]:
    if not txn.execute_sql("PRAGMA table_info(bench_runs)").rows:
        return []
    where, params = [], []
    if machine_id is not None:
        where.append("machine_id = ?")
        params.append(machine_id)
    if passed_only:
        where.append("(passed IS NULL OR passed = 1)")
    sql = "SELECT id, started, machine_id, machine, commit_info, passed FROM bench_runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC"
    if last is not None:
        sql += f" LIMIT {int(last)}"
    runs = []
    for rid, started, mid, machine, commit, passed in reversed(txn.execute_sql(sql, params).rows):
        results = [
            BenchResult(
                fullname=row[0],
                name=row[1],
                group=row[2],
                best=row[3],
                median=row[4],
                mean=row[5],
                stddev=row[6],
                iqr=row[7],
                rounds=row[8],
                extra_info=json.loads(row[9] or "{}"),
            )
            for row in txn.execute_sql(
                "SELECT fullname, name, grp, best, median, mean, stddev, iqr, rounds, "
                "extra_info FROM bench_results WHERE run_id = ? ORDER BY fullname",
                (rid,),
            ).rows
        ]
        ratios = dict(
            txn.execute_sql(
                "SELECT name, value FROM bench_ratios WHERE run_id = ? ORDER BY name", (rid,)
            ).rows
        )
        runs.append(
            Run(
                started=started,
                machine_id=mid,
                machine=json.loads(machine or "{}"),
                commit=json.loads(commit or "{}"),
                results=results,
                ratios=ratios,
                id=rid,
                passed=None if passed is None else bool(passed),
            )
        )
    return runs
