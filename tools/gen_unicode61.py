"""Generate toondb/text/_unicode61_tables.h: the character data of FTS5's unicode61
tokenizer (general categories, case folding, diacritic removal), measured from
SQLite's FTS5 itself.

The tokenizer must split and fold text exactly as FTS5 does, and it must do so
the same way on every Python (an index written under one Unicode version must
read under another), so toondb ships fixed tables instead of using
``unicodedata``. They are not copied from SQLite's sources: this script asks a
running SQLite (``pysqlite3`` by default, else the stdlib ``sqlite3``) how its
tokenizer treats every code point and records the answers:

* category: for each category name X, a tokenizer with ``categories 'X'`` is run
  over ``" <c>q"`` for every non-ASCII code point c; c starts a token exactly
  when its category is X (or it belongs to the class every ``categories``
  setting includes, found as the intersection of all runs).
* folding: with every category a token character, ``"q<c>q"`` comes back as
  ``"q" + fold(c) + "q"`` for ``remove_diacritics`` 0, 1 and 2.
* diacritics: with only ``Co`` as token characters, ``"q<c>q"`` stays one token
  exactly when c is one of the combining marks FTS5 lets continue a token.

ASCII needs no measuring: its categories come from ``unicodedata`` (unchanged
since Unicode 1.1) and FTS5 folds only A-Z there.

Run: ``python tools/gen_unicode61.py [--check-stdlib]`` (a few minutes).
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path

CATEGORIES = (
    "Cc Cf Cn Cs Co Ll Lm Lo Lt Lu LC Mc Me Mn Nd Nl No Pc Pd Pe Pf Pi Po Ps Sc Sk Sm So Zl Zp Zs"
).split()
# code 0: the class every `categories` setting includes; 1.. the names above
CODE = {name: i + 1 for i, name in enumerate(CATEGORIES)}
ALL = "L* N* C* M* P* S* Z*"
FIRST, LAST = 0x80, 0x10FFFF
CHUNK = 2048


def _codepoints() -> list[int]:
    return [c for c in range(FIRST, LAST + 1) if not 0xD800 <= c <= 0xDFFF]


def _tokens(mod, tokenize: str, docs: list[str]) -> dict[int, list[tuple[int, str]]]:
    """The tokens of each document, in order, as (offset, term) per rowid."""
    db = mod.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize = {_quote(tokenize)})")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    db.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", enumerate(docs))
    out: dict[int, list[tuple[int, str]]] = {}
    for term, doc, offset in db.execute("SELECT term, doc, offset FROM v"):
        out.setdefault(doc, []).append((offset, term))
    for toks in out.values():
        toks.sort()
    db.close()
    return out


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _one_token_each(mod, tokenize: str, make) -> dict[int, str]:
    """Run `make(c)` for every code point (space separated); each must give one token."""
    cps = _codepoints()
    chunks = [cps[i : i + CHUNK] for i in range(0, len(cps), CHUNK)]
    toks = _tokens(mod, tokenize, [" ".join(make(c) for c in ch) for ch in chunks])
    result = {}
    for i, ch in enumerate(chunks):
        got = toks.get(i, [])
        if len(got) != len(ch):
            raise SystemExit(f"{tokenize}: chunk {i} gave {len(got)} tokens for {len(ch)}")
        for c, (_, term) in zip(ch, got):
            result[c] = term
    return result


def measure(mod) -> tuple[dict[int, int], list[dict[int, int]], list[int]]:
    starts: dict[str, set[int]] = {}
    for name in CATEGORIES:
        tok = (
            f"unicode61 remove_diacritics 0 categories {_quote(name)} separators ' ' tokenchars 'q'"
        )
        terms = _one_token_each(mod, tok, lambda c: chr(c) + "q")
        starts[name] = {c for c, t in terms.items() if t != "q"}
        print(f"  {name}: {len(starts[name])}", file=sys.stderr)
    always = set.intersection(*starts.values())
    category: dict[int, int] = {}
    for c in _codepoints():
        names = [n for n in CATEGORIES if c in starts[n] and c not in always]
        if len(names) > 1:
            raise SystemExit(f"U+{c:04X} is in several categories: {names}")
        category[c] = CODE[names[0]] if names else (0 if c in always else -1)
    missing = [c for c, v in category.items() if v < 0]
    if missing:
        raise SystemExit(f"{len(missing)} code points in no category, e.g. U+{missing[0]:04X}")
    for c in range(0x80):
        category[c] = CODE[unicodedata.category(chr(c))]
    folds = []
    for rd in (0, 1, 2):
        tok = f"unicode61 remove_diacritics {rd} categories {_quote(ALL)} separators ' '"
        terms = _one_token_each(mod, tok, lambda c: "q" + chr(c) + "q")
        fold = {}
        for c, t in terms.items():
            if not (t.startswith("q") and t.endswith("q") and len(t) in (2, 3)):
                raise SystemExit(f"U+{c:04X}: unexpected fold token {t!r}")
            f = ord(t[1]) if len(t) == 3 else 0
            if f != c:
                fold[c] = f
        for c in range(ord("A"), ord("Z") + 1):
            fold[c] = c + 32
        folds.append(fold)
        print(f"  fold rd={rd}: {len(fold)}", file=sys.stderr)
    tok = "unicode61 remove_diacritics 0 categories 'Co' separators ' ' tokenchars 'q'"
    cps = [c for c in _codepoints() if category[c] not in (0, CODE["Co"])]
    toks = _tokens(mod, tok, ["q" + chr(c) + "q" for c in cps])
    diacritics = sorted(c for i, c in enumerate(cps) if len(toks.get(i, [])) == 1)
    print(f"  diacritics: {len(diacritics)}", file=sys.stderr)
    return category, folds, diacritics


def _runs(category: dict[int, int]) -> list[tuple[int, int]]:
    runs = []
    prev = None
    for c in range(0, LAST + 1):
        v = category.get(c, CODE["Cs"])  # surrogates: never seen (READ_UTF8 maps them)
        if v != prev:
            runs.append((c, v))
            prev = v
    return runs


def _array(ctype: str, name: str, values: list[int], per_line: int = 24) -> str:
    lines = [f"static const {ctype} {name}[{len(values)}] = {{"]
    for i in range(0, len(values), per_line):
        lines.append("    " + ", ".join(str(v) for v in values[i : i + per_line]) + ",")
    lines.append("};")
    return "\n".join(lines)


def render(category, folds, diacritics, version: str) -> str:
    runs = _runs(category)
    parts = [
        "/* Character data of FTS5's unicode61 tokenizer, measured from SQLite "
        f"{version}\n   by tools/gen_unicode61.py. DO NOT EDIT: regenerate.\n\n"
        "   u61_cat_start/u61_cat_code: runs of code points with one category code\n"
        "   (0 = the class every `categories` setting includes, then in order:\n   "
        + " ".join(CATEGORIES)
        + ").\n   u61_foldN: sorted (code point, folded) pairs where folding with\n"
        "   remove_diacritics=N changes the code point (0 = the character is dropped).\n"
        "   u61_diacritic: combining marks that continue a token. */\n",
        "#include <stdint.h>\n",
        f"#define U61_NCAT {len(CATEGORIES) + 1}",
        f"#define U61_NRUNS {len(runs)}",
        _array("uint32_t", "u61_cat_start", [r[0] for r in runs]),
        _array("uint8_t", "u61_cat_code", [r[1] for r in runs]),
    ]
    for rd, fold in enumerate(folds):
        pairs = sorted(fold.items())
        parts.append(f"#define U61_NFOLD{rd} {len(pairs)}")
        parts.append(_array("uint32_t", f"u61_fold{rd}", [v for p in pairs for v in p]))
    parts.append(f"#define U61_NDIACRITIC {len(diacritics)}")
    parts.append(_array("uint32_t", "u61_diacritic", diacritics))
    return "\n\n".join(parts) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--out", default=str(Path(__file__).parent.parent / "toondb/text/_unicode61_tables.h")
    )
    ap.add_argument(
        "--check-stdlib", action="store_true", help="also measure the stdlib sqlite3 and compare"
    )
    args = ap.parse_args()
    try:
        import pysqlite3.dbapi2 as mod
    except ImportError:
        import sqlite3 as mod
    print(f"measuring SQLite {mod.sqlite_version}", file=sys.stderr)
    data = measure(mod)
    Path(args.out).write_text(render(*data, mod.sqlite_version))
    if args.check_stdlib:
        import sqlite3

        print(f"measuring SQLite {sqlite3.sqlite_version}", file=sys.stderr)
        other = measure(sqlite3)
        for what, a, b in zip(("categories", "folding", "diacritics"), data, other):
            print(f"{what}: {'same' if a == b else 'DIFFERENT'}", file=sys.stderr)


if __name__ == "__main__":
    main()
