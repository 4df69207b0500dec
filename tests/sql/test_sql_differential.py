"""Differential tests of toondb's SQL engine against stdlib sqlite3.

Hypothesis generates a schema (2-3 tables of mixed declared types: INTEGER, REAL,
TEXT, BLOB, NUMERIC, untyped and aliases; an INTEGER PRIMARY KEY or not; NOT NULL,
UNIQUE, DEFAULT, CHECK now and then; an index sometimes), rows (NULLs, small,
large and negative integers, reals incl. -0.0 and integral reals, texts that look
like numbers, empty strings, blobs), a few UPDATE/DELETE statements, and queries
(expressions, three-valued WHERE, IN, BETWEEN, LIKE, GLOB, CASE, CAST, joins,
GROUP BY/HAVING with every aggregate, DISTINCT, ORDER BY, LIMIT/OFFSET, compound
selects, scalar/IN/EXISTS subqueries, correlated ones). Each statement runs on
sqlite3 in memory and on the engine under test with the same text.

What is compared:
- a statement that fails in sqlite3 must fail in toondb with an ``SQLError`` and
  the other way round (messages are not compared);
- after the setup, every table's contents, as multisets;
- every query's rows: with exact Python types (int, float, str, bytes, None; a bool
  is not an int) and floats within a relative 1e-9; as multisets, or, when the
  query has an ORDER BY (always over output columns), in ORDER BY order, any order
  being accepted among rows that tie on the keys, and with LIMIT/OFFSET any rows of
  a tie group cut by the window.

Queries whose sqlite3 answer depends on the order rows are visited (GROUP_CONCAT's
order, which of 1 and 1.0 DISTINCT keeps, a sum whose float rounding or integer
overflow depends on the order of its terms...) are told apart on a mismatch only:
the same data is then loaded into several other sqlite3 databases in permuted
physical orders, with reversed scans and with an index on every column; if their
answers differ among themselves, the query is order-sensitive and any of their
answers is accepted (when the engine's answer is none of them the example is
dropped, counted as the event "order-sensitive"). GROUP_CONCAT columns are
compared as multisets of their pieces.

A failure prints a self-contained SQL script (schema, data, query), the expected
and the actual answer. The default run is derandomized (the same examples each
run, so CI is stable); the slow run explores at random. Set
TOONDB_SQL_TEST_ENGINE=sqlite3 to run everything against stdlib sqlite3 with
reversed scans and an index on every column as the engine under test, which
proves the harness: it must pass.
"""

from __future__ import annotations

import random
import sqlite3
import zlib
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sql_harness import (
    SKIP_NO_ENGINE,
    EngineError,
    Result,
    SqliteEngine,
    check_ordered,
    engine_under_test_name,
    make_engine_under_test,
    multiset_diff,
    row_cmp,
    rows_equal,
    sql_literal,
    toondb_has_sql,
)

# ---------------------------------------------------------------- the data

INTS = [0, 1, -1, 2, 3, -7, 10, 100, 2**31, -(2**31) - 1, 2**53 + 1, 2**62, 2**63 - 1, -(2**63)]
REALS = [0.0, 1.0, -0.0, 2.5, -1.25, 0.5, 3.0, 100.0, -2.0, 0.1, 1e15, 1.5e300, 2.0**63]
TEXTS = [
    "",
    "a",
    "1",
    "abc",
    "A",
    "1.0",
    "2.5",
    " 2",
    "-3",
    "1e3",
    "01",
    "b_c",
    "Abc",
    "it's",
    "é",
    "0x10",
]
# no NUL byte: SQLite's C string functions stop at one (LIKE, LENGTH of text...)
BLOBS = [b"", b"a", b"\xc3\xa9", b"abc", b"1", b"\x01\x02"]

#: declared types: affinity INTEGER, REAL, TEXT, BLOB (none), NUMERIC and aliases
DECLS = [
    "INTEGER",
    "TEXT",
    "REAL",
    "",
    "NUMERIC",
    "BLOB",
    "INT",
    "VARCHAR(20)",
    "DOUBLE",
    "BOOLEAN",
]
CONSTRAINTS = ["", "NOT NULL", "UNIQUE", "DEFAULT 7", "DEFAULT 'x'", "CHECK ({c} IS NOT 13)"]

#: literals used in expressions
LITERALS = [1, 0, None, 2, -1, 2.5, "a", "1", "", 3, 0.5, -0.0, 1.0, "2.5", "abc", b"a", 10]
LITERALS += [2**63 - 1, -(2**63), 2**62, 1e15]

LIKE_PATTERNS = ["a%", "%", "_", "%b%", "A_C", "1%", "%.%", "", "%c", "_b%", "%1"]
GLOB_PATTERNS = ["a*", "*", "?", "*b*", "[a-c]*", "1*", "*.*", "", "A?c", "[0-9]*"]
CAST_TYPES = ["INTEGER", "TEXT", "REAL", "NUMERIC", "BLOB"]
CMP_OPS = ["=", "<>", "<", "<=", ">", ">=", "IS", "IS NOT", "==", "!="]
ARITH_OPS = ["+", "-", "*", "/", "%"]
SEPARATOR = "|"  # never inside the data or the literals

# ---------------------------------------------------------------- known engine bugs
# Each entry: a bug of toondb's engine this harness found, with its minimal
# reproduction (setup statements, a query), which test_known_engine_bug runs as a
# strict xfail: when the engine is fixed, it XPASSes and fails the suite; then
# delete the entry. While an entry is here, the generator steers around the
# construct (see `avoid`), so that the differential tests keep finding other bugs.
KNOWN_BUGS: dict[str, tuple[list[str], str]] = {}

