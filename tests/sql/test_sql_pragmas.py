"""The PRAGMAs and maintenance statements an application runs against SQLite
(docs/sql.md, "PRAGMAs and maintenance statements"): each queried and set, with
SQLite's answer where SQLite's is the reference (stdlib sqlite3; pysqlite3 for
table_list where the stdlib's SQLite is older)."""

from __future__ import annotations

import sqlite3

import pytest

import toondb.dbapi
from toondb import Database
from toondb.errors import NotSupportedError, SQLError


@pytest.fixture
def db(tmp_path):
    with Database.open(tmp_path / "db") as d:
        yield d


def one(db, sql):
    return db.execute(sql).rows


def sqlite_answer(sql_set, sql_get):
    con = sqlite3.connect(":memory:")
    try:
        con.execute(sql_set)
        return con.execute(sql_get).fetchall()
    finally:
        con.close()


INT32_VALUES = ["2147483648", "-1", "'7'", "3.9", "-2147483648", "-2147483649", "4294967297"]
INT32_VALUES += ["'abc'", "'12abc'", "'  12'", "99999999999999999999", "0", "+5", "'-0012'"]


@pytest.mark.parametrize("name", ["user_version", "application_id"])
@pytest.mark.parametrize("value", INT32_VALUES)
def test_stored_integers_truncate_as_sqlite(db, name, value):
    assert one(db, f"PRAGMA {name}") == [(0,)]
    db.execute(f"PRAGMA {name} = {value}")
    assert one(db, f"PRAGMA {name}") == sqlite_answer(f"PRAGMA {name} = {value}", f"PRAGMA {name}")


def test_user_version_persists_and_rolls_back(tmp_path):
    path = tmp_path / "db"
    with Database.open(path) as d:
        d.execute("PRAGMA user_version = 7")
        d.execute("PRAGMA application_id = 1234")
        d.execute("BEGIN")
        d.execute("PRAGMA user_version = 8")
        assert one(d, "PRAGMA user_version") == [(8,)]
        d.execute("ROLLBACK")
        assert one(d, "PRAGMA user_version") == [(7,)]
        with Database.open(path) as other:  # another handle sees it
            assert one(other, "PRAGMA user_version") == [(7,)]
        with d.transaction() as txn:
            txn.execute("PRAGMA user_version = 9")
        assert one(d, "PRAGMA user_version") == [(9,)]
    with Database.open(path) as d:
        assert one(d, "PRAGMA user_version") == [(9,)]
        assert one(d, "PRAGMA application_id") == [(1234,)]


def test_user_version_undone_with_a_failing_statement_in_a_transaction(db):
    db.execute("CREATE TABLE t (a INT)")
    db.execute("BEGIN")
    db.execute("PRAGMA user_version = 3")
    with pytest.raises(SQLError):
        db.execute("INSERT INTO nosuch VALUES (1)")
    db.execute("COMMIT")
    assert one(db, "PRAGMA user_version") == [(3,)]


def test_journal_mode_is_wal(db):
    assert one(db, "PRAGMA journal_mode") == [("wal",)]
    for mode in ("WAL", "DELETE", "memory", "bogus"):
        res = db.execute(f"PRAGMA journal_mode = {mode}")
        assert res.columns == ["journal_mode"] and res.rows == [("wal",)]


@pytest.mark.parametrize(
    "value", ["NORMAL", "FULL", "OFF", "EXTRA", "0", "1", "2", "3", "bogus", "'full'", "on", "no"]
)
def test_synchronous_values_as_sqlite(tmp_path, value):
    level = sqlite_answer(f"PRAGMA synchronous = {value}", "PRAGMA synchronous")[0][0]
    mode = {0: "off", 1: "normal"}.get(level, "full")  # EXTRA (3) is full
    with Database.open(tmp_path / "db", config={"sync_mode": mode}) as d:
        assert one(d, "PRAGMA synchronous") == [({"off": 0, "normal": 1}.get(mode, 2),)]
        d.execute(f"PRAGMA synchronous = {value}")  # the mode in force: accepted
        other = "off" if mode != "off" else "full"
    with Database.open(tmp_path / "db2", config={"sync_mode": other}) as d:
        with pytest.raises(NotSupportedError, match="sync_mode"):
            d.execute(f"PRAGMA synchronous = {value}")
        assert d.stats()["sync_mode"] == other


