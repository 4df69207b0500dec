"""The index in the page file: it commits and rolls back with the caller's
transaction, survives reopening, keeps its block invariants under growth,
deletes and out-of-order writes, and integrity_check finds damage. Also the
FTS5 table arguments it accepts, and its errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.text.conftest import REF_VERSION, fts5_quote, reference_sqlite
from toondb import Database
from toondb.errors import CorruptionError, FullTextError
from toondb.text import FullTextIndex, parse_arguments
from toondb.text import _postings as P
from toondb.text.index import _successor

# options added after the stdlib's 3.40: toondb follows the newer FTS5
NEEDS_3_43 = pytest.mark.skipif(REF_VERSION < (3, 43, 0), reason="contentless_delete is 3.43+")

DOCS = [
    "the quick brown fox",
    "jumps over the lazy dog",
    "the dog barks. The fox runs",
    "quick quick fox fox",
    "a lazy afternoon with the fox and the dog",
]


def rowids(ix: FullTextIndex, q: str, **kw) -> list[int]:
    return [m.rowid for m in ix.search(q, **kw)]


def test_commit_reopen_and_rollback(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with Database.open(path) as db:
        with db.transaction() as txn:
            with FullTextIndex.create(txn, "docs", ["body"]) as ix:
                for i, d in enumerate(DOCS, start=1):
                    ix.insert(i, [d])
        txn = db.transaction()
        ix = FullTextIndex.open(txn, "docs")
        ix.insert(10, ["fox fox fox"])
        ix.flush()
        assert 10 in rowids(ix, "fox")
        txn.abort()  # the row and its postings go with the transaction
    with Database.open(path) as db:
        with db.transaction() as txn:
            ix = FullTextIndex.open(txn, "docs")
            assert rowids(ix, "fox", order="rowid") == [1, 3, 4, 5]
            assert ix.row_count == 5
            ix.integrity_check(enumerate(([d] for d in DOCS), start=1))
            assert FullTextIndex.exists(txn, "docs")
            assert FullTextIndex.drop(txn, "docs")
            assert not FullTextIndex.exists(txn, "docs")


def test_pending_rows_are_seen_and_flushed_by_the_context_manager(tmp_path: Path) -> None:
    with Database.open(tmp_path / "db") as db:
        with db.transaction() as txn:
            ix = FullTextIndex.create(txn, "t", ["a"])
            ix.insert(1, ["alpha"])
            assert rowids(ix, "alpha") == [1]  # a search flushes first
            with FullTextIndex.open(txn, "t") as again:
                again.insert(2, ["alpha beta"])
            assert rowids(FullTextIndex.open(txn, "t"), "alpha", order="rowid") == [1, 2]


def test_open_and_create_errors(tmp_path: Path) -> None:
    with Database.open(tmp_path / "db") as db, db.transaction() as txn:
        with pytest.raises(FullTextError, match="no such full-text index: nope"):
            FullTextIndex.open(txn, "nope")
        FullTextIndex.create(txn, "t", ["a"])
        with pytest.raises(FullTextError, match="already exists"):
            FullTextIndex.create(txn, "t", ["a"])
        with pytest.raises(FullTextError, match="no such tokenizer: nope"):
            FullTextIndex.create(txn, "u", ["a"], {"tokenize": "nope"})
        ix = FullTextIndex.open(txn, "t")
        with pytest.raises(FullTextError, match="no such column: zz"):
            ix.search("zz : x")
        with pytest.raises(ValueError):
            ix.insert(1, ["a", "b"])


def _blocks(ix: FullTextIndex) -> list[tuple[bytes, int, bytes]]:
    return [b for _, blocks in ix._all_terms() for b in blocks]


def test_common_terms_split_into_blocks_and_appends_touch_the_last(tmp_path: Path) -> None:
    rng = random.Random(3)
    words = ["common"] + [f"w{i}" for i in range(300)]
    with Database.open(tmp_path / "db") as db, db.transaction() as txn:
        ix = FullTextIndex.create(txn, "t", ["a"])
        rows = {}
        for rowid in range(1, 3001):
            rows[rowid] = ["common " + " ".join(rng.choice(words) for _ in range(8))]
            ix.insert(rowid, rows[rowid])
            if rowid % 500 == 0:
                ix.flush()
        common = [b for b in _blocks(ix) if b[0].startswith(b"t0common\x00\x00")]
        assert len(common) >= 5
        assert all(len(v) <= ix.block_limit(k[:-8]) for k, _, v in common)
        firsts = [r for _, r, _ in common]
        assert firsts == sorted(firsts)
        assert len(rowids(ix, "common")) == 3000
        ix.integrity_check(rows.items())
        # deletes from the middle and the ends, then out-of-order inserts
        for rowid in [1, 1500, 3000] + rng.sample(range(2, 2999), 200):
            if rowid in rows:
                ix.delete(rowid, rows.pop(rowid))
        for rowid in [1500, -7, 2**62, 5000, 1]:
            rows[rowid] = ["common late arrival"]
            ix.insert(rowid, rows[rowid])
        ix.integrity_check(rows.items())
        assert sorted(rowids(ix, "common")) == sorted(rows)
        assert rowids(ix, "late", order="rowid") == [-7, 1, 1500, 5000, 2**62]
        before = len(_blocks(ix))
        ix.optimize()
        assert len(_blocks(ix)) <= before
        ix.integrity_check(rows.items())


def test_extreme_rowids_and_long_tokens(tmp_path: Path) -> None:
    long_token = "x" * 5000
    with Database.open(tmp_path / "db") as db, db.transaction() as txn:
        ix = FullTextIndex.create(txn, "t", ["a"])
        rows = {-(2**63): ["min " + long_token], 2**63 - 1: ["max"], 0: ["zero " + long_token]}
        for rowid in sorted(rows):
            ix.insert(rowid, rows[rowid])
        assert rowids(ix, "min OR max OR zero", order="rowid") == sorted(rows)
        assert rowids(ix, long_token, order="rowid") == [-(2**63), 0]
        assert rowids(ix, "x*", order="rowid") == [-(2**63), 0]
        ix.integrity_check(rows.items())


def test_integrity_check_finds_damage(tmp_path: Path) -> None:
    with Database.open(tmp_path / "db") as db, db.transaction() as txn:
        ix = FullTextIndex.create(txn, "t", ["a"])
        rows = {i: [d] for i, d in enumerate(DOCS, start=1)}
        for rowid, values in rows.items():
            ix.insert(rowid, values)
        ix.flush()
        ix.integrity_check(rows.items())
        with pytest.raises(CorruptionError, match="postings differ"):
            ix.integrity_check({**rows, 2: ["jumps over the lazy cat"]}.items())
        with pytest.raises(CorruptionError, match="document sizes"):
            ix.integrity_check(list(rows.items())[:-1])
        key = next(k for k, _ in ix.tree.scan(b"t0fox", _successor(b"t0fox")))
        good = ix.tree.get(key)
        ix.tree.put(key, good[:-1])
        with pytest.raises(CorruptionError):
            ix.integrity_check()
        ix.tree.put(key, good)
        ix._totals[0] += 1
        ix._write_totals()
        with pytest.raises(CorruptionError, match="totals"):
            ix.integrity_check()


def test_prefix_indexes_answer_as_scans(tmp_path: Path) -> None:
    rng = random.Random(5)
    vocab = ["alpha", "alps", "alpine", "beta", "bet", "be", "über", "übel", "日本語", "日本"]
    with Database.open(tmp_path / "db") as db, db.transaction() as txn:
        plain = FullTextIndex.create(txn, "plain", ["a", "b"])
        pre = FullTextIndex.create(txn, "pre", ["a", "b"], {"prefix": "1,2 3"})
        for rowid in range(1, 200):
            values = [" ".join(rng.choice(vocab) for _ in range(5)) for _ in range(2)]
            plain.insert(rowid, values)
            pre.insert(rowid, values)
        for q in [
            "a*",
            "al*",
            "alp*",
            "alph*",
            "b*",
            "be*",
            "ü*",
            "üb*",
            "日*",
            "日本*",
            "a : al*",
            "-b : be*",
        ]:
            assert [(m.rowid, m.score) for m in plain.search(q)] == [
                (m.rowid, m.score) for m in pre.search(q)
            ], q


def test_unindexed_columns_and_contentless_rows(tmp_path: Path) -> None:
    with Database.open(tmp_path / "db") as db, db.transaction() as txn:
        ix = FullTextIndex.create(txn, "t", ["title", "body UNINDEXED"], {"content": ""})
        ix.insert(1, ["fox tale", "the fox runs"])
        assert rowids(ix, "runs") == []
        (m,) = ix.search("fox")
        assert ix.column_sizes(1) == [2, 0]
        assert ix.highlight(m, 0, None, "[", "]") is None  # no content to show
        assert ix.highlight(m, 0, "fox tale", "[", "]") == "[fox] tale"
        assert ix.highlight(m, 7, "fox tale", "[", "]") == ""
        assert m.instances == [(0, 0, 0)]
        assert ix.snippet(m, 0, ["fox tale", None], "[", "]", "...", 5) == "[fox] tale"
        with pytest.raises(FullTextError, match="column index out of range"):
            ix.snippet(m, 5, ["fox tale", None], "[", "]", "...", 5)


def test_delete_without_values_scans_the_index(tmp_path: Path) -> None:
    with Database.open(tmp_path / "db") as db, db.transaction() as txn:
        ix = FullTextIndex.create(txn, "t", ["a", "b"], {"content": "", "contentless_delete": "1"})
        rows = {i: [d, d.upper()] for i, d in enumerate(DOCS, start=1)}
        for rowid, values in rows.items():
            ix.insert(rowid, values)
        ix.delete(3, None)
        del rows[3]
        assert rowids(ix, "fox", order="rowid") == [1, 4, 5]
        ix.integrity_check(rows.items())


def test_delete_all_and_rebuild(tmp_path: Path) -> None:
    with Database.open(tmp_path / "db") as db, db.transaction() as txn:
        ix = FullTextIndex.create(txn, "t", ["a"], {"tokenize": "porter"})
        for i, d in enumerate(DOCS, start=1):
            ix.insert(i, [d])
        ix.delete_all()
        assert ix.row_count == 0 and rowids(ix, "fox") == []
        ix.rebuild([(9, ["running foxes"]), (3, ["the runs"])])
        assert rowids(ix, "run", order="rowid") == [3, 9]
        assert rowids(ix, "fox") == [9]
        ix.integrity_check([(9, ["running foxes"]), (3, ["the runs"])])


def test_block_codec_round_trip() -> None:
    rows = [(-5, [(0, 0), (0, 7), (2, 1)]), (3, [(1, 0)]), (2**40, [(0, 2**20)])]
    data = P.encode_entries(rows)
    assert P.decode_pending(data) == rows
    blocks = P.merge_blocks([], data, None, 1000)
    assert [b for first, v in blocks for b in P.decode_block(first, v)] == rows
    # a delete and a pending entry replacing a stored one
    merged = P.merge_blocks(blocks, P.encode_entries([(3, [(0, 1)])]), {-5}, 8)
    assert [b for first, v in merged for b in P.decode_block(first, v)] == [
        (3, [(0, 1)]),
        (2**40, [(0, 2**20)]),
    ]
    assert all(len(v) <= 8 or len(P.decode_block(f, v)) == 1 for f, v in merged)


def _fts5_error(args: list[str]) -> str | None:
    db = reference_sqlite.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5({', '.join(args)})")
    except reference_sqlite.OperationalError as exc:
        return str(exc)
    finally:
        db.close()
    return None


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["a", "a"],
        ["a", "A"],
        ["rank"],
        ["RowID"],
        ["a b"],
        ["a unindexed"],
        ["a UNINDEXED", "b"],
        ["a", "pre=2"],
        ["a", "prefix='2 3'"],
        ["a", "prefix=2", "prefix=3"],
        ["a", "prefix=0"],
        ["a", "prefix=1000"],
        ["a", "prefix='2,3'"],
        ["a", "prefix=',2'"],
        ["a", "prefix='2 x'"],
        ["a", "detail=full"],
        ["a", "detail=''"],
        ["a", '"x"=1'],
        ["a", "tokenize='porter'", "tokenize='ascii'"],
        ["a", "t=1"],
        ["a", "tokenize='unicode61 remove_diacritics 9'"],
        ["a", "columnsize=0"],
        ["a", "columnsize=2"],
        pytest.param(["a", "content=''", "contentless_delete=1"], marks=NEEDS_3_43),
        pytest.param(["a", "contentless_delete=1"], marks=NEEDS_3_43),
        ["a", "content='x'", "content='y'"],
        ["a", "content_rowid='id'"],
        ["a", "zz=1"],
        ["x y z"],
        ["'quoted col'"],
        ["[bracketed]", "`tick`"],
    ],
)
def test_table_arguments_match_fts5(args: list[str]) -> None:
    expected = _fts5_error(args)
    try:
        parse_arguments(args, "t")
        got = None
    except FullTextError as exc:
        got = str(exc)
    assert got == expected, args


def test_table_arguments_give_the_config() -> None:
    cfg = parse_arguments(["title", "body UNINDEXED", "tokenize = 'porter ascii'", "prefix='2 3'"])
    assert cfg.columns == ("title", "body")
    assert cfg.unindexed == (False, True)
    assert cfg.tokenize == "porter ascii"
    assert cfg.prefixes == (2, 3)
    assert parse_arguments([fts5_quote("a b")]).columns == ("a b",)
