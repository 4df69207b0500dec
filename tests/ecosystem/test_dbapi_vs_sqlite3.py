"""toondb.dbapi side by side with stdlib sqlite3: the same statements on both give the
same rows, description names, rowcount and lastrowid, and the same exceptions by
their PEP 249 class; transactions begin and end at the same points.

Where toondb differs on purpose, the test says so (DIFFERENCES): PEP 249 over
sqlite3 for a syntax error and a missing table (ProgrammingError, where sqlite3 says
OperationalError) and for fetching after a statement that returned no rows (an
error, where sqlite3 returns nothing); an int beyond 64 bits is a DataError (sqlite3:
OverflowError, not a DB-API error).
"""

from __future__ import annotations

import datetime
import decimal
import sqlite3
import uuid

import pytest

import toondb.dbapi as tdb
from toondb import Database

PEP249 = (
    "IntegrityError",
    "ProgrammingError",
    "OperationalError",
    "DataError",
    "NotSupportedError",
    "InternalError",
    "InterfaceError",
    "DatabaseError",
    "Error",
    "Warning",
)

# (what sqlite3 raises, what toondb raises) for the cases where they differ on purpose
DIFFERENCES = {
    "syntax error": ("OperationalError", "ProgrammingError"),
    "no such table": ("OperationalError", "ProgrammingError"),
    "int beyond 64 bits": ("OverflowError", "DataError"),  # toondb's is an OverflowError too
}


def pep249_name(exc: BaseException, module) -> str:
    """The most specific PEP 249 class of module that exc is an instance of."""
    for name in PEP249:
        if isinstance(exc, getattr(module, name)):
            return name
    return type(exc).__name__


@pytest.fixture
def pair(tmp_path):
    """(module, connection) for sqlite3 and toondb, on fresh files; closed afterwards."""
    sq = sqlite3.connect(str(tmp_path / "sqlite.db"))
    tn = tdb.connect(str(tmp_path / "toondb"))
    yield [(sqlite3, sq), (tdb, tn)]
    sq.close()
    tn.close()


def run(module, con, sql, params=()):
    """What a statement gives through a fresh cursor: (names, rows, rowcount,
    lastrowid), or ("raises", PEP 249 class name)."""
    cur = con.cursor()
    try:
        cur.execute(sql, params)
    except Exception as e:  # noqa: BLE001  (compared by class below)
        return ("raises", pep249_name(e, module))
    names = None if cur.description is None else [d[0] for d in cur.description]
    rows = cur.fetchall() if names is not None else None
    return (names, rows, cur.rowcount, cur.lastrowid)


def same(pair, sql, params=()):
    got = [run(m, c, sql, params) for m, c in pair]
    assert got[0] == got[1], sql
    return got[1]


SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, score REAL, n INTEGER NOT NULL)"


def test_statements_give_the_same_rows_counts_and_ids(pair):
    same(pair, SCHEMA)
    same(pair, "INSERT INTO t (name, score, n) VALUES ('a', 1.5, 1)")
    same(pair, "INSERT INTO t (name, score, n) VALUES (?, ?, ?)", ("b", 2.5, 2))
    same(
        pair,
        "INSERT INTO t (name, score, n) VALUES (:name, :score, :n)",
        {"name": "c", "score": None, "n": 3},
    )
    same(pair, "INSERT INTO t (name, n) VALUES ('d', 4), ('e', 5)")
    same(pair, "SELECT id, name, score, n FROM t ORDER BY id")
    same(
        pair,
        "SELECT name AS who, n * 2 AS twice, score IS NULL FROM t WHERE n > ? ORDER BY n DESC",
        (2,),
    )
    same(pair, "SELECT count(*), sum(n), max(score) FROM t")
    same(pair, "UPDATE t SET score = 0 WHERE n >= 3")
    same(pair, "SELECT id FROM t")  # lastrowid stays the connection's last insert
    same(pair, "DELETE FROM t WHERE n = 5")
    same(pair, "INSERT OR REPLACE INTO t (id, name, n) VALUES (1, 'a2', 10)")
    same(pair, "INSERT OR IGNORE INTO t (name, n) VALUES ('b', 11)")
    same(pair, "REPLACE INTO t (id, name, n) VALUES (2, 'b2', 12)")
    same(pair, "SELECT * FROM t ORDER BY id")
    same(pair, "SELECT * FROM t WHERE id < 0")
    same(pair, "CREATE INDEX t_n ON t (n)")
    same(pair, "DROP INDEX t_n")
    same(pair, "")  # nothing to run: no result, rowcount -1
    same(pair, "  -- only a comment")
    same(pair, "SELECT 1;  -- a trailing comment is not a second statement")


