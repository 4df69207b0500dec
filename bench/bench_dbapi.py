"""The DB-API driver (toondb.dbapi) side by side with stdlib sqlite3 through the same
PEP 249 calls, in one run: ``executemany`` of 100k rows into an empty table and a
commit, then ``SELECT *`` and ``fetchall``.

Run: ``python -m pytest bench/bench_dbapi.py --benchmark-only`` (or
``bash ci/bench.sh dbapi``). sqlite3 runs in WAL mode with synchronous=NORMAL (as in
bench_sql.py); toondb with its defaults. A third engine, ``toondb-api``, does the same
through ``Database.executemany`` / ``execute_sql(...).rows``, to show what the
driver itself costs. Target (issue 17): within 1.5x of sqlite3's time, i.e. the
ratio toondb/sqlite3 of rates at least 0.67.
"""

from __future__ import annotations

import itertools
import sqlite3

import pytest

import toondb.dbapi
from toondb import Database

N = 100_000
SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL)"
INSERT = "INSERT INTO t VALUES (?, ?, ?, ?)"
SELECT = "SELECT * FROM t"
ROWS = [(i, (i * 7919) % N, f"name{i}", i * 0.5) for i in range(N)]
ENGINES = ("toondb", "sqlite3", "toondb-api")


def _connect(engine: str, path):
    if engine == "sqlite3":
        con = sqlite3.connect(str(path / "s.db"))
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
    elif engine == "toondb":
        con = toondb.dbapi.connect(str(path / "db"))
    else:
        return Database.open(path / "db")
    con.execute(SCHEMA)
    con.commit()
    return con


def _through_dbapi(con) -> int:
    con.executemany(INSERT, ROWS)
    con.commit()
    rows = con.execute(SELECT).fetchall()
    con.close()
    return len(rows)


def _through_database(db) -> int:
    db.execute_sql(SCHEMA)
    with db.transaction() as txn:
        txn.executemany(INSERT, ROWS)
    rows = db.execute_sql(SELECT).rows
    db.close()
    return len(rows)


@pytest.mark.parametrize("engine", ENGINES)
def test_executemany_and_fetchall(benchmark, engine, tmp_path):
    benchmark.group = "dbapi: executemany 100k rows + commit + fetchall"
    benchmark.extra_info.update(engine=engine, ops=N, unit="rows/s")
    counter = itertools.count()

    def setup():
        path = tmp_path / f"round{next(counter)}"
        path.mkdir()
        if engine == "toondb-api":
            return (Database.open(path / "db"),), {}
        return (_connect(engine, path),), {}

    run = _through_database if engine == "toondb-api" else _through_dbapi
    assert benchmark.pedantic(run, setup=setup, rounds=5, warmup_rounds=1) == N


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    path = tmp_path_factory.mktemp("dbapi-fetch")
    cons = {}
    for engine in ENGINES:
        (path / engine).mkdir()
        con = _connect(engine, path / engine)
        if engine == "toondb-api":
            con.execute_sql(SCHEMA)
            con.executemany(INSERT, ROWS)
        else:
            con.executemany(INSERT, ROWS)
            con.commit()
        cons[engine] = con
    yield cons
    for con in cons.values():
        con.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_fetchall_100k(benchmark, filled, engine):
    benchmark.group = "dbapi: SELECT * + fetchall of 100k rows"
    benchmark.extra_info.update(engine=engine, ops=N, unit="rows/s")
    con = filled[engine]
    if engine == "toondb-api":
        rows = benchmark(lambda: con.execute_sql(SELECT).rows)
    else:
        rows = benchmark(lambda: con.execute(SELECT).fetchall())
    assert len(rows) == N
