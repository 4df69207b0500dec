"""The statement splitter behind executescript() and execute()'s one-statement rule,
against SQLite's own answer: sqlite3.complete_statement() is SQLite's
sqlite3_complete(). split() cuts with the SQL engine's lexer (the one
Database.executescript uses); outside trigger bodies (toondb has no triggers) a
script is cut exactly where a prefix of it becomes complete, and nowhere else.
complete_statement() ports SQLite's state machine, trigger bodies included."""

from __future__ import annotations

import re
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toondb.dbapi as tdb
from toondb.dbapi.script import classify, first_words, split

FRAGMENTS = [
    "SELECT 1",
    ";",
    " ",
    "\n",
    "'a;b'",
    "'it''s; fine'",
    '"col;umn"',
    "[brack;et]",
    "`back;tick`",
    "-- comment; here\n",
    "/* block; comment */",
    "CREATE TRIGGER tr AFTER INSERT ON t BEGIN ",
    "CREATE TEMP TRIGGER tr2 BEFORE DELETE ON t BEGIN ",
    "UPDATE u SET a = 1",
    "END",
    "CASE WHEN 1 THEN 2 END",
    "EXPLAIN ",
    "CREATE TABLE t (a)",
    "x'00'",
    "ÿé",
]


def _cuts(script: str) -> list[int]:
    """Where SQLite says a statement ends: each ';' after which the prefix is complete
    and was not complete just before that ';'."""
    out = []
    start = 0
    for i, ch in enumerate(script):
        if ch == ";" and sqlite3.complete_statement(script[start : i + 1]):
            out.append(i + 1)
            start = i + 1
    return out


#: the fragments of scripts toondb can run: no CREATE TRIGGER (toondb has no triggers)
SCRIPT_FRAGMENTS = [f for f in FRAGMENTS if "TRIGGER" not in f]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SCRIPT_FRAGMENTS), max_size=14))
def test_split_cuts_where_sqlite_completes(parts):
    script = "".join(parts)
    expected, start = [], 0
    for end in _cuts(script):
        piece = script[start:end]
        if _meaningful(piece):
            expected.append(piece.strip())
        start = end
    if _meaningful(script[start:]):
        expected.append(script[start:].strip())
    got = split(script)
    assert len(got) == len(expected), (got, expected)
    for piece, whole in zip(got, expected):
        # the same statement: SQLite's cut may also hold comments around it
        before, found, after = whole.partition(piece)
        assert found and not _meaningful(before) and not _meaningful(after), (piece, whole)


def _meaningful(piece: str) -> bool:
    """Not just spaces, comments and semicolons (empty statements are dropped)."""
    text = re.sub(r"--[^\n]*(\n|$)|/\*.*?(\*/|$)", " ", piece, flags=re.S)
    return any(not c.isspace() and c != ";" for c in text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=10))
def test_complete_statement_is_sqlite3s(parts):
    script = "".join(parts)
    assert tdb.complete_statement(script) == sqlite3.complete_statement(script)


def test_a_trigger_stops_the_script_with_a_syntax_error(tmp_path):
    """toondb has no triggers: executescript runs what comes before CREATE TRIGGER,
    then stops there with a syntax error (sqlite3 would create the trigger)."""
    conn = tdb.connect(str(tmp_path / "db"))
    script = (
        "CREATE TABLE t (a); INSERT INTO t VALUES (1); CREATE TRIGGER tr AFTER INSERT "
        "ON t BEGIN INSERT INTO t VALUES (2); END; INSERT INTO t VALUES (3)"
    )
    with pytest.raises(tdb.DatabaseError, match="TRIGGER"):
        conn.executescript(script)
    assert conn.execute("SELECT a FROM t").fetchall() == [(1,)]
    conn.close()


def test_split_is_the_engines_cut():
    script = "CREATE TABLE t (a);\n INSERT INTO t VALUES ('x;y'); -- c;\n SELECT [a;b] FROM t"
    assert split(script) == [
        "CREATE TABLE t (a);",
        "INSERT INTO t VALUES ('x;y');",
        "SELECT [a;b] FROM t",
    ]


def test_classify():
    assert classify("  -- c\n/* d */ insert into t values (1)").is_dml
    assert classify("SELECT 1; -- trailing").count == 1
    assert classify("SELECT 1; SELECT 2").count == 2
    assert classify("select ';'").count == 1
    assert classify("").count == 0 and classify("-- only").count == 0
    assert classify("BEGIN IMMEDIATE TRANSACTION").mode == "IMMEDIATE"
    assert classify("END").txn == "COMMIT"
    assert classify("ROLLBACK TRANSACTION TO sp").txn == "ROLLBACK TO"
    assert classify("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x").is_dml is False
    assert first_words("'quoted' select", 2) == []
