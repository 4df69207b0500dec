"""SQLite's printf()/format() SQL function, and its number-to-text conversions.

The reference is https://sqlite.org/printf.html and the behaviour of SQLite 3.51:

* conversions ``%d %i %u %f %e %E %g %G %x %X %o %s %z %q %Q %w %c %p %r %n %%``;
  flags ``- + space 0 # ! ,``; width and precision as digits or ``*`` (taken
  from the arguments); the C length modifiers ``l`` and ``ll`` are accepted and
  ignored. An unknown conversion (and the internal ``%T``/``%S``) ends the
  output there, as in SQLite.
* arguments are taken as SQLite's ``sqlite3_value_int64``/``_double``/``_text``
  take them: text by its numeric prefix, a missing argument as 0, 0.0 or NULL.
* widths and precisions count UTF-8 bytes unless the ``!`` flag makes them
  count characters; the output is built as bytes and decoded at the end (a
  precision that cuts a character in two leaves U+FFFD where SQLite leaves the
  broken byte).
* floating point: SQLite does not use C's conversion; it decodes a double into
  up to 20 significant decimal digits with double-double ("Dekker")
  arithmetic, then rounds those digits half-up (``printf('%.1f', 0.15)`` is
  0.1, ``printf('%.2f', 0.125)`` is 0.13). :func:`fp_decode` does the same.
* an empty result (nothing was ever appended: ``printf('')``) is NULL.

The date functions use :func:`sqlite_format` for their ``%06.3f`` and ``%.16g``.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from toondb.sql import types as T

__all__ = [
    "f_printf",
    "sqlite_format",
    "fp_decode",
    "atof",
    "value_int64",
    "value_double",
    "value_text",
    "real_to_text",
]

SPACES = b" \t\n\v\f\r"
DIGITS = b"0123456789"
MAX_LENGTH = 1_000_000_000  # SQLITE_MAX_LENGTH: printf() of a longer result is NULL
FP_PRECISION_LIMIT = 100_000_000  # SQLITE_FP_PRECISION_LIMIT: larger float precisions clamp

# ---------------------------------------------------------------- double-double


def _hi(x: float) -> float:
    """x with the low 26 bits of its significand cleared (Dekker's split)."""
    (bits,) = struct.unpack("<Q", struct.pack("<d", x))
    hi: float = struct.unpack("<d", struct.pack("<Q", bits & 0xFFFFFFFFFC000000))[0]
    return hi


def _mul2(x0: float, x1: float, y: float, yy: float) -> tuple[float, float]:
    """(x0 + x1) * (y + yy) in double-double arithmetic."""
    hx = _hi(x0)
    tx = x0 - hx
    hy = _hi(y)
    ty = y - hy
    p = hx * hy
    q = hx * ty + tx * hy
    c = p + q
    cc = p - c + q + tx * ty
    cc = x0 * yy + x1 * y + cc
    r0 = c + cc
    r1 = c - r0
    r1 += cc
    return r0, r1


# the powers of ten SQLite multiplies by, each with its error term
_P100 = (1.0e100, -1.5902891109759918046e83)
_M100 = (1.0e-100, -1.99918998026028836196e-117)
_M10 = (1.0e-10, -3.6432197315497741579e-27)
_M1 = (1.0e-01, -5.5511151231257827021e-18)


def fp_decode(r: float, iround: int, mxround: int) -> tuple[str, str, int, int]:
    """(sign, digits, iDP, special) of r: SQLite's sqlite3FpDecode.

    digits are the significant digits (no trailing zeros), the decimal point
    sits after iDP of them; special is 1 for an infinity, 2 for NaN. iround > 0
    rounds to that many significant digits, iround <= 0 to -iround digits
    after the decimal point; never more than mxround digits."""
    if r != r:
        return "+", "", 0, 2
    if r < 0.0:
        sign, r = "-", -r
    elif r == 0.0:
        return "+", "0", 1, 0
    else:
        sign = "+"
    if r == math.inf:
        return sign, "", 0, 1
    exp = 0
    x0, x1 = r, 0.0
    if x0 > 9.223372036854774784e18:
        while x0 > 9.223372036854774784e118:
            exp += 100
            x0, x1 = _mul2(x0, x1, *_M100)
        while x0 > 9.223372036854774784e28:
            exp += 10
            x0, x1 = _mul2(x0, x1, *_M10)
        while x0 > 9.223372036854774784e18:
            exp += 1
            x0, x1 = _mul2(x0, x1, *_M1)
    else:
        while x0 < 9.223372036854774784e-83:
            exp -= 100
            x0, x1 = _mul2(x0, x1, *_P100)
        while x0 < 9.223372036854774784e07:
            exp -= 10
            x0, x1 = _mul2(x0, x1, 1.0e10, 0.0)
        while x0 < 9.22337203685477478e17:
            exp -= 1
            x0, x1 = _mul2(x0, x1, 1.0e01, 0.0)
    v = int(x0) - int(-x1) if x1 < 0.0 else int(x0) + int(x1)
    z = list(str(v))
    idp = len(z) + exp
    if iround <= 0:
        iround = idp - iround
        if iround == 0 and z[0] >= "5":
            iround = 1
            z.insert(0, "0")
            idp += 1
    n = len(z)
    if iround > 0 and (iround < n or n > mxround):
        iround = min(iround, mxround)
        up = z[iround] >= "5"
        z = z[:iround]
        if up:
            j = iround - 1
            while True:
                if z[j] != "9":
                    z[j] = chr(ord(z[j]) + 1)
                    break
                z[j] = "0"
                if j == 0:
                    z.insert(0, "1")
                    idp += 1
                    break
                j -= 1
    digits = "".join(z).rstrip("0") or "0"
    return sign, digits, idp, 0


def atof(text: str | bytes) -> tuple[float, int]:
    """SQLite's sqlite3AtoF: (value, kind). kind 1: the whole text (spaces
    aside) is an integer; 2 or more: a real; 0 or less: not a number (the value
    is then that of its longest numeric prefix, 0.0 if none)."""
    z = text.encode("utf-8", "replace") if isinstance(text, str) else text
    end = len(z)
    if end == 0:
        return 0.0, 0
    i = 0
    while i < end and z[i] in SPACES:
        i += 1
    if i >= end:
        return 0.0, 0
    sign = 1
    if z[i] == 45:  # -
        sign = -1
        i += 1
    elif z[i] == 43:  # +
        i += 1
    s = 0
    d = 0
    ndigit = 0
    etype = 1
    evalid = 1
    e = 0
    esign = 1
    limit = (0xFFFFFFFFFFFFFFFF - 9) // 10
    while i < end and 48 <= z[i] <= 57:
        s = s * 10 + z[i] - 48
        i += 1
        ndigit += 1
        if s >= limit:
            while i < end and 48 <= z[i] <= 57:
                i += 1
                d += 1
    if i < end and z[i] == 46:  # .
        i += 1
        etype += 1
        while i < end and 48 <= z[i] <= 57:
            if s < limit:
                s = s * 10 + z[i] - 48
                d -= 1
                ndigit += 1
            i += 1
    if i < end and z[i] in b"eE":
        i += 1
        evalid = 0
        etype += 1
        if i < end:
            if z[i] == 45:
                esign = -1
                i += 1
            elif z[i] == 43:
                i += 1
            while i < end and 48 <= z[i] <= 57:
                e = e * 10 + z[i] - 48 if e < 10000 else 10000
                i += 1
                evalid = 1
    while i < end and z[i] in SPACES:
        i += 1
    if s == 0:
        value = -0.0 if sign < 0 else 0.0
    else:
        value = _scale(s, e * esign + d)
        if sign < 0:
            value = -value
    if i == end and ndigit > 0 and evalid and etype > 0:
        return value, etype
    if etype >= 2 and (etype == 3 or evalid) and ndigit > 0:
        return value, -1
    return value, 0


def _scale(s: int, e: int) -> float:
    """s * 10**e as SQLite's sqlite3AtoF computes it (double-double)."""
    while e > 0 and s < (0xFFFFFFFFFFFFFFFF - 0x7FF) // 10:
        s *= 10
        e -= 1
    while e < 0 and s % 10 == 0:
        s //= 10
        e += 1
    x0 = float(s)
    if x0 <= 18446744073709549568.0:
        s2 = int(x0)
        x1 = float(s - s2) if s >= s2 else -float(s2 - s)
    else:
        x1 = 0.0
    try:
        if e > 0:
            while e >= 100:
                e -= 100
                x0, x1 = _mul2(x0, x1, *_P100)
            while e >= 10:
                e -= 10
                x0, x1 = _mul2(x0, x1, 1.0e10, 0.0)
            while e >= 1:
                e -= 1
                x0, x1 = _mul2(x0, x1, 1.0e01, 0.0)
        else:
            while e <= -100:
                e += 100
                x0, x1 = _mul2(x0, x1, *_M100)
            while e <= -10:
                e += 10
                x0, x1 = _mul2(x0, x1, *_M10)
            while e <= -1:
                e += 1
                x0, x1 = _mul2(x0, x1, *_M1)
        r = x0 + x1
    except OverflowError:
        return math.inf
    return math.inf if r != r else r


# ---------------------------------------------------------------- SQL values as C types


def _atoi64(b: bytes) -> int:
    """sqlite3Atoi64 on a prefix: spaces, sign, digits; clamped to 64 bits."""
    i, end = 0, len(b)
    while i < end and b[i] in SPACES:
        i += 1
    neg = False
    if i < end and b[i] in b"+-":
        neg = b[i] == 45
        i += 1
    j = i
    while j < end and 48 <= b[j] <= 57:
        j += 1
    u = int(b[i:j]) if j > i else 0
    if neg:
        return max(-u, T.I64_MIN)
    return min(u, T.I64_MAX)


def value_int64(v: Any) -> int:
    """sqlite3_value_int64(v)."""
    t = type(v)
    if t is int:
        i: int = v
        return i
    if v is None:
        return 0
    if t is float:
        if v != v:
            return 0
        if v <= -9.223372036854775808e18:
            return T.I64_MIN
        if v >= 9.223372036854775807e18:
            return T.I64_MAX
        return int(v)
    return _atoi64(_as_bytes(v))


def value_double(v: Any) -> float:
    """sqlite3_value_double(v)."""
    t = type(v)
    if t is float:
        f: float = v
        return f
    if t is int:
        return float(v)
    if v is None:
        return 0.0
    return atof(_as_bytes(v))[0]


def real_to_text(r: float) -> str:
    """A REAL as SQLite 3.51 renders it as text: "%!.15g"."""
    return sqlite_format("%!.15g", r)


def value_text(v: Any) -> bytes | None:
    """sqlite3_value_text(v) as UTF-8 bytes, cut at the first NUL as C reads it."""
    if v is None:
        return None
    t = type(v)
    if t is int:
        return str(v).encode()
    if t is float:
        return real_to_text(v).encode()
    b = _as_bytes(v)
    k = b.find(b"\x00")
    return b if k < 0 else b[:k]


def _as_bytes(v: Any) -> bytes:
    if isinstance(v, str):
        return v.encode("utf-8", "surrogatepass")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    text: str = T.to_text(v)
    return text.encode("utf-8")


class _SqlArgs:
    """The arguments of printf() after the format, consumed left to right."""

    __slots__ = ("args", "i")

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args
        self.i = 0

    def _next(self) -> Any:
        if self.i >= len(self.args):
            return None
        v = self.args[self.i]
        self.i += 1
        return v

    def int(self) -> int:
        return value_int64(self._next())

    def double(self) -> float:
        return value_double(self._next())

    def text(self) -> bytes | None:
        return value_text(self._next())


class _PyArgs(_SqlArgs):
    """Python values for internal formats (the date functions): ints, floats, str."""

    __slots__ = ()

    def text(self) -> bytes | None:
        v = self._next()
        return None if v is None else str(v).encode()


# ---------------------------------------------------------------- the formatter

# conversion -> (kind, base, signed, upper digits, alternate-form prefix)
_CONV = {
    ord("d"): ("dec", 10, True, False, b""),
    ord("i"): ("dec", 10, True, False, b""),
    ord("u"): ("dec", 10, False, False, b""),
    ord("x"): ("radix", 16, False, False, b"0x"),
    ord("X"): ("radix", 16, False, True, b"0X"),
    ord("o"): ("radix", 8, False, False, b"0"),
    ord("p"): ("radix", 16, False, True, b"0x"),
    ord("r"): ("ordinal", 10, True, False, b""),
    ord("f"): ("float", 0, True, False, b""),
    ord("e"): ("exp", 0, True, False, b"e"),
    ord("E"): ("exp", 0, True, True, b"E"),
    ord("g"): ("generic", 0, True, False, b"e"),
    ord("G"): ("generic", 0, True, True, b"E"),
    ord("s"): ("string", 0, False, False, b""),
    ord("z"): ("string", 0, False, False, b""),
    ord("q"): ("q", 0, False, False, b""),
    ord("Q"): ("Q", 0, False, False, b""),
    ord("w"): ("w", 0, False, False, b""),
    ord("c"): ("char", 0, False, False, b""),
    ord("n"): ("size", 0, False, False, b""),
    ord("%"): ("percent", 0, False, False, b""),
}


class _Spec:
    __slots__ = ("left", "prefix", "alt", "alt2", "zero", "thousand", "width", "precision")

    def __init__(self) -> None:
        self.left = self.alt = self.alt2 = self.zero = False
        self.prefix = b""
        self.thousand = False
        self.width = 0
        self.precision = -1


def _c_int(v: int) -> int:
    """An int64 as C's (int) cast keeps it: the low 32 bits, signed."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


class _TooBig(Exception):
    """The output would pass SQLite's length limit: printf() returns NULL."""


def _check_size(n: int) -> None:
    """Stop before building a piece that would take the output past the limit
    (SQLite's accumulator gives up the same way, before writing)."""
    if n + 1 > MAX_LENGTH:
        raise _TooBig


def _format(fmt: bytes, args: _SqlArgs) -> bytes | None:
    """The output of SQLite's printf engine, or None when nothing was appended."""
    out = bytearray()
    touched = False
    i, n = 0, len(fmt)
    while i < n:
        k = fmt.find(b"%", i)
        if k < 0:
            out += fmt[i:]
            touched = True
            break
        if k > i:
            out += fmt[i:k]
            touched = True
        i = k + 1
        if i >= n:
            out += b"%"
            touched = True
            break
        sp = _Spec()
        c = fmt[i]
        while True:  # flags, width, precision: the conversion ends in c
            done = False
            if c == 45:  # -
                sp.left = True
            elif c == 43:  # +
                sp.prefix = b"+"
            elif c == 32:
                sp.prefix = b" "
            elif c == 35:  # #
                sp.alt = True
            elif c == 33:  # !
                sp.alt2 = True
            elif c == 48:  # 0
                sp.zero = True
            elif c == 44:  # ,
                sp.thousand = True
            elif c == 108:  # l, ll
                i += 1
                c = fmt[i] if i < n else 0
                if c == 108:
                    i += 1
                    c = fmt[i] if i < n else 0
                done = True
            elif 49 <= c <= 57:
                wx = c - 48
                i += 1
                c = fmt[i] if i < n else 0
                while 48 <= c <= 57:
                    wx = (wx * 10 + c - 48) & 0xFFFFFFFF
                    i += 1
                    c = fmt[i] if i < n else 0
                sp.width = wx & 0x7FFFFFFF
                if c != 46 and c != 108:
                    done = True
                else:
                    i -= 1
            elif c == 42:  # *
                w = _c_int(args.int())
                if w < 0:
                    sp.left = True
                    w = -w if w >= -2147483647 else 0
                sp.width = w
                nxt = fmt[i + 1] if i + 1 < n else 0
                if nxt != 46 and nxt != 108:
                    i += 1
                    c = nxt
                    done = True
            elif c == 46:  # .
                i += 1
                c = fmt[i] if i < n else 0
                if c == 42:
                    p = _c_int(args.int())
                    if p < 0:
                        p = -p if p >= -2147483647 else -1
                    sp.precision = p
                    i += 1
                    c = fmt[i] if i < n else 0
                else:
                    px = 0
                    while 48 <= c <= 57:
                        px = (px * 10 + c - 48) & 0xFFFFFFFF
                        i += 1
                        c = fmt[i] if i < n else 0
                    sp.precision = px & 0x7FFFFFFF
                if c == 108:
                    i -= 1
                else:
                    done = True
            else:
                done = True
            if done:
                break
            i += 1
            if i >= n:
                c = 0
                break
            c = fmt[i]
        i += 1  # past the conversion character
        conv = _CONV.get(c)
        if conv is None:
            break  # unknown conversion, %T, %S or the end: SQLite stops here
        kind = conv[0]
        _check_size(len(out) + sp.width)
        if kind in ("float", "exp", "generic"):
            out += _render_float(kind, conv, sp, args.double())
            touched = True
            continue
        if kind in ("dec", "radix", "ordinal"):
            body = _render_int(kind, conv, sp, args.int())
        elif kind == "percent":
            body = b"%"
        elif kind == "size":
            body = b""
            sp.width = 0
        elif kind == "string":
            body = _render_string(sp, args.text())
        elif kind == "char":
            body, pre = _render_char(sp, args.text())
            out += pre
        else:
            body = _render_escape(kind, sp, args.text())
        if sp.alt2 and sp.width > 0 and kind in ("string", "char", "q", "Q", "w"):
            sp.width += sum(1 for b in body if b & 0xC0 == 0x80)
        pad = sp.width - len(body)
        if pad > 0:
            out += body + b" " * pad if sp.left else b" " * pad + body
        else:
            out += body
        touched = True
        _check_size(len(out))
    _check_size(len(out))
    return bytes(out) if touched else None


def _render_int(kind: str, conv: tuple[Any, ...], sp: _Spec, v: int) -> bytes:
    _, base, signed, upper, altpre = conv
    thousand = sp.thousand and kind == "dec"
    if signed:
        if v < 0:
            value, prefix = -v, b"-"
        else:
            value, prefix = v, sp.prefix
    else:
        value, prefix = v & 0xFFFFFFFFFFFFFFFF, b""
    alt = sp.alt and value != 0
    precision = sp.precision
    if sp.zero and precision < sp.width - (1 if prefix else 0):
        precision = sp.width - (1 if prefix else 0)
    _check_size(precision)
    if base == 10:
        digits = str(value).encode()
    elif base == 16:
        digits = (f"{value:X}" if upper else f"{value:x}").encode()
    else:
        digits = f"{value:o}".encode()
    if kind == "ordinal":
        x = value % 10
        if x >= 4 or (value // 10) % 10 == 1:
            x = 0
        digits += (b"th", b"st", b"nd", b"rd")[x]
    if precision > len(digits):
        digits = b"0" * (precision - len(digits)) + digits
    if thousand:
        first = (len(digits) - 1) % 3 + 1
        groups = [digits[:first]] + [digits[j : j + 3] for j in range(first, len(digits), 3)]
        digits = b",".join(groups)
    if prefix:
        digits = prefix + digits
    if alt and altpre and kind == "radix":
        digits = altpre + digits
    return digits


def _render_float(kind: str, conv: tuple[Any, ...], sp: _Spec, value: float) -> bytes:
    letter = conv[4]
    precision = sp.precision if sp.precision >= 0 else 6
    precision = min(precision, FP_PRECISION_LIMIT)
    if kind == "float":
        iround = -precision
    elif kind == "generic":
        if precision == 0:
            precision = 1
        iround = precision
    else:
        iround = precision + 1
    sign, digits, idp, special = fp_decode(value, iround, 20 if sp.alt2 else 16)
    if special == 2:
        body = b"null" if sp.zero else b"NaN"
        return _pad_plain(sp, body)
    if special == 1:
        if sp.zero:
            digits, idp = "9", 1000
        else:
            body = b"-Inf" if sign == "-" else (sp.prefix + b"Inf")
            return _pad_plain(sp, body)
    if sign == "-":
        if sp.alt and not sp.prefix and kind == "float" and idp <= iround:
            prefix = b""  # '#' shows a negative zero without its sign
        else:
            prefix = b"-"
    else:
        prefix = sp.prefix
    exp = idp - 1
    if kind == "generic":
        precision -= 1
        rtz = not sp.alt
        if exp < -4 or exp > precision:
            kind = "exp"
        else:
            precision -= exp
            kind = "float"
    else:
        rtz = sp.alt2
    e2 = 0 if kind == "exp" else idp - 1
    _check_size(max(e2, 0) + precision + sp.width + 10)
    nd = len(digits)
    buf = bytearray(prefix)
    dp = precision > 0 or sp.alt or sp.alt2
    j = 0
    if e2 < 0:
        buf += b"0"
    elif sp.thousand:
        while e2 >= 0:
            buf += digits[j].encode() if j < nd else b"0"
            if j < nd:
                j += 1
            if e2 % 3 == 0 and e2 > 1:
                buf += b","
            e2 -= 1
    else:
        j = min(e2 + 1, nd)
        buf += digits[:j].encode()
        e2 -= j
        if e2 >= 0:
            buf += b"0" * (e2 + 1)
            e2 = -1
    if dp:
        buf += b"."
    if e2 < -1 and precision > 0:
        nn = min(-1 - e2, precision)
        buf += b"0" * nn
        precision -= nn
    if precision > 0:
        nn = min(nd - j, precision)
        if nn > 0:
            buf += digits[j : j + nn].encode()
            precision -= nn
        if precision > 0 and not rtz:
            buf += b"0" * precision
    if rtz and dp:
        while buf[-1] == 48:
            del buf[-1]
        if buf[-1] == 46:
            if sp.alt2:
                buf += b"0"
            else:
                del buf[-1]
    if kind == "exp":
        e = idp - 1
        buf += letter
        if e < 0:
            buf += b"-"
            e = -e
        else:
            buf += b"+"
        if e >= 100:
            buf += str(e // 100).encode()
            e %= 100
        buf += f"{e:02d}".encode()
    pad = sp.width - len(buf)
    if pad > 0:
        if sp.left:
            buf += b" " * pad
        elif not sp.zero:
            buf[0:0] = b" " * pad
        else:
            adj = 1 if prefix else 0
            buf[adj:adj] = b"0" * pad
    return bytes(buf)


def _pad_plain(sp: _Spec, body: bytes) -> bytes:
    pad = sp.width - len(body)
    if pad <= 0:
        return body
    return body + b" " * pad if sp.left else b" " * pad + body


def _utf8_prefix(b: bytes, nchars: int) -> int:
    """The byte length of the first nchars characters of b (SQLITE_SKIP_UTF8)."""
    i = 0
    while nchars > 0 and i < len(b):
        i += 1
        if b[i - 1] >= 0xC0:
            while i < len(b) and b[i] & 0xC0 == 0x80:
                i += 1
        nchars -= 1
    return i


def _render_string(sp: _Spec, text: bytes | None) -> bytes:
    if text is None:
        return b""
    if sp.precision >= 0:
        if sp.alt2:
            return text[: _utf8_prefix(text, sp.precision)]
        return text[: sp.precision]
    return text


def _render_char(sp: _Spec, text: bytes | None) -> tuple[bytes, bytes]:
    """(%c's body, the spaces SQLite writes before it when repeating)."""
    if text:
        ch = text[:1]
        if ch[0] & 0xC0 == 0xC0:
            k = 1
            while k < 4 and k < len(text) and text[k] & 0xC0 == 0x80:
                k += 1
            ch = text[:k]
    else:
        ch = b"\x00"
    pre = b""
    body = ch
    if sp.precision > 1:
        sp.width -= sp.precision - 1
        if sp.width > 1 and not sp.left:
            pre = b" " * (sp.width - 1)
            sp.width = 0
        _check_size(len(ch) * sp.precision)
        # SQLite appends all copies but the last at once; what is left of
        # the width applies to the last copy only
        pre += ch * (sp.precision - 1)
    sp.alt2 = True
    return body, pre


def _render_escape(kind: str, sp: _Spec, text: bytes | None) -> bytes:
    quote = 34 if kind == "w" else 39
    need_quote = 0
    if text is None:
        text = b"NULL" if kind == "Q" else b"(NULL)"
    elif kind == "Q":
        need_quote = 1
    alt = sp.alt and kind != "w"
    # how much of the argument: precision bytes (characters with '!')
    k = sp.precision
    i = 0
    while k != 0 and i < len(text):
        ch = text[i]
        if sp.alt2 and ch & 0xC0 == 0xC0:
            while i + 1 < len(text) and text[i + 1] & 0xC0 == 0x80:
                i += 1
        i += 1
        k -= 1
    src = text[:i]
    if alt:
        nctrl = sum(1 for b in src if b <= 0x1F)
        if nctrl or kind == "q":
            if kind == "Q":
                need_quote = 2
        else:
            alt = False
    body = bytearray()
    if need_quote == 2:
        body += b"unistr('"
    elif need_quote:
        body += b"'"
    for b in src:
        if alt and b == 92:
            body += b"\\\\"
        elif alt and b <= 0x1F:
            body += b"\\u00" + f"{b:02x}".encode()
        elif b == quote:
            body += bytes((b, b))
        else:
            body.append(b)
    if need_quote:
        body += b"')" if need_quote == 2 else b"'"
    return bytes(body)


# ---------------------------------------------------------------- entry points


def sqlite_format(fmt: str, *args: Any) -> str:
    """Format Python values as SQLite's internal printf would (for the date
    functions: %d with ints, %f/%g with floats)."""
    try:
        out = _format(fmt.encode(), _PyArgs(args))
    except _TooBig:
        return ""
    return "" if out is None else out.decode("utf-8", "replace")


def f_printf(fmt: Any, *args: Any) -> Any:
    """printf(FORMAT, ...) / format(FORMAT, ...)."""
    if fmt is None:
        return None
    f = value_text(fmt)
    assert f is not None
    try:
        out = _format(f, _SqlArgs(args))
    except _TooBig:
        return None
    if out is None:
        return None
    return out.decode("utf-8", "replace")