# Bugs this harness found and that were fixed (SQLite's answer, then toondb's at
# the time), kept as regression tests: test_fixed_engine_bug.
REGRESSIONS: dict[str, tuple[list[str], str]] = {
    # SQLite: CAST of a REAL to NUMERIC is a no-op (1.0 stays REAL); toondb: 1
    "cast-real-as-numeric": ([], "SELECT CAST(1.0 AS NUMERIC), CAST(0.0 AS NUMERIC)"),
    # SQLite: a NULL INTEGER PRIMARY KEY gets max(rowid)+1, here 0; toondb: 1
    "new-rowid-after-negative": (
        ["CREATE TABLE t(k INTEGER PRIMARY KEY, v)", "INSERT INTO t VALUES (-1, 'a'), (NULL, 'b')"],
        "SELECT k, v FROM t",
    ),
    # SQLite: SUM over a text or blob that is not a number is REAL (0.0); toondb: 0
    "sum-of-non-numeric-text": ([], "SELECT SUM('abc'), SUM(X'61')"),
    # SQLite: scalar MIN keeps the last of equal arguments (MIN(0, 0.0) is 0.0); toondb the first
    "scalar-min-ties": ([], "SELECT MIN(0, 0.0), MIN(1.0, 1)"),
    # SQLite: % takes the integer prefix of a text operand ('1e3' is 1, the result REAL): 1 % '1e3' = 0.0; toondb 1.0
    "remainder-of-text": ([], "SELECT 1 % '1e3', 7 % '2.5'"),
    # SQLite: x IN (list) applies no affinity when x has none: '1' IN (i) is 0 for an
    # INTEGER column i holding 1 (while '1' = i is 1); toondb: 1
    "in-list-affinity": (
        ["CREATE TABLE t(b BLOB, i INTEGER)", "INSERT INTO t VALUES ('1.0', 1)"],
        "SELECT '1' IN (i), b IN (i) FROM t",
    ),
    # SQLite: CASE x WHEN y compares as x = y does, with affinity; toondb: without
    "case-operand-affinity": (
        ["CREATE TABLE t(r REAL, i INTEGER)", "INSERT INTO t VALUES (2.5, 1)"],
        "SELECT CASE '2.5' WHEN r THEN 'y' ELSE 'n' END, CASE i WHEN '1' THEN 'y' ELSE 'n' END FROM t",
    ),
    # SQLite: REPLACE(x, '', z) is x unchanged (its type too, z NULL or not); toondb: '0', NULL
    "replace-empty-pattern": ([], "SELECT REPLACE(0, '', 'x'), REPLACE('a', '', NULL)"),
    # a correlated subquery in an aggregate query, over a GROUP BY key that is not
    # the table's first column: toondb raises IndexError (in HAVING EXISTS: no rows)
    "correlated-subquery-on-group-key": (
        ["CREATE TABLE t(a, b)", "INSERT INTO t VALUES (1, 2), (3, 4)"],
        "SELECT b, (SELECT COUNT(*) FROM t AS s WHERE s.a < t.b) FROM t GROUP BY b",
    ),
    "correlated-exists-in-having": (
        ["CREATE TABLE t(a, b)", "INSERT INTO t VALUES (1, 2), (3, 4)"],
        "SELECT COUNT(*) FROM t GROUP BY b HAVING EXISTS (SELECT 1 FROM t AS s WHERE s.a < t.b)",
    ),
    # SQLite: SUM over texts that are integers is an INTEGER (3); toondb: 3.0 (REAL)
    "sum-of-integer-text": (
        ["CREATE TABLE t(x TEXT)", "INSERT INTO t VALUES ('1'), ('2')"],
        "SELECT SUM(x), SUM('-100') FROM t",
    ),
    # an aggregate IN a subquery correlated on a GROUP BY key: SQLite (0), (1);
    # toondb (0), (0), and with a join in FROM an IndexError
    "aggregate-in-correlated-subquery": (
        ["CREATE TABLE t(a, b)", "INSERT INTO t VALUES (1, 2), (3, 4)"],
        "SELECT COUNT(*) IN (SELECT s.a FROM t AS s WHERE t.b = 4) FROM t GROUP BY t.b",
    ),
    "aggregate-in-correlated-subquery-join": (
        ["CREATE TABLE t(a, b)", "INSERT INTO t VALUES (1, 2), (3, 4)"],
        "SELECT COUNT(*) IN (SELECT s.a FROM t AS s WHERE y.b = 4) FROM t AS x, t AS y GROUP BY x.a, y.b",
    ),
    # SQLite: with a single MIN() or MAX(), bare columns come from the row that has
    # the minimum or maximum (documented); toondb takes another row's
    "bare-column-with-min-max": (
        ["CREATE TABLE t(k INTEGER PRIMARY KEY, v)", "INSERT INTO t VALUES (13, 'x'), (20, 'y')"],
        "SELECT v, MIN(k) FROM t",
    ),
    # SQLite: once rowid 2**63-1 is taken, a new rowid is an unused one picked at
    # random (documented); toondb raises "table t has used every rowid"
    "new-rowid-after-max": (
        [
            "CREATE TABLE t(k INTEGER PRIMARY KEY, v)",
            "INSERT INTO t VALUES (9223372036854775807, 'a')",
            "INSERT INTO t(v) VALUES ('b')",
        ],
        "SELECT COUNT(*) FROM t",
    ),
    # SQLite: a row INSERT OR IGNORE skips does not use up a rowid; toondb: it did
    "ignored-row-uses-no-rowid": (
        [
            "CREATE TABLE t(k INTEGER PRIMARY KEY, c INTEGER UNIQUE)",
            "INSERT INTO t VALUES (0, 0)",
            "INSERT OR IGNORE INTO t(c) VALUES (0), (NULL)",
        ],
        "SELECT k, c FROM t",
    ),
    # SQLite: SUBSTR of an empty blob is NULL; toondb: X''
    "substr-of-empty-blob": ([], "SELECT SUBSTR(X'', 1, 2), SUBSTR(CAST('' AS BLOB), 1)"),
    # SQLite: REPLACE(x, '', z) returns x, but a blob x as TEXT: 'a'; toondb: X'61'
    "replace-empty-pattern-blob": ([], "SELECT REPLACE(X'61', '', 3), REPLACE(X'', X'', 3)"),
}

