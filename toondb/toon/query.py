"""The query builder: filter, project, sort and page JSON documents stored under a key
prefix, and write the result as TOON (spec v4.0) for LLM prompts, as JSON, or as dicts.

::

    db.put(b"products/laptop", b'{"name":"Laptop","price":999,"stock":5}')
    db.put(b"products/mouse", b'{"name":"Mouse","price":25,"stock":20}')

    db.query("products/").select(["name", "price"]).limit(10).to_list()
    # [(b'products/laptop', b'result[1]{name,price}:Laptop,999'),
    #  (b'products/mouse', b'result[1]{name,price}:Mouse,25')]

    db.query("products/").where("price", "<", 100).to_toon()
    # products[1]{name,price,stock}:
    #   Mouse,25,20

How it reads. The builder needs only an object with ``scan(prefix)`` yielding
``(key, value)`` pairs in key order -- ``Database``, ``Transaction``, ``IpcClient`` (all
three get ``query()`` from :class:`QueryMixin`) or anything else shaped so. Without
``order_by`` it is lazy: documents are decoded and tested one at a time as the scan
yields them and the scan stops as soon as ``offset + limit`` matches are found, so
``limit(10)`` over a million keys touches about ten. ``order_by`` must see every matching
document; it still streams the scan and keeps only what it must (a heap of
``offset + limit`` entries when a limit is set, every match otherwise).

Semantics (SQL-like; docs/query.md has the full table):

- a value that is not a JSON object (not JSON, or a JSON array/string/number) is skipped,
  as a SQL query skips rows of another table;
- a missing field is null; every comparison with null is false (``=``, ``!=``, ``<``,
  ``in``, ...), as in SQL -- use the ops ``is`` / ``is not`` to test for null;
- values of different JSON types are never equal and never ordered by ``<``/``>``
  (``1 < "2"`` is false); ``true`` is not ``1``; ``1 == 1.0``;
- ``order_by`` sorts null first (last with ``desc=True``), then booleans, numbers,
  strings, arrays and objects, as SQLite sorts NULL before numbers before text; ties keep
  key order;
- a field is a top-level key, or a dotted path into nested objects and arrays
  (``"address.city"``, ``"tags.0"``); a top-level key that itself contains dots wins.

Output forms:

- ``to_list()``: ``[(key, row)]``, both ``bytes``; ``row`` is ToonDB's one-line form of one
  record: a one-row TOON tabular array named ``result`` with its row on the header's line,
  ``result[1]{name,price}:Laptop,999`` (the spec would put ``Laptop,999`` on the next line,
  indented). A record that cannot be a table row (one holding an array, or an empty one)
  is written in the spec's list form instead, over several lines. :func:`decode_row`
  reads either back.
- ``to_toon()``: one document in the official TOON format, spec v4.0
  (``toondb.toon.SPEC_VERSION``): ``products[2]{name,price}:`` and one indented row per
  record, or the spec's list form when the records are not uniform.
- ``to_json()``: a compact JSON array of the records; ``to_dicts()``: the records.
"""

from __future__ import annotations

import functools
import heapq
import json
import math
import re
from collections.abc import Generator, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, Callable, Union

from toondb.toon.decoder import decode
from toondb.toon.encoder import encode
from toondb.toon.lexical import SPEC_VERSION

__all__ = ["Query", "OPS", "decode_row", "SPEC_VERSION"]

Prefix = Union[str, bytes, bytearray, memoryview]
Record = dict[str, Any]

OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "contains", "startswith", "is", "is not")
"""The operators of :meth:`Query.where` (also ``==`` for ``=`` and ``<>`` for ``!=``)."""

_ALIASES = {"==": "=", "<>": "!="}
ROW_NAME = "result"
"""The name of the one-row array in ``to_list()`` rows: ``result[1]{...}:...``."""

_MISSING: Any = object()


# ---------------------------------------------------------------------------------------
# JSON values: type ranks, equality, order
# ---------------------------------------------------------------------------------------


