"""The SQL abstract syntax tree: what the grammar builds and the planner reads.

Nodes are plain classes with ``__slots__``; a parsed statement is cached by its
text and shared by every execution, so nothing downstream ever mutates a node.
The one thing a node keeps besides its fields is ``kinds(node)``: which kinds of
node its subtree holds, computed once (the planner's many "does this expression
hold a COLLATE / subquery / aggregate / window?" walks stop at once where the
answer is no). A copy (``copy.copy``) does not keep it, as the copy may be changed.
Expression nodes carry no type information: affinity and comparison rules are
applied when the planner compiles them (``toondb.sql.types``).
"""

from __future__ import annotations

from typing import Any


class Node:
    # _kinds: what kinds() found below the node (unset until asked); not a field:
    # the walks over fields use type(node).__slots__, which never lists it
    __slots__: tuple[str, ...] = ("_kinds",)
    _kinds: int

    def __copy__(self) -> Node:
        tp = type(self)
        new = object.__new__(tp)
        for k in tp.__slots__:
            setattr(new, k, getattr(self, k))
        return new

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(_hashable(getattr(self, k)) for k in self.__slots__)))


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    return v


def calls_function(node: Any) -> bool:
    """Does node (a statement or expression, with its subqueries) call any
    function, CURRENT_* included? (A statement that calls none cannot read the
    clock: session.py then pins no 'now' for it.)"""
    if isinstance(node, Func):
        return True
    if isinstance(node, Node):
        return any(calls_function(getattr(node, k)) for k in node.__slots__)
    if isinstance(node, (list, tuple)):
        return any(calls_function(x) for x in node)
    return False


# ---------------------------------------------------------------- expressions


class Expr(Node):
    __slots__ = ()


class Literal(Expr):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Param(Expr):
    """A bound parameter: index into the positional parameter list; name for :name."""

    __slots__ = ("index", "name")

    def __init__(self, index: int, name: str | None = None) -> None:
        self.index = index
        self.name = name


class Slot(Expr):
    """A literal of a statement template (statements.py): the index-th literal of
    the statement's text. Only in cached templates; the planner never sees one
    (a template is instantiated with a Param or a Literal in its place)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class Column(Expr):
    __slots__ = ("table", "name")

    def __init__(self, table: str | None, name: str) -> None:
        self.table = table
        self.name = name


class Star(Expr):
    """``*`` or ``t.*`` in a select list."""

    __slots__ = ("table",)

    def __init__(self, table: str | None = None) -> None:
        self.table = table


class Unary(Expr):
    __slots__ = ("op", "operand")

    def __init__(self, op: str, operand: Expr) -> None:
        self.op = op
        self.operand = operand


class Binary(Expr):
    """op is one of: + - * / % || & | << >> = != < <= > >= AND OR IS ISNOT."""

    __slots__ = ("op", "left", "right")

    def __init__(self, op: str, left: Expr, right: Expr) -> None:
        self.op = op
        self.left = left
        self.right = right


class Like(Expr):
    __slots__ = ("op", "expr", "pattern", "escape", "negated")

    def __init__(
        self, op: str, expr: Expr, pattern: Expr, escape: Expr | None, negated: bool
    ) -> None:
        self.op = op  # LIKE or GLOB
        self.expr = expr
        self.pattern = pattern
        self.escape = escape
        self.negated = negated


class Between(Expr):
    __slots__ = ("expr", "low", "high", "negated")

    def __init__(self, expr: Expr, low: Expr, high: Expr, negated: bool) -> None:
        self.expr = expr
        self.low = low
        self.high = high
        self.negated = negated


class InList(Expr):
    __slots__ = ("expr", "items", "negated")

    def __init__(self, expr: Expr, items: list[Expr], negated: bool) -> None:
        self.expr = expr
        self.items = items
        self.negated = negated


class InSelect(Expr):
    __slots__ = ("expr", "select", "negated")

    def __init__(self, expr: Expr, select: Select, negated: bool) -> None:
        self.expr = expr
        self.select = select
        self.negated = negated


class IsNull(Expr):
    __slots__ = ("expr", "negated")

    def __init__(self, expr: Expr, negated: bool) -> None:
        self.expr = expr
        self.negated = negated


class Exists(Expr):
    __slots__ = ("select",)

    def __init__(self, select: Select) -> None:
        self.select = select


class Subquery(Expr):
    """A scalar subquery: the first column of its first row, or NULL."""

    __slots__ = ("select",)

    def __init__(self, select: Select) -> None:
        self.select = select


class Case(Expr):
    __slots__ = ("operand", "whens", "else_")

    def __init__(
        self, operand: Expr | None, whens: list[tuple[Expr, Expr]], else_: Expr | None
    ) -> None:
        self.operand = operand
        self.whens = whens
        self.else_ = else_


class Cast(Expr):
    __slots__ = ("expr", "type_name")

    def __init__(self, expr: Expr, type_name: str) -> None:
        self.expr = expr
        self.type_name = type_name


class Collate(Expr):
    __slots__ = ("expr", "collation")

    def __init__(self, expr: Expr, collation: str) -> None:
        self.expr = expr
        self.collation = collation


class Func(Expr):
    """A function call; star for COUNT(*); distinct for COUNT(DISTINCT x);
    filter for an aggregate's FILTER (WHERE cond)."""

    __slots__ = ("name", "args", "distinct", "star", "filter")

    def __init__(
        self,
        name: str,
        args: list[Expr],
        distinct: bool = False,
        star: bool = False,
        filter: Expr | None = None,
    ):
        self.name = name
        self.args = args
        self.distinct = distinct
        self.star = star
        self.filter = filter


