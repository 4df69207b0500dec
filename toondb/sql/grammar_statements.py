"""The SQL grammar's statements (pyparsing): SELECT (with WITH and compound
selects), INSERT, UPDATE, DELETE, CREATE / DROP / ALTER, BEGIN / COMMIT /
ROLLBACK, PRAGMA and EXPLAIN, built on the tokens and expressions of
grammar_expressions.py. ``sql_script`` is a whole script: statements separated
by ';'. The dialect is SQLite's, minus what docs/sql.md lists as left out.
"""

from __future__ import annotations

from typing import Any

import pyparsing as pp

from toondb.sql import ast
from toondb.sql.grammar_expressions import (
    COMMA,
    DOT,
    KS,
    LPAR,
    RPAR,
    K,
    any_name,
    collation_name,
    expr,
    ident,
    int_or_real,
    literal,
    select_stmt,
    string_literal,
    sup,
    time_literal,
    type_name,
)


def _word(x: Any) -> str:
    """The text of an optional keyword result (a str, or a ParseResults holding one)."""
    if isinstance(x, str):
        return x.upper()
    return str(x[0]).upper() if len(x) else ""


# ------------------------------------------------------------------ SELECT

alias = pp.Optional(K("AS")).suppress() + ident
result_column = (
    (ident + DOT + pp.Literal("*")).set_parse_action(
        lambda t: ast.ResultColumn(ast.Star(t[0]), None, t[0] + ".*")
    )
    | pp.Literal("*").set_parse_action(lambda: ast.ResultColumn(ast.Star(), None, "*"))
    | (
        pp.Located(expr).set_parse_action(lambda t: [(t[0], t[1][0], t[2])])
        + pp.Optional(alias)("alias")
    ).set_parse_action(
        lambda s, loc, t: ast.ResultColumn(
            t[0][1], t.alias[0] if t.alias else None, s[t[0][0] : t[0][2]].strip()
        )
    )
).set_name("result column")

table_source = pp.Forward().set_name("table")
_index_hint = pp.Optional(KS("NOT INDEXED") | (K("INDEXED") + K("BY") + any_name)).suppress()
table_name_ref = (
    ident + pp.Optional(DOT + ident) + pp.Optional(alias)("alias") + _index_hint
).set_name("table name")


def _table_ref(t: pp.ParseResults) -> ast.TableRef:
    names = [x for x in t if not isinstance(x, pp.ParseResults)]
    al = t.alias[0] if t.alias else None
    if al is not None:
        names = names[:-1]
    return ast.TableRef(names[-1], al)


table_name_ref.set_parse_action(_table_ref)
# name(args) [alias]: a table-valued call (a full-text table's search, t('query'))
table_call = (
    ident("name")
    + LPAR
    + pp.Group(pp.Optional(pp.DelimitedList(expr)))("args")
    + RPAR
    + pp.Optional(alias)("alias")
).set_name("table-valued call")
table_call.set_parse_action(
    lambda t: ast.TableCall(t.name, list(t.args), t.alias[0] if t.alias else None)
)
join_source = pp.Forward()
table_source <<= (
    (LPAR + select_stmt + RPAR + pp.Optional(alias)).set_parse_action(
        lambda t: ast.SubqueryRef(t[0], t[1] if len(t) > 1 else None)
    )
    | (LPAR + join_source + RPAR)
    | table_call
    | table_name_ref
)
join_op = (
    COMMA.copy().set_parse_action(lambda: "CROSS")
    | (pp.Optional(K("NATURAL")) + K("CROSS") + K("JOIN")).set_parse_action(lambda: "CROSS")
    | (K("LEFT") + pp.Optional(K("OUTER")) + K("JOIN")).set_parse_action(lambda: "LEFT")
    | (pp.Optional(K("INNER")) + K("JOIN")).set_parse_action(lambda: "INNER")
).set_name("join")
join_constraint = pp.Optional(
    (K("ON").suppress() + expr).set_parse_action(lambda t: ("on", t[0]))
    | (K("USING").suppress() + LPAR + pp.Group(pp.DelimitedList(ident)) + RPAR).set_parse_action(
        lambda t: ("using", list(t[0]))
    )
)


