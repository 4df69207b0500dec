"""Database.check(deep=True) (toondb.sql.integrity): every SQL row decodes and every
index holds exactly the entries its rows imply. Damage a page checksum cannot see
(rows forged with the checksum recomputed, index entries written or removed behind
the engine's back, a damaged catalog) is reported as CorruptionError naming it.

Also the typed error for an integer parameter outside 64 bits: sqlite3 raises
OverflowError("Python int too large to convert to SQLite INTEGER"); toondb raises
IntegerOverflowError, which is an OverflowError with that message, for every way
such a value can be bound."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from forgery import patch

from toondb import CorruptionError, Database, IntegerOverflowError, SQLError


def _fill(db: Database) -> None:
    db.execute_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER, x)")
    db.execute_sql("CREATE INDEX t_n ON t (n, x)")
    db.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?)",
        [(i, f"name-{i:04d}", i % 7, None if i % 5 else b"blob") for i in range(1, 301)],
    )
    db.execute_sql("INSERT INTO t (name, n) VALUES (NULL, NULL), (NULL, 3)")  # NULLs in UNIQUE
    db.execute_sql("ALTER TABLE t ADD COLUMN later TEXT DEFAULT 'd'")  # rows shorter than t
    db.execute_sql("CREATE INDEX t_later ON t (later)")
    db.execute_sql("CREATE TABLE plain (a, b REAL)")
    db.execute_sql("INSERT INTO plain VALUES ('only row', 1.5)")
    db.execute_sql("CREATE VIEW v AS SELECT id, name FROM t WHERE n > 2")


def test_deep_check_counts_every_row_and_index_entry(tmp_path):
    with Database.open(tmp_path / "db") as db:
        _fill(db)
        counts = db.check(deep=True)
        assert counts["sql_tables"] == 2
        assert counts["sql_rows"] == 303
        assert counts["sql_indexes"] == 3  # the UNIQUE constraint, t_n, t_later
        assert counts["sql_index_entries"] == 3 * 302
        assert "sql_rows" not in db.check()  # the default check is the page-level one
    with Database.open(tmp_path / "empty") as db:  # no SQL at all
        assert db.check(deep=True)["sql_tables"] == 0


@pytest.mark.damages_files
@pytest.mark.parametrize(
    "forged, fragment",
    [
        # a tag no writer uses: the row does not decode
        (b"\x0f", "does not decode"),
        # the text as a blob, validly encoded: the row no longer matches its index entries
        (b"\x09", "entry in index"),
    ],
)
def test_a_forged_row_is_found_by_the_deep_check(tmp_path, forged, fragment):
    db_path = tmp_path / "db"
    with Database.open(db_path) as db:
        _fill(db)
    # row 77 is [77, 'name-0077', 0, NULL] (4 values): forge the tag of its text value
    pages = patch(
        db_path, b"\x04\x03\x4d\x08\x09name-0077", b"\x04\x03\x4d" + forged + b"\x09name-0077"
    )
    assert min(pages) >= 2
    with Database.open(db_path) as db:
        db.check()  # every checksum holds: the page-level check cannot tell
        with pytest.raises(CorruptionError, match=fragment) as caught:
            db.check(deep=True)
        assert any("row key" in p for p in caught.value.problems)  # type: ignore[attr-defined]
    proc = subprocess.run(
        [sys.executable, "-m", "toondb", "check", "--deep", str(db_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc
    assert "is damaged" in proc.stderr and fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "toondb", "check", str(db_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc


@pytest.mark.damages_files
def test_index_entries_written_or_removed_behind_the_engine(tmp_path):
    db_path = tmp_path / "db"
    with Database.open(db_path) as db:
        _fill(db)
        index = next(n for n in db.begin_transaction().tree_names(b"sql:i:") if n.endswith(b".1"))
        with db.transaction() as txn:
            entries = list(txn.tree(index).scan())
            txn.tree(index).delete(entries[10][0])  # a row loses its entry
        with pytest.raises(CorruptionError, match="missing or wrong"):
            db.check(deep=True)
        with db.transaction() as txn:
            txn.tree(index).put(entries[10][0], entries[10][1])  # put back: all well
        db.check(deep=True)
        with db.transaction() as txn:
            txn.tree(index).put(b" zzz-stray\x00\x01", entries[0][1])  # an entry of no row
        with pytest.raises(CorruptionError, match="matches no row") as caught:
            db.check(deep=True)
        assert any("holds 303 entries for 302 rows" in p for p in caught.value.problems)  # type: ignore[attr-defined]


@pytest.mark.damages_files
def test_catalog_damage_and_orphan_trees(tmp_path):
    with Database.open(tmp_path / "db") as db:
        _fill(db)
        with db.transaction() as txn:
            txn.tree(b"sql:t:999", create=True).put(b"k" * 8, b"\x00")
        with pytest.raises(CorruptionError, match="belongs to no table"):
            db.check(deep=True)
        with db.transaction() as txn:
            txn.drop_tree(b"sql:t:999")
            txn.tree(b"sql:catalog").put(b"t:plain", b"{not json")
        with pytest.raises(CorruptionError, match="catalog entry b't:plain' does not decode"):
            db.check(deep=True)


# ---- integers outside 64 bits --------------------------------------------------------

_SQLITE_MESSAGE = "Python int too large to convert to SQLite INTEGER"


def _sqlite_error(sql: str, params) -> BaseException:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (a INTEGER)")
    con.execute("CREATE TABLE k (id INTEGER PRIMARY KEY)")
    with pytest.raises(OverflowError) as caught:
        con.execute(sql, params)
    return caught.value


@pytest.mark.parametrize(
    "sql, params",
    [
        ("SELECT ?", [1 << 64]),
        ("SELECT :v", {"v": -(1 << 63) - 1}),
        ("INSERT INTO t VALUES (?)", [1 << 63]),
        ("INSERT INTO k VALUES (?)", [1 << 70]),
        ("INSERT INTO k (id) VALUES (?)", [-(1 << 80)]),
        ("UPDATE t SET a = ?", [1 << 64]),
        ("SELECT * FROM k WHERE id = ?", [1 << 64]),
    ],
)
def test_a_parameter_outside_64_bits_is_the_sqlite3_overflow_error(open_db, sql, params):
    expected = _sqlite_error(sql, params)
    db = open_db()
    db.execute_sql("CREATE TABLE IF NOT EXISTS t (a INTEGER)")
    db.execute_sql("CREATE TABLE IF NOT EXISTS k (id INTEGER PRIMARY KEY)")
    db.execute_sql("INSERT INTO t VALUES (1)")
    with pytest.raises(IntegerOverflowError) as caught:
        db.execute_sql(sql, params)
    assert isinstance(caught.value, OverflowError) and isinstance(caught.value, SQLError)
    assert str(caught.value) == str(expected) == _SQLITE_MESSAGE
    # nothing was written, and the bounds themselves are fine
    assert db.execute_sql("SELECT a FROM t").rows == [(1,)]
    assert db.execute_sql("SELECT ?, ?", [(1 << 63) - 1, -(1 << 63)]).rows == [
        ((1 << 63) - 1, -(1 << 63))
    ]


def test_a_batch_with_one_overflowing_row_changes_nothing(open_db):
    db = open_db()
    db.execute_sql("CREATE TABLE k (id INTEGER PRIMARY KEY, v)")
    with pytest.raises(IntegerOverflowError, match=_SQLITE_MESSAGE):
        db.executemany("INSERT INTO k VALUES (?, ?)", [(1, "a"), (2, "b"), (1 << 64, "c")])
    assert db.execute_sql("SELECT count(*) FROM k").rows == [(0,)]
    with db.transaction() as txn:
        with pytest.raises(OverflowError):
            txn.execute_sql("INSERT INTO k VALUES (?, ?)", [7, 1 << 64])
        txn.execute_sql("INSERT INTO k VALUES (?, ?)", [7, "fine"])
    assert db.execute_sql("SELECT * FROM k").rows == [(7, "fine")]
