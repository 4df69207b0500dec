"""What a new user hit (issue 20): read-only commands beside another process's writer,
files that are not databases, help text, the shell's interruptions, export styles."""

from __future__ import annotations

import time

import pytest
from lock_holder import LockHolder
from test_cli import fails, ok, run

from toondb import Database


@pytest.fixture
def locked_db(tmp_path):
    """A database with a table, whose write lock another process holds."""
    path = tmp_path / "db"
    with Database.open(path) as db:
        db.execute_sql("CREATE TABLE t (a INTEGER)")
        db.execute_sql("INSERT INTO t VALUES (7)")
    holder = LockHolder(path)
    yield path
    holder.stop()


def test_sql_with_a_select_does_not_wait_for_a_writer(locked_db):
    start = time.monotonic()
    assert "7" in ok("sql", locked_db, "SELECT a FROM t")
    assert time.monotonic() - start < 8  # close used to wait lock_timeout = 10 s


def test_shell_with_a_select_does_not_wait_for_a_writer(locked_db):
    start = time.monotonic()
    out = ok("shell", locked_db, input="SELECT a FROM t;\n")
    assert "7" in out
    assert time.monotonic() - start < 8


# ---- a file that is not a database (item 5) --------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["check", "t.csv"],
        ["sql", "t.csv", "SELECT 1"],
        ["index", "query", "t.csv", "1,2"],
        ["index", "info", "t.csv"],
        ["stats", "t.csv"],
        ["shell", "t.csv"],
        ["put", "t.csv", "k", "v"],
    ],
)
def test_a_csv_is_not_a_database_and_nothing_is_created(tmp_path, args):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    err = fails(*args, code=2, cwd=tmp_path, input="")
    assert err == "toondb: t.csv is not a toondb database (neither meta page has toondb's header)\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


# ---- compact never grows the file (item 6) ---------------------------------------------


def test_compact_of_a_compact_file_says_so_and_leaves_it(tmp_path):
    path = tmp_path / "db"
    with Database.open(path) as db:
        db.put(b"k", b"v")
    ok("compact", path)
    data = path / "toondb.data"
    before, inode = data.read_bytes(), data.stat().st_ino
    out = ok("compact", path)
    assert out.startswith(f"{path} is already compact: {len(before)} bytes"), out
    assert out.endswith("left unchanged\n")
    assert data.read_bytes() == before and data.stat().st_ino == inode