def _joins(t: pp.ParseResults) -> ast.Node:
    node = t[0]
    i = 1
    while i < len(t):
        kind, right = t[i], t[i + 1]
        i += 2
        on = using = None
        if i < len(t) and isinstance(t[i], tuple):
            if t[i][0] == "on":
                on = t[i][1]
            else:
                using = t[i][1]
            i += 1
        node = ast.Join(kind, node, right, on, using)
    return node


join_source <<= (
    table_source + pp.ZeroOrMore(join_op + table_source + join_constraint)
).set_parse_action(_joins)

ordering_term = (
    expr
    + pp.Optional(K("ASC") | K("DESC"))("dir")
    + pp.Optional(K("NULLS").suppress() + (K("FIRST") | K("LAST")))("nulls")
).set_name("ORDER BY term")
ordering_term.set_parse_action(
    lambda t: ast.OrderItem(
        t[0],
        _word(t.dir) == "DESC",
        None if not t.nulls else _word(t.nulls) == "FIRST",
    )
)

values_core = (
    K("VALUES").suppress() + pp.DelimitedList(pp.Group(LPAR + pp.DelimitedList(expr) + RPAR))
).set_name("VALUES")
values_core.set_parse_action(
    lambda t: ast.SelectCore(False, [], None, None, [], None, [list(r) for r in t])
)

select_core = (
    K("SELECT").suppress()
    + pp.Optional(K("DISTINCT") | K("ALL"))("quant")
    + pp.Group(pp.DelimitedList(result_column))("cols")
    + pp.Optional(K("FROM").suppress() + join_source)("from_")
    + pp.Optional(K("WHERE").suppress() + expr)("where")
    + pp.Optional(K("GROUP").suppress() + K("BY").suppress() + pp.Group(pp.DelimitedList(expr)))(
        "group"
    )
    + pp.Optional(K("HAVING").suppress() + expr)("having")
).set_name("SELECT")
select_core.set_parse_action(
    lambda t: ast.SelectCore(
        _word(t.quant) == "DISTINCT",
        list(t.cols),
        t.from_[0] if t.from_ else None,
        t.where[0] if t.where else None,
        list(t.group[0]) if t.group else [],
        t.having[0] if t.having else None,
    )
)
compound_op = (
    (KS("UNION ALL") | K("UNION") | K("INTERSECT") | K("EXCEPT"))
    .set_parse_action(lambda t: t[0].upper())
    .set_name("UNION/INTERSECT/EXCEPT")
)
any_core = select_core | values_core
limit_clause = (
    K("LIMIT").suppress()
    + expr
    + pp.Optional((K("OFFSET").suppress() | COMMA.copy().set_parse_action(lambda: ",")) + expr)
).set_name("LIMIT")


def _limit(t: pp.ParseResults) -> Any:
    if len(t) == 1:
        return [("limit", t[0], None)]
    if t[1] == ",":  # LIMIT offset, count
        return [("limit", t[2], t[0])]
    return [("limit", t[0], t[1])]


limit_clause.set_parse_action(_limit)

cte_def = (
    any_name("name")
    + pp.Optional(LPAR + pp.Group(pp.DelimitedList(any_name)) + RPAR)("cols")
    + K("AS").suppress()
    + pp.Optional(pp.Optional(K("NOT")) + K("MATERIALIZED")).suppress()
    + LPAR
    + select_stmt("body")
    + RPAR
).set_name("common table expression")
cte_def.set_parse_action(lambda t: ast.Cte(t.name, list(t.cols[0]) if t.cols else None, t.body))
with_clause = pp.Group(
    K("WITH").suppress()
    + pp.Optional(K("RECURSIVE")).suppress()  # SQLite's WITH is recursive either way
    + pp.Group(pp.DelimitedList(cte_def))("ctes")
)

select_stmt <<= (
    pp.Optional(with_clause)("with")
    + any_core
    + pp.ZeroOrMore(compound_op + any_core)
    + pp.Optional(
        K("ORDER").suppress() + K("BY").suppress() + pp.Group(pp.DelimitedList(ordering_term))
    )("order")
    + pp.Optional(limit_clause)("limit")
)


