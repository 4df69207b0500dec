"""The SQL grammar's tokens and expressions (pyparsing): keywords, names, literals,
parameters, operators by precedence. grammar_statements.py builds the statements
on them and grammar.py parses.

Reserved words are ``CaselessKeyword``s, every rule has a ``set_name`` (so a
syntax error says what was expected), and parse actions only build AST nodes
(``toondb.sql.ast``); nothing here looks at a table or evaluates an expression.
``select_stmt`` is declared here (a subquery is an expression) and defined in
grammar_statements.py.

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
from typing import Any

import pyparsing as pp

from toondb.sql import ast

pp.ParserElement.enable_packrat(cache_size_limit=None)


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


def sup(s: str) -> pp.ParserElement:
    return pp.Suppress(pp.Literal(s))


LPAR, RPAR, COMMA, DOT = sup("("), sup(")"), sup(","), sup(".")

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


def int_or_real(t: pp.ParseResults) -> Any:
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
numeric_literal.set_parse_action(int_or_real)
string_literal = pp.Regex(r"'(?:[^']|'')*'").set_name("string")
string_literal.set_parse_action(lambda t: ast.Literal(t[0][1:-1].replace("''", "'")))
_string_text = pp.Regex(r"'(?:[^']|'')*'").set_parse_action(lambda t: t[0][1:-1].replace("''", "'"))
blob_literal = pp.Regex(r"[xX]'(?:[0-9A-Fa-f]{2})*'").set_name("blob")
blob_literal.set_parse_action(lambda t: ast.Literal(bytes.fromhex(t[0][2:-1])))
null_literal = K("NULL").copy().set_parse_action(lambda: ast.Literal(None))
bool_literal = (K("TRUE") | K("FALSE")).set_parse_action(
    lambda t: ast.Literal(1 if t[0].upper() == "TRUE" else 0)
)
time_literal = (K("CURRENT_TIMESTAMP") | K("CURRENT_DATE") | K("CURRENT_TIME")).set_parse_action(
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
    exists_expr | cast_expr | case_expr | time_literal | null_literal | bool_literal
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
    _not
    + (K("LIKE") | K("GLOB") | K("MATCH"))
    + high_expr
    + pp.Optional(K("ESCAPE").suppress() + high_expr)
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
            _ahead(r"(?:IS|ISNULL|NOTNULL|NOT|IN|LIKE|GLOB|MATCH|BETWEEN)\b")
            + (null_tail | in_tail | like_tail | between_tail | (_is_op + unary))
        )
    )
).set_parse_action(_fold_action)
