"""SQLite's strftime(FMT, time value, modifiers...): the format's substitutions
(%d %e %f %F %g %G %H %I %j %J %k %l %m %M %p %P %R %s %S %T %u %U %V %w %W %Y
%%), with SQLite 3.51's rules, over the time values of fn_datetime.py, and a fast
path for canonical 'YYYY-MM-DD[ HH:MM[:SS]]' text without modifiers (fields
copied from the text; anything else goes the general way).

:func:`specialize` compiles strftime(literal FMT, X) once per statement: when
FMT has only the fast fields, a canonical X matched by one regular expression
(which also checks every field's range) gives its answer as slices of X; any
other X goes to :func:`f_strftime`, so the answers are the same."""

from __future__ import annotations

import re
from typing import Any, Callable

from toondb.sql.fn_datetime import (
    UNIX_EPOCH_MS,
    _cdiv,
    _cmod,
    _DateTime,
    _is_date,
    _text,
)
from toondb.sql.fn_printf import sqlite_format

__all__ = ["f_strftime", "specialize"]


def _days_after_jan01(x: _DateTime) -> int:
    jan01 = x.copy()
    jan01.valid_jd = False
    jan01.M = jan01.D = 1
    jan01.compute_jd()
    return _cdiv(x.ijd - jan01.ijd + 43200000, 86400000)


def _days_after_monday(x: _DateTime) -> int:
    return _cmod(_cdiv(x.ijd + 43200000, 86400000), 7)


def _days_after_sunday(x: _DateTime) -> int:
    return _cmod(_cdiv(x.ijd + 129600000, 86400000), 7)


def _thursday_of_week(x: _DateTime) -> _DateTime:
    y = x.copy()
    y.ijd += (3 - _days_after_monday(x)) * 86400000
    y.valid_ymd = False
    y.compute_ymd()
    return y


def _strftime_one(cf: str, x: _DateTime) -> str | None:
    if cf == "d":
        return f"{x.D:02d}"
    if cf == "e":
        return f"{x.D:2d}"
    if cf == "f":
        return sqlite_format("%06.3f", min(x.s, 59.999))
    if cf == "F":
        return sqlite_format("%04d-%02d-%02d", x.Y, x.M, x.D)
    if cf == "G" or cf == "g":
        y = _thursday_of_week(x)
        return sqlite_format("%02d", _cmod(y.Y, 100)) if cf == "g" else sqlite_format("%04d", y.Y)
    if cf == "H":
        return f"{x.h:02d}"
    if cf == "k":
        return f"{x.h:2d}"
    if cf == "I" or cf == "l":
        h = x.h
        if h > 12:
            h -= 12
        if h == 0:
            h = 12
        return f"{h:02d}" if cf == "I" else f"{h:2d}"
    if cf == "j":
        return f"{_days_after_jan01(x) + 1:03d}"
    if cf == "J":
        return sqlite_format("%.16g", x.ijd / 86400000.0)
    if cf == "m":
        return f"{x.M:02d}"
    if cf == "M":
        return f"{x.m:02d}"
    if cf == "p":
        return "PM" if x.h >= 12 else "AM"
    if cf == "P":
        return "pm" if x.h >= 12 else "am"
    if cf == "R":
        return f"{x.h:02d}:{x.m:02d}"
    if cf == "s":
        if x.use_subsec:
            return sqlite_format("%.3f", (x.ijd - UNIX_EPOCH_MS) / 1000.0)
        return str(x.ijd // 1000 - 21086676 * 10000)
    if cf == "S":
        return f"{int(x.s):02d}"
    if cf == "T":
        return f"{x.h:02d}:{x.m:02d}:{int(x.s):02d}"
    if cf == "u" or cf == "w":
        c = _days_after_sunday(x)
        return "7" if c == 0 and cf == "u" else str(c)
    if cf == "U":
        return f"{_cdiv(_days_after_jan01(x) - _days_after_sunday(x) + 7, 7):02d}"
    if cf == "V":
        y = _thursday_of_week(x)
        return f"{_cdiv(_days_after_jan01(y), 7) + 1:02d}"
    if cf == "W":
        return f"{_cdiv(_days_after_jan01(x) - _days_after_monday(x) + 7, 7):02d}"
    if cf == "Y":
        return sqlite_format("%04d", x.Y)
    if cf == "%":
        return "%"
    return None


# The fast path of strftime(FMT, 'YYYY-MM-DD[ HH:MM[:SS]]') without modifiers: the
# fields are copied from the text when it is canonical and in range (a day past
# the month's last goes the slow way, which normalises it).
_CANONICAL = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d))?)?\Z", re.ASCII)
_FAST_FIELDS = {
    "Y": "{0}", "m": "{1}", "d": "{2}", "H": "{3}", "M": "{4}", "S": "{5}", "%": "%",
    "F": "{0}-{1}-{2}", "T": "{3}:{4}:{5}",
}  # fmt: skip
_MONTH_DAYS = ("", "31", "28", "31", "30", "31", "30", "31", "31", "30", "31", "30", "31")
_fast_formats: dict[str, str | None] = {}


