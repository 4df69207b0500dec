"""JSON values as SQLite's JSON functions hold them: parsing, rendering, SQL values.

SQLite parses JSON text into JSONB, a binary tree whose leaves keep the literal
text of numbers and strings (so ``json('1.50')`` stays ``1.50`` and
``json('"\\u0041"')`` stays ``"\\u0041"``). :class:`Node` is that tree: a JSONB
element type and, for a leaf, its payload text (the characters between the
quotes of a string, the literal of a number), for a container its children (an
object's children alternate label, value). Node sizes are JSONB sizes, which
is what json_each()/json_tree() report as ``id``.

Input acceptance is SQLite's (3.42+), JSON5 included: comments, trailing
commas, unquoted labels, single-quoted strings, hex integers, ``+`` signs,
``.5``/``5.``, Infinity/NaN, JSON5 escapes and whitespace; the output is always
canonical RFC-8259 JSON. Error offsets are those SQLite reports through
json_error_position(). A BLOB argument is read as JSONB (:func:`from_jsonb`).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from toondb.errors import SQLError
from toondb.sql.fn_printf import atof, sqlite_format
from toondb.sql.types import I64_MAX, I64_MIN, JsonText

# JSONB element types
NULL, TRUE, FALSE, INT, INT5, FLOAT, FLOAT5 = 0, 1, 2, 3, 4, 5, 6
TEXT, TEXTJ, TEXT5, TEXTRAW, ARRAY, OBJECT = 7, 8, 9, 10, 11, 12
TYPE_NAMES = (
    "null", "true", "false", "integer", "integer", "real", "real",
    "text", "text", "text", "text", "array", "object",
)  # fmt: skip
MAX_DEPTH = 1000


class Node:
    """One JSON element: t is the JSONB type, v the payload text of a leaf
    (None for null/true/false) or the list of children of a container."""

    __slots__ = ("t", "v")

    def __init__(self, t: int, v: Any = None) -> None:
        self.t = t
        self.v = v

    def copy(self) -> Node:
        if self.t >= ARRAY:
            return Node(self.t, [c.copy() for c in self.v])
        return Node(self.t, self.v)

    def __repr__(self) -> str:
        return f"Node({TYPE_NAMES[self.t]}, {self.v!r})"


def malformed() -> SQLError:
    return SQLError("malformed JSON")


def depth_limit() -> int:
    """The deepest nesting parsed here: SQLite's MAX_DEPTH (1000), or less when
    the interpreter's recursion limit leaves less room. The walks over a parsed
    tree recurse once or twice per level, so the parser refuses (as malformed,
    as SQLite does past its limit) what they could not walk; this module never
    changes the limit (fn_json runs a call with a long argument under
    depth.headroom(), which lifts it while the call runs, so 1000 levels parse).
    With the default limit of 1000 and no headroom this is 400 levels."""
    return max(16, min(MAX_DEPTH, (sys.getrecursionlimit() - 200) // 2))


# ---------------------------------------------------------------- characters

_SPACE = "\t\n\r "
# JSON5 white space beyond the JSON four (after SQLite's json5Whitespace)
_SPACE5 = set("\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | {
    chr(c) for c in range(0x2000, 0x200B)
}
_HEX = set("0123456789abcdefABCDEF")
_DIGITS = set("0123456789")


def _is_ok(c: str) -> bool:
    """jsonIsOk: a character that needs no escaping inside a JSON string."""
    return c >= " " and c not in "\"\\'"


def _alnum(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9")


def _id1(c: str) -> bool:
    """sqlite3JsonId1: a character that can start an unquoted JSON5 label."""
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or c in "_$" or c >= "\x80"


def _id2(c: str) -> bool:
    return _id1(c) or "0" <= c <= "9"


def json5_space(z: str, i: int) -> int:
    """The length of the JSON5 white space (comments included) at z[i]."""
    n = i
    while True:
        c = z[n]
        if c in _SPACE5:
            n += 1
        elif c == "/":
            if z[n + 1] == "*" and z[n + 2] != "\x00":
                j = n + 3
                while z[j] != "/" or z[j - 1] != "*":
                    if z[j] == "\x00":
                        return n - i
                    j += 1
                n = j + 1
            elif z[n + 1] == "/":
                j = n + 2
                while z[j] != "\x00":
                    if z[j] in "\n\r\u2028\u2029":
                        break
                    j += 1
                n = j
                if z[n] != "\x00":
                    n += 1
            else:
                return n - i
        else:
            return n - i


def _is4hex(z: str, i: int) -> bool:
    return all(c in _HEX for c in z[i : i + 4]) and len(z[i : i + 4]) == 4


# ---------------------------------------------------------------- text -> Node


class _Parser:
    """SQLite's JSON text parser (jsonTranslateTextToBlob), building Nodes."""

    def __init__(self, text: str) -> None:
        self.z = text + "\x00"  # C reads the text up to a NUL
        self.err = 0
        self.depth = 0
        self.max_depth = depth_limit()
        self.nonstd = False
        self.out: list[Node] = []

    def parse(self, i: int) -> int:
        """Append one element from z[i] to self.out; return the index past it,
        or 0 (end), -1 (error), -2 '}', -3 ']', -4 ',', -5 ':' (err = where)."""
        z = self.z
        while True:
            c = z[i]
            if c in _SPACE:
                i += 1
                while z[i] in _SPACE:
                    i += 1
                continue
            if c == "{":
                return self._object(i)
            if c == "[":
                return self._array(i)
            if c == '"' or c == "'":
                return self._string(i)
            if c == "t" or c == "f" or c == "n":
                word = {"t": "true", "f": "false", "n": "null"}[c]
                if z.startswith(word, i) and not _alnum(z[i + len(word)]):
                    self.out.append(Node({"t": TRUE, "f": FALSE, "n": NULL}[c]))
                    return i + len(word)
                if c != "n":
                    self.err = i
                    return -1
                return self._nan_inf(i)
            if c in "+-.0123456789":
                return self._number(i)
            if c == "}":
                self.err = i
                return -2
            if c == "]":
                self.err = i
                return -3
            if c == ",":
                self.err = i
                return -4
            if c == ":":
                self.err = i
                return -5
            if c == "\x00":
                return 0
            if c in "\v\f/" or c in _SPACE5:
                j = json5_space(z, i)
                if j > 0:
                    i += j
                    self.nonstd = True
                    continue
                self.err = i
                return -1
            return self._nan_inf(i)

    def _nan_inf(self, i: int) -> int:
        z = self.z
        for word, node in (
            ("inf", FLOAT), ("infinity", FLOAT), ("nan", NULL), ("qnan", NULL), ("snan", NULL),
        ):  # fmt: skip
            n = len(word)
            if z[i : i + n].lower() != word or _alnum(z[i + n]):
                continue
            self.out.append(Node(FLOAT, "9e999") if node == FLOAT else Node(NULL))
            self.nonstd = True
            return i + n
        self.err = i
        return -1

    def _enter(self, i: int) -> bool:
        self.depth += 1
        if self.depth > self.max_depth:
            self.err = i
            return False
        return True

    def _object(self, i: int) -> int:
        z = self.z
        out = self.out
        start = len(out)
        if not self._enter(i):
            return -1
        j = i + 1
        while True:
            nb = len(out)
            x = self.parse(j)
            if x <= 0:
                if x == -2:
                    j = self.err
                    if len(out) != start:
                        self.nonstd = True
                    break
                j += json5_space(z, j)
                op = TEXT
                if _id1(z[j]) or (z[j] == "\\" and z[j + 1] == "u" and _is4hex(z, j + 2)):
                    if z[j] == "\\":
                        op = TEXT5
                    k = j + 1
                    while (_id2(z[k]) and json5_space(z, k) == 0) or (
                        z[k] == "\\" and z[k + 1] == "u" and _is4hex(z, k + 2)
                    ):
                        if z[k] == "\\":
                            op = TEXT5
                        k += 1
                    del out[nb:]
                    out.append(Node(op, z[j:k]))
                    self.nonstd = True
                    x = k
                else:
                    if x != -1:
                        self.err = j
                    return -1
            if out[nb].t < TEXT or out[nb].t > TEXTRAW:
                self.err = j
                return -1
            j = x
            if z[j] == ":":
                j += 1
            else:
                if z[j] in _SPACE:
                    j += 1
                    while z[j] in _SPACE:
                        j += 1
                    if z[j] == ":":
                        j += 1
                        x = 0  # the colon is found (x, a position, is > 0 otherwise)
                if x != 0:
                    x = self.parse(j)
                    if x != -5:
                        if x != -1:
                            self.err = j
                        return -1
                    j = self.err + 1
            x = self.parse(j)
            if x <= 0:
                if x != -1:
                    self.err = j
                return -1
            j = x
            if z[j] == ",":
                j += 1
                continue
            if z[j] == "}":
                break
            if z[j] in _SPACE:
                j += 1
                while z[j] in _SPACE:
                    j += 1
                if z[j] == ",":
                    j += 1
                    continue
                if z[j] == "}":
                    break
            x = self.parse(j)
            if x == -4:
                j = self.err + 1
                continue
            if x == -2:
                j = self.err
                break
            self.err = j
            return -1
        node = Node(OBJECT, out[start:])
        del out[start:]
        out.append(node)
        self.depth -= 1
        return j + 1

    def _array(self, i: int) -> int:
        z = self.z
        out = self.out
        start = len(out)
        if not self._enter(i):
            return -1
        j = i + 1
        while True:
            x = self.parse(j)
            if x <= 0:
                if x == -3:
                    j = self.err
                    if len(out) != start:
                        self.nonstd = True
                    break
                if x != -1:
                    self.err = j
                return -1
            j = x
            if z[j] == ",":
                j += 1
                continue
            if z[j] == "]":
                break
            if z[j] in _SPACE:
                j += 1
                while z[j] in _SPACE:
                    j += 1
                if z[j] == ",":
                    j += 1
                    continue
                if z[j] == "]":
                    break
            x = self.parse(j)
            if x == -4:
                j = self.err + 1
                continue
            if x == -3:
                j = self.err
                break
            self.err = j
            return -1
        node = Node(ARRAY, out[start:])
        del out[start:]
        out.append(node)
        self.depth -= 1
        return j + 1

    def _string(self, i: int) -> int:
        z = self.z
        delim = z[i]
        if delim == "'":
            self.nonstd = True
        op = TEXT
        j = i + 1
        while True:
            c = z[j]
            if _is_ok(c):
                j += 1
                continue
            if c == delim:
                break
            if c == "\\":
                j += 1
                c = z[j]
                if c in '"\\/bfnrt' or (c == "u" and _is4hex(z, j + 1)):
                    if op == TEXT:
                        op = TEXTJ
                elif (
                    c in "'v\n\u2028\u2029"
                    or (c == "0" and z[j + 1] not in _DIGITS)
                    or (c == "x" and z[j + 1] in _HEX and z[j + 2] in _HEX)
                ):
                    op = TEXT5
                    self.nonstd = True
                elif c == "\r":
                    if z[j + 1] == "\n":
                        j += 1
                    op = TEXT5
                    self.nonstd = True
                else:
                    self.err = j
                    return -1
            elif c <= "\x1f":
                if c == "\x00":
                    self.err = j
                    return -1
                op = TEXT5  # control characters are JSON5
                self.nonstd = True
            elif c == '"':
                op = TEXT5
            j += 1
        self.out.append(Node(op, z[i + 1 : j]))
        return j + 1

    def _number(self, i: int) -> int:
        z = self.z
        t = 0  # bit 1: JSON5, bit 2: real
        c = z[i]
        if c == "+":
            self.nonstd = True
        elif c == ".":
            if z[i + 1] not in _DIGITS:
                self.err = i
                return -1
            self.nonstd = True
            return self._number_tail(i, 3, False)
        if c <= "0":
            if c == "0":
                if z[i + 1] in "xX" and z[i + 2] in _HEX:
                    self.nonstd = True
                    j = i + 3
                    while z[j] in _HEX:
                        j += 1
                    return self._number_end(i, j, 1)
                if z[i + 1] in _DIGITS:
                    self.err = i + 1
                    return -1
            else:  # + or -
                if z[i + 1] not in _DIGITS:
                    if z[i + 1 : i + 4].lower() == "inf":
                        self.nonstd = True
                        self.out.append(Node(FLOAT, "-9e999" if c == "-" else "9e999"))
                        return i + (9 if z[i + 4 : i + 9].lower() == "inity" else 4)
                    if z[i + 1] == ".":
                        self.nonstd = True
                        return self._number_tail(i, t | 1, False)
                    self.err = i
                    return -1
                if z[i + 1] == "0":
                    if z[i + 2] in _DIGITS:
                        self.err = i + 1
                        return -1
                    if z[i + 2] in "xX" and z[i + 3] in _HEX:
                        self.nonstd = True
                        j = i + 4
                        while z[j] in _HEX:
                            j += 1
                        return self._number_end(i, j, t | 1)
        return self._number_tail(i, t, False)

    def _number_tail(self, i: int, t: int, seen_e: bool) -> int:
        z = self.z
        j = i + 1
        while True:
            c = z[j]
            if c in _DIGITS:
                j += 1
                continue
            if c == ".":
                if t & 2:
                    self.err = j
                    return -1
                t |= 2
                j += 1
                continue
            if c in "eE":
                if z[j - 1] < "0":
                    if z[j - 1] == "." and j - 2 >= i and z[j - 2] in _DIGITS:
                        self.nonstd = True
                        t |= 1
                    else:
                        self.err = j
                        return -1
                if seen_e:
                    self.err = j
                    return -1
                t |= 2
                seen_e = True
                c = z[j + 1]
                if c in "+-":
                    j += 1
                    c = z[j + 1]
                if not "0" <= c <= "9":
                    self.err = j
                    return -1
                j += 1
                continue
            break
        if z[j - 1] < "0":
            if z[j - 1] == "." and j - 2 >= i and z[j - 2] in _DIGITS:
                self.nonstd = True
                t |= 1
            else:
                self.err = j
                return -1
        return self._number_end(i, j, t)

    def _number_end(self, i: int, j: int, t: int) -> int:
        if self.z[i] == "+":
            i += 1
        self.out.append(Node(INT + t, self.z[i:j]))
        return j


