"""SQLite's sqllogictest files, run against toondb's SQL engine.

The files live outside the project, in ``../shared/data/sqllogictest`` (select1-5
and evidence/*); the module skips when that folder is absent. They are read, never
copied.

The runner follows sqllogictest's own (sqllogictest.c with its SQLite engine):

- records: ``statement ok`` / ``statement error``, ``query <types> <sort>
  [label]`` with ``nosort`` / ``rowsort`` / ``valuesort``, ``hash-threshold N``,
  ``halt``; ``skipif <engine>`` / ``onlyif <engine>`` lines before a record;
- a value prints by its column's type letter: NULL as ``NULL``; ``I`` as the
  value's 64-bit integer (``%lld`` of sqlite3_column_int64: reals truncate, texts
  convert by their numeric prefix), ``R`` as ``%.3f`` of its double, ``T`` as its
  text with ``(empty)`` for an empty string and ``@`` for every byte outside
  ``' '..'~'``; one value a line;
- ``rowsort`` sorts the rows, ``valuesort`` all the values, as strings;
- an expected result ``N values hashing to H`` compares the count and the MD5 of
  the values each followed by a newline; queries sharing a label must give the
  same values.

Engine names: toondb answers to ``toondb`` and to ``sqlite`` (it follows SQLite),
so ``onlyif sqlite`` records run and ``skipif sqlite`` ones are skipped, like
SQLite itself.

Policy (a ratchet): the records of each file that pass against toondb are listed in
``tests/sql/sqllogictest_baseline.json`` (index ranges over the file's statement and
query records). A file's item fails when a record of the baseline fails now; it
prints the file's current pass rate and the records that newly pass. Refresh the
baseline after a fix with ``TOONDB_SLT_UPDATE_BASELINE=1 pytest
tests/sql/test_sqllogictest.py -m "slow or not slow"`` (only the records run are
updated).

Default run: evidence/* and select1-5 whole (DEFAULT_SUBSET can name a file of
which the default run takes every statement and a deterministic subset of the
queries, every n-th or the first n, the whole file then running under
``@pytest.mark.slow`` with a pytest-timeout of FULL_FILE_TIMEOUT; no file needs
it today). Each record has a CPU-time limit (RECORD_CPU_LIMIT seconds); a record
over it fails as "timeout". Against toondb at the time of writing, on a 2-core
machine shared with other work: select1 and select2 take about 4 s each, select3
14 s, select4 26 s of CPU and select5 23 s of CPU (its 17- to 37-way joins
ordered by estimated cost, planner/join_order.py: no query over 0.3 s; before
that planner, its whole took hours); all their records pass.

A query that expects no rows passes when the engine raises an SQL error: that is
what sqllogictest's SQLite engine does (it stops stepping at a run-time error,
such as sum()'s "integer overflow", and prints the rows so far). A record's text
may hold several statements (sqlite3_exec runs them all): they run one by one.

TOONDB_SQL_TEST_ENGINE=sqlite3 runs the files against stdlib sqlite3 instead,
with no baseline: every record must pass, which proves the runner.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import re
import signal
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from paths import SHARED_DATA, require_shared
from sql_harness import (
    SKIP_NO_ENGINE,
    EngineError,
    SqliteEngine,
    ToonDBEngine,
    engine_under_test_name,
    toondb_has_sql,
)

SLT_DIR = SHARED_DATA / "sqllogictest"
BASELINE = Path(__file__).resolve().parent / "sqllogictest_baseline.json"
RECORD_CPU_LIMIT = float(os.environ.get("TOONDB_SLT_RECORD_LIMIT", "10"))
#: the files the default run takes a part of (every statement, and a subset of the
#: queries): ("prefix", n) the first n queries, ("stride", n) every n-th query. The
#: whole file runs under @pytest.mark.slow.
DEFAULT_SUBSET: dict[str, tuple[str, int]] = {
    # none today: select1-5 all run whole in the default run (timings above)
}
FULL_FILE_TIMEOUT = 4 * 3600  # seconds, for pytest-timeout: a whole file runs long
ENGINE_NAMES = {"toondb", "sqlite"}

# ---------------------------------------------------------------- parsing


@dataclass
class Record:
    index: int  # among the file's statement and query records
    line: int
    kind: str  # "statement" | "query" | "halt" | "hash-threshold"
    conditions: list[tuple[str, str]] = field(default_factory=list)
    sql: str = ""
    expect_error: bool = False
    types: str = ""
    sort: str = "nosort"
    label: str | None = None
    expected: list[str] | None = None
    expected_hash: tuple[int, str] | None = None
    threshold: int = 0

    def applies(self, names: set[str]) -> bool:
        for cond, engine in self.conditions:
            if cond == "skipif" and engine in names:
                return False
            if cond == "onlyif" and engine not in names:
                return False
        return True


_HASH_RE = re.compile(r"^(\d+) values hashing to ([0-9a-f]{32})$")


def parse(path: Path) -> list[Record]:
    lines = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    records: list[Record] = []
    index = 0
    i, n = 0, len(lines)
    conditions: list[tuple[str, str]] = []
    while i < n:
        line = lines[i].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            if not line.strip():
                conditions = []
            i += 1
            continue
        words = line.split()
        head = words[0]
        if head in ("skipif", "onlyif"):
            conditions.append((head, words[1]))
            i += 1
            continue
        start = i + 1
        if head == "halt":
            records.append(Record(-1, start, "halt", conditions))
            i += 1
        elif head == "hash-threshold":
            records.append(Record(-1, start, "hash-threshold", conditions, threshold=int(words[1])))
            i += 1
        elif head == "statement":
            i += 1
            sql = []
            while i < n and lines[i].strip():
                sql.append(lines[i])
                i += 1
            records.append(
                Record(
                    index,
                    start,
                    "statement",
                    conditions,
                    "\n".join(sql),
                    expect_error=words[1] == "error",
                )
            )
            index += 1
        elif head == "query":
            i += 1
            sql = []
            while i < n and lines[i].strip() and lines[i].rstrip() != "----":
                sql.append(lines[i])
                i += 1
            rec = Record(index, start, "query", conditions, "\n".join(sql))
            rec.types = words[1]
            rec.sort = words[2] if len(words) > 2 else "nosort"
            rec.label = words[3] if len(words) > 3 else None
            if i < n and lines[i].rstrip() == "----":
                i += 1
                values = []
                while i < n and lines[i].strip():
                    values.append(lines[i].strip())
                    i += 1
                m = _HASH_RE.match(values[0]) if len(values) == 1 else None
                if m:
                    rec.expected_hash = (int(m.group(1)), m.group(2))
                else:
                    rec.expected = values
            records.append(rec)
            index += 1
        else:
            raise ValueError(f"{path.name}:{start}: unknown record {line!r}")
        conditions = []
    return records


def split_statements(sql: str) -> list[str]:
    """The statements of a record's text (sqllogictest runs it with sqlite3_exec,
    which takes several): split at each ';' that ends a complete statement
    (sqlite3.complete_statement knows quotes, comments and CREATE TRIGGER ... END)."""
    out, start = [], 0
    for i, ch in enumerate(sql):
        if ch == ";" and sqlite3.complete_statement(sql[start : i + 1]):
            piece = sql[start:i].strip()
            if piece:
                out.append(piece)
            start = i + 1
    rest = sql[start:].strip()
    if rest:
        out.append(rest)
    return out


# ---------------------------------------------------------------- formatting
# as sqllogictest's SQLite engine prints through sqlite3_column_int64 / _double / _text

_INT_PREFIX = re.compile(rb"^[ \t\n\f\r\v]*([+-]?)0*([0-9]*)")
_REAL_PREFIX = re.compile(
    rb"^[ \t\n\f\r\v]*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
)
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def _as_bytes(v) -> bytes:
    return v if isinstance(v, bytes) else v.encode("utf-8", "surrogateescape")


def to_int64(v) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return max(I64_MIN, min(I64_MAX, v))
    if isinstance(v, float):
        if math.isnan(v):
            return 0
        if v <= I64_MIN:
            return I64_MIN
        if v >= I64_MAX:
            return I64_MAX
        return int(v)
    m = _INT_PREFIX.match(_as_bytes(v))
    digits = m.group(2)
    if not digits:
        return 0
    value = int(digits) * (-1 if m.group(1) == b"-" else 1)
    return max(I64_MIN, min(I64_MAX, value))


def to_double(v) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    m = _REAL_PREFIX.match(_as_bytes(v))
    return float(m.group(1)) if m else 0.0


def real_text(r: float) -> str:
    """SQLite's text of a REAL ("%!.15g")."""
    if math.isinf(r):
        return "Inf" if r > 0 else "-Inf"
    s = f"{r:.15g}"
    if "e" in s:
        mant, exp = s.split("e")
        if "." not in mant:
            mant += ".0"
        return f"{mant}e{exp}"
    if "." not in s and "n" not in s:
        s += ".0"
    return s


