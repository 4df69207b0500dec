"""date/time/datetime/julianday/unixepoch/strftime/timediff against SQLite.

The reference is SQLite 3.51 (pysqlite3) throughout, because toondb follows its
rules (3.40 lacks timediff, 'subsec', 'floor'/'ceiling', the +YYYY-MM-DD
modifier, %G/%V/%U..., and normalises negative years and day-of-month overflow
differently); test_stable_cases_match_sqlite_340 also holds the long-standing
subset to stdlib sqlite3 3.40. Calls go through toondb's SQL engine.
"""

from __future__ import annotations

import os
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sql_fn_reference import ToonDB, check, sqlite340, sqlite351, sqlite_call, toondb_call

from toondb.sql import fn_datetime

FUNCS = ("date", "time", "datetime", "julianday", "unixepoch")

TIME_VALUES = [
    "2023-01-31", "2024-02-29", "2023-02-29", "2023-02-31", "2023-04-31", "2000-02-29",
    "1900-02-29", "2100-02-29", "2000-01-01 12:00:00", "2020-06-15T08:30:45.123",
    "2020-06-15 08:30:45.1235", "2020-06-15 08:30:45.9999", "2020-02-29 23:59:59.9995",
    "12:34", "12:34:56", "12:34:56.789Z", "24:00", "23:59:59.9999999999",
    "2020-01-01 12:00+05:30", "2020-01-01 12:00 -05:00", "2020-01-01T12:00:00z",
    "2020-01-01 12:00:00+00:00", "12:00+14:00", "12:00+15:00",
    "-0001-03-01", "0000-01-01", "0001-01-01", "1582-10-10", "9999-12-31 23:59:59.999",
    "-4713-11-24 12:00:00", "-4713-11-24", "10000-01-01", "2020-13-01", "2020-00-10",
    "2020-01-32", "2020-1-1", "garbage", "", "2020-01-01  ", "2020-01-01TT12:00",
    "2020-01-01 12:00:00.", "2020-01-01 12:00:00.5 Z ", " 2451545.0 ", "2451545", "1e6",
    "2020-01-01 24:00:00", "now ", "NOW", "subsec",
    0, 2451545, 2451545.5, 1700000000, -1, 5373484.5, 5373484.4999, 1.5, None,
    b"2020-01-01", "2020-01-01\x00junk",
]  # fmt: skip

MODIFIERS = [
    "+1 day", "-1 day", "+1 month", "-1 month", "+13 months", "-13 months", "+1 year",
    "-1 year", "+1.5 months", "+0.5 years", "+1.5 days", "+36 hours", "-90 minutes",
    "+3600 seconds", "+1.2345 seconds", "+1 days ", " +1 day", "+1 DAYS", "+ 1 day",
    "+1day", "+1e3 days", "+1 fortnight", "start of month", "start of year",
    "start of day", "start of week", "START OF MONTH", "weekday 0", "weekday 3",
    "weekday 6", "weekday 7", "weekday 1.5", "unixepoch", "auto", "julianday",
    "subsec", "subsecond", "ceiling", "floor", "+01:30", "-01:30:15.5", "12:00",
    "+0001-02-03", "-0001-02-03 04:05:06.789", "+0000-11-30", "+0000-12-00",
    "+00001-01-01", "utc", "", None, 5,
]  # fmt: skip

STRFTIME_ALL = "%d %e %f %F %H %I %j %J %k %l %m %M %p %P %R %s %S %T %u %U %V %G %g %w %W %Y %%"


@pytest.fixture(scope="module")
def db():
    t = ToonDB()
    yield t.db
    t.close()


@pytest.fixture(scope="module")
def ref():
    return sqlite351()


def test_time_values_alone(db, ref):
    for v in TIME_VALUES:
        if isinstance(v, str) and v.strip().lower() in ("now", "subsec"):
            continue
        for fn in FUNCS:
            check(db, ref, fn, v)


def test_one_modifier(db, ref):
    for v in TIME_VALUES:
        if isinstance(v, str) and v.strip().lower() in ("now", "subsec"):
            continue
        for m in MODIFIERS:
            check(db, ref, "datetime", v, m)
            check(db, ref, "unixepoch", v, m)


