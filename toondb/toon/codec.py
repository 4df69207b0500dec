"""TOON encoder and decoder (spec v4.0); see the package docstring for the format.

The encoder renders a value in one pass, choosing each value's form from its shape and
position. It works on the exact built-in JSON types (``dict``, ``list``, ``str``,
``int``, ``float``, ``bool``, ``None``) so that the common case costs no copy; the first
value of any other type aborts that pass, the whole input is normalized once to the
JSON data model (:func:`_normalize`) and the pass runs again.

The decoder splits the text into lines once (dropping blank and comment lines, but
remembering where the blank ones were, for the strict checks), then walks the lines
with a recursive-descent parser keyed on each line's depth.
"""

from __future__ import annotations

import datetime
import math
import re
import uuid
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum
from itertools import repeat
from numbers import Integral, Real
from operator import itemgetter
from typing import Any, Callable, NamedTuple, Optional, Union

from toondb.errors import ToonDecodeError

__all__ = ["ToonDecodeError", "encode", "decode", "JsonValue"]

JsonValue = Union[None, bool, int, float, str, "list[JsonValue]", "dict[str, JsonValue]"]

_DELIMITERS = (",", "\t", "|")


# ---------------------------------------------------------------------------------------
# Shared lexical rules
# ---------------------------------------------------------------------------------------

# §7.3: keys that may stay unquoted (ASCII letters, digits, underscore, dot).
_UNQUOTED_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
# §7.2: strings that a decoder (of any version) could take for a number must be quoted.
_NUMERIC_LIKE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
# §4: what a decoder reads as a number (no leading zeros, no '+', ASCII digits only).
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
# The rest of a quoted token after its opening quote, through the closing quote.
_QUOTED_REST = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|(.)|\Z)", re.DOTALL)
_SIMPLE_UNESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}
_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f]')
_SURROGATE = re.compile("[\ud800-\udfff]")
# str.translate table: the five short escapes, \u00XX for the other control characters
_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update({ord(c): e for c, e in zip('\\"\n\r\t', ("\\\\", '\\"', "\\n", "\\r", "\\t"))})
_LITERALS = {"true": True, "false": False, "null": None}


def _quote(s: str) -> str:
    """Quote and escape ``s`` (§7.1); lone surrogates have no UTF-8 form and are refused."""
    bad = _SURROGATE.search(s)
    if bad is not None:
        raise ValueError(f"cannot encode a string with a lone surrogate U+{ord(bad.group()):04X}")
    if _NEEDS_ESCAPE.search(s) is not None:
        s = s.translate(_ESCAPES)
    return f'"{s}"'


# ---------------------------------------------------------------------------------------
# Encoder
# ---------------------------------------------------------------------------------------

_PRIMITIVE_TYPES = frozenset((str, int, float, bool, type(None)))


class _NotJson(Exception):
    """Raised inside the fast encoding pass at the first value that needs normalizing."""


def _format_float(f: float) -> str:
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


def _floats(values: Sequence[float]) -> list[str]:
    """:func:`_format_float` over a column; the common reprs need at most a '.0' cut."""
    reprs = list(map(float.__repr__, values))
    joined = "".join(reprs)
    if "e" in joined or "n" in joined or "-0.0" in reprs:
        return list(map(_format_float, values))
    return [r[:-2] if r[-2:] == ".0" else r for r in reprs]


class _CellEncoders(NamedTuple):
    string: Callable[[str], str]
    cell: Callable[[Any], str]
    column: Callable[[Sequence[Any]], list[str]]


def _key_encoder() -> Callable[[str], str]:
    cache: dict[str, str] = {}
    match = _UNQUOTED_KEY.fullmatch

    def key(k: str) -> str:
        try:
            return cache[k]
        except KeyError:
            pass
        if type(k) is not str:
            raise _NotJson
        enc = k if match(k) is not None else _quote(k)
        if len(cache) < 4096:
            cache[k] = enc
        return enc

    return key


def _make_encoders(delimiter: str) -> _CellEncoders:
    """Build the primitive encoders for one delimiter (§7.2 quoting rules)."""
    unsafe = re.compile(r'[:"\\\[\]{}\x00-\x1f\ud800-\udfff' + re.escape(delimiter) + "]").search
    numeric_like = _NUMERIC_LIKE.fullmatch
    literals = _LITERALS
    numstart = frozenset("0123456789+")
    edge = frozenset(" -#")
    risky_start = edge | numstart

    def string(v: str) -> str:
        if not v:
            return '""'
        if v.isalnum():
            # letters and digits only: the only risks are literals and numbers
            if v in literals or (v[0] in numstart and numeric_like(v) is not None):
                return f'"{v}"'
            return v
        if unsafe(v) is not None or v[0] in edge or v[-1] == " ":
            return _quote(v)
        if v in literals or (v[0] in numstart and numeric_like(v) is not None):
            return f'"{v}"'
        return v

    def strings(values: Sequence[str]) -> list[str]:
        if unsafe("".join(values)) is not None:
            return list(map(string, values))
        # no unsafe character anywhere: only the first and last characters and the
        # literal/number look-alikes remain to check, and they are rare
        return [
            v if v and v[0] not in risky_start and v[-1] != " " and v not in literals else string(v)
            for v in values
        ]

    def cell(v: Any) -> str:
        t = type(v)
        if t is str:
            return string(v)
        if t is int:
            return int.__repr__(v)
        if t is float:
            return _format_float(v)
        if t is bool:
            return "true" if v else "false"
        if v is None:
            return "null"
        raise _NotJson

    def column(values: Sequence[Any]) -> list[str]:
        """Encode a column of cells, with a vectorised path when it has a single type."""
        types = set(map(type, values))
        if len(types) == 1:
            t = types.pop()
            if t is str:
                return strings(values)
            if t is int:
                return list(map(int.__repr__, values))
            if t is float:
                return _floats(values)
        return list(map(cell, values))

    return _CellEncoders(string, cell, column)


