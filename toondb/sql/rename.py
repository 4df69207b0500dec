"""The schema's SQL text kept true when ALTER TABLE renames a table, or renames
or drops a column.

A table's CHECK constraints and generated columns, the foreign keys of every
table, and the views are kept as SQL text (or names) in the catalog. When a
column is renamed, SQLite rewrites every reference to it (alter.c); so does
toondb, here, on the tokens of each stored text: a token that names the column
is replaced by the new name, and nothing else in the text changes (comments,
spacing and the quoting of other names are kept). When a column is dropped,
what still names it is an error, as in SQLite. Either way every view is then
planned again: a view the change would break fails the ALTER TABLE, which then
changes nothing.

A renamed table is renamed where a text names it as a table: a qualifier
(``t.``) or a FROM item (after FROM, JOIN or a comma of a FROM list, or first
in a parenthesised join), not as a function or a column.

Which tokens name the column ``c`` of table ``t``:

1. a name token (an identifier, a quoted name, or a keyword used as a name)
   spelled ``c`` in any case, that is not a function's name (followed by
   ``(``), a qualifier (followed by ``.``), a collation (after ``COLLATE``) or
   an alias or type (after ``AS``);
2. after ``q.`` only where ``q`` names ``t`` in that text (``t`` itself, or an
   alias of it); without a qualifier only where no other source of the text may
   have a column ``c``. In a table's own CHECK or generated column every name
   is one of its columns. A view whose unqualified ``c`` could belong to another
   of its sources (another table with a column ``c``, a subquery, a CTE, a
   table-valued function, a result column named ``c``) is not guessed at: the
   rename is refused, naming the view, and the view can be written with
   ``t.c`` (or dropped and made again).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from toondb.errors import SchemaError, SQLError
from toondb.sql import ast
from toondb.sql.lexer import CODES, KEYWORDS, Tokens, tokenize

__all__ = ["rename_column", "rename_table", "drop_column_uses", "expression_names"]

_AS, _COLLATE = CODES["AS"], CODES["COLLATE"]
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEYWORDS = frozenset(KEYWORDS)


def _is_name(t: Tokens, i: int) -> bool:
    code = t[i]
    return code == "i" or code == "q" or (code >= "\u0100" and _BARE.match(t.vals[i]) is not None)


def _name_of(t: Tokens, i: int) -> str:
    return str(t.vals[i]).lower()


def _column_token(t: Tokens, i: int) -> bool:
    """Rule 1 of the module docstring: is token i a name read as a column (any
    qualifier)?"""
    if not _is_name(t, i):
        return False
    nxt = t[i + 1] if i + 1 < len(t) else ""
    prev = t[i - 1] if i else ""
    return nxt != "(" and nxt != "." and prev != _COLLATE and prev != _AS


def _refs(t: Tokens, column: str, qualifiers: set[str], bare: bool) -> tuple[list[int], bool]:
    """(the tokens of t that name column (rule 1 and 2 of the module
    docstring), whether an unqualified one was found)."""
    col = column.lower()
    out: list[int] = []
    found_bare = False
    for i in range(len(t)):
        if not _column_token(t, i) or _name_of(t, i) != col:
            continue
        if i and t[i - 1] == ".":
            if i >= 2 and _is_name(t, i - 2) and _name_of(t, i - 2) in qualifiers:
                out.append(i)
            continue
        found_bare = True
        if bare:
            out.append(i)
    return out, found_bare


def _spelled(new: str, quoted: bool) -> str:
    """new as a name token: bare where it can be, else double-quoted."""
    if not quoted and _BARE.match(new) and new.upper() not in _KEYWORDS:
        return new
    return '"' + new.replace('"', '""') + '"'


def _replace(text: str, t: Tokens, at: list[int], new: str) -> str:
    pieces, pos = [], 0
    for i in at:
        pieces.append(text[pos : t.starts[i]])
        pieces.append(_spelled(new, text[t.starts[i]] == '"'))
        pos = t.ends[i]
    pieces.append(text[pos:])
    return "".join(pieces)


def expression_names(text: str) -> set[str]:
    """The lower-cased names an expression text reads as columns (rule 1; any
    qualifier)."""
    t = tokenize(text)
    return {_name_of(t, i) for i in range(len(t)) if _column_token(t, i)}


def _rename_in_table_text(text: str, table: str, old: str, new: str) -> str:
    t = tokenize(text)
    at, _ = _refs(t, old, {table.lower()}, True)
    return _replace(text, t, at, new) if at else text


def _rewrite_table_texts(table: Any, rewrite: Callable[[str], str]) -> None:
    """table's CHECK constraints and generated columns, each text rewritten."""
    from toondb.sql.grammar import parse_expression

    table.checks = [(name, rewrite(text)) for name, text in table.checks]
    for c in table.columns:
        if c.generated_sql is not None:
            text = rewrite(c.generated_sql)
            if text != c.generated_sql:
                c.generated_sql, c.generated = text, parse_expression(text)


