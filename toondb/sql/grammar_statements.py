"""The SQL grammar's statements (pyparsing over token codes): SELECT (with WITH
and compound selects), INSERT, UPDATE, DELETE, CREATE / DROP / ALTER, BEGIN /
COMMIT / ROLLBACK / SAVEPOINT / RELEASE / ROLLBACK TO, PRAGMA and EXPLAIN, built on the terminals and expressions of
grammar_expressions.py. ``statement`` is one statement; grammar.py parses the
statements of a script one by one (lexer.py finds where each ends). The dialect
is SQLite's, minus what docs/sql.md lists as left out.
"""

from __future__ import annotations

from typing import Any

import pyparsing as pp

from toondb.sql import ast
from toondb.sql.grammar_elements import Commas, Many, Maybe, Switch, fail
from toondb.sql.grammar_expressions import (
    _SELECT_AHEAD,
    ANY_NAME_CODES,
    COMMA,
    DOT,
    KS,
    KX,
    LPAR,
    NAME_CODES,
    RPAR,
    K,
    Peek,
    Tok,
    any_name,
    code,
    collation_name,
    esc,
    expr,
    ident,
    literal,
    literal_text_value,
    ordering_term,
    select_stmt,
    sup,
    time_literal,
    type_name,
    window_defn,
)
from toondb.sql.lexer import Tokens


def _word(x: Any) -> str:
    """The text of an optional keyword result (a str, or a ParseResults holding one)."""
    if isinstance(x, str):
        return x.upper()
    return str(x[0]).upper() if len(x) else ""


def _span(s: Tokens, start: int, end: int) -> str:
    """The source text of the tokens from start to end (exclusive)."""
    return s.span_text(start, end)


class Text(pp.ParseElementEnhance):
    """expr, with its result replaced by its source text (comments inside kept)."""

    def parseImpl(self, instring: Any, loc: int, do_actions: bool = True) -> Any:
        end, _ = self.expr._parse(instring, loc, do_actions, callPreParse=False)
        return end, [instring.span_text(loc, end)]


class Spanned(pp.ParseElementEnhance):
    """expr, with its result followed by the token span it covered: (node, start, end)."""

    def parseImpl(self, instring: Any, loc: int, do_actions: bool = True) -> Any:
        end, toks = self.expr._parse(instring, loc, do_actions, callPreParse=False)
        return end, [(toks[0], loc, end)]


# ------------------------------------------------------------------ SELECT

_AS = KX("AS")
alias = Maybe(code("AS") + NAME_CODES, pp.Opt(_AS) + ident)


def _result_expr(s: Tokens, loc: int, t: pp.ParseResults) -> ast.ResultColumn:
    node, start, end = t[0]
    al = t[1] if len(t) > 1 else None
    rc = ast.ResultColumn(node, al, s.span_text(start, end))
    if s.result_spans is not None:
        s.result_spans.append((rc, start, end))
    return rc


_expr_column = (Spanned(expr) + alias).set_parse_action(_result_expr)
result_column = Switch(
    {
        NAME_CODES: Peek(f"[{esc(NAME_CODES)}]\\.\\*", ident + DOT + sup("*")).set_parse_action(
            lambda t: ast.ResultColumn(ast.Star(t[0]), None, t[0] + ".*")
        )
        | _expr_column,
        "*": sup("*").set_parse_action(lambda: ast.ResultColumn(ast.Star(), None, "*")),
    },
    _expr_column,
).set_name("result column")

table_source = pp.Forward().set_name("table")
_index_hint = Maybe(
    code("NOT") + code("INDEXED"),
    KS("NOT INDEXED").copy().set_parse_action(lambda: ("indexed", ""))
    | (KX("INDEXED") + KX("BY") + any_name).set_parse_action(lambda t: ("indexed", t[0])),
)


def _table_ref(t: pp.ParseResults) -> ast.TableRef:
    names = list(t)
    alias = indexed = None
    while names and isinstance(names[-1], tuple):
        tag, value = names.pop()
        if tag == "alias":
            alias = value
        else:
            indexed = value
    return ast.TableRef(names[-1], alias, indexed)


