"""The SQL grammar (pyparsing only) and ``parse(sql) -> Parsed``.

The grammar is SQLite's dialect, minus what docs/sql.md lists as left out.
Reserved words are ``CaselessKeyword``s, every rule has a ``set_name`` (so a
syntax error says what was expected), packrat memoisation is on, and a statement
must be consumed whole (``parse_all``). Parse actions only build AST nodes
(``toondb.sql.ast``); nothing here looks at a table or evaluates an expression.

Operator precedence, loosest first (as in SQLite's lang_expr.html)::

    OR
    AND
    NOT
    = == != <> IS [NOT] [NOT] IN [NOT] LIKE [NOT] GLOB [NOT] BETWEEN ISNULL NOTNULL
    < <= > >=
    & | << >>
    + -
    * / %
    ||
    unary - + ~, COLLATE
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

import pyparsing as pp

from toondb.errors import SQLSyntaxError
from toondb.sql import ast

pp.ParserElement.enable_packrat(cache_size_limit=None)

__all__ = ["parse", "parse_expression", "RESERVED"]

# Words that cannot be a bare identifier (a table, column or alias). Kept small:
# SQLite lets most keywords be names ("key", "text", "date", "value" ...).
RESERVED = """
ALL AND AS ASC BETWEEN BY CASE CAST CHECK COLLATE CONSTRAINT CREATE CROSS DEFAULT DELETE
DESC DISTINCT DROP ELSE END ESCAPE EXCEPT EXISTS FOREIGN FROM GLOB GROUP HAVING IN INDEX
INNER INSERT INTERSECT INTO IS ISNULL JOIN LEFT LIKE LIMIT NATURAL NOT NOTNULL NULL OFFSET
ON OR ORDER OUTER PRIMARY REFERENCES RETURNING RIGHT FULL SELECT SET TABLE THEN UNION
UNIQUE UPDATE USING VALUES WHEN WHERE WITH
""".split()

_K: dict[str, pp.CaselessKeyword] = {}


def K(word: str) -> pp.CaselessKeyword:
    """The keyword `word`, case-insensitive, matched only as a whole word."""
    if word not in _K:
        _K[word] = pp.CaselessKeyword(word, ident_chars=pp.identbodychars + "$").set_name(word)
    return _K[word]


def KS(words: str) -> pp.ParserElement:
    """A sequence of keywords ("NOT NULL"), as one token joined by a space."""
    parts = words.split()
    expr = pp.And([K(w) for w in parts]) if len(parts) > 1 else K(parts[0])
    return expr.set_parse_action(lambda: words).set_name(words)


def _word(x: Any) -> str:
    """The text of an optional keyword result (a str, or a ParseResults holding one)."""
    if isinstance(x, str):
        return x.upper()
    return str(x[0]).upper() if len(x) else ""


def _sup(s: str) -> pp.ParserElement:
    return pp.Suppress(pp.Literal(s))


LPAR, RPAR, COMMA, DOT = _sup("("), _sup(")"), _sup(","), _sup(".")

# ------------------------------------------------------------------ tokens

_reserved_re = pp.MatchFirst([K(w) for w in RESERVED])
_bare_ident = pp.Regex(r"[A-Za-z_][A-Za-z0-9_$]*")
_quoted_ident = (
    pp.Regex(r'"(?:[^"]|"")*"').set_parse_action(lambda t: t[0][1:-1].replace('""', '"'))
    | pp.Regex(r"`(?:[^`]|``)*`").set_parse_action(lambda t: t[0][1:-1].replace("``", "`"))
    | pp.Regex(r"\[[^\]]*\]").set_parse_action(lambda t: t[0][1:-1])
)
_unreserved = pp.Regex(
    r"(?!(?:" + "|".join(RESERVED) + r")(?![A-Za-z0-9_$]))[A-Za-z_][A-Za-z0-9_$]*",
    flags=__import__("re").IGNORECASE,
)
ident = (_unreserved | _quoted_ident).set_name("identifier")
# a name that may also be a keyword in positions where nothing else fits
any_name = (_bare_ident | _quoted_ident).set_name("name")


def _int_or_real(t: pp.ParseResults) -> Any:
    text = t[0]
    if text[:2] in ("0x", "0X"):
        v = int(text, 16)
        if v >= 1 << 63:
            if v >= 1 << 64:
                raise pp.ParseException(text, 0, "hex literal too big")
            v -= 1 << 64
        return ast.Literal(v)
    if any(c in text for c in ".eE"):
        return ast.Literal(float(text))
    v = int(text)
    if v == 1 << 63:  # only valid negated (-9223372036854775808); see the unary rule
        return ast.Literal(v)
    return ast.Literal(v if v <= (1 << 63) - 1 else float(text))


numeric_literal = pp.Regex(r"0[xX][0-9A-Fa-f]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?").set_name(
    "number"
)
numeric_literal.set_parse_action(_int_or_real)
string_literal = pp.Regex(r"'(?:[^']|'')*'").set_name("string")
string_literal.set_parse_action(lambda t: ast.Literal(t[0][1:-1].replace("''", "'")))
_string_text = pp.Regex(r"'(?:[^']|'')*'").set_parse_action(lambda t: t[0][1:-1].replace("''", "'"))
blob_literal = pp.Regex(r"[xX]'(?:[0-9A-Fa-f]{2})*'").set_name("blob")
blob_literal.set_parse_action(lambda t: ast.Literal(bytes.fromhex(t[0][2:-1])))
null_literal = K("NULL").copy().set_parse_action(lambda: ast.Literal(None))
bool_literal = (K("TRUE") | K("FALSE")).set_parse_action(
    lambda t: ast.Literal(1 if t[0].upper() == "TRUE" else 0)
)
_time_literal = (K("CURRENT_TIMESTAMP") | K("CURRENT_DATE") | K("CURRENT_TIME")).set_parse_action(
    lambda t: ast.Func(t[0].upper(), [])
)


def _param(s: str, loc: int, t: pp.ParseResults) -> ast.Param:
    text = t[0]
    p = ast.Param(-1, None)
    p.name = text  # resolved to an index after the whole statement parsed
    p.index = -loc - 1
    return p


param = pp.Regex(r"\?\d*|[:$@][A-Za-z_][A-Za-z0-9_]*").set_name("parameter")
param.set_parse_action(_param)

literal = (numeric_literal | string_literal | blob_literal | null_literal | bool_literal).set_name(
    "literal"
)

# ------------------------------------------------------------------ expressions

expr = pp.Forward().set_name("expression")
select_stmt = pp.Forward().set_name("SELECT statement")

type_name = pp.original_text_for(
    pp.OneOrMore(ident)
    + pp.Optional(LPAR + pp.Regex(r"[+-]?\d+") + pp.Optional(COMMA + pp.Regex(r"[+-]?\d+")) + RPAR)
).set_name("type name")

column_ref = (ident + pp.Optional(DOT + ident) + pp.Optional(DOT + ident)).set_name("column")


def _column(t: pp.ParseResults) -> ast.Column:
    if len(t) == 1:
        return ast.Column(None, t[0])
    return ast.Column(t[-2], t[-1])  # schema.table.column: the schema is ignored


column_ref.set_parse_action(_column)

func_args = pp.Literal("*").set_parse_action(lambda: "*") | pp.Optional(
    K("DISTINCT")("distinct")
) + pp.Optional(pp.Group(pp.DelimitedList(expr))("args"))
func_call = (ident("fname") + LPAR + func_args + RPAR).set_name("function call")


def _func(t: pp.ParseResults) -> ast.Func:
    name = t.fname.upper()
    if len(t) > 1 and t[1] == "*":
        return ast.Func(name, [], star=True)
    args = list(t.args) if "args" in t else []
    return ast.Func(name, args, distinct="distinct" in t)


func_call.set_parse_action(_func)

cast_expr = (K("CAST") + LPAR + expr + K("AS") + type_name + RPAR).set_name("CAST")
cast_expr.set_parse_action(lambda t: ast.Cast(t[1], t[3]))

case_expr = (
    K("CASE")
    + pp.Optional(~K("WHEN") + expr)("operand")
    + pp.Group(pp.OneOrMore(pp.Group(K("WHEN").suppress() + expr + K("THEN").suppress() + expr)))(
        "whens"
    )
    + pp.Optional(K("ELSE").suppress() + expr)("else_")
    + K("END")
).set_name("CASE")


def _case(t: pp.ParseResults) -> ast.Case:
    operand = t.operand[0] if t.operand else None
    whens = [(w[0], w[1]) for w in t.whens]
    else_ = t.else_[0] if t.else_ else None
    return ast.Case(operand, whens, else_)


case_expr.set_parse_action(_case)

subquery = (LPAR + select_stmt + RPAR).set_name("subquery")
exists_expr = (pp.Optional(K("NOT")) + K("EXISTS") + subquery).set_name("EXISTS")


def _exists(t: pp.ParseResults) -> ast.Expr:
    node: ast.Expr = ast.Exists(t[-1])
    if t[0].upper() == "NOT":
        node = ast.Unary("NOT", node)
    return node


exists_expr.set_parse_action(_exists)
scalar_subquery = subquery.copy().set_parse_action(lambda t: ast.Subquery(t[0]))
paren_expr = (LPAR + expr + RPAR).set_name("parenthesised expression")


# Each alternative is guarded by a one-regex look at the next token, so an operand
# costs a few match attempts instead of one per kind of operand (parsing speed).
def _ahead(pattern: str) -> pp.ParserElement:
    return pp.FollowedBy(pp.Regex(pattern, flags=re.IGNORECASE))


_kw_operand = (
    exists_expr | cast_expr | case_expr | _time_literal | null_literal | bool_literal
).set_name("operand")
primary = (
    (_ahead(r"[0-9.]") + numeric_literal)
    | string_literal
    | (_ahead(r"[xX]'") + blob_literal)
    | param
    | (_ahead(r"\(") + (scalar_subquery | paren_expr))
    | (
        _ahead(r"(?:NOT|EXISTS|CAST|CASE|NULL|TRUE|FALSE|CURRENT_(?:TIMESTAMP|DATE|TIME))\b")
        + _kw_operand
    )
    | func_call
    | column_ref
).set_name("operand")

# unary prefix operators and COLLATE
unary = pp.Forward().set_name("unary expression")


def _binary_only(s: str, loc: int, t: pp.ParseResults) -> None:
    # toondb compares text byte by byte; a collation it would ignore is refused
    # rather than giving other rows than SQLite would (a ParseSyntaxException:
    # named elements around it keep its message)
    if t[0].upper() != "BINARY":
        raise pp.ParseSyntaxException(
            s, loc, f"COLLATE {t[0]} is not supported: toondb compares text as BINARY only"
        )


collation_name = any_name.copy().add_parse_action(_binary_only).set_name("collation")
collate_suffix = pp.Optional(
    _ahead(r"COLLATE\b") + pp.OneOrMore(K("COLLATE").suppress() + collation_name)
)


def _collate(t: pp.ParseResults) -> ast.Expr:
    node = t[0]
    for name in t[1:]:
        node = ast.Collate(node, name.upper())
    return node


def _unary(t: pp.ParseResults) -> ast.Expr:
    op, operand = t[0], t[1]
    if op == "-" and isinstance(operand, ast.Literal) and operand.value == 1 << 63:
        return ast.Literal(-(1 << 63))
    return ast.Unary(op, operand)


unary <<= (pp.Regex(r"[-+~]") + unary).set_parse_action(_unary) | (
    primary + collate_suffix
).set_parse_action(_collate)


# Binary operators are parsed flat (operand op operand op ...) and folded by
# precedence in Python (shunting-yard): one grammar level instead of nine, which
# makes parsing several times faster than one pyparsing rule per level.
PRECEDENCE = {
    "||": 9, "*": 8, "/": 8, "%": 8, "+": 7, "-": 7, "<<": 6, ">>": 6, "&": 6, "|": 6,
    "<": 5, "<=": 5, ">": 5, ">=": 5, "=": 4, "!=": 4, "IS": 4, "ISNOT": 4,
    "AND": 2, "OR": 1,
}  # fmt: skip
NOT_PREC = 3  # prefix NOT binds looser than comparisons, tighter than AND
POSTFIX_PREC = 4  # IN, LIKE, GLOB, BETWEEN, IS NULL, ... (the equality level)


class _Op:
    """A binary operator token of the flat form."""

    __slots__ = ("op",)

    def __init__(self, op: str) -> None:
        self.op = op


class _Not:
    __slots__ = ()


class _Postfix:
    __slots__ = ("kind", "args")

    def __init__(self, kind: str, args: tuple[Any, ...]) -> None:
        self.kind = kind
        self.args = args


def _fold(tokens: list[Any]) -> ast.Expr:
    out: list[ast.Expr] = []
    ops: list[Any] = []  # _Op or _Not

    def prec(o: Any) -> int:
        return NOT_PREC if isinstance(o, _Not) else PRECEDENCE[o.op]

    def reduce() -> None:
        o = ops.pop()
        if isinstance(o, _Not):
            out.append(ast.Unary("NOT", out.pop()))
        else:
            right = out.pop()
            out.append(ast.Binary(o.op, out.pop(), right))

    for tok in tokens:
        if isinstance(tok, _Not):
            ops.append(tok)
        elif isinstance(tok, _Op):
            p = PRECEDENCE[tok.op]
            while ops and prec(ops[-1]) >= p:
                reduce()
            ops.append(tok)
        elif isinstance(tok, _Postfix):
            while ops and prec(ops[-1]) >= POSTFIX_PREC:
                reduce()
            out.append(_apply_postfix(out.pop(), tok))
        else:
            out.append(tok)
    while ops:
        reduce()
    return out[0]


def _apply_postfix(node: ast.Expr, tail: _Postfix) -> ast.Expr:
    kind, a = tail.kind, tail.args
    if kind == "null":
        return ast.IsNull(node, not a[0])
    if kind == "between":
        return ast.Between(node, a[1], a[2], a[0])
    if kind == "like":
        return ast.Like(a[1], node, a[2], a[3], a[0])
    negated, (form, what) = a
    if form == "select":
        return ast.InSelect(node, what, negated)
    if form == "list":
        return ast.InList(node, what, negated)
    sel = ast.Select(  # x IN table
        [
            ast.SelectCore(
                False,
                [ast.ResultColumn(ast.Star(), None, "*")],
                ast.TableRef(what.name, None),
                None,
                [],
                None,
            )
        ],
        [],
        [],
        None,
        None,
    )
    return ast.InSelect(node, sel, negated)


def _fold_action(t: pp.ParseResults) -> ast.Expr:
    return _fold(list(t))


_sym_op = pp.Regex(r"\|\||<<|>>|<=|>=|<>|!=|==|=|[*/%+\-&|<>]").set_name("operator")
_sym_op.set_parse_action(lambda t: _Op({"==": "=", "<>": "!="}.get(t[0], t[0])))
_high_op = pp.Regex(r"\|\||<<|>>|<=|>=|(?!<>)[*/%+\-&|<>]").set_name("operator")
_high_op.set_parse_action(lambda t: _Op(t[0]))
# an operand of BETWEEN / LIKE: comparisons and tighter only
high_expr = (
    (unary + pp.ZeroOrMore(_high_op + unary)).set_parse_action(_fold_action).set_name("expression")
)
_is_op = (
    K("IS") + pp.Optional(K("NOT")) + pp.Optional(K("DISTINCT") + K("FROM"))
).set_parse_action(
    lambda t: _Op(
        ("ISNOT" if len(t) in (2, 4) else "IS")
        if len(t) in (1, 2)
        else ("IS" if len(t) == 4 else "ISNOT")
    )
)
_not = pp.Optional(K("NOT")).set_parse_action(lambda t: [bool(t)])
_not_prefix = K("NOT").copy().set_parse_action(lambda: _Not())
in_tail = (
    _not
    + K("IN").suppress()
    + (
        (LPAR + select_stmt + RPAR).set_parse_action(lambda t: ("select", t[0]))
        | (LPAR + pp.Optional(pp.DelimitedList(expr)) + RPAR).set_parse_action(
            lambda t: ("list", list(t))
        )
        | column_ref.copy().set_parse_action(lambda t: ("table", _column(t)))
    )
).set_name("IN")
in_tail.set_parse_action(lambda t: _Postfix("in", (t[0], t[1])))
like_tail = (
    _not + (K("LIKE") | K("GLOB")) + high_expr + pp.Optional(K("ESCAPE").suppress() + high_expr)
).set_name("LIKE")
like_tail.set_parse_action(
    lambda t: _Postfix("like", (t[0], t[1].upper(), t[2], t[3] if len(t) > 3 else None))
)
between_tail = (
    _not + K("BETWEEN").suppress() + high_expr + K("AND").suppress() + high_expr
).set_name("BETWEEN")
between_tail.set_parse_action(lambda t: _Postfix("between", (t[0], t[1], t[2])))
null_tail = (
    KS("IS NOT NULL") | KS("IS NULL") | KS("NOT NULL") | K("ISNULL") | K("NOTNULL")
).set_name("NULL test")
null_tail.set_parse_action(lambda t: _Postfix("null", (t[0].upper() in ("IS NULL", "ISNULL"),)))
_logic_op = (K("AND") | K("OR")).set_parse_action(lambda t: _Op(t[0].upper()))
expr <<= (
    pp.ZeroOrMore(_not_prefix)
    + unary
    + pp.ZeroOrMore(
        (_sym_op + unary)
        | (_logic_op + pp.ZeroOrMore(_not_prefix) + unary)
        | (
            _ahead(r"(?:IS|ISNULL|NOTNULL|NOT|IN|LIKE|GLOB|BETWEEN)\b")
            + (null_tail | in_tail | like_tail | between_tail | (_is_op + unary))
        )
    )
).set_parse_action(_fold_action)

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
join_source = pp.Forward()
table_source <<= (
    (LPAR + select_stmt + RPAR + pp.Optional(alias)).set_parse_action(
        lambda t: ast.SubqueryRef(t[0], t[1] if len(t) > 1 else None)
    )
    | (LPAR + join_source + RPAR)
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
            + pp.Group(pp.DelimitedList(pp.Group(ident + _sup("=") + expr)))
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
    + pp.Group(pp.DelimitedList(pp.Group(ident + _sup("=") + expr)))("sets")
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
    lit = _int_or_real(pp.ParseResults([text.lstrip("+-")]))
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
                | _time_literal
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
            if isinstance(val, str):  # parenthesised expression text
                col.default_text = val
                col.default = parse_expression(val)
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
    + LPAR
    + pp.Group(pp.DelimitedList(index_column))("cols")
    + RPAR
).set_name("CREATE INDEX")
create_index.set_parse_action(
    lambda t: ast.CreateIndex(t.name, t.table, list(t.cols), bool(t.unique), bool(t.ine))
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
        (_sup("=") + (signed_number | string_literal | any_name))
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
_expr_only = expr.copy()

# Comments are blanked out before parsing (same length, newlines kept, so error
# positions do not move) rather than declared as pyparsing ignorables, which
# every element would try to skip at every position (twice as slow).
_TOKENS_WITH_COMMENTS = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|(--[^\n]*|/\*.*?(?:\*/|\Z))", re.DOTALL
)


def _blank_comments(sql: str) -> str:
    if "--" not in sql and "/*" not in sql:
        return sql

    def repl(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)
        return "".join(c if c == "\n" else " " for c in m.group(1))

    return _TOKENS_WITH_COMMENTS.sub(repl, sql)


# ------------------------------------------------------------------ error location
# A syntax error is reported where the parse got furthest: every terminal records
# the position at which it failed to match (the caret goes under that token).

_furthest = [0]


def _note_failure(s: str, loc: int, expr: pp.ParserElement, err: Exception) -> None:
    at = getattr(err, "loc", loc)
    if at > _furthest[0]:
        _furthest[0] = at


def _track_terminals(root: pp.ParserElement) -> None:
    seen: set[int] = set()
    stack = [root]
    while stack:
        el = stack.pop()
        if id(el) in seen:
            continue
        seen.add(id(el))
        if isinstance(el, pp.Token):
            el.set_fail_action(_note_failure)
        for child in getattr(el, "exprs", []) or []:
            stack.append(child)
        child = getattr(el, "expr", None)
        if isinstance(child, pp.ParserElement):
            stack.append(child)


_track_terminals(sql_script)
_track_terminals(_expr_only)

# ------------------------------------------------------------------ parse()

_lock = threading.Lock()  # pyparsing's packrat cache is not thread-safe


def _assign_params(node: Any, state: dict[str, Any]) -> None:
    """Number the parameters in text order as SQLite does: ``?`` takes the next
    slot after the largest so far, ``?N`` takes slot N, a name keeps its first slot."""
    params: list[ast.Param] = []

    def walk(n: Any) -> None:
        if isinstance(n, ast.Param):
            params.append(n)
        elif isinstance(n, ast.Node):
            for k in n.__slots__:
                walk(getattr(n, k))
        elif isinstance(n, (list, tuple)):
            for x in n:
                walk(x)

    walk(node)
    seen: set[int] = set()
    ordered = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            ordered.append(p)
    ordered.sort(key=lambda p: -p.index - 1)
    for p in ordered:
        text = p.name or "?"
        if text == "?":
            state["max"] += 1
            p.index, p.name = state["max"] - 1, None
        elif text[0] == "?":
            n = int(text[1:])
            if n < 1 or n > 32766:
                raise SQLSyntaxError(f"parameter {text} out of range (1..32766)")
            p.index, p.name = n - 1, None
            state["max"] = max(state["max"], n)
        else:
            name = text[1:]
            if name not in state["names"]:
                state["max"] += 1
                state["names"][name] = state["max"] - 1
            p.index, p.name = state["names"][name], name


def _syntax_error(sql: str, e: pp.ParseBaseException) -> SQLSyntaxError:
    loc = min(
        max(e.loc, _furthest[0]) if not isinstance(e, pp.ParseFatalException) else e.loc, len(sql)
    )
    while loc < len(sql) and sql[loc].isspace():
        loc += 1
    lineno = sql.count("\n", 0, loc) + 1
    line_start = sql.rfind("\n", 0, loc) + 1
    line_end = sql.find("\n", loc)
    if line_end < 0:
        line_end = len(sql)
    line = sql[line_start:line_end]
    col = loc - line_start + 1
    found = sql[loc:].split(None, 1)[0][:20] if sql[loc:].strip() else "end of input"
    msg = (
        e.msg
        if isinstance(e, pp.ParseFatalException)
        else (
            f"near {found!r}: syntax error"
            if found != "end of input"
            else "incomplete input: syntax error"
        )
    )
    if (
        not isinstance(e, pp.ParseFatalException)
        and e.msg
        and e.msg.startswith("Expected")
        and e.loc == loc
        and "end of text" not in e.msg
    ):
        msg += f" ({e.msg[:120]})"
    caret = " " * (col - 1) + "^"
    err = SQLSyntaxError(f"{msg} at line {lineno}, column {col}\n  {line}\n  {caret}")
    err.line = lineno  # type: ignore[attr-defined]
    err.column = col  # type: ignore[attr-defined]
    err.text = line  # type: ignore[attr-defined]
    return err


def parse_script(sql: str) -> list[ast.Parsed]:
    """Every statement of sql (separated by ';'), parsed; SQLSyntaxError if any does not parse."""
    if not isinstance(sql, str):
        raise TypeError(f"SQL must be a str, not {type(sql).__name__}")
    with _lock:
        _furthest[0] = 0
        try:
            result = sql_script.parse_string(_blank_comments(sql), parse_all=True)
        except pp.ParseBaseException as e:
            raise _syntax_error(sql, e) from None
        finally:
            pp.ParserElement.reset_cache()
    out = []
    for stmt in result:
        state: dict[str, Any] = {"max": 0, "names": {}}
        _assign_params(stmt, state)
        out.append(ast.Parsed(stmt, state["max"], state["names"], sql))
    return out


@lru_cache(maxsize=1024)
def parse(sql: str) -> tuple[ast.Parsed, ...]:
    """parse_script, cached by the SQL text (the AST is never mutated afterwards)."""
    return tuple(parse_script(sql))


def parse_expression(text: str) -> ast.Expr:
    """One expression (a DEFAULT or CHECK recorded in the catalog)."""
    with _lock:
        _furthest[0] = 0
        try:
            node = _expr_only.parse_string(_blank_comments(text), parse_all=True)[0]
        except pp.ParseBaseException as e:
            raise _syntax_error(text, e) from None
        finally:
            pp.ParserElement.reset_cache()
    return node


def first_statement(sql: str) -> ast.Parsed | None:
    stmts = parse(sql)
    return stmts[0] if stmts else None
