"""PRAGMAs and the maintenance statements VACUUM and ANALYZE, answered as SQLite's
are, mapped onto toondb's engine (docs/sql.md, "PRAGMAs", says what each does here).

Where a PRAGMA's answer lives:

- user_version, application_id: 32-bit integers in the SQL catalog's tree
  (catalog.py: keys b"user_version" / b"application_id", decimal text; absent
  is 0), written in the statement's transaction (undone with it).
- synchronous, busy_timeout, page_size, page_count, freelist_count,
  wal_checkpoint, integrity_check, quick_check, VACUUM: the Database object
  (its sync mode, its write-lock timeout, stats(), checkpoint(), check()).
- journal_mode: always "wal" (copy-on-write MVCC: readers never block the writer).
- cache_size, temp_store, mmap_size: settings of the session (session._State.settings),
  recorded and returned; they change nothing in the engine. foreign_keys and
  hnsw_ef_search: the session's settings that statements read.
- table_info and the other schema PRAGMAs: the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from toondb.errors import CorruptionError, NotSupportedError, SQLError
from toondb.sql import ast, hnsw
from toondb.sql import catalog as C
from toondb.sql.compiled import Compiled, Outcome
from toondb.sql.describe import columns_in

# ---------------------------------------------------------------- values as SQLite reads them

_INT = re.compile(r"[-+]?[0-9]+")


def sqlite_int32(value: Any) -> int:
    """value read as SQLite's sqlite3Atoi reads a PRAGMA's argument: the leading
    integer of its text (no blanks skipped), 0 when there is none or it does not
    fit 32 signed bits ('12abc' is 12, 3.9 is 3, 2**31 is 0)."""
    m = _INT.match(_text(value))
    if m is None:
        return 0
    n = int(m.group())
    return n if -(2**31) <= n < 2**31 else 0


def _int64(value: Any) -> int:
    m = _INT.match(_text(value))
    if m is None:
        return 0
    n = int(m.group())
    return n if -(2**63) <= n < 2**63 else 0


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        # a literal too long for an integer arrives as a REAL: its integer part
        # (3.9 is 3, 1e20 does not fit and is read as no number)
        return str(int(value)) if abs(value) < 2**63 else ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# SQLite's getSafetyLevel: the words it knows, and a number's value as written
_SAFETY_WORDS = {"on": 1, "no": 0, "off": 0, "false": 0, "yes": 1, "true": 1, "extra": 3, "full": 2}
SYNC_LEVELS = {"off": 0, "normal": 1, "full": 2}  # toondb's sync modes as PRAGMA synchronous


def synchronous_level(value: Any) -> int:
    """The level 0..7 SQLite's PRAGMA synchronous = value sets (0 OFF, 1 NORMAL,
    2 FULL, 3 EXTRA): a number as written, a known word, else NORMAL."""
    text = _text(value)
    if text[:1].isdigit():
        level = int(_INT.match(text).group()) & 0xFF  # type: ignore[union-attr]
    else:
        level = _SAFETY_WORDS.get(text.lower(), 1)
    level = (level + 1) & 7
    return (level or 1) - 1


def _temp_store(value: Any) -> int:
    text = _text(value)
    if text[:1].isdigit():
        n = sqlite_int32(text)
        return n if 0 <= n <= 2 else 0
    return {"file": 1, "memory": 2}.get(text.lower(), 0)


# ---------------------------------------------------------------- the answers

Answer = Callable[[Any, Any, "list[Any] | None", Any], Outcome]
NONE = Outcome(rowcount=0)


def _stored_int(key: bytes) -> Answer:
    """user_version / application_id: a 32-bit integer in the catalog's tree."""
    column = key.decode()

    def answer(txn: Any, value: Any, undo: list[Any] | None, state: Any) -> Outcome:
        if value is None:
            return Outcome([column], [(stored_int(txn, key),)])
        tree = txn.tree(C.CATALOG_TREE, create=True)
        old = tree.get(key)
        if undo is not None:
            undo.append((tree, key, old))
        tree.put(key, str(sqlite_int32(value)).encode())
        return NONE

    return answer