_ENCODERS = {d: _make_encoders(d) for d in _DELIMITERS}

# A header field: (name, subfields) -- subfields is None for a leaf (one cell per row).
_Field = tuple[str, Optional[list]]


def _tabular(rows: Sequence[Any]) -> tuple[list[_Field], list[Sequence[Any]]] | None:
    """The field list of a tabular form of ``rows`` (§9.3) and its leaf columns (depth
    first), or None when the rows have no tabular form.

    Every row must be a non-empty dict with the same key set; every column must hold
    only primitives (a leaf field) or only non-empty dicts that are themselves tabular
    (a nested field group). Field order is the first row's key order.
    """
    if not rows:
        return None
    first = rows[0]
    if type(first) is not dict or not first:
        return None
    width = len(first)
    if set(map(type, rows)) != {dict} or set(map(len, rows)) != {width}:
        return None
    names = list(first)
    try:  # rows of equal size that all hold the first row's keys have its key set
        if width == 1:
            columns: list[Sequence[Any]] = [list(map(itemgetter(names[0]), rows))]
        else:
            columns = list(zip(*map(itemgetter(*names), rows)))
    except KeyError:
        return None
    fields: list[_Field] = []
    leaves: list[Sequence[Any]] = []
    prim = _PRIMITIVE_TYPES
    for name, column in zip(names, columns):
        if prim.issuperset(map(type, column)):
            fields.append((name, None))
            leaves.append(column)
            continue
        sub = _tabular(column)
        if sub is None:
            return None
        fields.append((name, sub[0]))
        leaves.extend(sub[1])
    return fields, leaves


def _keyed(obj: dict[str, Any]) -> tuple[list[_Field], list[Sequence[Any]]] | None:
    """:func:`_tabular` of the values of ``obj``, when it has a keyed tabular form (§9.5):
    at least two entries whose values are uniform non-empty dicts."""
    if len(obj) < 2 or type(next(iter(obj.values()))) is not dict:
        return None
    return _tabular(list(obj.values()))


class _Encoder:
    __slots__ = ("out", "delim", "dsym", "unit", "pads", "cell", "column", "key")

    def __init__(self, delimiter: str, indent: int) -> None:
        self.out: list[str] = []
        self.delim = delimiter
        self.dsym = "" if delimiter == "," else delimiter
        self.unit = " " * indent
        self.pads = [""]
        encoders = _ENCODERS[delimiter]
        self.cell = encoders.cell
        self.column = encoders.column
        self.key = _key_encoder()

    def pad(self, depth: int) -> str:
        pads = self.pads
        while len(pads) <= depth:
            pads.append(pads[-1] + self.unit)
        return pads[depth]

    # -- headers ------------------------------------------------------------------------

    def fields_segment(self, fields: list[_Field]) -> str:
        key = self.key
        parts = [
            key(name) if sub is None else f"{key(name)}{{{self.fields_segment(sub)}}}"
            for name, sub in fields
        ]
        return self.delim.join(parts)

    # -- values -------------------------------------------------------------------------

    def root(self, value: Any) -> None:
        t = type(value)
        if t in _PRIMITIVE_TYPES:
            self.out.append(self.cell(value))
        elif t is list:
            if not value:
                self.out.append("[]")
            else:
                self.array("", "", value, 1, True)
        elif t is dict:
            table = _keyed(value)
            if table is not None:
                self.keyed("", "", value, table, 1)
            else:
                self.object(value, 0)
        else:
            raise _NotJson

    def object(self, obj: dict[str, Any], depth: int) -> None:
        field = self.field
        for k, v in obj.items():
            field(k, v, depth)

    def field(self, k: str, v: Any, depth: int) -> None:
        t = type(v)
        if t in _PRIMITIVE_TYPES:
            self.out.append(f"{self.pad(depth)}{self.key(k)}: {self.cell(v)}")
        elif t is list:
            self.array(self.pad(depth), self.key(k), v, depth + 1, True)
        elif t is dict:
            table = _keyed(v)
            if table is not None:
                self.keyed(self.pad(depth), self.key(k), v, table, depth + 1)
            else:
                self.out.append(f"{self.pad(depth)}{self.key(k)}:")
                if v:
                    self.object(v, depth + 1)
        else:
            raise _NotJson

    def array(self, lead: str, head: str, arr: list[Any], child: int, tabular: bool) -> None:
        """Emit ``arr`` with its header line starting ``lead + head`` and its rows or
        items at depth ``child``. ``tabular`` is False for an anonymous list item, which
        never takes a fields-bearing header."""
        out = self.out
        n = len(arr)
        if n == 0:
            out.append(f"{lead}{head}: []" if head else f"{lead}[0]:")
            return
        prim = _PRIMITIVE_TYPES
        if prim.issuperset(map(type, arr)):
            cells = self.delim.join(map(self.cell, arr))
            out.append(f"{lead}{head}[{n}{self.dsym}]: {cells}")
            return
        if tabular and type(arr[0]) is dict:
            table = _tabular(arr)
            if table is not None:
                out.append(f"{lead}{head}[{n}{self.dsym}]{{{self.fields_segment(table[0])}}}:")
                pad = self.pad(child)
                out.extend([pad + t for t in self.row_texts(table[1])])
                return
        out.append(f"{lead}{head}[{n}{self.dsym}]:")
        item = self.list_item
        for v in arr:
            item(v, child)

    def row_texts(self, leaves: list[Sequence[Any]]) -> list[str]:
        """The rows of a tabular form (§9.3): their leaf cells joined by the delimiter."""
        cells = list(map(self.column, leaves))
        if len(cells) == 1:
            return cells[0]
        return list(map(self.delim.join, zip(*cells)))

    def keyed(self, lead: str, head: str, obj: dict, table: tuple, child: int) -> None:
        """An object of uniform objects in the keyed tabular form (§9.5)."""
        fields, leaves = table
        self.out.append(f"{lead}{head}[{len(obj)}:{self.dsym}]{{{self.fields_segment(fields)}}}:")
        pad = self.pad(child)
        key = self.key
        self.out.extend([f"{pad}{key(k)}: {t}" for k, t in zip(obj, self.row_texts(leaves))])

    def list_item(self, v: Any, depth: int) -> None:
        t = type(v)
        if t in _PRIMITIVE_TYPES:
            self.out.append(f"{self.pad(depth)}- {self.cell(v)}")
        elif t is dict:
            self.object_item(v, depth)
        elif t is list:
            self.array(self.pad(depth) + "- ", "", v, depth + 1, False)
        else:
            raise _NotJson

    def object_item(self, obj: dict[str, Any], depth: int) -> None:
        """An object as a list item (§10): its first field on the hyphen line."""
        if not obj:
            self.out.append(self.pad(depth) + "-")
            return
        items = iter(obj.items())
        k, v = next(items)
        lead = self.pad(depth) + "- "
        t = type(v)
        if t in _PRIMITIVE_TYPES:
            self.out.append(f"{lead}{self.key(k)}: {self.cell(v)}")
        elif t is list:
            self.array(lead, self.key(k), v, depth + 2, True)
        elif t is dict:
            table = _keyed(v)
            if table is not None:
                self.keyed(lead, self.key(k), v, table, depth + 2)
            else:
                self.out.append(f"{lead}{self.key(k)}:")
                if v:
                    self.object(v, depth + 2)
        else:
            raise _NotJson
        field = self.field
        for k, v in items:
            field(k, v, depth + 1)


