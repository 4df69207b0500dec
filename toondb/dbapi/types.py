"""PEP 249's type objects and constructors, sqlite3's ``Row``, and the adapters and
converters that carry Python types SQL does not have (dates, times, ``Decimal``,
``UUID``) in and out of the database, as sqlite3 does.

Type codes. ``Cursor.description[i][1]`` is the declared type of the column the
i-th result column reads (``"VARCHAR(20)"``, ``"INTEGER"``, as written in CREATE
TABLE), or for an expression the SQL type of its value in the first row
(``"INTEGER"``, ``"REAL"``, ``"TEXT"``, ``"BLOB"``), or None when neither is known
(an expression that is NULL, or no row). The type objects compare equal to the type
codes by SQLite's affinity rules: ``STRING`` to TEXT affinity, ``NUMBER`` to
INTEGER, REAL and NUMERIC affinity, ``BINARY`` to BLOB affinity, ``DATETIME`` to a
declared type that names a DATE or a TIME (DATE, DATETIME, TIMESTAMP, TIME),
which no other object then claims. ``ROWID`` compares equal to ``"ROWID"`` only:
toondb has no column type of its own for rowids (they are INTEGERs).

Adapters (``register_adapter(type, callable)``) turn a parameter of that exact
type into an int, float, str or bytes before it is bound; an object with a
``__conform__(PrepareProtocol)`` method adapts itself. Registered at import, as
sqlite3 registers its own: ``date`` and ``datetime`` to ISO 8601 text (a space
between date and time, as sqlite3), and beyond sqlite3's: ``time`` to ISO text,
``Decimal`` and ``UUID`` to their text.

Converters (``register_converter(name, callable)``, the name case-insensitive) turn
a value read back, given as bytes (text encoded as UTF-8, numbers as their decimal
text), into a Python object, when the connection was opened with ``detect_types``:
``PARSE_DECLTYPES`` looks the converter up by the first word of the column's
declared type (``"TIMESTAMP"`` for ``timestamp``, ``"DECIMAL"`` for
``DECIMAL(10,2)``), ``PARSE_COLNAMES`` by a name in brackets at the end of the
column's name (``SELECT x AS "x [date]"``, whose description then says ``x``),
which wins over the declared type. Registered: ``date``, ``timestamp`` (as sqlite3),
``datetime``, ``time``, ``decimal``, ``numeric`` (to ``Decimal``) and ``uuid``.
"""

from __future__ import annotations

import datetime
import decimal
import time
import uuid
from collections.abc import Iterator
from typing import Any, Callable

__all__ = [
    "STRING",
    "BINARY",
    "NUMBER",
    "DATETIME",
    "ROWID",
    "Date",
    "Time",
    "Timestamp",
    "DateFromTicks",
    "TimeFromTicks",
    "TimestampFromTicks",
    "Binary",
    "Row",
    "PrepareProtocol",
    "PARSE_DECLTYPES",
    "PARSE_COLNAMES",
    "adapters",
    "converters",
    "register_adapter",
    "register_converter",
]

# ---- type objects


def _is_datetime(code: str) -> bool:
    return "DATE" in code or "TIME" in code


def affinity(code: str) -> str:
    """SQLite's affinity of a declared type (datatype3.html 3.1)."""
    if "INT" in code:
        return "INTEGER"
    if "CHAR" in code or "CLOB" in code or "TEXT" in code:
        return "TEXT"
    if "BLOB" in code or not code.strip():
        return "BLOB"
    if "REAL" in code or "FLOA" in code or "DOUB" in code:
        return "REAL"
    return "NUMERIC"


class TypeObject:
    """A PEP 249 type object: equal to the type codes of its kind (see the module)."""

    __slots__ = ("name", "_test")

    def __init__(self, name: str, test: Callable[[str], bool]) -> None:
        self.name = name
        self._test = test

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TypeObject):
            return other is self
        if isinstance(other, str):
            return self._test(other.upper())
        return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"<toondb.dbapi.{self.name}>"


STRING = TypeObject("STRING", lambda c: not _is_datetime(c) and affinity(c) == "TEXT")
BINARY = TypeObject("BINARY", lambda c: not _is_datetime(c) and affinity(c) == "BLOB")
NUMBER = TypeObject(
    "NUMBER", lambda c: not _is_datetime(c) and affinity(c) in ("INTEGER", "REAL", "NUMERIC")
)
DATETIME = TypeObject("DATETIME", _is_datetime)
ROWID = TypeObject("ROWID", lambda c: c == "ROWID")

