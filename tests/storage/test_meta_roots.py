"""Meta pages record which transaction wrote each root page (M_ROOTS, invariant 2 of the
engine), so a meta page that points a tree at an intact older tree is CorruptionError,
not old data returned silently. Forgeries recompute the checksum, as a stale or
deliberately forged but whole meta page would look. Files written before the field
existed (zeros there) still open, and their next commit records it.

Also config key file_mode: the permission bits of the page and lock files."""

from __future__ import annotations

import os
import stat

import pytest
from forgery import data_file, forge_meta, page_txnid, read_meta

from toondb import CorruptionError, Database


def _two_versions(db_path, config=None) -> tuple[int, int, int]:
    """A database whose key-value root moved from an older tree, still intact in the
    file, to a newer one. Returns the older tree's (root, depth, entries)."""
    with Database.open(db_path, config) as db:
        db.put(b"k", b"old")
        old = db._state()[0]["kv"]
        db.put(b"k", b"new")  # a new root; the old root page is freed but not reused
        assert db._state()[0]["kv"][0] != old[0]
    return old


@pytest.mark.damages_files
@pytest.mark.parametrize("sync_mode", ["normal", "full"])
def test_two_forged_meta_pages_pointing_at_an_older_tree(tmp_path, sync_mode):
    db_path = tmp_path / "db"
    old = _two_versions(db_path, {"sync_mode": sync_mode})
    path = data_file(db_path)
    data = bytearray(path.read_bytes())
    newest = max(read_meta(data, s)["txnid"] for s in (0, 1))
    assert page_txnid(data, old[0]) < newest  # the old root is a whole, valid page
    for slot in (0, 1):
        forge_meta(data, slot, kv=old)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match="written by transaction"):
        with Database.open(db_path) as db:
            db.get(b"k")


@pytest.mark.damages_files
def test_one_forged_newest_meta_page_is_not_silently_skipped(tmp_path):
    db_path = tmp_path / "db"
    old = _two_versions(db_path, {"sync_mode": "full"})  # the two metas: two commits
    path = data_file(db_path)
    data = bytearray(path.read_bytes())
    newest = max((0, 1), key=lambda s: read_meta(data, s)["txnid"])
    forge_meta(data, newest, kv=old)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match=f"page {old[0]}: the meta page names"):
        Database.open(db_path)


@pytest.mark.damages_files
def test_check_reports_it_too(tmp_path):
    db_path = tmp_path / "db"
    with Database.open(db_path) as db:
        for i in range(2000):  # a tree of several levels
            db.put(b"key%05d" % i, b"v" * 50)
        old = db._state()[0]["kv"]
        with db.transaction() as txn:
            for i in range(0, 2000, 3):
                txn.put(b"key%05d" % i, b"w" * 50)
    path = data_file(db_path)
    data = bytearray(path.read_bytes())
    for slot in (0, 1):
        forge_meta(data, slot, kv=old)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError):
        with Database.open(db_path, read_only=True) as db:
            db.check()


@pytest.mark.damages_files
def test_files_without_recorded_roots_still_open_and_get_them(tmp_path):
    db_path = tmp_path / "db"
    with Database.open(db_path) as db:
        db.execute_sql("CREATE TABLE t (x)")  # a catalog root as well
        db.put(b"k", b"v")
    path = data_file(db_path)
    data = bytearray(path.read_bytes())
    for slot in (0, 1):
        assert read_meta(data, slot)["kv_root_txn"] != 0
        forge_meta(data, slot, roots=(0, 0, 0, 0))  # as toondb 0.3 wrote them
    path.write_bytes(bytes(data))
    with Database.open(db_path) as db:
        assert db.get(b"k") == b"v"
        assert db.execute_sql("SELECT count(*) FROM t").rows == [(0,)]
        db.check()
        db.put(b"k2", b"v2")
        db.checkpoint()
    data = path.read_bytes()
    newest = max((0, 1), key=lambda s: read_meta(data, s)["txnid"])
    meta = read_meta(data, newest)
    assert meta["kv_root_txn"] == page_txnid(data, meta["kv_root"]) != 0
    assert meta["cat_root_txn"] != 0


