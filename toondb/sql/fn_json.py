"""SQLite's JSON functions (https://sqlite.org/json1.html, as SQLite 3.51 does them).

Scalars: json json_valid json_error_position json_type json_array_length
json_extract json_quote json_array json_object json_insert json_replace json_set
json_remove json_patch json_pretty, and the logic of the ``->``/``->>`` operators
(:func:`f_json_arrow`, :func:`f_json_arrow2`). Aggregates: json_group_array,
json_group_object. Table-valued: :func:`json_each`/:func:`json_tree`, generators
of rows in SQLite's column order (:data:`EACH_COLUMNS`).

Values (see :mod:`toondb.sql.jsonvalue` for the JSON model):

1. A JSON argument is text (JSON5 accepted) or a JSONB blob; a blob that is
   not JSONB is read as text. Malformed input is the error "malformed JSON".
2. A value argument (json_array(), json_set()...) becomes JSON by SQLite's
   rule: NULL -> null, numbers as numbers (a REAL as %!0.15g, infinities as
   9.0e+999), text as a string unless it is JSON text from another JSON
   function (a :class:`~toondb.sql.types.JsonText`, SQLite's subtype), which is
   embedded as JSON; a blob must be JSONB.
3. Every result that is JSON text is a JsonText, so that it nests.

Paths: ``$`` then any of ``.label``, ``."quoted label"``, ``[N]``, ``[#]``,
``[#-N]``, read lazily as SQLite does (a malformed tail the lookup never
reaches is no error); a malformed path that is reached is the error "bad JSON
path: '...'".
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Callable

from toondb.errors import SQLError
from toondb.sql import jsonvalue as J
from toondb.sql.depth import headroom
from toondb.sql.fn_printf import sqlite_format, value_int64
from toondb.sql.jsonvalue import ARRAY, OBJECT, Node
from toondb.sql.types import JsonText

try:  # strict JSON text and simple paths in C (toondb/sql/_jsonb.pyx), when built
    from toondb.sql import _jsonb
except ImportError:  # pragma: no cover
    _jsonb = None  # type: ignore[assignment]

__all__ = [
    "SCALARS",
    "AGGREGATES",
    "EACH_COLUMNS",
    "json_each",
    "json_tree",
    "f_json_arrow",
    "f_json_arrow2",
]

# ---------------------------------------------------------------- arguments


def _parse(v: Any) -> Node | None:
    """The JSON of an argument (None for NULL); malformed JSON is an error."""
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        if J.is_jsonb(b):
            return J.from_jsonb(b)
        text = b.decode("utf-8", "replace")
    elif isinstance(v, str):
        text = v
    else:
        text = _num_text(v)
    root, _, _ = J.parse_text(text)
    if root is None:
        raise J.malformed()
    return root


def _num_text(v: Any) -> str:
    if type(v) is float:
        return sqlite_format("%!.15g", v)
    return str(v)


def _path_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, str):
        return v
    return _num_text(v)


def _bad_path(path: str) -> SQLError:
    return SQLError("bad JSON path: " + sqlite_format("%Q", path))


# ---------------------------------------------------------------- path lookup

FOUND, NOTFOUND, PATHERROR = 0, 1, 2
DEL, REPLACE, INSERT, SET = 1, 2, 3, 4


class _Hit:
    """Where a lookup ended: the node, its container and position in it."""

    __slots__ = ("node", "parent", "index")

    def __init__(self, node: Node, parent: Node | None, index: int) -> None:
        self.node = node
        self.parent = parent
        self.index = index


def _label(path: str, i: int) -> tuple[str, Node, int] | None:
    """The label of a '.label' or '."label"' step at path[i] (after the dot):
    (its text, the label node an insertion adds, the index past it); None if
    malformed. A quoted label keeps its escapes in the inserted label."""
    if path[i : i + 1] == '"':
        k = i + 1
        while k < len(path) and path[k] != '"':
            if path[k] == "\\" and k + 1 < len(path):
                k += 1
            k += 1
        if k >= len(path):
            return None
        raw = path[i + 1 : k]
        return J.unescape(raw), Node(J.TEXTJ if "\\" in raw else J.TEXT, raw), k + 1
    k = i
    while k < len(path) and path[k] != "." and path[k] != "[":
        k += 1
    if k == i:
        return None
    return path[i:k], J.text_node(path[i:k]), k


def _index(path: str, i: int, node: Node) -> tuple[int | None, int] | None:
    """The element number of a '[N]', '[#]' or '[#-N]' step at path[i], and the
    index past it; (None, k) when it names no element; None if malformed."""
    k = i + 1
    while k < len(path) and "0" <= path[k] <= "9":
        k += 1
    if k > i + 1 and path[k : k + 1] == "]":
        return int(path[i + 1 : k]), k + 1
    if path[i + 1 : i + 2] != "#":
        return None
    count = len(node.v) if node.t == ARRAY else 0
    k = i + 2
    nn: int | None = count
    if path[k : k + 1] == "-" and "0" <= path[k + 1 : k + 2] <= "9":
        k += 1
        j = k
        while k < len(path) and "0" <= path[k] <= "9":
            k += 1
        back = int(path[j:k])
        nn = None if back > count else count - back
    if path[k : k + 1] != "]":
        return None
    return nn, k + 1


class _Editor:
    """One lookup of a path in a tree, with an optional edit at its end."""

    def __init__(self, edit: int = 0, value: Node | None = None) -> None:
        self.edit = edit
        self.value = value

    def lookup(self, node: Node, path: str, i: int, parent: Node | None, index: int) -> int:
        """FOUND (with self.hit), NOTFOUND or PATHERROR."""
        if i >= len(path):
            self.hit = _Hit(node, parent, index)
            if self.edit == DEL:
                del parent.v[index : index + (2 if parent.t == OBJECT else 1)]  # type: ignore[union-attr]
            elif self.edit in (REPLACE, SET):
                assert self.value is not None
                if parent is None:
                    self.root = self.value
                else:
                    parent.v[index + (1 if parent.t == OBJECT else 0)] = self.value
            return FOUND
        c = path[i]
        if c == ".":
            got = _label(path, i + 1)
            if got is None:
                return PATHERROR
            label, label_node, k = got
            if node.t != OBJECT:
                return NOTFOUND
            kids = node.v
            for j in range(0, len(kids), 2):
                if J.label_text(kids[j]) == label:
                    return self.lookup(kids[j + 1], path, k, node, j)
            if self.edit >= INSERT:
                sub = self._substructure(path, k)
                if isinstance(sub, int):
                    return sub
                kids.append(label_node)
                kids.append(sub)
                self.hit = _Hit(sub, node, len(kids) - 2)
                return FOUND
            return NOTFOUND
        if c == "[":
            if node.t != ARRAY:
                return NOTFOUND  # SQLite reads no further
            got2 = _index(path, i, node)
            if got2 is None:
                return PATHERROR
            nn, k = got2
            if nn is None:
                return NOTFOUND
            if nn < len(node.v):
                return self.lookup(node.v[nn], path, k, node, nn)
            if nn == len(node.v) and self.edit >= INSERT:
                sub = self._substructure(path, k)
                if isinstance(sub, int):
                    return sub
                node.v.append(sub)
                self.hit = _Hit(sub, node, len(node.v) - 1)
                return FOUND
            return NOTFOUND
        return PATHERROR

    def _substructure(self, path: str, k: int) -> Node | int:
        """The value to insert for a missing step: the new value itself, or the
        containers the rest of the path needs, built by the same edit."""
        assert self.value is not None
        if k >= len(path):
            return self.value
        sub = Node(OBJECT if path[k] == "." else ARRAY, [])
        inner = _Editor(self.edit, self.value)
        rc = inner.lookup(sub, path, k, None, 0)
        if rc != FOUND:
            return rc
        return sub


def _find(root: Node, path: str) -> Node | None:
    """The node at path (a full path starting with '$'), None if absent."""
    if not path.startswith("$"):
        raise _bad_path(path)
    ed = _Editor()
    rc = ed.lookup(root, path, 1, None, 0)
    if rc == PATHERROR:
        raise _bad_path(path)
    return ed.hit.node if rc == FOUND else None


# ---------------------------------------------------------------- scalar functions


def f_json(x: Any) -> Any:
    root = _parse(x)
    return None if root is None else J.render(root)


def f_json_valid(x: Any, flags: Any = 1) -> Any:
    if flags is None:
        flags = 1
    f = value_int64(flags)
    if not 1 <= f <= 15:
        raise SQLError("FLAGS parameter to json_valid() must be between 1 and 15")
    if x is None:
        return None
    if isinstance(x, (bytes, bytearray, memoryview)):
        b = bytes(x)
        if J.is_jsonb(b):
            if f & 0x04:
                return 1
            if f & 0x08:
                try:
                    J.from_jsonb(b)
                    return 1
                except SQLError:
                    return 0
        text = b.decode("utf-8", "replace")
    elif isinstance(x, str):
        text = x
    else:
        text = _num_text(x)
    if not f & 0x03:
        return 0
    root, _, nonstd = J.parse_text(text)
    if root is None:
        return 0
    return 1 if (not nonstd or f & 0x02) else 0


def f_json_error_position(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, (bytes, bytearray, memoryview)):
        b = bytes(x)
        if J.is_jsonb(b):
            try:
                J.from_jsonb(b)
                return 0
            except SQLError:
                return 1
        text = b.decode("utf-8", "replace")
    elif isinstance(x, str):
        text = x
    else:
        text = _num_text(x)
    root, err, _ = J.parse_text(text)
    if root is not None:
        return 0
    k = text.find("\x00")
    return min(err, k if k >= 0 else err) + 1


def f_json_type(x: Any, path: Any = ...) -> Any:
    root = _parse(x)
    if root is None:
        return None
    if path is not ...:
        p = _path_text(path)
        if p is None:
            return None
        node = _find(root, p)
        if node is None:
            return None
        root = node
    return J.TYPE_NAMES[root.t]


def f_json_array_length(x: Any, path: Any = ...) -> Any:
    root = _parse(x)
    if root is None:
        return None
    if path is not ...:
        p = _path_text(path)
        if p is None:
            return None
        node = _find(root, p)
        if node is None:
            return None
        root = node
    return len(root.v) if root.t == ARRAY else 0


def f_json_extract(x: Any, *paths: Any) -> Any:
    root = _parse(x)
    if root is None or not paths:
        return None
    if len(paths) == 1:
        p = _path_text(paths[0])
        if p is None:
            return None
        node = _find(root, p)
        return None if node is None else J.sql_value(node)
    parts = []
    for pv in paths:
        p = _path_text(pv)
        if p is None:
            return None
        node = _find(root, p)
        parts.append(Node(J.NULL) if node is None else node)
    return J.render(Node(ARRAY, parts))


def _arrow_path(v: Any) -> str | None:
    """The right operand of -> / ->>: a path, a label (.label) or a number ([N])."""
    if v is None:
        return None
    if type(v) is int:
        return f"$[#{v}]" if v < 0 else f"$[{v}]"
    p = _path_text(v)
    assert p is not None
    if p.startswith("$"):
        return p
    if p.startswith("["):
        return "$" + p
    return '$."' + p + '"'


def f_json_arrow(x: Any, path: Any) -> Any:
    """``x -> path``: the JSON text of the element (SQL NULL if absent)."""
    root = _parse(x)
    p = _arrow_path(path)
    if root is None or p is None:
        return None
    node = _find(root, p)
    return None if node is None else J.render(node)


def f_json_arrow2(x: Any, path: Any) -> Any:
    """``x ->> path``: the SQL value of the element, as json_extract() gives it."""
    root = _parse(x)
    p = _arrow_path(path)
    if root is None or p is None:
        return None
    node = _find(root, p)
    return None if node is None else J.sql_value(node)


def f_json_quote(v: Any) -> Any:
    if type(v) is JsonText:
        return v
    return J.render(J.from_sql(v))


def f_json_array(*args: Any) -> Any:
    return J.render(Node(ARRAY, [J.from_sql(a) for a in args]))


def f_json_object(*args: Any) -> Any:
    if len(args) % 2:
        raise SQLError("json_object() requires an even number of arguments")
    kids = []
    for k in range(0, len(args), 2):
        label = args[k]
        if not isinstance(label, str):
            raise SQLError("json_object() labels must be TEXT")
        kids.append(J.text_node(label))
        kids.append(J.from_sql(args[k + 1]))
    return J.render(Node(OBJECT, kids))


def _edit(name: str, mode: int, x: Any, args: tuple[Any, ...]) -> Any:
    if len(args) % 2:
        raise SQLError(f"json_{name}() needs an odd number of arguments")
    root = _parse(x)
    if root is None:
        return None
    root = root.copy()
    for k in range(0, len(args), 2):
        p = _path_text(args[k])
        if p is None:
            continue
        if not p.startswith("$"):
            raise _bad_path(p)
        value = J.from_sql(args[k + 1], edit=True)
        ed = _Editor(mode, value)
        ed.root = root
        rc = ed.lookup(root, p, 1, None, 0)
        if rc == PATHERROR:
            raise _bad_path(p)
        root = ed.root
    return J.render(root)


def f_json_insert(x: Any, *args: Any) -> Any:
    return _edit("insert", INSERT, x, args)


def f_json_replace(x: Any, *args: Any) -> Any:
    return _edit("replace", REPLACE, x, args)


def f_json_set(x: Any, *args: Any) -> Any:
    return _edit("set", SET, x, args)


def f_json_remove(x: Any, *paths: Any) -> Any:
    root = _parse(x)
    if root is None:
        return None
    root = root.copy()
    for pv in paths:
        p = _path_text(pv)
        if p is None:
            return None
        if not p.startswith("$"):
            raise _bad_path(p)
        if p == "$":
            return None
        ed = _Editor(DEL)
        if ed.lookup(root, p, 1, None, 0) == PATHERROR:
            raise _bad_path(p)
    return J.render(root)


def _merge_patch(target: Node, patch: Node) -> Node:
    """RFC 7396 MergePatch, keeping the order SQLite keeps."""
    if patch.t != OBJECT:
        return patch
    if target.t != OBJECT:
        target = Node(OBJECT, [])
    kids = target.v
    pk = patch.v
    for j in range(0, len(pk), 2):
        label = J.label_text(pk[j])
        value = pk[j + 1]
        for i in range(0, len(kids), 2):
            if J.label_text(kids[i]) == label:
                if value.t == J.NULL:
                    del kids[i : i + 2]
                else:
                    kids[i + 1] = _merge_patch(kids[i + 1], value)
                break
        else:
            if value.t != J.NULL:
                kids.append(pk[j])
                kids.append(_merge_patch(Node(J.NULL), value))
    return target


def f_json_patch(x: Any, patch: Any) -> Any:
    root = _parse(x)
    p = _parse(patch)
    if root is None or p is None:
        return None
    return J.render(_merge_patch(root.copy(), p))


def f_json_pretty(x: Any, indent: Any = None) -> Any:
    root = _parse(x)
    if root is None:
        return None
    ind = "    " if indent is None else (_path_text(indent) or "")
    return J.render_pretty(root, ind)


# ---------------------------------------------------------------- aggregates


def agg_json_group_array(vals: list[Any]) -> JsonText:
    """json_group_array(X): the values of a group as a JSON array (NULLs as null)."""
    return J.render(Node(ARRAY, [J.from_sql(v) for v in vals]))


def agg_json_group_object(pairs: list[tuple[Any, Any]]) -> JsonText:
    """json_group_object(NAME, VALUE) over one row tuple per group member; a
    row with a NULL name is left out."""
    kids = []
    for name, value in pairs:
        if name is None:
            continue
        text = name if isinstance(name, str) else _path_text(name)
        kids.append(J.text_node(text or ""))
        kids.append(J.from_sql(value))
    return J.render(Node(OBJECT, kids))


# ---------------------------------------------------------------- json_each / json_tree

EACH_COLUMNS = ("key", "value", "type", "atom", "id", "parent", "fullkey", "path", "json", "root")


def _path_step(parent: Node, pos: int) -> str:
    """The fullkey step of a child: [N] in an array, .label or ."label" in an object."""
    if parent.t == ARRAY:
        return f"[{pos}]"
    raw: str = parent.v[pos].v
    if raw and ("a" <= raw[0].lower() <= "z") and all(ch.isascii() and ch.isalnum() for ch in raw):
        return "." + raw
    return '."' + raw + '"'


def _row_values(node: Node) -> tuple[Any, str, Any]:
    """(value, type, atom) columns of a node."""
    value = J.sql_value(node)
    atom = None if node.t >= ARRAY else value
    return value, J.TYPE_NAMES[node.t], atom


def _sizer() -> Callable[[Node], int]:
    """J.size with a memo by node, for the walks of one json_each/json_tree call
    (every id is an offset: without it each level re-sums the sizes below it)."""
    memo: dict[int, int] = {}

    def size(n: Node) -> int:
        k = id(n)
        s = memo.get(k)
        if s is None:
            if n.t < ARRAY:
                s = J.size(n)
            else:
                p = sum(size(c) for c in n.v)
                s = J.header_size(p) + p
            memo[k] = s
        return s

    return size


def _locate(
    root: Node, path: str, size: Callable[[Node], int] = J.size
) -> tuple[Node, Node | None, int, int, int] | None:
    """(node, its container, its position there, id, id of its slot) of the
    element at path; the slot id is its label's id for an object member."""
    if not path.startswith("$"):
        raise _bad_path(path)
    ed = _Editor()
    rc = ed.lookup(root, path, 1, None, 0)
    if rc == PATHERROR:
        raise _bad_path(path)
    if rc != FOUND:
        return None
    target = ed.hit.node
    found: list[Any] = []

    def walk(n: Node, off: int, par: Node | None, p: int, slot_off: int) -> bool:
        if n is target:
            found.extend((n, par, p, off, slot_off))
            return True
        if n.t < ARRAY:
            return False
        child = off + J.header_size(sum(size(c) for c in n.v))
        step = 2 if n.t == OBJECT else 1
        for k in range(0, len(n.v), step):
            label_off = child
            if step == 2:
                child += size(n.v[k])
            if walk(n.v[k + step - 1], child, n, k, label_off):
                return True
            child += size(n.v[k + step - 1])
        return False

    walk(root, 0, None, 0, 0)
    return found[0], found[1], found[2], found[3], found[4]


