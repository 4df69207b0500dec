"""The engine's maintenance, called directly (toondb.storage.maintenance): a backup is
a consistent copy of a database in use; compaction shrinks a page file, refuses while
the database is open anywhere, and makes openers that arrive meanwhile wait for the
compacted file. Other processes are real subprocesses; every wait has a timeout."""

from __future__ import annotations

import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from toondb import Database
from toondb.errors import DatabaseLockedError
from toondb.storage import StorageEnvironment, _btree, maintenance

TIMEOUT = 120

HOLDER = r"""
import sys
from toondb import Database
db = Database.open(sys.argv[1])
print("open", flush=True)
sys.stdin.read()
db.close()
"""


def contents(path: Path) -> tuple[dict[bytes, bytes], dict[bytes, dict[bytes, bytes]]]:
    """Every entry of the database: the key-value space, and each named tree."""
    with StorageEnvironment.open(path, {"create_if_missing": False}, read_only=True) as env:
        t = env.begin_transaction(read_only=True)
        try:
            kv = dict(t.scan(b""))
            trees = {name: dict(t.tree(name).scan()) for name in t.tree_names()}
        finally:
            t.abort()
    return kv, trees


def fill(path: Path) -> None:
    """Key-value pairs (a few in overflow pages), an SQL table with an index, and a
    named tree of the caller's own."""
    with Database.open(path) as db:
        for i in range(300):
            db.put(b"kv%04d" % i, b"v%d" % i)
        db.put(b"big", bytes(range(256)) * 200)
        db.execute_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)")
        db.execute_sql("CREATE INDEX items_qty ON items (qty)")
        for i in range(50):
            db.execute_sql("INSERT INTO items (name, qty) VALUES (?, ?)", [f"item{i}", i % 7])
        with db.transaction() as t:
            tree = t.tree(b"mine", create=True)
            for i in range(100):
                tree.put(b"t%03d" % i, b"x" * i)


def fill_and_thin(path: Path) -> None:
    """A file with many freed pages: 20,000 values written, then 19 in 20 deleted."""
    fill(path)
    with Database.open(path) as db:
        with db.transaction() as t:
            for i in range(20_000):
                t.put(b"k%06d" % i, b"v" * 200)
        with db.transaction() as t:
            for i in range(20_000):
                if i % 20:
                    t.delete(b"k%06d" % i)


def sql_rows(path: Path) -> list[dict[str, Any]]:
    with Database.open(path) as db:
        return list(db.execute_sql("SELECT id, name, qty FROM items WHERE qty >= 3 ORDER BY id"))