AVOID = set(KNOWN_BUGS)


def avoid(name: str) -> bool:
    """True while the construct named after a known bug is to be steered around."""
    assert name in KNOWN_BUGS or name in REGRESSIONS, name
    return name in AVOID


values = st.one_of(
    st.none(),
    st.sampled_from(INTS),
    st.sampled_from(REALS),
    st.sampled_from(TEXTS),
    st.sampled_from(BLOBS),
)


# ---------------------------------------------------------------- the schema


@dataclass
class Column:
    name: str
    decl: str
    constraint: str = ""
    ipk: bool = False

    def ddl(self) -> str:
        if self.ipk:
            return f"{self.name} INTEGER PRIMARY KEY"
        return " ".join(p for p in (self.name, self.decl, self.constraint.format(c=self.name)) if p)


@dataclass
class Table:
    name: str
    columns: list[Column]
    indexes: list[tuple[bool, list[str]]] = field(default_factory=list)  # (unique, columns)
    primary_key: list[str] = field(default_factory=list)  # a table constraint

    def ddl(self) -> list[str]:
        cols = ", ".join(c.ddl() for c in self.columns)
        if self.primary_key:
            cols += f", PRIMARY KEY ({', '.join(self.primary_key)})"
        stmts = [f"CREATE TABLE {self.name}({cols})"]
        for i, (unique, on) in enumerate(self.indexes):
            u = "UNIQUE " if unique else ""
            stmts.append(f"CREATE {u}INDEX {self.name}_i{i} ON {self.name}({', '.join(on)})")
        return stmts

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def plain_columns(self) -> list[Column]:
        """Columns an UPDATE may set without order-dependent constraint errors."""
        unique = {c for u, on in self.indexes if u for c in on} | set(self.primary_key)
        return [
            c
            for c in self.columns
            if not c.ipk and "UNIQUE" not in c.constraint and c.name not in unique
        ]


@dataclass
class Query:
    sql: str
    sql_nolimit: str
    order: list[tuple[int, bool]]  # (column, descending)
    offset: int = 0
    limit: int | None = None
    concat: dict[int, str] = field(default_factory=dict)  # column -> GROUP_CONCAT separator
    members: list[str] = field(default_factory=list)  # of a compound select


@dataclass
class Scenario:
    tables: list[Table]
    setup: list[str]  # DDL first, then INSERT/UPDATE/DELETE
    queries: list[Query]

    def script(self, upto: int | None = None) -> str:
        lines = [s + ";" for s in self.setup[: upto if upto is not None else len(self.setup)]]
        return "\n".join(lines)


@st.composite
def tables_st(draw) -> list[Table]:
    n_tables = draw(st.integers(2, 3))
    tables = []
    for t in range(n_tables):
        cols: list[Column] = []
        if draw(st.booleans()):
            cols.append(Column("k", "INTEGER", ipk=True))
        for c in range(draw(st.integers(1, 3))):
            decl = draw(st.sampled_from(DECLS))
            constraint = (
                CONSTRAINTS[draw(st.integers(0, len(CONSTRAINTS) - 1))]
                if draw(st.integers(0, 4)) == 4
                else ""
            )
            cols.append(Column(f"c{c}", decl, constraint))
        table = Table(f"t{t}", cols)
        if not cols[0].ipk and draw(st.integers(0, 4)) == 4:
            names = [c.name for c in cols]
            table.primary_key = draw(
                st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True)
            )
            pk = table.primary_key
            if len(pk) == 1 and table.column(pk[0]).decl == "INTEGER":
                # a rowid alias: "k INTEGER PRIMARY KEY" tests those, with values
                # that keep clear of 2**63-1, after which SQLite picks new rowids
                # at random (toondb reports the table full)
                table.primary_key = [c for c in names if table.column(c).decl != "INTEGER"]
        if draw(st.integers(0, 2)) == 2:
            plain = [c.name for c in cols if not c.ipk]
            on = draw(st.lists(st.sampled_from(plain), min_size=1, max_size=2, unique=True))
            table.indexes.append((draw(st.integers(0, 3)) == 3, on))
        tables.append(table)
    return tables


def ipk_values():
    # mostly fresh integers; now and then NULL (a new rowid), a text or real that
    # converts to an integer, or one that does not (datatype mismatch)
    neg = 0 if avoid("new-rowid-after-negative") else -1
    return st.integers(0, 39).map(
        lambda i: i if i < 30 else [None, None, None, None, "3", 2.0, 2.5, "x", neg, 0][i - 30]
    )


@st.composite
def inserts_st(draw, table: Table) -> list[str]:
    stmts = []
    for _ in range(draw(st.integers(1, 4))):
        cols = table.columns
        explicit = draw(st.integers(0, 3)) == 3
        if explicit:
            cols = draw(
                st.lists(st.sampled_from(table.columns), min_size=1, unique_by=lambda c: c.name)
            )
        verb = ["INSERT", "INSERT", "INSERT", "INSERT OR IGNORE", "INSERT OR REPLACE"][
            draw(st.integers(0, 4))
        ]
        rows = []
        for _ in range(draw(st.integers(1, 3))):
            vals = [draw(ipk_values()) if c.ipk else draw(values) for c in cols]
            if verb != "INSERT":
                # SQLite runs OR IGNORE/REPLACE without a statement journal: in a
                # transaction, a "datatype mismatch" keeps the rows before it (toondb's
                # statements are atomic, as they should be)
                vals = [None if c.ipk and v in (2.5, "x") else v for c, v in zip(cols, vals)]
            rows.append("(" + ", ".join(sql_literal(v) for v in vals) + ")")
        col_list = "(" + ", ".join(c.name for c in cols) + ")" if explicit else ""
        stmts.append(f"{verb} INTO {table.name}{col_list} VALUES {', '.join(rows)}")
    return stmts


# ---------------------------------------------------------------- expressions


