"""The grammar's lean match call (grammar_elements.lean_parse) against
pyparsing's own: the same statements give the same trees, the same syntax
errors, and no element of the grammar is left on pyparsing's call."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyparsing as pp
import pytest

from toondb.errors import SQLSyntaxError
from toondb.sql import grammar as G

SLT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sqllogictest"

STATEMENTS = [
    "SELECT 1",
    "SELECT a+1 AS x, count(*) FROM t WHERE b IN (1,2) AND c LIKE 'x%' GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
    "SELECT DISTINCT t.*, u.name FROM t LEFT JOIN u USING (id) CROSS JOIN v WHERE NOT x IS NULL",
    "SELECT CASE WHEN a < 0 THEN -a ELSE a END, CAST(b AS VARCHAR(10)), ~c FROM t INDEXED BY ix",
    "SELECT * FROM (SELECT a FROM t UNION ALL SELECT b FROM u) AS s ORDER BY 1 NULLS LAST LIMIT 2 OFFSET 1",
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 5) SELECT n FROM c",
    "SELECT sum(v) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM ev",
    "SELECT x FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id) AND y NOT BETWEEN 1 AND 2",
    "SELECT j.value FROM t, json_each(t.doc, '$.tags') AS j WHERE t.doc ->> '$.k' = ?1",
    "SELECT a COLLATE NOCASE, b GLOB 'x*', c NOT LIKE 'y!%' ESCAPE '!', d || 'z' FROM t WHERE e = :name",
    "VALUES (1, 'a'), (2, X'00ff')",
    "INSERT INTO t (a, b) VALUES (1, 'it''s'), (NULL, -2.5e3) ON CONFLICT (a) DO UPDATE SET b = excluded.b",
    "INSERT OR REPLACE INTO t SELECT * FROM u RETURNING *",
    "UPDATE OR IGNORE t SET a = a + 1, b = NULL WHERE rowid = 3 RETURNING a",
    "DELETE FROM t AS x WHERE x.a > 2",
    "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY AUTOINCREMENT, a TEXT NOT NULL DEFAULT 'x' "
    "COLLATE NOCASE, b REAL CHECK (b > 0), c INTEGER REFERENCES u(id) ON DELETE CASCADE, "
    "d AS (a || 'y') VIRTUAL, UNIQUE (a, b)) STRICT",
    "CREATE UNIQUE INDEX ix ON t (a COLLATE NOCASE DESC, b)",
    "CREATE VIEW v (x) AS SELECT a FROM t",
    "ALTER TABLE t ADD COLUMN e INTEGER",
    "ALTER TABLE t RENAME COLUMN e TO f",
    "DROP TABLE IF EXISTS t",
    "PRAGMA user_version = 3",
    "BEGIN IMMEDIATE TRANSACTION",
    "SAVEPOINT sp",
    "ROLLBACK TO SAVEPOINT sp",
    "EXPLAIN QUERY PLAN SELECT * FROM t WHERE a = 1",
]
BAD = [
    "SELECT FROM",
    "SELECT a FROM t WHERE",
    "SELECT (1",
    "INSERT INTO t VALUES (1,",
    "SELECT a COLLATE nosuch FROM t",
    "CREATE TABLE t (a INTEGER PRIMARY)",
    "SELECT * FROM t ORDER BY",
    "UPDATE t SET WHERE a = 1",
    "SELECT 1 2",
    "SELECT a FROM (",
    "SELECT a FROM t JOIN",
    "SELECT x.* y FROM t",
    "SELECT CASE WHEN END",
    "SELECT a FROM t WHERE a IN (SELECT",
    "SELECT (SELECT 1",
    "DELETE FROM",
    "SELECT count(DISTINCT) FROM t",
    "SELECT a FROM t t2 t3",
    "INSERT INTO t DEFAULT",
    "SELECT * FROM t WHERE a NOT",
    "SELECT * FROM json_each(",
    "WITH c AS (SELECT 1) DELETE",
]


def _elements() -> list[Any]:
    seen: dict[int, Any] = {}
    stack: list[Any] = [G._statement, G._expression]
    while stack:
        el = stack.pop()
        if id(el) in seen:
            continue
        seen[id(el)] = el
        stack.extend(getattr(el, "exprs", ()) or ())
        if isinstance(getattr(el, "expr", None), pp.ParserElement):
            stack.append(el.expr)
        stack.extend(getattr(el, "table", {}).values())
        for attr in ("default", "tail"):
            other = getattr(el, attr, None)
            if isinstance(other, pp.ParserElement):
                stack.append(other)
    return list(seen.values())


def _parse_string(element: pp.ParserElement, t: Any) -> Any:
    """grammar._parse_codes as pyparsing's own parse_string does it."""
    try:
        return element.parse_string(t, parse_all=True)[0]
    except pp.ParseBaseException as e:
        raise G.syntax_error(t, e) from None