def _normalize(value: Any, _active: set[int] | None = None) -> Any:
    """Map a Python value onto the JSON data model (§3).

    ``Mapping`` -> dict (keys must be ``str``; ``int``/``float``/``bool``/``None`` keys
    are converted as :func:`json.dumps` does), ``list``/``tuple`` -> list, ``str``
    subclasses -> ``str``, ``Integral`` (``IntEnum``, NumPy integers) -> ``int``, other
    ``Real`` (``Decimal``, ``Fraction``, NumPy floats) -> ``float``, ``Enum`` -> its
    value, ``datetime``/``date``/``time`` -> ISO 8601 string, ``UUID`` -> string.
    Anything else raises ``TypeError``; a reference cycle raises ``ValueError``.
    """
    t = type(value)
    if value is None or t is bool or t is int or t is str:
        return value
    if t is float:
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple, Mapping)):
        active = _active if _active is not None else set()
        if id(value) in active:
            raise ValueError("cannot encode a value that contains itself (reference cycle)")
        active.add(id(value))
        try:
            if isinstance(value, Mapping):
                return {_normalize_key(k): _normalize(v, active) for k, v in value.items()}
            return [_normalize(v, active) for v in value]
        finally:
            active.discard(id(value))
    if isinstance(value, Enum):
        return _normalize(value.value, _active)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, (Real, Decimal)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot encode a value of type {t.__name__} as TOON")


def _normalize_key(k: Any) -> str:
    """Object keys are strings; scalar keys are converted as :func:`json.dumps` does."""
    if isinstance(k, str):
        return str.__str__(k)
    if k is None:
        return "null"
    if isinstance(k, bool):
        return "true" if k else "false"
    if isinstance(k, Integral):
        return str(int(k))
    if isinstance(k, float):
        return _format_float(k)
    raise TypeError(f"object keys must be str, not {type(k).__name__}")


def encode(obj: Any, *, delimiter: str = ",", indent: int = 2) -> str:
    """Encode ``obj`` as a TOON document (spec v4.0), without a trailing newline.

    ``delimiter`` is the document delimiter for inline arrays and tabular rows: ``","``
    (the default), ``"\\t"`` or ``"|"``. ``indent`` is the number of spaces per
    indentation level (the spec's ``indentSize``, default 2).

    Raises ``TypeError`` for a value with no JSON form (see :func:`_normalize` for the
    mapping of other Python types) and ``ValueError`` for a reference cycle or a string
    holding a lone surrogate.
    """
    if delimiter not in _DELIMITERS:
        raise ValueError(f"delimiter must be ',', '\\t' or '|', not {delimiter!r}")
    if type(indent) is not int or indent < 1:
        raise ValueError(f"indent must be a positive int, not {indent!r}")
    enc = _Encoder(delimiter, indent)
    try:
        try:
            enc.root(obj)
        except _NotJson:
            enc = _Encoder(delimiter, indent)
            enc.root(_normalize(obj))
    except RecursionError:
        raise ValueError("cannot encode: nested too deeply (or a reference cycle)") from None
    return "\n".join(enc.out)


# ---------------------------------------------------------------------------------------
# Decoder
# ---------------------------------------------------------------------------------------


class _Header(NamedTuple):
    key: str | None  # None for a keyless header ("[2]: ...")
    length: int
    delim: str
    fields: list[_Field] | None
    keyed: bool


class _BadHeader(Exception):
    """A line shaped like an array header that breaks the header grammar (§6)."""