def hold_open(path: Path) -> subprocess.Popen:
    """A subprocess with the database open until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    ready, _, _ = select.select([holder.stdout], [], [], TIMEOUT)
    assert ready and holder.stdout.readline() == b"open\n"
    return holder


# ---- backup ----------------------------------------------------------------------------


def test_backup_equals_the_source_and_is_a_snapshot(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "copy"
    fill(src)
    want = contents(src)
    with Database.open(src) as db:  # in use while the backup runs
        counts = maintenance.backup(src, dest)
        db.put(b"later", b"not in the backup")
    assert counts["keys"] == len(want[0])
    assert counts["trees"] == len(want[1]) >= 3  # the SQL catalog, table, index; "mine"
    assert counts["entries"] == len(want[0]) + sum(map(len, want[1].values()))
    assert contents(dest) == want
    assert sql_rows(dest) == sql_rows(src)
    with Database.open(dest) as copy:
        copy.check()
        assert copy.stats()["pages_free"] == 0
    assert not list(tmp_path.glob(".toondb-backup-*"))


def test_backup_of_a_page_file_by_its_name(tmp_path):
    src = tmp_path / "src"
    fill(src)
    maintenance.backup(src / "toondb.data", tmp_path / "copy")
    assert contents(tmp_path / "copy") == contents(src)


def test_backup_refuses_an_existing_destination_and_leaves_nothing_behind(tmp_path):
    src = tmp_path / "src"
    fill(src)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="already exists"):
        maintenance.backup(src, tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    with pytest.raises(FileNotFoundError, match="no directory"):
        maintenance.backup(src, tmp_path / "a" / "b")
    with pytest.raises(FileNotFoundError):
        maintenance.backup(tmp_path / "missing", tmp_path / "c")
    (tmp_path / "empty").mkdir()
    maintenance.backup(src, tmp_path / "empty")  # an empty directory is replaced
    assert contents(tmp_path / "empty") == contents(src)
    assert not list(tmp_path.glob(".toondb-backup-*"))


def test_copy_database_refuses_a_directory_that_holds_a_database(tmp_path):
    fill(tmp_path / "src")
    with StorageEnvironment.open(tmp_path / "src") as env:
        counts = maintenance.copy_database(env, str(tmp_path / "copy"))
        assert counts["txn_id"] == env._commit_stamp()
        with pytest.raises(FileExistsError):
            maintenance.copy_database(env, str(tmp_path / "copy"))
    assert contents(tmp_path / "copy") == contents(tmp_path / "src")


# ---- compact ---------------------------------------------------------------------------


@pytest.mark.parametrize("as_file", [False, True])
def test_compact_shrinks_and_keeps_every_key(tmp_path, as_file):
    path = tmp_path / "db"
    fill_and_thin(path)
    want = contents(path)
    data = path / "toondb.data"
    before = data.stat().st_size
    counts = maintenance.compact(data if as_file else path)
    assert counts["bytes_before"] == before
    assert counts["bytes_after"] == data.stat().st_size < before / 4
    assert counts["compacted"] is True
    assert counts["keys"] == len(want[0])
    assert contents(path) == want
    with Database.open(path) as db:
        db.check()
        assert db.stats()["pages_free"] == 0
        db.put(b"new", b"after compact")  # still a working database
    assert not list(path.glob(".toondb-compact-*"))


def test_compact_never_grows_the_file(tmp_path, monkeypatch):
    """A file with no free pages: a copy written in many small commits holds free pages
    of its own and would be larger; compact leaves the file as it was."""
    path = tmp_path / "db"
    with Database.open(path) as db:
        with db.transaction() as t:
            for i in range(20_000):
                t.put(b"k%08d" % i, b"%050d" % i)
    maintenance.compact(path)  # now tight
    data = path / "toondb.data"
    before = data.read_bytes()
    inode = data.stat().st_ino
    monkeypatch.setattr(maintenance, "COPY_CHUNK", 3000)  # many commits: a looser copy
    counts = maintenance.compact(path)
    assert counts["compacted"] is False
    assert counts["bytes_rewritten"] > counts["bytes_before"] == counts["bytes_after"]
    assert data.stat().st_ino == inode and data.read_bytes() == before
    assert not list(path.glob(".toondb-compact-*"))
    with Database.open(path) as db:
        db.check()
        assert db.get(b"k%08d" % 19_999) == b"%050d" % 19_999


@pytest.mark.parametrize("named", ["dir", "file"])
def test_compact_refuses_while_another_process_has_it_open(tmp_path, named):
    path = tmp_path / "db"
    fill_and_thin(path)
    want = contents(path)
    data = path / "toondb.data"
    before = data.stat()
    holder = hold_open(path)
    try:
        with pytest.raises(DatabaseLockedError, match="open in another process"):
            maintenance.compact(path if named == "dir" else data)
        after = data.stat()
        assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    finally:
        holder.stdin.close()
        holder.wait(timeout=TIMEOUT)
    maintenance.compact(path)  # once it is closed, compaction goes ahead
    assert contents(path) == want
    assert data.stat().st_ino != before.st_ino


def test_compact_refuses_while_this_process_has_it_open(tmp_path):
    path = tmp_path / "db"
    fill(path)
    with Database.open(path):
        with pytest.raises(DatabaseLockedError):
            maintenance.compact(path)
    maintenance.compact(path)


def test_an_opener_waits_for_compaction_and_sees_the_compacted_file(tmp_path):
    path = tmp_path / "db"
    fill_and_thin(path)
    want = contents(path)
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            done["counts"] = maintenance.compact(path, pause=1.0)
        except BaseException as e:  # reported by the main thread
            done["error"] = e
        done["released"] = time.monotonic()

    compacting = threading.Thread(target=run)
    compacting.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not list(path.glob(".toondb-compact-*")):  # the locks are held now
            assert compacting.is_alive(), done
            assert time.monotonic() < deadline, "compaction did not start"
            time.sleep(0.01)
        opener = (
            "import sys, time\nfrom toondb import Database\n"
            "with Database.open(sys.argv[1]) as db:\n"
            "    print(time.monotonic(), flush=True)\n"
            "    db.put(b'late', b'writer')\n"
        )
        late = subprocess.Popen(
            [sys.executable, "-c", opener, str(path)], stdout=subprocess.PIPE, text=True
        )
        out, _ = late.communicate(timeout=TIMEOUT)
    finally:
        compacting.join(timeout=TIMEOUT)
    assert "error" not in done, done
    assert late.returncode == 0
    assert float(out) >= done["released"]  # it opened only after compaction let go
    # had the late process opened the old page file, its write would be lost with it
    kv, trees = contents(path)
    assert kv.pop(b"late") == b"writer"
    assert (kv, trees) == want


def test_exclusive_access_waits_for_openers_then_gives_up(tmp_path):
    path = tmp_path / "db"
    fill(path)
    lock = str(path / "toondb.lock")
    with _btree.exclusive_access(lock, 5.0) as held:
        assert held.held
        # a second holder finds the init byte taken, as an opener would
        with pytest.raises(DatabaseLockedError, match="kept opening"):
            _btree.exclusive_access(lock, 0.1, "the db")
    assert not held.held
    with Database.open(path) as db:  # released: opens again
        assert db.get(b"kv0001") == b"v1"
