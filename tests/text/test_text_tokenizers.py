"""The tokenizers give FTS5's tokens and byte offsets: differential against
SQLite's FTS5 (the fts5vocab 'instance' table for the terms in order, and
highlight() with every term for the offsets), over generated Unicode text."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.text.conftest import REF_VERSION, fts5_quote, reference_sqlite
from toondb.errors import FullTextError
from toondb.text.tokenizers import parse_tokenize_option, tokenizer

SPECS = [
    "unicode61",
    "unicode61 remove_diacritics 0",
    "unicode61 remove_diacritics 2",
    "unicode61 tokenchars '-_.' separators 'xé'",
    "unicode61 categories 'L* N* Co Mn'",
    "unicode61 categories 'Lu Nd' tokenchars 'q'",
    "ascii",
    "ascii tokenchars '-' separators 'e'",
    "porter",
    "porter ascii",
    "porter unicode61 remove_diacritics 2",
    "trigram",
    "trigram case_sensitive 1",
]
if REF_VERSION >= (3, 45, 0):
    SPECS += ["trigram remove_diacritics 1"]

ALPHABET = (
    "abcdefxyzABCXYZ0123456789   \t\n.,;:-_'\"()*"
    "éÉèüÜßẞñÑåÅøæœçÇ"  # Latin-1 and friends
    "\u0301\u0300\u0308\u0327"  # combining marks
    "İıǅǄǈK\u212a\u2126ﬁﬂ½Ⅸⅸ"  # odd case folds
    "ΣσςΑΒΓαβγάέ"  # Greek
    "ДЖжщЯя"  # Cyrillic
    "日本語中文한국어"  # CJK, Hangul
    "\u00a0\u2019\u201c\u2014\u3000"  # punctuation and spaces
    "\U0001f600\U00010400\U00010428\U0001d400"  # emoji, Deseret, math
    "\x00\x01\x7f"
)

text_strategy = st.one_of(
    st.text(alphabet=ALPHABET, max_size=40),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=25),
)


def fts5_terms(spec: str, text: str) -> list[bytes]:
    db = reference_sqlite.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize={fts5_quote(spec)})")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    db.execute("INSERT INTO t(rowid, x) VALUES (1, ?)", (text,))
    rows = db.execute("SELECT term FROM v ORDER BY offset").fetchall()
    db.close()
    return [(r[0] or "").encode("utf-8", "surrogatepass") for r in rows]


def fts5_offsets(spec: str, text: str, terms: list[bytes]) -> list[tuple[int, int]]:
    """Byte offsets of the tokens FTS5 highlights when every term is queried."""
    distinct = sorted({t for t in terms if t})
    if not distinct:
        return []
    query = " OR ".join(
        '"' + t.decode("utf-8", "surrogatepass").replace('"', '""') + '"' for t in distinct
    )
    db = reference_sqlite.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize={fts5_quote(spec)})")
    db.execute("INSERT INTO t(rowid, x) VALUES (1, ?)", (text,))
    row = db.execute(
        "SELECT highlight(t, 0, char(1), char(2)) FROM t WHERE t MATCH ?", (query,)
    ).fetchone()
    db.close()
    if row is None:
        return []
    out, pos, start = [], 0, None
    for b in row[0].encode("utf-8", "surrogatepass"):
        if b == 1:
            start = pos
        elif b == 2:
            out.append((start, pos))
        else:
            pos += 1
    return out


@pytest.mark.parametrize("spec", SPECS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=text_strategy)
def test_terms_match_fts5(spec: str, text: str) -> None:
    if "\x01" in text or "\x02" in text or "\x00" in text:
        text = text.replace("\x00", " ").replace("\x01", " ").replace("\x02", " ")
    tok = tokenizer(spec)
    mine = tok.tokenize(text)
    assert [t for t, _, _ in mine] == fts5_terms(spec, text)
    if spec.startswith("trigram"):
        return
    # offsets: every token whose term queries as itself is highlighted by FTS5
    ref = fts5_offsets(spec, text, [t for t, _, _ in mine])
    want = [(s, e) for t, s, e in mine if t and [x[0] for x in tok.tokenize(t)] == [t]]
    assert want == ref


def test_offsets_are_utf8_byte_offsets() -> None:
    tok = tokenizer("unicode61")
    toks = tok.tokenize("Grüße, 日本 x")
    assert [(s, e) for _, s, e in toks] == [(0, 7), (9, 15), (16, 17)]
    assert toks[0][0] == "gruße".encode()  # ü loses its diaeresis; ß has none


def test_remove_diacritics_levels() -> None:
    text = "Crème brûlée Ǆemal ǅ"
    assert [t for t, _, _ in tokenizer("unicode61 remove_diacritics 0").tokenize(text)][:2] == [
        "crème".encode(),
        "brûlée".encode(),
    ]
    assert [t for t, _, _ in tokenizer("unicode61").tokenize(text)][:2] == [b"creme", b"brulee"]


WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=14)


@settings(max_examples=40, deadline=None)
@given(words=st.lists(WORDS, min_size=1, max_size=60))
def test_porter_stems_match_fts5(words: list[str]) -> None:
    text = " ".join(words)
    assert [t for t, _, _ in tokenizer("porter").tokenize(text)] == fts5_terms("porter", text)


def test_porter_on_english_corpus() -> None:
    from tests.text.conftest import stdlib_paragraphs

    words = sorted(
        {w for _, p in stdlib_paragraphs(1500) for w in re.findall(r"[a-z]{3,20}", p.lower())}
    )
    text = " ".join(words)
    assert [t for t, _, _ in tokenizer("porter").tokenize(text)] == fts5_terms("porter", text)


@pytest.mark.parametrize(
    "option, words",
    [
        ("porter unicode61 remove_diacritics 2", ["porter", "unicode61", "remove_diacritics", "2"]),
        ("unicode61 tokenchars '-''x'", ["unicode61", "tokenchars", "-'x"]),
        ("  ascii   separators  'a b' ", ["ascii", "separators", "a b"]),
        ("", []),
    ],
)
def test_tokenize_option_words(option: str, words: list[str]) -> None:
    assert parse_tokenize_option(option) == words


@pytest.mark.parametrize(
    "spec",
    [
        "foo",
        "porter foo",
        "unicode61 bar 1",
        "unicode61 remove_diacritics 3",
        "unicode61 remove_diacritics",
        "unicode61 categories 'L'",
        pytest.param(
            "unicode61 categories 'Xy'",
            marks=pytest.mark.skipif(REF_VERSION < (3, 44, 0), reason="3.40 accepts it"),
        ),
        "trigram case_sensitive 2",
        "trigram case_sensitive 1 remove_diacritics 1",
        "unicode61,",
        '"unicode61"',
        "ascii tokenchars",
        "Unicode61",
        "PORTER Ascii",
        "porter porter ascii",
        "unicode61 'tokenchars' '.'",
    ],
)
def test_tokenizer_errors_match_fts5(spec: str) -> None:
    db = reference_sqlite.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize={fts5_quote(spec)})")
        expected = None
    except reference_sqlite.OperationalError as exc:
        expected = str(exc)
    finally:
        db.close()
    if spec.startswith('"'):
        expected = "parse error in tokenize directive"  # FTS5 reports the whole option
    try:
        tokenizer(spec)
        got = None
    except FullTextError as exc:
        got = str(exc)
    assert got == expected