def _rank(v: Any) -> int:
    """0 null, 1 boolean, 2 number, 3 string, 4 array, 5 object (the sort order of types)."""
    if v is None:
        return 0
    t = type(v)
    if t is bool:
        return 1
    if t is int or t is float:
        return 2
    if t is str:
        return 3
    if t is list or t is tuple:
        return 4
    if t is dict:
        return 5
    if isinstance(v, bool):
        return 1
    if isinstance(v, (int, float)):
        return 2
    if isinstance(v, str):
        return 3
    return 5 if isinstance(v, dict) else 4


def _eq(a: Any, b: Any) -> bool:
    """JSON equality of two non-null values: same type (numbers as one type) and equal."""
    return _rank(a) == _rank(b) and a == b


def _sort_value(v: Any) -> tuple[int, Any]:
    r = _rank(v)
    if r == 0:
        return (0, 0)
    if r >= 4:  # arrays and objects: by their canonical JSON text
        return (r, json.dumps(v, sort_keys=True, separators=(",", ":"), default=str))
    if r == 2 and isinstance(v, float) and math.isnan(v):
        return (r, -math.inf)
    return (r, v)


def _lookup(doc: Record, field: str, parts: tuple[str, ...] | None) -> Any:
    """doc[field], or the dotted path's value; _MISSING when absent."""
    v = doc.get(field, _MISSING)
    if v is not _MISSING or parts is None:
        return v
    cur: Any = doc
    for p in parts:
        if isinstance(cur, dict):
            cur = cur.get(p, _MISSING)
            if cur is _MISSING:
                return cur
        elif isinstance(cur, list) and p.isdigit():
            i = int(p)
            if i >= len(cur):
                return _MISSING
            cur = cur[i]
        else:
            return _MISSING
    return cur