@dataclass
class Scope:
    tables: list[Table]
    cols: list[str]  # column references visible (qualified), incl. outer ones
    level: int = 0  # subquery nesting
    subqueries: bool = True
    correlate: bool = True  # subqueries may refer to cols


def literal(draw) -> str:
    return sql_literal(draw(st.sampled_from(LITERALS)))


def expr(draw, scope: Scope, depth: int, leaf=None) -> str:
    """A row-level expression (any SQLite type), or, given leaf, an expression
    over the leaves leaf(draw) produces (group keys and aggregates)."""

    def sub() -> str:
        return expr(draw, scope, depth - 1, leaf)

    def simple_leaf() -> str:
        if leaf is not None:
            return leaf(draw)
        if scope.cols and draw(st.integers(0, 2)) < 2:
            return draw(st.sampled_from(scope.cols))
        return literal(draw)

    if depth <= 0:
        return simple_leaf()
    kind = draw(st.integers(0, 15))
    if kind <= 1:
        return simple_leaf()
    if kind == 2:
        op = draw(st.sampled_from(ARITH_OPS))
        if op == "%" and avoid("remainder-of-text"):
            return f"(({sub()} + 0) % ({sub()} + 0))"
        return f"({sub()} {op} {sub()})"
    if kind == 3:
        return f"({sub()} {draw(st.sampled_from(CMP_OPS))} {sub()})"
    if kind == 4:
        return f"({sub()} {draw(st.sampled_from(['AND', 'OR']))} {sub()})"
    if kind == 5:
        return f"(NOT {sub()})" if draw(st.booleans()) else f"(- {sub()})"
    if kind == 6:
        return f"({sub()} || {sub()})"
    if kind == 7:
        return function(draw, sub)
    if kind == 8:
        if draw(st.booleans()) or avoid("case-operand-affinity"):
            whens = " ".join(
                f"WHEN {pred(draw, scope, depth - 1, leaf)} THEN {sub()}"
                for _ in range(draw(st.integers(1, 2)))
            )
            base = ""
        else:
            whens = " ".join(f"WHEN {sub()} THEN {sub()}" for _ in range(draw(st.integers(1, 2))))
            base = " " + sub()
        els = f" ELSE {sub()}" if draw(st.booleans()) else ""
        return f"(CASE{base} {whens}{els} END)"
    if kind == 9:
        types = [t for t in CAST_TYPES if t != "NUMERIC" or not avoid("cast-real-as-numeric")]
        return f"CAST({sub()} AS {draw(st.sampled_from(types))})"
    if kind == 10:
        item = literal if avoid("in-list-affinity") else (lambda draw: sub())
        items = ", ".join(item(draw) for _ in range(draw(st.integers(1, 3))))
        neg = "NOT " if draw(st.booleans()) else ""
        return f"({sub()} {neg}IN ({items}))"
    if kind == 11:
        neg = "NOT " if draw(st.booleans()) else ""
        return f"({sub()} {neg}BETWEEN {sub()} AND {sub()})"
    if kind == 12:
        # the operands go through CAST(... AS TEXT), which is what LIKE and GLOB
        # do to them anyway, but for blobs: stdlib sqlite3 is built with
        # SQLITE_LIKE_DOESNT_MATCH_BLOBS, not SQLite's default
        neg = "NOT " if draw(st.booleans()) else ""
        op, pool = ("LIKE", LIKE_PATTERNS) if draw(st.booleans()) else ("GLOB", GLOB_PATTERNS)
        pat = (
            sql_literal(draw(st.sampled_from(pool)))
            if draw(st.integers(0, 3))
            else f"CAST({sub()} AS TEXT)"
        )
        return f"(CAST({sub()} AS TEXT) {neg}{op} {pat})"
    if kind == 13:
        return f"({sub()} {draw(st.sampled_from(['IS NULL', 'IS NOT NULL', 'ISNULL', 'NOTNULL']))})"
    if kind == 14 and scope.subqueries and scope.level < 1:
        return subquery(draw, scope, sub)
    return simple_leaf()


def pred(draw, scope: Scope, depth: int, leaf=None) -> str:
    """A predicate: mostly comparisons of columns with columns or literals, the
    usual WHERE shapes, now and then any expression (SQLite's truth of a value)."""

    def operand() -> str:
        return expr(draw, scope, draw(st.integers(0, 1)), leaf)

    kind = draw(st.integers(0, 9)) if depth > 0 else 0
    if kind <= 3:
        return f"({operand()} {draw(st.sampled_from(CMP_OPS))} {operand()})"
    if kind == 4:
        op = draw(st.sampled_from(["AND", "OR"]))
        return f"({pred(draw, scope, depth - 1, leaf)} {op} {pred(draw, scope, depth - 1, leaf)})"
    if kind == 5:
        return f"(NOT {pred(draw, scope, depth - 1, leaf)})"
    if kind == 6:
        return f"({operand()} {draw(st.sampled_from(['IS NULL', 'IS NOT NULL']))})"
    if kind == 7 and scope.subqueries and scope.level < 1:
        return subquery(draw, scope, operand)
    return expr(draw, scope, depth, leaf)


def function(draw, sub) -> str:
    def small() -> str:
        # SUBSTR's and ROUND's integer arguments: small numbers (SQLite's answers
        # for arguments near 2**63 come from C integer overflow, not from a rule)
        if draw(st.booleans()):
            return sql_literal(draw(st.integers(-3, 6)))
        return f"LENGTH({sub()})"

    name = draw(
        st.sampled_from(
            [
                "LENGTH",
                "LOWER",
                "UPPER",
                "ABS",
                "TYPEOF",
                "COALESCE",
                "IFNULL",
                "NULLIF",
                "ROUND",
                "SUBSTR",
            ]
            + ["TRIM", "REPLACE", "MAX"]
            + ([] if avoid("scalar-min-ties") else ["MIN"])
        )
    )
    if name in ("LENGTH", "LOWER", "UPPER", "ABS", "TYPEOF"):
        args = [sub()]
    elif name in ("IFNULL", "NULLIF"):
        args = [sub(), sub()]
    elif name in ("COALESCE", "MIN", "MAX"):
        args = [sub() for _ in range(draw(st.integers(2, 3)))]
    elif name == "ROUND":
        args = [sub()] + ([small()] if draw(st.booleans()) else [])
    elif name == "SUBSTR":
        first = f"CAST({sub()} AS TEXT)" if avoid("substr-of-empty-blob") else sub()
        args = [first, small()] + ([small()] if draw(st.booleans()) else [])
    elif name == "TRIM":
        args = [sub()] + ([sub()] if draw(st.booleans()) else [])
    else:  # REPLACE
        pattern = sub()
        if avoid("replace-empty-pattern") or avoid("replace-empty-pattern-blob"):
            pattern = sql_literal(draw(st.sampled_from(["1", "a", "b", ".", "-", " ", "abc", "0"])))
        args = [sub(), pattern, sub()]
    return f"{name}({', '.join(args)})"