def test_values_round_trip_the_same(pair):
    same(pair, "CREATE TABLE v (a, b INTEGER, c REAL, d TEXT, e BLOB)")
    values = [
        (None, 0, 0.0, "", b""),
        (1, -(2**63), -1.5e300, "é ünïcode ☃", b"\x00\xff"),
        (2**63 - 1, True, float("inf"), "x" * 1000, bytes(range(256))),
        ("12", "12", "1.5", 12, 3.25),  # affinity conversions
    ]
    for row in values:
        same(pair, "INSERT INTO v VALUES (?, ?, ?, ?, ?)", row)
    same(pair, "SELECT a, typeof(a), b, typeof(b), c, d, typeof(d), e FROM v ORDER BY rowid")


@pytest.mark.parametrize(
    "sql, params",
    [
        ("INSERT INTO t (name, n) VALUES ('a', 1)", ()),  # UNIQUE (the 2nd time)
        ("INSERT INTO t (name) VALUES ('z')", ()),  # NOT NULL
        ("INSERT INTO t (id, name, n) VALUES ('x', 'q', 1)", ()),  # datatype mismatch
        ("SELECT ?", (1, 2)),  # wrong number of parameters
        ("SELECT ?", ()),
        ("SELECT :a", {"b": 1}),
        ("SELECT ?", {"a": 1}),
        ("SELECT ?", ([1],)),  # a type nothing binds
        ("SELECT ?", (object(),)),
        ("SELECT 1; SELECT 2", ()),  # two statements
        ("SELECT nosuchfunction(1)", ()),
        ("COMMIT", ()),  # no transaction
        ("ROLLBACK", ()),
    ],
)
def test_errors_have_the_same_pep249_class(pair, sql, params):
    same(pair, SCHEMA)
    same(pair, "INSERT INTO t (name, n) VALUES ('a', 1)")
    pair_commit(pair)
    same(pair, sql, params)


def pair_commit(pair):
    for _, con in pair:
        con.commit()


@pytest.mark.parametrize(
    "why, sql, params",
    [
        ("syntax error", "SELEC 1", ()),
        ("no such table", "SELECT * FROM nowhere", ()),
        ("int beyond 64 bits", "INSERT INTO t (n) VALUES (?)", (2**64,)),
    ],
)
def test_errors_that_differ_on_purpose(pair, why, sql, params):
    same(pair, SCHEMA)
    got = [run(m, c, sql, params) for m, c in pair]
    assert got == [("raises", DIFFERENCES[why][0]), ("raises", DIFFERENCES[why][1])]


