"""The key-value API as a user meets it: open/close, put/get/delete, scans, the
path API, limits and errors, configuration, stats."""

from __future__ import annotations

import os

import pytest
from paths import ROOT

import toondb
from toondb import Database


def test_put_get_delete(db):
    db.put(b"key", b"value")
    assert db.get(b"key") == b"value"
    assert db.delete(b"key") is True
    assert db.get(b"key") is None
    assert db.delete(b"key") is False


def test_empty_value_is_distinct_from_missing(db):
    db.put(b"k", b"")
    assert db.get(b"k") == b""
    assert db.get(b"other") is None


def test_bytes_like_keys_and_values(db):
    db.put(bytearray(b"ba"), memoryview(b"mv"))
    assert db.get(memoryview(b"ba")) == b"mv"
    assert isinstance(db.get(b"ba"), bytes)


@pytest.mark.parametrize("bad", ["text", 12, None, 1.5, ["a"]])
def test_non_bytes_key_is_type_error_naming_argument(db, bad):
    with pytest.raises(TypeError, match="key must be bytes"):
        db.put(bad, b"v")
    with pytest.raises(TypeError, match="key must be bytes"):
        db.get(bad)
    with pytest.raises(TypeError, match="value must be bytes"):
        db.put(b"k", bad)
    assert db.get(b"k") is None


def test_str_error_suggests_encode(db):
    with pytest.raises(TypeError, match=r"encode"):
        db.put("k", b"v")


def test_key_limits(db):
    with pytest.raises(ValueError, match="must not be empty"):
        db.put(b"", b"v")
    top = db.max_key_size
    db.put(b"k" * top, b"v")
    assert db.get(b"k" * top) == b"v"
    with pytest.raises(ValueError, match=f"maximum .* {top} bytes"):
        db.put(b"k" * (top + 1), b"v")
    assert db.stats()["entries"] == 1


def test_large_values_use_overflow_pages(db):
    big = os.urandom(64 * 1024 * 1024)
    db.put(b"big", big)
    db.put(b"medium", b"m" * 5000)
    assert db.get(b"big") == big
    assert db.get(b"medium") == b"m" * 5000
    db.put(b"big", b"small now")
    assert db.get(b"big") == b"small now"
    # the 64 MiB extent was freed and is reused, not leaked
    stats = db.stats()
    assert stats["pages_free"] + stats["pages_pending"] >= 64 * 1024 * 1024 // 4096


def test_scan_range_and_prefix(db):
    for k in [b"a", b"b/1", b"b/2", b"b0", b"c", b"b"]:
        db.put(k, k.upper())
    assert [k for k, _ in db.scan(b"b", b"c")] == [b"b", b"b/1", b"b/2", b"b0"]
    assert [k for k, _ in db.scan(b"b/")] == [b"b/1", b"b/2"]
    assert [k for k, _ in db.scan_prefix(b"b")] == [b"b", b"b/1", b"b/2", b"b0"]
    assert [k for k, _ in db.scan(b"")] == [b"a", b"b", b"b/1", b"b/2", b"b0", b"c"]
    assert [k for k, _ in db.scan(b"b", b"c", reverse=True)] == [b"b0", b"b/2", b"b/1", b"b"]
    assert list(db.scan(b"c", b"a")) == []
    assert dict(db.scan(b"a", b"b")) == {b"a": b"A"}


def test_scan_prefix_of_ff_bytes(db):
    db.put(b"\xff\xff", b"1")
    db.put(b"\xff\xff\x00", b"2")
    db.put(b"\xfe", b"0")
    assert [k for k, _ in db.scan(b"\xff")] == [b"\xff\xff", b"\xff\xff\x00"]


def test_scan_reads_one_snapshot(db):
    for i in range(100):
        db.put(b"k%03d" % i, b"old")
    it = db.scan(b"k")
    first = next(it)
    for i in range(100):
        db.put(b"k%03d" % i, b"new")
    db.put(b"k500", b"new")
    rest = list(it)
    assert first == (b"k000", b"old")
    assert len(rest) == 99 and all(v == b"old" for _, v in rest)


def test_huge_scan_keeps_memory_flat(db):
    import tracemalloc

    with db.transaction() as t:
        for i in range(50_000):
            t.put(b"%08d" % i, b"x" * 50)
    tracemalloc.start()
    n = 0
    for _ in db.scan(b""):
        n += 1
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 50_000
    assert peak < 1_000_000, peak


def test_path_api(db):
    db.put_path("users/alice/email", b"alice@example.com")
    db.put_path("users/alice/age", b"30")
    db.put_path("users/alice/settings/theme", b"dark")
    db.put_path("users/bob", b"bob")
    db.put_path("users-old/x", b"x")
    assert db.get_path("users/alice/email") == b"alice@example.com"
    assert db.get(b"users/alice/age") == b"30"  # the same key space
    assert db.list_path("users") == ["alice", "bob"]
    assert db.list_path("users/alice") == ["age", "email", "settings"]
    assert db.list_path() == ["users", "users-old"]
    assert list(db.scan_path("users/alice")) == [
        ("users/alice/age", b"30"),
        ("users/alice/email", b"alice@example.com"),
        ("users/alice/settings/theme", b"dark"),
    ]
    assert db.delete_path("users/alice/age") is True
    assert db.get_path("users/alice/age") is None
    for bad in ["", "/a", "a/", "a//b"]:
        with pytest.raises(ValueError, match="invalid path"):
            db.put_path(bad, b"v")
    with pytest.raises(TypeError, match="path must be a str"):
        db.put_path(b"users/x", b"v")


