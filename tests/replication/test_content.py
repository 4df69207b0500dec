"""SQL tables (with their indexes) and vector indexes come through replication like
key-value data (they are named trees: pages too): a restore and a follower answer
queries exactly as the primary does, and every tree holds the same bytes."""

from __future__ import annotations

import threading
import time

import numpy as np

from toondb import Database
from toondb.replication import Follower, Replicator, restore


def trees(db: Database) -> dict:
    with db.transaction(read_only=True) as t:
        out = {None: list(t.scan(b""))}
        for name in t.tree_names():
            out[name] = list(t.tree(name).scan())
    return out


def answers(db: Database, queries: np.ndarray) -> tuple:
    sql = db.execute_sql(
        "SELECT city, count(*), sum(score), max(name) FROM people GROUP BY city ORDER BY city"
    ).rows
    by_index = db.execute_sql("SELECT id FROM people WHERE city = 'Oslo' ORDER BY id").rows
    index = db.vector_index("emb")
    found = [[(n.id, round(n.distance, 6)) for n in index.search(q, k=5)] for q in queries]
    return sql, by_index, found


def test_sql_tables_and_vector_indexes_come_through(tmp_path, store_url):
    rnd = np.random.default_rng(5)
    primary = Database.open(tmp_path / "db")
    primary.execute_sql(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, city TEXT, score REAL)"
    )
    primary.execute_sql("CREATE INDEX people_city ON people (city)")
    primary.create_vector_index("emb", 16, metric="l2")
    stop = threading.Event()
    r = Replicator(tmp_path / "db", store_url, interval=0.05)
    rt = threading.Thread(target=r.run, args=(stop,), daemon=True)
    rt.start()
    deadline = time.monotonic() + 20
    while r.awaiting_first or r.manifest is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    f = Follower(store_url, tmp_path / "replica", interval=0.05)
    fstop = threading.Event()
    ft = threading.Thread(target=f.run, args=(fstop,), daemon=True)
    ft.start()
    cities = ["Oslo", "Lima", "Pune", "Kyiv"]
    index = primary.vector_index("emb")
    for round_ in range(8):
        rows = [(round_ * 100 + i, f"n{i}", cities[i % 4], float(i)) for i in range(100)]
        primary.executemany("INSERT INTO people VALUES (?, ?, ?, ?)", rows)
        primary.execute_sql("UPDATE people SET score = score * 2 WHERE id % 7 = ?", [round_])
        primary.execute_sql("DELETE FROM people WHERE id % 11 = ?", [round_])
        index.add(np.arange(round_ * 60, round_ * 60 + 60), rnd.standard_normal((60, 16)))
        if round_ % 3 == 2:
            index.delete(np.arange(round_ * 60 - 30, round_ * 60 - 10))
        primary.put(b"round", str(round_).encode())
    primary.execute_sql("CREATE TABLE doomed (x)")
    primary.execute_sql("DROP TABLE doomed")
    final = primary.stats()["last_txn_id"]
    deadline = time.monotonic() + 30
    while f.pos is None or f.pos.txn < final:
        assert time.monotonic() < deadline, "the follower did not catch up"
        time.sleep(0.02)
    fstop.set()
    ft.join(30)
    stop.set()
    rt.join(30)
    queries = rnd.standard_normal((5, 16))
    expected = answers(primary, queries)
    want = trees(primary)
    restore(store_url, tmp_path / "restored")
    for where in ("replica", "restored"):
        with Database.open(tmp_path / where, read_only=True) as copy:
            copy.check()
            assert trees(copy) == want, where
            assert answers(copy, queries) == expected, where
    primary.close()