def stored_int(txn: Any, key: bytes) -> int:
    """The integer under key in the catalog's tree of txn's snapshot (absent: 0)."""
    if not txn.has_tree(C.CATALOG_TREE):
        return 0
    raw = txn.tree(C.CATALOG_TREE).get(key)
    return int(raw) if raw else 0


def _journal_mode(txn: Any, value: Any, undo: list[Any] | None, state: Any) -> Outcome:
    # no rollback journal to choose: copy-on-write MVCC is what WAL gives (docs/sql.md)
    return Outcome(["journal_mode"], [("wal",)])


def _synchronous(txn: Any, value: Any, undo: list[Any] | None, state: Any) -> Outcome:
    db = txn.database
    mode = db.sync_mode
    if value is None:
        return Outcome(["synchronous"], [(SYNC_LEVELS[mode],)])
    level = synchronous_level(value)
    wanted = "off" if level == 0 else "normal" if level == 1 else "full"
    if wanted != mode:
        raise NotSupportedError(
            f"PRAGMA synchronous cannot change the sync mode of an open database "
            f"(it is {mode!r}): open it with config={{'sync_mode': {wanted!r}}} instead"
        )
    return NONE


def _busy_timeout(txn: Any, value: Any, undo: list[Any] | None, state: Any) -> Outcome:
    db = txn.database
    if value is not None:
        ms = max(0, sqlite_int32(value))
        db._set_lock_timeout(ms / 1000.0)
        db.config["lock_timeout"] = ms / 1000.0
    return Outcome(["timeout"], [(round(db.config["lock_timeout"] * 1000),)])


def _check(name: str, deep: bool) -> Answer:
    """integrity_check / quick_check [(N)]: 'ok', or a row per problem (at most N)."""

    def answer(txn: Any, value: Any, undo: list[Any] | None, state: Any) -> Outcome:
        limit = value if type(value) is int and value > 0 else 100
        try:
            txn.database.check(deep=deep)
        except CorruptionError as e:
            problems = getattr(e, "problems", None) or [str(e)]
            return Outcome([name], [(str(p),) for p in problems[:limit]])
        return Outcome([name], [("ok",)])

    return answer


def _setting(name: str, default: int, parse: Callable[[Any], int]) -> Answer:
    """A setting of the session, recorded and returned (cache_size, temp_store, mmap_size)."""

    def answer(txn: Any, value: Any, undo: list[Any] | None, state: Any) -> Outcome:
        if value is None:
            return Outcome([name], [(state.settings.get(name, default),)])
        state.settings[name] = parse(value)
        if name == "mmap_size":  # as SQLite: setting it answers the size in force
            return Outcome([name], [(state.settings[name],)])
        return NONE

    return answer


def _stat(name: str, key: str) -> Answer:
    def answer(txn: Any, value: Any, undo: list[Any] | None, state: Any) -> Outcome:
        if name == "page_size" and value is not None:
            return NONE  # as SQLite: no effect on a database that exists
        return Outcome([name], [(txn.database.stats()[key],)])

    return answer


def _wal_checkpoint(txn: Any, value: Any, undo: list[Any] | None, state: Any) -> Outcome:
    if not txn.read_only:
        raise SQLError("database table is locked")  # as SQLite, inside a transaction
    txn.database.checkpoint()
    return Outcome(["busy", "log", "checkpointed"], [(0, 0, 0)])


def _optimize(txn: Any, value: Any, undo: list[Any] | None, state: Any) -> Outcome:
    return Outcome(["optimize"], [])


def _table_list(txn: Any, value: Any, undo: list[Any] | None, state: Any) -> Outcome:
    """(schema, name, type, ncol, wr, strict) as SQLite 3.37+: tables, views, then
    sqlite_schema (toondb has no temp schema)."""
    cat = C.load(txn)
    rows: list[tuple[Any, ...]] = []
    for t in sorted(cat.tables.values(), key=lambda t: t.name.lower()):
        kind = "virtual" if t.fulltext is not None else "table"
        rows.append(("main", t.name, kind, len(t.columns), 0, 1 if t.strict else 0))
    view_columns = columns_in(cat)
    for key in sorted(cat.views):
        vname = cat.views[key].get("name", key)
        rows.append(("main", vname, "view", len(view_columns(vname) or []), 0, 0))
    rows.append(("main", "sqlite_schema", "table", 5, 0, 0))
    if value is not None:
        wanted = _text(value).lower()
        rows = [r for r in rows if r[1].lower() == wanted]
    return Outcome(["schema", "name", "type", "ncol", "wr", "strict"], rows)