def _sources(stmt: ast.Node) -> tuple[list[ast.TableRef], bool, set[str]]:
    """The table references anywhere in stmt, whether it has a source whose
    columns toondb cannot list without planning (a subquery, a CTE, a
    table-valued function), and the aliases of its result columns."""
    refs: list[ast.TableRef] = []
    opaque = False
    aliases: set[str] = set()
    stack: list[Any] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.TableRef):
            refs.append(node)
        elif isinstance(node, (ast.SubqueryRef, ast.TableCall)):
            opaque = True
        elif isinstance(node, ast.Select) and node.ctes:
            opaque = True
        elif isinstance(node, ast.ResultColumn) and node.alias:
            aliases.add(node.alias.lower())
        if isinstance(node, ast.Node):
            stack.extend(getattr(node, a) for a in type(node).__slots__)
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return refs, opaque, aliases


def _rename_in_view(
    vdef: dict[str, Any], tables: dict[str, Any], table: str, old: str, new: str
) -> dict[str, Any] | None:
    """vdef with its references to table.old renamed, or None when it has none."""
    from toondb.sql.grammar import parse

    sql = vdef["sql"]
    refs, opaque, aliases = _sources(parse(sql)[0].statement)
    low = table.lower()
    mine = [r for r in refs if r.name.lower() == low]
    if not mine:
        return None
    qualifiers = {low} | {r.alias.lower() for r in mine if r.alias}
    col = old.lower()
    # an unqualified name may be another source's column, or an alias
    ambiguous = opaque or col in aliases or any(r.alias and r.alias.lower() == col for r in refs)
    for r in refs:
        if r.name.lower() != low:
            other = tables.get(r.name.lower())
            if other is None or col in other.col_index:  # a view, or a table with the name
                ambiguous = True
    t = tokenize(sql)
    at, found_bare = _refs(t, old, qualifiers, not ambiguous)
    if found_bare and ambiguous:
        raise SQLError(
            f"cannot rename column {old}: view {vdef['name']} names it without a "
            f"table and it may be another source's (write {table}.{old} in the view, "
            "or drop and create it again)"
        )
    if not at:
        return None
    return {**vdef, "sql": _replace(sql, t, at, new)}


def rename_column(
    tables: dict[str, Any], views: dict[str, Any], table: Any, old: str, new: str
) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """Rename column old of table (a TableInfo already in tables, to be saved)
    to new in what names it: table's CHECK constraints and generated columns,
    the foreign keys of every table that reference it, and the views. Returns
    the names of the other tables changed (their new TableInfos put in tables)
    and the views changed (name, definition)."""
    col = old.lower()
    _rewrite_table_texts(table, lambda text: _rename_in_table_text(text, table.name, old, new))
    changed: list[str] = []
    for other in list(tables.values()):
        touches = [
            f
            for f in other.fks
            if f["table"].lower() == table.name.lower()
            and any(r.lower() == col for r in (f.get("ref_columns") or []))
        ]
        if not touches:
            continue
        target = other if other is table else other.copy()
        for f in target.fks:
            if f["table"].lower() == table.name.lower() and f.get("ref_columns"):
                f["ref_columns"] = [new if r.lower() == col else r for r in f["ref_columns"]]
        if target is not table:
            target.refresh()
            tables[target.name.lower()] = target
            changed.append(target.name)
    new_views = []
    for vdef in views.values():
        nv = _rename_in_view(vdef, tables, table.name, old, new)
        if nv is not None:
            new_views.append((nv["name"], nv))
    return changed, new_views