def test_modifier_pairs(db, ref):
    second = ["+1 month", "floor", "ceiling", "start of month", "subsec", "unixepoch", "weekday 1"]
    for v in ("2023-01-31", "2024-02-29 13:14:15.5", "2023-03-31", 1700000000, "2000-12-31"):
        for m1 in MODIFIERS[:45]:
            for m2 in second:
                check(db, ref, "datetime", v, m1, m2)


def test_month_overflow_and_floor(db, ref):
    """2023-01-31 +1 month is 2023-03-03 (the day overflows); 'floor' takes it back."""
    assert toondb_call(db, "date", "2023-01-31", "+1 month") == ("ok", "2023-03-03")
    assert toondb_call(db, "date", "2023-01-31", "+1 month", "floor") == ("ok", "2023-02-28")
    assert toondb_call(db, "date", "2024-01-31", "+1 month", "floor") == ("ok", "2024-02-29")
    assert toondb_call(db, "date", "2023-02-31") == ("ok", "2023-03-03")
    for y in range(1999, 2026):
        for d in ("-01-29", "-01-30", "-01-31", "-03-31", "-05-31", "-08-31", "-12-31"):
            for m in ("+1 month", "-1 month", "+1 year", "+0001-01-00", "-0000-01-00"):
                check(db, ref, "date", f"{y}{d}", m)
                check(db, ref, "date", f"{y}{d}", m, "floor")


def test_strftime_every_conversion(db, ref):
    for v in TIME_VALUES:
        if isinstance(v, str) and v.strip().lower() in ("now", "subsec"):
            continue
        for fmt in (STRFTIME_ALL, "x%", "%q", "", "plain %%", "%s", None):
            check(db, ref, "strftime", fmt, v)
            check(db, ref, "strftime", fmt, v, "subsec")


def test_week_numbers_every_day_of_years(db, ref):
    """%j %U %V %G %g %W %u %w on every day of years with every weekday start."""
    for y in (2000, 2004, 2009, 2010, 2015, 2020, 2021):
        for day in range(0, 367, 3):
            check(db, ref, "strftime", "%j %U %V %G %g %W %u %w", f"{y}-01-01", f"+{day} days")


def test_timediff(db, ref):
    vals = [v for v in TIME_VALUES[:36] if v is not None] + ["2024-03-01", "2023-02-28 23:59:59"]
    for a in vals:
        for b in vals[::3]:
            check(db, ref, "timediff", a, b)
    assert toondb_call(db, "timediff", "2024-03-01", "2023-02-28") == (
        "ok",
        "+0001-00-02 00:00:00.000",
    )


def test_nulls_and_arity(db, ref):
    for fn in FUNCS:
        check(db, ref, fn, None)
        check(db, ref, fn, "2020-01-01", None)
        check(db, ref, fn, "2020-01-01", "+1 day", None)
    check(db, ref, "strftime", None, "2020-01-01")
    check(db, ref, "timediff", None, "2020-01-01")
    assert toondb_call(db, "strftime")[0] == "ok"


