"""SQLite's date and time functions: date time datetime julianday unixepoch
strftime timediff, and CURRENT_DATE / CURRENT_TIME / CURRENT_TIMESTAMP.

The spec is https://sqlite.org/lang_datefunc.html; edge cases follow SQLite 3.51.

A time value is held as SQLite holds it (:class:`_DateTime`): a Julian day
number in milliseconds (``ijd``) and/or a broken-down Y-M-D and h:m:s, each with
a "valid" flag, computed from the other on demand. The algorithms (Meeus's for
the calendar, day-of-month overflow carried into the next month) and every
rounding step are SQLite's, so that results agree to the millisecond:

1. A time value is ISO-8601 text (``YYYY-MM-DD``, ``[YYYY-MM-DD[T| ]]HH:MM[:SS[.F*]]``
   with an optional ``[+-]HH:MM`` or ``Z`` zone, a leading ``-`` for negative
   years), a number (a Julian day number, or with 'unixepoch'/'auto' a unix
   time), or 'now'. Anything else, a NULL argument, or a result outside
   0000-01-01..9999-12-31 gives NULL.
2. Months and years are added to the broken-down date and the day of month
   overflows into the next month (2023-01-31 +1 month is 2023-03-03), unless
   'floor' follows. A lone date argument with a day past the month's end is
   normalised the same way (2023-02-31 is 2023-03-03).
3. 'now' is read once per statement when the caller pins it with
   :func:`statement_clock` (SQLite's rule); without it each call reads the clock.
4. 'localtime' and 'utc' use the C library's localtime as SQLite does (so the
   process's TZ), mapping years outside 1970..2037 into that range.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import struct
import time
from collections.abc import Iterator
from typing import Any

from toondb.errors import SQLError
from toondb.sql.fn_printf import atof, sqlite_format

__all__ = [
    "f_date",
    "f_time",
    "f_datetime",
    "f_julianday",
    "f_unixepoch",
    "f_timediff",
    "f_current_date",
    "f_current_time",
    "f_current_timestamp",
    "statement_clock",
    "pin_now",
    "unpin_now",
    "current_ijd",
]

DAY_MS = 86400000
UNIX_EPOCH_MS = 210866760000000  # 1970-01-01 00:00:00 as a Julian day in ms
MAX_IJD = 464269060799999  # 9999-12-31 23:59:59.999
SPACES = " \t\n\v\f\r"

# ---------------------------------------------------------------- "now"

_pinned_now: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "toondb_statement_now", default=None
)


def current_ijd() -> int:
    """The current time as SQLite's sqlite3StmtCurrentTime: Julian day in ms."""
    pinned = _pinned_now.get()
    if pinned is not None:
        return pinned
    return time.time_ns() // 1_000_000 + UNIX_EPOCH_MS


@contextlib.contextmanager
def statement_clock(ijd: int | None = None) -> Iterator[int]:
    """Pin 'now' (and CURRENT_*) for the duration of one statement. Nested uses
    keep the outer statement's time."""
    if _pinned_now.get() is not None:
        yield _pinned_now.get()  # type: ignore[misc]
        return
    value = current_ijd() if ijd is None else ijd
    token = _pinned_now.set(value)
    try:
        yield value
    finally:
        _pinned_now.reset(token)


