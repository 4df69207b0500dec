"""What a new user hit (issue 20): read-only commands beside another process's writer,
files that are not databases, help text, the shell's interruptions, export styles."""

from __future__ import annotations

import argparse
import time

import pytest
from lock_holder import LockHolder
from test_cli import PROMPT, Terminal, fails, ok, run

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


# ---- help text (item 7) ----------------------------------------------------------------


def _parsers(parser, name="toondb"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, sp in action.choices.items():
                yield from _parsers(sp, f"{name} {sub}")


def test_every_positional_and_flag_has_help_text():
    from toondb.cli.main import build_parser

    missing = []
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            if not (action.help or "").strip():
                missing.append(f"{name}: {action.metavar or '/'.join(action.option_strings)}")
    assert not missing, "no help text for:\n" + "\n".join(missing)


# ---- put on a terminal, Ctrl-C in the shell, jsonl export (item 7) ---------------------


@pytest.fixture
def on_terminal(tmp_path):
    made: list[Terminal] = []

    def start(args: list[str]) -> Terminal:
        t = Terminal(tmp_path / "db", tmp_path, args)
        made.append(t)
        return t

    yield start
    for t in made:
        if t.proc.poll() is None:
            t.proc.kill()
            t.proc.wait(timeout=60)


def test_put_without_a_value_on_a_terminal_says_it_reads_stdin(tmp_path, on_terminal):
    t = on_terminal(["put", str(tmp_path / "db"), "greeting"])
    t.expect(r"toondb: reading the value of 'greeting' from stdin; end it with Ctrl-D[^\n]*\n")
    t.send("hello\r")
    t.send("\x04")
    assert t.close() == 0
    with Database.open(tmp_path / "db") as db:
        assert db.get(b"greeting") == b"hello\n"


def test_put_from_a_pipe_prints_no_hint(tmp_path):
    proc = run("put", tmp_path / "db", "k", input="v")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_ctrl_c_in_a_long_shell_query_says_interrupted(tmp_path, on_terminal):
    t = on_terminal(["shell", str(tmp_path / "db")])
    t.expect(PROMPT)
    t.send(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;\r"
    )
    t.expect(r"count\(\*\) FROM c;\n")  # the line echoed: the query runs (it never ends)
    with pytest.raises(AssertionError, match="no 'toondb> \\$'"):
        t.expect(PROMPT, timeout=1)  # still running after a second
    t.send("\x03")
    out = t.expect(PROMPT, timeout=30)
    assert "Error: interrupted" in out, out
    t.send("SELECT 'still here' AS s;\r")
    assert "still here" in t.expect(PROMPT)
    t.send(".quit\r")
    assert t.close() == 0


def test_export_jsonl_is_compact_like_json(tmp_path):
    path = tmp_path / "db"
    ok("sql", path, "CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x y')")
    ok("export", path, "t", tmp_path / "t.jsonl")
    assert (tmp_path / "t.jsonl").read_text() == '{"a":1,"b":"x y"}\n'
    assert ok("sql", path, "SELECT * FROM t", "--format", "json").strip() == '[{"a":1,"b":"x y"}]'