def _root_row_path(root: Node, rp: str, row_id: int, size: Callable[[Node], int]) -> int:
    """How much of the root path is json_tree's first row's path, as SQLite's
    jsonEachPathLength finds it: the longest prefix ending before a '.' or '['
    that names an element whose first child has the row's id (which misses
    a root that is not its container's first child: SQLite does the same)."""
    n = len(rp)
    while n > 1:
        n -= 1
        if rp[n] in "[.":
            try:
                found = _locate(root, rp[:n], size)
            except SQLError:
                continue
            if found is None:
                continue
            node, _, _, off, _ = found
            payload = 0 if node.t < ARRAY else sum(size(c) for c in node.v)
            if node.t >= ARRAY and off + J.header_size(payload) == row_id:
                break
            if node.t < ARRAY and off + J.header_size(J.utf8_len(node.v or "")) == row_id:
                break
    return n


def _each(x: Any, root_path: Any, recursive: bool) -> Iterator[tuple[Any, ...]]:
    try:
        if _long((x,)):
            with headroom():
                yield from _each_rows(x, root_path, recursive)
        else:
            yield from _each_rows(x, root_path, recursive)
    except RecursionError:
        raise SQLError("JSON nested too deep") from None


def _each_rows(x: Any, root_path: Any, recursive: bool) -> Iterator[tuple[Any, ...]]:
    root = _parse(x)
    if root is None:
        return
    rp = "$" if root_path is None else _path_text(root_path)
    assert rp is not None
    size = _sizer()
    found = _locate(root, rp, size)
    if found is None:
        return
    node, parent, pos, offset, slot = found
    json_col = x.split("\x00", 1)[0] if isinstance(x, str) else J.render(root)
    root_col = rp
    # json_tree's first row: its key and path are read off the root path
    root_id = slot if parent is not None and parent.t == OBJECT else offset
    key0: Any = None
    parent_path = "$"
    if len(rp) > 1 and recursive:  # (json_each's rows do not show them)
        j = _root_row_path(root, rp, root_id, size)
        parent_path = rp[:j]
        tail = rp[j:]
        if tail.startswith("["):
            digits = ""
            for ch in tail[1:]:
                if not "0" <= ch <= "9":
                    break
                digits += ch
            key0 = int(digits) if digits else 0
        elif tail.startswith('."'):
            key0 = tail[2:-1]
        elif tail:
            key0 = tail[1:]

    def children(n: Node, off: int) -> Iterator[tuple[Any, Node, int, str, int]]:
        child = off + J.header_size(sum(size(c) for c in n.v))
        step = 2 if n.t == OBJECT else 1
        for k in range(0, len(n.v), step):
            kid = n.v[k + step - 1]
            key = k if step == 1 else J.label_text(n.v[k])
            kid_id = child
            if step == 2:
                child += size(n.v[k])
            yield key, kid, kid_id, _path_step(n, k), child
            child += size(kid)

    if not recursive:
        if node.t < ARRAY:
            v, t, a = _row_values(node)
            yield (None, v, t, a, root_id, None, rp, rp, json_col, root_col)
            return
        for key, kid, kid_id, step, _value_off in children(node, offset):
            v, t, a = _row_values(kid)
            yield (key, v, t, a, kid_id, None, rp + step, rp, json_col, root_col)
        return

    def tree(
        n: Node, key: Any, node_id: int, value_off: int, parent_id: Any, full: str, path: str
    ) -> Iterator[tuple[Any, ...]]:
        v, t, a = _row_values(n)
        yield (key, v, t, a, node_id, parent_id, full, path, json_col, root_col)
        if n.t >= ARRAY:
            for k2, kid, kid_id, step, kid_value_off in children(n, value_off):
                yield from tree(kid, k2, kid_id, kid_value_off, node_id, full + step, full)

    yield from tree(node, key0, root_id, offset, None, rp, parent_path)