# a table's alias without AS is any name but INDEXED (which starts INDEXED BY);
# "FROM t WINDOW w AS (...)": WINDOW there starts the clause, it is no alias
_TABLE_ALIAS_CODES = NAME_CODES.replace(code("INDEXED"), "")
_NOT_WINDOW = f"(?!{esc(code('WINDOW'))}[{esc(ANY_NAME_CODES)}]{esc(code('AS'))})"
_alias_tag = pp.Opt(
    Peek(
        _NOT_WINDOW,
        Maybe(code("AS") + _TABLE_ALIAS_CODES, pp.Opt(_AS) + ident).set_parse_action(
            lambda t: ("alias", t[0]) if t else []
        ),
    )
)
table_name_ref = (ident + Maybe(".", DOT + ident) + _alias_tag + _index_hint).set_name("table name")
table_name_ref.set_parse_action(_table_ref)
# name(args) [alias]: a table-valued call: a table-valued function (json_each,
# json_tree: planner/joins.py) or a full-text table's search, t('query')
# (sql/fulltext.py rewrites those before planning)
table_call = (
    ident + LPAR + pp.Opt(Commas(expr)).set_parse_action(lambda t: [list(t)]) + RPAR + _alias_tag
).set_name("table-valued call")
table_call.set_parse_action(lambda t: ast.TableCall(t[0], t[1], t[2][1] if len(t) > 2 else None))
join_source = pp.Forward()
table_source <<= pp.MatchFirst(
    [
        Peek(_SELECT_AHEAD, LPAR + select_stmt + RPAR + alias).set_parse_action(
            lambda t: ast.SubqueryRef(t[0], t[1] if len(t) > 1 else None)
        ),
        Peek("\\(", LPAR + join_source + RPAR),
        Peek(f"[{esc(NAME_CODES)}]\\(", table_call),
        table_name_ref,
    ]
)
_join_kind = pp.MatchFirst(
    [
        (K("CROSS") + K("JOIN")).set_parse_action(lambda: "CROSS"),
        (K("LEFT") + pp.Opt(K("OUTER")) + K("JOIN")).set_parse_action(lambda: "LEFT"),
        (pp.Opt(K("INNER")) + K("JOIN")).set_parse_action(lambda: "INNER"),
    ]
)
join_op = pp.MatchFirst(
    [
        COMMA.copy().set_parse_action(lambda: "CROSS"),
        (KX("NATURAL") + _join_kind).set_parse_action(lambda t: "NATURAL " + t[0]),
        _join_kind,
    ]
).set_name("join")
join_constraint = Maybe(
    code("ON") + code("USING"),
    (KX("ON") + expr).set_parse_action(lambda t: ("on", t[0]))
    | (KX("USING") + LPAR + Commas(ident) + RPAR).set_parse_action(lambda t: ("using", list(t))),
)


def _joins(s: Tokens, loc: int, t: pp.ParseResults) -> ast.Node:
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
        if kind.startswith("NATURAL "):
            if on is not None or using is not None:
                raise pp.ParseSyntaxException(
                    s, loc, "a NATURAL join may not have an ON or USING clause"
                )
            kind, using = kind[8:], ast.Natural()
        node = ast.Join(kind, node, right, on, using)
    return node


_JOIN_FIRST = "," + "".join(code(w) for w in ("NATURAL", "CROSS", "LEFT", "INNER", "JOIN"))
join_source <<= (
    table_source + Many(_JOIN_FIRST, join_op + table_source + join_constraint)
).set_parse_action(_joins)  # fmt: skip


values_row = (LPAR + Commas(expr) + RPAR).set_parse_action(lambda t: [list(t)])
values_core = (KX("VALUES") + Commas(values_row)).set_name("VALUES")
values_core.set_parse_action(
    lambda t: ast.SelectCore(False, [], None, None, [], None, [list(r) for r in t])
)


def _tag(name: str, element: pp.ParserElement, many: bool = False) -> pp.ParserElement:
    """element's result as (name, value) (or (name, [values]) when many)."""
    if many:
        return element.copy().set_parse_action(lambda t: (name, list(t)))
    return element.copy().set_parse_action(lambda t: (name, t[0]))


named_window = (any_name + KX("AS") + LPAR + window_defn + RPAR).set_parse_action(
    lambda t: (t[0], t[1])
)
select_core = (
    KX("SELECT")
    + Maybe(code("DISTINCT") + code("ALL"), _tag("quant", K("DISTINCT") | K("ALL")))
    + _tag("cols", Commas(result_column), many=True)
    + Maybe(code("FROM"), _tag("from", KX("FROM") + join_source))
    + Maybe(code("WHERE"), _tag("where", KX("WHERE") + expr))
    + Maybe(
        code("GROUP"),
        _tag("group", KX("GROUP") + KX("BY") + Commas(expr), many=True),
    )
    + Maybe(code("HAVING"), _tag("having", KX("HAVING") + expr))
    + Maybe(code("WINDOW"), _tag("windows", KX("WINDOW") + Commas(named_window), many=True))
).set_name("SELECT")


def _select_core(t: pp.ParseResults) -> ast.SelectCore:
    d = dict(list(t))
    return ast.SelectCore(
        d.get("quant") == "DISTINCT",
        d["cols"],
        d.get("from"),
        d.get("where"),
        d.get("group", []),
        d.get("having"),
        None,
        d.get("windows"),
    )


