"""Real text: a few thousand paragraphs of the standard library's docstrings,
indexed by toondb and by FTS5, queried with terms, prefixes, phrases, NEAR
groups, boolean operators and column filters drawn from the corpus itself.
Ranks, bm25 scores, highlight() and snippet() must agree, also after deletes
and updates, and with the porter tokenizer."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from tests.text.conftest import Pair, stdlib_paragraphs
from tests.text.test_text_search import compare

N_PARAGRAPHS = 3000


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str]]:
    return stdlib_paragraphs(N_PARAGRAPHS)


def corpus_queries(corpus: list[tuple[str, str]], n: int, seed: int) -> list[str]:
    """Queries made of the corpus's own words: common and rare terms, prefixes,
    adjacent word pairs as phrases, NEAR groups, OR / NOT / implicit AND, and
    column filters (a: the qualified name, b: the paragraph)."""
    rng = random.Random(seed)
    docs = [re.findall(r"[a-z][a-z0-9]+", text.lower()) for _, text in corpus]
    df = Counter(w for words in docs for w in set(words))
    common = [w for w, _ in df.most_common(60)]
    middle = [w for w, c in df.items() if 5 <= c <= 60]
    rare = [w for w, c in df.items() if c <= 2]
    middle.sort()
    rare.sort()

    def word() -> str:
        return rng.choice(rng.choice([common, middle, middle, rare]))

    def bigram() -> str:
        words = rng.choice([d for d in docs if len(d) > 2])
        i = rng.randrange(len(words) - 1)
        return f'"{words[i]} {words[i + 1]}"'

    def leaf() -> str:
        k = rng.randrange(9)
        if k == 0:
            return word()[:3] + "*"
        if k == 1:
            return bigram()
        if k == 2:
            return f"NEAR({word()} {word()}, {rng.randrange(0, 12)})"
        if k == 3:
            return "^" + word()
        if k == 4:
            return rng.choice(["a", "b", "-a", "{a b}"]) + " : " + word()
        return word()

    out = []
    for _ in range(n):
        k = rng.randrange(6)
        if k == 0:
            q = f"{leaf()} OR {leaf()}"
        elif k == 1:
            q = f"{leaf()} NOT {leaf()}"
        elif k == 2:
            q = f"{leaf()} {leaf()}"
        elif k == 3:
            q = f"({leaf()} OR {leaf()}) {rng.choice(['AND', 'NOT'])} {leaf()}"
        else:
            q = leaf()
        out.append(q)
    return out


def load(p: Pair, corpus: list[tuple[str, str]]) -> None:
    for rowid, (name, text) in enumerate(corpus, start=1):
        p.insert(rowid, [name, text])


def test_corpus_queries_match_fts5(pair_factory, corpus) -> None:
    with pair_factory(["a", "b"], {"prefix": "3"}) as p:
        load(p, corpus)
        for q in corpus_queries(corpus, 120, seed=1):
            compare(p, q, weights=(3.0, 1.0))
        p.ix.integrity_check(p.rows.items())


def test_corpus_after_deletes_and_updates(pair_factory, corpus) -> None:
    rng = random.Random(7)
    with pair_factory(["a", "b"]) as p:
        load(p, corpus)
        rowids = sorted(p.rows)
        for rowid in rng.sample(rowids, len(rowids) // 10):
            p.delete(rowid)
        for rowid in rng.sample(sorted(p.rows), len(rowids) // 20):
            name, text = rng.choice(corpus)
            p.update(rowid, [name, text[::-1] if rng.random() < 0.3 else text])
        for rowid in range(len(corpus) + 1, len(corpus) + 50):
            p.insert(rowid, list(rng.choice(corpus)))
        for q in corpus_queries(corpus, 60, seed=2):
            compare(p, q)
        p.ix.integrity_check(p.rows.items())


def test_corpus_with_porter(pair_factory, corpus) -> None:
    with pair_factory(["a", "b"], {"tokenize": "porter"}) as p:
        load(p, corpus[:1500])
        for q in corpus_queries(corpus[:1500], 60, seed=3):
            compare(p, q)


def test_ranks_break_ties_by_rowid(pair_factory, corpus) -> None:
    with pair_factory(["a", "b"]) as p:
        texts = [text for _, text in corpus[:200]]
        for rowid in range(1, 601):
            p.insert(rowid, ["same", texts[rowid % 7]])  # many identical rows
        for q in ("same", "the", "same OR the", "b : the"):
            compare(p, q)


@pytest.mark.slow
def test_whole_stdlib_corpus(pair_factory) -> None:
    """Every docstring paragraph of the standard library (about 14k), 600 queries."""
    everything = stdlib_paragraphs()
    with pair_factory(["a", "b"], {"prefix": "2 4"}) as p:
        load(p, everything)
        for q in corpus_queries(everything, 600, seed=5):
            compare(p, q, weights=(0.5, 2.0))
        p.ix.integrity_check(p.rows.items())