def subquery(draw, scope: Scope, sub) -> str:
    table = draw(st.sampled_from(scope.tables))
    alias = f"s{scope.level + 1}"
    inner_cols = [f"{alias}.{c.name}" for c in table.columns]
    inner = Scope(scope.tables, inner_cols, scope.level + 1)
    both = Scope(
        scope.tables, inner_cols + (scope.cols if scope.correlate else []), scope.level + 1
    )
    where = f" WHERE {pred(draw, both, 2)}" if draw(st.integers(0, 3)) else ""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        agg = draw(st.sampled_from(["COUNT", "SUM", "MIN", "MAX", "TOTAL", "AVG", "COUNT(*)"]))
        call = "COUNT(*)" if agg == "COUNT(*)" else f"{agg}({sum_arg(agg, expr(draw, inner, 1))})"
        return f"(SELECT {call} FROM {table.name} AS {alias}{where})"
    if kind == 1:
        neg = "NOT " if draw(st.booleans()) else ""
        distinct = "DISTINCT " if draw(st.booleans()) else ""
        return f"({sub()} {neg}IN (SELECT {distinct}{expr(draw, inner, 1)} FROM {table.name} AS {alias}{where}))"
    neg = "NOT " if draw(st.booleans()) else ""
    return f"({neg}EXISTS (SELECT 1 FROM {table.name} AS {alias}{where}))"


AGGREGATES = ["COUNT(*)", "COUNT", "COUNT(DISTINCT", "SUM", "TOTAL", "AVG", "MIN", "MAX"]


def aggregate(draw, scope: Scope, concat_ok: bool = False) -> str:
    names = AGGREGATES + (["GROUP_CONCAT"] if concat_ok else [])
    name = draw(st.sampled_from(names))
    if name == "COUNT(*)":
        return name
    arg = expr(draw, scope, draw(st.integers(0, 2)))
    if name == "COUNT(DISTINCT":
        return f"COUNT(DISTINCT {arg})"
    if name == "GROUP_CONCAT":
        return f"GROUP_CONCAT({arg}, '{SEPARATOR}')"
    return f"{name}({sum_arg(name, arg)})"


def sum_arg(name: str, arg: str) -> str:
    if name == "SUM" and (avoid("sum-of-non-numeric-text") or avoid("sum-of-integer-text")):
        return f"({arg}) + 0"
    return arg


# ---------------------------------------------------------------- queries


@dataclass
class Select:
    sql: str  # without ORDER BY / LIMIT
    ncols: int
    concat: dict[int, str]
    aliases: list[str]


def from_clause(draw, tables: list[Table], subqueries: bool) -> tuple[str, list[str]]:
    n = draw(st.integers(1, 3))
    aliases = ["a", "b", "c"][:n]
    parts, cols = [], []
    for i, alias in enumerate(aliases):
        table = draw(st.sampled_from(tables))
        new_cols = [f"{alias}.{c.name}" for c in table.columns]
        if i == 0:
            parts.append(f"{table.name} AS {alias}")
        else:
            op = draw(
                st.sampled_from(
                    ["JOIN", "LEFT JOIN", "CROSS JOIN", ",", "INNER JOIN", "LEFT OUTER JOIN"]
                )
            )
            on = ""
            if op not in (",", "CROSS JOIN"):
                on = f" ON {pred(draw, Scope(tables, cols + new_cols, 0, subqueries), 2)}"
            sep = ", " if op == "," else f" {op} "
            parts.append(f"{sep}{table.name} AS {alias}{on}")
        cols += new_cols
    return "".join(parts), cols


def select_st(draw, tables: list[Table], concat_ok: bool, subqueries: bool = True) -> Select:
    frm, cols = from_clause(draw, tables, subqueries)
    scope = Scope(tables, cols, 0, subqueries)
    where = (
        f" WHERE {expr(draw, scope, draw(st.integers(1, 3)))}" if draw(st.integers(0, 3)) else ""
    )
    distinct = "DISTINCT " if draw(st.integers(0, 3)) == 3 else ""
    n = draw(st.integers(1, 3))
    concat: dict[int, str] = {}
    if draw(st.integers(0, 2)) < 2:  # plain rows
        items = [expr(draw, scope, draw(st.integers(0, 3))) for _ in range(n)]
        tail = ""
    else:  # aggregate
        keys = draw(st.lists(st.sampled_from(cols), max_size=2, unique=True))
        correlate = not (
            avoid("correlated-subquery-on-group-key") or avoid("aggregate-in-correlated-subquery")
        )
        key_scope = Scope(tables, keys, 0, subqueries, correlate)

        def leaf(draw) -> str:
            choice = draw(st.integers(0, 3))
            if choice <= 1 or (choice == 2 and not keys):
                return aggregate(draw, scope)
            if choice == 2:
                return draw(st.sampled_from(keys))
            return literal(draw)

        items = []
        for i in range(n):
            if draw(st.integers(0, 3)) == 0:
                item = aggregate(draw, scope, concat_ok)
                if item.startswith("GROUP_CONCAT"):
                    concat[i] = SEPARATOR
            else:
                item = expr(draw, key_scope, draw(st.integers(0, 2)), leaf)
            items.append(item)
        tail = ""
        if keys:
            tail = " GROUP BY " + ", ".join(keys)
            if draw(st.booleans()):
                tail += f" HAVING {pred(draw, key_scope, draw(st.integers(0, 2)), leaf)}"
    aliases = [f"r{i}" for i in range(n)]
    select_list = ", ".join(f"{e} AS {a}" for e, a in zip(items, aliases))
    return Select(f"SELECT {distinct}{select_list} FROM {frm}{where}{tail}", n, concat, aliases)