def to_text(v) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return real_text(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return str(v)


def fixed3(r: float) -> str:
    """SQLite's printf("%.3f"): at most 16 significant digits (zeros after them),
    rounded half away from zero; no minus sign on a zero."""
    if math.isnan(r):
        return "NaN"
    if math.isinf(r):
        return "Inf" if r > 0 else "-Inf"
    if r == 0:
        return "0.000"
    d = Decimal(r)
    d = d.quantize(Decimal(1).scaleb(d.adjusted() - 15), rounding=ROUND_HALF_UP)
    return f"{d.quantize(Decimal('0.001'), rounding=ROUND_HALF_UP):.3f}"


def format_value(v, letter: str) -> str:
    if v is None:
        return "NULL"
    if letter == "I":
        return str(to_int64(v))
    if letter == "R":
        return fixed3(to_double(v))
    text = to_text(v)
    if text == "":
        return "(empty)"
    return "".join(
        chr(b) if 0x20 <= b <= 0x7E else "@" for b in text.encode("utf-8", "surrogateescape")
    )


def md5_of(values: list[str]) -> str:
    h = hashlib.md5()
    for v in values:
        h.update(v.encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()


# ---------------------------------------------------------------- running


class RecordTimeout(BaseException):
    """A record ran past RECORD_CPU_LIMIT seconds of CPU time (a BaseException so
    that no ``except Exception`` inside the engine swallows it)."""


def _on_timer(signum, frame):
    raise RecordTimeout()


@dataclass
class Outcome:
    passed: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)  # index -> why
    skipped: int = 0
    halted_at: int | None = None
    seconds: float = 0.0


def run_file(
    path: Path, engine, names: set[str], select=None, cpu_limit: float = RECORD_CPU_LIMIT
) -> Outcome:
    """Run the file's records on engine; select(record) -> bool picks the query
    records to run (every statement runs, as later records depend on it)."""
    out = Outcome()
    labels: dict[str, tuple[str, int]] = {}
    started = time.monotonic()
    old_handler = signal.signal(signal.SIGPROF, _on_timer)
    try:
        for rec in parse(path):
            if not rec.applies(names):
                if rec.index >= 0:
                    out.skipped += 1
                continue
            if rec.kind == "halt":
                out.halted_at = rec.line
                break
            if rec.kind == "hash-threshold":
                # the files carry each expected result in the form (values or
                # hash) the threshold gave; the comparison follows that form
                continue
            if rec.kind == "query" and select is not None and not select(rec):
                continue
            signal.setitimer(signal.ITIMER_PROF, cpu_limit)
            try:
                why = run_record(rec, engine, labels)
            except RecordTimeout:
                why = f"timeout (over {cpu_limit:g} s of CPU)"
            except Exception as exc:  # a crash of the engine, not an SQL error
                why = f"crash: {type(exc).__name__}: {exc}"
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
            if why is None:
                out.passed.add(rec.index)
            else:
                out.failed[rec.index] = why
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old_handler)
    out.seconds = time.monotonic() - started
    return out