def test_now_has_the_shape_of_a_time(db):
    now = time.time()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", toondb_call(db, "date", "now")[1])
    assert re.fullmatch(r"\d\d:\d\d:\d\d", toondb_call(db, "time")[1])
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", toondb_call(db, "datetime", "now", "subsec")[1]
    )
    assert abs(toondb_call(db, "unixepoch")[1] - now) < 5
    assert abs(toondb_call(db, "unixepoch", "subsec")[1] - now) < 5
    rows = db.execute_sql("SELECT CURRENT_DATE, CURRENT_TIME, CURRENT_TIMESTAMP").rows[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", rows[0])
    assert re.fullmatch(r"\d\d:\d\d:\d\d", rows[1])
    assert rows[2].startswith(rows[0])


def test_statement_clock_pins_now():
    """'now' is one instant for a whole statement under statement_clock()."""
    with fn_datetime.statement_clock() as ijd:
        first = fn_datetime.f_datetime("now", "subsec")
        time.sleep(0.002)
        assert fn_datetime.f_datetime("now", "subsec") == first
        assert fn_datetime.f_julianday() == ijd / 86400000.0
        with fn_datetime.statement_clock():  # nested: the outer time stands
            assert fn_datetime.f_datetime("now", "subsec") == first
    with fn_datetime.statement_clock(210866760000000):  # 1970-01-01
        assert fn_datetime.f_current_timestamp() == "1970-01-01 00:00:00"
        assert fn_datetime.f_current_date() == "1970-01-01"
        assert fn_datetime.f_current_time() == "00:00:00"


def test_update_by_rowid_pins_now_when_it_reads_the_clock(db, monkeypatch):
    """An UPDATE of one row by its rowid (dml.py's fast path, which pins no
    'now' when it calls no function) still reads one instant per statement."""
    db.execute_sql("CREATE TABLE clk (id INTEGER PRIMARY KEY, a TEXT, b TEXT)")
    db.execute_sql("INSERT INTO clk VALUES (1, NULL, NULL)")
    ticks = iter(range(10**15, 10**15 + 10**12, 10**9))  # each read of the clock 1 s later
    monkeypatch.setattr(fn_datetime.time, "time_ns", lambda: next(ticks))
    sql = "UPDATE clk SET a = datetime('now'), b = datetime('now') WHERE id = ?"
    assert db.execute_sql(sql, (1,)).rowcount == 1
    a, b = db.execute_sql("SELECT a, b FROM clk").rows[0]
    assert a == b
    db.execute_sql("UPDATE clk SET a = ? WHERE id = ?", ("x", 1))  # no function: no clock
    assert db.execute_sql("SELECT a, b FROM clk").rows[0] == ("x", b)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_localtime_and_utc(db, ref, tz):
    """Both engines use the C library's localtime in this process."""
    if not os.path.exists(f"/usr/share/zoneinfo/{tz}"):
        pytest.skip(f"no zoneinfo for {tz}")
    old = os.environ.get("TZ")
    os.environ["TZ"] = tz
    time.tzset()
    try:
        for v in ("2024-03-10 06:59:59", "2024-03-10 07:30:00", "2024-11-03 05:30:00",
                  "1960-07-01 12:00", "2050-01-01 00:00", "2020-06-01 12:00Z", 1700000000):  # fmt: skip
            for mods in (("localtime",), ("utc",), ("localtime", "utc"), ("utc", "localtime"),
                         ("localtime", "localtime"), ("unixepoch", "localtime")):  # fmt: skip
                check(db, ref, "datetime", v, *mods)
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_stable_cases_match_sqlite_340(db):
    """The long-standing part of the date functions also agrees with stdlib 3.40."""
    old = sqlite340()
    for v in ("2023-01-31", "2024-02-29 12:34:56", "2000-01-01T00:00:00.5", "12:00", 2451545.5):
        for m in ("+1 day", "-3 hours", "+90 minutes", "start of month", "start of year",
                  "weekday 0", "+1 month", "-1 year", "+45 seconds"):  # fmt: skip
            for fn in ("date", "datetime", "julianday"):
                check(db, old, fn, v, m)
        check(db, old, "strftime", "%d %H %j %m %M %S %w %W %Y %%", v)
    check(db, old, "datetime", 1700000000, "unixepoch")
    check(db, old, "datetime", 1700000000, "auto")


_years = st.integers(-4713, 10000)
_time_text = st.builds(
    lambda y, mo, d, h, mi, s, f, sep, tz: (
        f"{'-' if y < 0 else ''}{abs(y):04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{f}{tz}"
    ),
    _years,
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 60),
    st.integers(0, 60),
    st.sampled_from(["", ".5", ".123", ".9999", ".0001", "."]),
    st.sampled_from([" ", "T", "  "]),
    st.sampled_from(["", "Z", "+05:30", "-11:45", "+14:59", " +00:00"]),
)
_time_value = st.one_of(
    _time_text,
    st.floats(-1e7, 6e6, allow_nan=False),
    st.integers(-(10**11), 3 * 10**11),
    st.sampled_from(TIME_VALUES[:40]),
)
_number_mod = st.builds(
    lambda n, u: f"{n:+g} {u}",
    st.floats(-2e5, 2e5, allow_nan=False),
    st.sampled_from(["days", "hours", "minutes", "seconds", "months", "years", "day", "month"]),
)
_modifier = st.one_of(_number_mod, st.sampled_from(MODIFIERS))


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(v=_time_value, mods=st.lists(_modifier, max_size=3))
def test_generated_time_values_and_modifiers(db, ref, v, mods):
    check(db, ref, "datetime", v, *mods)
    check(db, ref, "julianday", v, *mods)
    check(db, ref, "strftime", STRFTIME_ALL, v, *mods)


