"""Queries answer as SQLite's FTS5 answers them: the same rows in the same ORDER
BY rank order, the same bm25 (with and without column weights), the same
highlight() and snippet() text, the same errors; also after deletes and
updates. Documents and queries are generated (hypothesis) over a small
vocabulary so that phrases, NEAR groups and ties happen often."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.text.conftest import Pair
from toondb.errors import CorruptionError, FullTextError

VOCAB = ["alpha", "beta", "gamma", "delta", "alpine", "alps", "be", "Gamma", "élan", "elan", "x"]
SEPARATORS = [" ", " ", " ", ", ", ". ", ": ", " - ", "\n"]

word = st.sampled_from(VOCAB)


@st.composite
def texts(draw: st.DrawFn) -> str | None:
    if draw(st.integers(0, 12)) == 0:
        return None
    n = draw(st.integers(0, 14))
    parts = []
    for _ in range(n):
        parts.append(draw(word))
        parts.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(parts).strip()


@st.composite
def tables(draw: st.DrawFn, ncol: int) -> dict[int, list[str | None]]:
    rowids = draw(st.lists(st.integers(-5, 40), min_size=1, max_size=18, unique=True))
    return {r: [draw(texts()) for _ in range(ncol)] for r in rowids}


COLS = ["a", "b", "c"]


@st.composite
def phrases(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(word)
    if kind == 1:
        w = draw(word)
        return w[: draw(st.integers(1, len(w)))] + "*"
    if kind == 2:
        ws = draw(st.lists(word, min_size=1, max_size=3))
        return '"' + " ".join(ws) + '"' + ("*" if draw(st.booleans()) else "")
    if kind == 3:
        return " + ".join(draw(st.lists(word, min_size=2, max_size=3)))
    if kind == 4:
        return '""'
    return draw(word).upper() if draw(st.booleans()) else draw(word)


@st.composite
def colspecs(draw: st.DrawFn, ncol: int) -> str:
    cols = draw(st.lists(st.sampled_from(COLS[:ncol]), min_size=1, max_size=ncol, unique=True))
    neg = "-" if draw(st.booleans()) else ""
    if len(cols) == 1 and draw(st.booleans()):
        return neg + cols[0]
    return neg + "{" + " ".join(cols) + "}"


@st.composite
def nearsets(draw: st.DrawFn, ncol: int) -> str:
    kind = draw(st.integers(0, 6))
    if kind <= 2:
        core = draw(phrases())
    elif kind == 3:
        core = "^" + draw(phrases())
    else:
        ps = draw(st.lists(phrases(), min_size=1, max_size=3))
        dist = draw(st.one_of(st.none(), st.integers(0, 4)))
        core = "NEAR(" + " ".join(ps) + ("" if dist is None else f", {dist}") + ")"
    if draw(st.integers(0, 4)) == 0:
        return draw(colspecs(ncol)) + " : " + core
    return core


@st.composite
def queries(draw: st.DrawFn, ncol: int, depth: int = 0) -> str:
    kind = draw(st.integers(0, 5 if depth < 2 else 1))
    if kind <= 1:
        return " ".join(draw(st.lists(nearsets(ncol), min_size=1, max_size=3)))
    if kind == 2:
        return "(" + draw(queries(ncol, depth + 1)) + ")"
    if kind == 3:
        return draw(colspecs(ncol)) + " : (" + draw(queries(ncol, depth + 1)) + ")"
    op = draw(st.sampled_from(["AND", "OR", "NOT", "OR"]))
    return draw(queries(ncol, depth + 1)) + f" {op} " + draw(queries(ncol, depth + 1))


def _aux_exprs(ncol: int) -> list[str]:
    return [f"highlight(t, {i}, '[', ']')" for i in range(ncol)] + [
        "snippet(t, -1, '<', '>', '...', 4)",
        "snippet(t, 0, '<', '>', '', 3)",
    ]


def _mine_aux(p: Pair, m, k: int) -> object:
    ncol = len(p.names)
    values = p.rows[m.rowid]
    try:
        if k < ncol:
            return p.ix.highlight(m, k, values[k], "[", "]")
        if k == ncol:
            return p.ix.snippet(m, -1, values, "<", ">", "...", 4)
        return p.ix.snippet(m, 0, values, "<", ">", "", 3)
    except CorruptionError as exc:
        return ("error", str(exc))


def _ref_aux(p: Pair, query: str, column: str | None, rowids: list[int]) -> list[list[object]]:
    """Each row's aux function values, computed in one scan of the query (the
    way they see FTS5's cursor state); a function that fails for a row (FTS5's
    snippet reports instances past a column's end as corruption) is computed
    row by row, guarded by CASE, and gives ("error", message)."""
    exprs = _aux_exprs(len(p.names))
    lhs = column or "t"
    sql = f"SELECT {', '.join(exprs)} FROM t WHERE {lhs} MATCH ? ORDER BY rank"
    try:
        return [list(r) for r in p.ref.execute(sql, (query,)).fetchall()]
    except Exception:  # the reference's DatabaseError
        pass
    out = [[None] * len(exprs) for _ in rowids]
    for k, expr in enumerate(exprs):
        for i, rowid in enumerate(rowids):
            one = f"SELECT CASE WHEN rowid = {rowid} THEN {expr} END FROM t WHERE {lhs} MATCH ? ORDER BY rank"
            try:
                vals = [r[0] for r in p.ref.execute(one, (query,)).fetchall()]
                out[i][k] = vals[i]
            except Exception as exc:
                out[i][k] = ("error", str(exc))
    return out


def compare(p: Pair, query: str, column: str | None = None, weights: Sequence[float] = ()) -> None:
    wt = ", bm25(t" + "".join(f", {w}" for w in weights) + ")"
    try:
        ref = p.ref_search(query, column, wt)
        err = None
    except Exception as exc:  # the reference's OperationalError
        ref, err = None, str(exc)
    if err is not None:
        with pytest.raises(FullTextError) as info:
            p.ix.search(query, column)
        assert str(info.value) == err, query
        return
    mine = p.ix.search(query, column)
    assert [m.rowid for m in mine] == [r[0] for r in ref], query
    aux = _ref_aux(p, query, column, [r[0] for r in ref])
    for m, r, a in zip(mine, ref, aux):
        assert m.score == pytest.approx(r[1], rel=0, abs=1e-9), (query, m.rowid)
        for k, want in enumerate(a):
            assert _mine_aux(p, m, k) == want, (query, m.rowid, _aux_exprs(len(p.names))[k])
    if weights:
        weighted = {m.rowid: m.score for m in p.ix.search(query, column, weights=weights)}
        for r in ref:
            assert weighted[r[0]] == pytest.approx(r[-1], rel=0, abs=1e-9), (query, r[0])


SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("ncol", [1, 3])
@SETTINGS
@given(data=st.data())
def test_queries_match_fts5(pair_factory, ncol: int, data: st.DataObject) -> None:
    rows = data.draw(tables(ncol))
    with pair_factory(COLS[:ncol]) as p:
        for rowid in sorted(rows):
            p.insert(rowid, rows[rowid])
        for _ in range(6):
            compare(p, data.draw(queries(ncol)), weights=(2.0, 0.5)[: ncol - 1])
        if ncol > 1:
            compare(p, data.draw(queries(ncol)), column=data.draw(st.sampled_from(COLS[:ncol])))


@SETTINGS
@given(data=st.data())
def test_queries_after_deletes_and_updates(pair_factory, data: st.DataObject) -> None:
    rows = data.draw(tables(2))
    with pair_factory(COLS[:2], {"prefix": "1 3"}) as p:
        for rowid in data.draw(st.permutations(sorted(rows))):
            p.insert(rowid, rows[rowid])
        for rowid in data.draw(st.lists(st.sampled_from(sorted(rows)), unique=True)):
            if data.draw(st.booleans()):
                p.delete(rowid)
            else:
                p.update(rowid, [data.draw(texts()), data.draw(texts())])
        for _ in range(5):
            compare(p, data.draw(queries(2)))
        p.ix.integrity_check(p.rows.items())


@pytest.mark.parametrize(
    "options",
    [
        {"tokenize": "porter"},
        {"tokenize": "trigram"},
        {"tokenize": "ascii"},
        {"prefix": "2"},
        {"tokenize": "unicode61 remove_diacritics 0", "prefix": "1,2 4"},
    ],
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_tokenizers_and_prefix_indexes(pair_factory, options: dict, data: st.DataObject) -> None:
    rows = data.draw(tables(2))
    with pair_factory(["a", "b UNINDEXED"], options) as p:
        for rowid in sorted(rows):
            p.insert(rowid, rows[rowid])
        for _ in range(5):
            compare(p, data.draw(queries(2)))


GARBAGE = st.text(alphabet='ab "()*:{}+-^,NEARORANDNOT\t', max_size=24)


@SETTINGS
@given(query=st.one_of(GARBAGE, queries(2)))
def test_errors_match_fts5(pair_factory, query: str) -> None:
    with pair_factory(["a", "b"]) as p:
        p.insert(1, ["alpha beta", "gamma"])
        compare(p, query)


def test_rank_ties_order_by_rowid(pair_factory) -> None:
    with pair_factory(["a"]) as p:
        for rowid in (9, 3, 7, 1, 5):
            p.insert(rowid, ["same words here"])
        for rowid in (4, 2):
            p.insert(rowid, ["same"])
        compare(p, "same")
        mine = p.ix.search("same", descending=True)
        ref = p.ref.execute(
            "SELECT rowid FROM t WHERE t MATCH 'same' ORDER BY rank DESC"
        ).fetchall()
        assert [m.rowid for m in mine] == [r[0] for r in ref]


def test_limit_offset_and_rowid_order(pair_factory) -> None:
    with pair_factory(["a"]) as p:
        for rowid in range(1, 30):
            p.insert(rowid, ["alpha " * (rowid % 5 + 1) + "beta"])
        ranked = p.ix.search("alpha", limit=5, offset=3)
        ref = p.ref.execute(
            "SELECT rowid FROM t WHERE t MATCH 'alpha' ORDER BY rank LIMIT 5 OFFSET 3"
        ).fetchall()
        assert [m.rowid for m in ranked] == [r[0] for r in ref]
        by_rowid = p.ix.search("alpha", order="rowid", limit=4, scores=False)
        assert [m.rowid for m in by_rowid] == [1, 2, 3, 4]
        assert all(m.score is None for m in by_rowid)
        desc = p.ix.search("alpha", order="rowid", descending=True, limit=2)
        assert [m.rowid for m in desc] == [29, 28]
        ranged = p.ix.search("beta", order="rowid", min_rowid=10, max_rowid=12)
        assert [m.rowid for m in ranged] == [10, 11, 12]


@pytest.mark.slow
@settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_long_differential_run(pair_factory, data: st.DataObject) -> None:
    """The checks above with many more examples, every table option, deletes,
    updates and garbage queries mixed (the slow suite)."""
    ncol = data.draw(st.integers(1, 3))
    options = data.draw(
        st.sampled_from([None, {"prefix": "1 3"}, {"tokenize": "porter"}, {"tokenize": "trigram"}])
    )
    rows = data.draw(tables(ncol))
    with pair_factory(COLS[:ncol], options) as p:
        for rowid in data.draw(st.permutations(sorted(rows))):
            p.insert(rowid, rows[rowid])
        for rowid in data.draw(st.lists(st.sampled_from(sorted(rows)), unique=True)):
            if data.draw(st.booleans()):
                p.delete(rowid)
            else:
                p.update(rowid, [data.draw(texts()) for _ in range(ncol)])
        for _ in range(8):
            compare(
                p, data.draw(st.one_of(queries(ncol), GARBAGE)), weights=(1.5, 0.25, 2.0)[:ncol]
            )
        p.ix.integrity_check(p.rows.items())


QUERY_CHARS = st.sampled_from(
    [
        "a",
        "b",
        "ab",
        "Z",
        '"',
        '""',
        "(",
        ")",
        "{",
        "}",
        ":",
        ",",
        "+",
        "*",
        "-",
        "^",
        " ",
        "NEAR",
        "AND",
        "OR",
        "NOT",
        "near",
        "3",
        ".",
        "\t",
        "é",
    ]
)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(QUERY_CHARS, max_size=14))
def test_parse_errors_match_fts5(parts: list[str]) -> None:
    """Errors of arbitrary token soups: the same message at the same token."""
    from tests.text.conftest import reference_sqlite
    from toondb.text import parse_query, tokenizer

    query = "".join(parts)
    db = reference_sqlite.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(a, b)")
    try:
        db.execute("SELECT * FROM t WHERE t MATCH ?", (query,)).fetchall()
        expected = None
    except reference_sqlite.OperationalError as exc:
        expected = str(exc)
    finally:
        db.close()
    try:
        parse_query(query, ["a", "b"], tokenizer())
        got = None
    except FullTextError as exc:
        got = str(exc)
    assert got == expected, query