def test_busy_timeout_is_the_write_lock_wait(db):
    assert one(db, "PRAGMA busy_timeout") == [(10000,)]
    assert one(db, "PRAGMA busy_timeout = 250") == [(250,)]
    assert one(db, "PRAGMA busy_timeout") == [(250,)]
    assert db.config["lock_timeout"] == 0.25
    for value in ("-5", "'abc'", "5000"):
        assert one(db, f"PRAGMA busy_timeout = {value}") == sqlite_answer(
            f"PRAGMA busy_timeout = {value}", "PRAGMA busy_timeout"
        )


def test_busy_timeout_bounds_the_wait_for_the_writer(tmp_path):
    from toondb.errors import DatabaseLockedError

    path = tmp_path / "db"
    with Database.open(path) as a, Database.open(path) as b:
        a.execute("CREATE TABLE t (x)")
        b.execute("PRAGMA busy_timeout = 50")
        a.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(DatabaseLockedError):
                b.execute("INSERT INTO t VALUES (1)")
        finally:
            a.execute("ROLLBACK")
        b.execute("INSERT INTO t VALUES (1)")


def test_integrity_and_quick_check_ok(db):
    db.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT UNIQUE)")
    db.execute("INSERT INTO t VALUES (1, 'x'), (2, 'y')")
    for sql in ("PRAGMA integrity_check", "PRAGMA quick_check", "PRAGMA integrity_check(5)"):
        res = db.execute(sql)
        assert res.rows == [("ok",)]
        assert res.columns == [sql.split()[1].split("(")[0]]


@pytest.mark.damages_files
def test_integrity_check_reports_damage_as_rows(tmp_path):
    with Database.open(tmp_path / "db") as d:
        d.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
        d.execute("INSERT INTO t VALUES (1, 'x'), (2, 'y'), (3, 'z')")
        with d.transaction() as txn:
            rows = [n for n in txn.tree_names(b"sql:t:")][0]
            tree = txn.tree(rows)
            for key, _ in list(tree.scan()):
                tree.put(key, b"\xff\xfe not a row")
        problems = one(d, "PRAGMA integrity_check")
        assert problems and problems != [("ok",)]
        assert all(isinstance(p, str) for (p,) in problems)
        assert len(one(d, "PRAGMA integrity_check(1)")) == 1
        assert one(d, "PRAGMA quick_check") == [("ok",)]  # the page file itself is sound


def test_session_settings_recorded(db):
    assert one(db, "PRAGMA cache_size") == [(-2000,)]
    assert one(db, "PRAGMA temp_store") == [(0,)]
    assert one(db, "PRAGMA mmap_size") == [(0,)]
    db.execute("PRAGMA cache_size = 100")
    assert one(db, "PRAGMA cache_size") == [(100,)]
    for value, want in (("MEMORY", 2), ("FILE", 1), ("2", 2), ("DEFAULT", 0), ("bogus", 0)):
        db.execute(f"PRAGMA temp_store = {value}")
        assert one(db, "PRAGMA temp_store") == [(want,)]
        assert [(want,)] == sqlite_answer(f"PRAGMA temp_store = {value}", "PRAGMA temp_store")
    assert one(db, "PRAGMA mmap_size = 268435456") == [(268435456,)]
    assert one(db, "PRAGMA mmap_size") == [(268435456,)]


def test_page_counts_are_the_storage_s(db):
    stats = db.stats()
    assert one(db, "PRAGMA page_size") == [(stats["page_size"],)]
    db.execute("PRAGMA page_size = 512")  # no effect on an existing database, as SQLite
    assert one(db, "PRAGMA page_size") == [(stats["page_size"],)]
    db.execute("CREATE TABLE t (a)")
    db.execute("INSERT INTO t VALUES (?)", [(i,) for i in range(2000)])
    db.execute("DELETE FROM t")
    stats = db.stats()
    assert one(db, "PRAGMA page_count") == [(stats["pages"],)]
    assert one(db, "PRAGMA freelist_count") == [(stats["pages_free"],)]


def test_wal_checkpoint_and_optimize(db):
    db.execute("CREATE TABLE t (a)")
    db.execute("INSERT INTO t VALUES (1)")
    for sql in ("PRAGMA wal_checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)"):
        res = db.execute(sql)
        assert res.columns == ["busy", "log", "checkpointed"] and res.rows == [(0, 0, 0)]
    assert db.stats()["durable_txn_id"] == db.stats()["last_txn_id"]
    db.execute("BEGIN")
    with pytest.raises(SQLError, match="locked"):
        db.execute("PRAGMA wal_checkpoint")
    db.execute("ROLLBACK")
    res = db.execute("PRAGMA optimize")
    assert res.rows == []


