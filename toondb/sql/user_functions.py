"""SQL functions an application defines in Python: ``Database.create_function``
(and the DB-API's ``Connection.create_function``), as sqlite3's.

A database handle keeps a ``UserFunctions``: name and number of arguments ->
the Python callable. The SQL run through that handle (``Database.execute``, its
transactions, the DB-API connection over it) finds a function there before the
built-in ones, as SQLite finds an application's function before its own of the
same name and number of arguments; a definition for ``narg=-1`` takes any number
of arguments where no definition for the exact number exists. Defining or
removing a function (``func=None``) makes the handle's cached plans that could
call the old one unused (the plan cache's key holds ``version``).

What a call gives and takes is SQLite's: the arguments are the values as stored
(int, float, str, bytes, None); the result must be one of those (a bool is an
int; bytearray and memoryview are bytes), an int within 64 bits. An exception
raised by the function, or another result, fails the statement with SQLError
"user-defined function raised exception" (the exception is its ``__cause__``),
as sqlite3 raises OperationalError.

Functions are not stored in the database file: each handle defines its own, and
SQL run on a server (toondb.ipc) cannot call a client's Python (the DB-API's
remote connection refuses create_function). ``deterministic`` is recorded as
sqlite3 accepts it; toondb does not fold or index on it.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any, Callable

from toondb.errors import SQLError

__all__ = ["UserFunctions", "USER_FUNCTIONS", "MAX_NAME_BYTES", "MAX_ARGS"]

#: SQLite's limits on a function's name (bytes of UTF-8) and declared arguments
MAX_NAME_BYTES = 255
MAX_ARGS = 127
_I64 = 1 << 63

#: the handle's functions while a statement is planned (set by engine.compiled_for)
USER_FUNCTIONS: contextvars.ContextVar[UserFunctions | None] = contextvars.ContextVar(
    "toondb_user_functions", default=None
)


class UserFunctions:
    """One handle's functions; ``version`` changes with every definition."""

    __slots__ = ("_defs", "_aggs", "version", "_lock")

    _versions = iter(range(1, 1 << 62))  # unique across handles: plan caches are per thread

    def __init__(self) -> None:
        self._defs: dict[tuple[str, int], tuple[Callable[..., Any], bool]] = {}
        self._aggs: dict[tuple[str, int], Any] = {}
        self.version = 0
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._defs) or bool(self._aggs)

    @staticmethod
    def _key(name: str, narg: int) -> tuple[str, int]:
        if not isinstance(name, str):
            raise TypeError(f"a function's name must be a str, not {type(name).__name__}")
        if not name or len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise SQLError(f"Error creating function: a name of 1 to {MAX_NAME_BYTES} bytes")
        if type(narg) is not int or not -1 <= narg <= MAX_ARGS:
            raise SQLError(f"Error creating function: narg must be -1 to {MAX_ARGS}")
        return (name.upper(), narg)

    def define(
        self, name: str, narg: int, func: Callable[..., Any] | None, deterministic: bool = False
    ) -> None:
        """Define (func None: remove) the function name with narg arguments
        (-1: any number)."""
        key = self._key(name, narg)
        if func is not None and not callable(func):
            raise TypeError("func must be callable, or None to remove the function")
        with self._lock:
            self._aggs.pop(key, None)  # one definition per name and count, as SQLite
            if func is None:
                self._defs.pop(key, None)
            else:
                self._defs[key] = (func, bool(deterministic))
            self.version = next(UserFunctions._versions)

    def define_aggregate(self, name: str, narg: int, cls: Any) -> None:
        """Define (cls None: remove) the aggregate name with narg arguments: per
        group, ``cls()`` is made, its ``step(*args)`` called for each row and its
        ``finalize()`` gives the value (sqlite3's create_aggregate)."""
        key = self._key(name, narg)
        if cls is not None and not callable(cls):
            raise TypeError("aggregate_class must be a class, or None to remove the aggregate")
        with self._lock:
            self._defs.pop(key, None)
            if cls is None:
                self._aggs.pop(key, None)
            else:
                self._aggs[key] = cls
            self.version = next(UserFunctions._versions)

    def aggregate(self, name: str, nargs: int) -> Callable[[list[Any]], Any] | None:
        """The finisher of aggregate name (upper case) for nargs arguments: it
        takes the group's argument values (tuples unless nargs is 1), or None."""
        cls = self._aggs.get((name, nargs)) or self._aggs.get((name, -1))
        return None if cls is None else _finisher(cls, nargs == 1)

    def defines(self, name: str) -> bool:
        """Is name (upper case) defined for some number of arguments?"""
        return any(k[0] == name for k in self._defs) or any(k[0] == name for k in self._aggs)

    def lookup(self, name: str, nargs: int) -> Callable[..., Any] | None:
        """The SQL-callable for name (upper case) with nargs arguments, or None."""
        hit = self._defs.get((name, nargs)) or self._defs.get((name, -1))
        return None if hit is None else _sql_callable(hit[0])


def _result(v: Any) -> Any:
    """v as a SQL value, or TypeError/OverflowError."""
    tp = type(v)
    if v is None or tp is str or tp is float or tp is bytes:
        return v
    if tp is int or tp is bool:
        if not -_I64 <= v < _I64:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return int(v)
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, int):
        return _result(int(v))
    raise TypeError(f"a user-defined function returned {tp.__name__}, not a SQL value")


def _finisher(cls: Any, single: bool) -> Callable[[list[Any]], Any]:
    """A group's values -> cls's finalize(). As sqlite3: no row, no instance
    (NULL); step's or finalize's exception fails the statement naming which."""

    def finish(vals: list[Any]) -> Any:
        if not vals:
            return None
        try:
            inst = cls()
            step = inst.step
            if single:
                for v in vals:
                    step(v)
            else:
                for v in vals:
                    step(*v)
        except Exception as e:  # noqa: BLE001 - every failure is the statement's error
            raise SQLError("user-defined aggregate's 'step' method raised error") from e
        try:
            return _result(inst.finalize())
        except Exception as e:  # noqa: BLE001
            raise SQLError("user-defined aggregate's 'finalize' method raised error") from e

    return finish


def _sql_callable(func: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            return _result(func(*args))
        except Exception as e:  # noqa: BLE001 - every failure is the statement's error
            raise SQLError("user-defined function raised exception") from e

    return call