def run_record(rec: Record, engine, labels: dict[str, tuple[str, int]]) -> str | None:
    """None when the record passes, else why it fails."""
    if rec.kind == "statement":
        try:
            for sql in split_statements(rec.sql):
                engine.execute(sql)
        except EngineError as exc:
            return None if rec.expect_error else f"statement failed: {exc}"
        return "statement succeeded, an error was expected" if rec.expect_error else None
    try:
        res = engine.execute(rec.sql)
    except EngineError as exc:
        if rec.expected == []:
            # sqllogictest's SQLite engine stops stepping at a run-time error and
            # prints the rows so far: "integer overflow" of sum() expects none
            return None
        return f"query failed: {exc}"
    if res is None:
        return "query returned no result set"
    ncols = len(rec.types)
    if res.columns and len(res.columns) != ncols or any(len(r) != ncols for r in res.rows):
        width = len(res.columns) if res.columns else len(res.rows[0])
        return f"{width} columns, expected {ncols}"
    rows = [[format_value(v, rec.types[i]) for i, v in enumerate(row)] for row in res.rows]
    if rec.sort == "rowsort":
        rows.sort()
    values = [v for row in rows for v in row]
    if rec.sort == "valuesort":
        values.sort()
    digest = md5_of(values)
    if rec.expected_hash is not None:
        count, want = rec.expected_hash
        if len(values) != count or digest != want:
            return f"{len(values)} values hashing to {digest}, expected {count} values hashing to {want}"
    elif rec.expected is not None and values != rec.expected:
        return f"got {_clip(values)}, expected {_clip(rec.expected)}"
    if rec.label:
        seen = labels.setdefault(rec.label, (digest, rec.line))
        if seen[0] != digest:
            return (
                f"results differ from those of the query with label {rec.label} at line {seen[1]}"
            )
    return None