def _fast_format(fmt: str) -> str | None:
    """fmt as a str.format template over (Y, m, d, H, M, S), or None when a code
    needs the slow path."""
    if fmt in _fast_formats:
        return _fast_formats[fmt]
    out: list[str] = []
    template: str | None = None
    i = 0
    while True:
        k = fmt.find("%", i)
        if k < 0:
            out.append(fmt[i:].replace("{", "{{").replace("}", "}}"))
            template = "".join(out)
            break
        field = _FAST_FIELDS.get(fmt[k + 1 : k + 2])
        if field is None:
            break
        out.append(fmt[i:k].replace("{", "{{").replace("}", "}}"))
        out.append(field)
        i = k + 2
    if len(_fast_formats) < 256:
        _fast_formats[fmt] = template
    return template


def _fast_strftime(fmt: str, z: str) -> str | None:
    template = _fast_format(fmt)
    if template is None:
        return None
    m = _CANONICAL.match(z)
    if m is None:
        return None
    y, mo, d, h, mi, sec = m.groups()
    if not ("01" <= mo <= "12" and "01" <= d):
        return None
    if d > "28" and (d > _MONTH_DAYS[int(mo)] and not (mo == "02" and d == "29" and _leap(int(y)))):
        return None
    if h is None:
        h = mi = "00"
    elif not (h < "24" and mi < "60"):
        return None
    if sec is None:
        sec = "00"
    elif sec >= "60":
        return None
    return template.format(y, mo, d, h, mi, sec)


def _leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def f_strftime(*args: Any) -> Any:
    if not args:
        return None
    fmt = _text(args[0])
    if fmt is None:
        return None
    if len(args) == 2 and type(args[1]) is str:
        fast = _fast_strftime(fmt, args[1])
        if fast is not None:
            return fast
    x = _is_date(args[1:])
    if x is None:
        return None
    x.compute_jd()
    x.compute_ymd_hms()
    if x.is_error:
        return None
    out: list[str] = []
    i = 0
    n = len(fmt)
    while i < n:
        k = fmt.find("%", i)
        if k < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:k])
        piece = _strftime_one(fmt[k + 1 : k + 2], x)
        if piece is None:
            return None
        out.append(piece)
        i = k + 2
    return "".join(out)


# ---------------------------------------------------------------- strftime(literal, X)