def _select(t: pp.ParseResults) -> ast.Select:
    items = [x for x in t if not isinstance(x, (pp.ParseResults, tuple))]
    cores = [x for x in items if isinstance(x, ast.SelectCore)]
    ops = [x for x in items if isinstance(x, str)]
    order = list(t.order[0]) if t.order else []
    limit = offset = None
    if t.limit:
        _, limit, offset = t.limit[0]
    w = t.get("with")
    if w:
        w = w[0]
        return ast.Select(cores, ops, order, limit, offset, list(w.ctes))
    return ast.Select(cores, ops, order, limit, offset)


select_stmt.set_parse_action(_select)

# ------------------------------------------------------------------ DML

returning = pp.Optional(K("RETURNING").suppress() + pp.Group(pp.DelimitedList(result_column)))(
    "returning"
)
conflict_action = K("ROLLBACK") | K("ABORT") | K("REPLACE") | K("FAIL") | K("IGNORE")
qualified_table = (ident + pp.Optional(DOT + ident)).set_parse_action(lambda t: t[-1])

upsert_clause = (
    K("ON").suppress()
    + K("CONFLICT").suppress()
    + pp.Optional(LPAR + pp.Group(pp.DelimitedList(ident)) + RPAR)
    + K("DO").suppress()
    + (
        K("NOTHING").copy().set_parse_action(lambda: [("nothing",)])
        | (
            K("UPDATE").suppress()
            + K("SET").suppress()
            + pp.Group(pp.DelimitedList(pp.Group(ident + sup("=") + expr)))
            + pp.Optional(K("WHERE").suppress() + expr)
        ).set_parse_action(
            lambda t: [("update", [(a, b) for a, b in t[0]], t[1] if len(t) > 1 else None)]
        )
    )
).set_name("ON CONFLICT")


def _upsert(t: pp.ParseResults) -> Any:
    items = list(t)
    target = None
    if items and isinstance(items[0], pp.ParseResults):
        target = list(items[0])
        items = items[1:]
    return [("upsert", target, items[0])]


upsert_clause.set_parse_action(_upsert)

insert_stmt = (
    (
        K("INSERT").suppress() + pp.Optional(K("OR").suppress() + conflict_action)("or_")
        | K("REPLACE").copy().set_parse_action(lambda: [])("replace")
    )
    + K("INTO").suppress()
    + qualified_table("table")
    + pp.Optional(alias)
    + pp.Optional(LPAR + pp.Group(pp.DelimitedList(ident)) + RPAR)("columns")
    + (
        KS("DEFAULT VALUES").copy().set_parse_action(lambda: [("default",)])
        | select_stmt.copy().add_parse_action(lambda t: [("select", t[0])])
    )("source")
    + pp.Optional(upsert_clause)("upsert")
    + returning
).set_name("INSERT")


def _insert(s: str, loc: int, t: pp.ParseResults) -> ast.Insert:
    conflict = None
    if t.or_:
        conflict = _word(t.or_)
    elif s[loc:].lstrip()[:7].upper() == "REPLACE":
        conflict = "REPLACE"
    cols = list(t.columns[0]) if t.columns else None
    src = t.source[0]
    source = None if src[0] == "default" else src[1]
    upsert = None
    up = next((x for x in t if isinstance(x, tuple) and x and x[0] == "upsert"), None)
    if up is not None:
        _, target, action = up
        if action[0] == "nothing":
            if conflict is None:
                conflict = "IGNORE"
            upsert = ("nothing", target, None, None)
        else:
            upsert = ("update", target, action[1], action[2])
    ret = list(t.returning[0]) if t.returning else None
    return ast.Insert(t.table, cols, source, conflict, upsert, ret)


insert_stmt.set_parse_action(_insert)