def drop_column_uses(tables: dict[str, Any], table: Any, column: str) -> None:
    """Refuse (SQLError, as SQLite) to drop a column something else needs: a
    generated column's expression, a CHECK constraint that also reads other
    columns, a foreign key of the table or one that references it. A CHECK
    that reads only this column goes with it (it was the column's own)."""
    col = column.lower()
    for c in table.columns:
        if c.name.lower() != col and c.generated_sql is not None:
            if col in expression_names(c.generated_sql):
                raise SQLError(f"cannot drop column {column}: generated column {c.name} uses it")
    kept = []
    for name, text in table.checks:
        names = expression_names(text)
        if col in names:
            if (names - {col}) & {c.name.lower() for c in table.columns}:
                raise SQLError(f"cannot drop column {column}: a CHECK constraint uses it")
            continue
        kept.append((name, text))
    table.checks = kept
    for f in table.fks:
        if any(c.lower() == col for c in f["columns"]):
            raise SQLError(f"cannot drop column {column}: it is in a FOREIGN KEY")
    for other in tables.values():
        for f in other.fks:
            if f["table"].lower() == table.name.lower() and any(
                r.lower() == col for r in (f.get("ref_columns") or [])
            ):
                raise SchemaError(
                    f"cannot drop column {column}: a FOREIGN KEY of {other.name} references it"
                )


_FROM_ENDS = frozenset(
    CODES[w]
    for w in (
        "WHERE",
        "GROUP",
        "HAVING",
        "ORDER",
        "LIMIT",
        "WINDOW",
        "UNION",
        "INTERSECT",
        "EXCEPT",
    )
)
_FROM, _JOIN, _SELECT = CODES["FROM"], CODES["JOIN"], CODES["SELECT"]


def _table_tokens(t: Tokens, table: str) -> list[int]:
    """The tokens of t that name table: a qualifier (``table.``) or a FROM item
    (after FROM, JOIN, or a comma of a FROM list; also first inside a
    parenthesised join). FROM lists are followed by parenthesis level."""
    low = table.lower()
    out: list[int] = []
    in_from = [False]
    n = len(t)
    for i in range(n):
        code = t[i]
        prev = t[i - 1] if i else ""
        if code == "(":
            starts_join = (prev in (_FROM, _JOIN) or (prev == "," and in_from[-1])) and (
                t[i + 1] if i + 1 < n else ""
            ) != _SELECT
            in_from.append(starts_join)
            continue
        if code == ")":
            if len(in_from) > 1:
                in_from.pop()
            continue
        if code == _FROM:
            in_from[-1] = True
        elif code in _FROM_ENDS:
            in_from[-1] = False
        if not _is_name(t, i) or _name_of(t, i) != low:
            continue
        nxt = t[i + 1] if i + 1 < n else ""
        if nxt == "(":
            continue  # a function of that name
        if nxt == "." or prev in (_FROM, _JOIN) or (prev in (",", "(") and in_from[-1]):
            out.append(i)
    return out


def rename_table(
    tables: dict[str, Any], views: dict[str, Any], table: Any, old: str
) -> list[tuple[str, dict[str, Any]]]:
    """After table (a TableInfo, renamed from old) took its new name: its CHECK
    constraints and generated columns qualify columns by the new name, and the
    views that read it name it so. Returns the views changed (name,
    definition)."""

    def renamed(text: str) -> str:
        t = tokenize(text)
        at = _table_tokens(t, old)
        return _replace(text, t, at, table.name) if at else text

    _rewrite_table_texts(table, renamed)
    out = []
    for vdef in views.values():
        sql = renamed(vdef["sql"])
        if sql != vdef["sql"]:
            out.append((vdef["name"], {**vdef, "sql": sql}))
    return out
