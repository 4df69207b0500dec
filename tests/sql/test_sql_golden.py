"""Data-driven SQL goldens: every ``tests/sql/golden/*.slt`` file, run record by record.

The format is sqllogictest's, simplified to one row per line::

    # a comment
    statement ok
    CREATE TABLE t (a INTEGER)

    statement error <regular expression matched against the error message>
    INSERT INTO nope VALUES (1)

    query [rowsort] [toondb-only]
    SELECT a, a * 2 FROM t
    ----
    1 | 2

    plan
    SELECT a FROM t WHERE rowid = 1
    ----
    SEARCH t USING ROWID (rowid=1)
    PROJECT a

Values print as: NULL, integers and reals as Python prints them (``repr``), text
as is (``(empty)`` for ''), blobs as ``x'hex'``. ``rowsort`` compares the rows
sorted. Each file runs on a fresh database; unless a record says
``toondb-only``, its statements and queries also run on stdlib sqlite3, and a
query's expected rows must be sqlite3's answer too, so a golden cannot drift from
SQLite's semantics. ``plan`` records pin the EXPLAIN output (toondb only).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from toondb import Database, SQLError

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
FILES = sorted(GOLDEN_DIR.glob("*.slt"))


@dataclass
class Record:
    kind: str  # statement, query, plan
    line: int
    sql: str
    flags: list[str]
    expect_error: str | None = None
    expected: list[str] | None = None


def parse_file(path: Path) -> list[Record]:
    records: list[Record] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line or line.startswith("#"):
            i += 1
            continue
        head = line.split()
        start = i + 1
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() and lines[i].strip() != "----":
            body.append(lines[i])
            i += 1
        expected = None
        if i < len(lines) and lines[i].strip() == "----":
            i += 1
            expected = []
            while i < len(lines) and lines[i].strip():
                expected.append(lines[i].rstrip())
                i += 1
        sql = "\n".join(body)
        if head[0] == "statement":
            err = None
            if head[1] == "error":
                err = line.split(None, 2)[2] if len(head) > 2 else ""
            records.append(
                Record("statement", start, sql, head[2:] if head[1] == "ok" else [], err)
            )
        elif head[0] in ("query", "plan"):
            records.append(Record(head[0], start, sql, head[1:], None, expected or []))
        else:
            raise ValueError(f"{path.name}:{start}: unknown record {line!r}")
    return records


def fmt(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bytes):
        return "x'" + v.hex() + "'"
    if isinstance(v, str):
        return v if v else "(empty)"
    return repr(v)


def fmt_rows(rows: list[tuple], sort: bool) -> list[str]:
    out = [" | ".join(fmt(v) for v in r) for r in rows]
    return sorted(out) if sort else out


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_golden(path: Path, tmp_path: Path) -> None:
    records = parse_file(path)
    assert records, f"{path.name} has no records"
    ref = sqlite3.connect(":memory:", isolation_level=None)
    with Database.open(tmp_path / "db") as db:
        for rec in records:
            where = f"{path.name}:{rec.line}"
            both = "toondb-only" not in rec.flags
            if rec.kind == "statement":
                if rec.expect_error is None:
                    db.execute_sql(rec.sql)
                    if both:
                        ref.execute(rec.sql)
                    continue
                with pytest.raises(SQLError) as ei:
                    db.execute_sql(rec.sql)
                assert re.search(rec.expect_error, str(ei.value)), f"{where}: {ei.value}"
                if both:
                    with pytest.raises(sqlite3.Error):
                        ref.execute(rec.sql)
                continue
            if rec.kind == "plan":
                got = [r[0] for r in db.execute_sql("EXPLAIN " + rec.sql).rows]
                assert got == rec.expected, f"{where}: plan of {rec.sql}"
                continue
            sort = "rowsort" in rec.flags
            got = fmt_rows(db.execute_sql(rec.sql).rows, sort)
            assert got == rec.expected, f"{where}: {rec.sql}"
            if both:
                want = fmt_rows(ref.execute(rec.sql).fetchall(), sort)
                assert want == rec.expected, f"{where}: sqlite3 disagrees with the golden: {want}"
        db.check()


def test_golden_files_exist() -> None:
    assert len(FILES) >= 5