update_stmt = (
    K("UPDATE").suppress()
    + pp.Optional(K("OR").suppress() + conflict_action)("or_")
    + qualified_table("table")
    + pp.Optional(alias)("alias")
    + K("SET").suppress()
    + pp.Group(pp.DelimitedList(pp.Group(ident + sup("=") + expr)))("sets")
    + pp.Optional(K("WHERE").suppress() + expr)("where")
    + returning
).set_name("UPDATE")
update_stmt.set_parse_action(
    lambda t: ast.Update(
        t.table,
        t.alias[0] if t.alias else None,
        [(a, b) for a, b in t.sets],
        t.where[0] if t.where else None,
        _word(t.or_) or None,
        list(t.returning[0]) if t.returning else None,
    )
)

delete_stmt = (
    K("DELETE").suppress()
    + K("FROM").suppress()
    + qualified_table("table")
    + pp.Optional(alias)("alias")
    + pp.Optional(K("WHERE").suppress() + expr)("where")
    + returning
).set_name("DELETE")
delete_stmt.set_parse_action(
    lambda t: ast.Delete(
        t.table,
        t.alias[0] if t.alias else None,
        t.where[0] if t.where else None,
        list(t.returning[0]) if t.returning else None,
    )
)

# ------------------------------------------------------------------ DDL

signed_number = pp.Regex(r"[+-]?(?:0[xX][0-9A-Fa-f]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)")


def _signed(t: pp.ParseResults) -> ast.Literal:
    text = t[0]
    sign = -1 if text.startswith("-") else 1
    lit = int_or_real(pp.ParseResults([text.lstrip("+-")]))
    return ast.Literal(sign * lit.value)


signed_number.set_parse_action(_signed)
fk_action = (
    K("ON").suppress()
    + (K("DELETE") | K("UPDATE"))
    + (KS("SET NULL") | KS("SET DEFAULT") | K("CASCADE") | K("RESTRICT") | KS("NO ACTION"))
).set_parse_action(lambda t: [(t[0].upper(), t[1].upper())])
fk_clause = (
    K("REFERENCES").suppress()
    + ident("ref")
    + pp.Optional(LPAR + pp.Group(pp.DelimitedList(ident)) + RPAR)("refcols")
    + pp.ZeroOrMore(fk_action | (K("MATCH") + any_name).suppress())("actions")
    + pp.Optional(
        pp.Optional(K("NOT"))
        + K("DEFERRABLE")
        + pp.Optional(K("INITIALLY") + (K("DEFERRED") | K("IMMEDIATE")))
    ).suppress()
).set_name("REFERENCES")


def _fk(columns: list[str], t: pp.ParseResults) -> ast.ForeignKey:
    actions = dict(t.actions.as_list()) if t.actions else {}
    return ast.ForeignKey(
        columns,
        t.ref,
        list(t.refcols[0]) if t.refcols else None,
        actions.get("DELETE", "NO ACTION"),
        actions.get("UPDATE", "NO ACTION"),
    )


conflict_clause = pp.Optional(K("ON") + K("CONFLICT") + conflict_action).suppress()
constraint_name = pp.Optional(K("CONSTRAINT").suppress() + any_name)("cname")
check_body = K("CHECK").suppress() + LPAR + pp.original_text_for(expr)("check") + RPAR

column_constraint = pp.Group(
    constraint_name
    + (
        (
            KS("PRIMARY KEY")
            + pp.Optional(K("ASC") | K("DESC"))("pkdir")
            + conflict_clause
            + pp.Optional(K("AUTOINCREMENT"))("autoinc")
        )
        | (KS("NOT NULL") + conflict_clause)
        | K("NULL")
        | (K("UNIQUE") + conflict_clause)
        | check_body.copy().add_parse_action(lambda t: ["CHECK", t.check])
        | (
            K("DEFAULT")
            + (
                signed_number
                | literal
                | time_literal
                | pp.original_text_for(LPAR + expr + RPAR)("paren")
                | any_name.copy().set_parse_action(lambda t: ast.Literal(t[0]))
            )
        )
        | (K("COLLATE") + collation_name)
        | fk_clause.copy().add_parse_action(lambda t: ["REFERENCES", t])
        | (
            pp.Optional(KS("GENERATED ALWAYS"))
            + K("AS")
            + LPAR
            + expr
            + RPAR
            + pp.Optional(K("STORED") | K("VIRTUAL"))
        ).set_parse_action(lambda s, loc, t: _unsupported(s, loc, "generated columns"))
    )
).set_name("column constraint")


