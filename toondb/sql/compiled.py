"""What every compiled statement is: ``Compiled`` (parameters bound, then run in a
transaction) and the ``Outcome`` it produces.

A ``Compiled`` is built once per (``Parsed.key``: the SQL text or its template,
statement index, schema cookie, foreign-keys setting) and cached per thread
(engine.compiled_for); each run binds new parameters into the same slots
(``P``) its expressions read, the values of the statement's literals after them
(``slots``, statements.py), and resets its ``Ctx`` (``start``).
"""

from __future__ import annotations

from typing import Any

from toondb.errors import SQLError
from toondb.sql import types as T
from toondb.sql.executor import Ctx

_PLAIN = {int, float, str, bytes, type(None)}  # parameter types bound as they are


class Outcome:
    """What a statement produced: rows (SELECT) or a row count. Never changed
    once made: the one-row paths return the shared NO_ROW / ONE_ROW."""

    __slots__ = ("columns", "rows", "rowcount", "lastrowid", "schema_changed")

    def __init__(
        self,
        columns: list[str] | None = None,
        rows: list[tuple[Any, ...]] | None = None,
        rowcount: int = -1,
        lastrowid: int | None = None,
    ) -> None:
        self.columns = columns
        self.rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid


NO_ROW = Outcome(None, None, 0)  # a write that reached no row
ONE_ROW = Outcome(None, None, 1)  # a write of one row (dml.py's by-rowid paths)


class Compiled:
    """A statement ready to run; run(txn, params, undo, engine_state) -> Outcome."""

    read_only = False
    # may read the clock ('now', CURRENT_*): session.py pins one value per statement;
    # False only where the compiled statement proves it cannot (dml.py: by rowid)
    reads_clock = True

    def __init__(self, nparams: int, names: dict[str, int], nslots: int = 0) -> None:
        self.nparams = nparams - nslots  # the statement's own parameters
        self.names = names
        self.P: list[Any] = [None] * nparams
        self.ctx = Ctx()
        # the values of the statement's literals, bound after its parameters
        # (statements.py), set before each run
        self.slots: tuple[Any, ...] = ()

    def bind(self, params: Any) -> None:
        if self.slots:
            self.P[self.nparams :] = self.slots
        P = self.P
        n = self.nparams
        if params is None:
            if n:
                raise SQLError(
                    f"Incorrect number of bindings supplied. The current statement uses {n}, and there are 0 supplied."
                )
            return
        check = T.check_value
        if isinstance(params, dict):
            for name, slot in self.names.items():
                if name not in params:
                    raise SQLError(f"You did not supply a value for binding parameter :{name}.")
                P[slot] = check(params[name])
            if len(self.names) < n:
                raise SQLError("positional parameters ('?') need a sequence of values, not a dict")
            return
        tp = type(params)
        if (tp is tuple or tp is list) and len(params) == n:
            P[:n] = params
            for v in params:
                if type(v) not in _PLAIN or (type(v) is int and not T.I64_MIN <= v <= T.I64_MAX):
                    break
            else:
                return
        if isinstance(params, (str, bytes)) or not hasattr(params, "__len__"):
            raise SQLError("parameters must be a sequence (for ?) or a dict (for :name)")
        if len(params) != n:
            raise SQLError(
                f"Incorrect number of bindings supplied. The current statement uses {n}, and there are {len(params)} supplied."
            )
        for i in range(n):
            P[i] = check(params[i])

    def start(self, txn: Any, undo: list[Any] | None) -> Ctx:
        ctx = self.ctx
        ctx.txn = txn
        ctx.epoch += 1
        ctx.undo = undo
        ctx.trees = {}
        ctx.vectors = None  # a failed run's pending index changes are dropped (sql/hnsw.py)
        ctx.fulltext = None
        return ctx

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        raise NotImplementedError

    def explain(self) -> list[str]:
        return [type(self).__name__.upper()]