_VALUE_TYPES = {int: "INTEGER", bool: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB"}


def value_type_code(value: Any) -> str | None:
    """The type code of a result value whose column has no declared type."""
    return _VALUE_TYPES.get(type(value))


# ---- constructors

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = memoryview  # as sqlite3: bound as a BLOB


def DateFromTicks(ticks: float) -> datetime.date:
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> datetime.time:
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> datetime.datetime:
    return Timestamp(*time.localtime(ticks)[:6])


# ---- rows


class Row:
    """A result row as sqlite3.Row: a tuple that can also be indexed by column name
    (case-insensitively), with keys(); set ``connection.row_factory = Row``."""

    __slots__ = ("_description", "_values")

    def __init__(self, cursor: Any, values: tuple[Any, ...]) -> None:
        self._description = cursor.description or ()
        self._values = tuple(values)

    def keys(self) -> list[str]:
        return [d[0] for d in self._description]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            low = key.lower()
            for i, d in enumerate(self._description):
                if d[0].lower() == low:
                    return self._values[i]
            raise IndexError("No item with that key")
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return self._description == other._description and self._values == other._values

    def __hash__(self) -> int:
        return hash((tuple(self.keys()), self._values))

    def __repr__(self) -> str:
        return f"<toondb.dbapi.Row {dict(zip(self.keys(), self._values))!r}>"


# ---- adapters and converters

PARSE_DECLTYPES = 1
PARSE_COLNAMES = 2


class PrepareProtocol:
    """The protocol an object's ``__conform__(protocol)`` is called with (as sqlite3's)."""


adapters: dict[type, Callable[[Any], Any]] = {}
converters: dict[str, Callable[[bytes], Any]] = {}
# True once an adapter is registered for a type the engine binds as it is (a
# subclass of int, float, str or bytes): then every parameter is looked at
_plain_types_adapted = [False]
_PLAIN_BASES = (int, float, str, bytes, bytearray, memoryview)


def register_adapter(type_: type, adapter: Callable[[Any], Any]) -> None:
    """Bind a parameter of exactly type_ as adapter(value) (an int, float, str or bytes)."""
    if isinstance(type_, type) and issubclass(type_, _PLAIN_BASES):
        _plain_types_adapted[0] = True
    adapters[type_] = adapter


def register_converter(name: str, converter: Callable[[bytes], Any]) -> None:
    """Convert values of columns whose type is name (see detect_types) with converter."""
    converters[name.upper()] = converter


def _convert_timestamp(raw: bytes) -> datetime.datetime:
    return datetime.datetime.fromisoformat(raw.decode())


register_adapter(datetime.date, lambda v: v.isoformat())
register_adapter(datetime.datetime, lambda v: v.isoformat(" "))
register_adapter(datetime.time, lambda v: v.isoformat())
register_adapter(decimal.Decimal, str)
register_adapter(uuid.UUID, str)
register_converter("date", lambda b: datetime.date.fromisoformat(b.decode()))
register_converter("timestamp", _convert_timestamp)
register_converter("datetime", _convert_timestamp)
register_converter("time", lambda b: datetime.time.fromisoformat(b.decode()))
register_converter("decimal", lambda b: decimal.Decimal(b.decode()))
register_converter("numeric", lambda b: decimal.Decimal(b.decode()))
register_converter("uuid", lambda b: uuid.UUID(b.decode()))

_BINDABLE = frozenset((int, float, str, bytes, type(None)))


def adapt(value: Any) -> Any:
    """value as the engine binds it: through its adapter or __conform__ if it has one."""
    t = type(value)
    if t in _BINDABLE and not _plain_types_adapted[0]:
        return value
    adapter = adapters.get(t)
    if adapter is not None:
        return adapter(value)
    conform = getattr(value, "__conform__", None)
    if conform is not None:
        adapted = conform(PrepareProtocol)
        if adapted is not None:
            return adapted
    return value


def needs_adapting(params: Any) -> bool:
    """True when a parameter set holds a value the engine would not bind as it is."""
    if _plain_types_adapted[0]:
        return True
    values = params.values() if isinstance(params, dict) else params
    for v in values:
        if type(v) not in _BINDABLE:
            return True
    return False


def adapt_params(params: Any) -> Any:
    """A parameter set (a sequence or a dict) with every value adapted."""
    if isinstance(params, dict):
        return {k: adapt(v) for k, v in params.items()}
    return tuple(adapt(v) for v in params)


def as_converter_input(value: Any) -> bytes:
    """A value read back, as the bytes a converter is given (as sqlite3 gives them)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return str(value).encode()


def converter_name(decltype: str | None) -> str | None:
    """The converter a declared type selects under PARSE_DECLTYPES: its first word."""
    if not decltype:
        return None
    word = decltype.strip().split("(", 1)[0].split(None, 1)
    return word[0].upper() if word else None


def split_colname(name: str) -> tuple[str, str | None]:
    """PARSE_COLNAMES: 'x [type]' -> ('x', 'TYPE'); a name without brackets is kept."""
    start = name.find("[")
    if start < 0:
        return name, None
    end = name.find("]", start)
    if end < 0:
        return name, None
    cut = start - 1 if start > 0 and name[start - 1] == " " else start  # one space, as sqlite3
    return name[:cut], name[start + 1 : end].upper()