select_core.set_parse_action(_select_core)
compound_op = (
    (KS("UNION ALL") | K("UNION") | K("INTERSECT") | K("EXCEPT"))
    .set_parse_action(lambda t: ("op", t[0]))
    .set_name("UNION/INTERSECT/EXCEPT")
)
any_core = Switch({code("SELECT"): select_core, code("VALUES"): values_core}).set_name("SELECT")
limit_clause = (
    KX("LIMIT")
    + expr
    + Maybe(
        code("OFFSET") + ",",
        (KX("OFFSET") | COMMA.copy().set_parse_action(lambda: ",")) + expr,
    )
).set_name("LIMIT")


def _limit(t: pp.ParseResults) -> Any:
    if len(t) == 1:
        return ("limit", t[0], None)
    if t[1] == ",":  # LIMIT offset, count
        return ("limit", t[2], t[0])
    return ("limit", t[0], t[1])


limit_clause.set_parse_action(_limit)

cte_def = (
    any_name
    + Maybe("(", (LPAR + Commas(any_name) + RPAR).set_parse_action(lambda t: ("cols", list(t))))
    + KX("AS")
    + pp.Opt(pp.Opt(K("NOT")) + K("MATERIALIZED")).suppress()
    + LPAR
    + select_stmt
    + RPAR
).set_name("common table expression")  # fmt: skip
cte_def.set_parse_action(lambda t: ast.Cte(t[0], t[1][1] if len(t) > 2 else None, t[-1]))
with_clause = (
    KX("WITH")
    + pp.Opt(K("RECURSIVE")).suppress()  # SQLite's WITH is recursive either way
    + Commas(cte_def)
).set_parse_action(lambda t: ("with", list(t)))

order_by = _tag(
    "order",
    KX("ORDER") + KX("BY") + Commas(ordering_term),
    many=True,
)
select_body = (
    any_core
    + Many(code("UNION") + code("INTERSECT") + code("EXCEPT"), compound_op + any_core)
    + Maybe(code("ORDER"), order_by)
    + Maybe(code("LIMIT"), limit_clause)
)


def _select(t: pp.ParseResults) -> ast.Select:
    cores: list[ast.SelectCore] = []
    ops: list[str] = []
    order: list[ast.OrderItem] = []
    limit = offset = None
    ctes = None
    for x in t:
        if isinstance(x, ast.SelectCore):
            cores.append(x)
        elif x[0] == "op":
            ops.append(x[1])
        elif x[0] == "order":
            order = x[1]
        elif x[0] == "limit":
            _, limit, offset = x
        elif x[0] == "with":
            ctes = x[1]
    if ctes is not None:
        return ast.Select(cores, ops, order, limit, offset, ctes)
    return ast.Select(cores, ops, order, limit, offset)


select_stmt <<= (Maybe(code("WITH"), with_clause) + select_body).set_parse_action(_select)

# ------------------------------------------------------------------ DML

returning = pp.Opt(
    (KX("RETURNING") + Commas(result_column)).set_parse_action(lambda t: ("returning", list(t)))
)
conflict_action = K("ROLLBACK") | K("ABORT") | K("REPLACE") | K("FAIL") | K("IGNORE")
qualified_table = (ident + pp.Opt(DOT + ident)).set_parse_action(lambda t: t[-1])
_EQ = sup("=")
set_item = (ident + _EQ + expr).set_parse_action(lambda t: (t[0], t[1]))
set_list = Commas(set_item).set_parse_action(lambda t: [list(t)])

upsert_clause = (
    KX("ON")
    + KX("CONFLICT")
    + pp.Opt(
        (
            LPAR
            # a target column's COLLATE is accepted: the target is not matched
            # to an index, the first conflict takes the DO clause (docs/sql.md)
            + Commas(ident + pp.Opt(KX("COLLATE") + collation_name).suppress())
            + RPAR
        ).set_parse_action(lambda t: [list(t)])
    )
    + KX("DO")
    + (
        K("NOTHING").copy().set_parse_action(lambda: ("nothing",))
        | (KX("UPDATE") + KX("SET") + set_list + pp.Opt(KX("WHERE") + expr)).set_parse_action(
            lambda t: ("update", t[0], t[1] if len(t) > 1 else None)
        )
    )
).set_name("ON CONFLICT")


def _upsert(t: pp.ParseResults) -> Any:
    items = list(t)
    target = None
    if isinstance(items[0], list):
        target = items[0]
        items = items[1:]
    return ("upsert", target, items[0])


upsert_clause.set_parse_action(_upsert)

