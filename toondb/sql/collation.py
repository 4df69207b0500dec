"""SQLite's built-in collating sequences: BINARY, NOCASE and RTRIM.

A collation decides how two TEXT values compare (datatype3.html section 7);
values of other types compare as they always do. Each collation is given two
ways, for the planner to use where it fits:

* a key function: ``key(a) < key(b)`` exactly when a sorts before b, and
  ``key(a) == key(b)`` when they are equal under the collation (for sorting,
  grouping, DISTINCT and hash lookups); non-text values are returned unchanged;
* a comparator ``compare(a, b) -> -1/0/1`` on two TEXT values.

The rules are SQLite's:

1. BINARY compares the UTF-8 bytes (for Python strings without lone
   surrogates, code point order is the same order).
2. NOCASE folds only the 26 ASCII letters A-Z to lower case, as SQLite does
   ('Ä' and 'ä' stay different), then compares as BINARY.
3. RTRIM ignores trailing spaces (U+0020 only; not tabs or other blanks), then
   compares as BINARY.
"""

from __future__ import annotations

from typing import Any, Callable

from toondb.errors import SQLError

__all__ = ["COLLATIONS", "key_binary", "key_nocase", "key_rtrim", "collation"]

_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def key_binary(v: Any) -> Any:
    return v


def key_nocase(v: Any) -> Any:
    """v with A-Z folded to a-z when it is text."""
    if isinstance(v, str):
        return str.translate(v, _ASCII_LOWER)
    return v


def key_rtrim(v: Any) -> Any:
    """v without its trailing spaces when it is text."""
    if isinstance(v, str):
        return str.rstrip(v, " ")
    return v


def _comparator(key: Callable[[Any], Any]) -> Callable[[str, str], int]:
    def compare(a: str, b: str) -> int:
        ka, kb = key(a), key(b)
        return -1 if ka < kb else (1 if ka > kb else 0)

    return compare


compare_binary = _comparator(key_binary)
compare_nocase = _comparator(key_nocase)
compare_rtrim = _comparator(key_rtrim)

# name (upper case) -> (key function, comparator)
COLLATIONS: dict[str, tuple[Callable[[Any], Any], Callable[[str, str], int]]] = {
    "BINARY": (key_binary, compare_binary),
    "NOCASE": (key_nocase, compare_nocase),
    "RTRIM": (key_rtrim, compare_rtrim),
}


def collation(name: str) -> tuple[Callable[[Any], Any], Callable[[str, str], int]]:
    """The (key, compare) pair of a collation name, case-insensitively;
    an unknown name is SQLite's error "no such collation sequence: NAME"."""
    found = COLLATIONS.get(name.upper())
    if found is None:
        raise SQLError(f"no such collation sequence: {name}")
    return found