_ANSWERS: dict[str, Answer] = {
    "user_version": _stored_int(b"user_version"),
    "application_id": _stored_int(b"application_id"),
    "journal_mode": _journal_mode,
    "synchronous": _synchronous,
    "busy_timeout": _busy_timeout,
    "integrity_check": _check("integrity_check", True),
    "quick_check": _check("quick_check", False),
    "optimize": _optimize,
    "cache_size": _setting("cache_size", -2000, sqlite_int32),
    "temp_store": _setting("temp_store", 0, _temp_store),
    "mmap_size": _setting("mmap_size", 0, lambda v: max(0, _int64(v))),
    "page_size": _stat("page_size", "page_size"),
    "page_count": _stat("page_count", "pages"),
    "freelist_count": _stat("freelist_count", "pages_free"),
    "wal_checkpoint": _wal_checkpoint,
    "table_list": _table_list,
}


# ---------------------------------------------------------------- PRAGMA


class CompiledPragma(Compiled):
    read_only = True

    def __init__(self, parsed: ast.Parsed, stmt: ast.Pragma) -> None:
        super().__init__(parsed.nparams, parsed.names, parsed.nslots)
        self.stmt = stmt
        self.read_only = stmt.value is None or stmt.name not in ast.WRITING_PRAGMAS

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        s = self.stmt
        name = s.name
        answer = _ANSWERS.get(name)
        if answer is not None:
            return answer(txn, s.value, undo, state)
        if name == "foreign_keys":
            if s.value is None:
                return Outcome(["foreign_keys"], [(1 if state.foreign_keys else 0,)])
            v = s.value
            on = str(v).upper() in ("1", "ON", "TRUE", "YES")
            state.foreign_keys = on
            return Outcome(rowcount=0)
        if name == "hnsw_ef_search":
            if s.value is None:
                return Outcome(["hnsw_ef_search"], [(state.hnsw_ef_search,)])
            v = s.value
            if type(v) is not int or not 1 <= v <= hnsw.MAX_EF_SEARCH:
                raise SQLError(f"hnsw_ef_search must be an integer in 1..{hnsw.MAX_EF_SEARCH}")
            state.hnsw_ef_search = v
            return Outcome(rowcount=0)
        if name in (
            "table_info",
            "table_xinfo",
            "index_list",
            "index_info",
            "index_xinfo",
            "foreign_key_list",
        ):
            cat = C.load(txn)
            arg = str(s.value) if s.value is not None else ""
            t: C.TableInfo | None
            rows: list[tuple[Any, ...]]
            if name == "index_info":
                hit = cat.find_index(arg)
                if hit is None:
                    return Outcome(["seqno", "cid", "name"], [])
                t, ix = hit
                cols = ix.col_idx if isinstance(ix.col_idx, list) else [ix.col_idx]
                return Outcome(
                    ["seqno", "cid", "name"],
                    [(i, ci, t.columns[ci].name) for i, ci in enumerate(cols)],
                )
            if name == "index_xinfo":
                return _index_xinfo(cat, arg)
            t = cat.tables.get(arg.lower())
            # table_xinfo adds SQLite's "hidden" (generated columns; 0 for a view's)
            extra = (0,) if name == "table_xinfo" else ()
            names = ["cid", "name", "type", "notnull", "dflt_value", "pk"]
            names += ["hidden"] if extra else []
            if t is None and name in ("table_info", "table_xinfo") and arg.lower() in cat.views:
                # a view's columns, with their declared types where they read a column
                view_cols = columns_in(cat)(arg) or []
                rows = [
                    (i, n, decl or "", 0, None, 0) + extra for i, (n, decl) in enumerate(view_cols)
                ]
                return Outcome(names, rows)
            if t is None:
                return Outcome(["cid"], [])
            if name in ("table_info", "table_xinfo"):
                rows = []
                for c in t.columns:
                    # hidden: 2 a VIRTUAL generated column, 3 a STORED one (table_info
                    # leaves them out, as SQLite)
                    hidden = 0 if c.generated_sql is None else 3 if c.stored else 2
                    if hidden and not extra:
                        continue
                    pkpos = [p.lower() for p in t.pk].index(c.name.lower()) + 1 if c.pk else 0
                    rows.append(
                        (len(rows), c.name, c.type_name, 1 if c.not_null else 0, c.default_sql)
                        + (pkpos,)
                        + ((hidden,) if extra else ())
                    )
                return Outcome(names, rows)
            if name == "index_list":
                # as SQLite's: the most recently made index first
                indexes: tuple[C.IndexInfo | C.VectorIndexInfo, ...] = (
                    *t.indexes,
                    *t.vector_indexes,
                )
                rows = [
                    (i, ix.name, 1 if ix.unique else 0, ix.origin, 0)
                    for i, ix in enumerate(reversed(indexes))
                ]
                return Outcome(["seq", "name", "unique", "origin", "partial"], rows)
            rows = []
            # as SQLite's: the last declared foreign key first, numbered 0
            for i, f in enumerate(reversed(t.fks)):
                for j, c in enumerate(f["columns"]):
                    ref = (f["ref_columns"] or [None] * len(f["columns"]))[j]
                    rows.append((i, j, f["table"], c, ref, f["on_update"], f["on_delete"], "NONE"))
            return Outcome(
                ["id", "seq", "table", "from", "to", "on_update", "on_delete", "match"], rows
            )
        raise SQLError(f"unsupported PRAGMA {name}")