# frame bound kinds (Frame.start / Frame.end): (kind, offset expression or None)
UNBOUNDED_PRECEDING = "UNBOUNDED PRECEDING"
PRECEDING = "PRECEDING"
CURRENT_ROW = "CURRENT ROW"
FOLLOWING = "FOLLOWING"
UNBOUNDED_FOLLOWING = "UNBOUNDED FOLLOWING"


class Frame(Node):
    """A window frame: unit ROWS, RANGE or GROUPS; start and end bounds as
    (kind, expr) with kind one of the bound kinds above (expr for n PRECEDING /
    n FOLLOWING, else None); exclude None (NO OTHERS), CURRENT ROW, GROUP or TIES."""

    __slots__ = ("unit", "start", "end", "exclude")

    def __init__(
        self,
        unit: str,
        start: tuple[str, Expr | None],
        end: tuple[str, Expr | None],
        exclude: str | None = None,
    ) -> None:
        self.unit = unit
        self.start = start
        self.end = end
        self.exclude = exclude


class WindowSpec(Node):
    """OVER (...) or a WINDOW clause entry: base names a window it extends
    (its PARTITION BY and ORDER BY come from there); frame None is the default
    (RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)."""

    __slots__ = ("base", "partition_by", "order_by", "frame")

    def __init__(
        self,
        base: str | None,
        partition_by: list[Expr],
        order_by: list[OrderItem],
        frame: Frame | None,
    ) -> None:
        self.base = base
        self.partition_by = partition_by
        self.order_by = order_by
        self.frame = frame


class WindowFunc(Expr):
    """func OVER window: func is the call (its filter is FILTER (WHERE ...));
    window a WindowSpec, or the name of one in the SELECT's WINDOW clause."""

    __slots__ = ("func", "window")

    def __init__(self, func: Func, window: WindowSpec | str) -> None:
        self.func = func
        self.window = window


# ---------------------------------------------------------------- FROM clause


class TableRef(Node):
    """indexed: None, the index an ``INDEXED BY name`` names, or "" for ``NOT INDEXED``."""

    __slots__ = ("name", "alias", "indexed")

    def __init__(self, name: str, alias: str | None, indexed: str | None = None) -> None:
        self.name = name
        self.alias = alias
        self.indexed = indexed