def _closing_quote(s: str, start: int) -> int:
    """Index of the quote closing the one at ``start``, or -1."""
    m = _QUOTED_REST.match(s, start + 1)
    return -1 if m is None else m.end() - 1


def _find_unquoted(s: str, ch: str, start: int = 0) -> int:
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
        end = _closing_quote(s, q)
        if end < 0:
            return -1
        i = end + 1
        q = s.find('"', i)


def _unescape(body: str, line: int) -> str:
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


def _string_literal(tok: str, line: int) -> str:
    """Decode a token that starts with a quote; it must end with the closing quote."""
    end = _closing_quote(tok, 0)
    if end < 0:
        raise ToonDecodeError(f"unterminated string: {tok}", line)
    if end != len(tok) - 1:
        raise ToonDecodeError(f"unexpected characters after the closing quote: {tok}", line)
    return _unescape(tok[1:end], line)


def _primitive(tok: str, line: int) -> Any:
    """Decode one value token (§4); ``tok`` is already trimmed of spaces."""
    if not tok:
        return ""
    c = tok[0]
    if c == '"':
        return _string_literal(tok, line)
    if c in "-0123456789":
        m = _NUMBER.fullmatch(tok)
        if m is not None:
            if m.lastindex is None:
                try:
                    return int(tok)
                except ValueError:  # more digits than sys.get_int_max_str_digits()
                    return tok  # outside the host's numeric range: kept as a string
            f = float(tok)
            if f in (math.inf, -math.inf):
                return tok  # outside the host's numeric range: kept as a string
            return f if f else 0.0  # -0 decodes to 0
        return tok
    if c in "tfn" and tok in _LITERALS:
        return _LITERALS[tok]
    return tok


_INT_COLUMN = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\n-?(?:0|[1-9][0-9]*))*")
_DECIMAL = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
_DECIMAL_COLUMN = re.compile(f"{_DECIMAL}(?:\n{_DECIMAL})*")
_NUMERIC_START = re.compile(r'\n[-0-9"]')


def _decode_column(tokens: Sequence[str]) -> list[Any]:
    """:func:`_primitive` over a column of row tokens, checking whole columns at once.

    Raises :class:`ToonDecodeError` without a line number; the caller then decodes row
    by row to report it.
    """
    joined = "\n".join(tokens)
    if max(map(len, tokens)) < 300:
        if _INT_COLUMN.fullmatch(joined) is not None:
            return list(map(int, tokens))
        if _DECIMAL_COLUMN.fullmatch(joined) is not None and "-0." not in joined:
            # no exponent and under 300 characters: every float is finite (and -0 is not)
            return [float(t) if "." in t else int(t) for t in tokens]
    if _NUMERIC_START.search("\n" + joined) is None:
        get = _LITERALS.get
        return [get(t, t) for t in tokens]  # strings, true, false, null
    return [_primitive(t, 0) for t in tokens]


_ROW_BUILDERS: dict[tuple[str, ...], Callable[..., dict[str, Any]]] = {}


