"""``toondb import`` and ``toondb export``: a table's rows from and to CSV or JSON-lines
files."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from collections.abc import Iterator
from typing import IO, Any

from toondb.cli.common import EXIT_OK, open_db, snapshot
from toondb.cli.render import plain_value, render
from toondb.errors import CLIError

__all__ = ["cmd_import", "cmd_export", "IMPORT_DESCRIPTION", "EXPORT_DESCRIPTION"]

IMPORT_DESCRIPTION = (
    "Insert the rows of FILE into TABLE in one transaction (all or nothing). CSV: a header "
    "row of column names, then rows; an empty field of a number column is NULL. JSON "
    "lines: one object per line; nested values are stored as JSON text. A missing table "
    "is created, with column types inferred from the first 1000 rows."
)
EXPORT_DESCRIPTION = (
    "Write every row of TABLE to FILE: CSV with a header row (NULL as an empty field), or "
    "JSON lines (BLOBs as base64 text), or SQL (.sql): the table's CREATE TABLE, an INSERT "
    "per row and its CREATE INDEXes in one transaction, as `sqlite3 DB .dump` writes them; "
    "`toondb sql DB < FILE` or `sqlite3 DB < FILE` loads it."
)

IMPORT_BATCH = 1000


def _format_of(path: str, given: str | None) -> str:
    if given:
        return given
    low = path.lower()
    if low.endswith(".csv"):
        return "csv"
    if low.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if low.endswith(".sql"):
        return "sql"
    raise CLIError(f"cannot tell the format of {path!r} from its name; give --format csv|jsonl|sql")


def _open_text(path: str, mode: str) -> Any:
    if path == "-":
        stream = sys.stdin if mode == "r" else sys.stdout
        return contextlib.nullcontext(stream)
    try:
        return open(path, mode, newline="", encoding="utf-8")
    except OSError as e:
        raise CLIError(f"cannot open {path!r}: {e.strerror}") from None


def _records(f: IO[str], fmt: str, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a CSV file (a header row, then rows) or JSON lines."""
    if fmt == "csv":
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        if len(set(header)) != len(header) or not all(header):
            raise CLIError(f"{name}: the header row needs distinct, non-empty column names")
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise CLIError(
                    f"{name}:{reader.line_num}: {len(row)} fields where the header has {len(header)}"
                )
            yield reader.line_num, dict(zip(header, row))
        return
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise CLIError(f"{name}:{n}: not JSON ({e})") from None
        if not isinstance(rec, dict):
            raise CLIError(f"{name}:{n}: a line must hold a JSON object")
        yield n, rec