insert_stmt = (
    (
        (KX("INSERT") + pp.Opt(KX("OR") + conflict_action)).set_parse_action(
            lambda t: ("or", t[0] if t else None)
        )
        | K("REPLACE").copy().set_parse_action(lambda: ("or", "REPLACE"))
    )
    + KX("INTO")
    + qualified_table
    + pp.Opt(alias).suppress()
    + pp.Opt((LPAR + Commas(ident) + RPAR).set_parse_action(lambda t: ("cols", list(t))))
    + (
        KS("DEFAULT VALUES").copy().set_parse_action(lambda: ("source", None))
        | select_stmt.copy().add_parse_action(lambda t: ("source", t[0]))
    )
    + pp.Opt(upsert_clause)
    + returning
).set_name("INSERT")  # fmt: skip


def _insert(t: pp.ParseResults) -> ast.Insert:
    conflict = t[0][1]
    table = t[1]
    cols = source = upsert = ret = None
    for x in t[2:]:
        if x[0] == "cols":
            cols = x[1]
        elif x[0] == "source":
            source = x[1]
        elif x[0] == "returning":
            ret = x[1]
        else:
            _, target, action = x
            if action[0] == "nothing":
                if conflict is None:
                    conflict = "IGNORE"
                upsert = ("nothing", target, None, None)
            else:
                upsert = ("update", target, action[1], action[2])
    return ast.Insert(table, cols, source, conflict, upsert, ret)


insert_stmt.set_parse_action(_insert)

update_stmt = (
    KX("UPDATE")
    + pp.Opt((KX("OR") + conflict_action).set_parse_action(lambda t: ("or", t[0])))
    + qualified_table
    + _alias_tag
    + _index_hint
    + KX("SET")
    + set_list
    + pp.Opt((KX("WHERE") + expr).set_parse_action(lambda t: ("where", t[0])))
    + returning
).set_name("UPDATE")


def _update(t: pp.ParseResults) -> ast.Update:
    items = list(t)
    conflict = None
    if isinstance(items[0], tuple):
        conflict = items.pop(0)[1]
    table, rest = items[0], items[1:]
    al = None
    if rest and isinstance(rest[0], tuple) and rest[0][0] == "alias":
        al = rest.pop(0)[1]
    indexed = None
    if rest and isinstance(rest[0], tuple) and rest[0][0] == "indexed":
        indexed = rest.pop(0)[1]
    sets = rest.pop(0)
    d = dict(rest)
    stmt = ast.Update(table, al, sets, d.get("where"), conflict, d.get("returning"))
    stmt.indexed = indexed
    return stmt


update_stmt.set_parse_action(_update)

delete_stmt = (
    KX("DELETE")
    + KX("FROM")
    + qualified_table
    + _alias_tag
    + _index_hint
    + pp.Opt((KX("WHERE") + expr).set_parse_action(lambda t: ("where", t[0])))
    + returning
).set_name("DELETE")


def _delete(t: pp.ParseResults) -> ast.Delete:
    d = dict(t[1:])
    stmt = ast.Delete(t[0], d.get("alias"), d.get("where"), d.get("returning"))
    stmt.indexed = d.get("indexed")
    return stmt


delete_stmt.set_parse_action(_delete)

# ------------------------------------------------------------------ DDL


def _signed(s: Tokens, loc: int, t: pp.ParseResults) -> ast.Literal:
    sign = -1 if len(t) > 1 and t[0] == "-" else 1
    v = t[-1]
    if sign < 0:
        if type(v) is int:
            v = -v if v != 1 << 63 else -(1 << 63)
        else:
            v = -v
    elif type(v) is int and v > (1 << 63) - 1:
        v = float(v)
    return ast.Literal(v)


signed_number = (pp.Opt(Tok("+-", "sign")) + Tok("n", "number", literal_text_value)).set_name(
    "number"
)
signed_number.set_parse_action(_signed)
fk_action = (
    KX("ON")
    + (K("DELETE") | K("UPDATE"))
    + (KS("SET NULL") | KS("SET DEFAULT") | K("CASCADE") | K("RESTRICT") | KS("NO ACTION"))
).set_parse_action(lambda t: ("action", (t[0], t[1])))
fk_clause = (
    KX("REFERENCES")
    + ident
    + pp.Opt(
        (
            LPAR
            # a target column's COLLATE is accepted: the target is not matched
            # to an index, the first conflict takes the DO clause (docs/sql.md)
            + Commas(ident + pp.Opt(KX("COLLATE") + collation_name).suppress())
            + RPAR
        ).set_parse_action(lambda t: [list(t)])
    )
    + pp.ZeroOrMore(fk_action | (K("MATCH") + any_name).suppress())
    + pp.Opt(
        pp.Opt(K("NOT"))
        + K("DEFERRABLE")
        + pp.Opt(K("INITIALLY") + (K("DEFERRED") | K("IMMEDIATE")))
    ).suppress()
).set_name("REFERENCES")