def test_executemany_counts_and_refuses_selects(pair):
    same(pair, SCHEMA)
    for module, con in pair:
        cur = con.cursor()
        cur.execute("INSERT INTO t (name, n) VALUES ('first', 0)")
        cur.executemany(
            "INSERT INTO t (name, n) VALUES (?, ?)", [(f"r{i}", i) for i in range(1, 6)]
        )
        assert cur.rowcount == 5
        assert cur.lastrowid == 1  # executemany leaves it
        cur.executemany("UPDATE t SET score = ? WHERE n = ?", iter([(1.0, 1), (2.0, 2), (3.0, 99)]))
        assert cur.rowcount == 2
        with pytest.raises(module.ProgrammingError):
            cur.executemany("SELECT ?", [(1,)])
        with pytest.raises(module.IntegrityError):
            cur.executemany("INSERT INTO t (name, n) VALUES (?, ?)", [("new", 1), ("r1", 1)])
        con.commit()
    # the parameter sets before the failing one stay done (as sqlite3 runs them)
    same(pair, "SELECT name, n, score FROM t ORDER BY id")


def test_fetching_and_iterating_match(pair):
    same(pair, "CREATE TABLE f (x INTEGER)")
    for _, con in pair:
        con.executemany("INSERT INTO f VALUES (?)", [(i,) for i in range(10)])
    results = []
    for _, con in pair:
        cur = con.execute("SELECT x FROM f ORDER BY x")
        cur.arraysize = 3
        got = [
            cur.fetchone(),
            cur.fetchmany(),
            cur.fetchmany(2),
            next(cur),
            list(cur),
            cur.fetchone(),
        ]
        got.append(cur.fetchall())
        results.append(got)
    assert results[0] == results[1]


def test_fetching_after_a_statement_without_rows_differs_on_purpose(pair):
    (_, sq), (_, tn) = pair
    assert sq.execute("CREATE TABLE g (x)").fetchall() == []
    with pytest.raises(tdb.ProgrammingError):
        tn.execute("CREATE TABLE g (x)").fetchall()


def test_row_factory_row_like_sqlite3_row(pair):
    rows = []
    for module, con in pair:
        con.row_factory = module.Row
        row = con.execute("SELECT 1 AS a, 'x' AS Bee, NULL AS c").fetchone()
        rows.append((row.keys(), row["A"], row["bee"], row[1], tuple(row), len(row), row[0:2]))
        with pytest.raises(IndexError):
            row["nope"]
        assert row == con.execute("SELECT 1 AS a, 'x' AS Bee, NULL AS c").fetchone()
    assert rows[0] == rows[1]


def test_adapters_and_converters(pair):
    # toondb registers these two; sqlite3 needs them registered
    sqlite3.register_adapter(decimal.Decimal, str)
    sqlite3.register_adapter(uuid.UUID, str)
    try:
        same(pair, "CREATE TABLE d (day DATE, at TIMESTAMP, price TEXT, id TEXT)")
        day, at = datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 13, 45, 30, 123456)
        price, ident = decimal.Decimal("12.50"), uuid.UUID(int=12345)
        same(pair, "INSERT INTO d VALUES (?, ?, ?, ?)", (day, at, price, ident))
        same(pair, "SELECT day, at, price, id FROM d")
    finally:
        for t in (decimal.Decimal, uuid.UUID):
            sqlite3.adapters.pop((t, sqlite3.PrepareProtocol), None)


def test_detect_types_declared_and_column_names(tmp_path):
    day, at = datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 13, 45, 30)
    flags = sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES
    assert (tdb.PARSE_DECLTYPES, tdb.PARSE_COLNAMES) == (
        sqlite3.PARSE_DECLTYPES,
        sqlite3.PARSE_COLNAMES,
    )
    got = []
    for module, path in ((sqlite3, tmp_path / "s.db"), (tdb, tmp_path / "t")):
        con = module.connect(str(path), detect_types=flags)
        con.execute("CREATE TABLE e (day date, at timestamp, plain TEXT)")
        con.execute("INSERT INTO e VALUES (?, ?, ?)", (day, at, "2024-01-01"))
        cur = con.execute('SELECT day, at, plain, plain AS "p [date]" FROM e')
        got.append(([d[0] for d in cur.description], cur.fetchall()))
        con.close()
    assert got[0] == got[1]
    assert got[1][1] == [(day, at, "2024-01-01", datetime.date(2024, 1, 1))]