def _sql_value(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return v


def _infer_type(values: list[Any], fmt: str) -> str:
    seen = [v for v in values if v is not None and v != ""]
    if not seen:
        return "TEXT"
    if fmt == "jsonl":
        if all(isinstance(v, (bool, int)) for v in seen):
            return "INTEGER"
        if all(isinstance(v, (bool, int, float)) for v in seen):
            return "REAL"
        return "TEXT"
    for kind, conv in (("INTEGER", int), ("REAL", float)):
        try:
            for v in seen:
                conv(v)
        except ValueError:
            continue
        return kind
    return "TEXT"


def cmd_import(args: argparse.Namespace) -> int:
    from itertools import chain, islice

    from toondb.sql import schema  # imported when used: most commands need no SQL

    ident = schema.quote_identifier
    fmt = _format_of(args.file, args.format)
    name = "stdin" if args.file == "-" else args.file
    with _open_text(args.file, "r") as f, open_db(args.path, create=True) as db:
        records = _records(f, fmt, name)
        head = list(islice(records, IMPORT_BATCH))
        txn = db.begin_transaction(immediate=True)
        try:
            table = schema.table(txn, args.table)
            if table is None:
                if not head:
                    raise CLIError(f"{name} holds no rows to make table {args.table} from")
                cols: list[str] = []
                for _, rec in head:
                    cols += [k for k in rec if k not in cols]
                types = [_infer_type([rec.get(c) for _, rec in head], fmt) for c in cols]
                txn.execute_sql(
                    f"CREATE TABLE {ident(args.table)} ("
                    + ", ".join(f"{ident(c)} {t}" for c, t in zip(cols, types))
                    + ")"
                )
                table = schema.table(txn, args.table)
                assert table is not None  # made just now, in this transaction
            affinity = {c.name.lower(): c.affinity for c in table.columns}
            total = 0
            batch: list[list[Any]] = []
            batch_cols: tuple[str, ...] | None = None

            def flush() -> None:
                nonlocal batch
                if batch:
                    assert batch_cols is not None
                    sql = (
                        f"INSERT INTO {ident(table.name)} ("
                        + ", ".join(map(ident, batch_cols))
                        + ") VALUES ("
                        + ", ".join("?" * len(batch_cols))
                        + ")"
                    )
                    txn.executemany(sql, batch)
                    batch = []

            for line, rec in chain(head, records):
                cols_here = tuple(rec)
                for c in cols_here:
                    if c.lower() not in affinity:
                        raise CLIError(f"{name}:{line}: {c!r} is not a column of {table.name}")
                if cols_here != batch_cols or len(batch) >= IMPORT_BATCH:
                    flush()
                    batch_cols = cols_here
                values = []
                for c, v in rec.items():
                    if fmt == "csv" and v == "" and affinity[c.lower()] != "TEXT":
                        v = None  # an empty CSV field of a number column is NULL
                    values.append(_sql_value(v))
                batch.append(values)
                total += 1
            flush()
        except BaseException:
            txn.abort()
            raise
        txn.commit()
    sys.stdout.write(f"imported {total} rows into {args.table}\n")
    return EXIT_OK


def sql_literal(v: Any) -> str:
    """v as an SQL literal, as sqlite3's .dump writes it."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:
            return "NULL"
        if v in (float("inf"), float("-inf")):
            return "1e999" if v > 0 else "-1e999"
        return repr(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "X'" + bytes(v).hex().upper() + "'"
    return "'" + str(v).replace("'", "''") + "'"


def write_sql_dump(table: Any, result: Any, f: Any) -> None:
    """The dump of one table in the form of ``sqlite3 DB .dump``: its CREATE TABLE,
    an INSERT per row, its CREATE INDEXes, in one transaction (toondb's
    ``executescript``, ``toondb sql DB < FILE`` and sqlite3 load it back)."""
    from toondb.sql.schema import quote_identifier as ident

    f.write("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
    create = table.create_sql
    f.write(create[0] + "\n")
    name = ident(table.name)
    for row in result.rows:
        f.write(f"INSERT INTO {name} VALUES({','.join(sql_literal(v) for v in row)});\n")
    for stmt in create[1:]:
        f.write(stmt + "\n")
    f.write("COMMIT;\n")


def cmd_dump(args: argparse.Namespace) -> int:
    """The whole database as SQL on stdout, as ``sqlite3 DB .dump`` writes it
    (``toondb sql NEW < dump.sql`` or ``sqlite3 NEW < dump.sql`` loads it)."""
    with open_db(args.path, read_only=True) as db:
        out = sys.stdout
        for line in db.iterdump():
            out.write(line + "\n")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from toondb.sql.schema import quote_identifier as ident

    fmt = _format_of(args.file, args.format)
    with open_db(args.path, read_only=True) as db:
        result = db.execute_sql(f"SELECT * FROM {ident(args.table)}")
        if fmt == "sql":
            from toondb.sql import schema

            with snapshot(db) as txn:
                table = schema.table(txn, args.table)
            if table is None:
                raise CLIError(f"no such table: {args.table}")
    with _open_text(args.file, "w") as f:
        if fmt == "sql":
            write_sql_dump(table, result, f)
        elif fmt == "csv":
            render(result, "csv", f)
        else:
            for row in result:
                f.write(
                    json.dumps(
                        {k: plain_value(v) for k, v in row.items()},
                        separators=(",", ":"),  # compact, as --format json and sql -f json
                        ensure_ascii=False,
                    )
                    + "\n"
                )
    if args.file != "-":
        sys.stderr.write(f"exported {len(result)} rows of {args.table} to {args.file}\n")
    return EXIT_OK