# The canonical text forms with every field in range (ASCII digits only, as
# SQLite), a day past the month's last refused (February 29 too: f_strftime
# checks the year): the date, then optionally ' HH:MM' or ' HH:MM:SS' ('T' also
# separates); a format that reads the time takes the full form only.
_DAY_IN_MONTH = (
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31)"
)
_CLOCK = r"[ T](?:[01][0-9]|2[0-3]):[0-5][0-9]"
_DATE_ANY_TIME = re.compile(rf"[0-9]{{4}}-{_DAY_IN_MONTH}(?:{_CLOCK}(?::[0-5][0-9])?)?\Z").match
_DATE_FULL_TIME = re.compile(rf"[0-9]{{4}}-{_DAY_IN_MONTH}{_CLOCK}:[0-5][0-9]\Z").match
# each fast field as the slice of 'YYYY-MM-DD HH:MM:SS' it copies
_SLICES = {
    "Y": (0, 4), "m": (5, 7), "d": (8, 10), "H": (11, 13), "M": (14, 16), "S": (17, 19),
    "F": (0, 10), "T": (11, 19),
}  # fmt: skip
_SEPARATORS = {4: "-", 7: "-", 13: ":", 16: ":"}  # fixed characters of that text


def _pieces(fmt: str) -> list[Any] | None:
    """fmt as a list of literal texts and (start, end) slices of the canonical
    text, adjacent slices and the fixed separators between them merged; None when
    fmt has a code the fast path does not copy."""
    out: list[Any] = []
    i = 0
    n = len(fmt)
    while i < n:
        c = fmt[i]
        if c != "%":
            lit, i = c, i + 1
        else:
            code = fmt[i + 1 : i + 2]
            i += 2
            if code == "%":
                lit = "%"
            elif code in _SLICES:
                a, b = _SLICES[code]
                if out and type(out[-1]) is tuple and out[-1][1] == a:
                    out[-1] = (out[-1][0], b)
                elif (
                    len(out) >= 2
                    and type(out[-2]) is tuple
                    and out[-1] == _SEPARATORS.get(out[-2][1])
                    and out[-2][1] + 1 == a
                ):
                    out[-2:] = [(out[-2][0], b)]
                else:
                    out.append((a, b))
                continue
            else:
                return None
        if out and type(out[-1]) is str:
            out[-1] += lit
        else:
            out.append(lit)
    return out


_plans: dict[str, tuple[Any, Any]] = {}


def _plan(fmt: Any) -> tuple[Any, Any]:
    """(match, parts) for a format value: the match of the canonical text it
    copies from, and its parts: a slice of X, or a list of texts and slices;
    (None, None) when only f_strftime can answer."""
    plan = _plans.get(fmt) if type(fmt) is str else None
    if plan is not None:
        return plan
    text = _text(fmt) if type(fmt) is str else None
    pieces = _pieces(text) if text is not None else None
    if not pieces:
        plan = (None, None)
    else:
        times = any(type(p) is tuple and p[1] > 10 for p in pieces)
        parts = [p if type(p) is str else slice(*p) for p in pieces]
        plan = (
            _DATE_FULL_TIME if times else _DATE_ANY_TIME,
            parts[0] if len(parts) == 1 and type(parts[0]) is slice else parts,
        )
    if type(fmt) is str and len(_plans) < 256:
        _plans[fmt] = plan
    return plan


def specialize(
    P: list[Any], i: int, args: list[Callable[[Any], Any]]
) -> Callable[[Any], Any] | None:
    """strftime(FMT, X) with FMT one value per run (held at P[i]), as a row
    function that plans FMT once per value; None with modifiers."""
    if len(args) != 2:
        return None
    x = args[1]
    slow = f_strftime
    planned: tuple[Any, Any, Any] = (_SLOW, None, None)  # a format value, its match and parts

    def strftime_fast(r: Any) -> Any:
        nonlocal planned
        fmt = P[i]
        plan = planned
        if fmt is not plan[0]:
            plan = planned = (fmt, *_plan(fmt))  # replaced whole: never a mix of two
        _, match, parts = plan
        v = x(r)
        if type(v) is str and match is not None and match(v) is not None:
            if type(parts) is slice:
                return v[parts]
            return "".join([p if type(p) is str else v[p] for p in parts])
        return slow(fmt, v)

    return strftime_fast


_SLOW = object()  # no format planned yet