class TableCall(Node):
    """A table-valued call in FROM, ``name(arg, ...) [AS alias]``: a table-valued
    function (``json_each(t.doc) AS j``; planner/joins.py), or a full-text table
    searched for its argument (``t('query')`` is ``t MATCH 'query'``; sql/fulltext.py
    rewrites it to the table before planning)."""

    __slots__ = ("name", "args", "alias")

    def __init__(self, name: str, args: list[Expr], alias: str | None) -> None:
        self.name = name
        self.args = args
        self.alias = alias


class SubqueryRef(Node):
    __slots__ = ("select", "alias")

    def __init__(self, select: Select, alias: str | None) -> None:
        self.select = select
        self.alias = alias


class Natural(list):  # type: ignore[type-arg]
    """The USING of a NATURAL join: empty until the planner knows the columns of
    both sides (every column name the right side shares with the left)."""

    __slots__ = ()


class Join(Node):
    """kind: INNER, LEFT or CROSS (a comma is CROSS); using: the USING columns,
    or a ``Natural`` for a NATURAL join."""

    __slots__ = ("kind", "left", "right", "on", "using")

    def __init__(
        self,
        kind: str,
        left: Node,
        right: Node,
        on: Expr | None,
        using: list[str] | None,
    ) -> None:
        self.kind = kind
        self.left = left
        self.right = right
        self.on = on
        self.using = using


# ---------------------------------------------------------------- statements


class Statement(Node):
    __slots__ = ()


class ResultColumn(Node):
    """One entry of a select list; text is its SQL source (the default column name)."""

    __slots__ = ("expr", "alias", "text")

    def __init__(self, expr: Expr, alias: str | None, text: str) -> None:
        self.expr = expr
        self.alias = alias
        self.text = text


class OrderItem(Node):
    __slots__ = ("expr", "desc", "nulls_first")

    def __init__(self, expr: Expr, desc: bool, nulls_first: bool | None) -> None:
        self.expr = expr
        self.desc = desc
        self.nulls_first = nulls_first


class SelectCore(Node):
    """One SELECT ... [FROM] [WHERE] [GROUP BY] [HAVING], or a VALUES list (values set)."""

    __slots__ = (
        "distinct",
        "columns",
        "from_",
        "where",
        "group_by",
        "having",
        "values",
        "windows",
    )

    def __init__(
        self,
        distinct: bool,
        columns: list[ResultColumn],
        from_: Node | None,
        where: Expr | None,
        group_by: list[Expr],
        having: Expr | None,
        values: list[list[Expr]] | None = None,
        windows: list[tuple[str, WindowSpec]] | None = None,
    ) -> None:
        self.windows = windows or []  # the WINDOW clause: (name, spec)
        self.distinct = distinct
        self.columns = columns
        self.from_ = from_
        self.where = where
        self.group_by = group_by
        self.having = having
        self.values = values


class Select(Statement):
    """[WITH ctes] cores[0] (op cores[i])*, then ORDER BY / LIMIT / OFFSET over the whole."""

    __slots__ = ("cores", "ops", "order_by", "limit", "offset", "ctes")

    def __init__(
        self,
        cores: list[SelectCore],
        ops: list[str],
        order_by: list[OrderItem],
        limit: Expr | None,
        offset: Expr | None,
        ctes: list[Cte] | None = None,
    ) -> None:
        self.cores = cores
        self.ops = ops  # UNION, UNION ALL, INTERSECT, EXCEPT
        self.order_by = order_by
        self.limit = limit
        self.offset = offset
        self.ctes = ctes or []  # WITH: visible in the body and to each other


class Cte(Node):
    """A common table expression: name [(columns)] AS (select)."""

    __slots__ = ("name", "columns", "select")

    def __init__(self, name: str, columns: list[str] | None, select: Select) -> None:
        self.name = name
        self.columns = columns
        self.select = select


