"""toondb's PEP 249 (DB-API 2.0) driver, shaped like the standard library's sqlite3.

    import toondb.dbapi

    con = toondb.dbapi.connect("./my_database")        # or Database.connection()
    with con:                                           # commits, or rolls back
        con.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT)")
        con.executemany("INSERT INTO t (name) VALUES (?)", [("a",), ("b",)])
    for row in con.execute("SELECT id, name FROM t WHERE name = :n", {"n": "a"}):
        print(row)
    con.close()

- ``connect(path, **config)``: a connection that opens the database at path (config:
  the keys of ``Database.open``), and closes it with itself; ``":memory:"`` (or "")
  is a database in a temporary directory, deleted at close. ``connect(db)`` with an
  open ``Database`` (= ``db.connection()``) leaves it open at close.
  ``connect_ipc(socket_path)`` talks to a ``toondb-server`` through an
  ``IpcClient`` (or pass a client, which then stays open).
- The keyword arguments sqlite3's ``connect`` takes: ``timeout`` (seconds to wait
  for the write lock: the ``lock_timeout`` config key), ``detect_types``,
  ``isolation_level``, ``check_same_thread``, ``factory``, ``cached_statements``
  (accepted; statements are cached by their text in any case), ``uri`` (``file:``
  URIs with ``mode=ro|rw|rwc|memory``) and ``autocommit`` (as Python 3.12's).
- Transactions, cursors, rows, types, adapters: see ``connection``, ``cursor`` and
  ``types`` in this package. The exceptions are PEP 249's, defined in
  ``toondb.errors`` (every toondb error is also one of them: a ConstraintError is
  an IntegrityError) and also attributes of each connection.

``paramstyle`` is "qmark"; ``:name`` parameters with a dict work as well, as in
sqlite3. ``threadsafety`` is 2: threads may share the module and connections (a
connection runs one statement at a time), not cursors. ``sqlite_version`` is the
SQLite release whose SQL toondb's dialect follows, for tools that choose SQL by it
(SQLAlchemy's SQLite dialect): 3.35, the first with RETURNING.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from toondb.dbapi.backend import Embedded, Remote
from toondb.dbapi.connection import LEGACY_TRANSACTION_CONTROL, Connection
from toondb.dbapi.cursor import Cursor
from toondb.dbapi.script import complete as complete_statement
from toondb.dbapi.types import (
    BINARY,
    DATETIME,
    NUMBER,
    PARSE_COLNAMES,
    PARSE_DECLTYPES,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    PrepareProtocol,
    Row,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
    adapters,
    converters,
    register_adapter,
    register_converter,
)
from toondb.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)

__all__ = [
    "apilevel",
    "threadsafety",
    "paramstyle",
    "sqlite_version",
    "sqlite_version_info",
    "connect",
    "connect_ipc",
    "complete_statement",
    "Connection",
    "Cursor",
    "Row",
    "LEGACY_TRANSACTION_CONTROL",
    "PARSE_DECLTYPES",
    "PARSE_COLNAMES",
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
    "PrepareProtocol",
    "adapters",
    "converters",
    "register_adapter",
    "register_converter",
    "Warning",
    "Error",
    "InterfaceError",
    "DatabaseError",
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
]

apilevel = "2.0"
threadsafety = 2
paramstyle = "qmark"
sqlite_version_info = (3, 35, 0)
sqlite_version = "3.35.0"


def connect(
    database: Any,
    timeout: float | None = None,
    detect_types: int = 0,
    isolation_level: str | None = "",
    check_same_thread: bool = False,
    factory: type[Connection] | None = None,
    cached_statements: int = 128,
    uri: bool = False,
    *,
    autocommit: bool | int = LEGACY_TRANSACTION_CONTROL,
    **config: Any,
) -> Connection:
    """A DB-API connection to the database at path database (a directory or a page
    file, created when missing unless config says create_if_missing=False), or over
    an open Database. config: Database.open's keys (sync_mode, read_only, ...)."""
    from toondb.database import Database

    options: dict[str, Any] = {
        "detect_types": detect_types,
        "isolation_level": isolation_level,
        "check_same_thread": check_same_thread,
        "autocommit": autocommit,
    }
    make = factory or Connection
    if isinstance(database, Database):
        if config or timeout is not None or uri:
            raise TypeError("an open Database takes no config, timeout or uri")
        return make(Embedded(database, owned=False), **options)
    path = os.fspath(database)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if uri:
        path, uri_config = _from_uri(path)
        config = {**uri_config, **config}
    if timeout is not None:
        config["lock_timeout"] = timeout
    temp_dir = None
    if path in ("", ":memory:"):
        temp_dir = path = tempfile.mkdtemp(prefix="toondb-memory-")
    try:
        db = Database.open(path, config)
    except BaseException:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return make(Embedded(db, owned=True, temp_dir=temp_dir), **options)


def connect_ipc(
    socket: Any,
    timeout: float | None = 30.0,
    detect_types: int = 0,
    isolation_level: str | None = "",
    check_same_thread: bool = False,
    factory: type[Connection] | None = None,
    *,
    autocommit: bool | int = LEGACY_TRANSACTION_CONTROL,
) -> Connection:
    """A DB-API connection to the toondb-server listening on the Unix socket path
    socket (``toondb-server --db PATH`` listens on ``PATH/toondb.sock``), or over an
    open IpcClient. timeout: seconds to wait for the server's replies."""
    from toondb.ipc.client import IpcClient

    make = factory or Connection
    if isinstance(socket, IpcClient):
        backend = Remote(socket, owned=False)
    else:
        backend = Remote(IpcClient(socket, timeout), owned=True)
    return make(
        backend,
        detect_types=detect_types,
        isolation_level=isolation_level,
        check_same_thread=check_same_thread,
        autocommit=autocommit,
    )


def _from_uri(text: str) -> tuple[str, dict[str, Any]]:
    """A file: URI as (path, config); mode=ro opens read-only, rw does not create,
    memory makes a temporary database."""
    if not text.startswith("file:"):
        return text, {}
    parts = urlsplit(text)
    path = unquote(parts.path)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    mode = query.get("mode", "rwc")
    if mode == "ro":
        return path, {"read_only": True, "create_if_missing": False}
    if mode == "rw":
        return path, {"create_if_missing": False}
    if mode == "rwc":
        return path, {}
    if mode == "memory":
        return ":memory:", {}
    raise OperationalError(f"no such access mode: {mode}")