def parse_text(text: str) -> tuple[Node | None, int, bool]:
    """(root, error offset, uses JSON5): root is None when the text is not
    JSON, with the 0-based character offset of the error."""
    p = _Parser(text)
    i = p.parse(0)
    if i > 0:
        z = p.z
        while z[i] in _SPACE:
            i += 1
        if z[i] != "\x00":
            i += json5_space(z, i)
            if z[i] != "\x00":
                return None, p.err, p.nonstd  # SQLite reports its last offset
            p.nonstd = True
        return p.out[0], 0, p.nonstd
    return None, (p.err if i < 0 else 0), p.nonstd


# ---------------------------------------------------------------- JSONB -> Node


def jsonb_header(b: bytes, i: int) -> tuple[int, int]:
    """(header size, payload size) of the JSONB element at b[i]; (0, 0) if bad."""
    x = b[i] >> 4
    if x <= 11:
        n, sz = 1, x
    else:
        n = (2, 3, 5, 9)[x - 12]
        if i + n > len(b):
            return 0, 0
        sz = int.from_bytes(b[i + 1 : i + n], "big")
    if i + n + sz > len(b):
        return 0, 0
    return n, sz


def is_jsonb(b: bytes) -> bool:
    """SQLite's quick test that a BLOB is JSONB: one element filling it."""
    if not b or (b[0] & 0x0F) > OBJECT:
        return False
    n, sz = jsonb_header(b, 0)
    return n > 0 and n + sz == len(b)