def test_text_factory(pair):
    got = []
    for _, con in pair:
        con.text_factory = bytes
        a = con.execute("SELECT 'é', 1").fetchone()
        con.text_factory = lambda b: b.decode().upper()
        b = con.execute("SELECT 'abc'").fetchone()
        got.append((a, b))
    assert got[0] == got[1]


# ---- transactions


@pytest.fixture
def files(tmp_path):
    """Two connections per engine on the same database: [(module, writer, reader)]."""
    out = []
    for module, path in ((sqlite3, str(tmp_path / "s.db")), (tdb, str(tmp_path / "t"))):
        out.append((module, module.connect(path), module.connect(path)))
    yield out
    for _, a, b in out:
        a.close()
        b.close()


def each(files, fn):
    got = [fn(module, a, b) for module, a, b in files]
    assert got[0] == got[1]
    return got[1]


def count(con):
    return con.execute("SELECT count(*) FROM k").fetchone()[0]


def test_dml_begins_a_transaction_another_connection_does_not_see(files):
    def scenario(module, a, b):
        a.execute("CREATE TABLE k (x)")
        steps = [a.in_transaction]
        a.execute("SELECT * FROM k")
        steps.append(a.in_transaction)  # a SELECT begins nothing
        a.execute("INSERT INTO k VALUES (1)")
        steps += [a.in_transaction, count(a), count(b)]
        a.commit()
        steps += [a.in_transaction, count(b)]
        a.execute("UPDATE k SET x = 2")
        a.rollback()
        steps += [a.in_transaction, a.execute("SELECT x FROM k").fetchall()]
        a.commit()  # nothing open: nothing happens
        return steps

    assert each(files, scenario) == [False, False, True, 1, 0, False, 1, False, [(1,)]]


def test_context_manager_commits_or_rolls_back_and_stays_open(files):
    def scenario(module, a, b):
        a.execute("CREATE TABLE k (x UNIQUE)")
        with a:
            a.execute("INSERT INTO k VALUES (1)")
        steps = [count(b)]
        try:
            with a:
                a.execute("INSERT INTO k VALUES (2)")
                a.execute("INSERT INTO k VALUES (1)")
        except module.IntegrityError:
            steps.append("IntegrityError")
        steps += [a.in_transaction, count(b), count(a)]
        with a:
            pass
        steps.append(a.execute("SELECT 1").fetchone())  # still open
        return steps

    assert each(files, scenario) == [1, "IntegrityError", False, 1, 1, (1,)]


def test_isolation_level_none_and_sql_transaction_control(files):
    def scenario(module, a, b):
        a.execute("CREATE TABLE k (x)")
        a.isolation_level = None
        a.execute("INSERT INTO k VALUES (1)")
        steps = [a.in_transaction, count(b)]
        a.execute("BEGIN")
        steps.append(a.in_transaction)
        a.execute("INSERT INTO k VALUES (2)")
        steps.append(count(b))
        try:
            a.execute("BEGIN")
        except module.OperationalError:
            steps.append("OperationalError")
        a.execute("COMMIT")
        steps += [a.in_transaction, count(b)]
        a.execute("BEGIN")
        a.execute("DELETE FROM k")
        a.execute("ROLLBACK")
        steps.append(count(b))
        a.isolation_level = ""
        a.execute("INSERT INTO k VALUES (3)")
        a.isolation_level = None  # commits
        steps += [a.in_transaction, count(b)]
        return steps

    assert each(files, scenario) == [False, 1, True, 1, "OperationalError", False, 2, 2, False, 3]