def test_table_list_as_sqlite(db):
    sqlite = pytest.importorskip("pysqlite3.dbapi2")
    schema = [
        "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c)",
        "CREATE TABLE s (x INT, y TEXT) STRICT",
        "CREATE VIEW v AS SELECT a, b FROM t",
    ]
    con = sqlite.connect(":memory:")
    for sql in schema:
        db.execute(sql)
        con.execute(sql)
    res = db.execute("PRAGMA table_list")
    assert res.columns == ["schema", "name", "type", "ncol", "wr", "strict"]
    theirs = [r for r in con.execute("PRAGMA table_list").fetchall() if r[0] == "main"]
    assert sorted(res.rows) == sorted(theirs)
    assert one(db, "PRAGMA table_list(s)") == con.execute("PRAGMA table_list(s)").fetchall()


def test_unknown_pragma_still_refused(db):
    with pytest.raises(SQLError, match="unsupported PRAGMA"):
        db.execute("PRAGMA no_such_pragma")


def test_vacuum(db):
    db.execute("CREATE TABLE t (a)")
    db.execute("INSERT INTO t VALUES (1)")
    assert db.execute("VACUUM").rows is None or db.execute("VACUUM").rows == []
    db.execute("VACUUM main")
    assert db.stats()["durable_txn_id"] == db.stats()["last_txn_id"]
    db.execute("BEGIN")
    with pytest.raises(SQLError, match="cannot VACUUM from within a transaction"):
        db.execute("VACUUM")
    db.execute("ROLLBACK")
    with db.transaction() as txn:
        with pytest.raises(SQLError, match="cannot VACUUM from within a transaction"):
            txn.execute("VACUUM")
    assert one(db, "SELECT a FROM t") == [(1,)]


def test_analyze(db):
    db.execute("CREATE TABLE t (a, b)")
    db.execute("CREATE INDEX t_a ON t(a)")
    for sql in (
        "ANALYZE",
        "ANALYZE t",
        "ANALYZE T",
        "ANALYZE t_a",
        "ANALYZE main",
        "ANALYZE main.t",
    ):
        db.execute(sql)
    con = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as theirs:
        con.execute("ANALYZE nosuch")
    with pytest.raises(SQLError) as ours:
        db.execute("ANALYZE nosuch")
    assert str(ours.value) == str(theirs.value)


def test_over_the_dbapi_driver(tmp_path):
    con = toondb.dbapi.connect(str(tmp_path / "db"))
    try:
        cur = con.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        assert cur.fetchall() == [("wal",)]
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=3000")
        cur.execute("PRAGMA user_version")
        assert cur.fetchone() == (0,)
        cur.execute("CREATE TABLE t (a)")
        cur.execute("INSERT INTO t VALUES (1)")
        cur.execute("PRAGMA user_version = 5")
        con.commit()
        cur.execute("PRAGMA user_version")
        assert cur.fetchone() == (5,)
        cur.execute("PRAGMA integrity_check")
        assert cur.fetchall() == [("ok",)]
        cur.execute("ANALYZE")
        cur.execute("PRAGMA optimize")
        cur.execute("VACUUM")
    finally:
        con.close()
    con = toondb.dbapi.connect(str(tmp_path / "db"))
    try:
        assert con.execute("PRAGMA user_version").fetchone() == (5,)
    finally:
        con.close()


def test_over_sqlalchemy_connect_hook(tmp_path):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy import event, text

    engine = sqlalchemy.create_engine(f"toondb:///{tmp_path / 'db'}")

    @event.listens_for(engine, "connect")
    def _startup(dbapi_con, _record):  # a SQLite application's usual startup PRAGMAs
        cur = dbapi_con.cursor()
        for sql in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA busy_timeout=5000",
            "PRAGMA foreign_keys=ON",
            "PRAGMA cache_size=-64000",
            "PRAGMA temp_store=MEMORY",
        ):
            cur.execute(sql)
        cur.close()

    try:
        with engine.begin() as con:
            con.execute(text("CREATE TABLE t (a INTEGER PRIMARY KEY)"))
            con.execute(text("PRAGMA user_version = 3"))
        with engine.connect() as con:
            assert con.execute(text("PRAGMA user_version")).all() == [(3,)]
            assert con.execute(text("PRAGMA busy_timeout")).all() == [(5000,)]
            assert con.execute(text("PRAGMA integrity_check")).all() == [("ok",)]
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
            con.execute(text("VACUUM"))
            con.execute(text("ANALYZE"))
    finally:
        engine.dispose()