def json_each(x: Any, root: Any = None) -> Iterator[tuple[Any, ...]]:
    """Rows of json_each(X [, P]): one per element of the array or object at P
    (or one row for a primitive), columns :data:`EACH_COLUMNS` (the kernel's
    json_each replaces this when it is built)."""
    return _each(x, root, False)


def json_tree(x: Any, root: Any = None) -> Iterator[tuple[Any, ...]]:
    """Rows of json_tree(X [, P]): the element at P and everything below it,
    depth first, columns :data:`EACH_COLUMNS` (the kernel's json_tree replaces
    this when it is built)."""
    return _each(x, root, True)


# ---------------------------------------------------------------- registration


# an argument this long may nest deeper than the default recursion limit allows
# (each level takes two characters): its call runs under depth.headroom()
DEEP_TEXT = 700


def _long(args: tuple[Any, ...]) -> bool:
    for a in args:
        if (type(a) is str or type(a) is JsonText or type(a) is bytes) and len(a) > DEEP_TEXT:
            return True
    return False


def _deep(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn; on a long argument under depth.headroom() (the recursion limit lifted
    while it runs, so JSON nests to SQLite's 1000 levels), and a tree nested
    deeper than the stack allows refused as an SQLError."""

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        try:
            if _long(args):
                with headroom():
                    return fn(*args)
            return fn(*args)
        except RecursionError:
            raise SQLError("JSON nested too deep") from None

    return call


# ---------------------------------------------------------------- the fast path
# json_extract() with one path, ->, ->>, json_each() and json_tree() go through
# the C kernel first (toondb/sql/_jsonb.pyx: strict JSON text to the JSONB
# SQLite builds, read without a Python object per node); what it declines
# (JSON5, malformed text, escaped labels, other paths...) takes the full way
# above, which raises the errors.
_json_extract: Callable[..., Any] = _deep(f_json_extract)
_json_arrow: Callable[..., Any] = _deep(f_json_arrow)
_json_arrow2: Callable[..., Any] = _deep(f_json_arrow2)
_slow_extract, _slow_arrow, _slow_arrow2 = _json_extract, _json_arrow, _json_arrow2
if _jsonb is not None:
    _jsonb.set_full_way(_slow_extract, _slow_arrow, _slow_arrow2, _each)
    _json_extract, _json_arrow, _json_arrow2 = (
        _jsonb.json_extract,
        _jsonb.json_arrow,
        _jsonb.json_arrow2,
    )
    json_each = _jsonb.json_each  # noqa: F811
    json_tree = _jsonb.json_tree  # noqa: F811

# name -> (min args, max args, function, deterministic)
SCALARS: dict[str, tuple[int, int, Callable[..., Any], bool]] = {
    "JSON": (1, 1, _deep(f_json), True),
    "JSON_VALID": (1, 2, _deep(f_json_valid), True),
    "JSON_ERROR_POSITION": (1, 1, _deep(f_json_error_position), True),
    "JSON_TYPE": (1, 2, _deep(f_json_type), True),
    "JSON_ARRAY_LENGTH": (1, 2, _deep(f_json_array_length), True),
    "JSON_EXTRACT": (1, 999, _json_extract, True),
    "JSON_QUOTE": (1, 1, _deep(f_json_quote), True),
    "JSON_ARRAY": (0, 999, _deep(f_json_array), True),
    "JSON_OBJECT": (0, 999, _deep(f_json_object), True),
    "JSON_INSERT": (1, 999, _deep(f_json_insert), True),
    "JSON_REPLACE": (1, 999, _deep(f_json_replace), True),
    "JSON_SET": (1, 999, _deep(f_json_set), True),
    "JSON_REMOVE": (1, 999, _deep(f_json_remove), True),
    "JSON_PATCH": (2, 2, _deep(f_json_patch), True),
    "JSON_PRETTY": (1, 2, _deep(f_json_pretty), True),
    "JSON_ARROW": (2, 2, _json_arrow, True),
    "JSON_ARROW2": (2, 2, _json_arrow2, True),
}

# name -> (number of arguments, finisher over the group's argument values)
AGGREGATES = {
    "JSON_GROUP_ARRAY": (1, _deep(agg_json_group_array)),
    "JSON_GROUP_OBJECT": (2, _deep(agg_json_group_object)),
}