def _unsupported(s: str, loc: int, what: str) -> None:
    raise pp.ParseFatalException(s, loc, f"{what} are not supported")


column_def = (
    ident("name") + pp.Optional(type_name)("type") + pp.ZeroOrMore(column_constraint)("cons")
).set_name("column definition")


def _column_def(s: str, loc: int, t: pp.ParseResults) -> ast.ColumnDef:
    col = ast.ColumnDef(t.name, " ".join(t.type[0].split()) if t.type else "")
    for c in t.cons:
        kind = c[0] if isinstance(c[0], str) else c[1]
        name = c.cname[0] if c.cname else None
        toks = [x for x in c if not (isinstance(x, str) and x == name and c.cname)]
        kind = toks[0] if isinstance(toks[0], str) else str(toks[0])
        up = kind.upper()
        if up == "PRIMARY KEY":
            col.primary_key = True
            col.pk_desc = _word(c.pkdir) == "DESC"
            col.autoincrement = bool(c.autoinc)
        elif up == "NOT NULL":
            col.not_null = True
        elif up == "UNIQUE":
            col.unique = True
        elif up == "CHECK":
            col.checks.append((name, toks[1]))
        elif up == "DEFAULT":
            val = toks[1]
            if isinstance(val, str):  # parenthesised expression text (parsed by the
                col.default_text = val  # catalog when the table is loaded)
                col.default = None
            else:
                col.default = val
                col.default_text = None
        elif up == "COLLATE":
            col.collation = toks[1].upper()
        elif up == "REFERENCES":
            col.references = _fk([col.name], toks[1])
    return col


column_def.set_parse_action(_column_def)

ident_list = (
    LPAR
    + pp.Group(
        pp.DelimitedList(
            ident
            + pp.Optional(K("COLLATE") + collation_name).suppress()
            + pp.Optional(K("ASC") | K("DESC")).suppress()
        )
    )
    + RPAR
)
table_constraint = (
    constraint_name
    + (
        (KS("PRIMARY KEY") + ident_list + conflict_clause)
        | (K("UNIQUE") + ident_list + conflict_clause)
        | check_body.copy().add_parse_action(lambda t: ["CHECK", t.check])
        | (KS("FOREIGN KEY") + ident_list + fk_clause)
    )
).set_name("table constraint")


def _table_constraint(t: pp.ParseResults) -> ast.TableConstraint:
    name = t.cname[0] if t.cname else None
    toks = list(t)[1:] if name is not None else list(t)
    kind = toks[0].upper()
    if kind == "CHECK":
        return ast.TableConstraint("CHECK", name, [], check_text=toks[1])
    cols = list(toks[1])
    if kind == "FOREIGN KEY":
        return ast.TableConstraint("FOREIGN", name, cols, fk=_fk(cols, t))
    return ast.TableConstraint("PRIMARY" if kind == "PRIMARY KEY" else "UNIQUE", name, cols)


table_constraint.set_parse_action(_table_constraint)

create_table = (
    K("CREATE").suppress()
    + pp.Optional(K("TEMP") | K("TEMPORARY")).suppress()
    + K("TABLE").suppress()
    + pp.Optional(KS("IF NOT EXISTS"))("ine")
    + qualified_table("name")
    + (
        (K("AS").suppress() + select_stmt)("as_select")
        | (
            LPAR
            + pp.DelimitedList(table_constraint | column_def)("defs")
            + RPAR
            + pp.Optional(pp.DelimitedList(KS("WITHOUT ROWID") | K("STRICT"))).suppress()
        )
    )
).set_name("CREATE TABLE")


def _create_table(t: pp.ParseResults) -> ast.CreateTable:
    defs = list(t.defs) if t.defs else []
    cols = [d for d in defs if isinstance(d, ast.ColumnDef)]
    cons = [d for d in defs if isinstance(d, ast.TableConstraint)]
    as_sel = t.as_select[0] if t.as_select else None
    return ast.CreateTable(t.name, bool(t.ine), cols, cons, as_sel)


