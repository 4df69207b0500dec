"""The SQL grammar's terminals and expressions (pyparsing over token codes):
keywords, names, literals, parameters, operators by precedence.
grammar_statements.py builds the statements on them and grammar.py parses.

The grammar does not read characters: it reads the code string of
``lexer.tokenize`` (one character per token, see lexer.py), so a terminal is
one character test (``Tok``) and whitespace, comments and the case of keywords
are the lexer's business. Every rule has a ``set_name`` (so a syntax error says
what was expected), and parse actions only build AST nodes (``toondb.sql.ast``);
nothing here looks at a table or evaluates an expression. ``select_stmt`` is
declared here (a subquery is an expression) and defined in grammar_statements.py.

Written for speed (measured in docs/sql.md, "The compile path"): a run of
operands and binary operators without parentheses (``a+b*2 > c AND d = 5``) is
matched by one regex over the codes (``CHAIN``), and the operands and operators
of an expression are folded by precedence in Python (shunting-yard, ``fold``)
rather than by one pyparsing rule per precedence level, each of which would be
tried at every operand. Choices look at the next code before trying an
alternative where a failed attempt would be common. There is no packrat cache:
nothing is parsed twice.

Operator precedence, loosest first (as in SQLite's lang_expr.html)::

    OR
    AND
    NOT
    = == != <> IS [NOT] [NOT] IN [NOT] LIKE [NOT] GLOB [NOT] MATCH [NOT] REGEXP
      [NOT] BETWEEN ISNULL NOTNULL
    < <= > >=
    & | << >>
    + -
    * / %
    ||
    COLLATE
    unary - + ~
"""

from __future__ import annotations

import re
from typing import Any

import pyparsing as pp

from toondb.sql import ast
from toondb.sql.grammar_elements import Commas, Many, Maybe, Peek, Rx, Switch, Tok, fail
from toondb.sql.lexer import CODES, KEYWORDS, RESERVED, Tokens, literal_value

# ------------------------------------------------------------------ terminals


def _rx(pattern: str, name: str) -> Rx:
    return Rx(pattern).set_name(name)


def code(word: str) -> str:
    """The code of a keyword (lexer.KEYWORDS), or of an operator or punctuation."""
    return CODES[word] if word in CODES else word


def esc(codes: str) -> str:
    """codes as a regex character class body."""
    return "".join(re.escape(c) for c in codes)


def _upper(s: Tokens, i: int) -> str:
    return str(s.vals[i]).upper()


_K: dict[str, pp.ParserElement] = {}


def K(word: str) -> pp.ParserElement:
    """The keyword `word`; its result is the word upper-cased. A word that is
    not one of SQLite's keywords (lexer.KEYWORDS: STRICT, STORED ...) is an
    identifier token with that text."""
    if word not in _K:
        if word in CODES:
            _K[word] = Tok(CODES[word], word, _upper)
        else:
            _K[word] = _WordIs(word)
    return _K[word]


class _WordIs(Tok):
    def __init__(self, word: str) -> None:
        super().__init__("iq", word, _upper)
        self.word = word

    def parseImpl(self, instring: Any, loc: int, do_actions: bool = True) -> Any:
        if (
            loc < len(instring)
            and instring[loc] == "i"
            and str(instring.vals[loc]).upper() == self.word
        ):
            return loc + 1, self.word
        raise fail(instring, loc, self)


_KX: dict[str, pp.ParserElement] = {}


def KX(word: str) -> pp.ParserElement:
    """The keyword `word`, with no result (K(word).suppress() in one element)."""
    if word not in _KX:
        if word in CODES:
            _KX[word] = Tok(CODES[word], word, keep=False)
        else:
            _KX[word] = K(word).suppress()
    return _KX[word]


def KS(words: str) -> pp.ParserElement:
    """A sequence of keywords ("NOT NULL"), as one token joined by a space."""
    parts = words.split()
    expr = pp.And([K(w) for w in parts]) if len(parts) > 1 else K(parts[0])
    return expr.set_parse_action(lambda: words).set_name(words)


