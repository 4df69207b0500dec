"""The C scan of the SQL lexer (toondb/sql/_lexer.pyx) against the regex that
defines the token classes (lexer.tokenize_by_regex): the same codes, values,
offsets, literals and depth for every text, and the same error past the
nesting limit."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from toondb.errors import SQLError
from toondb.sql import lexer

pytestmark = pytest.mark.skipif(lexer._scan is None, reason="the _lexer extension is not built")

SLT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sqllogictest"

EDGES = [
    "",
    "   ",
    "SELECT 1",
    "select X'00ff', x'0', X'zz', x'ab''cd', x'unterminated",
    "0x1F 0x 0x1g 0X1f.5 1.5e 1.e5 1e+ 1e+5 1e-5x .5 .5x . .. 1..2 12.34.56 007 1_000 9e9999",
    "'it''s' 'a''' 'ab'' 'unterminated 'x''y",
    '"na""me" "ab"" "open `b``q` `open` `x [br] [open',
    "? ?12 ?x :name :1 $v @w : $ @ :: ?:a",
    "a||b a<<b a>>b a<=b a>=b a==b a!=b a<>b a->b a->>b a-->b a<>=b !a !",
    "- ( ) , ; . * / % + & | ~ < > = # ^ { } ] \\ \x00 \x7f",
    "-- a comment\nSELECT 1 -- trailing",
    "/* block */ 1 /* never closed",
    "/*/ still a comment */ 2 /**/3",
    "ünïcödé ı ın İN ſelect ﬁ K \u00a0x a$b $1 é1",
    "\tSELECT\r\n\f\va FROM\nt",
    "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT DEFAULT 'x', c BLOB)",
    "((((((((((1))))))))))",
    "SELECT 'unclosed",
    '"',
    "'",
    "x'",
    "[",
    "`",
]

ALPHABET = list("aAxXeE019._$ '\"`[]()?:@-+*/<>=!|,;\n\t#") + ["ı", "é", "\u00a0", "€"]


def _both(sql: str, pos: int = 0, end: int | None = None) -> tuple[Any, Any]:
    def run(fn: Any) -> Any:
        try:
            t = fn(sql, pos, end)
        except SQLError as e:
            return ("error", str(e))
        return (str(t), t.vals, t.starts, t.ends, t.literals, t.depth)

    return run(lexer.tokenize), run(lambda s, p, e: lexer.tokenize_by_regex(s, p, e)[0])


def _assert_same(sql: str, pos: int = 0, end: int | None = None) -> None:
    c, r = _both(sql, pos, end)
    assert c == r, (sql[:200], pos, end)


@pytest.mark.parametrize("sql", EDGES)
def test_edge_cases(sql):
    _assert_same(sql)


def test_random_text_and_slices():
    rnd = random.Random(2026)
    for _ in range(4000):
        sql = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randrange(0, 40)))
        _assert_same(sql)
        if sql:
            a = rnd.randrange(len(sql))
            _assert_same(sql, a, rnd.randrange(a, len(sql) + 1))


def test_nesting_limit_is_the_same_error():
    deep = "(" * (lexer.MAX_DEPTH + 1) + ")" * (lexer.MAX_DEPTH + 1)
    c, r = _both(deep)
    assert c == r and c[0] == "error"
    ok = "(" * lexer.MAX_DEPTH + "1" + ")" * lexer.MAX_DEPTH
    _assert_same(ok)


def test_an_iterdump_with_every_kind_of_value():
    src = sqlite3.connect(":memory:")
    src.execute('CREATE TABLE "we""ird" (id INTEGER PRIMARY KEY, s TEXT, b BLOB, r REAL, "na me")')
    rnd = random.Random(7)
    for i in range(300):
        s = "".join(rnd.choice("ab'\"\n -;é€\t") for _ in range(rnd.randrange(12)))
        src.execute(
            'INSERT INTO "we""ird" VALUES (?, ?, ?, ?, ?)',
            (i, s, bytes(rnd.randrange(256) for _ in range(4)), rnd.random() * 1e10, -i),
        )
    src.execute('CREATE INDEX ix ON "we""ird"(s) -- with a comment\n')
    _assert_same("\n".join(src.iterdump()))


@pytest.mark.parametrize("name", ["select1.test", "select2.test", "select3.test"])
def test_sqllogictest_files_whole(name):
    path = SLT / name
    if not path.exists():
        pytest.skip(f"no sqllogictest data at {SLT}")
    _assert_same(path.read_text())


def _statements_of(sql: str, cut: Any) -> list[Any]:
    out, pos = [], 0
    while pos >= 0:
        t, rest = cut(sql, pos)
        out.append((str(t), t.vals, t.starts, t.ends, t.literals, t.depth, rest))
        assert rest == -1 or rest > pos
        pos = rest
    return out


def test_statement_at_a_time_cuts_as_the_regex_does():
    rnd = random.Random(5)
    texts = EDGES + [";", ";;", "SELECT 1;", "SELECT 1; SELECT ';'; -- ;\n/* ; */ SELECT 2"]
    texts += ["".join(rnd.choice(ALPHABET + [";"] * 4) for _ in range(60)) for _ in range(1500)]
    for sql in texts:
        got = _statements_of(sql, lexer.tokenize_statement)
        want = _statements_of(sql, lambda s, p: lexer.tokenize_by_regex(s, p, None, True))
        assert got == want, sql