class Insert(Statement):
    """source: a Select (VALUES lists are a Select of value cores) or None for DEFAULT VALUES.
    conflict: None, REPLACE, IGNORE, ABORT, FAIL, ROLLBACK (INSERT OR ...; ON CONFLICT DO
    NOTHING is IGNORE); upsert: (target columns, [(column, expr)], where) for DO UPDATE."""

    __slots__ = (
        "table",
        "columns",
        "source",
        "conflict",
        "upsert",
        "returning",
        "ctes",
    )

    def __init__(
        self,
        table: str,
        columns: list[str] | None,
        source: Select | None,
        conflict: str | None,
        upsert: tuple[Any, ...] | None = None,
        returning: list[ResultColumn] | None = None,
    ) -> None:
        self.table = table
        self.columns = columns
        self.source = source
        self.conflict = conflict
        self.upsert = upsert
        self.returning = returning
        self.ctes: list[Cte] = []  # a statement-level WITH


class Update(Statement):
    __slots__ = ("table", "alias", "sets", "where", "conflict", "returning", "ctes", "indexed")

    def __init__(
        self,
        table: str,
        alias: str | None,
        sets: list[tuple[str, Expr]],
        where: Expr | None,
        conflict: str | None,
        returning: list[ResultColumn] | None = None,
    ) -> None:
        self.table = table
        self.alias = alias
        self.sets = sets
        self.where = where
        self.conflict = conflict
        self.returning = returning
        self.ctes: list[Cte] = []  # a statement-level WITH
        self.indexed: str | None = None  # INDEXED BY / NOT INDEXED, as TableRef.indexed


class Delete(Statement):
    __slots__ = ("table", "alias", "where", "returning", "ctes", "indexed")

    def __init__(
        self,
        table: str,
        alias: str | None,
        where: Expr | None,
        returning: list[ResultColumn] | None = None,
    ) -> None:
        self.table = table
        self.alias = alias
        self.where = where
        self.returning = returning
        self.ctes: list[Cte] = []  # a statement-level WITH
        self.indexed: str | None = None  # INDEXED BY / NOT INDEXED, as TableRef.indexed


class ForeignKey(Node):
    __slots__ = ("columns", "ref_table", "ref_columns", "on_delete", "on_update")

    def __init__(
        self,
        columns: list[str],
        ref_table: str,
        ref_columns: list[str] | None,
        on_delete: str,
        on_update: str,
    ) -> None:
        self.columns = columns
        self.ref_table = ref_table
        self.ref_columns = ref_columns
        self.on_delete = on_delete
        self.on_update = on_update


class ColumnDef(Node):
    """A column of CREATE TABLE / ADD COLUMN; default_text and check texts are SQL source."""

    __slots__ = (
        "name",
        "type_name",
        "primary_key",
        "pk_desc",
        "autoincrement",
        "not_null",
        "unique",
        "default",
        "default_text",
        "checks",
        "references",
        "collation",
        "generated",
    )

    def __init__(self, name: str, type_name: str) -> None:
        self.name = name
        self.type_name = type_name
        self.primary_key = False
        self.pk_desc = False
        self.autoincrement = False
        self.not_null = False
        self.unique = False
        self.default: Expr | None = None
        self.default_text: str | None = None
        self.checks: list[tuple[str | None, str]] = []
        self.references: ForeignKey | None = None
        self.collation: str | None = None
        self.generated: tuple[str, bool] | None = None  # (expression text, STORED)


