"""Tokenizer configuration as FTS5 reads it: the ``tokenize`` option string, the
built-in tokenizers' arguments and their errors.

::

    tok = tokenizer("porter unicode61 remove_diacritics 2")
    tok.tokenize("Running Crème brûlée")
    # [(b'run', 0, 7), (b'creme', 8, 14), (b'brulee', 15, 23)]

``tokenize`` value (FTS5's fts5ConfigParseSpecial): words separated by spaces,
each either a bareword (ASCII letters, digits, ``_``, 0x1A, any byte >= 0x80) or
an SQL string literal in single quotes (``''`` for a quote). The first word names
the tokenizer (case-insensitive); the rest are its arguments:

==========  ==================================================================
unicode61   ``remove_diacritics 0|1|2`` (default 1), ``categories 'L* N* Co'``,
            ``tokenchars '...'``, ``separators '...'``
ascii       ``tokenchars '...'``, ``separators '...'`` (ASCII characters only)
trigram     ``case_sensitive 0|1`` (default 0), ``remove_diacritics 0|1|2``
            (only with case_sensitive 0)
porter      ``[base tokenizer [its arguments...]]`` (default unicode61)
==========  ==================================================================

Errors carry FTS5's messages: ``parse error in tokenize directive``,
``no such tokenizer: NAME``, ``error in tokenizer constructor``.
"""

from __future__ import annotations

from collections.abc import Sequence

from toondb.errors import FullTextError
from toondb.text._tokenize import (
    K_ASCII,
    K_TRIGRAM,
    K_UNICODE61,
    NCATEGORY,
    Tokenizer,
    category_of,
    diacritic,
)

__all__ = ["Tokenizer", "tokenizer", "parse_tokenize_option", "DEFAULT_TOKENIZE"]

DEFAULT_TOKENIZE = "unicode61"

# category codes of the unicode61 tables (code 0 is the class every setting
# includes); the order of tools/gen_unicode61.py
CATEGORY_NAMES = (
    "Cc Cf Cn Cs Co Ll Lm Lo Lt Lu LC Mc Me Mn Nd Nl No Pc Pd Pe Pf Pi Po Ps Sc Sk Sm So Zl Zp Zs"
).split()
_CODE = {name: i + 1 for i, name in enumerate(CATEGORY_NAMES)}
assert len(CATEGORY_NAMES) + 1 == NCATEGORY

# ASCII letters and digits: the token characters of the ascii tokenizer
_ASCII_ALNUM = bytes(
    1 if (48 <= i <= 57 or 65 <= i <= 90 or 97 <= i <= 122) else 0 for i in range(128)
)


def _is_bareword(ch: str) -> bool:
    o = ord(ch)
    return o >= 0x80 or ch.isascii() and (ch.isalnum() or ch == "_" or o == 0x1A)


