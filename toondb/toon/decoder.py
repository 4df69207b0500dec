"""The TOON decoder (spec v4.0); see the package docstring for the format.

The decoder splits the text into lines once (dropping blank and comment lines, but
remembering where the blank ones were, for the strict checks), then walks the lines
with a recursive-descent parser keyed on each line's depth.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Sequence
from itertools import repeat
from typing import Any, Callable, NamedTuple

from toondb.errors import ToonDecodeError
from toondb.toon.lexical import (
    DELIMITERS,
    LITERALS,
    NUMBER,
    Field,
    closing_quote,
    find_unquoted,
    unescape,
)

__all__ = ["decode", "ToonDecodeError"]


class _Header(NamedTuple):
    key: str | None  # None for a keyless header ("[2]: ...")
    length: int
    delim: str
    fields: list[Field] | None
    keyed: bool


class _BadHeader(Exception):
    """A line shaped like an array header that breaks the header grammar (§6)."""


def _string_literal(tok: str, line: int) -> str:
    """Decode a token that starts with a quote; it must end with the closing quote."""
    end = closing_quote(tok, 0)
    if end < 0:
        raise ToonDecodeError(f"unterminated string: {tok}", line)
    if end != len(tok) - 1:
        raise ToonDecodeError(f"unexpected characters after the closing quote: {tok}", line)
    return unescape(tok[1:end], line)


def _primitive(tok: str, line: int) -> Any:
    """Decode one value token (§4); ``tok`` is already trimmed of spaces."""
    if not tok:
        return ""
    c = tok[0]
    if c == '"':
        return _string_literal(tok, line)
    if c in "-0123456789":
        m = NUMBER.fullmatch(tok)
        if m is not None:
            if m.lastindex is None:
                try:
                    return int(tok)
                except ValueError:  # more digits than sys.get_int_max_str_digits()
                    return tok  # outside the host's numeric range: kept as a string
            f = float(tok)
            if f in (math.inf, -math.inf):
                return tok  # outside the host's numeric range: kept as a string
            return f if f else 0.0  # -0 decodes to 0
        return tok
    if c in "tfn" and tok in LITERALS:
        return LITERALS[tok]
    return tok


_INT_COLUMN = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\n-?(?:0|[1-9][0-9]*))*")
_DECIMAL = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
_DECIMAL_COLUMN = re.compile(f"{_DECIMAL}(?:\n{_DECIMAL})*")
_NUMERIC_START = re.compile(r'\n[-0-9"]')


def _decode_column(tokens: Sequence[str]) -> list[Any]:
    """:func:`_primitive` over a column of row tokens, checking whole columns at once.

    Raises :class:`ToonDecodeError` without a line number; the caller then decodes row
    by row to report it.
    """
    joined = "\n".join(tokens)
    if max(map(len, tokens)) < 300:
        if _INT_COLUMN.fullmatch(joined) is not None:
            return list(map(int, tokens))
        if _DECIMAL_COLUMN.fullmatch(joined) is not None and "-0." not in joined:
            # no exponent and under 300 characters: every float is finite (and -0 is not)
            return [float(t) if "." in t else int(t) for t in tokens]
    if _NUMERIC_START.search("\n" + joined) is None:
        get = LITERALS.get
        return [get(t, t) for t in tokens]  # strings, true, false, null
    return [_primitive(t, 0) for t in tokens]


_ROW_BUILDERS: dict[tuple[str, ...], Callable[..., dict[str, Any]]] = {}


def _row_builder(names: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """A function of one argument per field that returns the row's dict.

    It is generated (like :func:`collections.namedtuple` does) because a dict display is
    about twice as fast as ``dict(zip(names, cells))``; names enter the code only
    through ``repr``, so any string is safe.
    """
    builder = _ROW_BUILDERS.get(names)
    if builder is None:
        params = ", ".join(f"_{k}" for k in range(len(names)))
        items = ", ".join(f"{name!r}: _{k}" for k, name in enumerate(names))
        builder = eval(f"lambda {params}: {{{items}}}", {"__builtins__": {}})
        if len(_ROW_BUILDERS) >= 256:
            _ROW_BUILDERS.clear()
        _ROW_BUILDERS[names] = builder
    return builder


def _split(s: str, delim: str) -> list[str]:
    """Split a row or inline array on ``delim`` outside quotes; tokens trimmed of spaces."""
    if '"' not in s:
        return [t.strip(" ") for t in s.split(delim)]
    out: list[str] = []
    start = i = 0
    while True:
        j = s.find(delim, i)
        q = s.find('"', i)
        if q >= 0 and (j < 0 or q < j):
            end = closing_quote(s, q)
            if end < 0:  # unterminated: the rest is one token (and an error later)
                out.append(s[start:].strip(" "))
                return out
            i = end + 1
            continue
        if j < 0:
            out.append(s[start:].strip(" "))
            return out
        out.append(s[start:j].strip(" "))
        start = i = j + 1


def _is_data_row(content: str, delim: str) -> bool:
    """A line at row depth is a row unless an unquoted colon comes before any unquoted
    delimiter (then it is a key-value line ending the rows, §9.3)."""
    colon = find_unquoted(content, ":")
    if colon < 0:
        return True
    d = find_unquoted(content, delim)
    return 0 <= d < colon


def _key_token(content: str, line: int) -> tuple[str, int]:
    """Parse the key at the start of ``content``; return it and the index after its colon."""
    if content.startswith('"'):
        end = closing_quote(content, 0)
        if end < 0:
            raise ToonDecodeError(f"unterminated quoted key: {content}", line)
        if content[end + 1 : end + 2] != ":":
            raise ToonDecodeError(f"missing colon after key: {content}", line)
        return unescape(content[1:end], line), end + 2
    colon = find_unquoted(content, ":")
    if colon < 0:
        raise ToonDecodeError(f"missing colon after key: {content}", line)
    return content[:colon].strip(" "), colon + 1


_BRACKET = re.compile(r"(0|[1-9][0-9]*)(:?)([\t|]?)")


def _matching_brace(s: str, start: int) -> int:
    depth = 0
    i = start
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            end = closing_quote(s, i)
            if end < 0:
                return -1
            i = end + 1
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _split_fields(s: str, delim: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    start = i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            end = closing_quote(s, i)
            i = n if end < 0 else end + 1
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == delim and depth == 0:
            parts.append(s[start:i])
            start = i + 1
        i += 1
    parts.append(s[start:])
    return parts


def _field_name(tok: str, line: int) -> str:
    if tok.startswith('"'):
        try:
            return _string_literal(tok, line)
        except ToonDecodeError as e:
            raise _BadHeader(e.reason) from None
    return tok


def _parse_fields(s: str, delim: str, line: int) -> list[Field]:
    fields: list[Field] = []
    for part in _split_fields(s, delim):
        entry = part.strip(" ")
        if not entry:
            raise _BadHeader("empty field name in the field list")
        brace = find_unquoted(entry, "{")
        if brace < 0:
            fields.append((_field_name(entry, line), None))
            continue
        name = entry[:brace].strip(" ")
        if not name:
            raise _BadHeader("missing field name before a nested field group")
        close = _matching_brace(entry, brace)
        if close < 0:
            raise _BadHeader("unmatched brace in the field list")
        if close != len(entry) - 1:
            raise _BadHeader("unexpected content after a nested field group")
        fields.append(
            (_field_name(name, line), _parse_fields(entry[brace + 1 : close], delim, line))
        )
    return fields


def _duplicate_field(fields: list[Field]) -> str | None:
    seen: set[str] = set()
    for name, sub in fields:
        if name in seen:
            return name
        seen.add(name)
        if sub is not None:
            dup = _duplicate_field(sub)
            if dup is not None:
                return dup
    return None


def _leaf_count(fields: list[Field]) -> int:
    return sum(1 if sub is None else _leaf_count(sub) for _, sub in fields)


def _parse_header(content: str, line: int) -> tuple[_Header, str, str | None] | None:
    """Parse an array header line (§6): ``key[N<delim>]{fields}: inline``.

    Returns None when the line is not shaped like a header, ``(header, inline values,
    strict-only problem)`` when it is one, and raises :class:`_BadHeader` when it is
    shaped like one but breaks the grammar (strict mode reports it; non-strict mode
    reads the line as an ordinary key-value line).
    """
    if content.startswith('"'):
        end = closing_quote(content, 0)
        if end < 0 or content[end + 1 : end + 2] != "[":
            return None
        bracket = end + 1
    else:
        bracket = find_unquoted(content, "[")
        if bracket < 0:
            return None
    colon = find_unquoted(content, ":")
    if 0 <= colon < bracket:
        return None  # the key ends before the bracket: an ordinary key-value line
    close = find_unquoted(content, "]", bracket)
    if close < 0:
        return None
    after = close + 1
    colon = find_unquoted(content, ":", close)
    brace = find_unquoted(content, "{", close)
    fields_end = after
    if 0 <= brace < colon:
        if brace != after:
            gap = content[after:brace].strip()
            raise _BadHeader(
                f"unexpected {repr(gap) if gap else 'whitespace'} between the bracket "
                "segment and the field list"
            )
        match = _matching_brace(content, brace)
        if match >= 0:
            fields_end = match + 1
        colon = find_unquoted(content, ":", fields_end)
    if colon < 0:
        return None
    if colon != fields_end:
        gap = content[fields_end:colon].strip()
        raise _BadHeader(
            f"unexpected {repr(gap) if gap else 'whitespace'} between the array header "
            "and its colon"
        )
    key: str | None = None
    if bracket > 0:
        raw = content[:bracket]
        if raw != raw.rstrip():
            raise _BadHeader("unexpected whitespace between the key and the bracket segment")
        if raw.startswith('"'):
            key = _field_name(raw, line)
        else:
            key = raw
    m = _BRACKET.fullmatch(content, bracket + 1, close)
    if m is None:
        raise _BadHeader(
            f"invalid bracket segment [{content[bracket + 1 : close]}] (expected a "
            "length without leading zeros, then an optional ':' and '\\t' or '|')"
        )
    length = int(m.group(1))
    keyed = bool(m.group(2))
    delim = m.group(3) or ","
    fields: list[Field] | None = None
    if fields_end != after:
        inner = content[brace + 1 : fields_end - 1]
        for other in DELIMITERS:
            if other != delim and find_unquoted(inner, other) >= 0:
                raise _BadHeader(
                    f"the bracket declares delimiter {delim!r} but the field list uses {other!r}"
                )
        fields = _parse_fields(inner, delim, line)
    inline = content[colon + 1 :].strip(" ")
    problem = None
    if fields is not None:
        dup = _duplicate_field(fields)
        if dup is not None:
            problem = f"duplicate field name {dup!r} in the field list"
    if keyed and fields is None:
        raise _BadHeader("a keyed header needs a field list: key[N:]{fields}:")
    if fields is not None and inline:
        raise _BadHeader(problem or "a header with a field list carries no inline values")
    return _Header(key, length, delim, fields, keyed), inline, problem


def _looks_like_header(content: str) -> bool:
    return content.strip(" ").startswith("[") and find_unquoted(content, ":") >= 0


class _Decoder:
    __slots__ = ("depths", "texts", "nums", "blanks", "n", "i", "strict")

    def __init__(self, text: str, indent: int, strict: bool) -> None:
        self.strict = strict
        self.i = 0
        if text.startswith("\ufeff"):
            text = text[1:]
        lines = text.split("\n")
        if "\r" in text:  # only a CR that ends a line belongs to its terminator (§12)
            lines = [raw[:-1] if raw[-1:] == "\r" else raw for raw in lines]
        if "\t" in text:
            self.scan(lines, indent)
        else:
            self.scan_spaces(lines, indent)
        self.n = len(self.texts)

    def scan_spaces(self, lines: list[str], indent: int) -> None:
        """Split lines indented with spaces only into depth and content, dropping blank
        and comment lines (§5.1, §12); list operations instead of a loop per line."""
        bodies = list(map(str.lstrip, lines, repeat(" ")))
        contents = list(map(str.rstrip, bodies, repeat(" ")))
        keep = [k for k, c in enumerate(contents) if c and c[0] != "#"]
        self.blanks = []
        if len(keep) == len(lines):
            texts = contents
            nums = list(range(1, len(lines) + 1))
        else:
            self.blanks = [k for k, c in enumerate(contents, 1) if not c]
            texts = list(map(contents.__getitem__, keep))
            nums = list(map((1).__add__, keep))
            lines = list(map(lines.__getitem__, keep))
            bodies = list(map(bodies.__getitem__, keep))
        spaces = list(map(int.__sub__, map(len, lines), map(len, bodies)))
        if self.strict and any(n % indent for n in set(spaces)):
            for n, num in zip(spaces, nums):
                if n % indent:
                    raise ToonDecodeError(
                        f"indentation must be a multiple of {indent} spaces, found {n}", num
                    )
        self.depths = list(map(indent.__rfloordiv__, spaces))
        self.texts = texts
        self.nums = nums

    def scan(self, lines: list[str], indent: int) -> None:
        """:meth:`scan_spaces` for text with tabs (an error in indentation when strict;
        each leading tab is one level when not)."""
        depths: list[int] = []
        texts: list[str] = []
        nums: list[int] = []
        blanks: list[int] = []
        strict = self.strict
        for num, raw in enumerate(lines, 1):
            content = raw.lstrip(" ")
            spaces = len(raw) - len(content)
            if content.startswith("\t"):
                if not content.strip(" \t"):
                    blanks.append(num)
                    continue
                if strict:
                    raise ToonDecodeError("tabs are not allowed in indentation (strict mode)", num)
                ws = len(content) - len(content.lstrip(" \t"))
                tabs = content[:ws].count("\t")
                content = content[ws:].rstrip(" ")
                depth = (spaces + ws - tabs) // indent + tabs
            else:
                content = content.rstrip(" ")
                if not content:
                    blanks.append(num)
                    continue
                if content[0] == "#":
                    continue  # a comment line (§5.1)
                if strict and spaces % indent:
                    raise ToonDecodeError(
                        f"indentation must be a multiple of {indent} spaces, found {spaces}", num
                    )
                depth = spaces // indent
            depths.append(depth)
            texts.append(content)
            nums.append(num)
        self.depths = depths
        self.texts = texts
        self.nums = nums
        self.blanks = blanks

    # -- helpers ------------------------------------------------------------------------

    def header(self, content: str, line: int) -> tuple[_Header, str, str | None] | None:
        try:
            parsed = _parse_header(content, line)
        except _BadHeader as e:
            if self.strict:
                raise ToonDecodeError(str(e), line) from None
            return None
        if parsed is not None and parsed[2] is not None and self.strict:
            raise ToonDecodeError(parsed[2], line)
        return parsed

    def count(self, actual: int, expected: int, what: str, line: int) -> None:
        if self.strict and actual != expected:
            raise ToonDecodeError(f"expected {expected} {what}, but got {actual}", line)

    def no_blank_between(self, first: int, last: int, what: str) -> None:
        if self.strict and self.blanks:
            k = bisect_right(self.blanks, first)
            if k < len(self.blanks) and self.blanks[k] < last:
                raise ToonDecodeError(
                    f"blank lines are not allowed inside {what} (strict mode)", self.blanks[k]
                )

    def over_indented(self, expected: int) -> None:
        """The current line is deeper than any open scope."""
        i = self.i
        if self.strict:
            raise ToonDecodeError(
                f"unexpected indentation: expected depth {expected}, found {self.depths[i]}",
                self.nums[i],
            )
        content = self.texts[i]
        if not (content.startswith("- ") or content == "-" or find_unquoted(content, ":") >= 0):
            raise ToonDecodeError(
                f"unexpected bare value outside a root value: {content}", self.nums[i]
            )
        self.i += 1

    def put(self, obj: dict[str, Any], key: str, value: Any, line: int) -> None:
        if self.strict and key in obj:
            raise ToonDecodeError(f"duplicate key {key!r}", line)
        obj[key] = value

    # -- document -----------------------------------------------------------------------

    def document(self) -> Any:
        if self.n == 0:
            return {}
        first = self.texts[0]
        line = self.nums[0]
        if first.strip(" ") == "[]":
            self.i = 1
            self.end_of_root()
            return []
        if _looks_like_header(first):
            parsed = self.header(first, line)
            if parsed is not None:
                self.i = 1
                value = self.from_header(parsed[0], parsed[1], 0, line)
                self.end_of_root()
                return value
        is_kv = self.is_key_value_line(first)
        if not is_kv:
            if self.n == 1:
                return _primitive(first.strip(" "), line)
            if self.depths[1] == 0:
                raise ToonDecodeError(
                    "a document holds one root value: a primitive, or keys, or an array header",
                    self.nums[1],
                )
        obj: dict[str, Any] = {}
        self.i = 1
        self.key_value(obj, first, line, 0)
        while self.i < self.n:
            if self.depths[self.i] != 0:
                self.over_indented(0)
                continue
            i = self.i
            self.i += 1
            self.key_value(obj, self.texts[i], self.nums[i], 0)
        return obj

    @staticmethod
    def is_key_value_line(content: str) -> bool:
        if content.startswith('"'):
            end = closing_quote(content, 0)
            return end >= 0 and ":" in content[end + 1 :]
        return ":" in content

    def end_of_root(self) -> None:
        if self.strict and self.i < self.n:
            raise ToonDecodeError("unexpected content after the root array", self.nums[self.i])

    # -- objects ------------------------------------------------------------------------

    def key_value(self, obj: dict[str, Any], content: str, line: int, depth: int) -> None:
        """Decode the field on ``content`` (already consumed) into ``obj``; its nested
        lines, if any, are at ``depth + 1``."""
        if "[" in content:
            parsed = self.header(content, line)
            if parsed is not None:
                h = parsed[0]
                if h.key is not None:
                    if self.strict and h.key in obj:
                        raise ToonDecodeError(f"duplicate key {h.key!r}", line)
                    obj[h.key] = self.from_header(h, parsed[1], depth, line)
                    return
                if self.strict:
                    raise ToonDecodeError(
                        "a keyless keyed header is only valid at the document root"
                        if h.keyed
                        else "a keyless array header is only valid at the root or as a list item",
                        line,
                    )
        key, end = _key_token(content, line)
        rest = content[end:].strip(" ")
        if rest:
            value: Any = [] if rest == "[]" else _primitive(rest, line)
        elif self.i < self.n and self.depths[self.i] > depth:
            if self.strict and self.depths[self.i] > depth + 1:
                raise ToonDecodeError(
                    f"indentation jumps from depth {depth} to {self.depths[self.i]}",
                    self.nums[self.i],
                )
            value = self.fields(depth + 1)
        else:
            value = {}
        self.put(obj, key, value, line)

    def fields(self, depth: int) -> dict[str, Any]:
        """The fields of a nested object, at ``depth`` (or deeper when not strict)."""
        obj: dict[str, Any] = {}
        depths = self.depths
        at = depths[self.i]
        while self.i < self.n:
            d = depths[self.i]
            if d == at:
                i = self.i
                self.i += 1
                self.key_value(obj, self.texts[i], self.nums[i], at)
            elif d > at:
                self.over_indented(at)
            else:
                break
        return obj

    # -- arrays -------------------------------------------------------------------------

    def from_header(self, h: _Header, inline: str, depth: int, line: int) -> Any:
        if h.keyed:
            return self.keyed(h, depth, line)
        if inline:
            values = [_primitive(t, line) for t in _split(inline, h.delim)]
            self.count(len(values), h.length, "inline values", line)
            return values
        if h.fields is not None:
            return self.table(h, depth, line)
        return self.list_array(h, depth, line)

    def row_object(self, fields: list[Field], cells: list[Any]) -> dict[str, Any]:
        pos = 0

        def build(group: list[Field]) -> dict[str, Any]:
            nonlocal pos
            obj: dict[str, Any] = {}
            for name, sub in group:
                if sub is not None:
                    obj[name] = build(sub)
                elif pos < len(cells):
                    obj[name] = cells[pos]
                    pos += 1
            return obj

        return build(fields)

    def table(self, h: _Header, depth: int, line: int) -> list[Any]:
        """The rows of a tabular array (§9.3), one line each at ``depth + 1``."""
        fields = h.fields
        assert fields is not None
        row_depth = depth + 1
        width = _leaf_count(fields)
        delim = h.delim
        spaced = (" " + delim, delim + " ")
        strict = self.strict
        depths, texts, nums = self.depths, self.texts, self.nums
        n = self.n
        limit = h.length if strict else -1
        token_rows: list[list[str]] = []
        start = i = self.i
        while i < n and depths[i] == row_depth and len(token_rows) != limit:
            content = texts[i]
            if '"' in content or ":" in content:
                if not _is_data_row(content, delim):
                    break
                token_rows.append(_split(content, delim))
            elif spaced[0] in content or spaced[1] in content:
                token_rows.append([t.strip(" ") for t in content.split(delim)])
            else:  # the line has no leading or trailing spaces (see _Decoder.__init__)
                token_rows.append(content.split(delim))
            i += 1
        self.i = i
        count = len(token_rows)
        row_nums = nums[start:i]
        if strict:
            if set(map(len, token_rows)) - {width}:
                for tokens, num in zip(token_rows, row_nums):
                    if len(tokens) != width:
                        raise ToonDecodeError(
                            f"expected {width} values in the row, but got {len(tokens)}", num
                        )
            self.count(count, h.length, "rows", row_nums[-1] if count else line)
            if count:
                self.no_blank_between(row_nums[0], row_nums[-1], "a tabular array")
            if i < n and depths[i] == row_depth:
                content = texts[i]
                if not content.startswith("- ") and _is_data_row(content, delim):
                    raise ToonDecodeError(f"expected {h.length} rows, but found more", nums[i])
        names = tuple(name for name, _ in fields)
        flat = all(sub is None for _, sub in fields)
        columns: list[list[Any]] | None = None
        if count and set(map(len, token_rows)) == {width}:
            try:  # one column at a time: most columns hold a single kind of value
                columns = [_decode_column(c) for c in zip(*token_rows)]
            except ToonDecodeError:
                columns = None  # decode row by row below, to report the line
        if columns is not None:
            if flat and count >= 32 and len(names) <= 200:
                return list(map(_row_builder(names), *columns))
            cell_rows: Any = zip(*columns)
        else:
            cell_rows = [
                [_primitive(t, num) for t in tokens] for tokens, num in zip(token_rows, row_nums)
            ]
        if flat:
            return [dict(zip(names, cells)) for cells in cell_rows]
        return [self.row_object(fields, cells) for cells in cell_rows]

    def keyed(self, h: _Header, depth: int, line: int) -> dict[str, Any]:
        fields = h.fields
        assert fields is not None
        entry_depth = depth + 1
        width = _leaf_count(fields)
        flat = all(sub is None for _, sub in fields)
        names = [name for name, _ in fields]
        obj: dict[str, Any] = {}
        count = 0
        first_line = last_line = line
        while self.i < self.n and self.depths[self.i] > depth:
            i = self.i
            num = self.nums[i]
            content = self.texts[i]
            if self.depths[i] > entry_depth:
                if self.strict:
                    raise ToonDecodeError("unexpected indentation inside a keyed object", num)
                self.i += 1
                continue
            if find_unquoted(content, ":") < 0:
                if self.strict:
                    raise ToonDecodeError(f"expected an entry row 'key: cells', got {content}", num)
                self.i += 1
                continue
            self.i += 1
            key, end = _key_token(content, num)
            rest = content[end:].strip(" ")
            tokens = _split(rest, h.delim) if rest else []
            if self.strict and len(tokens) != width:
                raise ToonDecodeError(
                    f"expected {width} values in the entry, but got {len(tokens)}", num
                )
            cells = [_primitive(t, num) for t in tokens]
            value = dict(zip(names, cells)) if flat else self.row_object(fields, cells)
            self.put(obj, key, value, num)
            if count == 0:
                first_line = num
            last_line = num
            count += 1
        self.count(count, h.length, "entries", last_line)
        self.no_blank_between(first_line, last_line, "a keyed object")
        return obj

    def list_array(self, h: _Header, depth: int, line: int) -> list[Any]:
        item_depth = depth + 1
        items: list[Any] = []
        first_line = last_line = line
        strict = self.strict
        while self.i < self.n and (not strict or len(items) < h.length):
            d = self.depths[self.i]
            content = self.texts[self.i]
            if d != item_depth or not (content.startswith("- ") or content == "-"):
                break
            if not items:
                first_line = self.nums[self.i]
            items.append(self.list_item(item_depth))
            last_line = self.nums[self.i - 1]
        self.count(len(items), h.length, "list items", last_line)
        if strict:
            self.no_blank_between(first_line, last_line, "a list array")
            if self.i < self.n and self.depths[self.i] == item_depth:
                if self.texts[self.i].startswith("- "):
                    raise ToonDecodeError(
                        f"expected {h.length} list items, but found more", self.nums[self.i]
                    )
        return items

    def list_item(self, depth: int) -> Any:
        i = self.i
        self.i += 1
        content = self.texts[i]
        line = self.nums[i]
        if content == "-":
            return {}
        rest = content[2:]
        token = rest.strip(" ")
        if not token:
            return {}
        if token == "[]":
            return []
        obj: dict[str, Any] = {}
        parsed = self.header(rest, line) if "[" in rest else None
        if parsed is not None:
            h = parsed[0]
            if h.key is not None:
                # "- key[N]...:" opens an object whose first field is that array; the
                # array's rows or items sit one level deeper than its sibling fields
                obj[h.key] = self.from_header(h, parsed[1], depth + 1, line)
                self.siblings(obj, depth + 1)
                return obj
            if not (h.keyed or h.fields is not None):
                return self.from_header(h, parsed[1], depth, line)
            if self.strict:
                raise ToonDecodeError(
                    "a keyless keyed header is only valid at the document root"
                    if h.keyed
                    else "a keyless header with a field list is only valid at the root",
                    line,
                )
        if find_unquoted(rest, ":") >= 0:
            self.key_value(obj, rest, line, depth + 1)
            self.siblings(obj, depth + 1)
            return obj
        return _primitive(token, line)

    def siblings(self, obj: dict[str, Any], depth: int) -> None:
        """The remaining fields of an object that started on a hyphen line."""
        while self.i < self.n and self.depths[self.i] == depth:
            i = self.i
            content = self.texts[i]
            if content.startswith("- "):
                break
            self.i += 1
            self.key_value(obj, content, self.nums[i], depth)


def decode(text: str | bytes, *, indent: int = 2, strict: bool = True) -> Any:
    """Decode a TOON document (spec v4.0) to Python values.

    Objects become ``dict`` (in document order), arrays ``list``. Numbers (§4): a token
    without fraction or exponent becomes an ``int`` (arbitrary precision), any other a
    ``float``; ``-0`` decodes to ``0``; a number outside the host's range (a float that
    would be infinite, an int longer than ``sys.get_int_max_str_digits()``) is kept as
    the string it is, never approximated. ``indent`` is the number of spaces per
    indentation level (the spec's ``indentSize``). ``strict=True`` (the default)
    enforces every check of §14: declared lengths and row widths, indentation, tabs,
    blank lines inside arrays, duplicate keys, malformed headers, stray lines.
    ``strict=False`` tolerates them (the last of duplicate keys wins).

    ``text`` may be ``str`` or UTF-8 ``bytes``. Raises :class:`ToonDecodeError` (a
    ``ValueError``) whose message starts with the line number.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    if not isinstance(text, str):
        raise TypeError(f"decode() needs str or bytes, not {type(text).__name__}")
    if type(indent) is not int or indent < 1:
        raise ValueError(f"indent must be a positive int, not {indent!r}")
    try:
        return _Decoder(text, indent, bool(strict)).document()
    except RecursionError:
        raise ToonDecodeError("document nested too deeply to decode") from None