def _fk_parts(t: pp.ParseResults) -> tuple[str, list[str] | None, dict[str, str]]:
    ref = t[0]
    refcols = None
    actions: dict[str, str] = {}
    for x in t[1:]:
        if isinstance(x, list):
            refcols = x
        elif isinstance(x, tuple):
            actions[x[1][0]] = x[1][1]
    return ref, refcols, actions


fk_clause.set_parse_action(lambda t: ("fk", _fk_parts(t)))


def _fk(columns: list[str], parts: tuple[str, list[str] | None, dict[str, str]]) -> ast.ForeignKey:
    ref, refcols, actions = parts
    return ast.ForeignKey(
        columns,
        ref,
        refcols,
        actions.get("DELETE", "NO ACTION"),
        actions.get("UPDATE", "NO ACTION"),
    )


conflict_clause = pp.Opt(K("ON") + K("CONFLICT") + conflict_action).suppress()
constraint_name = pp.Opt((KX("CONSTRAINT") + any_name).set_parse_action(lambda t: ("name", t[0])))
check_body = (KX("CHECK") + LPAR + Text(expr) + RPAR).set_parse_action(lambda t: ("CHECK", t[0]))


def _unsupported(s: Tokens, loc: int, what: str) -> None:
    raise pp.ParseFatalException(s, loc, f"{what} are not supported")


_default_value = pp.MatchFirst(
    [
        signed_number,
        literal,
        time_literal,
        Peek("\\(", Text(LPAR + expr + RPAR)),
        any_name.copy().set_parse_action(lambda t: ast.Literal(t[0])),
    ]
)


def _baked_literal(s: Tokens, loc: int, t: pp.ParseResults) -> Any:
    if s[loc] in "nsx":  # a DEFAULT's value is part of the table's definition
        s.baked.add(loc)
    return t


_default_value.set_parse_action(_baked_literal)

column_constraint = (
    constraint_name
    + pp.MatchFirst(
        [
            (
                KS("PRIMARY KEY")
                + pp.Opt(K("ASC") | K("DESC"))
                + conflict_clause
                + pp.Opt(K("AUTOINCREMENT"))
            ).set_parse_action(
                lambda t: ("PRIMARY KEY", "DESC" in list(t), "AUTOINCREMENT" in list(t))
            ),
            (KS("NOT NULL") + conflict_clause).set_parse_action(lambda: ("NOT NULL",)),
            K("NULL").copy().set_parse_action(lambda: ("NULL",)),
            (K("UNIQUE") + conflict_clause).set_parse_action(lambda: ("UNIQUE",)),
            check_body,
            (KX("DEFAULT") + _default_value).set_parse_action(lambda t: ("DEFAULT", t[0])),
            (KX("COLLATE") + collation_name).set_parse_action(lambda t: ("COLLATE", t[0])),
            fk_clause.copy(),
            (
                pp.Opt(KS("GENERATED ALWAYS")).suppress()
                + KX("AS")
                + LPAR
                + Text(expr)
                + RPAR
                + pp.Opt(K("STORED") | K("VIRTUAL"))
            ).set_parse_action(lambda t: ("GENERATED", t[0], len(t) > 1 and t[1] == "STORED")),
        ]
    )
).set_name("column constraint")  # fmt: skip
column_constraint.set_parse_action(lambda t: ("constraint", t[0][1] if len(t) > 1 else None, t[-1]))

column_def = (
    ident
    + pp.Opt(type_name.copy().add_parse_action(lambda t: ("type", t[0])))
    + pp.ZeroOrMore(column_constraint)
).set_name("column definition")


def _column_def(t: pp.ParseResults) -> ast.ColumnDef:
    items = list(t)
    type_text = ""
    if len(items) > 1 and items[1][0] == "type":
        type_text = " ".join(items.pop(1)[1].split())
    col = ast.ColumnDef(items[0], type_text)
    for _, name, c in items[1:]:
        kind = c[0]
        if kind == "PRIMARY KEY":
            col.primary_key = True
            col.pk_desc = c[1]
            col.autoincrement = c[2]
        elif kind == "NOT NULL":
            col.not_null = True
        elif kind == "UNIQUE":
            col.unique = True
        elif kind == "CHECK":
            col.checks.append((name, c[1]))
        elif kind == "DEFAULT":
            val = c[1]
            if isinstance(val, str):  # parenthesised expression text (parsed by the
                col.default_text = val  # catalog when the table is loaded)
                col.default = None
            else:
                col.default = val
                col.default_text = None
        elif kind == "COLLATE":
            col.collation = c[1].upper()
        elif kind == "fk":
            col.references = _fk([col.name], c[1])
        elif kind == "GENERATED":
            col.generated = (c[1], c[2])
            # the type name's words ran on into GENERATED ALWAYS: not part of the type
            words = col.type_name.split()
            if words[-2:] and [w.upper() for w in words[-2:]] == ["GENERATED", "ALWAYS"]:
                col.type_name = " ".join(words[:-2])
    return col