def test_close_is_idempotent_and_use_after_close_is_clear(db_path):
    db = Database.open(db_path)
    db.put(b"k", b"v")
    db.close()
    db.close()
    assert db.closed
    for call in (
        lambda: db.get(b"k"),
        lambda: db.put(b"k", b"v"),
        lambda: db.scan(b""),
        lambda: db.begin_transaction(),
        lambda: db.stats(),
        lambda: db.check(),
    ):
        with pytest.raises(toondb.ClosedError, match="closed"):
            call()


def test_context_manager_closes(db_path):
    with Database.open(db_path) as db:
        db.put(b"k", b"v")
    assert db.closed
    with Database.open(db_path) as db:
        assert db.get(b"k") == b"v"


def test_one_page_file_and_a_lock_file(db_path):
    with Database.open(db_path) as db:
        db.put(b"k", b"v")
    assert sorted(os.listdir(db_path)) == ["toondb.data", "toondb.lock"]


def test_create_if_missing_false(tmp_path):
    with pytest.raises(FileNotFoundError, match="create_if_missing"):
        Database.open(tmp_path / "absent", {"create_if_missing": False})
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize(
    "config, message",
    [
        ({"sync_mod": "full"}, "unknown config key 'sync_mod'.*sync_mode"),
        ({"sync_mode": "fast"}, "'sync_mode' must be"),
        ({"page_size": 3000}, "'page_size' must be a power of two"),
        ({"create_if_missing": 1}, "'create_if_missing' must be True or False"),
        ({"memtable_size_bytes": -1}, "'memtable_size_bytes' must be an integer"),
        ({"wal_enabled": False}, "'wal_enabled' cannot be False"),
        ({"lock_timeout": "5"}, "'lock_timeout' must be a number"),
    ],
)
def test_bad_config_is_value_error_naming_the_key(tmp_path, config, message):
    with pytest.raises(ValueError, match=message):
        Database.open(tmp_path / "db", config)
    assert not (tmp_path / "db").exists()


def test_page_size_is_fixed_at_creation(db_path):
    with Database.open(db_path, {"page_size": 1024}) as db:
        assert db.page_size == 1024
        db.put(b"k", b"v")
    with Database.open(db_path) as db:
        assert db.page_size == 1024
    with pytest.raises(ValueError, match="1024-byte pages"):
        Database.open(db_path, {"page_size": 4096})


def test_stats(db):
    with db.transaction() as t:
        for i in range(5000):
            t.put(b"%06d" % i, b"v" * 50)
    s = db.stats()
    assert s["entries"] == 5000
    assert s["depth"] >= 2
    assert s["pages"] == s["pages_used"] + s["pages_free"] + s["pages_pending"]
    assert s["file_size"] >= s["pages"] * s["page_size"]
    assert s["last_txn_id"] >= 2
    assert s["readers"] == 0 and s["oldest_reader_txn_id"] is None
    it = db.scan(b"")
    next(it)
    s2 = db.stats()
    assert s2["readers"] == 1 and s2["oldest_reader_txn_id"] == s["last_txn_id"]
    del it


def test_read_only_open(db_path):
    with Database.open(db_path) as db:
        db.put(b"k", b"v")
    with Database.open(db_path, read_only=True) as ro:
        assert ro.get(b"k") == b"v"
        with pytest.raises(toondb.ReadOnlyError, match="read-only"):
            ro.put(b"k", b"w")
        with pytest.raises(toondb.ReadOnlyError):
            ro.begin_transaction()
        assert ro.get(b"k") == b"v"


def test_not_a_database(tmp_path):
    f = tmp_path / "junk.hnsw"
    f.write_bytes(os.urandom(10000))
    with pytest.raises(toondb.CorruptionError, match="not a toondb database"):
        Database.open(f)


@pytest.mark.parametrize("content", [b"", b"a,b\n1,2\n", b"x,y\n" * 5000])
def test_a_file_that_is_not_a_database_is_refused_before_anything_is_created(tmp_path, content):
    f = tmp_path / "t.csv"
    f.write_bytes(content)
    for read_only in (False, True):
        with pytest.raises(toondb.errors.NotADatabaseError, match="not a toondb database"):
            Database.open(f, read_only=read_only)
    d = tmp_path / "dir"
    d.mkdir()
    (d / "toondb.data").write_bytes(content)
    with pytest.raises(toondb.errors.NotADatabaseError):
        Database.open(d)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "t.csv"]
    assert [p.name for p in d.iterdir()] == ["toondb.data"]
    assert f.read_bytes() == content