class TableConstraint(Node):
    """kind: PRIMARY, UNIQUE, CHECK or FOREIGN."""

    __slots__ = ("kind", "name", "columns", "check_text", "fk", "collations")

    def __init__(
        self,
        kind: str,
        name: str | None,
        columns: list[str],
        check_text: str | None = None,
        fk: ForeignKey | None = None,
        collations: list[str | None] | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.columns = columns
        self.check_text = check_text
        self.fk = fk
        # PRIMARY / UNIQUE: each column's COLLATE (upper case), None where not given
        self.collations = collations or [None] * len(columns)


class CreateVirtualTable(Statement):
    """CREATE VIRTUAL TABLE name USING module(args): args is the source text between
    the parentheses (None without them); the module splits it (sql/fulltext.py)."""

    __slots__ = ("name", "if_not_exists", "module", "args")

    def __init__(self, name: str, if_not_exists: bool, module: str, args: str | None) -> None:
        self.name = name
        self.if_not_exists = if_not_exists
        self.module = module
        self.args = args


class CreateTable(Statement):
    __slots__ = ("name", "if_not_exists", "columns", "constraints", "as_select", "strict")

    def __init__(
        self,
        name: str,
        if_not_exists: bool,
        columns: list[ColumnDef],
        constraints: list[TableConstraint],
        as_select: Select | None = None,
        strict: bool = False,
    ) -> None:
        self.name = name
        self.if_not_exists = if_not_exists
        self.columns = columns
        self.constraints = constraints
        self.as_select = as_select
        self.strict = strict  # a STRICT table (types checked on write)


class CreateView(Statement):
    __slots__ = ("name", "if_not_exists", "columns", "sql")

    def __init__(self, name: str, if_not_exists: bool, columns: list[str] | None, sql: str) -> None:
        self.name = name
        self.if_not_exists = if_not_exists
        self.columns = columns
        self.sql = sql  # the SELECT's source text


class DropView(Statement):
    __slots__ = ("name", "if_exists")

    def __init__(self, name: str, if_exists: bool) -> None:
        self.name = name
        self.if_exists = if_exists


class DropTable(Statement):
    __slots__ = ("name", "if_exists")

    def __init__(self, name: str, if_exists: bool) -> None:
        self.name = name
        self.if_exists = if_exists


class AlterTable(Statement):
    """action: ADD (column: ColumnDef), RENAME (new_name), RENAME_COLUMN (old, new), DROP_COLUMN."""

    __slots__ = ("name", "action", "column", "old", "new")

    def __init__(
        self,
        name: str,
        action: str,
        column: ColumnDef | None = None,
        old: str | None = None,
        new: str | None = None,
    ) -> None:
        self.name = name
        self.action = action
        self.column = column
        self.old = old
        self.new = new


class CreateIndex(Statement):
    """using: the index method (``USING hnsw``), None for a B+tree index; options: the
    ``WITH (name = value, ...)`` pairs, names lowercased (values literals or names)."""

    __slots__ = (
        "name",
        "table",
        "columns",
        "unique",
        "if_not_exists",
        "using",
        "options",
        "collations",
    )

    def __init__(
        self,
        name: str,
        table: str,
        columns: list[tuple[str, bool]],
        unique: bool,
        if_not_exists: bool,
        using: str | None = None,
        options: list[tuple[str, Any]] | None = None,
        collations: list[str | None] | None = None,
    ) -> None:
        self.name = name
        self.table = table
        self.columns = columns  # (column name, descending)
        self.unique = unique
        self.if_not_exists = if_not_exists
        self.using = using
        self.options = options
        # each column's COLLATE (upper case), None where not given
        self.collations = collations or [None] * len(columns)


class DropIndex(Statement):
    __slots__ = ("name", "if_exists")

    def __init__(self, name: str, if_exists: bool) -> None:
        self.name = name
        self.if_exists = if_exists


class Reindex(Statement):
    """REINDEX [name]: name None (every index), a collation, a table or an index."""

    __slots__ = ("name",)

    def __init__(self, name: str | None) -> None:
        self.name = name


class Vacuum(Statement):
    """VACUUM [schema] (VACUUM INTO is not supported: a syntax error)."""

    __slots__ = ("schema",)

    def __init__(self, schema: str | None) -> None:
        self.schema = schema


class Analyze(Statement):
    """ANALYZE [name]: name None (everything), a schema, a table or an index."""

    __slots__ = ("name",)

    def __init__(self, name: str | None) -> None:
        self.name = name


class TxnControl(Statement):
    """action: BEGIN (mode: DEFERRED/IMMEDIATE/EXCLUSIVE or None), COMMIT, ROLLBACK,
    or SAVEPOINT / RELEASE / ROLLBACK TO of the savepoint `name`."""

    __slots__ = ("action", "mode", "name")

    def __init__(self, action: str, mode: str | None = None, name: str | None = None) -> None:
        self.action = action
        self.mode = mode
        self.name = name


# the PRAGMAs that write to the database (or the session) when given a value
WRITING_PRAGMAS = frozenset(("foreign_keys", "user_version", "application_id"))


class Pragma(Statement):
    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.value = value


class Explain(Statement):
    __slots__ = ("statement",)

    def __init__(self, statement: Statement) -> None:
        self.statement = statement


class Parsed:
    """A parsed statement with what the executor needs about its parameters."""

    __slots__ = (
        "statement",
        "nparams",
        "names",
        "text",
        "read_only",
        "key",
        "nslots",
        "deep",
        "once",
    )

    def __init__(
        self,
        statement: Statement,
        nparams: int,
        names: dict[str, int],
        text: str,
        key: Any = None,
        nslots: int = 0,
        deep: bool = False,
    ):
        self.statement = statement
        # only reads: a SELECT, EXPLAIN, VACUUM, ANALYZE, or a PRAGMA that writes nothing
        self.read_only = isinstance(statement, (Select, Explain, Vacuum, Analyze)) or (
            isinstance(statement, Pragma)
            and (statement.name not in WRITING_PRAGMAS or statement.value is None)
        )
        self.nparams = nparams  # positional slots (named parameters get slots too)
        self.names = names  # parameter name (without its prefix) -> slot
        self.text = text
        # what compiled plans are cached by (engine.compiled_for): the text, or
        # for a statement template (statements.py) the template and the values
        # of its pinned literals
        self.key = text if key is None else key
        # the last nslots of the nparams parameters hold the statement's literals
        self.nslots = nslots
        # may nest deeply: parsed, planned and run with depth.headroom()
        self.deep = deep
        # the first sighting of a text with literals (statements.py): its plan
        # is not kept (engine.compiled_for)
        self.once = False


# ---------------------------------------------------------------- kinds of node

#: kinds(node) bits: the node kinds the planner asks about
K_COLLATE = 1  # Collate
K_SUBQUERY = 2  # Subquery, Exists, InSelect
K_FUNC = 4  # Func (an aggregate or window call is one)
K_WINDOW = 8  # WindowFunc
K_COLUMN = 16  # Column

KIND_BITS: dict[type, int] = {
    Collate: K_COLLATE,
    Subquery: K_SUBQUERY,
    Exists: K_SUBQUERY,
    InSelect: K_SUBQUERY,
    Func: K_FUNC,
    WindowFunc: K_WINDOW,
    Column: K_COLUMN,
}


#: nodes with no node below them: their kinds, never stored on them
_LEAF_KINDS: dict[type, int] = {Column: K_COLUMN, Literal: 0, Param: 0, Star: 0, Slot: 0}


def kinds(node: Any) -> int:
    """The K_* bits of the node kinds in node's subtree (node included, subqueries
    included; node may be a list or tuple of nodes), cached on each inner node."""
    tp = type(node)
    leaf = _LEAF_KINDS.get(tp)
    if leaf is not None:
        return leaf
    if tp is list or tp is tuple:
        m = 0
        for x in node:
            m |= kinds(x)
        return m
    if not isinstance(node, Node):
        return 0
    k: int | None = getattr(node, "_kinds", None)
    return _walk(node) if k is None else k


def _walk(node: Node) -> int:
    """kinds of node, found by walking its whole subtree (a node below that knows
    its kinds already is asked again: asking whether it knows costs more)."""
    tp = type(node)
    m = KIND_BITS.get(tp, 0)
    for name in tp.__slots__:
        v = getattr(node, name)
        tv = type(v)
        if v is None or tv is str or tv is bool or tv is int:
            continue
        leaf = _LEAF_KINDS.get(tv)
        if leaf is not None:
            m |= leaf
        elif tv is list or tv is tuple:
            m |= _walk_seq(v)
        elif isinstance(v, Node):
            m |= _walk(v)
    node._kinds = m
    return m


def _walk_seq(seq: list[Any] | tuple[Any, ...]) -> int:
    m = 0
    for x in seq:
        tx = type(x)
        leaf = _LEAF_KINDS.get(tx)
        if leaf is not None:
            m |= leaf
        elif tx is list or tx is tuple:
            m |= _walk_seq(x)
        elif isinstance(x, Node):
            m |= _walk(x)
    return m
