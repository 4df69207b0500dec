"""The dialect: SQLAlchemy's SQLite dialect (toondb speaks SQLite's SQL) over
toondb.dbapi, overriding only where toondb differs from SQLite:

- the driver: ``toondb.dbapi`` (``connect`` on a path, ``connect_ipc`` on a socket);
  a connection to a path gets pysqlite's Python ``regexp`` and ``floor`` SQL
  functions (so ``regexp_match`` and ``floor()`` work as on SQLite); one over a
  socket cannot run Python in the server and has neither;
- PRAGMAs take no schema prefix (``PRAGMA main.table_info(t)`` is SQLite's; toondb
  has one schema, ``main``, and no TEMP one), so reflection asks ``PRAGMA
  table_info(t)`` and answers nothing for another schema;
- isolation: every transaction is a snapshot with one writer at a time, which is
  SERIALIZABLE as SQLite's; ``READ UNCOMMITTED`` does not exist (no shared cache);
  ``AUTOCOMMIT`` is the driver's ``isolation_level = None``;
- the SQL features SQLAlchemy chooses by SQLite's version: toondb.dbapi reports the
  release whose SQL it follows (3.35: RETURNING, so SQLAlchemy's ORM fetches new
  primary keys and defaults with INSERT ... RETURNING, as on SQLite 3.35+).

Several connections to one path within a process share nothing but the file: each
opens the database (toondb's page file takes many handles, one writer at a time).
``toondb:///:memory:`` (or ``toondb://``) is a temporary database per connection,
so, as with SQLite's, the engine keeps one connection per thread
(SingletonThreadPool).
"""

from __future__ import annotations

import math
import re
from typing import Any

from sqlalchemy import exc, pool
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import IsolationLevel

from toondb.errors import NotSupportedError

__all__ = ["ToonDBDialect", "ToonDBIpcDialect"]

_ISOLATION_LEVELS: tuple[IsolationLevel, ...] = ("SERIALIZABLE", "AUTOCOMMIT")


def _config_value(text: str) -> Any:
    """A URL query value as a config value: an integer, a number, a boolean or text."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class ToonDBDialect(SQLiteDialect_pysqlite):
    """``toondb:///path``: toondb.dbapi.connect(path, **config from the URL query)."""

    name = "toondb"
    driver = "toondb"
    supports_statement_cache = True
    supports_savepoints = True  # Session.begin_nested(): SAVEPOINT / RELEASE / ROLLBACK TO

    @classmethod
    def import_dbapi(cls) -> Any:
        import toondb.dbapi

        return toondb.dbapi

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if cls._is_url_file_db(url):
            return pool.QueuePool
        return pool.SingletonThreadPool

    @classmethod
    def _is_url_file_db(cls, url: URL) -> bool:
        return bool(url.database) and url.database != ":memory:"

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        if url.username or url.password or url.host or url.port:
            raise exc.ArgumentError(
                f"invalid toondb URL: {url!r}: use toondb:///relative/path or "
                "toondb:////absolute/path"
            )
        config = {k: _config_value(v) for k, v in url.query.items() if isinstance(v, str)}
        return [url.database or ":memory:"], config

    def on_connect(self) -> Any:
        """pysqlite's SQL functions, regexp and floor, on a connection to a path
        (a server connection's create_function raises NotSupportedError: it has
        neither)."""

        def regexp(a: str, b: str | None) -> bool | None:
            return None if b is None else re.search(a, b) is not None

        def connect(conn: Any) -> None:
            try:
                conn.create_function("regexp", 2, regexp, deterministic=True)
                conn.create_function("floor", 1, math.floor, deterministic=True)
            except NotSupportedError:
                pass

        return connect

    # ------------------------------------------------------------ isolation

    def get_isolation_level_values(self, dbapi_connection: Any) -> list[IsolationLevel]:
        return list(_ISOLATION_LEVELS)

    def set_isolation_level(self, dbapi_connection: Any, level: str) -> None:
        if level not in _ISOLATION_LEVELS:
            raise exc.ArgumentError(
                f"Invalid value {level!r} for isolation_level. Valid isolation levels "
                f"for {self.name} are {', '.join(_ISOLATION_LEVELS)}"
            )
        dbapi_connection.isolation_level = None if level == "AUTOCOMMIT" else ""

    def get_isolation_level(self, dbapi_connection: Any) -> IsolationLevel:
        return "AUTOCOMMIT" if dbapi_connection.isolation_level is None else "SERIALIZABLE"

    # ------------------------------------------------------------ reflection

    def _get_table_pragma(
        self, connection: Any, pragma: str, table_name: str, schema: str | None = None
    ) -> list[Any]:
        """PRAGMA pragma(table_name): SQLite's asks main. then temp.; toondb has only main."""
        if schema not in (None, "main"):
            return []
        quoted = self.identifier_preparer.quote_identifier(table_name)
        cursor = connection.exec_driver_sql(f"PRAGMA {pragma}({quoted})")
        return [] if cursor._soft_closed else cursor.fetchall()

    def get_schema_names(self, connection: Any, **kw: Any) -> list[str]:
        return ["main"]

    def _format_schema(self, schema: str | None, table_name: str) -> str:
        # toondb has one schema and no schema-qualified names: main.x is x
        if schema not in (None, "main"):
            raise exc.NoSuchTableError(f"{schema}.{table_name}")
        return table_name

    def _sqlite_main_query(
        self, table: str, type_: str, schema: str | None, sqlite_include_internal: bool
    ) -> str:
        if schema not in (None, "main"):
            return "SELECT name FROM sqlite_schema WHERE 0"  # no other schema: nothing in it
        return super()._sqlite_main_query(table, type_, None, sqlite_include_internal)  # type: ignore[no-any-return]

    def _get_table_sql(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        # SQLAlchemy's private, unannotated helper (the SQLite dialect's reflection)
        return super()._get_table_sql(connection, table_name, None, **kw)  # type: ignore[no-untyped-call]


class ToonDBIpcDialect(ToonDBDialect):
    """``toondb+ipc:///path/to/toondb.sock``: toondb.dbapi.connect_ipc(socket) to a
    toondb-server (URL query: timeout, seconds to wait for a reply)."""

    driver = "ipc"
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.QueuePool

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        if not url.database:
            raise exc.ArgumentError("toondb+ipc needs the server's socket path")
        args, config = super().create_connect_args(url)
        return args, {k: v for k, v in config.items() if k == "timeout"}

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        return self.loaded_dbapi.connect_ipc(*cargs, **cparams)


try:  # Alembic's migration implementation for the dialect: SQLite's (batch mode)
    from alembic.ddl.sqlite import SQLiteImpl
except ImportError:  # pragma: no cover - Alembic is optional
    pass
else:

    class ToonDBImpl(SQLiteImpl):
        __dialect__ = "toondb"