def test_opening_a_page_file_directly(db_path, tmp_path):
    with Database.open(db_path) as db:
        db.put(b"k", b"v")
    with Database.open(db_path / "toondb.data") as direct:
        assert direct.get(b"k") == b"v"


def test_file_does_not_grow_under_steady_updates(tmp_path):
    """Rewriting the same 10k keys 100 times keeps the file within 2x of its size
    after the first round (pages freed by copy-on-write are reused)."""
    import random

    rnd = random.Random(7)
    order = list(range(10_000))
    with Database.open(tmp_path / "db") as db:
        first = None
        for r in range(100):
            rnd.shuffle(order)
            with db.transaction() as t:
                for i in order:
                    t.put(b"key%05d" % i, b"%02d" % r * 50)
            if first is None:
                first = db.stats()["file_size"]
        # two copies of the tree (copy-on-write), plus the freelist's own pages
        assert db.stats()["file_size"] <= 2 * first + 8 * db.page_size, (first, db.stats())
        db.check()


def test_file_does_not_grow_under_autocommit_updates(tmp_path):
    """Autocommit rewrites reach a steady size: live pages, the copy being
    written, and (sync_mode="normal") the durable snapshot's pinned pages."""
    with Database.open(tmp_path / "db") as db:
        with db.transaction() as t:
            for i in range(2000):
                t.put(b"key%05d" % i, b"v" * 60)
        first = db.stats()["file_size"]
        sizes = []
        for r in range(30):
            for i in range(r % 3, 2000, 3):
                db.put(b"key%05d" % i, b"%02d" % r * 30)
            if r % 5 == 4:
                db.checkpoint()  # a sync point, as sync_interval would make
            sizes.append(db.stats()["file_size"])
        assert max(sizes) <= 2.5 * first, (first, sizes)
        assert sizes[-1] <= sizes[9] + 4 * db.page_size, (first, sizes)


def test_guide_quick_start(tmp_path, capsys, monkeypatch):
    import runpy

    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(ROOT / "examples" / "quickstart.py"))
    assert capsys.readouterr().out == '{"name":"Alice","age":30}\n'


def test_a_database_larger_than_the_memory_spent_on_it(tmp_path):
    """Opening reads nothing: pages come through the mapping on demand, so a
    process that opens a 256 MiB database and reads a few values stays small."""
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "big"
    chunk = os.urandom(128 * 1024)
    with Database.open(path) as db:
        for t in range(8):
            with db.transaction() as txn:
                for i in range(256):
                    txn.put(b"blob:%02d:%03d" % (t, i), chunk[i:] + chunk[:i])
    assert os.path.getsize(path / "toondb.data") > 256 * 1024 * 1024
    code = textwrap.dedent(
        f"""
        import toondb
        def rss():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        before = rss()
        with toondb.Database.open({str(path)!r}) as db:
            for t in range(8):
                assert len(db.get(b"blob:%02d:%03d" % (t, 7 * t))) == 128 * 1024
            print(rss() - before)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grown = int(out.stdout)
    assert grown < 32 * 1024 * 1024, grown


def test_key_value_program_does_not_import_numpy_or_the_sql_grammar(tmp_path):
    """`import toondb` and key-value work stay light: NumPy and pyparsing load only
    when a vector index or SQL is first used (a CLI call or a worker starts fast)."""
    import subprocess
    import sys

    program = f"""
import sys
import toondb
with toondb.Database.open({str(tmp_path / "db")!r}) as db:
    db.put(b"k", b"v")
    assert db.get(b"k") == b"v"
    light = [m for m in ("numpy", "pyparsing", "toondb.vector", "toondb.sql.engine")
             if m in sys.modules]
    db.execute_sql("CREATE TABLE t (a INTEGER)")
    assert "pyparsing" in sys.modules and "numpy" not in sys.modules
    assert db.vector_indexes() == [] and "numpy" in sys.modules
    assert toondb.VectorIndex.__module__ == "toondb.vector.index"
print(light)
"""
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_pages_pending_for_a_reader_share_one_freelist_group(db):
    """While a reader holds an old snapshot, the pages the later commits free wait
    for it together (one group of the freelist, not one per commit: the freelist
    extent stays the size of the pages pending, however many commits there are);
    the reader still reads its snapshot, and once it ends the pages are reused."""
    for i in range(2000):
        db.put(b"k%05d" % i, b"v" * 50)
    reader = db.begin_transaction(read_only=True)
    for n in range(300):
        db.put(b"k%05d" % (n * 7 % 2000), b"w%d" % n)
    _, pending = db._freelist()
    assert len(pending) <= 3, [t for t, _ in pending]
    assert db.stats()["pages_pending"] > 10
    assert reader.get(b"k00007") == b"v" * 50
    reader.abort()
    pages = db.stats()["pages"]
    for n in range(300):
        db.put(b"k%05d" % (n * 11 % 2000), b"x%d" % n)
    assert db.stats()["pages"] == pages  # the pages the reader held were reused
    _, pending = db._freelist()
    assert len(pending) <= 2
    assert db.get(b"k00011") == b"x1"
    db.check()
