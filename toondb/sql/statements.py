"""SQL text -> statements ready to plan: the caches in front of the parser.

``prepare(sql)`` returns the statements of a text as ``Prepared`` (the parse to
plan, the values of its literals, its result column names). It is cached by the
text, and behind that by the statement's *template*: its text with every literal
(number, string, blob) replaced by a marker of its kind, so that statements that
differ only in their literals (the rows of a dump, a query an application builds
with values in it) are parsed once::

    INSERT INTO t VALUES (1, 'ann', X'00')   } template
    INSERT INTO t VALUES (2, 'bob', X'ff')   }   INSERT INTO t VALUES (<n>, <s>, <x>)

The template's parse has an ``ast.Slot`` where each literal was. It is planned
with a parameter in each slot's place (numbered after the statement's own
parameters), so that the plan is shared too, and the literals are bound as
parameters when it runs. SQL where a literal and a parameter differ is kept
apart:

1. a literal that decides the plan is *pinned*: ``ORDER BY 2`` and ``GROUP BY 1``
   (a column by its position) stay literals in the plan, and the plan is cached
   by their values as well;
2. a result column's default name is its text (``SELECT a+1`` is named "a+1"):
   the names of the statement's own result columns are taken from each
   statement's text; a template whose nested SELECT would take a column name
   from text with a literal in it (``SELECT * FROM (SELECT a+1 FROM t)``) is
   not shared, and each such statement is parsed as it is;
3. a literal the grammar itself consumes (a type's size in ``CAST(x AS
   VARCHAR(10))``, the integer 2**63 that only a minus makes valid) makes the
   template not shared, likewise;
4. only SELECT, VALUES, WITH, INSERT, REPLACE, UPDATE and DELETE are templated:
   DDL keeps its text (it is stored), PRAGMA, EXPLAIN and BEGIN/COMMIT are
   parsed as written;
5. a double-quoted name is an identifier token, never a literal: it stays in the
   template's text (whether it names a column is the planner's business).

The caches (each a ``LRU``, bounded by entries and by the characters of their
keys; docs/sql.md "The compile path"): ``TEXTS`` maps a text to its statements,
``TEMPLATES`` a template's text to its parse; the plans themselves are cached per
thread by engine.compiled_for (key: ``Parsed.key``). A text with literals in it
is cached from its second sighting (``SEEN``, ``SeenOnce``: the first leaves its
key only); a text without literals (one with parameters, written to be run
again) at once. A template is built and cached at its second sighting: at its
first, the statement is parsed as written, as one that cannot share (rule 3),
and its plan is not kept (``Parsed.once``).
Text built with its values in it is often run once (a script, a generated
test): its template, built, copied and kept, would cost the parse a second walk
and leave hundreds of objects the garbage collector's full collections walk
again and again. A script
(session.run_script: ``executescript``) goes through ``TEMPLATES`` only
(``prepare_tokens`` per statement): its statements are rarely run again as the
same text.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from toondb.sql import ast
from toondb.sql import grammar as G
from toondb.sql.lexer import CODES, Tokens, literal_value

__all__ = [
    "Prepared",
    "Template",
    "prepare",
    "prepare_tokens",
    "template_key",
    "cache_info",
    "clear_caches",
    "LRU",
    "TEXTS",
    "TEMPLATES",
    "SEEN",
    "SeenOnce",
]

#: what the caches hold at most: entries, and characters of the keys (the texts)
TEXT_CACHE_ENTRIES = 2048
TEXT_CACHE_CHARS = 4 << 20
TEMPLATE_CACHE_ENTRIES = 2048
TEMPLATE_CACHE_CHARS = 4 << 20
#: plans of one template that differ in pinned literals (ORDER BY 1, 2, ...)
PLANS_PER_TEMPLATE = 32

_MARK = {"n": "\x01", "s": "\x02", "x": "\x03"}
_TEMPLATED = frozenset(
    CODES[w] for w in ("SELECT", "VALUES", "WITH", "INSERT", "REPLACE", "UPDATE", "DELETE")
)


class LRU:
    """A mapping that forgets its least recently used entries beyond
    ``max_entries`` or beyond ``max_size`` (the sum of the sizes given to put)."""

    def __init__(self, max_entries: int, max_size: int) -> None:
        self.max_entries = max_entries
        self.max_size = max_size
        self._data: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> Any:
        hit = self._data.get(key)
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        with self._lock:
            try:
                self._data.move_to_end(key)
            except KeyError:  # evicted meanwhile by another thread
                pass
        return hit[0]

    def put(self, key: Any, value: Any, size: int) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._data[key] = (value, size)
            self._size += size
            while self._data and (len(self._data) > self.max_entries or self._size > self.max_size):
                _, (_, s) = self._data.popitem(last=False)
                self._size -= s

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size(self) -> int:
        return self._size


TEXTS = LRU(TEXT_CACHE_ENTRIES, TEXT_CACHE_CHARS)
TEMPLATES = LRU(TEMPLATE_CACHE_ENTRIES, TEMPLATE_CACHE_CHARS)


class SeenOnce:
    """Keys (texts) seen once among the last few thousand: ``again(key)`` is True
    when key was seen among the last ``max_entries`` / 2 to ``max_entries`` keys
    (and forgets it), else remembers it. A key seen again only after more keys
    than the caches hold is not worth keeping (it would be gone before its next
    use). Two generations, the older dropped when the newer is full (entries, or
    characters of its keys). Texts are not objects the garbage collector tracks:
    remembering them costs it nothing."""

    def __init__(self, max_entries: int, max_size: int) -> None:
        self.max_entries = max_entries
        self.max_size = max_size
        self._new: set[str] = set()
        self._old: set[str] = set()
        self._size = 0  # characters of the keys in _new

    def again(self, key: str) -> bool:
        new = self._new
        if key in new:
            new.discard(key)
            return True
        if key in self._old:
            self._old.discard(key)
            return True
        if 2 * len(new) >= self.max_entries or 2 * (self._size + len(key)) > self.max_size:
            self._old = new
            new = self._new = set()
            self._size = 0
        new.add(key)
        self._size += len(key)
        return False

    def clear(self) -> None:
        self._new = set()
        self._old = set()
        self._size = 0


SEEN = SeenOnce(TEXT_CACHE_ENTRIES, TEXT_CACHE_CHARS)


class Prepared:
    """One statement ready to plan: ``parsed`` (what engine.compiled_for plans,
    and caches by ``parsed.key``), ``values`` (its literals, bound after the
    statement's own parameters) and ``names`` (the names of the result columns
    whose text holds a literal, in the order of the "\\x00k" placeholders the
    plan names them by)."""

    __slots__ = ("parsed", "values", "names", "line")

    def __init__(
        self, parsed: ast.Parsed, values: tuple[Any, ...] = (), names: tuple[str, ...] | None = None
    ) -> None:
        self.parsed = parsed
        self.values = values
        self.names = names
        self.line = 1  # the line of the text the statement starts on

    def columns(self, columns: list[str] | None) -> list[str] | None:
        """The plan's output column names with this statement's own names in place."""
        names = self.names
        if names is None or not columns:
            return columns
        return [names[int(c[1:])] if c[:1] == "\x00" else c for c in columns]


class _Unshared:
    """TEMPLATES' entry for a template its statements cannot share."""