def sup(s: str) -> pp.ParserElement:
    return Tok(code(s), repr(s), keep=False)


LPAR, RPAR, COMMA, DOT = sup("("), sup(")"), sup(","), sup(".")

# Which codes are names: an identifier may be any keyword but the reserved ones
# (and TRUE, FALSE, CURRENT_* stand for their values where an operand may be)
_VALUE_WORDS = ("TRUE", "FALSE", "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "NULL")
NAME_CODES = "iq" + "".join(CODES[w] for w in KEYWORDS if w not in RESERVED)
ANY_NAME_CODES = "iq" + "".join(CODES.values())
_VALUE_WORDS_CODES = "".join(CODES[w] for w in _VALUE_WORDS)
_EXPR_NAME_CODES = "".join(c for c in NAME_CODES if c not in _VALUE_WORDS_CODES)

ident = Tok(NAME_CODES, "identifier")
# a name that may also be a keyword in positions where nothing else fits
any_name = Tok(ANY_NAME_CODES, "name")

# ------------------------------------------------------------------ literals


def _literal(s: Tokens, i: int) -> ast.Expr:
    """A literal token: a Slot when the statement cache parses literals into
    slots (lexer.Tokens.slots), else its value."""
    text = s.vals[i]
    c = s[i]
    slots = s.slots
    if slots is not None and i in slots:
        if c != "n" or len(text) < 19 or text[:2] in ("0x", "0X"):
            return ast.Slot(slots[i])
        if type(literal_value(c, text)) is not int or int(text) <= (1 << 63) - 1:
            return ast.Slot(slots[i])
        s.baked.add(i)  # 2**63: only unary minus makes it valid (see _unary)
    try:
        return ast.Literal(literal_value(c, text))
    except ValueError as e:
        raise pp.ParseFatalException(s, i, str(e)) from None


def literal_text_value(s: Tokens, i: int) -> Any:
    """A literal's value where the grammar consumes it (a type's size, a DEFAULT,
    a PRAGMA's argument): the parse then depends on it (lexer.Tokens.baked)."""
    s.baked.add(i)
    return literal_value(s[i], s.vals[i])


numeric_literal = Tok("n", "number", _literal)
string_literal = Tok("s", "string", _literal)
blob_literal = Tok("x", "blob", _literal)
null_literal = Tok(CODES["NULL"], "NULL", lambda s, i: ast.Literal(None))
bool_literal = Tok(
    CODES["TRUE"] + CODES["FALSE"],
    "TRUE/FALSE",
    lambda s, i: ast.Literal(1 if s[i] == CODES["TRUE"] else 0),
)
time_literal = Tok(
    CODES["CURRENT_TIMESTAMP"] + CODES["CURRENT_DATE"] + CODES["CURRENT_TIME"],
    "CURRENT_TIMESTAMP",
    lambda s, i: ast.Func(str(s.vals[i]).upper(), []),
)
literal = Tok("nsx" + CODES["NULL"] + CODES["TRUE"] + CODES["FALSE"], "literal")
literal.value = lambda s, i: _keyword_operand(s, i) if s[i] not in "nsx" else _literal(s, i)


def _param_node(s: Tokens, i: int) -> ast.Param:
    p = ast.Param(-1, None)
    p.name = s.vals[i]  # resolved to an index after the whole statement parsed
    p.index = -i - 1
    return p


param = Tok("?", "parameter", _param_node)

_KW_OPERAND = {
    CODES["NULL"]: lambda s, i: ast.Literal(None),
    CODES["TRUE"]: lambda s, i: ast.Literal(1),
    CODES["FALSE"]: lambda s, i: ast.Literal(0),
    CODES["CURRENT_TIMESTAMP"]: lambda s, i: ast.Func("CURRENT_TIMESTAMP", []),
    CODES["CURRENT_DATE"]: lambda s, i: ast.Func("CURRENT_DATE", []),
    CODES["CURRENT_TIME"]: lambda s, i: ast.Func("CURRENT_TIME", []),
}


def _keyword_operand(s: Tokens, i: int) -> ast.Expr:
    return _KW_OPERAND[s[i]](s, i)  # type: ignore[no-untyped-call]


# ------------------------------------------------------------------ operators
# The flat form of an expression: operands, _Op, _Not and _Postfix in text order,
# folded by precedence (fold).

PRECEDENCE = {
    "||": 9, "->": 9, "->>": 9, "*": 8, "/": 8, "%": 8, "+": 7, "-": 7, "<<": 6, ">>": 6, "&": 6, "|": 6,
    "<": 5, "<=": 5, ">": 5, ">=": 5, "=": 4, "!=": 4, "IS": 4, "ISNOT": 4,
    "AND": 2, "OR": 1,
}  # fmt: skip
NOT_PREC = 3  # prefix NOT binds looser than comparisons, tighter than AND
POSTFIX_PREC = 4  # IN, LIKE, GLOB, MATCH, BETWEEN, IS NULL, ... (the equality level)


class _Op:
    """A binary operator of the flat form."""

    __slots__ = ("op", "prec")

    def __init__(self, op: str) -> None:
        self.op = op
        self.prec = PRECEDENCE[op]


class _Not:
    __slots__ = ()
    prec = NOT_PREC


class _Postfix:
    __slots__ = ("kind", "args")

    def __init__(self, kind: str, args: tuple[Any, ...]) -> None:
        self.kind = kind
        self.args = args


_OPS = {op: _Op(op) for op in PRECEDENCE}
_NOT = _Not()
# a symbolic operator's code -> its operator
_SYM = {
    "c": "||", "*": "*", "/": "/", "%": "%", "+": "+", "-": "-", "l": "<<", "r": ">>",
    "&": "&", "|": "|", "<": "<", "{": "<=", ">": ">", "}": ">=", "=": "=", "!": "!=",
    "a": "->", "A": "->>",
}  # fmt: skip
_ARROWS = {"->": "JSON_ARROW", "->>": "JSON_ARROW2"}  # the JSON operators are functions
_AND, _OR, _IS, _NOTC = code("AND"), code("OR"), code("IS"), code("NOT")
_DISTINCT = code("DISTINCT")


def fold(tokens: list[Any]) -> ast.Expr:
    """The flat form of an expression -> its tree, by precedence (shunting-yard;
    binary operators associate to the left)."""
    if len(tokens) == 1:
        return tokens[0]  # type: ignore[no-any-return]
    out: list[ast.Expr] = []
    ops: list[Any] = []  # _Op or _Not

    def reduce() -> None:
        o = ops.pop()
        if o is _NOT:
            out.append(ast.Unary("NOT", out.pop()))
        elif o.op in _ARROWS:
            right = out.pop()
            out.append(ast.Func(_ARROWS[o.op], [out.pop(), right]))
        else:
            right = out.pop()
            out.append(ast.Binary(o.op, out.pop(), right))

    for tok in tokens:
        tp = type(tok)
        if tp is _Op:
            p = tok.prec
            while ops and ops[-1].prec >= p:
                reduce()
            ops.append(tok)
        elif tp is _Not:
            ops.append(tok)
        elif tp is _Postfix:
            if tok.kind == "collate":
                out.append(ast.Collate(out.pop(), tok.args[0]))
                continue
            while ops and ops[-1].prec >= POSTFIX_PREC:
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
        if a[1] == "REGEXP":  # SQLite's X REGEXP Y: a call of the function regexp(Y, X)
            call: ast.Expr = ast.Func("REGEXP", [a[2], node] + ([a[3]] if a[3] else []), False)
            return ast.Unary("NOT", call) if a[0] else call
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


def _unary(op: str, operand: ast.Expr) -> ast.Expr:
    if (
        op == "-"
        and type(operand) is ast.Literal
        and type(operand.value) is int
        and operand.value == 1 << 63
    ):
        return ast.Literal(-(1 << 63))
    return ast.Unary(op, operand)


# ------------------------------------------------------------------ operator chains
# CHAIN: operand (binary-operator NOT* operand)*, where an operand is a literal,
# a parameter, a column or one of the value keywords, with prefix - + ~; one
# regex match, turned into the flat form by _chain.

_VALUE_KW = esc("".join(CODES[w] for w in _VALUE_WORDS))
_COL = f"[{esc(_EXPR_NAME_CODES)}](?:\\.[{esc(NAME_CODES)}]){{0,2}}(?![(.])"
_OPND = f"[-+~]*(?:[nsx?{_VALUE_KW}]|{_COL})"
_IS_OP = f"{esc(_IS)}(?!{esc(_NOTC)}?{esc(code('NULL'))})(?:{esc(_NOTC)})?(?:{esc(_DISTINCT)}{esc(code('FROM'))})?"
_BIN = f"(?:[c*/%+\\-lr&|<{{>}}=!aA]|{esc(_AND)}|{esc(_OR)}|{_IS_OP})"
_HBIN = "[c*/%+\\-lr&|<{>}aA]"  # BETWEEN's and LIKE's operands: no = != IS AND OR
CHAIN_RE = f"{_OPND}(?:{_BIN}{esc(_NOTC)}*{_OPND})*"
HCHAIN_RE = f"{_OPND}(?:{_HBIN}{_OPND})*"
BIN_RE = f"{_BIN}{esc(_NOTC)}*"


def _column_at(s: Tokens, i: int, end: int) -> tuple[ast.Column, int]:
    vals = s.vals
    first = vals[i]
    i += 1
    if i < end and s[i] == ".":
        second = vals[i + 1]
        i += 2
        if i < end and s[i] == ".":
            third = vals[i + 1]
            return ast.Column(second, third), i + 2  # schema.table.column: no schema
        return ast.Column(first, second), i
    return ast.Column(None, first), i


def _operator_at(s: Tokens, i: int, out: list[Any], nots: bool = True) -> int:
    """The binary operator at i (and the NOTs after it) appended to out; the next index."""
    c = s[i]
    if c in _SYM:
        out.append(_OPS[_SYM[c]])
        i += 1
    elif c == _AND:
        out.append(_OPS["AND"])
        i += 1
    elif c == _OR:
        out.append(_OPS["OR"])
        i += 1
    else:  # IS [NOT] [DISTINCT FROM]
        i += 1
        negated = s[i] == _NOTC if i < len(s) else False
        if negated:
            i += 1
        if i < len(s) and s[i] == _DISTINCT:
            i += 2
            negated = not negated  # IS DISTINCT FROM is IS NOT
        out.append(_OPS["ISNOT" if negated else "IS"])
    if nots:
        n = len(s)
        while i < n and s[i] == _NOTC:
            out.append(_NOT)
            i += 1
    return i


def chain_at(s: Tokens, i: int, end: int, out: list[Any]) -> None:
    """The flat form of the chain of tokens i..end-1 (a CHAIN_RE match), appended to out."""
    while True:
        c = s[i]
        pre = None
        while c in "-+~":
            if pre is None:
                pre = []
            pre.append(c)
            i += 1
            c = s[i]
        node: ast.Expr
        if c == "n" or c == "s" or c == "x":
            node = _literal(s, i)
            i += 1
        elif c == "?":
            node = _param_node(s, i)
            i += 1
        elif c in _KW_OPERAND:
            node = _KW_OPERAND[c](s, i)  # type: ignore[no-untyped-call]
            i += 1
        else:
            node, i = _column_at(s, i, end)
        if pre is not None:
            for op in reversed(pre):
                node = _unary(op, node)
        out.append(node)
        if i >= end:
            return
        i = _operator_at(s, i, out)


# ------------------------------------------------------------------ expressions

expr = pp.Forward().set_name("expression")
select_stmt = pp.Forward().set_name("SELECT statement")

_SIZE = Tok("n", "number", literal_text_value)
_SIGNED_SIZE = pp.Opt(Tok("+-", "sign")) + _SIZE


def _type_name(s: Tokens, loc: int, t: pp.ParseResults) -> str:
    # the name as written, words joined by one space (the size kept as written)
    end = loc
    while end < len(s) and s[end] in NAME_CODES:
        end += 1
    words = " ".join(str(s.vals[k]) for k in range(loc, end))
    if end < len(s) and s[end] == "(":
        close = s.index(")", end)
        words += s.sql[s.starts[end] : s.ends[close]]
    return words


type_name = (
    pp.OneOrMore(ident) + pp.Opt(LPAR + _SIGNED_SIZE + pp.Opt(COMMA + _SIGNED_SIZE) + RPAR)
).set_name("type name")
type_name.set_parse_action(_type_name)

column_ref = (ident + pp.Opt(DOT + ident) + pp.Opt(DOT + ident)).set_name("column")


def _column(t: pp.ParseResults) -> ast.Column:
    if len(t) == 1:
        return ast.Column(None, t[0])
    return ast.Column(t[-2], t[-1])  # schema.table.column: the schema is ignored


column_ref.set_parse_action(_column)

_STAR = Tok("*", "*", lambda s, i: "*")
_DISTINCT_KW = K("DISTINCT")


def _func(t: pp.ParseResults) -> ast.Expr:
    items = list(t)
    name = items.pop(0).upper()
    flt = over = None
    while items and isinstance(items[-1], tuple):
        tag, value = items.pop()
        if tag == "filter":
            flt = value
        else:
            over = value
    if items and items[0] == "*":
        f = ast.Func(name, [], star=True, filter=flt)
    else:
        distinct = bool(items) and items[0] == "DISTINCT"
        f = ast.Func(name, items[1:] if distinct else items, distinct=distinct, filter=flt)
    return ast.WindowFunc(f, over) if over is not None else f


# ---- window functions: f(...) [FILTER (WHERE c)] [OVER (window) | OVER name]


def _ordering(t: pp.ParseResults) -> ast.OrderItem:
    desc = nulls = None
    for x in t[1:]:
        if isinstance(x, tuple):
            nulls = x[1] == "FIRST"
        else:
            desc = x == "DESC"
    return ast.OrderItem(t[0], bool(desc), nulls)


# expr [ASC|DESC] [NULLS FIRST|LAST]: a term of ORDER BY, in a window and in a SELECT
ordering_term = (
    expr
    + Maybe(code("ASC") + code("DESC"), K("ASC") | K("DESC"))
    + Maybe(code("NULLS"), (KX("NULLS") + (K("FIRST") | K("LAST"))).set_parse_action(lambda t: ("nulls", t[0])))
).set_name("ORDER BY term").set_parse_action(_ordering)  # fmt: skip
_frame_bound = Switch(
    {
        code("UNBOUNDED"): (KX("UNBOUNDED") + (K("PRECEDING") | K("FOLLOWING"))).set_parse_action(
            lambda t: ("UNBOUNDED " + t[0], None)
        ),
        code("CURRENT"): (KX("CURRENT") + KX("ROW")).set_parse_action(
            lambda: (ast.CURRENT_ROW, None)
        ),
    },
    (expr + (K("PRECEDING") | K("FOLLOWING"))).set_parse_action(lambda t: (t[1], t[0])),
).set_name("frame bound")
_exclude = (
    KX("EXCLUDE") + (KS("NO OTHERS") | KS("CURRENT ROW") | K("GROUP") | K("TIES"))
).set_parse_action(lambda t: ("exclude", None if t[0] == "NO OTHERS" else t[0]))
_FRAME_UNITS = code("ROWS") + code("RANGE") + code("GROUPS")
frame_spec = (
    (K("ROWS") | K("RANGE") | K("GROUPS"))
    + (
        Peek(esc(code("BETWEEN")), KX("BETWEEN") + _frame_bound + KX("AND") + _frame_bound)
        | _frame_bound
    )
    + Maybe(code("EXCLUDE"), _exclude)
).set_name("frame")


def _frame(t: pp.ParseResults) -> ast.Frame:
    items = list(t)
    excl = items.pop()[1] if items[-1][0] == "exclude" else None
    unit, start = items[0], items[1]
    end = items[2] if len(items) > 2 else (ast.CURRENT_ROW, None)
    return ast.Frame(unit, start, end, excl)


frame_spec.set_parse_action(_frame)
_BASE_CODES = "".join(c for c in NAME_CODES if c not in _FRAME_UNITS + code("PARTITION"))
window_defn = (
    Maybe(_BASE_CODES, ident.copy().set_parse_action(lambda t: ("base", t[0])))
    + Maybe(
        code("PARTITION"),
        (KX("PARTITION") + KX("BY") + Commas(expr)).set_parse_action(
            lambda t: ("partition", list(t))
        ),
    )
    + Maybe(
        code("ORDER"),
        (KX("ORDER") + KX("BY") + Commas(ordering_term)).set_parse_action(
            lambda t: ("order", list(t))
        ),
    )
    + Maybe(_FRAME_UNITS, frame_spec.copy().add_parse_action(lambda t: ("frame", t[0])))
).set_name("window definition")


def _window_defn(t: pp.ParseResults) -> ast.WindowSpec:
    d = dict(list(t))
    return ast.WindowSpec(d.get("base"), d.get("partition", []), d.get("order", []), d.get("frame"))


window_defn.set_parse_action(_window_defn)
_filter_clause = (KX("FILTER") + LPAR + KX("WHERE") + expr + RPAR).set_parse_action(
    lambda t: ("filter", t[0])
)
_over_clause = (KX("OVER") + (Peek("\\(", LPAR + window_defn + RPAR) | ident)).set_parse_action(
    lambda t: ("over", t[0])
)
_ALL_KW = KX("ALL")
func_args = _STAR | (
    Maybe(code("DISTINCT"), _DISTINCT_KW) + Maybe(code("ALL"), _ALL_KW) + pp.Opt(Commas(expr))
)
func_call = (
    ident
    + LPAR
    + func_args
    + RPAR
    + Maybe(code("FILTER"), _filter_clause)
    + Maybe(code("OVER"), _over_clause)
).set_name("function call")
func_call.set_parse_action(_func)

cast_expr = (KX("CAST") + LPAR + expr + KX("AS") + type_name + RPAR).set_name("CAST")
cast_expr.set_parse_action(lambda t: ast.Cast(t[0], t[1]))

_WHEN, _THEN, _ELSE = KX("WHEN"), KX("THEN"), KX("ELSE")
case_when = (_WHEN + expr + _THEN + expr).set_parse_action(lambda t: (t[0], t[1]))
case_expr = (
    KX("CASE")
    + pp.Opt(Peek(f"(?!{esc(code('WHEN'))})", expr))
    + case_when
    + Many(code("WHEN"), case_when)
    + Maybe(code("ELSE"), (_ELSE + expr).set_parse_action(lambda t: ("else", t[0])))
    + KX("END")
).set_name("CASE")


def _case(t: pp.ParseResults) -> ast.Case:
    items = list(t)
    operand = None
    if items and not isinstance(items[0], tuple):
        operand = items.pop(0)
    else_ = None
    if items and items[-1][0] == "else":
        else_ = items.pop()[1]
    return ast.Case(operand, items, else_)


case_expr.set_parse_action(_case)

_SELECT_AHEAD = f"\\((?:{esc(code('SELECT'))}|{esc(code('WITH'))}|{esc(code('VALUES'))})"
subquery = (LPAR + select_stmt + RPAR).set_name("subquery")
exists_expr = (pp.Opt(K("NOT")) + K("EXISTS") + subquery).set_name("EXISTS")


def _exists(t: pp.ParseResults) -> ast.Expr:
    node: ast.Expr = ast.Exists(t[-1])
    if t[0] == "NOT":
        node = ast.Unary("NOT", node)
    return node


exists_expr.set_parse_action(_exists)
scalar_subquery = subquery.copy().set_parse_action(lambda t: ast.Subquery(t[0]))
paren_expr = (LPAR + expr + RPAR).set_name("parenthesised expression")

# An operand: a chain (operands and binary operators, which the enclosing
# expression folds), or one of the operands the chain's regex cannot match.
complex_operand = pp.Forward().set_name("operand")
_prefixed = (Tok("-+~", "unary operator") + complex_operand).set_parse_action(
    lambda t: _unary(t[0], t[1])
)
_name_or_call = Peek(f"[{esc(NAME_CODES)}]\\(", func_call) | column_ref
complex_operand <<= Switch(
    {
        "(": Peek(_SELECT_AHEAD, scalar_subquery) | paren_expr,
        code("EXISTS"): exists_expr,
        code("NOT"): exists_expr,
        code("CASE"): case_expr,
        code("CAST"): cast_expr,
        "-+~": _prefixed,
        NAME_CODES: _name_or_call,
        "nsx" + CODES["NULL"] + CODES["TRUE"] + CODES["FALSE"]: literal,
        "?": param,
    }
)
_CHAIN_FIRST = "nsx?-+~" + _VALUE_WORDS_CODES + _EXPR_NAME_CODES


class Expression(pp.ParseElementEnhance):
    """An expression: NOT* operand (binary-operator NOT* operand | postfix)*, folded
    by precedence. Operand chains are matched by ``chain_re`` (one regex for a
    run of operands and operators) and binary operators by ``binop_re``; other
    operands parse with ``complex_operand``, postfix operators with ``tail``.
    ``high``: the operand of BETWEEN and LIKE (no NOT, no comparison below <)."""

    def __init__(self, tail: pp.ParserElement | None, high: bool) -> None:
        super().__init__(complex_operand)
        self.callPreparse = False
        self.mayReturnEmpty = False
        self.tail = tail
        self.tail_first = frozenset(tail.table) if isinstance(tail, Switch) else frozenset()
        self.high = high
        self.chain_match = re.compile(HCHAIN_RE if high else CHAIN_RE).match
        self.binop_match = re.compile(_HBIN if high else BIN_RE).match
        self.bin_first = frozenset(
            "c*/%+-lr&|<{>}aA" if high else "c*/%+-lr&|<{>}=!aA" + _AND + _OR + _IS
        )
        self.chain_first = frozenset(_CHAIN_FIRST)
        if tail is not None:
            self.exprs = [complex_operand, tail]

    def inline(self, target: Any) -> None:
        if self.tail is not None:
            self.tail = target(self.tail)

    def _operand(self, s: Any, loc: int, do_actions: bool, out: list[Any]) -> int:
        if loc < len(s) and s[loc] in self.chain_first:
            m = self.chain_match(s, loc)
            if m is not None:
                chain_at(s, loc, m.end(), out)
                return m.end()
        loc, toks = self.expr._parse(s, loc, do_actions, callPreParse=False)
        out.append(toks[0])
        return loc  # type: ignore[no-any-return]

    def parseImpl(self, s: Any, loc: int, do_actions: bool = True) -> Any:
        out: list[Any] = []
        n = len(s)
        nots = not self.high
        if nots:
            while loc < n and s[loc] == _NOTC:
                out.append(_NOT)
                loc += 1
        loc = self._operand(s, loc, do_actions, out)
        bin_first, tail_first = self.bin_first, self.tail_first
        while loc < n:
            c = s[loc]
            if c in bin_first and self.binop_match(s, loc) is not None:
                loc = _operator_at(s, loc, out, nots)
                loc = self._operand(s, loc, do_actions, out)
            elif c in tail_first:
                loc, toks = self.tail._parse(s, loc, do_actions, callPreParse=False)  # type: ignore[union-attr]
                out.extend(toks)
            else:
                break
        if loc > s.furthest:
            s.furthest = loc
        return loc, [fold(out)]

    def _generateDefaultName(self) -> str:
        return "expression"


# an operand of BETWEEN / LIKE: comparisons and tighter only
high_expr = Expression(None, high=True).set_name("expression")


def _collation_name(s: Tokens, loc: int, t: pp.ParseResults) -> str:
    # SQLite's built-in collations (toondb.sql.collation); another name is
    # refused (a ParseSyntaxException: named elements around it keep its message)
    name = str(t[0])
    if name.upper() not in ("BINARY", "NOCASE", "RTRIM"):
        raise pp.ParseSyntaxException(s, loc, f"no such collation sequence: {name}")
    return name


collation_name = any_name.copy().set_name("collation").set_parse_action(_collation_name)
collate_tail = (KX("COLLATE") + collation_name).set_parse_action(
    lambda t: _Postfix("collate", (t[0].upper(),))
)

_not = Maybe(_NOTC, K("NOT")).set_parse_action(lambda t: [bool(t)])
in_tail = (
    _not
    + KX("IN")
    + pp.MatchFirst(
        [
            Peek(_SELECT_AHEAD, LPAR + select_stmt + RPAR).set_parse_action(
                lambda t: ("select", t[0])
            ),
            Peek("\\(", LPAR + pp.Opt(Commas(expr)) + RPAR).set_parse_action(
                lambda t: ("list", list(t))
            ),
            column_ref.copy().set_parse_action(lambda t: ("table", _column(t))),
        ]
    )
).set_name("IN")
in_tail.set_parse_action(lambda t: _Postfix("in", (t[0], t[1])))
# MATCH folds as LIKE does (ast.Like op MATCH): a full-text table's search (sql/fulltext.py)
_LIKE_OPS = code("LIKE") + code("GLOB") + code("MATCH") + code("REGEXP")
like_tail = (
    _not
    + (K("LIKE") | K("GLOB") | K("MATCH") | K("REGEXP"))
    + high_expr
    + Maybe(code("ESCAPE"), KX("ESCAPE") + high_expr)
).set_name("LIKE")
like_tail.set_parse_action(
    lambda t: _Postfix("like", (t[0], t[1], t[2], t[3] if len(t) > 3 else None))
)
between_tail = (_not + KX("BETWEEN") + high_expr + KX("AND") + high_expr).set_name("BETWEEN")
between_tail.set_parse_action(lambda t: _Postfix("between", (t[0], t[1], t[2])))
_NULL_TAIL = {
    (_IS + code("NULL")): True,
    (_IS + _NOTC + code("NULL")): False,
    (_NOTC + code("NULL")): False,
    code("ISNULL"): True,
    code("NOTNULL"): False,
}
null_tail = _rx(
    "|".join(esc(k) for k in sorted(_NULL_TAIL, key=len, reverse=True)), "NULL test"
).set_parse_action(lambda t: _Postfix("null", (_NULL_TAIL[t[0]],)))

_NULL_AHEAD = f"{esc(_IS)}{esc(_NOTC)}?{esc(code('NULL'))}|{esc(_NOTC)}{esc(code('NULL'))}"
_not_tail = pp.MatchFirst(
    [
        Peek(_NULL_AHEAD, null_tail),
        Peek(f"{esc(_NOTC)}{esc(code('IN'))}", in_tail),
        Peek(f"{esc(_NOTC)}[{esc(_LIKE_OPS)}]", like_tail),
        Peek(f"{esc(_NOTC)}{esc(code('BETWEEN'))}", between_tail),
    ]
).set_name("operator")
_expr_tail = Switch(
    {
        _IS: null_tail,
        code("ISNULL") + code("NOTNULL"): null_tail,
        _NOTC: _not_tail,
        code("IN"): in_tail,
        _LIKE_OPS: like_tail,
        code("BETWEEN"): between_tail,
        code("COLLATE"): collate_tail,
    }
).set_name("operator")
expr <<= Expression(_expr_tail, high=False)
expr.set_name("expression")