def from_jsonb(b: bytes) -> Node:
    """The Node tree of a JSONB blob (malformed JSON if it does not decode)."""

    def element(i: int, end: int) -> tuple[Node, int]:
        n, sz = jsonb_header(b, i)
        if n == 0 or i + n + sz > end:
            raise malformed()
        t = b[i] & 0x0F
        body = i + n
        if t <= FALSE:
            if sz:
                raise malformed()
            return Node(t), body
        if t < ARRAY:
            try:
                text = b[body : body + sz].decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                text = b[body : body + sz].decode("utf-8", "replace")
            return Node(t, text), body + sz
        if t > OBJECT:
            raise malformed()
        kids = []
        j = body
        while j < body + sz:
            kid, j = element(j, body + sz)
            kids.append(kid)
        if t == OBJECT and len(kids) % 2:
            raise malformed()
        return Node(t, kids), j

    return element(0, len(b))[0]


# ---------------------------------------------------------------- sizes (ids)


def utf8_len(s: str) -> int:
    if s.isascii():
        return len(s)
    return len(s.encode("utf-8", "surrogatepass"))


def header_size(payload: int) -> int:
    if payload <= 11:
        return 1
    if payload <= 0xFF:
        return 2
    if payload <= 0xFFFF:
        return 3
    return 5