UNSHARED = _Unshared()


class Template:
    """The parse of a statement with its literals as slots (see the module
    docstring), and its plans' parses by the values of its pinned literals."""

    __slots__ = ("key", "parsed", "nslots", "pinned", "name_spans", "name_columns", "_plans")

    def __init__(
        self,
        key: str,
        parsed: ast.Parsed,
        nslots: int,
        pinned: tuple[int, ...],
        name_spans: tuple[tuple[int, int], ...],
        name_columns: dict[int, int],
    ) -> None:
        self.key = key
        self.parsed = parsed
        self.nslots = nslots
        self.pinned = pinned
        self.name_spans = name_spans  # token spans of the result columns named by their text
        self.name_columns = name_columns  # id(ResultColumn) -> its index in name_spans
        self._plans: dict[tuple[Any, ...], ast.Parsed] = {}

    @classmethod
    def build(cls, t: Tokens, key: str) -> Template | _Unshared:
        """The template of statement t (whose key is key), or UNSHARED."""
        t.slots = {tok: k for k, tok in enumerate(t.literals)}
        t.result_spans = []
        parsed = G.parse_tokens(t)
        if t.baked:
            return UNSHARED
        parsed.text = parsed.key = key  # not t.sql: that may be a whole script
        top = _top_columns(parsed.statement)
        literals = t.literals
        name_spans: list[tuple[int, int]] = []
        name_columns: dict[int, int] = {}
        for rc, start, end in t.result_spans:
            if rc.alias is not None or isinstance(rc.expr, ast.Column):
                continue
            if not any(start <= k < end for k in literals):
                continue
            if id(rc) not in top:
                return UNSHARED  # a nested SELECT's column named by text with a literal
            if id(rc) not in name_columns:
                name_columns[id(rc)] = len(name_spans)
                name_spans.append((start, end))
        return cls(
            key, parsed, len(literals), _pinned(parsed.statement), tuple(name_spans), name_columns
        )

    def plan_parse(self, values: tuple[Any, ...]) -> ast.Parsed:
        """The parse to plan for a statement with these literal values: each slot
        a parameter, a pinned one its literal (cached by the pinned values)."""
        pinned_values = tuple((type(values[k]), values[k]) for k in self.pinned)
        p = self._plans.get(pinned_values)
        if p is None:
            if len(self._plans) >= PLANS_PER_TEMPLATE:
                self._plans.clear()
            p = self._plans[pinned_values] = self._instantiate(values, pinned_values)
        return p

    def _instantiate(self, values: tuple[Any, ...], pinned_values: tuple[Any, ...]) -> ast.Parsed:
        src = self.parsed
        nuser = src.nparams
        pinned = {k: values[k] for k in self.pinned}
        names = self.name_columns

        bits = ast.KIND_BITS
        kinds = ast.kinds
        Node = ast.Node

        def copy(node: Any) -> Any:
            tp = type(node)
            if tp is ast.Slot:
                k = node.index
                new = ast.Literal(pinned[k]) if k in pinned else ast.Param(nuser + k)
                new._kinds = 0
                return new
            if isinstance(node, Node):
                new = object.__new__(tp)
                m = bits.get(tp, 0)  # the copy's ast.kinds, found on the way
                for name in tp.__slots__:
                    v = copy(getattr(node, name))
                    setattr(new, name, v)
                    if isinstance(v, Node):
                        m |= v._kinds
                    elif type(v) is list or type(v) is tuple:
                        m |= kinds(v)  # (its nodes are copies: their kinds are known)
                if tp is ast.ResultColumn and id(node) in names:
                    new.text = f"\x00{names[id(node)]}"
                new._kinds = m
                return new
            if tp is list:
                return [copy(x) for x in node]
            if tp is tuple:
                return tuple(copy(x) for x in node)
            return node

        if src.deep:
            from toondb.sql.depth import headroom

            with headroom():
                stmt = copy(src.statement)
        else:
            stmt = copy(src.statement)
        return ast.Parsed(
            stmt,
            nuser + self.nslots,
            src.names,
            self.key,
            key=(self.key, pinned_values),
            nslots=self.nslots,
            deep=src.deep,
        )