def _row_builder(names: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """A function of one argument per field that returns the row's dict.

    It is generated (like :func:`collections.namedtuple` does) because a dict display is
    about twice as fast as ``dict(zip(names, cells))``; names enter the code only
    through ``repr``, so any string is safe.
    """
    builder = _ROW_BUILDERS.get(names)
    if builder is None:
        params = ", ".join(f"_{k}" for k in range(len(names)))
        items = ", ".join(f"{name!r}: _{k}" for k, name in enumerate(names))
        builder = eval(f"lambda {params}: {{{items}}}", {"__builtins__": {}})
        if len(_ROW_BUILDERS) >= 256:
            _ROW_BUILDERS.clear()
        _ROW_BUILDERS[names] = builder
    return builder


def _split(s: str, delim: str) -> list[str]:
    """Split a row or inline array on ``delim`` outside quotes; tokens trimmed of spaces."""
    if '"' not in s:
        return [t.strip(" ") for t in s.split(delim)]
    out: list[str] = []
    start = i = 0
    while True:
        j = s.find(delim, i)
        q = s.find('"', i)
        if q >= 0 and (j < 0 or q < j):
            end = _closing_quote(s, q)
            if end < 0:  # unterminated: the rest is one token (and an error later)
                out.append(s[start:].strip(" "))
                return out
            i = end + 1
            continue
        if j < 0:
            out.append(s[start:].strip(" "))
            return out
        out.append(s[start:j].strip(" "))
        start = i = j + 1


def _is_data_row(content: str, delim: str) -> bool:
    """A line at row depth is a row unless an unquoted colon comes before any unquoted
    delimiter (then it is a key-value line ending the rows, §9.3)."""
    colon = _find_unquoted(content, ":")
    if colon < 0:
        return True
    d = _find_unquoted(content, delim)
    return 0 <= d < colon


def _key_token(content: str, line: int) -> tuple[str, int]:
    """Parse the key at the start of ``content``; return it and the index after its colon."""
    if content.startswith('"'):
        end = _closing_quote(content, 0)
        if end < 0:
            raise ToonDecodeError(f"unterminated quoted key: {content}", line)
        if content[end + 1 : end + 2] != ":":
            raise ToonDecodeError(f"missing colon after key: {content}", line)
        return _unescape(content[1:end], line), end + 2
    colon = _find_unquoted(content, ":")
    if colon < 0:
        raise ToonDecodeError(f"missing colon after key: {content}", line)
    return content[:colon].strip(" "), colon + 1


_BRACKET = re.compile(r"(0|[1-9][0-9]*)(:?)([\t|]?)")


def _matching_brace(s: str, start: int) -> int:
    depth = 0
    i = start
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            end = _closing_quote(s, i)
            if end < 0:
                return -1
            i = end + 1
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _split_fields(s: str, delim: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    start = i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            end = _closing_quote(s, i)
            i = n if end < 0 else end + 1
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == delim and depth == 0:
            parts.append(s[start:i])
            start = i + 1
        i += 1
    parts.append(s[start:])
    return parts


def _field_name(tok: str, line: int) -> str:
    if tok.startswith('"'):
        try:
            return _string_literal(tok, line)
        except ToonDecodeError as e:
            raise _BadHeader(e.reason) from None
    return tok


def _parse_fields(s: str, delim: str, line: int) -> list[_Field]:
    fields: list[_Field] = []
    for part in _split_fields(s, delim):
        entry = part.strip(" ")
        if not entry:
            raise _BadHeader("empty field name in the field list")
        brace = _find_unquoted(entry, "{")
        if brace < 0:
            fields.append((_field_name(entry, line), None))
            continue
        name = entry[:brace].strip(" ")
        if not name:
            raise _BadHeader("missing field name before a nested field group")
        close = _matching_brace(entry, brace)
        if close < 0:
            raise _BadHeader("unmatched brace in the field list")
        if close != len(entry) - 1:
            raise _BadHeader("unexpected content after a nested field group")
        fields.append(
            (_field_name(name, line), _parse_fields(entry[brace + 1 : close], delim, line))
        )
    return fields


def _duplicate_field(fields: list[_Field]) -> str | None:
    seen: set[str] = set()
    for name, sub in fields:
        if name in seen:
            return name
        seen.add(name)
        if sub is not None:
            dup = _duplicate_field(sub)
            if dup is not None:
                return dup
    return None


def _leaf_count(fields: list[_Field]) -> int:
    return sum(1 if sub is None else _leaf_count(sub) for _, sub in fields)


def _parse_header(content: str, line: int) -> tuple[_Header, str, str | None] | None:
    """Parse an array header line (§6): ``key[N<delim>]{fields}: inline``.

    Returns None when the line is not shaped like a header, ``(header, inline values,
    strict-only problem)`` when it is one, and raises :class:`_BadHeader` when it is
    shaped like one but breaks the grammar (strict mode reports it; non-strict mode
    reads the line as an ordinary key-value line).
    """
    if content.startswith('"'):
        end = _closing_quote(content, 0)
        if end < 0 or content[end + 1 : end + 2] != "[":
            return None
        bracket = end + 1
    else:
        bracket = _find_unquoted(content, "[")
        if bracket < 0:
            return None
    colon = _find_unquoted(content, ":")
    if 0 <= colon < bracket:
        return None  # the key ends before the bracket: an ordinary key-value line
    close = _find_unquoted(content, "]", bracket)
    if close < 0:
        return None
    after = close + 1
    colon = _find_unquoted(content, ":", close)
    brace = _find_unquoted(content, "{", close)
    fields_end = after
    if 0 <= brace < colon:
        if brace != after:
            gap = content[after:brace].strip()
            raise _BadHeader(
                f"unexpected {repr(gap) if gap else 'whitespace'} between the bracket "
                "segment and the field list"
            )
        match = _matching_brace(content, brace)
        if match >= 0:
            fields_end = match + 1
        colon = _find_unquoted(content, ":", fields_end)
    if colon < 0:
        return None
    if colon != fields_end:
        gap = content[fields_end:colon].strip()
        raise _BadHeader(
            f"unexpected {repr(gap) if gap else 'whitespace'} between the array header "
            "and its colon"
        )
    key: str | None = None
    if bracket > 0:
        raw = content[:bracket]
        if raw != raw.rstrip():
            raise _BadHeader("unexpected whitespace between the key and the bracket segment")
        if raw.startswith('"'):
            key = _field_name(raw, line)
        else:
            key = raw
    m = _BRACKET.fullmatch(content, bracket + 1, close)
    if m is None:
        raise _BadHeader(
            f"invalid bracket segment [{content[bracket + 1 : close]}] (expected a "
            "length without leading zeros, then an optional ':' and '\\t' or '|')"
        )
    length = int(m.group(1))
    keyed = bool(m.group(2))
    delim = m.group(3) or ","
    fields: list[_Field] | None = None
    if fields_end != after:
        inner = content[brace + 1 : fields_end - 1]
        for other in _DELIMITERS:
            if other != delim and _find_unquoted(inner, other) >= 0:
                raise _BadHeader(
                    f"the bracket declares delimiter {delim!r} but the field list uses {other!r}"
                )
        fields = _parse_fields(inner, delim, line)
    inline = content[colon + 1 :].strip(" ")
    problem = None
    if fields is not None:
        dup = _duplicate_field(fields)
        if dup is not None:
            problem = f"duplicate field name {dup!r} in the field list"
    if keyed and fields is None:
        raise _BadHeader("a keyed header needs a field list: key[N:]{fields}:")
    if fields is not None and inline:
        raise _BadHeader(problem or "a header with a field list carries no inline values")
    return _Header(key, length, delim, fields, keyed), inline, problem


def _looks_like_header(content: str) -> bool:
    return content.strip(" ").startswith("[") and _find_unquoted(content, ":") >= 0


class _Decoder:
    __slots__ = ("depths", "texts", "nums", "blanks", "n", "i", "strict")

    def __init__(self, text: str, indent: int, strict: bool) -> None:
        self.strict = strict
        self.i = 0
        if text.startswith("\ufeff"):
            text = text[1:]
        lines = text.split("\n")
        if "\r" in text:  # only a CR that ends a line belongs to its terminator (§12)
            lines = [raw[:-1] if raw[-1:] == "\r" else raw for raw in lines]
        if "\t" in text:
            self.scan(lines, indent)
        else:
            self.scan_spaces(lines, indent)
        self.n = len(self.texts)

    def scan_spaces(self, lines: list[str], indent: int) -> None:
        """Split lines indented with spaces only into depth and content, dropping blank
        and comment lines (§5.1, §12); list operations instead of a loop per line."""
        bodies = list(map(str.lstrip, lines, repeat(" ")))
        contents = list(map(str.rstrip, bodies, repeat(" ")))
        keep = [k for k, c in enumerate(contents) if c and c[0] != "#"]
        self.blanks = []
        if len(keep) == len(lines):
            texts = contents
            nums = list(range(1, len(lines) + 1))
        else:
            self.blanks = [k for k, c in enumerate(contents, 1) if not c]
            texts = list(map(contents.__getitem__, keep))
            nums = list(map((1).__add__, keep))
            lines = list(map(lines.__getitem__, keep))
            bodies = list(map(bodies.__getitem__, keep))
        spaces = list(map(int.__sub__, map(len, lines), map(len, bodies)))
        if self.strict and any(n % indent for n in set(spaces)):
            for n, num in zip(spaces, nums):
                if n % indent:
                    raise ToonDecodeError(
                        f"indentation must be a multiple of {indent} spaces, found {n}", num
                    )
        self.depths = list(map(indent.__rfloordiv__, spaces))
        self.texts = texts
        self.nums = nums

    def scan(self, lines: list[str], indent: int) -> None:
        """:meth:`scan_spaces` for text with tabs (an error in indentation when strict;
        each leading tab is one level when not)."""
        depths: list[int] = []
        texts: list[str] = []
        nums: list[int] = []
        blanks: list[int] = []
        strict = self.strict
        for num, raw in enumerate(lines, 1):
            content = raw.lstrip(" ")
            spaces = len(raw) - len(content)
            if content.startswith("\t"):
                if not content.strip(" \t"):
                    blanks.append(num)
                    continue
                if strict:
                    raise ToonDecodeError("tabs are not allowed in indentation (strict mode)", num)
                ws = len(content) - len(content.lstrip(" \t"))
                tabs = content[:ws].count("\t")
                content = content[ws:].rstrip(" ")
                depth = (spaces + ws - tabs) // indent + tabs
            else:
                content = content.rstrip(" ")
                if not content:
                    blanks.append(num)
                    continue
                if content[0] == "#":
                    continue  # a comment line (§5.1)
                if strict and spaces % indent:
                    raise ToonDecodeError(
                        f"indentation must be a multiple of {indent} spaces, found {spaces}", num
                    )
                depth = spaces // indent
            depths.append(depth)
            texts.append(content)
            nums.append(num)
        self.depths = depths
        self.texts = texts
        self.nums = nums
        self.blanks = blanks

    # -- helpers ------------------------------------------------------------------------

    def header(self, content: str, line: int) -> tuple[_Header, str, str | None] | None:
        try:
            parsed = _parse_header(content, line)
        except _BadHeader as e:
            if self.strict:
                raise ToonDecodeError(str(e), line) from None
            return None
        if parsed is not None and parsed[2] is not None and self.strict:
            raise ToonDecodeError(parsed[2], line)
        return parsed

    def count(self, actual: int, expected: int, what: str, line: int) -> None:
        if self.strict and actual != expected:
            raise ToonDecodeError(f"expected {expected} {what}, but got {actual}", line)

    def no_blank_between(self, first: int, last: int, what: str) -> None:
        if self.strict and self.blanks:
            k = bisect_right(self.blanks, first)
            if k < len(self.blanks) and self.blanks[k] < last:
                raise ToonDecodeError(
                    f"blank lines are not allowed inside {what} (strict mode)", self.blanks[k]
                )

    def over_indented(self, expected: int) -> None:
        """The current line is deeper than any open scope."""
        i = self.i
        if self.strict:
            raise ToonDecodeError(
                f"unexpected indentation: expected depth {expected}, found {self.depths[i]}",
                self.nums[i],
            )
        content = self.texts[i]
        if not (content.startswith("- ") or content == "-" or _find_unquoted(content, ":") >= 0):
            raise ToonDecodeError(
                f"unexpected bare value outside a root value: {content}", self.nums[i]
            )
        self.i += 1

    def put(self, obj: dict[str, Any], key: str, value: Any, line: int) -> None:
        if self.strict and key in obj:
            raise ToonDecodeError(f"duplicate key {key!r}", line)
        obj[key] = value

    # -- document -----------------------------------------------------------------------

    def document(self) -> Any:
        if self.n == 0:
            return {}
        first = self.texts[0]
        line = self.nums[0]
        if first.strip(" ") == "[]":
            self.i = 1
            self.end_of_root()
            return []
        if _looks_like_header(first):
            parsed = self.header(first, line)
            if parsed is not None:
                self.i = 1
                value = self.from_header(parsed[0], parsed[1], 0, line)
                self.end_of_root()
                return value
        is_kv = self.is_key_value_line(first)
        if not is_kv:
            if self.n == 1:
                return _primitive(first.strip(" "), line)
            if self.depths[1] == 0:
                raise ToonDecodeError(
                    "a document holds one root value: a primitive, or keys, or an array header",
                    self.nums[1],
                )
        obj: dict[str, Any] = {}
        self.i = 1
        self.key_value(obj, first, line, 0)
        while self.i < self.n:
            if self.depths[self.i] != 0:
                self.over_indented(0)
                continue
            i = self.i
            self.i += 1
            self.key_value(obj, self.texts[i], self.nums[i], 0)
        return obj

    @staticmethod
    def is_key_value_line(content: str) -> bool:
        if content.startswith('"'):
            end = _closing_quote(content, 0)
            return end >= 0 and ":" in content[end + 1 :]
        return ":" in content

    def end_of_root(self) -> None:
        if self.strict and self.i < self.n:
            raise ToonDecodeError("unexpected content after the root array", self.nums[self.i])

    # -- objects ------------------------------------------------------------------------

    def key_value(self, obj: dict[str, Any], content: str, line: int, depth: int) -> None:
        """Decode the field on ``content`` (already consumed) into ``obj``; its nested
        lines, if any, are at ``depth + 1``."""
        if "[" in content:
            parsed = self.header(content, line)
            if parsed is not None:
                h = parsed[0]
                if h.key is not None:
                    if self.strict and h.key in obj:
                        raise ToonDecodeError(f"duplicate key {h.key!r}", line)
                    obj[h.key] = self.from_header(h, parsed[1], depth, line)
                    return
                if self.strict:
                    raise ToonDecodeError(
                        "a keyless keyed header is only valid at the document root"
                        if h.keyed
                        else "a keyless array header is only valid at the root or as a list item",
                        line,
                    )
        key, end = _key_token(content, line)
        rest = content[end:].strip(" ")
        if rest:
            value: Any = [] if rest == "[]" else _primitive(rest, line)
        elif self.i < self.n and self.depths[self.i] > depth:
            if self.strict and self.depths[self.i] > depth + 1:
                raise ToonDecodeError(
                    f"indentation jumps from depth {depth} to {self.depths[self.i]}",
                    self.nums[self.i],
                )
            value = self.fields(depth + 1)
        else:
            value = {}
        self.put(obj, key, value, line)

    def fields(self, depth: int) -> dict[str, Any]:
        """The fields of a nested object, at ``depth`` (or deeper when not strict)."""
        obj: dict[str, Any] = {}
        depths = self.depths
        at = depths[self.i]
        while self.i < self.n:
            d = depths[self.i]
            if d == at:
                i = self.i
                self.i += 1
                self.key_value(obj, self.texts[i], self.nums[i], at)
            elif d > at:
                self.over_indented(at)
            else:
                break
        return obj

    # -- arrays -------------------------------------------------------------------------

    def from_header(self, h: _Header, inline: str, depth: int, line: int) -> Any:
        if h.keyed:
            return self.keyed(h, depth, line)
        if inline:
            values = [_primitive(t, line) for t in _split(inline, h.delim)]
            self.count(len(values), h.length, "inline values", line)
            return values
        if h.fields is not None:
            return self.table(h, depth, line)
        return self.list_array(h, depth, line)

    def row_object(self, fields: list[_Field], cells: list[Any]) -> dict[str, Any]:
        pos = 0

        def build(group: list[_Field]) -> dict[str, Any]:
            nonlocal pos
            obj: dict[str, Any] = {}
            for name, sub in group:
                if sub is not None:
                    obj[name] = build(sub)
                elif pos < len(cells):
                    obj[name] = cells[pos]
                    pos += 1
            return obj

        return build(fields)

    def table(self, h: _Header, depth: int, line: int) -> list[Any]:
        """The rows of a tabular array (§9.3), one line each at ``depth + 1``."""
        fields = h.fields
        assert fields is not None
        row_depth = depth + 1
        width = _leaf_count(fields)
        delim = h.delim
        spaced = (" " + delim, delim + " ")
        strict = self.strict
        depths, texts, nums = self.depths, self.texts, self.nums
        n = self.n
        limit = h.length if strict else -1
        token_rows: list[list[str]] = []
        start = i = self.i
        while i < n and depths[i] == row_depth and len(token_rows) != limit:
            content = texts[i]
            if '"' in content or ":" in content:
                if not _is_data_row(content, delim):
                    break
                token_rows.append(_split(content, delim))
            elif spaced[0] in content or spaced[1] in content:
                token_rows.append([t.strip(" ") for t in content.split(delim)])
            else:  # the line has no leading or trailing spaces (see _Decoder.__init__)
                token_rows.append(content.split(delim))
            i += 1
        self.i = i
        count = len(token_rows)
        row_nums = nums[start:i]
        if strict:
            if set(map(len, token_rows)) - {width}:
                for tokens, num in zip(token_rows, row_nums):
                    if len(tokens) != width:
                        raise ToonDecodeError(
                            f"expected {width} values in the row, but got {len(tokens)}", num
                        )
            self.count(count, h.length, "rows", row_nums[-1] if count else line)
            if count:
                self.no_blank_between(row_nums[0], row_nums[-1], "a tabular array")
            if i < n and depths[i] == row_depth:
                content = texts[i]
                if not content.startswith("- ") and _is_data_row(content, delim):
                    raise ToonDecodeError(f"expected {h.length} rows, but found more", nums[i])
        names = tuple(name for name, _ in fields)
        flat = all(sub is None for _, sub in fields)
        columns: list[list[Any]] | None = None
        if count and set(map(len, token_rows)) == {width}:
            try:  # one column at a time: most columns hold a single kind of value
                columns = [_decode_column(c) for c in zip(*token_rows)]
            except ToonDecodeError:
                columns = None  # decode row by row below, to report the line
        if columns is not None:
            if flat and count >= 32 and len(names) <= 200:
                return list(map(_row_builder(names), *columns))
            cell_rows: Any = zip(*columns)
        else:
            cell_rows = [
                [_primitive(t, num) for t in tokens] for tokens, num in zip(token_rows, row_nums)
            ]
        if flat:
            return [dict(zip(names, cells)) for cells in cell_rows]
        return [self.row_object(fields, cells) for cells in cell_rows]

    def keyed(self, h: _Header, depth: int, line: int) -> dict[str, Any]:
        fields = h.fields
        assert fields is not None
        entry_depth = depth + 1
        width = _leaf_count(fields)
        flat = all(sub is None for _, sub in fields)
        names = [name for name, _ in fields]
        obj: dict[str, Any] = {}
        count = 0
        first_line = last_line = line
        while self.i < self.n and self.depths[self.i] > depth:
            i = self.i
            num = self.nums[i]
            content = self.texts[i]
            if self.depths[i] > entry_depth:
                if self.strict:
                    raise ToonDecodeError("unexpected indentation inside a keyed object", num)
                self.i += 1
                continue
            if _find_unquoted(content, ":") < 0:
                if self.strict:
                    raise ToonDecodeError(f"expected an entry row 'key: cells', got {content}", num)
                self.i += 1
                continue
            self.i += 1
            key, end = _key_token(content, num)
            rest = content[end:].strip(" ")
            tokens = _split(rest, h.delim) if rest else []
            if self.strict and len(tokens) != width:
                raise ToonDecodeError(
                    f"expected {width} values in the entry, but got {len(tokens)}", num
                )
            cells = [_primitive(t, num) for t in tokens]
            value = dict(zip(names, cells)) if flat else self.row_object(fields, cells)
            self.put(obj, key, value, num)
            if count == 0:
                first_line = num
            last_line = num
            count += 1
        self.count(count, h.length, "entries", last_line)
        self.no_blank_between(first_line, last_line, "a keyed object")
        return obj

    def list_array(self, h: _Header, depth: int, line: int) -> list[Any]:
        item_depth = depth + 1
        items: list[Any] = []
        first_line = last_line = line
        strict = self.strict
        while self.i < self.n and (not strict or len(items) < h.length):
            d = self.depths[self.i]
            content = self.texts[self.i]
            if d != item_depth or not (content.startswith("- ") or content == "-"):
                break
            if not items:
                first_line = self.nums[self.i]
            items.append(self.list_item(item_depth))
            last_line = self.nums[self.i - 1]
        self.count(len(items), h.length, "list items", last_line)
        if strict:
            self.no_blank_between(first_line, last_line, "a list array")
            if self.i < self.n and self.depths[self.i] == item_depth:
                if self.texts[self.i].startswith("- "):
                    raise ToonDecodeError(
                        f"expected {h.length} list items, but found more", self.nums[self.i]
                    )
        return items

    def list_item(self, depth: int) -> Any:
        i = self.i
        self.i += 1
        content = self.texts[i]
        line = self.nums[i]
        if content == "-":
            return {}
        rest = content[2:]
        token = rest.strip(" ")
        if not token:
            return {}
        if token == "[]":
            return []
        obj: dict[str, Any] = {}
        parsed = self.header(rest, line) if "[" in rest else None
        if parsed is not None:
            h = parsed[0]
            if h.key is not None:
                # "- key[N]...:" opens an object whose first field is that array; the
                # array's rows or items sit one level deeper than its sibling fields
                obj[h.key] = self.from_header(h, parsed[1], depth + 1, line)
                self.siblings(obj, depth + 1)
                return obj
            if not (h.keyed or h.fields is not None):
                return self.from_header(h, parsed[1], depth, line)
            if self.strict:
                raise ToonDecodeError(
                    "a keyless keyed header is only valid at the document root"
                    if h.keyed
                    else "a keyless header with a field list is only valid at the root",
                    line,
                )
        if _find_unquoted(rest, ":") >= 0:
            self.key_value(obj, rest, line, depth + 1)
            self.siblings(obj, depth + 1)
            return obj
        return _primitive(token, line)

    def siblings(self, obj: dict[str, Any], depth: int) -> None:
        """The remaining fields of an object that started on a hyphen line."""
        while self.i < self.n and self.depths[self.i] == depth:
            i = self.i
            content = self.texts[i]
            if content.startswith("- "):
                break
            self.i += 1
            self.key_value(obj, content, self.nums[i], depth)


def decode(text: str | bytes, *, indent: int = 2, strict: bool = True) -> Any:
    """Decode a TOON document (spec v4.0) to Python values.

    Objects become ``dict`` (in document order), arrays ``list``. Numbers (§4): a token
    without fraction or exponent becomes an ``int`` (arbitrary precision), any other a
    ``float``; ``-0`` decodes to ``0``; a number outside the host's range (a float that
    would be infinite, an int longer than ``sys.get_int_max_str_digits()``) is kept as
    the string it is, never approximated. ``indent`` is the number of spaces per
    indentation level (the spec's ``indentSize``). ``strict=True`` (the default)
    enforces every check of §14: declared lengths and row widths, indentation, tabs,
    blank lines inside arrays, duplicate keys, malformed headers, stray lines.
    ``strict=False`` tolerates them (the last of duplicate keys wins).

    ``text`` may be ``str`` or UTF-8 ``bytes``. Raises :class:`ToonDecodeError` (a
    ``ValueError``) whose message starts with the line number.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    if not isinstance(text, str):
        raise TypeError(f"decode() needs str or bytes, not {type(text).__name__}")
    if type(indent) is not int or indent < 1:
        raise ValueError(f"indent must be a positive int, not {indent!r}")
    try:
        return _Decoder(text, indent, bool(strict)).document()
    except RecursionError:
        raise ToonDecodeError("document nested too deeply to decode") from None
