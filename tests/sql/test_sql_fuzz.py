"""Fuzzing SQL text, grammar-aware, against stdlib sqlite3 (slow suite).

Where test_sql_differential generates well-formed queries to compare results, this
target is about hostile text: statements are generated from a small SQL grammar whose
leaves are edge cases (the 64-bit bounds, hex and exponent literals, quotes inside
strings, blobs, NULL, odd spacing and comments, long and deep expressions), and a
share of them is then mutated token by token (a token dropped, doubled, swapped with
its neighbour, or a random keyword or symbol inserted), so many are near-misses of
valid SQL. Each statement runs on sqlite3 and on toondb over the same table.

Asserted (a failure names the seed, the case and the statement):

- toondb never raises anything but an ``SQLError`` (no TypeError, OverflowError,
  MemoryError... out of the engine: each would reach an IPC client as an untyped
  error), except the limitations listed in KNOWN, which are counted;
- both engines report an error, or both return the same rows (as multisets, exact
  types, floats within 1e-9). The divergences this finds are SQL-engine semantics
  (listed, with the count, when the test ends); while any remain the test ends as
  xfail rather than pass, so the typed-error invariant stays enforced meanwhile.

The run is bounded (``TOONDB_SQL_FUZZ_CASES``, default 4000 statements) and seeded
(``TOONDB_SQL_FUZZ_SEED``; random by default, printed with the summary of how many
statements ran and how they ended).
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections import Counter

import pytest
from sql_harness import EngineError, multiset_diff

from toondb import Database, SQLError

pytestmark = pytest.mark.slow

CASES = int(os.environ.get("TOONDB_SQL_FUZZ_CASES", "4000"))

SETUP = [
    "CREATE TABLE f (a INTEGER, b TEXT, c REAL, d, e INTEGER PRIMARY KEY)",
    "INSERT INTO f VALUES (1, 'one', 1.5, X'00ff', 1)",
    "INSERT INTO f VALUES (-7, 'Two''s', -0.0, 'text', 2)",
    "INSERT INTO f VALUES (NULL, NULL, NULL, NULL, 3)",
    "INSERT INTO f VALUES (2147483648, '', 1e300, 12, 4)",
    "INSERT INTO f VALUES (-4294967296, '10', 2.5e-310, 3.25, 5)",
    "INSERT INTO f VALUES (0, 'abc%_', 0.1, '', 6)",
    "INSERT INTO f VALUES (42, ' 42 ', 42.0, -1, 7)",
    "INSERT INTO f VALUES (3, 'x' || char(0) || 'y', 3.0, X'', 8)",
    "CREATE INDEX f_b ON f (b)",
]

LITERALS = [
    "0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "0x7fffffffffffffff", "0x10", "1e308", "1e309", "-1e-320", "0.5", ".5", "5.", "1e3",
    "'a'", "''", "'it''s'", "'%'", "'_x'", "'10'", "' 3 '", "X'41'", "X''", "NULL",
    "'\u00e9'", "'\U0001f600'",
]  # fmt: skip
COLUMNS = ["a", "b", "c", "d", "e", "f.a", "rowid"]
UNARY = ["-", "+", "NOT ", "~"]
BINARY = [
    "+", "-", "*", "/", "%", "||", "=", "==", "!=", "<>", "<", "<=", ">", ">=", "AND", "OR",
    "&", "|", "<<", ">>", "IS", "IS NOT", "LIKE", "GLOB", "NOT LIKE",
]  # fmt: skip
FUNCTIONS = {
    "abs": 1, "length": 1, "upper": 1, "lower": 1, "typeof": 1, "hex": 1, "quote": 1,
    "round": 2, "coalesce": 3, "ifnull": 2, "nullif": 2, "max": 2, "min": 2, "substr": 3,
    "instr": 2, "replace": 3, "trim": 1, "unicode": 1, "sign": 1, "zeroblob": 1,
}  # fmt: skip
AGGREGATES = ["count", "sum", "total", "min", "max", "avg"]
TYPES = ["INTEGER", "REAL", "TEXT", "BLOB", "NUMERIC", "INT", "VARCHAR(3)"]
KEYWORDS = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "NULL", "IS", "IN", "BETWEEN", "CASE",
    "WHEN", "THEN", "ELSE", "END", "AS", "GROUP", "BY", "ORDER", "LIMIT", "(", ")", ",",
    "*", "+", "-", "'", "?", ";", "DISTINCT", "ALL", "UNION", "EXISTS", "CAST",
]  # fmt: skip


class Gen:
    def __init__(self, rnd: random.Random) -> None:
        self.r = rnd

    def expr(self, depth: int) -> str:
        r = self.r
        if depth <= 0 or r.random() < 0.25:
            return r.choice(LITERALS) if r.random() < 0.6 else r.choice(COLUMNS)
        k = r.randrange(11)
        d = depth - 1
        if k == 0:
            return f"{r.choice(UNARY)}{self.expr(d)}"
        if k <= 3:
            return f"({self.expr(d)} {r.choice(BINARY)} {self.expr(d)})"
        if k == 4:
            name = r.choice(list(FUNCTIONS))
            n = FUNCTIONS[name] if r.random() < 0.9 else r.randrange(0, 4)
            return f"{name}({', '.join(self.expr(d) for _ in range(n))})"
        if k == 5:
            whens = " ".join(
                f"WHEN {self.expr(d)} THEN {self.expr(d)}" for _ in range(r.randrange(1, 3))
            )
            other = f" ELSE {self.expr(d)}" if r.random() < 0.5 else ""
            return f"CASE {whens}{other} END"
        if k == 6:
            return f"CAST({self.expr(d)} AS {r.choice(TYPES)})"
        if k == 7:
            items = ", ".join(self.expr(d) for _ in range(r.randrange(1, 4)))
            return f"({self.expr(d)} {'NOT ' if r.random() < 0.3 else ''}IN ({items}))"
        if k == 8:
            return f"({self.expr(d)} BETWEEN {self.expr(d)} AND {self.expr(d)})"
        if k == 9:
            return f"(SELECT {r.choice(AGGREGATES)}({r.choice(COLUMNS[:5])}) FROM f)"
        depth_extra = r.choice([2, 3, 5, 12])  # nesting (deeper: test_ipc_limits, KNOWN)
        return "(" * depth_extra + self.expr(d) + ")" * depth_extra

    def statement(self) -> str:
        r = self.r
        k = r.random()
        if k < 0.5:
            cols = ", ".join(self.expr(3) for _ in range(r.randrange(1, 4)))
            where = f" WHERE {self.expr(3)}" if r.random() < 0.6 else ""
            return f"SELECT {cols} FROM f{where}"
        if k < 0.7:
            return f"SELECT {self.expr(4)}"
        if k < 0.85:
            agg = r.choice(AGGREGATES)
            arg = "*" if agg == "count" and r.random() < 0.3 else self.expr(2)
            where = f" WHERE {self.expr(2)}" if r.random() < 0.5 else ""
            return f"SELECT a IS NULL, {agg}({arg}) FROM f{where} GROUP BY a IS NULL"
        distinct = "DISTINCT " if r.random() < 0.5 else ""
        return f"SELECT {distinct}{self.expr(2)} FROM f WHERE {self.expr(2)}"


def tokens(sql: str) -> list[str]:
    """A rough token split that keeps string and blob literals whole."""
    out, i, n = [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "'" or (ch in "Xx" and sql[i + 1 : i + 2] == "'"):
            j = sql.index("'", i) + 1
            while True:
                q = sql.find("'", j)
                if q < 0:
                    q = n - 1
                if sql[q + 1 : q + 2] == "'":
                    j = q + 2
                    continue
                break
            out.append(sql[i : q + 1])
            i = q + 1
            continue
        if ch.isalnum() or ch in "_.":
            j = i
            while j < n and (sql[j].isalnum() or sql[j] in "_."):
                j += 1
            out.append(sql[i:j])
            i = j
            continue
        two = sql[i : i + 2]
        if two in ("||", "<=", ">=", "!=", "<>", "==", "<<", ">>"):
            out.append(two)
            i += 2
            continue
        out.append(ch)
        i += 1
    return out


def mutate(rnd: random.Random, sql: str) -> str:
    toks = tokens(sql)
    for _ in range(rnd.randrange(1, 3)):
        if not toks:
            break
        i = rnd.randrange(len(toks))
        k = rnd.randrange(5)
        if k == 0:
            del toks[i]
        elif k == 1:
            toks.insert(i, toks[i])
        elif k == 2 and i + 1 < len(toks):
            toks[i], toks[i + 1] = toks[i + 1], toks[i]
        elif k == 3:
            toks.insert(i, rnd.choice(KEYWORDS + LITERALS))
        else:
            toks[i] = rnd.choice(KEYWORDS + LITERALS + COLUMNS)
    sep = rnd.choice([" ", "  ", "\n", " /* c */ ", "\t"])
    return sep.join(toks)


def _sqlite(con: sqlite3.Connection, sql: str):
    try:
        cur = con.execute(sql)
        return [tuple(r) for r in cur.fetchall()] if cur.description else None
    except (sqlite3.Error, OverflowError, ValueError) as exc:
        return EngineError(str(exc))


def _toondb(db: Database, sql: str):
    try:
        result = db.execute_sql(sql)
        return list(result.rows) if result.columns else None
    except SQLError as exc:
        return EngineError(str(exc))


# Engine limitations that are tracked elsewhere: a statement that runs into one is
# counted, not failed, so the fuzz keeps testing everything else. Exception class
# name -> where it is tracked.
KNOWN = {
    "RecursionError": "issue 'SQL features': nesting depth 1,000 as in SQLite, typed error past it",
}


def _compare(sql: str, expected, actual) -> str | None:
    """None when the outcomes agree, else what differs."""
    if isinstance(expected, EngineError) or isinstance(actual, EngineError):
        if isinstance(expected, EngineError) and isinstance(actual, EngineError):
            return None
        return f"sqlite3 gave {expected!r}, toondb {actual!r}"
    if expected is None or actual is None:
        return None if expected is None and actual is None else f"{expected!r} / {actual!r}"
    missing, extra = multiset_diff(expected, actual)
    if missing or extra:
        return f"rows differ; sqlite3 only {missing!r}, toondb only {extra!r}"
    return None


def test_fuzz_sql_text_against_sqlite3(tmp_path):
    seed = int(os.environ.get("TOONDB_SQL_FUZZ_SEED", "0")) or random.randrange(1, 1 << 31)
    rnd = random.Random(seed)
    con = sqlite3.connect(":memory:", isolation_level=None)
    outcomes: Counter[str] = Counter()
    untyped: list[str] = []
    diverged: list[str] = []
    with Database.open(tmp_path / "db") as db:
        for stmt in SETUP:
            con.execute(stmt)
            db.execute_sql(stmt)
        gen = Gen(rnd)
        for n in range(CASES):
            sql = gen.statement()
            if rnd.random() < 0.4:
                sql = mutate(rnd, sql)
            expected = _sqlite(con, sql)
            try:
                actual = _toondb(db, sql)
            except Exception as exc:  # anything but SQLError: untyped, a bug of the engine
                name = type(exc).__name__
                if name in KNOWN:
                    outcomes[f"known: {name}"] += 1
                else:
                    untyped.append(f"case {n}: {sql!r}: toondb raised {name}: {exc}")
                continue
            problem = _compare(sql, expected, actual)
            if problem is not None:
                syntax = isinstance(actual, EngineError) and "syntax error" in str(actual)
                outcomes["sqlite3 accepts, toondb syntax error" if syntax else "diverged"] += 1
                diverged.append(f"case {n}: {sql!r}: {problem}")
            elif isinstance(expected, EngineError):
                outcomes["both error"] += 1
            elif expected is None:
                outcomes["both no rows"] += 1
            else:
                outcomes["both agree"] += 1
    print(f"\nSQL fuzz: seed {seed}, {CASES} statements: {dict(outcomes)}")
    assert not untyped, f"seed {seed}: " + "\n".join(untyped[:20])
    if diverged:
        print("\n".join(diverged[:60]))
        pytest.xfail(f"seed {seed}: {len(diverged)} of {CASES} statements diverge from sqlite3")
