"""The lexical rules TOON's encoder and decoder share (spec v4.0): which keys and strings
need quotes, the escapes, the canonical form of numbers, the three delimiters, the
literals, and finding quotes and unquoted characters in a line. ``toondb.toon.encoder``
writes by these rules and ``toondb.toon.decoder`` reads by them; a rule changes here or
not at all."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Optional, Union

from toondb.errors import ToonDecodeError

__all__ = [
    "SPEC_VERSION", "JsonValue", "Field", "DELIMITERS", "LITERALS", "UNQUOTED_KEY",
    "NUMERIC_LIKE", "NUMBER", "quote", "unescape", "format_float", "closing_quote",
    "find_unquoted",
]  # fmt: skip

SPEC_VERSION = "4.0"
"""The TOON specification version this package implements (and is tested against)."""

JsonValue = Union[None, bool, int, float, str, "list[JsonValue]", "dict[str, JsonValue]"]

# A header field: (name, subfields) -- subfields is None for a leaf (one cell per row).
Field = tuple[str, Optional["list[Field]"]]

DELIMITERS = (",", "\t", "|")
LITERALS = {"true": True, "false": False, "null": None}


# ---------------------------------------------------------------------------------------
# Keys and strings: what needs quotes (§7), the escapes (§7.1)
# ---------------------------------------------------------------------------------------

# §7.3: keys that may stay unquoted (ASCII letters, digits, underscore, dot).
UNQUOTED_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
# §7.2: strings that a decoder (of any version) could take for a number must be quoted.
NUMERIC_LIKE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f]')
_SURROGATE = re.compile("[\ud800-\udfff]")
# str.translate table: the five short escapes, \u00XX for the other control characters
_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update({ord(c): e for c, e in zip('\\"\n\r\t', ("\\\\", '\\"', "\\n", "\\r", "\\t"))})
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|(.)|\Z)", re.DOTALL)
_SIMPLE_UNESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}


def quote(s: str) -> str:
    """Quote and escape ``s`` (§7.1); lone surrogates have no UTF-8 form and are refused."""
    bad = _SURROGATE.search(s)
    if bad is not None:
        raise ValueError(f"cannot encode a string with a lone surrogate U+{ord(bad.group()):04X}")
    if _NEEDS_ESCAPE.search(s) is not None:
        s = s.translate(_ESCAPES)
    return f'"{s}"'


def unescape(body: str, line: int) -> str:
    """The text of a quoted string's body (§7.1); a bad escape is a ToonDecodeError
    at ``line``."""
    if "\\" not in body:
        return body

    def repl(m: re.Match[str]) -> str:
        hexdigits, ch = m.group(1), m.group(2)
        if hexdigits is not None:
            cp = int(hexdigits, 16)
            if 0xD800 <= cp <= 0xDFFF:
                raise ToonDecodeError(
                    f"invalid escape \\u{hexdigits}: a lone surrogate (write characters "
                    "outside the BMP as literal UTF-8)",
                    line,
                )
            return chr(cp)
        if ch is None:
            raise ToonDecodeError("invalid escape: backslash at the end of a string", line)
        if ch in _SIMPLE_UNESCAPES:
            return _SIMPLE_UNESCAPES[ch]
        if ch == "u":
            raise ToonDecodeError("invalid escape: \\u must be followed by 4 hex digits", line)
        raise ToonDecodeError(f'invalid escape \\{ch} (only \\\\ \\" \\n \\r \\t \\uXXXX)', line)

    return _ESCAPE.sub(repl, body)


# ---------------------------------------------------------------------------------------
# Numbers (§2, §4)
# ---------------------------------------------------------------------------------------

# §4: what a decoder reads as a number (no leading zeros, no '+', ASCII digits only).
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def format_float(f: float) -> str:
    """Canonical decimal form of a float (§2): no exponent, no trailing zeros, -0 -> 0.

    Integral floats are written as the exact integer they hold (``1e23`` is written as
    ``99999999999999991611392``), so that decoding -- integers decode to ``int`` -- gives
    back an equal number. NaN and the infinities become ``null`` (§3).
    """
    r = float.__repr__(f)
    if "e" in r or "n" in r:  # exponent form, or nan/inf
        if f != f or f in (math.inf, -math.inf):
            return "null"
        if f.is_integer():
            return str(int(f))
        return format(Decimal(r), "f")
    if r[-2:] == ".0":
        return "0" if r == "-0.0" else r[:-2]
    return r


# ---------------------------------------------------------------------------------------
# Quoted text inside a line
# ---------------------------------------------------------------------------------------

# The rest of a quoted token after its opening quote, through the closing quote.
_QUOTED_REST = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)


def closing_quote(s: str, start: int) -> int:
    """Index of the quote closing the one at ``start``, or -1."""
    m = _QUOTED_REST.match(s, start + 1)
    return -1 if m is None else m.end() - 1


def find_unquoted(s: str, ch: str, start: int = 0) -> int:
    """Index of the first ``ch`` at or after ``start`` outside double quotes, or -1."""
    q = s.find('"', start)
    if q < 0:
        return s.find(ch, start)
    i = start
    while True:
        j = s.find(ch, i)
        if j < 0:
            return -1
        if q < 0 or j < q:
            return j
        end = closing_quote(s, q)
        if end < 0:
            return -1
        i = end + 1
        q = s.find('"', i)