def pin_now() -> contextvars.Token[int | None] | None:
    """statement_clock's entry without a context manager (the per-statement path
    of session.py, where the generator costs more than the statement's own
    work): pin 'now' unless a statement already did; unpin_now(token) after."""
    if _pinned_now.get() is not None:
        return None
    return _pinned_now.set(time.time_ns() // 1_000_000 + UNIX_EPOCH_MS)


def unpin_now(token: contextvars.Token[int | None] | None) -> None:
    if token is not None:
        _pinned_now.reset(token)


# ---------------------------------------------------------------- C arithmetic


def _cdiv(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _cmod(a: int, b: int) -> int:
    return a - b * _cdiv(a, b)


def _f32(x: float) -> float:
    f32: float = struct.unpack("<f", struct.pack("<f", x))[0]
    return f32


class _Error(Exception):
    """The time value is invalid: the function returns NULL."""


def _trunc(x: float) -> int:
    """C's (sqlite3_int64)x for a double."""
    if not math.isfinite(x):
        raise _Error
    return int(x)


# ---------------------------------------------------------------- the time value


class _DateTime:
    __slots__ = (
        "ijd", "Y", "M", "D", "h", "m", "tz", "s",
        "valid_jd", "valid_ymd", "valid_hms", "nfloor",
        "raw_s", "is_error", "use_subsec", "is_utc", "is_local",
    )  # fmt: skip

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.ijd = 0
        self.Y = self.M = self.D = self.h = self.m = self.tz = 0
        self.s = 0.0
        self.valid_jd = self.valid_ymd = self.valid_hms = False
        self.nfloor = 0
        self.raw_s = self.is_error = self.use_subsec = self.is_utc = self.is_local = False

    def copy(self) -> _DateTime:
        c = _DateTime.__new__(_DateTime)
        for k in _DateTime.__slots__:
            setattr(c, k, getattr(self, k))
        return c

    def error(self) -> None:
        self.clear()
        self.is_error = True

    def compute_jd(self) -> None:
        if self.valid_jd:
            return
        if self.valid_ymd:
            Y, M, D = self.Y, self.M, self.D
        else:
            Y, M, D = 2000, 1, 1
        if Y < -4713 or Y > 9999 or self.raw_s:
            self.error()
            return
        if M <= 2:
            Y -= 1
            M += 12
        A = _cdiv(Y + 4800, 100)
        B = 38 - A + _cdiv(A, 4)
        X1 = _cdiv(36525 * (Y + 4716), 100)
        X2 = _cdiv(306001 * (M + 1), 10000)
        self.ijd = _trunc((X1 + X2 + D + B - 1524.5) * 86400000)
        self.valid_jd = True
        if self.valid_hms:
            self.ijd += self.h * 3600000 + self.m * 60000 + _trunc(self.s * 1000 + 0.5)
            if self.tz:
                self.ijd -= self.tz * 60000
                self.valid_ymd = self.valid_hms = False
                self.tz = 0
                self.is_utc, self.is_local = True, False

    def compute_floor(self) -> None:
        """nfloor: the days past the end of the month (what 'floor' takes back)."""
        D, M, Y = self.D, self.M, self.Y
        if D <= 28 or ((1 << M) & 0x15AA):
            self.nfloor = 0
        elif M != 2:
            self.nfloor = 1 if D == 31 else 0
        elif Y % 4 != 0 or (Y % 100 == 0 and Y % 400 != 0):
            self.nfloor = D - 28
        else:
            self.nfloor = D - 29

    def compute_ymd(self) -> None:
        if self.valid_ymd:
            return
        if not self.valid_jd:
            self.Y, self.M, self.D = 2000, 1, 1
        elif not 0 <= self.ijd <= MAX_IJD:
            self.error()
            return
        else:
            Z = (self.ijd + 43200000) // 86400000
            alpha = int((Z + 32044.75) / 36524.25) - 52
            A = Z + 1 + alpha - _cdiv(alpha + 100, 4) + 25
            B = A + 1524
            C = int((B - 122.1) / 365.25)
            D = (36525 * (C & 32767)) // 100
            E = int((B - D) / 30.6001)
            X1 = int(30.6001 * E)
            self.D = B - D - X1
            self.M = E - 1 if E < 14 else E - 13
            self.Y = C - 4716 if self.M > 2 else C - 4715
        self.valid_ymd = True

    def compute_hms(self) -> None:
        if self.valid_hms:
            return
        self.compute_jd()
        day_ms = _cmod(self.ijd + 43200000, 86400000)
        self.s = _cmod(day_ms, 60000) / 1000.0
        day_min = _cdiv(day_ms, 60000)
        self.m = _cmod(day_min, 60)
        self.h = _cdiv(day_min, 60)
        self.raw_s = False
        self.valid_hms = True

    def compute_ymd_hms(self) -> None:
        self.compute_ymd()
        self.compute_hms()

    def clear_ymd_hms_tz(self) -> None:
        self.valid_ymd = self.valid_hms = False
        self.tz = 0


# ---------------------------------------------------------------- parsing


def _digits(z: str, pos: int, spec: str) -> list[int]:
    """SQLite's getDigits: fields of spec "NmxS" (N digits, min m, max x from
    a..f, separator S); returns the fields converted before the first mismatch."""
    maxes = {"a": 12, "b": 14, "c": 24, "d": 31, "e": 59, "f": 14712}
    out: list[int] = []
    k = 0
    while True:
        n, lo, hi = int(spec[k]), int(spec[k + 1]), maxes[spec[k + 2]]
        sep = spec[k + 3] if k + 3 < len(spec) else ""
        chunk = z[pos : pos + n]
        if len(chunk) != n or not all("0" <= ch <= "9" for ch in chunk):
            return out
        val = int(chunk)
        pos += n
        if val < lo or val > hi or (sep and z[pos : pos + 1] != sep):
            return out
        out.append(val)
        pos += 1
        if not sep:
            return out
        k += 4


def _skip_spaces(z: str, i: int) -> int:
    while i < len(z) and z[i] in SPACES:
        i += 1
    return i


def _parse_timezone(z: str, i: int, p: _DateTime) -> bool:
    """The optional [+-]HH:MM or Z after a time; False if malformed."""
    i = _skip_spaces(z, i)
    p.tz = 0
    c = z[i : i + 1]
    if c in ("Z", "z"):
        i += 1
        p.is_local, p.is_utc = False, True
    elif c in ("+", "-"):
        f = _digits(z, i + 1, "20b:20e")
        if len(f) != 2:
            return False
        i += 6
        p.tz = (-1 if c == "-" else 1) * (f[1] + f[0] * 60)
        if p.tz == 0:
            p.is_local, p.is_utc = False, True
    else:
        return c == ""
    i = _skip_spaces(z, i)
    return i >= len(z)


def _parse_hms(z: str, i: int, p: _DateTime) -> bool:
    """HH:MM[:SS[.FFF]] with an optional zone; False if malformed."""
    f = _digits(z, i, "20c:20e")
    if len(f) != 2:
        return False
    h, m = f
    i += 5
    ms = 0.0
    if z[i : i + 1] == ":":
        i += 1
        f = _digits(z, i, "20e")
        if len(f) != 1:
            return False
        s = f[0]
        i += 2
        if z[i : i + 1] == "." and "0" <= z[i + 1 : i + 2] <= "9":
            scale = 1.0
            i += 1
            while i < len(z) and "0" <= z[i] <= "9":
                ms = ms * 10.0 + (ord(z[i]) - 48)
                scale *= 10.0
                i += 1
            ms /= scale
            if ms > 0.999:
                ms = 0.999
    else:
        s = 0
    p.valid_jd = False
    p.raw_s = False
    p.valid_hms = True
    p.h, p.m = h, m
    p.s = s + ms
    if p.s != p.s:
        raise _Error
    return _parse_timezone(z, i, p)


def _parse_ymd(z: str, p: _DateTime) -> bool:
    neg = z[:1] == "-"
    i = 1 if neg else 0
    f = _digits(z, i, "40f-21a-21d")
    if len(f) != 3:
        return False
    Y, M, D = f
    i += 10
    while i < len(z) and (z[i] in SPACES or z[i] == "T"):
        i += 1
    if _parse_hms(z, i, p):
        pass
    elif i >= len(z):
        p.valid_hms = False
    else:
        return False
    p.valid_jd = False
    p.valid_ymd = True
    p.Y = -Y if neg else Y
    p.M, p.D = M, D
    p.compute_floor()
    if p.tz:
        p.compute_jd()
    return True


def _set_now(p: _DateTime) -> None:
    p.ijd = current_ijd()
    p.valid_jd = True
    p.is_utc, p.is_local = True, False
    p.clear_ymd_hms_tz()


def _set_raw_number(p: _DateTime, r: float) -> None:
    p.s = r
    p.raw_s = True
    if 0.0 <= r < 5373484.5:
        p.ijd = _trunc(r * 86400000.0 + 0.5)
        p.valid_jd = True


def _parse_time_value(z: str, p: _DateTime) -> bool:
    if _parse_ymd(z, p):
        return True
    if _parse_hms(z, 0, p):
        return True
    low = z.lower()
    if low == "now":
        _set_now(p)
        return True
    r, kind = atof(z)
    if kind > 0:
        _set_raw_number(p, r)
        return True
    if low in ("subsec", "subsecond"):
        p.use_subsec = True
        _set_now(p)
        return True
    return False


# ---------------------------------------------------------------- localtime


def _to_localtime(p: _DateTime) -> None:
    """Move p (taken as UTC) to local time, as SQLite's toLocaltime."""
    p.compute_jd()
    if p.ijd < 2108667600 * 100000 or p.ijd > 2130141456 * 100000:
        x = p.copy()
        x.compute_ymd_hms()
        year_diff = (2000 + _cmod(x.Y, 4)) - x.Y
        x.Y += year_diff
        x.valid_jd = False
        x.compute_jd()
        t = _cdiv(x.ijd, 1000) - 21086676 * 10000
    else:
        year_diff = 0
        t = _cdiv(p.ijd, 1000) - 21086676 * 10000
    try:
        tm = time.localtime(t)
    except (OverflowError, OSError, ValueError):
        raise SQLError("local time unavailable") from None
    p.Y = tm.tm_year - year_diff
    p.M, p.D = tm.tm_mon, tm.tm_mday
    p.h, p.m = tm.tm_hour, tm.tm_min
    p.s = tm.tm_sec + _cmod(p.ijd, 1000) * 0.001
    p.valid_ymd = p.valid_hms = True
    p.valid_jd = p.raw_s = p.is_error = False
    p.tz = 0


def _to_utc(p: _DateTime) -> None:
    if p.is_utc:
        return
    p.compute_jd()
    guess = orig = p.ijd
    err = 0
    cnt = 0
    while True:
        guess -= err
        new = _DateTime()
        new.ijd = guess
        new.valid_jd = True
        _to_localtime(new)
        new.compute_jd()
        err = new.ijd - orig
        if not (err and cnt < 3):
            break
        cnt += 1
    p.clear()
    p.ijd = guess
    p.valid_jd = True
    p.is_utc = True


# ---------------------------------------------------------------- modifiers

# name -> (limit, seconds per unit); the limits are C floats in SQLite
_UNITS = {
    "second": (_f32(4.6427e14), 1.0),
    "minute": (_f32(7.7379e12), 60.0),
    "hour": (_f32(1.2897e11), 3600.0),
    "day": (_f32(5373485.0), 86400.0),
    "month": (_f32(176546.0), 2592000.0),
    "year": (_f32(14713.0), 31536000.0),
}


def _auto(p: _DateTime) -> None:
    if not p.raw_s or p.valid_jd:
        p.raw_s = False
    elif -21086676 * 10000 <= p.s <= 25340230 * 10000 + 799:
        r = p.s * 1000.0 + 210866760000000.0
        p.clear_ymd_hms_tz()
        p.ijd = _trunc(r + 0.5)
        p.valid_jd = True
        p.raw_s = False


def _normalize_month(p: _DateTime) -> None:
    x = _cdiv(p.M - 1, 12) if p.M > 0 else _cdiv(p.M - 12, 12)
    p.Y += x
    p.M -= x * 12


def _modifier(z: str, p: _DateTime, idx: int) -> bool:
    """Apply one modifier; False means an error (the result is NULL)."""
    low = z.lower()
    first = low[:1]
    if first == "a":
        if low == "auto":
            if idx > 1:
                return False
            _auto(p)
            return True
        return False
    if first == "c":
        if low == "ceiling":
            p.compute_jd()
            p.clear_ymd_hms_tz()
            p.nfloor = 0
            return True
        return False
    if first == "f":
        if low == "floor":
            p.compute_jd()
            p.ijd -= p.nfloor * 86400000
            p.clear_ymd_hms_tz()
            return True
        return False
    if first == "j":
        if low == "julianday":
            if idx > 1:
                return False
            if p.valid_jd and p.raw_s:
                p.raw_s = False
                return True
        return False
    if first == "l":
        if low == "localtime":
            if not p.is_local:
                _to_localtime(p)
            p.is_utc, p.is_local = False, True
            return True
        return False
    if first == "u":
        if low == "unixepoch" and p.raw_s:
            if idx > 1:
                return False
            r = p.s * 1000.0 + 210866760000000.0
            if 0.0 <= r < 464269060800000.0:
                p.clear_ymd_hms_tz()
                p.ijd = _trunc(r + 0.5)
                p.valid_jd = True
                p.raw_s = False
                return True
            return False
        if low == "utc":
            _to_utc(p)
            return True
        return False
    if first == "w":
        if low.startswith("weekday "):
            r, kind = atof(z[8:])
            if kind > 0 and 0.0 <= r < 7.0 and int(r) == r:
                n = int(r)
                p.compute_ymd_hms()
                p.tz = 0
                p.valid_jd = False
                p.compute_jd()
                Z = _cmod(_cdiv(p.ijd + 129600000, 86400000), 7)
                if Z > n:
                    Z -= 7
                p.ijd += (n - Z) * 86400000
                p.clear_ymd_hms_tz()
                return True
        return False
    if first == "s":
        if not low.startswith("start of "):
            if low in ("subsec", "subsecond"):
                p.use_subsec = True
                return True
            return False
        if not (p.valid_jd or p.valid_ymd or p.valid_hms):
            return False
        p.compute_ymd()
        p.valid_hms = True
        p.h = p.m = 0
        p.s = 0.0
        p.raw_s = False
        p.tz = 0
        p.valid_jd = False
        what = low[9:]
        if what == "month":
            p.D = 1
            return True
        if what == "year":
            p.M = 1
            p.D = 1
            return True
        return what == "day"
    if first and first in "+-0123456789":
        return _shift(z, p)
    return False


def _shift(z: str, p: _DateTime) -> bool:
    """'+NNN units', '+HH:MM[:SS.FFF]', '+YYYY-MM-DD[ HH:MM[:SS.FFF]]'."""
    z0 = z[0]
    n = 1
    while n < len(z):
        c = z[n]
        if c == ":" or c in SPACES:
            break
        if c == "-":
            if n == 5 and len(_digits(z, 1, "40f")) == 1:
                break
            if n == 6 and len(_digits(z, 1, "50f")) == 1:
                break
        n += 1
    r, kind = atof(z[:n])
    if kind <= 0:
        return False
    z2, n2 = z, n
    if z[n : n + 1] == "-":
        # (+|-)YYYY-MM-DD: years, months (0-11) and days (0-30)
        if z0 not in "+-":
            return False
        if n == 5:
            f = _digits(z, 1, "40f-20a-20d")
            rest = z[11:]
        else:
            f = _digits(z, 1, "50f-20a-20d")
            rest = z[12:]
        if len(f) != 3:
            return False
        Y, M, D = f
        if M >= 12 or D >= 31:
            return False
        p.compute_ymd_hms()
        p.valid_jd = False
        if z0 == "-":
            p.Y -= Y
            p.M -= M
            D = -D
        else:
            p.Y += Y
            p.M += M
        _normalize_month(p)
        p.compute_floor()
        p.compute_jd()
        p.valid_hms = p.valid_ymd = False
        p.ijd += D * 86400000
        if rest == "":
            return True
        if rest[0] in SPACES and len(_digits(rest, 1, "20c:20e")) == 2:
            z2, n2 = rest[1:], 2
        else:
            return False
    if z2[n2 : n2 + 1] == ":":
        # (+|-)HH:MM[:SS[.FFF]]
        start = 0 if "0" <= z2[:1] <= "9" else 1
        tx = _DateTime()
        if not _parse_hms(z2, start, tx):
            return False
        tx.compute_jd()
        tx.ijd -= 43200000
        day = _cdiv(tx.ijd, 86400000)
        tx.ijd -= day * 86400000
        if z0 == "-":
            tx.ijd = -tx.ijd
        p.compute_jd()
        p.clear_ymd_hms_tz()
        p.ijd += tx.ijd
        return True
    # NNN units
    unit = z[n:].lstrip(SPACES)
    nu = len(unit.encode("utf-8", "surrogatepass"))
    if nu < 3 or nu > 10:
        return False
    if unit[-1:] in ("s", "S"):
        unit = unit[:-1]
    p.compute_jd()
    rounder = -0.5 if r < 0 else 0.5
    p.nfloor = 0
    ok = False
    spec = _UNITS.get(unit.lower()) if unit.isascii() else None
    if spec is not None and -spec[0] < r < spec[0]:
        name = unit.lower()
        if name == "month":
            p.compute_ymd_hms()
            p.M += int(r)
            _normalize_month(p)
            p.compute_floor()
            p.valid_jd = False
            r -= int(r)
        elif name == "year":
            p.compute_ymd_hms()
            p.Y += int(r)
            p.compute_floor()
            p.valid_jd = False
            r -= int(r)
        p.compute_jd()
        p.ijd += _trunc(r * 1000.0 * spec[1] + rounder)
        ok = True
    p.clear_ymd_hms_tz()
    return ok


# ---------------------------------------------------------------- arguments


def _text(v: Any) -> str | None:
    """An argument as sqlite3_value_text sees it (cut at a NUL)."""
    if v is None:
        return None
    if isinstance(v, str):
        s = v
    elif isinstance(v, (bytes, bytearray, memoryview)):
        s = bytes(v).decode("utf-8", "replace")
    elif type(v) is float:
        s = sqlite_format("%!.15g", v)
    else:
        s = str(v)
    k = s.find("\x00")
    return s if k < 0 else s[:k]


def _is_date(args: tuple[Any, ...]) -> _DateTime | None:
    """The time value of (time value, modifiers...), or None for NULL."""
    p = _DateTime()
    try:
        if not args:
            _set_now(p)
            return p
        v = args[0]
        if type(v) is int or type(v) is float:
            _set_raw_number(p, float(v))
        else:
            z = _text(v)
            if z is None or not _parse_time_value(z, p):
                return None
        for i in range(1, len(args)):
            z = _text(args[i])
            if z is None or not _modifier(z, p, i):
                return None
        p.compute_jd()
        if p.is_error or not 0 <= p.ijd <= MAX_IJD:
            return None
        if len(args) == 1 and p.valid_ymd and p.D > 28:
            p.valid_ymd = False  # normalise an overflowing day of month
        return p
    except (_Error, OverflowError):
        return None


# ---------------------------------------------------------------- output


def _ymd_text(x: _DateTime) -> str:
    y = abs(x.Y) % 10000
    text = f"{y:04d}-{x.M % 100:02d}-{x.D % 100:02d}"
    return "-" + text if x.Y < 0 else text


def _hms_text(x: _DateTime) -> str:
    if x.use_subsec:
        s = int(1000.0 * x.s + 0.5)
        return f"{x.h % 100:02d}:{x.m % 100:02d}:{(s // 1000) % 100:02d}.{s % 1000:03d}"
    return f"{x.h % 100:02d}:{x.m % 100:02d}:{int(x.s) % 100:02d}"


def f_date(*args: Any) -> Any:
    x = _is_date(args)
    if x is None:
        return None
    x.compute_ymd()
    return None if x.is_error else _ymd_text(x)


def f_time(*args: Any) -> Any:
    x = _is_date(args)
    if x is None:
        return None
    x.compute_hms()
    return _hms_text(x)


def f_datetime(*args: Any) -> Any:
    x = _is_date(args)
    if x is None:
        return None
    x.compute_ymd_hms()
    return None if x.is_error else _ymd_text(x) + " " + _hms_text(x)


def f_julianday(*args: Any) -> Any:
    x = _is_date(args)
    if x is None:
        return None
    return x.ijd / 86400000.0


def f_unixepoch(*args: Any) -> Any:
    x = _is_date(args)
    if x is None:
        return None
    if x.use_subsec:
        return (x.ijd - UNIX_EPOCH_MS) / 1000.0
    return x.ijd // 1000 - 21086676 * 10000


def f_timediff(a: Any, b: Any) -> Any:
    """timediff(A, B): the +YYYY-MM-DD HH:MM:SS.SSS to add to B to reach A."""
    d1 = _is_date((a,))
    d2 = _is_date((b,))
    if d1 is None or d2 is None:
        return None
    d1.compute_ymd_hms()
    d2.compute_ymd_hms()

    def again() -> None:
        d2.valid_jd = False
        d2.compute_jd()

    if d1.ijd >= d2.ijd:
        sign = "+"
        Y = d1.Y - d2.Y
        if Y:
            d2.Y = d1.Y
            again()
        M = d1.M - d2.M
        if M < 0:
            Y -= 1
            M += 12
        if M != 0:
            d2.M = d1.M
            again()
        while d1.ijd < d2.ijd:
            M -= 1
            if M < 0:
                M = 11
                Y -= 1
            d2.M -= 1
            if d2.M < 1:
                d2.M = 12
                d2.Y -= 1
            again()
        d1.ijd -= d2.ijd
    else:
        sign = "-"
        Y = d2.Y - d1.Y
        if Y:
            d2.Y = d1.Y
            again()
        M = d2.M - d1.M
        if M < 0:
            Y -= 1
            M += 12
        if M != 0:
            d2.M = d1.M
            again()
        while d1.ijd > d2.ijd:
            M -= 1
            if M < 0:
                M = 11
                Y -= 1
            d2.M += 1
            if d2.M > 12:
                d2.M = 1
                d2.Y += 1
            again()
        d1.ijd = d2.ijd - d1.ijd
    d1.ijd += 1486995408 * 100000
    d1.clear_ymd_hms_tz()
    d1.compute_ymd_hms()
    return sign + sqlite_format("%04d-%02d-%02d %02d:%02d:%06.3f", Y, M, d1.D - 1, d1.h, d1.m, d1.s)


def f_current_date() -> Any:
    return f_date()


def f_current_time() -> Any:
    return f_time()


def f_current_timestamp() -> Any:
    return f_datetime()