@pytest.mark.slow
@settings(max_examples=20000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(v=_time_value, mods=st.lists(_modifier, max_size=4), b=_time_value)
def test_generated_time_values_and_modifiers_long(db, ref, v, mods, b):
    check(db, ref, "datetime", v, *mods)
    check(db, ref, "unixepoch", v, "subsec", *mods)
    check(db, ref, "strftime", STRFTIME_ALL, v, *mods)
    check(db, ref, "timediff", v, b)


def test_reference_is_351(ref):
    assert sqlite_call(ref, "sqlite_version")[1] >= "3.51"


def test_strftime_fast_path_agrees_with_the_full_parse(monkeypatch):
    """strftime(FMT, canonical text) copies fields from the text; it answers as the
    full parse does (overflowing days, hour 24, out-of-range fields, T separator)."""
    import toondb.sql.fn_strftime as F

    fmts = [
        "%Y-%m",
        "{%d}",
        "%Y{",
        "%Y-%m-%d %H:%M:%S",
        "%F %T",
        "x%%y%d",
        "%H",
        "",
        "%Y-%j",
        "%",
        "%Y%",
    ]
    vals = [
        f"{y}-{mo:02d}-{d:02d}{t}"
        for y in ("0000", "1900", "2000", "2023", "2024", "9999")
        for mo in (0, 1, 2, 4, 12, 13)
        for d in (0, 1, 28, 29, 30, 31, 32)
        for t in ("", " 00:00", "T23:59:59", " 24:00:00", " 12:60:00", " 12:00:60", " 1:2")
    ]
    vals += ["\u0662\u0660\u0662\u0663-01-01", "2023-01-0\u0661 12:00:00"]
    fast = [[F.f_strftime(f, v) for f in fmts] for v in vals]
    monkeypatch.setattr(F, "_fast_strftime", lambda f, z: None)
    slow = [[F.f_strftime(f, v) for f in fmts] for v in vals]
    assert fast == slow


def test_strftime_over_a_column_agrees_with_sqlite(ref):
    """strftime(FMT, column), FMT a literal or a parameter (compiled once per format
    value: fields sliced from canonical text, anything else the general way), over
    canonical, non-canonical and invalid values, NULLs and numbers; one statement
    run with several formats in turn."""
    vals = [
        f"{y}-{mo:02d}-{d:02d}{t}"
        for y in ("0000", "2000", "2023", "2024")
        for mo in (0, 1, 2, 4, 12, 13)
        for d in (0, 1, 28, 29, 30, 31, 32)
        for t in ("", " 00:00", "T23:59:59", " 07:08:09", " 24:00:00", " 12:60:00", " 12:00:60")
    ]
    # digits other than ASCII are not digits to SQLite
    vals += [
        "\u0662\u0660\u0662\u0663-01-01",
        "2023-01-0\u0661 12:00:00",
        "2023-01-01 1\uff12:00:00",
    ]
    vals += [
        v
        for v in TIME_VALUES
        if not (isinstance(v, str) and v.strip().lower() in ("now", "subsec"))
    ]
    fmts = [
        "%Y-%m", "%Y-%m-%d", "%H", "%F %T", "%Y%m%d", "%d/%m/%Y", "%m-%d", "%H:%M",
        "%M:%S", "%Y-%m-%d %H", "%T", "%%Y-%m", "x", "%Y-%j", "%s", "%", "", "%Y\x00%m",
    ]  # fmt: skip
    t = ToonDB()
    try:
        db = t.db
        db.execute_sql("CREATE TABLE d (id INTEGER PRIMARY KEY, ts)")
        ref.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, ts)")
        rows = list(enumerate(vals))
        db.executemany("INSERT INTO d VALUES (?, ?)", rows)
        ref.executemany("INSERT INTO d VALUES (?, ?)", rows)
        for fmt in fmts:
            want = ref.execute("SELECT id, strftime(?, ts) FROM d ORDER BY id", (fmt,)).fetchall()
            got = db.execute_sql("SELECT id, strftime(?, ts) FROM d ORDER BY id", (fmt,)).rows
            assert [tuple(r) for r in got] == want, fmt
            lit = fmt.replace("\x00", "")
            sql = f"SELECT id, strftime('{lit}', ts) FROM d ORDER BY id"
            assert [tuple(r) for r in db.execute_sql(sql).rows] == ref.execute(sql).fetchall()
    finally:
        ref.execute("DROP TABLE IF EXISTS d")
        t.close()