@contextlib.contextmanager
def pyparsing_call() -> Iterator[None]:
    """The grammar on pyparsing's own _parseNoCache and parse_string for the block."""
    saved = [(el, el.__dict__.pop("_parse")) for el in _elements() if "_parse" in el.__dict__]
    lean_codes, G._parse_codes = G._parse_codes, _parse_string
    try:
        yield
    finally:
        G._parse_codes = lean_codes
        for el, fn in saved:
            el._parse = fn


def _corpus() -> list[str]:
    out = list(STATEMENTS)
    for name in ("select1.test", "select3.test", "select5.test"):
        path = SLT / name
        if not path.exists():
            continue
        for record in path.read_text().split("\n\n"):
            lines = [
                line
                for line in record.split("\n----")[0].split("\n")
                if line and not line.startswith(("#", "skipif", "onlyif", "hash-threshold"))
            ]
            if lines and lines[0].startswith(("query", "statement")):
                out.append("\n".join(lines[1:]))
    return out


def _damaged(corpus: list[str]) -> list[str]:
    """Statements of the corpus cut short, or with a token dropped or doubled,
    at seeded random places: syntax errors of every kind, and some valid text."""
    rnd = random.Random(12)
    out = []
    for sql in rnd.sample(corpus, min(400, len(corpus))):
        words = sql.split()
        if len(words) < 3:
            continue
        k = rnd.randrange(1, len(words))
        out.append(" ".join(words[:k]))
        out.append(" ".join(words[:k] + words[k + 1 :]))
        out.append(" ".join(words[:k] + [words[k - 1]] + words[k:]))
    return out


def _parse(sql: str) -> Any:
    try:
        return [p.statement for p in G.parse_script(sql)]
    except SQLSyntaxError as e:
        return ("error", str(e))


def test_every_element_is_on_the_lean_call():
    assert all("_parse" in el.__dict__ for el in _elements())


def test_no_element_falls_back_to_pyparsing_call(monkeypatch):
    calls: list[Any] = []
    original = pp.ParserElement._parseNoCache

    def counted(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pp.ParserElement, "_parseNoCache", counted)
    monkeypatch.setattr(pp.ParserElement, "_parse", counted)
    for sql in STATEMENTS:
        G.parse_script(sql)
    assert calls == []


def test_lean_and_pyparsing_calls_give_the_same_trees_and_errors():
    corpus = _corpus() + BAD
    corpus += _damaged(corpus)
    lean = [_parse(sql) for sql in corpus]
    with pyparsing_call():
        assert "_parse" not in G._statement.__dict__
        reference = [_parse(sql) for sql in corpus]
    assert "_parse" in G._statement.__dict__
    for sql, a, b in zip(corpus, lean, reference):
        assert a == b, sql
    assert sum(1 for r in lean if isinstance(r, tuple)) >= len(BAD)


def test_a_grammar_pyparsing_features_the_lean_call_lacks_is_refused():
    from toondb.sql.grammar_elements import lean_parse

    with pytest.raises(TypeError, match="own match call"):
        lean_parse(pp.Word("a")("named"))
    with pytest.raises(TypeError, match="own match call"):
        lean_parse(pp.Group(pp.Word("a")))
