"""The full-text indexes of SQL full-text tables (``CREATE VIRTUAL TABLE ... USING
fts5``): the implementation of ``toondb.sql.fulltext.FullTextMethod`` over
``FullTextIndex``.

An SQL full-text table's index is the ``FullTextIndex`` named ``sql:<table id>``
(tree ``fts:sql:<table id>``). A transaction gets one handle per index
(``_fts_handles`` in its ``__dict__``), so the rows inserted by its statements
gather in that handle's accumulator; the first handle registers a before-commit
callable (``toondb.Transaction`` runs them before it commits) that flushes every
handle of the transaction, so no pending row is lost at commit and none is
flushed per statement.

Savepoints: opening one flushes every handle (``_on_savepoint``), so no pending
row predates it and every change to the index since is in the pages, under the
savepoint's undo records; ``ROLLBACK TO`` restores the pages and drops the
handles (``_on_rollback_to``): their pending rows and totals are of what was
undone, and the next statement reopens each index from the restored pages.
"""

from __future__ import annotations

from typing import Any

from toondb.text.config import parse_arguments
from toondb.text.index import FullTextIndex

__all__ = ["SQL_FULLTEXT", "SqlFullText"]


class SqlFullText:
    """toondb.sql.fulltext.FullTextMethod (see the module docstring)."""

    def parse(self, args: list[str], table: str) -> dict[str, Any]:
        config = parse_arguments(args, table)
        return {
            "columns": list(config.columns),
            "content": config.content,
            "content_rowid": config.content_rowid,
            "contentless_delete": config.contentless_delete,
        }

    def _handles(self, txn: Any) -> dict[str, FullTextIndex]:
        d = txn.__dict__
        handles: dict[str, FullTextIndex] | None = d.get("_fts_handles")
        if handles is not None:
            return handles
        ixs: dict[str, FullTextIndex] = {}
        d["_fts_handles"] = ixs

        def flush_all() -> None:
            for ix in ixs.values():
                ix.flush()

        d.setdefault("_before_commit", []).append(flush_all)
        d.setdefault("_on_savepoint", []).append(flush_all)
        d.setdefault("_on_rollback_to", []).append(ixs.clear)
        return ixs

    def create(self, txn: Any, name: str, args: list[str], table: str) -> None:
        handles = self._handles(txn)
        handles[name] = FullTextIndex.create(txn, name, parse_arguments(args, table))

    def drop(self, txn: Any, name: str) -> None:
        self._handles(txn).pop(name, None)
        FullTextIndex.drop(txn, name)

    def handle(self, txn: Any, name: str) -> FullTextIndex:
        handles = self._handles(txn)
        ix = handles.get(name)
        if ix is None:
            ix = handles[name] = FullTextIndex.open(txn, name)
        return ix


SQL_FULLTEXT = SqlFullText()