def test_executescript_commits_first_and_runs_every_statement(files):
    def scenario(module, a, b):
        a.execute("CREATE TABLE k (x)")
        a.execute("INSERT INTO k VALUES (1)")
        a.executescript(
            """
            INSERT INTO k VALUES (2);  -- a comment; with a semicolon
            INSERT INTO k VALUES ('three;');
            /* a block; comment */
            BEGIN;
            INSERT INTO k VALUES (4);
            """
        )
        steps = [a.in_transaction, count(b)]
        a.rollback()
        steps.append(a.execute("SELECT x FROM k ORDER BY rowid").fetchall())
        try:
            a.executescript("INSERT INTO k VALUES (5); SELEC oops; INSERT INTO k VALUES (6);")
        except module.Error:
            steps.append("Error")
        steps.append(count(b))  # the statements before the error ran
        return steps

    assert each(files, scenario) == [True, 3, [(1,), (2,), ("three;",)], "Error", 4]


def test_closed_connections_and_cursors(pair):
    for module, con in pair:
        cur = con.cursor()
        cur.close()
        with pytest.raises(module.ProgrammingError):
            cur.execute("SELECT 1")
        cur = con.execute("SELECT 1")
        con.close()
        for call, args in ((con.cursor, ()), (con.commit, ()), (con.execute, ("SELECT 1",))):
            with pytest.raises(module.ProgrammingError):
                call(*args)
        with pytest.raises(module.ProgrammingError):
            cur.fetchall()
        con.close()  # a second close does nothing


def test_description_type_codes_compare_with_the_type_objects(tmp_path):
    con = tdb.connect(str(tmp_path / "db"))
    con.execute(
        "CREATE TABLE ty (a VARCHAR(10), b INTEGER, c DOUBLE, d BLOB, e TIMESTAMP, f DECIMAL(5,2), g)"
    )
    con.execute("INSERT INTO ty VALUES ('x', 1, 1.5, x'00', '2024-01-01', 1, 2)")
    cur = con.execute("SELECT *, a || 'y', b + 1, 1.5 * c, NULL FROM ty")
    codes = [d[1] for d in cur.description]
    assert codes == [
        "VARCHAR(10)",
        "INTEGER",
        "DOUBLE",
        "BLOB",
        "TIMESTAMP",
        "DECIMAL(5,2)",
        "INTEGER",
        "TEXT",
        "INTEGER",
        "REAL",
        None,
    ]
    kinds = [
        tdb.STRING,
        tdb.NUMBER,
        tdb.NUMBER,
        tdb.BINARY,
        tdb.DATETIME,
        tdb.NUMBER,
        tdb.NUMBER,
        tdb.STRING,
        tdb.NUMBER,
        tdb.NUMBER,
    ]
    for code, kind in zip(codes, kinds):
        assert code == kind and kind == code
        assert all(
            code != other
            for other in (tdb.STRING, tdb.NUMBER, tdb.BINARY, tdb.DATETIME)
            if other is not kind
        )
    con.close()


def test_database_connection_shares_an_open_database(tmp_path):
    with Database.open(tmp_path / "db") as db:
        con = db.connection()
        con.execute("CREATE TABLE k (x)")
        with con:
            con.execute("INSERT INTO k VALUES (1)")
        assert db.execute_sql("SELECT x FROM k").rows == [(1,)]
        con.close()
        assert not db.closed
        assert db.execute_sql("SELECT count(*) FROM k").scalar() == 1


def test_memory_database_is_temporary():
    con = tdb.connect(":memory:")
    path = con._backend.session.path
    con.execute("CREATE TABLE k (x)")
    con.close()
    import os

    assert not os.path.exists(path)


def test_connection_exposes_the_exceptions_and_toondb_errors_are_pep249():
    import toondb

    con_cls = tdb.Connection
    for name in PEP249:
        assert getattr(con_cls, name) is getattr(tdb, name)
    assert issubclass(toondb.ConstraintError, tdb.IntegrityError)
    assert issubclass(toondb.SQLSyntaxError, tdb.ProgrammingError)
    assert issubclass(toondb.TransactionConflictError, tdb.OperationalError)
    assert issubclass(toondb.DatabaseLockedError, tdb.OperationalError)
