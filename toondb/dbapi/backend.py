"""What a DB-API connection runs its statements on: an open ``Database`` (embedded)
or an ``IpcClient`` (the server). Both have the same SQL face: ``execute_sql`` /
``executemany`` run a statement in its own transaction, ``begin_transaction``
gives a transaction with the same two methods plus ``commit`` / ``abort``. What
differs is kept here: who closes the handle, and how the declared types of a
result's columns are found (the catalog in process; ``PRAGMA table_info`` over
the socket, the statement parsed on the client).
"""

from __future__ import annotations

import functools
import shutil
from types import ModuleType
from typing import Any, Callable

__all__ = ["Embedded", "Remote"]


@functools.cache
def _describe() -> ModuleType:
    from toondb.sql import describe

    return describe


class Embedded:
    """A Database in this process; owned ones (opened by connect()) are closed with
    the connection, and a temporary one (":memory:") is deleted then."""

    remote = False

    def __init__(self, db: Any, owned: bool, temp_dir: str | None = None) -> None:
        self.session = db
        self.owned = owned
        self.temp_dir = temp_dir

    def declared_types(self, sql: str, txn: Any) -> list[str | None] | None:
        declared_types_in: Callable[[Any, str], list[str | None] | None]
        declared_types_in = _describe().declared_types_in
        if txn is not None:
            return declared_types_in(txn, sql)
        snapshot = self.session.begin_transaction(read_only=True)
        try:
            return declared_types_in(snapshot, sql)
        finally:
            snapshot.abort()

    def schema_changed(self) -> None:
        pass  # declared types are read from the catalog each time: nothing cached

    def close(self) -> None:
        if self.owned:
            self.session.close()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


class Remote:
    """An IpcClient; owned ones (connected by connect_ipc(path)) are closed with the
    connection. Declared types are cached by statement text until this connection
    changes the schema (another client's change is not seen until then)."""

    remote = True

    def __init__(self, client: Any, owned: bool) -> None:
        self.session = client
        self.owned = owned
        self._types: dict[str, list[str | None] | None] = {}

    def declared_types(self, sql: str, txn: Any) -> list[str | None] | None:
        if sql in self._types:
            return self._types[sql]
        from toondb.sql import grammar
        from toondb.sql.describe import declared_types

        runner = txn if txn is not None else self.session

        def columns_of(name: str) -> list[tuple[str, str | None]] | None:
            quoted = '"' + name.replace('"', '""') + '"'
            rows = runner.execute_sql(f"PRAGMA table_info({quoted})").rows
            return [(row[1], row[2]) for row in rows] or None

        parsed = grammar.parse(sql)
        types = declared_types(parsed[-1].statement, columns_of) if parsed else []
        if len(self._types) > 256:
            self._types.clear()
        self._types[sql] = types
        return types

    def schema_changed(self) -> None:
        self._types.clear()

    def close(self) -> None:
        if self.owned:
            self.session.close()