def _top_columns(stmt: ast.Statement) -> set[int]:
    """ids of the result columns that name the statement's output."""
    if isinstance(stmt, ast.Select) and stmt.cores:
        return {id(rc) for rc in stmt.cores[0].columns}
    return set()


def _pinned(stmt: ast.Statement) -> tuple[int, ...]:
    """The slots of ORDER BY and GROUP BY terms that are a literal (a position)."""
    out: list[int] = []

    def slot_of(e: Any) -> int | None:
        if isinstance(e, ast.Unary) and e.op in ("-", "+"):
            e = e.operand
        return e.index if isinstance(e, ast.Slot) else None

    stack: list[Any] = [stmt]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Node):
            if isinstance(n, ast.Select):
                out.extend(k for o in n.order_by if (k := slot_of(o.expr)) is not None)
            elif isinstance(n, ast.SelectCore):
                out.extend(k for g in n.group_by if (k := slot_of(g)) is not None)
            stack.extend(getattr(n, a) for a in type(n).__slots__)
        elif isinstance(n, (list, tuple)):
            stack.extend(n)
    return tuple(sorted(set(out)))


def template_key(t: Tokens) -> str:
    """The text of statement t with each literal replaced by a marker of its kind."""
    sql = t.sql
    starts, ends = t.starts, t.ends
    pieces = []
    pos = starts[0]
    for i in t.literals:
        pieces.append(sql[pos : starts[i]])
        pieces.append(_MARK[t[i]])
        pos = ends[i]
    pieces.append(sql[pos : ends[-1]])
    return "".join(pieces)


def prepare_tokens(t: Tokens) -> Prepared:
    """One statement's tokens -> Prepared, through TEMPLATES where it may."""
    if t[0] in _TEMPLATED and t.literals:
        key = template_key(t)
        tmpl = TEMPLATES.get(key)
        if tmpl is None:
            if not SEEN.again("\x00" + key):
                # its first sighting: parsed as written (no template to build,
                # copy and keep for a statement that may never come again), and
                # planned for this run only
                parsed = G.parse_tokens(t)
                parsed.once = True
                return Prepared(parsed)
            tmpl = Template.build(t, key)
            TEMPLATES.put(key, tmpl, len(key))
            t.slots = None
            t.baked = set()
        if tmpl is not UNSHARED:
            try:
                vals = t.vals
                values = tuple(literal_value(t[i], vals[i]) for i in t.literals)
            except ValueError:
                pass  # a malformed literal: the parse below reports it
            else:
                names = None
                if tmpl.name_spans:
                    names = tuple(t.span_text(a, b) for a, b in tmpl.name_spans)
                return Prepared(tmpl.plan_parse(values), values, names)
    return Prepared(G.parse_tokens(t))


def prepare(sql: str) -> tuple[Prepared, ...]:
    """The statements of sql, ready to plan (cached by the text)."""
    hit = TEXTS.get(sql)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    t = G.tokens_of(sql)
    subs = [G.sub_tokens(t, i, j) for i, j in G.split_tokens(t)]
    out = tuple(prepare_tokens(s) for s in subs)
    if not any(s[0] in _TEMPLATED and s.literals for s in subs) or SEEN.again(sql):
        TEXTS.put(sql, out, len(sql))
    return out


def cache_info() -> dict[str, Any]:
    """Entries, sizes, hits and misses of the text and template caches."""
    return {
        name: {"entries": len(c), "chars": c.size, "hits": c.hits, "misses": c.misses}
        for name, c in (("texts", TEXTS), ("templates", TEMPLATES))
    }


def clear_caches() -> None:
    TEXTS.clear()
    TEMPLATES.clear()
    SEEN.clear()