def _index_xinfo(cat: C.Catalog, name: str) -> Outcome:
    """PRAGMA index_xinfo(i) as SQLite's: each key column with its collation
    (key 1), then the rowid every entry carries (cid -1, key 0). Every index
    is ascending here (docs/sql.md)."""
    names = ["seqno", "cid", "name", "desc", "coll", "key"]
    hit = cat.find_index(name)
    if hit is None:
        return Outcome(names, [])
    t, ix = hit
    if isinstance(ix, C.VectorIndexInfo):
        colls = ["BINARY"]
        cols = [ix.col_idx]
    else:
        colls, cols = ix.collations, ix.col_idx
    rows: list[tuple[Any, ...]] = [
        (i, ci, t.columns[ci].name, 0, coll, 1) for i, (ci, coll) in enumerate(zip(cols, colls))
    ]
    rows.append((len(rows), -1, None, 0, "BINARY", 0))
    return Outcome(names, rows)


# ---------------------------------------------------------------- VACUUM, ANALYZE


class CompiledVacuum(Compiled):
    """VACUUM: a sync point (Database.checkpoint). Freed pages are reused by later
    writes; shrinking the file is ``toondb compact`` with the database closed
    (storage/maintenance.py), which an open handle cannot do. The session refuses
    it inside a transaction, as SQLite."""

    read_only = True

    def __init__(self, parsed: ast.Parsed, stmt: ast.Vacuum) -> None:
        super().__init__(parsed.nparams, parsed.names, parsed.nslots)
        if stmt.schema is not None and stmt.schema.lower() != "main":
            raise SQLError(f"unknown database {stmt.schema}")

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        if not txn.read_only:
            raise SQLError("cannot VACUUM from within a transaction")
        txn.database.checkpoint()
        return NONE


class CompiledAnalyze(Compiled):
    """ANALYZE [name]: the planner counts a table's rows when it plans (and plans
    again when a count changes size class): nothing to gather. The name must be
    a schema, a table or an index, as SQLite."""

    read_only = True

    def __init__(self, parsed: ast.Parsed, stmt: ast.Analyze, catalog: C.Catalog) -> None:
        super().__init__(parsed.nparams, parsed.names, parsed.nslots)
        name = stmt.name
        if name is not None and name.lower() not in ("main", "temp"):
            if name.lower() not in catalog.tables and catalog.find_index(name) is None:
                raise SQLError(f"no such table: {name}")

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        return NONE