def _clip(values: list[str], n: int = 12) -> str:
    s = " ".join(values[:n])
    return s + (f" ... ({len(values)} values)" if len(values) > n else "")


# ---------------------------------------------------------------- baseline


def ranges(indices) -> str:
    """ "0-3,5,7-9" of a set of integers."""
    out, run = [], None
    for i in sorted(indices):
        if run and i == run[1] + 1:
            run[1] = i
        else:
            if run:
                out.append(run)
            run = [i, i]
    if run:
        out.append(run)
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)


def unranges(text: str) -> set[int]:
    result: set[int] = set()
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        result.update(range(int(a), int(b or a) + 1))
    return result


def load_baseline() -> dict:
    if BASELINE.exists():
        return json.loads(BASELINE.read_text())
    return {"files": {}}


def save_baseline(name: str, out: Outcome, total: int) -> None:
    BASELINE.parent.mkdir(parents=True, exist_ok=True)
    lock_path = Path(tempfile.gettempdir()) / "toondb-sqllogictest-baseline.lock"
    with open(lock_path, "w") as lock:  # parallel runs update it too
        fcntl.flock(lock, fcntl.LOCK_EX)
        _save_baseline(name, out, total)


def _save_baseline(name: str, out: Outcome, total: int) -> None:
    data = load_baseline()
    data.setdefault("files", {})
    entry = data["files"].get(name, {"records": total, "passing": ""})
    passing = (unranges(entry["passing"]) - set(out.failed)) | out.passed
    data["files"][name] = {"records": total, "passing": ranges(passing)}
    data["files"] = dict(sorted(data["files"].items()))
    data["about"] = (
        "sqllogictest records (indices among a file's statement and query records) that pass "
        "against toondb; tests/sql/test_sqllogictest.py fails when one of them fails (a ratchet)"
    )
    tmp = BASELINE.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, BASELINE)


# ---------------------------------------------------------------- the tests


def slt_files() -> list[str]:
    if not SLT_DIR.is_dir():
        return []
    return sorted(str(p.relative_to(SLT_DIR)) for p in SLT_DIR.rglob("*.test"))


FILES = slt_files()
ENGINE = engine_under_test_name()


def _default_select(name: str):
    """The query records the default run takes of a file (None: all of them)."""
    how = DEFAULT_SUBSET.get(name)
    if how is None:
        return None
    kind, n = how
    state = {"queries": 0}

    def select(rec: Record) -> bool:
        state["queries"] += 1
        if kind == "prefix":
            return state["queries"] <= n
        return (state["queries"] - 1) % n == 0  # "stride": every n-th query

    return select


def _subset_id(name: str) -> str:
    kind, n = DEFAULT_SUBSET[name]
    return f"{name}-first-{n}-queries" if kind == "prefix" else f"{name}-every-{n}th-query"


def _params():
    params = []
    for name in FILES or ["(none)"]:
        if name in DEFAULT_SUBSET:
            params.append(pytest.param(name, "default", id=_subset_id(name)))
            marks = [pytest.mark.slow, pytest.mark.timeout(FULL_FILE_TIMEOUT)]
            params.append(pytest.param(name, None, id=name, marks=marks))
        else:
            params.append(pytest.param(name, None, id=name))
    return params


def _engine():
    if ENGINE == "sqlite3":
        return SqliteEngine()
    return ToonDBEngine()