@st.composite
def query_st(draw, tables: list[Table]) -> Query:
    if draw(st.integers(0, 4)) == 4:  # compound
        first = select_st(draw, tables, concat_ok=False)
        parts = [first.sql]
        members = [first.sql]
        for _ in range(draw(st.integers(1, 2))):
            op = draw(st.sampled_from(["UNION", "UNION ALL", "INTERSECT", "EXCEPT"]))
            while True:
                other = select_st(draw, tables, concat_ok=False)
                if other.ncols == first.ncols:
                    break
                # shrink-friendly: pad or cut the select list is not possible in
                # text, so draw again (small column counts make this quick)
            parts.append(f" {op} {other.sql}")
            members.append(other.sql)
        body, ncols, concat, aliases = "".join(parts), first.ncols, {}, None
    else:
        members = []
        sel = select_st(draw, tables, concat_ok=True)
        body, ncols, concat, aliases = sel.sql, sel.ncols, sel.concat, sel.aliases
        if draw(st.integers(0, 5)) == 5:  # the same rows through a WITH name
            body = f"WITH q AS ({body}) SELECT * FROM q"
    order: list[tuple[int, bool]] = []
    tail = ""
    orderable = [i for i in range(ncols) if i not in concat]
    if orderable and draw(st.booleans()):
        cols = draw(st.lists(st.sampled_from(orderable), min_size=1, unique=True))
        terms = []
        for c in cols:
            desc = draw(st.booleans())
            name = aliases[c] if aliases and draw(st.booleans()) else str(c + 1)
            terms.append(
                f"{name} {'DESC' if desc else 'ASC'}" if desc or draw(st.booleans()) else name
            )
            order.append((c, desc))
        tail = " ORDER BY " + ", ".join(terms)
    limit, offset = None, 0
    limit_tail = ""
    if order and draw(st.booleans()):
        limit = draw(st.integers(0, 5))
        limit_tail = f" LIMIT {limit}"
        if draw(st.booleans()):
            offset = draw(st.integers(0, 4))
            limit_tail += f" OFFSET {offset}"
    return Query(body + tail + limit_tail, body + tail, order, offset, limit, concat, members)


@st.composite
def dml_st(draw, tables: list[Table]) -> str:
    table = draw(st.sampled_from(tables))
    cols = [f"{table.name}.{c.name}" for c in table.columns]
    scope = Scope(tables, cols, 0, subqueries=False)
    where = f" WHERE {pred(draw, scope, 1)}" if draw(st.integers(0, 3)) else ""
    settable = table.plain_columns()
    kind = draw(st.integers(0, 2))
    if kind == 0 and settable:
        col = draw(st.sampled_from(settable))
        return f"UPDATE {table.name} SET {col.name} = {expr(draw, scope, 2)}{where}"
    if kind == 1 and not table.columns[0].ipk and not table.primary_key:
        # INSERT ... SELECT (not into a table with a rowid alias, as the rowids
        # it would pick depend on the order of the SELECT's rows)
        target = draw(
            st.lists(st.sampled_from(table.columns), min_size=1, unique_by=lambda c: c.name)
        )
        source = draw(st.sampled_from(tables))
        src = Scope(tables, [f"s.{c.name}" for c in source.columns], 0, subqueries=False)
        items = ", ".join(expr(draw, src, draw(st.integers(0, 2))) for _ in target)
        src_where = f" WHERE {pred(draw, src, 1)}" if draw(st.booleans()) else ""
        names = ", ".join(c.name for c in target)
        return (
            f"INSERT INTO {table.name}({names}) SELECT {items} FROM {source.name} AS s{src_where}"
        )
    return f"DELETE FROM {table.name}{where}"


@st.composite
def scenario_st(draw, max_queries: int = 4) -> Scenario:
    tables = draw(tables_st())
    setup = [s for t in tables for s in t.ddl()]
    writes: list[str] = []
    for t in tables:
        writes += draw(inserts_st(t))
    if draw(st.integers(0, 2)) == 2:
        writes += draw(st.lists(dml_st(tables), min_size=1, max_size=3))
    if writes and draw(st.integers(0, 4)) == 4:
        # a transaction around some of the writes, committed or rolled back
        a = draw(st.integers(0, len(writes) - 1))
        b = draw(st.integers(a + 1, len(writes)))
        end = draw(st.sampled_from(["COMMIT", "ROLLBACK", "END"]))
        writes = writes[:a] + ["BEGIN"] + writes[a:b] + [end] + writes[b:]
    setup += writes
    queries = draw(st.lists(query_st(tables), min_size=1, max_size=max_queries))
    return Scenario(tables, setup, queries)


# ---------------------------------------------------------------- running


def outcome(engine, sql: str) -> Result | EngineError | None:
    try:
        return engine.execute(sql)
    except EngineError as exc:
        return exc


def normalize(q: Query, rows: list[tuple]) -> list[tuple]:
    if not q.concat:
        return rows
    out = []
    for row in rows:
        row = list(row)
        for i, sep in q.concat.items():
            if i < len(row) and isinstance(row[i], str):
                row[i] = sep.join(sorted(row[i].split(sep)))
        out.append(tuple(row))
    return out


def show(o) -> str:
    if isinstance(o, EngineError):
        return f"error: {o}"
    if o is None:
        return "no result set"
    return f"{len(o.rows)} rows: {o.rows!r}"