create_table.set_parse_action(_create_table)

# CREATE VIRTUAL TABLE name USING module(args): the arguments as raw text (quotes and
# nested parentheses kept whole), split by the module (sql/fulltext.py)
_module_args = pp.Regex(
    r"\((?:(?:'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]"
    r"|\((?:[^()']|'(?:[^']|'')*')*\)|[^()'\"`\[])*)\)"
).set_name("module arguments")
_module_args.set_parse_action(lambda t: t[0][1:-1])
create_virtual_table = (
    K("CREATE").suppress()
    + K("VIRTUAL").suppress()
    + K("TABLE").suppress()
    + pp.Optional(KS("IF NOT EXISTS"))("ine")
    + qualified_table("name")
    + K("USING").suppress()
    + ident("module")
    + pp.Optional(_module_args("args"))
).set_name("CREATE VIRTUAL TABLE")
create_virtual_table.set_parse_action(
    lambda t: ast.CreateVirtualTable(t.name, bool(t.ine), t.module, t.args if "args" in t else None)
)

create_view = (
    K("CREATE").suppress()
    + pp.Optional(K("TEMP") | K("TEMPORARY")).suppress()
    + K("VIEW").suppress()
    + pp.Optional(KS("IF NOT EXISTS"))("ine")
    + qualified_table("name")
    + pp.Optional(LPAR + pp.Group(pp.DelimitedList(ident)) + RPAR)("cols")
    + K("AS").suppress()
    + pp.original_text_for(select_stmt)("sql")
).set_name("CREATE VIEW")


def _create_view(t: pp.ParseResults) -> ast.CreateView:
    sql = t.sql if isinstance(t.sql, str) else t.sql[0]
    cols = list(t.cols[0]) if t.cols else None
    return ast.CreateView(t.name, bool(t.ine), cols, sql)


create_view.set_parse_action(_create_view)
drop_view = (
    K("DROP").suppress()
    + K("VIEW").suppress()
    + pp.Optional(KS("IF EXISTS"))("ie")
    + qualified_table("name")
).set_name("DROP VIEW")
drop_view.set_parse_action(lambda t: ast.DropView(t.name, bool(t.ie)))

drop_table = (
    K("DROP").suppress()
    + K("TABLE").suppress()
    + pp.Optional(KS("IF EXISTS"))("ie")
    + qualified_table("name")
).set_name("DROP TABLE")
drop_table.set_parse_action(lambda t: ast.DropTable(t.name, bool(t.ie)))

alter_table = (
    K("ALTER").suppress()
    + K("TABLE").suppress()
    + qualified_table("name")
    + (
        (K("ADD").suppress() + pp.Optional(K("COLUMN")).suppress() + column_def).set_parse_action(
            lambda t: [("ADD", t[0])]
        )
        | (K("RENAME").suppress() + K("TO").suppress() + ident).set_parse_action(
            lambda t: [("RENAME", t[0])]
        )
        | (
            K("RENAME").suppress()
            + pp.Optional(K("COLUMN")).suppress()
            + ident
            + K("TO").suppress()
            + ident
        ).set_parse_action(lambda t: [("RENAME_COLUMN", t[0], t[1])])
        | (K("DROP").suppress() + pp.Optional(K("COLUMN")).suppress() + ident).set_parse_action(
            lambda t: [("DROP_COLUMN", t[0])]
        )
    )("action")
).set_name("ALTER TABLE")


def _alter(t: pp.ParseResults) -> ast.AlterTable:
    a = t.action[0]
    if a[0] == "ADD":
        return ast.AlterTable(t.name, "ADD", column=a[1])
    if a[0] == "RENAME":
        return ast.AlterTable(t.name, "RENAME", new=a[1])
    if a[0] == "DROP_COLUMN":
        return ast.AlterTable(t.name, "DROP_COLUMN", old=a[1])
    return ast.AlterTable(t.name, "RENAME_COLUMN", old=a[1], new=a[2])


alter_table.set_parse_action(_alter)

