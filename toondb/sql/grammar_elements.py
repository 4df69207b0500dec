"""The pyparsing elements the SQL grammar is built from, over token codes (lexer.py).

pyparsing's own combinators find out that an alternative does not apply by trying
it: a raised and caught ParseException, several microseconds, at every optional
clause, every end of a list and every end of an expression. SQL is almost LL(1)
at the token level, so these elements look at the next code(s) first and try
only what can match (they are pyparsing elements all the same: the grammar is
one pyparsing grammar, with parse actions, names and error positions):

* ``Tok(codes, name, value)``: one token whose code is in codes.
* ``Rx(pattern)``: a run of tokens matched by one regex over the codes.
* ``Peek(pattern, expr)``: expr, tried only where the codes match pattern.
* ``Maybe(first, expr)``: Opt(expr), tried only when the next code is in first.
* ``Many(first, expr)``: ZeroOrMore(expr), repeated while the next code is in first.
* ``Commas(expr)``: expr (',' expr)*.
* ``Switch(cases, default)``: the alternative registered for the next code.

Where an element fails it records the position in ``Tokens.furthest``, where a
syntax error is then reported.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable

import pyparsing as pp

from toondb.sql.lexer import Tokens

__all__ = [
    "Tok",
    "Rx",
    "Peek",
    "Maybe",
    "Many",
    "Commas",
    "Switch",
    "fail",
    "inline_forwards",
    "lean_parse",
]


def fail(instring: Any, loc: int, element: pp.ParserElement) -> pp.ParseException:
    """The exception for element not matching at loc (noted as the furthest failure)."""
    if loc > instring.furthest:
        instring.furthest = loc
    return pp.ParseException(instring, loc, element.errmsg, element)


class Tok(pp.Token):
    """One token whose code is in ``codes``; its result is ``value(s, i)`` (by
    default the token's value: a name's text, an operator's spelling), or
    nothing when ``keep`` is false (a suppressed keyword or punctuation)."""

    def __init__(
        self,
        codes: str,
        name: str,
        value: Callable[[Tokens, int], Any] | None = None,
        keep: bool = True,
    ) -> None:
        super().__init__()
        self.codes = frozenset(codes)
        self.value = value
        self.keep = keep
        self.name = name
        self.errmsg = "Expected " + name
        self.mayReturnEmpty = False
        self.mayIndexError = False

    def parseImpl(self, instring: Any, loc: int, do_actions: bool = True) -> Any:
        if loc < len(instring) and instring[loc] in self.codes:
            if not self.keep:
                return loc + 1, []
            v = self.value
            return loc + 1, (instring.vals[loc] if v is None else v(instring, loc))
        raise fail(instring, loc, self)

    def _generateDefaultName(self) -> str:
        return self.name


class Rx(pp.Regex):
    """A regex over the codes (a run of tokens of a regular shape); its result is
    the matched codes (a parse action reads the tokens)."""

    def parseImpl(self, instring: Any, loc: int, do_actions: bool = True) -> Any:
        m = self.re_match(instring, loc)
        if m is None:
            raise fail(instring, loc, self)
        return m.end(), m.group()


class _Enhance(pp.ParseElementEnhance):
    def __init__(self, expr: pp.ParserElement) -> None:
        super().__init__(expr)
        self.callPreparse = False


class Peek(_Enhance):
    """``expr`` tried only when the codes at the position match ``pattern``
    (a look at the next tokens instead of a failed attempt)."""

    def __init__(self, pattern: str, expr: pp.ParserElement) -> None:
        super().__init__(expr)
        self.match = re.compile(pattern).match
        self.mayReturnEmpty = expr.mayReturnEmpty

    def parseImpl(self, instring: Any, loc: int, do_actions: bool = True) -> Any:
        if self.match(instring, loc) is None:
            raise fail(instring, loc, self)
        return self.expr._parse(instring, loc, do_actions, callPreParse=False)

    def _generateDefaultName(self) -> str:
        return str(self.expr)


class Maybe(_Enhance):
    """``expr`` when the next code is in ``first``, else nothing."""

    def __init__(self, first: str, expr: pp.ParserElement) -> None:
        super().__init__(expr)
        self.first = frozenset(first)
        self.mayReturnEmpty = True

    def parseImpl(self, instring: Any, loc: int, do_actions: bool = True) -> Any:
        if loc < len(instring) and instring[loc] in self.first:
            return self.expr._parse(instring, loc, do_actions, callPreParse=False)
        if loc > instring.furthest:
            instring.furthest = loc
        return loc, []

    def _generateDefaultName(self) -> str:
        return f"[{self.expr}]"


class Many(_Enhance):
    """``expr`` repeated while the next code is in ``first`` (zero times or more)."""

    def __init__(self, first: str, expr: pp.ParserElement) -> None:
        super().__init__(expr)
        self.first = frozenset(first)
        self.mayReturnEmpty = True

    def parseImpl(self, instring: Any, loc: int, do_actions: bool = True) -> Any:
        first = self.first
        n = len(instring)
        parse = self.expr._parse
        out: list[Any] = []
        while loc < n and instring[loc] in first:
            loc, toks = parse(instring, loc, do_actions, callPreParse=False)
            out.extend(toks)
        if loc > instring.furthest:
            instring.furthest = loc
        return loc, out

    def _generateDefaultName(self) -> str:
        return f"[{self.expr}]..."


class Commas(_Enhance):
    """``expr`` (',' ``expr``)*: the results of every expr."""

    def __init__(self, expr: pp.ParserElement) -> None:
        super().__init__(expr)
        self.mayReturnEmpty = False

    def parseImpl(self, instring: Any, loc: int, do_actions: bool = True) -> Any:
        parse = self.expr._parse
        loc, toks = parse(instring, loc, do_actions, callPreParse=False)
        out = list(toks)
        n = len(instring)
        while loc < n and instring[loc] == ",":
            loc, toks = parse(instring, loc + 1, do_actions, callPreParse=False)
            out.extend(toks)
        if loc > instring.furthest:
            instring.furthest = loc
        return loc, out

    def _generateDefaultName(self) -> str:
        return f"{self.expr} [, {self.expr}]..."


class Switch(pp.ParseExpression):
    """The alternative registered for the next code (``cases``: codes ->
    element; a code may map to a MatchFirst when it starts several), else
    ``default`` (None: no match)."""

    def __init__(
        self, cases: dict[str, pp.ParserElement], default: pp.ParserElement | None = None
    ) -> None:
        exprs = list(dict.fromkeys(cases.values()))
        if default is not None:
            exprs.append(default)
        super().__init__(exprs)
        self.table: dict[str, pp.ParserElement] = {}
        for codes, element in cases.items():
            for c in codes:
                self.table[c] = element
        self.default = default
        self.mayReturnEmpty = False
        self.callPreparse = False

    def parseImpl(self, instring: Any, loc: int, do_actions: bool = True) -> Any:
        e = self.table.get(instring[loc]) if loc < len(instring) else None
        if e is None:
            e = self.default
            if e is None:
                raise fail(instring, loc, self)
        return e._parse(instring, loc, do_actions, callPreParse=False)

    def streamline(self) -> pp.ParserElement:
        # the table holds the elements: streamline them, never replace them
        if not self.streamlined:
            self.streamlined = True
            for e in self.exprs:
                e.streamline()
        return self

    def _generateDefaultName(self) -> str:
        return " | ".join(str(e) for e in self.exprs)

    def inline(self, target: Callable[[Any], Any]) -> None:
        self.table = {c: target(e) for c, e in self.table.items()}
        if self.default is not None:
            self.default = target(self.default)


def _resolved(e: Any) -> Any:
    """e, or what the Forward e stands for (through Forwards with no action of their own)."""
    while (
        isinstance(e, pp.Forward) and e.expr is not None and not e.parseAction and not e.resultsName
    ):
        e = e.expr
    return e


def inline_forwards(root: pp.ParserElement) -> pp.ParserElement:
    """Every reference to a Forward in the grammar under root replaced by the
    element it was given (once the grammar is complete: a Forward is only
    needed while it is being built, and each costs an element call per use).
    Elements holding others outside ``expr``/``exprs`` say so with an
    ``inline(target)`` method. The grammar is streamlined first (pyparsing
    does it on the first parse, guarded against cycles by the Forwards).
    Returns root, resolved."""
    root.streamline()
    root = _resolved(root)
    seen: set[int] = set()
    stack = [root]
    while stack:
        el = stack.pop()
        if id(el) in seen:
            continue
        seen.add(id(el))
        exprs = getattr(el, "exprs", None)
        if exprs:
            el.exprs = [_resolved(e) for e in exprs]
            stack.extend(el.exprs)
        inner = getattr(el, "expr", None)
        if isinstance(inner, pp.ParserElement):
            el.expr = _resolved(inner)
            stack.append(el.expr)
        hook = getattr(el, "inline", None)
        if hook is not None:
            hook(_resolved)
            stack.extend(getattr(el, "table", {}).values())
    return root


# ------------------------------------------------------------------ the lean match call

_TRIM_FREEVARS = {"func", "limit"}


def _direct_action(fn: Callable[..., Any]) -> tuple[Callable[..., Any], int]:
    """(f, n): parse action fn as a call of f with its last n of (s, loc, toks).
    pyparsing wraps each action in ``_trim_arity``, which finds the arity by
    trying (a slice and a frame per call); the function it wraps and its arity
    are read here once. Anything else is called with all three arguments."""
    code = getattr(fn, "__code__", None)
    if code is None or not _TRIM_FREEVARS <= set(code.co_freevars) or fn.__closure__ is None:
        return fn, 3
    func = fn.__closure__[code.co_freevars.index("func")].cell_contents
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return fn, 3
    n = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return fn, 3
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return (func, n) if n <= 3 else (fn, 3)


def _sequence(parts: tuple[pp.ParserElement, ...]) -> Callable[..., Any]:
    """pyparsing's And.parseImpl without its error-stop ('-') handling (an And
    with a stop keeps pyparsing's): each part in turn, results concatenated."""
    first, rest = parts[0], parts[1:]

    def impl(instring: Any, loc: int, do_actions: bool = True) -> Any:
        loc, out = first._parse(instring, loc, do_actions, False)
        for e in rest:
            loc, toks = e._parse(instring, loc, do_actions, False)
            out += toks
        return loc, out

    return impl


def _cannot_start(e: pp.ParserElement) -> Callable[[Any, int], bool] | None:
    """A test that alternative e cannot match at a position (without trying
    it), for the elements that look before they match: a Peek's pattern, a
    Tok's codes; None for the others."""
    if isinstance(e, Peek):
        match = e.match
        return lambda s, loc: match(s, loc) is None
    if type(e) is Tok:
        codes = e.codes
        return lambda s, loc: loc >= len(s) or s[loc] not in codes
    return None


def _first_of(el: pp.MatchFirst) -> Callable[..., Any]:
    """pyparsing's MatchFirst.parseImpl, where an alternative that cannot
    start at the position (``_cannot_start``) is passed over without being
    tried: the same outcome, the same error (its failure is at the position,
    recorded as ``fail`` would), without raising and catching an exception."""
    alts = tuple((_cannot_start(e), e) for e in el.exprs)

    def impl(instring: Any, loc: int, do_actions: bool = True) -> Any:
        max_loc = -1
        max_exc: pp.ParseException | None = None
        skipped: pp.ParserElement | None = None
        for cannot, e in alts:
            if cannot is not None and cannot(instring, loc):
                if loc > max_loc:
                    max_loc, max_exc, skipped = loc, None, e
                continue
            try:
                return e._parse(instring, loc, do_actions, False)
            except pp.ParseFatalException as pfe:
                pfe.__traceback__ = None
                pfe.parser_element = e
                raise
            except pp.ParseException as err:
                if err.loc > max_loc:
                    max_loc, max_exc = err.loc, err
            except IndexError:
                if len(instring) > max_loc:
                    max_loc = len(instring)
                    max_exc = pp.ParseException(instring, max_loc, e.errmsg, el)
        if max_loc < 0:
            raise pp.ParseException(instring, loc, "no defined alternatives to match", el)
        if max_exc is None:
            max_exc = fail(instring, max_loc, skipped)  # type: ignore[arg-type]
        if max_loc == loc:
            max_exc.msg = el.errmsg or ""
        raise max_exc

    return impl


def _maybe_of(el: pp.Opt) -> Callable[..., Any] | None:
    """pyparsing's Opt.parseImpl (no default value) over an element that looks
    first: nothing, without an exception, where it cannot start."""
    cannot = _cannot_start(el.expr)
    if cannot is None or el.defaultValue is not el._Opt__optionalNotMatched:  # type: ignore[attr-defined]
        return None
    expr = el.expr

    def impl(instring: Any, loc: int, do_actions: bool = True) -> Any:
        if cannot(instring, loc):
            if loc > instring.furthest:
                instring.furthest = loc
            return loc, []
        try:
            return expr._parse(instring, loc, do_actions, False)
        except (pp.ParseException, IndexError):
            return loc, []

    return impl


def _lean_parse(el: pp.ParserElement) -> Callable[..., Any]:
    """el's match call (what pyparsing's ``_parseNoCache`` does for it), over
    plain lists rather than ParseResults; see ``lean_parse``."""
    impl = el.parseImpl
    if type(el) is pp.And and not any(type(e) is pp.And._ErrorStop for e in el.exprs):
        impl = _sequence(tuple(el.exprs))
    elif type(el) is pp.MatchFirst and any(_cannot_start(e) for e in el.exprs):
        impl = _first_of(el)
    elif type(el) is pp.Opt:
        impl = _maybe_of(el) or impl
    suppress = isinstance(el, pp.Suppress)
    actions = tuple(_direct_action(fn) for fn in el.parseAction)
    during_try = el.callDuringTry
    may_index_error = el.mayIndexError
    pr = pp.ParseResults

    def parse(instring: Any, loc: int, do_actions: bool = True, callPreParse: bool = True) -> Any:
        start = loc
        if may_index_error or loc >= len(instring):
            try:
                loc, tokens = impl(instring, loc, do_actions)
            except IndexError:
                raise pp.ParseException(instring, len(instring), el.errmsg, el) from None
        else:
            loc, tokens = impl(instring, loc, do_actions)
        if suppress:
            return loc, []
        tp = type(tokens)
        if tp is not list:
            if tokens is None:
                tokens = []
            elif tp is pr:
                tokens = list(tokens)
            else:
                tokens = [tokens]
        if actions and (do_actions or during_try):
            for func, n in actions:
                try:
                    if n == 1:
                        r = func(tokens)
                    elif n == 0:
                        r = func()
                    elif n == 3:
                        r = func(instring, start, tokens)
                    else:
                        r = func(start, tokens)
                except IndexError as exc:
                    raise pp.ParseException("exception raised in parse action") from exc
                if r is not None and r is not tokens:
                    tp = type(r)
                    # a copy: an enclosing sequence extends the list it is given
                    tokens = list(r) if tp is list or tp is pr else [r]
        return loc, tokens

    return parse


def lean_parse(root: pp.ParserElement) -> None:
    """Give every element of the grammar under root a lean match call.

    pyparsing matches an element with ``_parseNoCache``: pre-parse whitespace
    skipping, debugging hooks, and a ParseResults built around every result (and
    another around every parse action's), about a third of the time a statement
    takes to parse. This grammar needs none of it: its input is token codes with
    no whitespace (lexer.py), it sets no results names, debug actions or fail
    actions, and its parse actions read their tokens as a sequence. So each
    element gets, as its own ``_parse``, a function doing the rest of
    ``_parseNoCache`` over plain lists: parseImpl, Suppress's empty result, the
    parse actions (called directly at their arity), IndexError as
    ParseException. Every element reachable from root is given one (a list
    result reaching pyparsing's ParseResults arithmetic would fail); one the
    rules above do not hold for is refused here, when the grammar is built."""
    seen: set[int] = set()
    stack: list[Any] = [root]
    while stack:
        el = stack.pop()
        if id(el) in seen:
            continue
        seen.add(id(el))
        post = type(el).postParse
        if (
            el.resultsName
            or el.debug
            or el.failAction
            or el.ignoreExprs
            or (post is not pp.ParserElement.postParse and not isinstance(el, pp.Suppress))
        ):
            raise TypeError(f"grammar element {el!r} needs pyparsing's own match call")
        el._parse = _lean_parse(el)  # type: ignore[method-assign]
        stack.extend(getattr(el, "exprs", ()) or ())
        inner = getattr(el, "expr", None)
        if isinstance(inner, pp.ParserElement):
            stack.append(inner)
        stack.extend(getattr(el, "table", {}).values())
        for attr in ("default", "tail"):
            other = getattr(el, attr, None)
            if isinstance(other, pp.ParserElement):
                stack.append(other)