def compare(q: Query, expected, expected_full, actual) -> str | None:
    """None when actual is a correct answer given sqlite3's (expected,
    expected_full = the rows without LIMIT/OFFSET)."""
    if isinstance(expected, EngineError):
        return (
            None
            if isinstance(actual, EngineError)
            else "sqlite3 raised an error, the engine did not"
        )
    if isinstance(actual, EngineError):
        if isinstance(expected_full, EngineError):
            return None  # sqlite3 raises without the LIMIT: it only stopped before the error
        if "integer overflow" in str(actual) and "ABS(" in q.sql:
            # ABS(-2**63) raises; whether an engine gets to evaluate it depends on
            # its plan (SQLite skips the right side of an EXCEPT whose left is empty)
            return None
        return "the engine raised an error, sqlite3 did not"
    if actual is None:
        return "the engine returned no result set"
    rows = normalize(q, actual.rows)
    if any(len(r) != len(expected.columns) for r in rows):
        return f"rows of the wrong width (expected {len(expected.columns)} columns)"
    if q.order:
        full = expected if isinstance(expected_full, EngineError) else expected_full
        return check_ordered(normalize(q, full.rows), rows, q.order, q.offset, q.limit)
    missing, excess = multiset_diff(normalize(q, expected.rows), rows)
    if missing or excess:
        return f"missing rows {missing!r}, unexpected rows {excess!r}"
    return None


def _class_key(row: tuple) -> tuple:
    # numbers by value (0 == 0.0 and hash alike), the rest by type and value
    return tuple(v if isinstance(v, (int, float)) else (type(v).__name__, v) for v in row)


def compound_representatives_differ(q: Query, ref: SqliteEngine, exp, act) -> bool:
    """UNION, INTERSECT and EXCEPT keep one row of those that compare equal (1 and
    1.0); which one is the engine's choice (SQLite keeps the last member's). True
    unless act is exp up to that choice: the same rows up to int/real, each of
    act's rows one that a member of the compound yields, in ORDER BY order."""
    if isinstance(exp, EngineError) or isinstance(act, EngineError) or act is None:
        return True
    cands = outcome(ref, " UNION ALL ".join(q.members))
    if isinstance(cands, EngineError):
        return True
    if Counter(map(_class_key, exp.rows)) != Counter(map(_class_key, act.rows)):
        return True
    if any(not any(rows_equal(r, c) for c in cands.rows) for r in act.rows):
        return True
    if q.order:
        cmp = row_cmp(q.order)
        return any(cmp(a, b) > 0 for a, b in zip(act.rows, act.rows[1:]))
    return False


def alternative_answers(sc: Scenario, ref: SqliteEngine, q: Query, seed: int):
    """The query's answers on the reference's final data laid out in other
    physical orders and scanned in other orders: [(answer, answer without LIMIT)]."""
    contents = {t.name: ref.execute(f"SELECT * FROM {t.name}").rows for t in sc.tables}
    ddl = [s for t in sc.tables for s in t.ddl()]
    rnd = random.Random(seed)
    variants = [(True, False, False), (False, True, False), (True, True, False)]
    variants += [(rnd.random() < 0.5, rnd.random() < 0.3, True) for _ in range(5)]
    answers = []
    for reverse, indexes, shuffle in variants:
        alt = SqliteEngine(reverse=reverse, extra_indexes=indexes)
        try:
            for s in ddl:
                alt.execute(s)
            for t in sc.tables:
                rows = list(contents[t.name])
                if shuffle:
                    rnd.shuffle(rows)
                marks = ", ".join("?" * len(t.columns))
                alt.conn.executemany(f"INSERT INTO {t.name} VALUES ({marks})", rows)
            answers.append(
                (outcome(alt, q.sql), outcome(alt, q.sql_nolimit) if q.limit is not None else None)
            )
        finally:
            alt.close()
    return answers


def _event(name: str) -> None:
    try:
        event(name)
    except Exception:  # outside a hypothesis test
        pass


class Mismatch(AssertionError):
    pass


def run_scenario(sc: Scenario, engine) -> None:
    """Run the scenario on sqlite3 and on engine; raise Mismatch on a difference."""
    ref = SqliteEngine()
    try:
        _run(sc, ref, engine)
    finally:
        ref.close()


def _fail(sc: Scenario, upto: int, what: str, sql: str, expected, actual, problem: str) -> None:
    raise Mismatch(
        f"{what} differs from sqlite3: {problem}\n"
        f"-- setup\n{sc.script(upto)}\n"
        f"-- {what}\n{sql};\n"
        f"-- expected (sqlite3 {sqlite3.sqlite_version}): {show(expected)}\n"
        f"-- actual: {show(actual)}"
    )


def _run(sc: Scenario, ref: SqliteEngine, engine) -> None:
    for i, stmt in enumerate(sc.setup):
        exp, act = outcome(ref, stmt), outcome(engine, stmt)
        if stmt.startswith(("CREATE", "BEGIN", "COMMIT", "ROLLBACK", "END")) and isinstance(
            exp, EngineError
        ):
            raise AssertionError(f"the generator made DDL sqlite3 rejects: {stmt}: {exp}")
        if isinstance(exp, EngineError) != isinstance(act, EngineError):
            _fail(sc, i, "statement", stmt, exp, act, "one engine failed, the other did not")
    for t in sc.tables:
        sql = f"SELECT * FROM {t.name}"
        exp, act = outcome(ref, sql), outcome(engine, sql)
        q = Query(sql, sql, [])
        problem = compare(q, exp, exp, act)
        if problem:
            _fail(sc, len(sc.setup), "table contents", sql, exp, act, problem)
    for q in sc.queries:
        exp = outcome(ref, q.sql)
        exp_full = outcome(ref, q.sql_nolimit) if q.limit is not None else exp
        act = outcome(engine, q.sql)
        problem = compare(q, exp, exp_full, act)
        if not problem:
            _event("match" if not isinstance(exp, EngineError) else "both raised")
            continue
        if not sc.tables:  # a hand-written scenario: no data to lay out otherwise
            _fail(sc, len(sc.setup), "query", q.sql, exp, act, problem)
        if q.members and not compound_representatives_differ(q, ref, exp, act):
            _event("compound: another representative of equal values")
            continue
        alts = alternative_answers(sc, ref, q, seed=zlib.crc32(q.sql.encode()))
        order_sensitive = any(compare(q, exp, exp_full, a) for a, _ in alts)
        if order_sensitive:
            if any(not compare(q, a, a_full or a, act) for a, a_full in alts):
                _event("order-sensitive, matches another order")
            else:
                _event("order-sensitive, dropped")
            continue
        _fail(sc, len(sc.setup), "query", q.sql, exp, act, problem)