column_def.set_parse_action(_column_def)

# a key's columns: (name, collation or None); ASC/DESC are accepted and ignored
ident_list = (
    LPAR
    + Commas(
        (
            ident + pp.Opt(KX("COLLATE") + collation_name) + pp.Opt(K("ASC") | K("DESC")).suppress()
        ).set_parse_action(lambda t: (t[0], t[1].upper() if len(t) > 1 else None))
    )
    + RPAR
).set_parse_action(lambda t: [list(t)])
table_constraint = (
    constraint_name
    + pp.MatchFirst(
        [
            (KS("PRIMARY KEY") + ident_list + conflict_clause),
            (K("UNIQUE") + ident_list + conflict_clause),
            check_body,
            (KS("FOREIGN KEY") + ident_list + fk_clause),
        ]
    )
).set_name("table constraint")


def _table_constraint(t: pp.ParseResults) -> ast.TableConstraint:
    items = list(t)
    name = None
    if isinstance(items[0], tuple) and items[0][0] == "name":
        name = items.pop(0)[1]
    first = items[0]
    if isinstance(first, tuple):  # CHECK
        return ast.TableConstraint("CHECK", name, [], check_text=first[1])
    kind = first
    cols = [c for c, _ in items[1]]
    if kind == "FOREIGN KEY":
        return ast.TableConstraint("FOREIGN", name, cols, fk=_fk(cols, items[2][1]))
    kind = "PRIMARY" if kind == "PRIMARY KEY" else "UNIQUE"
    return ast.TableConstraint(kind, name, cols, collations=[c for _, c in items[1]])


table_constraint.set_parse_action(_table_constraint)