def parse_tokenize_option(text: str) -> list[str]:
    """Split a ``tokenize`` option value into its words as FTS5 does."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] == " ":
            i += 1
        if i >= n:
            break
        if text[i] == "'":
            j = i + 1
            word = []
            while True:
                if j >= n:
                    raise FullTextError("parse error in tokenize directive")
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        word.append("'")
                        j += 2
                        continue
                    j += 1
                    break
                word.append(text[j])
                j += 1
            args.append("".join(word))
        else:
            j = i
            while j < n and _is_bareword(text[j]):
                j += 1
            if j == i:
                raise FullTextError("parse error in tokenize directive")
            args.append(text[i:j])
        i = j
    return args


def _constructor_error() -> FullTextError:
    return FullTextError("error in tokenizer constructor")


def _pairs(args: Sequence[str]) -> list[tuple[str, str]]:
    if len(args) % 2:
        raise _constructor_error()
    return [(args[i].lower(), args[i + 1]) for i in range(0, len(args), 2)]


def _categories(spec: str) -> bytearray:
    """FTS5's categories argument: words of which the first two characters name a
    category (``L*`` for all of L); any other word is an error."""
    chosen = bytearray(NCATEGORY)
    for word in spec.replace("\t", " ").split(" "):
        if not word:
            continue
        chosen[0] = 1
        major, minor = word[0], word[1:2]
        names = [n for n in CATEGORY_NAMES if n[0] == major]
        if not names:
            raise _constructor_error()
        if minor == "*":
            for name in names:
                chosen[_CODE[name]] = 1
        elif major + minor in _CODE:
            chosen[_CODE[major + minor]] = 1
        else:
            raise _constructor_error()
    return chosen


def _flag(value: str, allowed: str) -> int:
    if len(value) != 1 or value not in allowed:
        raise _constructor_error()
    return int(value)


def _unicode61(args: Sequence[str], n_porter: int, spec: str) -> Tokenizer:
    pairs = _pairs(args)
    category_spec = "L* N* Co"
    for key, value in pairs:
        if key == "categories":
            category_spec = value
    categories = _categories(category_spec)
    token_char = bytearray(categories[category_of(c)] for c in range(128))
    remove_diacritics = 1
    exceptions: set[int] = set()
    for key, value in pairs:
        if key == "remove_diacritics":
            remove_diacritics = _flag(value, "012")
        elif key in ("tokenchars", "separators"):
            want = 1 if key == "tokenchars" else 0
            for ch in value:
                c = ord(ch)
                if c < 128:
                    token_char[c] = want
                elif categories[category_of(c)] != want and not diacritic(c):
                    exceptions.add(c)
        elif key != "categories":
            raise _constructor_error()
    return Tokenizer(
        K_UNICODE61,
        n_porter=n_porter,
        token_char=bytes(token_char),
        categories=bytes(categories),
        remove_diacritics=remove_diacritics,
        exceptions=exceptions,
        spec=spec,
    )


def _ascii(args: Sequence[str], n_porter: int, spec: str) -> Tokenizer:
    token_char = bytearray(_ASCII_ALNUM)
    for key, value in _pairs(args):
        if key not in ("tokenchars", "separators"):
            raise _constructor_error()
        for ch in value:
            if ord(ch) < 128:
                token_char[ord(ch)] = 1 if key == "tokenchars" else 0
    return Tokenizer(K_ASCII, n_porter=n_porter, token_char=bytes(token_char), spec=spec)


def _trigram(args: Sequence[str], n_porter: int, spec: str) -> Tokenizer:
    fold, fold_param = True, 0
    for key, value in _pairs(args):
        if key == "case_sensitive":
            fold = _flag(value, "01") == 0
        elif key == "remove_diacritics":
            fold_param = 2 if _flag(value, "012") else 0
        else:
            raise _constructor_error()
    if fold_param and not fold:
        raise _constructor_error()
    return Tokenizer(
        K_TRIGRAM, n_porter=n_porter, remove_diacritics=fold_param, fold=fold, spec=spec
    )


_BASE = {"unicode61": _unicode61, "ascii": _ascii, "trigram": _trigram}


_BUILT: dict[str | None, Tokenizer] = {}  # tokenize option text -> its tokenizer


def tokenizer(spec: str | Sequence[str] | None = None) -> Tokenizer:
    """The tokenizer a ``tokenize`` option value describes (None or "" for the
    default, unicode61); a list of words is taken as already split. One built
    from option text is kept and shared (an index opened per SQL statement would
    otherwise build its tables again each time): a Tokenizer does not change once
    built and tokenizes holding the GIL, so its scratch buffer is never used by
    two threads at once."""
    if spec is None or isinstance(spec, str):
        tok = _BUILT.get(spec)
        if tok is None:
            tok = _build(spec)
            if len(_BUILT) > 64:
                _BUILT.clear()
            _BUILT[spec] = tok
        return tok
    return _build(spec)


def _build(spec: str | Sequence[str] | None) -> Tokenizer:
    if spec is None:
        words: list[str] = []
    elif isinstance(spec, str):
        words = parse_tokenize_option(spec)
    else:
        words = list(spec)
    text = " ".join(_quote_word(w) for w in words) or DEFAULT_TOKENIZE
    if not words:
        words = [DEFAULT_TOKENIZE]
    name = words[0].lower()
    if name not in _BASE and name != "porter":
        raise FullTextError(f"no such tokenizer: {words[0]}")
    n_porter = 0
    while name == "porter":
        n_porter += 1
        words = words[1:] or [DEFAULT_TOKENIZE]
        name = words[0].lower()
        if name not in _BASE and name != "porter":
            raise _constructor_error()
    return _BASE[name](words[1:], n_porter, text)


def _quote_word(word: str) -> str:
    if word and all(_is_bareword(ch) for ch in word):
        return word
    return "'" + word.replace("'", "''") + "'"