# ---------------------------------------------------------------- the tests

ENGINE = engine_under_test_name()
needs_engine = pytest.mark.skipif(
    ENGINE == "toondb" and not toondb_has_sql(), reason=SKIP_NO_ENGINE
)


def check_scenario(sc: Scenario) -> None:
    engine = make_engine_under_test(ENGINE)
    try:
        run_scenario(sc, engine)
    finally:
        engine.close()


COMMON = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    print_blob=True,
)


@needs_engine
@settings(max_examples=150, derandomize=True, **COMMON)
@given(scenario_st())
def test_differential(sc: Scenario) -> None:
    check_scenario(sc)


@pytest.mark.slow
@needs_engine
@settings(max_examples=2500, **COMMON)
@given(scenario_st(max_queries=6))
def test_differential_slow(sc: Scenario) -> None:
    check_scenario(sc)


@settings(max_examples=25, derandomize=True, **COMMON)
@given(scenario_st())
def test_harness_accepts_sqlite3_itself(sc: Scenario) -> None:
    """The harness run against sqlite3 (reversed scans, an index on every column)
    as the engine under test finds no difference: no false alarms."""
    engine = SqliteEngine(reverse=True, extra_indexes=True)
    try:
        run_scenario(sc, engine)
    finally:
        engine.close()


class _Mutant(SqliteEngine):
    def __init__(self, mutate):
        super().__init__()
        self.mutate = mutate

    def execute(self, sql):
        res = super().execute(sql)
        if res is not None and sql.startswith("SELECT r0"):
            res.rows = self.mutate(res.rows)
        return res


def _fixed_scenario(query: str, order=(), limit=None, offset=0) -> Scenario:
    t = Table("t0", [Column("c0", ""), Column("c1", "TEXT")])
    setup = t.ddl() + [
        "INSERT INTO t0 VALUES (1, 'a'), (2.5, 'b'), (NULL, ''), (1, 'c'), ('x', NULL)"
    ]
    nolimit = query.split(" LIMIT")[0]
    return Scenario([t], setup, [Query(query, nolimit, list(order), offset, limit)])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda rows: rows[:-1],  # a row lost
        lambda rows: rows + rows[:1],  # a row duplicated
        lambda rows: [
            tuple(float(v) if type(v) is int else v for v in r) for r in rows
        ],  # int -> real
        lambda rows: [tuple(v * (1 + 1e-7) if type(v) is float else v for v in r) for r in rows],
        lambda rows: [
            tuple(str(v) if type(v) is int else v for v in r) for r in rows
        ],  # int -> text
        lambda rows: list(reversed(rows)),  # wrong order
    ],
    ids=["lost-row", "duplicate-row", "int-as-real", "float-off", "int-as-text", "reversed"],
)
def test_harness_catches_wrong_answers(mutate) -> None:
    """The comparison fails on a wrong answer (a mutant of sqlite3)."""
    sc = _fixed_scenario(
        "SELECT r0, c1 FROM (SELECT c0 * 1 AS r0, c1 FROM t0) ORDER BY 1 DESC, 2",
        order=[(0, True), (1, False)],
    )
    with pytest.raises(Mismatch):
        run_scenario(sc, _Mutant(mutate))


def test_harness_catches_missing_error() -> None:
    class NoErrors(SqliteEngine):
        def execute(self, sql):
            try:
                return super().execute(sql)
            except EngineError:
                return Result(["x"], [])

    sc = _fixed_scenario("SELECT ABS(-9223372036854775808) AS r0")
    with pytest.raises(Mismatch):
        run_scenario(sc, NoErrors())


def test_harness_accepts_any_order_of_ties() -> None:
    """1 and 1.0 tie under ORDER BY; a LIMIT window cut through ties may hold either."""
    sc = _fixed_scenario(
        "SELECT r0 FROM (SELECT c0 AS r0 FROM t0) ORDER BY 1 LIMIT 2", order=[(0, False)], limit=2
    )
    sc.setup.append("INSERT INTO t0 VALUES (1.0, 'd')")

    # sqlite3 gives (NULL), (1): (1.0) is as correct a second row
    class Other(SqliteEngine):
        def execute(self, sql):
            res = super().execute(sql)
            if res is not None and sql.startswith("SELECT r0"):
                res.rows = [(None,), (1.0,)]
            return res

    run_scenario(sc, Other())


@pytest.mark.skipif(ENGINE != "toondb", reason="known bugs are toondb's")
@needs_engine
@pytest.mark.parametrize(
    ("setup", "query"),
    [
        pytest.param(*repro, id=name, marks=pytest.mark.xfail(strict=True, reason=name))
        for name, repro in KNOWN_BUGS.items()
    ],
)
def test_known_engine_bug(setup: list[str], query: str) -> None:
    """The minimal reproduction of a known engine bug still fails."""
    check_scenario(Scenario([], list(setup), [Query(query, query, [])]))


@needs_engine
@pytest.mark.parametrize(("setup", "query"), list(REGRESSIONS.values()), ids=list(REGRESSIONS))
def test_fixed_engine_bug(setup: list[str], query: str) -> None:
    """A bug the differential tests found stays fixed."""
    check_scenario(Scenario([], list(setup), [Query(query, query, [])]))