def test_recorded_roots_follow_commits_that_leave_a_tree_alone(tmp_path):
    db_path = tmp_path / "db"
    with Database.open(db_path, {"sync_mode": "full"}) as db:
        db.put(b"k", b"v")
        with db.transaction() as txn:  # writes only a named tree: the kv root stays
            txn.tree(b"named", create=True).put(b"a", b"b")
        for i in range(300):  # and many commits that each rewrite the kv tree
            db.put(b"k%03d" % i, b"x" * 100)
        for i in range(0, 300, 2):
            db.delete(b"k%03d" % i)
    data = data_file(db_path).read_bytes()
    for slot in (0, 1):
        meta = read_meta(data, slot)
        assert meta["kv_root_txn"] == page_txnid(data, meta["kv_root"])
    with Database.open(db_path) as db:
        assert db.get(b"k") == b"v" and len(list(db.scan(b"k"))) == 151


# ---- file_mode ---------------------------------------------------------------------------


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644])
def test_file_mode_applies_to_the_files_a_open_creates(tmp_path, mode):
    umask = os.umask(0o022)
    os.umask(umask)
    with Database.open(tmp_path / "db", {"file_mode": mode}) as db:
        db.put(b"k", b"v")
    for name in ("toondb.data", "toondb.lock"):
        assert _mode(tmp_path / "db" / name) == mode & ~umask
    # a page file opened by its own name: its <file>-lock
    with Database.open(tmp_path / "db" / "toondb.data", {"file_mode": mode}) as db:
        assert db.get(b"k") == b"v"
    assert _mode(tmp_path / "db" / "toondb.data-lock") == mode & ~umask
    # existing files keep their mode whatever a later open says
    with Database.open(tmp_path / "db", {"file_mode": 0o666}):
        pass
    assert _mode(tmp_path / "db" / "toondb.data") == mode & ~umask


def test_file_mode_default_and_validation(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    with Database.open(tmp_path / "db"):
        pass
    assert _mode(tmp_path / "db" / "toondb.data") == 0o644 & ~umask
    for bad in (0o1777, -1, "0600", 6.0, True):
        with pytest.raises(ValueError, match="file_mode"):
            Database.open(tmp_path / "other", {"file_mode": bad})


def test_compact_and_backup_keep_a_private_file_private(tmp_path):
    from toondb.storage.maintenance import backup, compact

    with Database.open(tmp_path / "db", {"file_mode": 0o600}) as db:
        for i in range(200):
            db.put(b"k%d" % i, b"v" * 100)
        for i in range(150):
            db.delete(b"k%d" % i)
    compact(tmp_path / "db")
    assert _mode(tmp_path / "db" / "toondb.data") == 0o600
    backup(tmp_path / "db", tmp_path / "copy")
    assert _mode(tmp_path / "copy" / "toondb.data") == 0o600
    with Database.open(tmp_path / "copy") as db:
        assert len(list(db.scan(b""))) == 50


def test_readers_racing_commits_that_reuse_root_pages_see_no_false_damage(tmp_path):
    """A commit may reuse the root page of the state a reader has just read from the
    meta page, before the reader's snapshot is published: reading again (the meta
    page changed) is right, CorruptionError would be wrong."""
    import subprocess
    import sys
    import textwrap

    db_path = tmp_path / "db"
    with Database.open(db_path, {"sync_mode": "off"}) as db:
        db.put(b"k", b"0")
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                from toondb import Database
                with Database.open({str(db_path)!r}, {{"sync_mode": "off"}}) as db:
                    for i in range(3000):
                        db.put(b"k", b"%d" % i)  # a one-leaf tree: its root, rewritten
                """
            ),
        ]
    )
    try:
        reads = 0
        with Database.open(db_path, {"sync_mode": "off"}) as db:
            while writer.poll() is None and reads < 200_000:
                assert db.get(b"k") is not None
                reads += 1
        assert writer.wait(60) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    with Database.open(db_path) as db:
        assert db.get(b"k") == b"2999"
