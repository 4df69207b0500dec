"""LIKE and GLOB patterns as Python regular expressions, with SQLite's rules:
LIKE's ``%`` and ``_`` (case-insensitive for ASCII letters only, an optional
ESCAPE character), GLOB's ``*``, ``?`` and ``[...]`` / ``[^...]`` classes (case
sensitive); the whole value must match."""

from __future__ import annotations

import re

__all__ = ["like_regex"]


def like_regex(pattern: str, escape: str | None, glob: bool) -> re.Pattern[str]:
    out = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if not glob and escape is not None and c == escape:
            i += 1
            if i < n:
                out.append(re.escape(pattern[i]))
            i += 1
            continue
        if glob:
            if c == "*":
                out.append(".*")
            elif c == "?":
                out.append(".")
            elif c == "[":
                j = i + 1
                if j < n and pattern[j] == "^":
                    j += 1
                if j < n and pattern[j] == "]":
                    j += 1
                while j < n and pattern[j] != "]":
                    j += 1
                if j >= n:
                    out.append(re.escape(c))
                else:
                    body = pattern[i + 1 : j]
                    neg = body.startswith("^")
                    if neg:
                        body = body[1:]
                    body = body.replace("\\", "\\\\")
                    out.append("[" + ("^" if neg else "") + body + "]")
                    i = j
            else:
                out.append(re.escape(c))
        else:
            if c == "%":
                out.append(".*")
            elif c == "_":
                out.append(".")
            else:
                out.append(re.escape(c))
        i += 1
    flags = re.DOTALL | (0 if glob else re.IGNORECASE | re.ASCII)
    return re.compile("".join(out) + r"\Z", flags)
