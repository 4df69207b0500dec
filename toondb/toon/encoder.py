"""The TOON encoder (spec v4.0); see the package docstring for the format.

The encoder renders a value in one pass, choosing each value's form from its shape and
position. It works on the exact built-in JSON types (``dict``, ``list``, ``str``,
``int``, ``float``, ``bool``, ``None``) so that the common case costs no copy; the first
value of any other type aborts that pass, the whole input is normalized once to the
JSON data model (:func:`_normalize`) and the pass runs again.
"""

from __future__ import annotations

import datetime
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum
from numbers import Integral, Real
from operator import itemgetter
from typing import Any, Callable, NamedTuple

from toondb.toon.lexical import (
    DELIMITERS,
    LITERALS,
    NUMERIC_LIKE,
    UNQUOTED_KEY,
    Field,
    format_float,
    quote,
)

__all__ = ["encode"]

_PRIMITIVE_TYPES = frozenset((str, int, float, bool, type(None)))


class _NotJson(Exception):
    """Raised inside the fast encoding pass at the first value that needs normalizing."""


def _floats(values: Sequence[float]) -> list[str]:
    """:func:`format_float` over a column; the common reprs need at most a '.0' cut."""
    reprs = list(map(float.__repr__, values))
    joined = "".join(reprs)
    if "e" in joined or "n" in joined or "-0.0" in reprs:
        return list(map(format_float, values))
    return [r[:-2] if r[-2:] == ".0" else r for r in reprs]


class _CellEncoders(NamedTuple):
    string: Callable[[str], str]
    cell: Callable[[Any], str]
    column: Callable[[Sequence[Any]], list[str]]


def _key_encoder() -> Callable[[str], str]:
    cache: dict[str, str] = {}
    match = UNQUOTED_KEY.fullmatch

    def key(k: str) -> str:
        try:
            return cache[k]
        except KeyError:
            pass
        if type(k) is not str:
            raise _NotJson
        enc = k if match(k) is not None else quote(k)
        if len(cache) < 4096:
            cache[k] = enc
        return enc

    return key


def _make_encoders(delimiter: str) -> _CellEncoders:
    """Build the primitive encoders for one delimiter (§7.2 quoting rules)."""
    unsafe = re.compile(r'[:"\\\[\]{}\x00-\x1f\ud800-\udfff' + re.escape(delimiter) + "]").search
    numeric_like = NUMERIC_LIKE.fullmatch
    literals = LITERALS
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
            return quote(v)
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
            return format_float(v)
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


_ENCODERS = {d: _make_encoders(d) for d in DELIMITERS}


def _tabular(rows: Sequence[Any]) -> tuple[list[Field], list[Sequence[Any]]] | None:
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
    fields: list[Field] = []
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


def _keyed(obj: dict[str, Any]) -> tuple[list[Field], list[Sequence[Any]]] | None:
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

    def fields_segment(self, fields: list[Field]) -> str:
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

    def keyed(
        self,
        lead: str,
        head: str,
        obj: dict[str, Any],
        table: tuple[list[Field], list[Sequence[Any]]],
        child: int,
    ) -> None:
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
        return format_float(k)
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
    if delimiter not in DELIMITERS:
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