def size(node: Node) -> int:
    """The JSONB size of node (header and payload), in bytes."""
    if node.t <= FALSE:
        return 1
    if node.t < ARRAY:
        p = utf8_len(node.v)
    else:
        p = sum(size(c) for c in node.v)
    return header_size(p) + p


# ---------------------------------------------------------------- Node -> text


def _append_control(out: list[str], c: str) -> None:
    special = {"\b": "b", "\t": "t", "\n": "n", "\f": "f", "\r": "r"}.get(c)
    out.append("\\" + special if special else f"\\u00{ord(c):02x}")


def quote_string(s: str) -> str:
    """s as a JSON string literal (jsonAppendString)."""
    out = ['"']
    start = 0
    for k, c in enumerate(s):
        if c >= " " and c != '"' and c != "\\":
            continue
        out.append(s[start:k])
        start = k + 1
        if c == '"' or c == "\\":
            out.append("\\" + c)
        else:
            _append_control(out, c)
    out.append(s[start:])
    out.append('"')
    return "".join(out)


def _text5(v: str, out: list[str]) -> None:
    out.append('"')
    k = 0
    n = len(v)
    while k < n:
        c = v[k]
        if _is_ok(c) or c == "'":
            k2 = k + 1
            while k2 < n and (_is_ok(v[k2]) or v[k2] == "'"):
                k2 += 1
            out.append(v[k:k2])
            k = k2
            continue
        if c == '"':
            out.append('\\"')
            k += 1
            continue
        if c <= "\x1f":
            _append_control(out, c)
            k += 1
            continue
        # a backslash escape
        e = v[k + 1 : k + 2]
        if e == "'":
            out.append("'")
        elif e == "v":
            out.append("\\u000b")
        elif e == "x":
            out.append("\\u00" + v[k + 2 : k + 4])
            k += 2
        elif e == "0":
            out.append("\\u0000")
        elif e == "\r":
            if v[k + 2 : k + 3] == "\n":
                k += 1
        elif e == "\n" or e == "\u2028" or e == "\u2029":
            pass
        else:
            out.append(v[k : k + 2])
        k += 2
    out.append('"')