@pytest.mark.parametrize(("name", "subset"), _params())
def test_sqllogictest(name: str, subset, capsys) -> None:
    require_shared(bool(FILES), f"sqllogictest files ({SLT_DIR})")
    if ENGINE == "toondb" and not toondb_has_sql():
        pytest.skip(SKIP_NO_ENGINE)
    path = SLT_DIR / name
    select = _default_select(name) if subset == "default" else None
    engine = _engine()
    try:
        out = run_file(path, engine, ENGINE_NAMES, select)
    finally:
        engine.close()
    total = sum(1 for r in parse(path) if r.index >= 0)
    ran = len(out.passed) + len(out.failed)
    rate = 100.0 * len(out.passed) / ran if ran else 100.0
    reasons = Counter(
        re.sub(r"\d+", "N", (why.splitlines() or [""])[0])[:100] for why in out.failed.values()
    )
    line = (
        f"\nsqllogictest {name} [{ENGINE}]: {len(out.passed)}/{ran} records pass ({rate:.1f}%),"
        f" {out.skipped} skipped by skipif/onlyif{', halted' if out.halted_at else ''},"
        f" {out.seconds:.1f} s"
    )
    if out.failed:
        line += "\n  most common failures: " + "; ".join(
            f"{n}x {r}" for r, n in reasons.most_common(4)
        )
    with capsys.disabled():
        print(line)
    records = {r.index: r for r in parse(path) if r.index >= 0}

    def describe(indices) -> str:
        return "\n".join(
            f"  record {i} (line {records[i].line}): {out.failed[i]}\n    {records[i].sql[:300]}"
            for i in sorted(indices)[:10]
        )

    if ENGINE == "sqlite3":
        assert not out.failed, (
            f"the runner fails {len(out.failed)} records with sqlite3:\n{describe(out.failed)}"
        )
        return
    if os.environ.get("TOONDB_SLT_UPDATE_BASELINE"):
        save_baseline(name, out, total)
        return
    entry = load_baseline().get("files", {}).get(name)
    was_passing = unranges(entry["passing"]) if entry else set()
    regressions = was_passing & set(out.failed)
    newly = out.passed - was_passing
    if newly:
        with capsys.disabled():
            print(
                f"  {len(newly)} records newly pass (not yet in the baseline): {ranges(newly)[:200]}"
            )
    assert not regressions, (
        f"{len(regressions)} records of {name} that passed before fail now "
        f"(baseline {BASELINE.name}):\n{describe(regressions)}"
    )


# ---------------------------------------------------------------- the runner's own tests


def test_format_value() -> None:
    assert format_value(None, "I") == "NULL"
    assert format_value(3.9, "I") == "3"
    assert format_value(-3.9, "I") == "-3"
    assert format_value("12abc", "I") == "12"
    assert format_value("abc", "I") == "0"
    assert format_value(1e300, "I") == str(I64_MAX)
    assert format_value(2, "R") == "2.000"
    assert format_value("1.5x", "R") == "1.500"
    assert format_value(1.0, "T") == "1.0"
    assert format_value("", "T") == "(empty)"
    assert format_value("a\tb", "T") == "a@b"
    assert format_value(1e20, "T") == "1.0e+20"
    assert ranges({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"
    assert unranges("0-2,4,6-7") == {0, 1, 2, 4, 6, 7}


def test_runner_detects_wrong_results(tmp_path: Path) -> None:
    """A wrong expected value, a wrong hash, a statement that should fail and
    does not, a label mismatch: each is a failed record."""
    script = tmp_path / "t.test"
    script.write_text(
        "statement ok\nCREATE TABLE t(a INTEGER, b TEXT)\n\n"
        "statement ok\nINSERT INTO t VALUES(1,'x'),(2,''),(NULL,'y')\n\n"
        "query IT rowsort\nSELECT a, b FROM t\n----\n1\nx\n2\n(empty)\nNULL\ny\n\n"
        "query IT rowsort\nSELECT a, b FROM t\n----\n1\nx\n2\n(empty)\nNULL\nz\n\n"
        "query I valuesort lbl\nSELECT a FROM t\n----\n3 values hashing to "
        + md5_of(sorted(["1", "2", "NULL"]))
        + "\n\n"
        "query I valuesort lbl\nSELECT a+1 FROM t\n----\n3 values hashing to "
        + md5_of(sorted(["2", "3", "NULL"]))
        + "\n\n"
        "statement error\nSELECT * FROM nowhere\n\n"
        "statement error\nSELECT 1\n\n"
        "onlyif mysql\nquery I nosort\nSELECT 1\n----\n2\n\n"
        "skipif toondb\nquery I nosort\nSELECT 1\n----\n2\n\n"
        "onlyif sqlite\nquery R nosort\nSELECT 1\n----\n1.000\n\n"
        "query II nosort\nSELECT 1\n----\n1\n\n"
        "halt\n\nquery I nosort\nSELECT 1\n----\n2\n"
    )
    engine = SqliteEngine()
    try:
        out = run_file(script, engine, ENGINE_NAMES)
    finally:
        engine.close()
    assert out.passed == {0, 1, 2, 4, 6, 10}
    assert set(out.failed) == {3, 5, 7, 11}
    assert "label" in out.failed[5]
    assert out.skipped == 2
    assert out.halted_at is not None