class _Field:
    __slots__ = ("name", "parts")

    def __init__(self, name: Any, what: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{what}: a field name is a str, not {type(name).__name__}")
        if not name:
            raise ValueError(f"{what}: a field name cannot be empty")
        self.name = name
        parts = tuple(name.split("."))
        self.parts = parts if len(parts) > 1 and all(parts) else None

    def get(self, doc: Record) -> Any:
        v = _lookup(doc, self.name, self.parts)
        return None if v is _MISSING else v


# ---------------------------------------------------------------------------------------
# where() predicates
# ---------------------------------------------------------------------------------------


def _predicate(field: _Field, op: str, value: Any) -> Callable[[Record], bool]:
    get = field.get
    if op in ("is", "is not"):
        want = op == "is"
        if value is None:
            return lambda d: (get(d) is None) is want
        return lambda d: (_eq_nullable(get(d), value)) is want
    if op == "in":
        if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
            raise TypeError(
                f"where({field.name!r}, 'in', ...): the value is a list, tuple or set of values"
            )
        choices = [c for c in value if c is not None]

        def is_in(d: Record) -> bool:
            v = get(d)
            return v is not None and any(_eq(v, c) for c in choices)

        return is_in
    if value is None:
        # SQL: a comparison with NULL is never true (use 'is' / 'is not')
        return lambda d: False
    if op == "=":

        def eq(d: Record) -> bool:
            v = get(d)
            return v is not None and _eq(v, value)

        return eq
    if op == "!=":

        def ne(d: Record) -> bool:
            v = get(d)
            return v is not None and not _eq(v, value)

        return ne
    if op in ("<", "<=", ">", ">="):
        rank = _rank(value)
        if rank not in (1, 2, 3):
            raise TypeError(
                f"where({field.name!r}, {op!r}, ...): compare with a number, string or boolean, "
                f"not {type(value).__name__}"
            )
        cmp: Callable[[Any], Any] = {
            "<": lambda a: a < value,
            "<=": lambda a: a <= value,
            ">": lambda a: a > value,
            ">=": lambda a: a >= value,
        }[op]

        def ordered(d: Record) -> bool:
            v = get(d)
            return v is not None and _rank(v) == rank and bool(cmp(v))

        return ordered
    if op == "contains":

        def contains(d: Record) -> bool:
            v = get(d)
            if isinstance(v, str):
                return isinstance(value, str) and value in v
            if isinstance(v, list):
                return any(e is not None and _eq(e, value) for e in v)
            return False

        return contains
    if op == "startswith":
        if not isinstance(value, str):
            raise TypeError(
                f"where({field.name!r}, 'startswith', ...): the value is a str, "
                f"not {type(value).__name__}"
            )

        def startswith(d: Record) -> bool:
            v = get(d)
            return isinstance(v, str) and v.startswith(value)

        return startswith
    raise AssertionError(op)  # pragma: no cover - ops are validated by where()


def _eq_nullable(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return _eq(a, b)


# ---------------------------------------------------------------------------------------
# One record on one line: ToonDB's row form
# ---------------------------------------------------------------------------------------


def _row_text(record: Record) -> str:
    """``result[1]{name,price}:Laptop,999``: a one-row TOON table with its row on the
    header's line; the spec's (multi-line) list form when the record is not tabular."""
    text = encode({ROW_NAME: [record]})
    header, sep, row = text.partition("\n  ")
    if sep and "\n" not in row and header.startswith(ROW_NAME + "[1]{"):
        return header + row
    return text


def _row_texts(records: list[Record]) -> list[str]:
    """_row_text of each record. Records with one key set make one table, encoded at
    once (column by column) and cut into rows: the same text, many times faster."""
    if len(records) > 1:
        keys = list(records[0])
        if all(len(r) == len(keys) and list(r) == keys for r in records):
            text = encode({ROW_NAME: records})
            lines = text.split("\n  ")
            head = f"{ROW_NAME}[{len(records)}]{{"
            if (
                len(lines) == len(records) + 1
                and lines[0].startswith(head)
                and "\n" not in text[-1:]
            ):
                if all("\n" not in line for line in lines):
                    header = f"{ROW_NAME}[1]{{" + lines[0][len(head) :]
                    return [header + row for row in lines[1:]]
    return [_row_text(r) for r in records]


def decode_row(row: bytes | str) -> Record:
    """The record of one ``to_list()`` row (``result[1]{name,price}:Laptop,999``)."""
    text = row.decode("utf-8") if isinstance(row, (bytes, bytearray, memoryview)) else row
    if "\n" not in text:
        head = ROW_NAME + "[1]{"
        if not text.startswith(head):
            raise ValueError(f"not a ToonDB row: {text[:40]!r}")
        i, depth, n = len(head), 1, len(text)
        while i < n and depth:
            c = text[i]
            if c == '"':  # a quoted field name: skip it, escapes included
                i += 1
                while i < n and text[i] != '"':
                    i += 2 if text[i] == "\\" else 1
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        if depth or i >= n or text[i] != ":":
            raise ValueError(f"not a ToonDB row: {text[:40]!r}")
        text = text[: i + 1] + "\n  " + text[i + 1 :]
    value = decode(text)
    if not isinstance(value, dict) or not isinstance(value.get(ROW_NAME), list):
        raise ValueError("not a ToonDB row")
    record: Record
    (record,) = value[ROW_NAME]
    return record


# ---------------------------------------------------------------------------------------
# The builder
# ---------------------------------------------------------------------------------------


def _as_prefix(prefix: Any) -> bytes:
    if isinstance(prefix, str):
        return prefix.encode("utf-8")
    if isinstance(prefix, (bytes, bytearray, memoryview)):
        return bytes(prefix)
    raise TypeError(f"prefix must be str or bytes, not {type(prefix).__name__}")


def _count_arg(n: Any, what: str) -> int | None:
    if n is None and what == "limit":
        return None
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what}() takes an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{what}() must be >= 0, not {n}")
    return n


def _load(raw: bytes) -> Record | None:
    """The JSON object stored in raw, or None (not JSON, or not an object: skipped)."""
    try:
        doc = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return doc if type(doc) is dict else None


def default_name(prefix: bytes) -> str:
    """The array name of ``to_toon()``: the prefix's last segment (``b"tenants/acme/users/"``
    gives ``users``), or ``result``."""
    text = prefix.decode("utf-8", "replace")
    segments = [s for s in re.split(r"[/:]", text) if s]
    return segments[-1] if segments else ROW_NAME


class Query:
    """A query over the JSON documents stored under a key prefix.

    Build it with ``db.query(prefix)`` (or ``Query(source, prefix)`` over any object with
    ``scan(prefix)``). Each builder method returns a new ``Query``, so a base query can be
    refined several ways; nothing is read until a terminal (``to_list``, ``to_toon``,
    ``to_json``, ``to_dicts``, ``count``, ``first``, ``exists``, or iteration) runs. Each
    terminal runs the query again, over the source's current data.
    """

    __slots__ = ("_source", "_prefix", "_fields", "_conds", "_order", "_limit", "_offset")

    def __init__(self, source: Any, prefix: Prefix = "") -> None:
        if not callable(getattr(source, "scan", None)):
            raise TypeError(f"{type(source).__name__} has no scan(prefix) to query")
        self._source = source
        self._prefix = _as_prefix(prefix)
        self._fields: tuple[_Field, ...] | None = None
        self._conds: tuple[tuple[str, str, Any, Callable[[Record], bool]], ...] = ()
        self._order: tuple[tuple[_Field, bool], ...] = ()
        self._limit: int | None = None
        self._offset = 0

    def _copy(self) -> Query:
        q = Query.__new__(Query)
        for name in Query.__slots__:
            setattr(q, name, getattr(self, name))
        return q

    # ---- building

    def select(self, fields: str | Sequence[str] | None = None, *more: str) -> Query:
        """Keep only these fields, in this order (a missing one is null).
        ``select(["name", "price"])`` or ``select("name", "price")``; ``select()`` (or
        None) keeps whole documents. Dotted paths name nested values."""
        q = self._copy()
        if fields is None and not more:
            q._fields = None
            return q
        names = [fields, *more] if isinstance(fields, str) else [*(fields or ()), *more]
        if not names:
            raise ValueError("select() needs at least one field (or None for whole documents)")
        q._fields = tuple(_Field(n, "select") for n in names)
        if len({f.name for f in q._fields}) != len(q._fields):
            raise ValueError(f"select() names a field twice: {names}")
        return q

    def where(self, field: str, op: str, value: Any) -> Query:
        """Keep documents whose field compares true with value. ops: ``=`` ``!=`` ``<``
        ``<=`` ``>`` ``>=`` ``in`` (value a list) ``contains`` (substring of a string, or
        element of an array) ``startswith`` ``is`` ``is not`` (null-safe equality).
        Several where() calls must all hold."""
        if not isinstance(op, str):
            raise TypeError(f"where(): op must be a str, one of {', '.join(OPS)}")
        op_norm = _ALIASES.get(op, op.strip().lower())
        if op_norm not in OPS:
            raise ValueError(f"where(): unknown op {op!r}; use one of {', '.join(OPS)}")
        f = _Field(field, "where")
        q = self._copy()
        q._conds = (*self._conds, (f.name, op_norm, value, _predicate(f, op_norm, value)))
        return q

    def order_by(self, field: str, desc: bool = False) -> Query:
        """Sort by field (null first, or last when desc); a second call breaks ties of the
        first. Ties left keep key order. Not lazy: every match is read (see the module doc)."""
        q = self._copy()
        q._order = (*self._order, (_Field(field, "order_by"), bool(desc)))
        return q

    def limit(self, n: int | None) -> Query:
        """At most n records (None: no limit)."""
        q = self._copy()
        q._limit = _count_arg(n, "limit")
        return q

    def offset(self, n: int) -> Query:
        """Skip the first n matching records."""
        q = self._copy()
        q._offset = _count_arg(n, "offset") or 0
        return q

    # ---- running

    def _matches(self) -> Generator[tuple[bytes, Record], None, None]:
        """(key, whole document) of every match, in key order, as the scan yields them."""
        preds = [c[3] for c in self._conds]
        it = self._source.scan(self._prefix)
        try:
            for key, raw in it:
                doc = _load(raw)
                if doc is None:
                    continue
                for p in preds:
                    if not p(doc):
                        break
                else:
                    yield key, doc
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def _project(self, doc: Record) -> Record:
        if self._fields is None:
            return doc
        return {f.name: f.get(doc) for f in self._fields}

    def _window(self, items: Iterator[Any]) -> Iterator[Any]:
        stop = None if self._limit is None else self._offset + self._limit
        return islice(items, self._offset, stop)

    def _sorted(self) -> list[tuple[bytes, Record]]:
        order = self._order
        desc = [d for _, d in order]

        def cmp(a: tuple[tuple[Any, ...], int, bytes, Record], b: tuple[Any, int, Any, Any]) -> int:
            for x, y, d in zip(a[0], b[0], desc):
                if x != y:
                    return (1 if x < y else -1) if d else (-1 if x < y else 1)
            return a[1] - b[1]  # stable: scan (key) order

        keyf = functools.cmp_to_key(cmp)
        entries = (
            (tuple(_sort_value(f.get(doc)) for f, _ in order), i, key, self._project(doc))
            for i, (key, doc) in enumerate(self._matches())
        )
        if self._limit is not None:
            best = heapq.nsmallest(self._offset + self._limit, entries, key=keyf)
        else:
            best = sorted(entries, key=keyf)
        return [(key, rec) for _, _, key, rec in best[self._offset :]]

    def __iter__(self) -> Iterator[tuple[bytes, Record]]:
        """(key, record) of the result, lazily when there is no order_by."""
        if self._order:
            yield from self._sorted()
            return
        if self._limit == 0:
            return
        gen = self._matches()
        try:
            for key, doc in self._window(gen):
                yield key, self._project(doc)
        finally:
            gen.close()

    def _records(self) -> list[Record]:
        return [rec for _, rec in self]

    # ---- terminals

    def to_list(self) -> list[tuple[bytes, bytes]]:
        """[(key, row)] with row in ToonDB's one-line form, e.g.
        ``(b"products/laptop", b"result[1]{name,price}:Laptop,999")``."""
        items = list(self)
        return [
            (k, t.encode("utf-8")) for (k, _), t in zip(items, _row_texts([r for _, r in items]))
        ]

    def to_dicts(self) -> list[Record]:
        """The records (projected by select()), as dicts."""
        return self._records()

    def to_toon(self, name: str | None = None, *, delimiter: str = ",", indent: int = 2) -> str:
        """The whole result as one TOON document (spec v4.0): ``name[N]{fields}:`` and one
        indented row per record (the list form when records are not uniform). name: the
        array's name, by default the prefix's last segment (``products/`` -> ``products``)."""
        if name is None:
            name = default_name(self._prefix)
        elif not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        return encode({name: self._records()}, delimiter=delimiter, indent=indent)

    def to_json(self) -> str:
        """The records as one compact JSON array."""
        return json.dumps(self._records(), separators=(",", ":"), ensure_ascii=False)

    def count(self) -> int:
        """How many records the query returns (offset and limit applied)."""
        if self._limit == 0:
            return 0
        gen = self._matches()
        try:
            return sum(1 for _ in self._window(gen))
        finally:
            gen.close()

    def first(self) -> Record | None:
        """The first record, or None when nothing matches."""
        if self._limit == 0:
            return None
        for _, rec in self.limit(1):
            return rec
        return None

    def exists(self) -> bool:
        """Whether any record matches (reads up to offset + 1 matches)."""
        if self._limit == 0:
            return False
        gen = self._matches()
        try:
            return next(islice(gen, self._offset, None), None) is not None
        finally:
            gen.close()

    def __repr__(self) -> str:
        parts = [f"query({self._prefix!r})"]
        if self._fields is not None:
            parts.append(f"select({[f.name for f in self._fields]!r})")
        parts += [f"where({f!r}, {op!r}, {v!r})" for f, op, v, _ in self._conds]
        parts += [f"order_by({f.name!r}, desc={d})" for f, d in self._order]
        if self._offset:
            parts.append(f"offset({self._offset})")
        if self._limit is not None:
            parts.append(f"limit({self._limit})")
        return "<Query " + ".".join(parts) + ">"
