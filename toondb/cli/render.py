"""Results and values as text: the output modes (table, toon, json, csv, line), bytes
and SQL values on a terminal line, a mapping as aligned lines; and where SQL statements
end in typed text (``split_sql``)."""

from __future__ import annotations

import base64
import csv
import unicodedata
from typing import IO, Any

from toondb.errors import CLIError
from toondb.toon.results import format_result

__all__ = [
    "MODES", "render", "show_bytes", "show_vector", "plain_value", "print_mapping", "split_sql",
    "is_blank_sql",
]  # fmt: skip

MODES = ("table", "toon", "json", "csv", "line")


# ---------------------------------------------------------------------------------------
# Values as text
# ---------------------------------------------------------------------------------------


def show_bytes(b: bytes) -> str:
    """Bytes for a terminal line: UTF-8 where valid, \\xNN escapes elsewhere; the
    control characters that would break the line (and the backslash) escaped."""
    text = b.decode("utf-8", "backslashreplace")
    if any(c in text for c in "\n\r\t") or any(ord(c) < 32 or ord(c) == 127 for c in text):
        out = []
        for c in text:
            if c == "\n":
                out.append("\\n")
            elif c == "\r":
                out.append("\\r")
            elif c == "\t":
                out.append("\\t")
            elif ord(c) < 32 or ord(c) == 127:
                out.append(f"\\x{ord(c):02x}")
            else:
                out.append(c)
        text = "".join(out)
    return text


def show_vector(v: Any) -> str:
    """A vector (a NumPy array: a VECTOR(n) value) shortened for a terminal line:
    ``[0.12, -0.03, ... 384 dims]`` (all of it when it has at most 4 dimensions)."""
    vals = v.tolist()
    if len(vals) <= 4:
        return "[" + ", ".join(f"{x:.2f}" for x in vals) + "]"
    return f"[{vals[0]:.2f}, {vals[1]:.2f}, ... {len(vals)} dims]"


def _is_vector(v: Any) -> bool:
    return type(v).__module__ == "numpy" and getattr(v, "ndim", 0) == 1


def _cell(v: Any) -> str:
    """A SQL value in the human modes (table, line)."""
    if v is None:
        return "NULL"
    if _is_vector(v):
        return show_vector(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "x'" + bytes(v).hex() + "'"
    if isinstance(v, float):
        return repr(v)
    text = str(v)
    if "\n" in text or "\r" in text or "\t" in text:
        text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text


def plain_value(v: Any) -> Any:
    """A SQL value for csv and JSON lines: BLOBs as base64 text, vectors as JSON text
    (what vec_to_json gives)."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if _is_vector(v):
        return "[" + ",".join(str(x) for x in v.astype("<f4")) + "]"
    return v


def _width(s: str) -> int:
    """Terminal columns of s: wide East Asian characters take two, combining marks none."""
    if s.isascii():
        return len(s)
    w = 0
    for c in s:
        if unicodedata.combining(c):
            continue
        w += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return w


def _pad(s: str, width: int, right: bool) -> str:
    fill = " " * (width - _width(s))
    return fill + s if right else s + fill


def render(result: Any, mode: str, out: IO[str]) -> None:
    """Write a SQL Result in one of MODES. A statement without result columns prints
    nothing in table, csv and line modes, and its rowcount document in toon and json."""
    if mode in ("toon", "json"):
        out.write(format_result(result, mode) + "\n")
        return
    columns = list(getattr(result, "columns", None) or [])
    if not columns:
        return
    rows = result.rows
    if mode == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if v is None else plain_value(v) for v in r])
        return
    if mode == "line":
        width = max(_width(c) for c in columns)
        for i, r in enumerate(rows):
            if i:
                out.write("\n")
            for c, v in zip(columns, r):
                out.write(f"{_pad(c, width, True)} = {_cell(v)}\n")
        return
    if mode != "table":
        raise CLIError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    cells = [[_cell(v) for v in r] for r in rows]
    numeric = [
        all(
            isinstance(r[i], (int, float)) and not isinstance(r[i], bool)
            for r in rows
            if r[i] is not None
        )
        for i in range(len(columns))
    ]
    widths = [_width(c) for c in columns]
    for r in cells:
        for i, s in enumerate(r):
            widths[i] = max(widths[i], _width(s))
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+\n"
    out.write(rule)
    out.write("| " + " | ".join(_pad(c, w, False) for c, w in zip(columns, widths)) + " |\n")
    out.write(rule)
    for r in cells:
        out.write("| " + " | ".join(_pad(s, w, n) for s, w, n in zip(r, widths, numeric)) + " |\n")
    if cells:
        out.write(rule)


def print_mapping(d: dict[str, Any], out: IO[str]) -> None:
    width = max((len(k) for k in d), default=0)
    for k, v in d.items():
        out.write(f"{k:<{width}}  {'-' if v is None else v}\n")


# ---------------------------------------------------------------------------------------
# SQL text: where statements end
# ---------------------------------------------------------------------------------------


def split_sql(text: str) -> tuple[list[str], str]:
    """The complete statements in text (each ending with a ';' outside quotes and
    comments, without it) and the incomplete rest. Statements that are only comments
    or blanks are dropped."""
    stmts: list[str] = []
    start = 0
    i, n = 0, len(text)
    meaningful = False
    while i < n:
        c = text[i]
        if c in "'\"`[":
            close = "]" if c == "[" else c
            j = i + 1
            while j < n:
                if text[j] == close:
                    if close != "]" and j + 1 < n and text[j + 1] == close:
                        j += 2  # a doubled quote inside the quotes
                        continue
                    break
                j += 1
            if j >= n:
                return stmts, text[start:]  # an open quote: not complete
            meaningful = True
            i = j + 1
            continue
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                return stmts, text[start:]
            i = j + 2
            continue
        if c == ";":
            if meaningful:
                stmts.append(text[start:i].strip())
            start = i + 1
            meaningful = False
        elif not c.isspace():
            meaningful = True
        i += 1
    return stmts, text[start:] if meaningful else ""


def is_blank_sql(text: str) -> bool:
    """True when text holds only whitespace and complete comments."""
    stmts, rest = split_sql(text + "\n;")
    return not stmts and not rest.strip()
