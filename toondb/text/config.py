"""The configuration of a full-text index, parsed from FTS5's table arguments.

``CREATE VIRTUAL TABLE docs USING fts5(title, body UNINDEXED, tokenize='porter',
prefix='2 3')`` has the arguments ``["title", "body UNINDEXED",
"tokenize='porter'", "prefix='2 3'"]``; ``parse_arguments`` reads them as FTS5's
sqlite3Fts5ConfigParse does (with its error messages) into a ``FullTextConfig``.

Each argument is one or two words (a bareword, or a string quoted with ' " ` or
[ ]): ``name [UNINDEXED]`` declares a column, ``option = value`` sets an
option. Option names match when they are a prefix of the full name, case
insensitively, first match wins in this order:

==================  ============================================================
prefix              prefix index lengths (characters), spaces or commas between,
                    1..999, at most 31 in all (repeatable: they accumulate)
tokenize            the tokenizer (toondb.text.tokenizers), once
content             ``''``: contentless; a table name: external content; once
contentless_delete  0 | 1 (1 needs content='')
content_rowid       the external content table's rowid column, once
columnsize          0 | 1
locale              0 | 1 (toondb: only 0)
detail              full | column | none, or a prefix of one (toondb: only full)
tokendata           0 | 1 (toondb: only 0)
==================  ============================================================

The content options only describe where the SQL layer keeps the rows; the
index stores postings and document sizes in every case.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from toondb.errors import FullTextError
from toondb.text.tokenizers import tokenizer

__all__ = ["FullTextConfig", "parse_arguments", "MAX_PREFIX_INDEXES"]

MAX_PREFIX_INDEXES = 31
FORMAT_VERSION = 1
_OPTIONS = (
    "prefix",
    "tokenize",
    "content",
    "contentless_delete",
    "content_rowid",
    "columnsize",
    "locale",
    "detail",
    "tokendata",
)


@dataclass(frozen=True)
class FullTextConfig:
    columns: tuple[str, ...]
    unindexed: tuple[bool, ...]
    tokenize: str = ""  # "" : the default (unicode61)
    prefixes: tuple[int, ...] = ()
    content: str | None = None  # None: the table's own; "": contentless; else a table
    content_rowid: str = "rowid"
    columnsize: bool = True
    contentless_delete: bool = False
    detail: str = "full"

    def to_json(self) -> bytes:
        data = asdict(self)
        data["format"] = FORMAT_VERSION
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> FullTextConfig:
        data = json.loads(raw)
        if data.pop("format", None) != FORMAT_VERSION:
            raise ValueError("unknown full-text index format")
        data["columns"] = tuple(data["columns"])
        data["unindexed"] = tuple(data["unindexed"])
        data["prefixes"] = tuple(data["prefixes"])
        return cls(**data)

    def column_index(self, name: str) -> int:
        """The number of the column called name (case-insensitive)."""
        low = name.lower()
        for i, col in enumerate(self.columns):
            if col.lower() == low:
                return i
        raise FullTextError(f"no such column: {name}")


def _is_bareword(ch: str) -> bool:
    o = ord(ch)
    return o >= 0x80 or 48 <= o <= 57 or 65 <= o <= 90 or 97 <= o <= 122 or o == 95 or o == 0x1A


def _gobble(text: str) -> tuple[str, int, bool] | None:
    """(word, characters used, quoted) at the start of text, None on a missing
    close quote or no bareword."""
    if text and text[0] in "\"'`[":
        close = "]" if text[0] == "[" else text[0]
        out = []
        i = 1
        while i < len(text):
            if text[i] == close:
                if i + 1 < len(text) and text[i + 1] == close:
                    out.append(close)
                    i += 2
                    continue
                return "".join(out), i + 1, True
            out.append(text[i])
            i += 1
        return "".join(out), i, True  # FTS5 accepts a missing close quote here
    i = 0
    while i < len(text) and _is_bareword(text[i]):
        i += 1
    if i == 0:
        return None
    return text[:i], i, False


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] == " ":
        i += 1
    return i


class _Builder:
    def __init__(self) -> None:
        self.columns: list[str] = []
        self.unindexed: list[bool] = []
        self.tokenize: str | None = None
        self.prefixes: list[int] = []
        self.content: str | None = None
        self.content_rowid: str | None = None
        self.columnsize = True
        self.contentless_delete = False
        self.detail = "full"

    def column(self, name: str, option: str | None) -> None:
        if name.lower() in ("rank", "rowid"):
            raise FullTextError(f"reserved fts5 column name: {name}")
        if option is not None and option.lower() != "unindexed":
            raise FullTextError(f"unrecognized column option: {option}")
        self.columns.append(name)
        self.unindexed.append(option is not None)

    def option(self, cmd: str, arg: str) -> None:
        name = next((o for o in _OPTIONS if o[: len(cmd)] == cmd.lower()), None)
        if name is None or (not cmd and name != "prefix"):
            raise FullTextError(f'unrecognized option: "{cmd}"')
        getattr(self, "opt_" + name)(arg)

    def opt_prefix(self, arg: str) -> None:
        i, first = 0, True
        while True:
            while i < len(arg) and arg[i] == " ":
                i += 1
            if not first and i < len(arg) and arg[i] == ",":
                i += 1
                while i < len(arg) and arg[i] == " ":
                    i += 1
            elif i >= len(arg):
                return
            if i >= len(arg) or not "0" <= arg[i] <= "9":
                raise FullTextError("malformed prefix=... directive")
            if len(self.prefixes) == MAX_PREFIX_INDEXES:
                raise FullTextError(f"too many prefix indexes (max {MAX_PREFIX_INDEXES})")
            n = 0
            while i < len(arg) and "0" <= arg[i] <= "9" and n < 1000:
                n = n * 10 + ord(arg[i]) - 48
                i += 1
            if n <= 0 or n >= 1000:
                raise FullTextError("prefix length out of range (max 999)")
            self.prefixes.append(n)
            first = False

    def opt_tokenize(self, arg: str) -> None:
        if self.tokenize is not None:
            raise FullTextError("multiple tokenize=... directives")
        self.tokenize = arg

    def opt_content(self, arg: str) -> None:
        if self.content is not None:
            raise FullTextError("multiple content=... directives")
        self.content = arg

    def _flag(self, arg: str, what: str) -> bool:
        if arg not in ("0", "1"):
            raise FullTextError(f"malformed {what}=... directive")
        return arg == "1"

    def opt_contentless_delete(self, arg: str) -> None:
        self.contentless_delete = self._flag(arg, "contentless_delete")

    def opt_content_rowid(self, arg: str) -> None:
        if self.content_rowid is not None:
            raise FullTextError("multiple content_rowid=... directives")
        self.content_rowid = arg

    def opt_columnsize(self, arg: str) -> None:
        self.columnsize = self._flag(arg, "columnsize")

    def opt_locale(self, arg: str) -> None:
        if self._flag(arg, "locale"):
            raise FullTextError("toondb full-text indexes do not support locale=1")

    def opt_detail(self, arg: str) -> None:
        matches = [d for d in ("none", "full", "columns") if d[: len(arg)] == arg.lower()]
        if len(matches) != 1:
            raise FullTextError("malformed detail=... directive")
        if matches[0] != "full":
            raise FullTextError(f"toondb full-text indexes support only detail=full, not {arg}")

    def opt_tokendata(self, arg: str) -> None:
        if self._flag(arg, "tokendata"):
            raise FullTextError("toondb full-text indexes do not support tokendata=1")


def parse_arguments(args: Sequence[str], table: str = "") -> FullTextConfig:
    """A FullTextConfig from FTS5's CREATE VIRTUAL TABLE arguments (each already
    split at the top-level commas, as SQLite hands them to the module)."""
    b = _Builder()
    for orig in args:
        word = _gobble(orig)
        if word is None:
            raise FullTextError(f'parse error in "{orig}"')
        one, used, quoted = word
        i = _skip_space(orig, used)
        is_option = i < len(orig) and orig[i] == "="
        if is_option:
            if quoted:
                raise FullTextError(f'parse error in "{orig}"')
            i = _skip_space(orig, i + 1)
        two = None
        if i < len(orig):
            second = _gobble(orig[i:])
            if second is None or i + second[1] < len(orig):
                raise FullTextError(f'parse error in "{orig}"')
            two = second[0]
        if is_option:
            b.option(one, two or "")
        else:
            b.column(one, two)
    if b.contentless_delete and b.content != "":
        raise FullTextError("contentless_delete=1 requires a contentless table")
    if b.contentless_delete and not b.columnsize:
        raise FullTextError("contentless_delete=1 is incompatible with columnsize=0")
    lowered = [c.lower() for c in b.columns]
    if not b.columns or len(set(lowered)) != len(lowered):
        raise FullTextError(f"vtable constructor failed: {table}")
    tokenizer(b.tokenize or None)  # its errors belong to the table's creation
    return FullTextConfig(
        columns=tuple(b.columns),
        unindexed=tuple(b.unindexed),
        tokenize=b.tokenize or "",
        prefixes=tuple(b.prefixes),
        content=b.content,
        content_rowid=b.content_rowid or "rowid",
        columnsize=b.columnsize,
        contentless_delete=b.contentless_delete,
        detail=b.detail,
    )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def config_from(
    columns: Sequence[str], options: Mapping[str, str] | None = None, table: str = ""
) -> FullTextConfig:
    """A FullTextConfig from column specs ("title", "body UNINDEXED") and an
    options mapping ({"tokenize": "porter", "prefix": "2 3"})."""
    args = list(columns)
    for key, value in (options or {}).items():
        args.append(f"{key}={_literal(str(value))}")
    return parse_arguments(args, table)