def _render(node: Node, out: list[str]) -> None:
    t = node.t
    if t == NULL:
        out.append("null")
    elif t == TRUE:
        out.append("true")
    elif t == FALSE:
        out.append("false")
    elif t == INT or t == FLOAT:
        out.append(node.v)
    elif t == INT5:
        v = node.v
        k = 2
        if v[0] == "-":
            out.append("-")
            k += 1
        elif v[0] == "+":
            k += 1
        u = 0
        overflow = False
        for ch in v[k:]:
            if u >> 60:
                overflow = True
            else:
                u = u * 16 + int(ch, 16)
        out.append("9.0e999" if overflow else str(u))
    elif t == FLOAT5:
        v = node.v
        k = 0
        if v[0] == "-":
            out.append("-")
            k = 1
        if v[k : k + 1] == ".":
            out.append("0")
        for idx in range(k, len(v)):
            out.append(v[idx])
            if v[idx] == "." and (idx + 1 == len(v) or v[idx + 1] not in _DIGITS):
                out.append("0")
    elif t == TEXT or t == TEXTJ:
        out.append('"' + node.v + '"')
    elif t == TEXT5:
        _text5(node.v, out)
    elif t == TEXTRAW:
        out.append(quote_string(node.v))
    elif t == ARRAY:
        out.append("[")
        for k, c in enumerate(node.v):
            if k:
                out.append(",")
            _render(c, out)
        out.append("]")
    else:
        out.append("{")
        for k, c in enumerate(node.v):
            if k:
                out.append("," if k % 2 == 0 else ":")
            _render(c, out)
        out.append("}")


def render(node: Node) -> JsonText:
    """The canonical (minified, RFC-8259) JSON text of node."""
    out: list[str] = []
    _render(node, out)
    return JsonText("".join(out))


def render_pretty(node: Node, indent: str) -> JsonText:
    """json_pretty(): one element a line, nested levels indented by indent."""
    out: list[str] = []

    def walk(n: Node, level: int) -> None:
        if n.t == ARRAY or n.t == OBJECT:
            out.append("[" if n.t == ARRAY else "{")
            if n.v:
                out.append("\n")
                step = 1 if n.t == ARRAY else 2
                for k in range(0, len(n.v), step):
                    out.append(indent * (level + 1))
                    if step == 2:
                        _render(n.v[k], out)
                        out.append(": ")
                        walk(n.v[k + 1], level + 1)
                    else:
                        walk(n.v[k], level + 1)
                    if k + step < len(n.v):
                        out.append(",\n")
                out.append("\n" + indent * level)
            out.append("]" if n.t == ARRAY else "}")
        else:
            _render(n, out)

    walk(node, 0)
    return JsonText("".join(out))