index_column = (
    ident
    + pp.Optional(K("COLLATE") + collation_name).suppress()
    + pp.Optional(K("ASC") | K("DESC"))("dir")
).set_parse_action(lambda t: [(t[0], _word(t.dir) == "DESC")])
create_index = (
    K("CREATE").suppress()
    + pp.Optional(K("UNIQUE"))("unique")
    + K("INDEX").suppress()
    + pp.Optional(KS("IF NOT EXISTS"))("ine")
    + qualified_table("name")
    + K("ON").suppress()
    + ident("table")
    + pp.Optional(K("USING").suppress() + ident("using"))
    + LPAR
    + pp.Group(pp.DelimitedList(index_column))("cols")
    + RPAR
    + pp.Optional(
        K("WITH").suppress()
        + LPAR
        + pp.Group(
            pp.DelimitedList(
                pp.Group(ident + sup("=") + (signed_number | string_literal | any_name))
            )
        )("opts")
        + RPAR
    )
).set_name("CREATE INDEX")
create_index.set_parse_action(
    lambda t: ast.CreateIndex(
        t.name,
        t.table,
        list(t.cols),
        bool(t.unique),
        bool(t.ine),
        t.using or None,
        [(o[0].lower(), o[1].value if isinstance(o[1], ast.Literal) else o[1]) for o in t.opts]
        if t.opts
        else None,
    )
)
drop_index = (
    K("DROP").suppress()
    + K("INDEX").suppress()
    + pp.Optional(KS("IF EXISTS"))("ie")
    + qualified_table("name")
).set_name("DROP INDEX")
drop_index.set_parse_action(lambda t: ast.DropIndex(t.name, bool(t.ie)))

txn_stmt = (
    (
        K("BEGIN").suppress()
        + pp.Optional(K("DEFERRED") | K("IMMEDIATE") | K("EXCLUSIVE"))("mode")
        + pp.Optional(K("TRANSACTION")).suppress()
    ).set_parse_action(lambda t: ast.TxnControl("BEGIN", _word(t.mode) or None))
    | (
        (K("COMMIT") | K("END")).suppress() + pp.Optional(K("TRANSACTION")).suppress()
    ).set_parse_action(lambda: ast.TxnControl("COMMIT"))
    | (K("ROLLBACK").suppress() + pp.Optional(K("TRANSACTION")).suppress()).set_parse_action(
        lambda: ast.TxnControl("ROLLBACK")
    )
).set_name("transaction statement")

pragma_stmt = (
    K("PRAGMA").suppress()
    + any_name("name")
    + pp.Optional(
        (sup("=") + (signed_number | string_literal | any_name))
        | (LPAR + (signed_number | string_literal | any_name) + RPAR)
    )("value")
).set_name("PRAGMA")


def _pragma(t: pp.ParseResults) -> ast.Pragma:
    value = None
    if t.value:
        v = t.value if isinstance(t.value, (str, ast.Literal)) else t.value[0]
        value = v.value if isinstance(v, ast.Literal) else v
    return ast.Pragma(t.name.lower(), value)


pragma_stmt.set_parse_action(_pragma)

statement = pp.Forward().set_name("statement")
explain_stmt = (
    K("EXPLAIN").suppress() + pp.Optional(K("QUERY") + K("PLAN")).suppress() + statement
).set_parse_action(lambda t: ast.Explain(t[0]))


def _dml_with(t: pp.ParseResults) -> ast.Statement:
    w, stmt = t[0], t[1]
    stmt.ctes = list(w.ctes)
    return stmt


dml_with = (with_clause + (insert_stmt | update_stmt | delete_stmt)).set_parse_action(_dml_with)

statement <<= (
    explain_stmt
    | select_stmt
    | dml_with
    | insert_stmt
    | update_stmt
    | delete_stmt
    | create_table
    | create_virtual_table
    | create_view
    | create_index
    | drop_table
    | drop_view
    | drop_index
    | alter_table
    | txn_stmt
    | pragma_stmt
)
sql_script = (
    pp.Optional(pp.Suppress(pp.ZeroOrMore(";")))
    + pp.Optional(statement)
    + pp.ZeroOrMore(pp.Suppress(pp.OneOrMore(";")) + pp.Optional(statement))
).set_name("SQL")