_TEMP = pp.Opt(K("TEMP") | K("TEMPORARY")).suppress()
_IF_NOT_EXISTS = pp.Opt(KS("IF NOT EXISTS")).set_parse_action(lambda t: [bool(t)])
_IF_EXISTS = pp.Opt(KS("IF EXISTS")).set_parse_action(lambda t: [bool(t)])
_TABLE_CONSTRAINT_AHEAD = "[" + esc("".join(code(w) for w in ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"))) + "]"  # fmt: skip

create_table = (
    KX("CREATE")
    + _TEMP
    + KX("TABLE")
    + _IF_NOT_EXISTS
    + qualified_table
    + (
        (KX("AS") + select_stmt).set_parse_action(lambda t: ("as", t[0]))
        | (
            LPAR
            + Commas(Peek(_TABLE_CONSTRAINT_AHEAD, table_constraint) | column_def)
            + RPAR
            + pp.Opt(
                Commas(
                    KS("WITHOUT ROWID").suppress()
                    | K("STRICT").set_parse_action(lambda: ("strict", True))
                )
            )
        ).set_parse_action(lambda t: ("defs", list(t)))
    )
).set_name("CREATE TABLE")


def _create_table(t: pp.ParseResults) -> ast.CreateTable:
    ine, name, (kind, body) = t[0], t[1], t[2]
    if kind == "as":
        return ast.CreateTable(name, ine, [], [], body)
    cols = [d for d in body if isinstance(d, ast.ColumnDef)]
    cons = [d for d in body if isinstance(d, ast.TableConstraint)]
    strict = ("strict", True) in body
    return ast.CreateTable(name, ine, cols, cons, None, strict)


create_table.set_parse_action(_create_table)


class ModuleArgs(pp.Token):
    """CREATE VIRTUAL TABLE's ``(args)``: the source text between the parentheses,
    as written (quotes and nested parentheses kept whole); the module splits it
    (sql/fulltext.py)."""

    def __init__(self) -> None:
        super().__init__()
        self.errmsg = "Expected module arguments"
        self.mayReturnEmpty = False
        self.mayIndexError = False

    def parseImpl(self, instring: Any, loc: int, do_actions: bool = True) -> Any:
        s: Tokens = instring
        n = len(s)
        if loc >= n or s[loc] != "(":
            raise fail(s, loc, self)
        depth = 0
        for i in range(loc, n):
            c = s[i]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    return i + 1, [s.sql[s.end_offset(loc) : s.start_offset(i)]]
        raise fail(s, n, self)

    def _generateDefaultName(self) -> str:
        return "module arguments"


create_virtual_table = (
    KX("CREATE")
    + KX("VIRTUAL")
    + KX("TABLE")
    + _IF_NOT_EXISTS
    + qualified_table
    + KX("USING")
    + ident
    + pp.Opt(ModuleArgs())
).set_name("CREATE VIRTUAL TABLE")
create_virtual_table.set_parse_action(
    lambda t: ast.CreateVirtualTable(t[1], t[0], t[2], t[3] if len(t) > 3 else None)
)

create_view = (
    KX("CREATE")
    + _TEMP
    + KX("VIEW")
    + _IF_NOT_EXISTS
    + qualified_table
    + pp.Opt(
        (
            LPAR
            # a target column's COLLATE is accepted: the target is not matched
            # to an index, the first conflict takes the DO clause (docs/sql.md)
            + Commas(ident + pp.Opt(KX("COLLATE") + collation_name).suppress())
            + RPAR
        ).set_parse_action(lambda t: [list(t)])
    )
    + KX("AS")
    + Text(select_stmt)
).set_name("CREATE VIEW")


def _create_view(t: pp.ParseResults) -> ast.CreateView:
    cols = t[2] if len(t) > 3 else None
    return ast.CreateView(t[1], t[0], cols, t[-1])


create_view.set_parse_action(_create_view)
drop_view = (KX("DROP") + KX("VIEW") + _IF_EXISTS + qualified_table).set_name("DROP VIEW")
drop_view.set_parse_action(lambda t: ast.DropView(t[1], t[0]))

drop_table = (KX("DROP") + KX("TABLE") + _IF_EXISTS + qualified_table).set_name("DROP TABLE")
drop_table.set_parse_action(lambda t: ast.DropTable(t[1], t[0]))

alter_table = (
    KX("ALTER")
    + KX("TABLE")
    + qualified_table
    + pp.MatchFirst(
        [
            (KX("ADD") + pp.Opt(K("COLUMN")).suppress() + column_def).set_parse_action(
                lambda t: ("ADD", t[0])
            ),
            (KX("RENAME") + KX("TO") + ident).set_parse_action(lambda t: ("RENAME", t[0])),
            (
                KX("RENAME") + pp.Opt(K("COLUMN")).suppress() + ident + KX("TO") + ident
            ).set_parse_action(lambda t: ("RENAME_COLUMN", t[0], t[1])),
            (KX("DROP") + pp.Opt(K("COLUMN")).suppress() + ident).set_parse_action(
                lambda t: ("DROP_COLUMN", t[0])
            ),
        ]
    )
).set_name("ALTER TABLE")


def _alter(t: pp.ParseResults) -> ast.AlterTable:
    name, a = t[0], t[1]
    if a[0] == "ADD":
        return ast.AlterTable(name, "ADD", column=a[1])
    if a[0] == "RENAME":
        return ast.AlterTable(name, "RENAME", new=a[1])
    if a[0] == "DROP_COLUMN":
        return ast.AlterTable(name, "DROP_COLUMN", old=a[1])
    return ast.AlterTable(name, "RENAME_COLUMN", old=a[1], new=a[2])


alter_table.set_parse_action(_alter)

index_column = (
    ident
    + pp.Opt(KX("COLLATE") + collation_name).set_parse_action(
        lambda t: [t[0].upper() if t else None]
    )
    + pp.Opt(K("ASC") | K("DESC"))
).set_parse_action(lambda t: (t[0], len(t) > 2 and t[2] == "DESC", t[1]))
_pragma_value = signed_number | Tok("s", "string", literal_text_value) | any_name
_index_option = (ident + sup("=") + _pragma_value).set_parse_action(
    lambda t: [(t[0].lower(), t[1].value if isinstance(t[1], ast.Literal) else t[1])]
)
create_index = (
    KX("CREATE")
    + pp.Opt(K("UNIQUE")).set_parse_action(lambda t: [bool(t)])
    + KX("INDEX")
    + _IF_NOT_EXISTS
    + qualified_table
    + KX("ON")
    + ident
    + Maybe(code("USING"), (KX("USING") + ident).set_parse_action(lambda t: ("using", t[0])))
    + LPAR
    + Commas(index_column).set_parse_action(lambda t: [list(t)])
    + RPAR
    + Maybe(
        code("WITH"),
        (KX("WITH") + LPAR + Commas(_index_option) + RPAR).set_parse_action(
            lambda t: ("options", list(t))
        ),
    )
).set_name("CREATE INDEX")


def _create_index(t: pp.ParseResults) -> ast.CreateIndex:
    unique, ine, name, table = t[0], t[1], t[2], t[3]
    using = options = None
    for part in t[4:]:
        if part[0] == "using":
            using = part[1]
        elif part[0] == "options":
            options = part[1]
        else:
            columns = [(c, desc) for c, desc, _ in part]
            collations = [coll for _, _, coll in part]
    return ast.CreateIndex(name, table, columns, unique, ine, using, options, collations)


create_index.set_parse_action(_create_index)
drop_index = (KX("DROP") + KX("INDEX") + _IF_EXISTS + qualified_table).set_name("DROP INDEX")
drop_index.set_parse_action(lambda t: ast.DropIndex(t[1], t[0]))

reindex_stmt = (KX("REINDEX") + pp.Opt(qualified_table)).set_name("REINDEX")
reindex_stmt.set_parse_action(lambda t: ast.Reindex(t[0] if t else None))

vacuum_stmt = (KX("VACUUM") + pp.Opt(ident)).set_name("VACUUM")
vacuum_stmt.set_parse_action(lambda t: ast.Vacuum(t[0] if t else None))
analyze_stmt = (KX("ANALYZE") + pp.Opt(qualified_table)).set_name("ANALYZE")
analyze_stmt.set_parse_action(lambda t: ast.Analyze(t[0] if t else None))

_TRANSACTION = pp.Opt(K("TRANSACTION")).suppress()
txn_stmt = pp.MatchFirst(
    [
        (
            KX("BEGIN") + pp.Opt(K("DEFERRED") | K("IMMEDIATE") | K("EXCLUSIVE")) + _TRANSACTION
        ).set_parse_action(lambda t: ast.TxnControl("BEGIN", t[0] if t else None)),
        ((K("COMMIT") | K("END")).suppress() + _TRANSACTION).set_parse_action(
            lambda: ast.TxnControl("COMMIT")
        ),
        (
            KX("ROLLBACK") + _TRANSACTION + KX("TO") + pp.Opt(KX("SAVEPOINT")) + any_name
        ).set_parse_action(lambda t: ast.TxnControl("ROLLBACK TO", name=t[0])),
        (KX("ROLLBACK") + _TRANSACTION).set_parse_action(lambda: ast.TxnControl("ROLLBACK")),
        (KX("SAVEPOINT") + any_name).set_parse_action(
            lambda t: ast.TxnControl("SAVEPOINT", name=t[0])
        ),
        (KX("RELEASE") + pp.Opt(KX("SAVEPOINT")) + any_name).set_parse_action(
            lambda t: ast.TxnControl("RELEASE", name=t[0])
        ),
    ]
).set_name("transaction statement")

pragma_stmt = (
    KX("PRAGMA") + any_name + pp.Opt((sup("=") + _pragma_value) | (LPAR + _pragma_value + RPAR))
).set_name("PRAGMA")


def _pragma(t: pp.ParseResults) -> ast.Pragma:
    value = None
    if len(t) > 1:
        v = t[1]
        value = v.value if isinstance(v, ast.Literal) else v
    return ast.Pragma(str(t[0]).lower(), value)


pragma_stmt.set_parse_action(_pragma)

statement = pp.Forward().set_name("statement")
explain_stmt = (
    KX("EXPLAIN") + pp.Opt(K("QUERY") + K("PLAN")).suppress() + statement
).set_parse_action(lambda t: ast.Explain(t[0]))


def _with_dml(t: pp.ParseResults) -> ast.Statement:
    (_, ctes), stmt = t[0], t[1]
    if isinstance(stmt, ast.Select):
        stmt.ctes = ctes
    else:
        stmt.ctes = list(ctes)
    return stmt  # type: ignore[no-any-return]


with_stmt = (
    with_clause
    + pp.MatchFirst(
        [
            select_body.copy().set_parse_action(_select),
            Peek(f"[{esc(code('INSERT') + code('REPLACE'))}]", insert_stmt),
            Peek(esc(code("UPDATE")), update_stmt),
            Peek(esc(code("DELETE")), delete_stmt),
        ]
    )
).set_parse_action(_with_dml)


def _k(*words: str) -> str:
    return "[" + esc("".join(code(w) for w in words)) + "]"


statement <<= pp.MatchFirst(
    [
        Peek(_k("SELECT", "VALUES"), select_stmt),
        Peek(_k("WITH"), with_stmt),
        Peek(_k("INSERT", "REPLACE"), insert_stmt),
        Peek(_k("UPDATE"), update_stmt),
        Peek(_k("DELETE"), delete_stmt),
        Peek(_k("CREATE"), create_table | create_virtual_table | create_view | create_index),
        Peek(_k("DROP"), drop_table | drop_view | drop_index),
        Peek(_k("ALTER"), alter_table),
        Peek(_k("REINDEX"), reindex_stmt),
        Peek(_k("VACUUM"), vacuum_stmt),
        Peek(_k("ANALYZE"), analyze_stmt),
        Peek(_k("BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"), txn_stmt),
        Peek(_k("PRAGMA"), pragma_stmt),
        Peek(_k("EXPLAIN"), explain_stmt),
    ]
).set_name("statement")