# ---------------------------------------------------------------- Node -> SQL value


def unescape(v: str) -> str:
    """The text of a JSON string payload with its escapes decoded."""
    if "\\" not in v:
        return v
    out = []
    k = 0
    n = len(v)
    while k < n:
        c = v[k]
        if c != "\\":
            k2 = v.find("\\", k)
            if k2 < 0:
                k2 = n
            out.append(v[k:k2])
            k = k2
            continue
        e = v[k + 1 : k + 2]
        k += 2
        if e == "u":
            cp = int(v[k : k + 4], 16)
            k += 4
            if 0xD800 <= cp <= 0xDBFF and v[k : k + 2] == "\\u" and _is4hex(v + "\x00", k + 2):
                lo = int(v[k + 2 : k + 6], 16)
                if 0xDC00 <= lo <= 0xDFFF:
                    cp = ((cp & 0x3FF) << 10) + (lo & 0x3FF) + 0x10000
                    k += 6
            out.append(chr(cp))
        elif e == "x":
            out.append(chr(int(v[k : k + 2], 16)))
            k += 2
        elif e == "\r":
            if v[k : k + 1] == "\n":
                k += 1
                if k == n:
                    out.append("\x00")  # SQLite's result for a final \\ CR LF
        elif e in ("\n", "\u2028", "\u2029"):
            pass
        else:
            out.append(
                {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "0": "\x00"}.get(
                    e, e
                )
            )
    return "".join(out)


def label_text(node: Node) -> str:
    """An object label (or any string node) as text."""
    return node.v if node.t == TEXT or node.t == TEXTRAW else unescape(node.v)


def int_value(text: str) -> Any:
    """The SQL value of a JSON integer's text (past 64 bits: a REAL, as SQLite)."""
    neg = text.startswith("-")
    try:
        i = int(text)
    except ValueError:
        return atof(text)[0]
    if I64_MIN <= i <= I64_MAX:
        return i
    if neg and i == I64_MIN:
        return i
    return atof(text)[0]


def sql_value(node: Node) -> Any:
    """What json_extract() returns for node: an SQL value, containers as JSON text."""
    t = node.t
    if t == NULL:
        return None
    if t == TRUE:
        return 1
    if t == FALSE:
        return 0
    if t == INT:
        return int_value(node.v)
    if t == INT5:
        v = node.v
        neg = v[0] == "-"
        digits = v[3:] if v[0] in "+-" else v[2:]
        if len(digits.lstrip("0")) > 16:
            raise malformed()  # more than 64 bits
        u = int(digits, 16)
        if u > I64_MAX:
            return -float(u) if neg else float(u)
        return -u if neg else u
    if t == FLOAT or t == FLOAT5:
        return atof(node.v)[0]
    if t == TEXT or t == TEXTRAW:
        return node.v
    if t == TEXTJ or t == TEXT5:
        return unescape(node.v)
    return render(node)


# ---------------------------------------------------------------- SQL value -> Node


def text_node(s: str) -> Node:
    """A JSON string node holding s (as SQLite's TEXTRAW, escaped on output)."""
    return Node(TEXTRAW, s)


def from_sql(v: Any, edit: bool = False) -> Node:
    """The JSON an SQL value becomes as an argument of json_array() and friends:
    JSON text from a JSON function as JSON, other text as a string. The edit
    functions (json_set...) write an infinity as 9e999, the others as 9.0e+999."""
    if v is None:
        return Node(NULL)
    t = type(v)
    if t is int:
        return Node(INT, str(v))
    if t is float:
        if edit and v in (math.inf, -math.inf):
            return Node(FLOAT, "9e999" if v > 0 else "-9e999")
        text = sqlite_format("%!0.15g", v)
        if text == "null":
            return Node(NULL)
        return Node(FLOAT, text)
    if t is JsonText:
        root, _, _ = parse_text(v)
        if root is None:
            raise malformed()
        return root
    if isinstance(v, str):
        return text_node(v)
    b = bytes(v)
    if is_jsonb(b):
        return from_jsonb(b)
    raise SQLError("JSON cannot hold BLOB values")
