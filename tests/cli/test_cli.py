"""The toondb command, driven as a user drives it: one-shot commands as subprocesses
(``python -m toondb``, and the installed console script once), the shell through a
piped script and through a pseudo-terminal. Every wait has a timeout."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from toondb import Database

TIMEOUT = 120
COMMANDS = ["shell", "sql", "get", "put", "delete", "scan", "stats", "check", "backup",
            "compact", "import", "export"]  # fmt: skip


def run(*args, input=None, cwd=None, env=None, timeout=TIMEOUT, text=True):
    """python -m toondb ARGS; the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("TOONDB_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "toondb", *map(str, args)],
        input=input,
        capture_output=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
        text=text,
    )


def ok(*args, **kw):
    proc = run(*args, **kw)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def fails(*args, code=1, **kw) -> str:
    """The command must fail with code and one line on stderr, no traceback."""
    proc = run(*args, **kw)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode()
    assert "Traceback" not in err
    if code == 1:
        assert err.startswith("toondb: ") and err.count("\n") == 1, err
    return err


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    with Database.open(path) as db:
        db.execute_sql(
            "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL)"
        )
        db.execute_sql(
            "INSERT INTO products VALUES (1, 'Laptop', 999.99), (2, 'Mouse', 25.0), (3, 'Pen', NULL)"
        )
        db.put(b"products/laptop", b'{"name":"Laptop","price":999}')
        db.put(b"products/mouse", b'{"name":"Mouse","price":25}')
    return path


# ---- help, version, usage ---------------------------------------------------------------


def test_version_and_help():
    from toondb import __version__

    assert ok("--version") == f"toondb {__version__}\n"
    out = ok("--help")
    for cmd in COMMANDS:
        assert re.search(rf"^\s+{cmd}\s", out, re.M), cmd


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd):
    out = ok(cmd, "--help")
    assert out.startswith(f"usage: toondb {cmd} ")
    assert "PATH" in out


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["bogus"],
        ["get"],
        ["sql"],  # `sql db` alone reads a script from stdin (tests/cli/test_cli_script.py)
        ["sql", "db", "SELECT 1", "--format", "xml"],
        ["scan", "db", "--limit", "-3"],
        ["scan", "db", "--limit", "many"],
    ],
)
def test_usage_errors_exit_2(args, tmp_path):
    err = fails(*args, code=2, cwd=tmp_path)
    assert "usage: toondb" in err


def test_installed_console_script(shop):
    bindir = os.path.dirname(sys.executable)
    exe = shutil.which("toondb", path=bindir + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("the toondb console script is not installed (pip install -e .)")
    proc = subprocess.run(
        [exe, "sql", str(shop), "SELECT name FROM products WHERE id = 2", "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "name\nMouse\n", "")


# ---- sql -------------------------------------------------------------------------------


def test_sql_table_is_the_default(shop):
    assert ok("sql", shop, "SELECT * FROM products ORDER BY id") == (
        "+----+--------+--------+\n"
        "| id | name   | price  |\n"
        "+----+--------+--------+\n"
        "|  1 | Laptop | 999.99 |\n"
        "|  2 | Mouse  |   25.0 |\n"
        "|  3 | Pen    |   NULL |\n"
        "+----+--------+--------+\n"
    )


def test_sql_formats(shop):
    q = "SELECT id, name, price FROM products WHERE id < 3 ORDER BY id"
    assert ok("sql", shop, q, "--format", "toon") == (
        "result[2]{id,name,price}:\n  1,Laptop,999.99\n  2,Mouse,25\n"
    )
    assert json.loads(ok("sql", shop, q, "--format", "json")) == [
        {"id": 1, "name": "Laptop", "price": 999.99},
        {"id": 2, "name": "Mouse", "price": 25.0},
    ]
    assert ok("sql", shop, q, "-f", "csv") == "id,name,price\n1,Laptop,999.99\n2,Mouse,25.0\n"
    assert ok("sql", shop, q, "--format", "line") == (
        "   id = 1\n name = Laptop\nprice = 999.99\n\n   id = 2\n name = Mouse\nprice = 25.0\n"
    )


def test_sql_toon_output_is_execute_sql_format_toon(shop):
    q = "SELECT name, price FROM products ORDER BY id"
    with Database.open(shop, read_only=True) as db:
        expected = db.execute_sql(q, format="toon")
    assert ok("sql", shop, q, "--format", "toon") == expected + "\n"


def test_sql_params_statements_and_wide_text(shop):
    assert ok(
        "sql", shop, "SELECT name FROM products WHERE price > ?", "-p", "100", "-f", "csv"
    ) == ("name\nLaptop\n")
    out = ok(
        "sql",
        shop,
        "INSERT INTO products (name) VALUES ('日本語'); SELECT name FROM products WHERE id = 4",
    )
    assert out == "+--------+\n| name   |\n+--------+\n| 日本語 |\n+--------+\n"
    # a statement without result columns prints nothing, or its rowcount as toon/json
    assert ok("sql", shop, "UPDATE products SET price = 1 WHERE id = 3") == ""
    assert ok("sql", shop, "DELETE FROM products WHERE id = 4", "-f", "json") == '{"rowcount":1}\n'


def test_sql_vectors_print_shortened(tmp_path):
    db = tmp_path / "db"
    ok("sql", db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v VECTOR(384), w VECTOR(2))")
    vec = "[" + ", ".join(["0.125", "-0.03"] + ["0.5"] * 382) + "]"
    ok("sql", db, f"INSERT INTO t VALUES (1, '{vec}', '[0.6, 0.8]')")
    ok("sql", db, "CREATE INDEX tv ON t USING hnsw (v) WITH (metric = 'l2')")
    assert ok("sql", db, "SELECT id, v, w FROM t") == (
        "+----+-----------------------------+--------------+\n"
        "| id | v                           | w            |\n"
        "+----+-----------------------------+--------------+\n"
        "|  1 | [0.12, -0.03, ... 384 dims] | [0.60, 0.80] |\n"
        "+----+-----------------------------+--------------+\n"
    )
    assert ok("sql", db, "SELECT w FROM t", "-f", "csv") == 'w\n"[0.6,0.8]"\n'
    assert json.loads(ok("sql", db, "SELECT w FROM t", "-f", "json")) == [{"w": [0.6, 0.8]}]
    out = run("shell", db, input="SELECT id, vec_distance_l2(v, v) AS d, v FROM t;\n").stdout
    assert "[0.12, -0.03, ... 384 dims]" in out


def test_sql_creates_a_missing_database(tmp_path):
    ok("sql", tmp_path / "new", "CREATE TABLE t (a)")
    assert (tmp_path / "new" / "toondb.data").exists()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELEC 1", "syntax error"),
        ("SELECT * FROM nope", "no such table: nope"),
        ("INSERT INTO products (id, name) VALUES (1, 'dup')", "UNIQUE"),
        ("", "no SQL statement"),
    ],
)
def test_sql_errors_are_one_line(shop, sql, message):
    assert message.lower() in fails("sql", shop, sql).lower()


# ---- key-value commands ----------------------------------------------------------------


def test_get_put_delete(tmp_path):
    db = tmp_path / "kv"
    ok("put", db, "greeting", "hello world")
    assert ok("get", db, "greeting") == "hello world\n"
    # a value from stdin, bytes exactly
    blob = bytes(range(256)) * 3
    proc = run("put", db, "blob", input=blob, text=False)
    assert proc.returncode == 0, proc.stderr
    proc = run("get", db, "blob", "-n", text=False)
    assert (proc.returncode, proc.stdout) == (0, blob)
    ok("put", db, "k2", "-", input="from stdin")
    assert ok("get", db, "k2") == "from stdin\n"
    ok("delete", db, "greeting")
    assert "key not found: greeting" in fails("get", db, "greeting")
    assert "key not found: greeting" in fails("delete", db, "greeting")
    assert "empty" in fails("put", db, "", "x")


def test_scan(tmp_path):
    db = tmp_path / "kv"
    with Database.open(db) as d:
        d.put(b"a/1", b"one")
        d.put(b"a/2", b"two\nlines\tand\\tab")
        d.put(b"a/3", b"\xff\x00bin")
        d.put(b"b/1", b"other")
    assert ok("scan", db, "a/") == "a/1\tone\na/2\ttwo\\nlines\\tand\\tab\na/3\t\\xff\\x00bin\n"
    assert ok("scan", db, "a/", "--limit", "2", "--keys-only") == "a/1\na/2\n"
    assert ok("scan", db).count("\n") == 4
    assert ok("scan", db, "zzz") == ""


def test_scan_into_a_closed_pipe_is_quiet(tmp_path):
    db = tmp_path / "kv"
    with Database.open(db) as d, d.transaction() as t:
        for i in range(50_000):
            t.put(b"k%06d" % i, b"v" * 50)
    proc = subprocess.run(
        f"{sys.executable} -m toondb scan {db} | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.stdout == "k000000\t" + "v" * 50 + "\n"
    assert proc.stderr == ""


@pytest.mark.parametrize("cmd", ["get", "scan", "stats", "check", "delete", "export", "compact"])
def test_a_missing_database_is_one_line(tmp_path, cmd):
    extra = {"get": ["k"], "delete": ["k"], "export": ["t", "out.csv"]}.get(cmd, [])
    err = fails(cmd, tmp_path / "nope", *extra, cwd=tmp_path)
    assert "no toondb database" in err
    assert not (tmp_path / "nope").exists()


def test_not_a_database_is_one_line(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello" * 2000)
    assert "not a toondb database" in fails("stats", junk, code=2)


# ---- stats and check -------------------------------------------------------------------


def test_stats(shop):
    out = ok("stats", shop)
    assert re.search(r"^entries\s+2$", out, re.M)
    stats = json.loads(ok("stats", shop, "--json"))
    assert stats["entries"] == 2 and stats["page_size"] == 4096


def test_check_ok(shop):
    assert ok("check", shop).startswith("ok: pages ")


@pytest.mark.damages_files
def test_check_names_the_damaged_pages(tmp_path):
    path = tmp_path / "db"
    with Database.open(path) as db, db.transaction() as t:
        for i in range(3000):
            t.put(b"k%05d" % i, b"v" * 100)
    data = path / "toondb.data"
    size = data.stat().st_size
    victim = size // 4096 // 2  # a page in the middle of the file
    with open(data, "r+b") as f:
        f.seek(victim * 4096 + 200)
        f.write(b"\xde\xad\xbe\xef" * 8)
    proc = run("check", path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"toondb: {path} is damaged (")
    assert re.search(rf"page {victim}\b", proc.stderr), proc.stderr
    assert proc.stdout == ""


# ---- backup ----------------------------------------------------------------------------

WRITER = r"""
import sys
from toondb import Database
db = Database.open(sys.argv[1])
print("ready", flush=True)
i = 0
while i < 200000 and not sys.stdin.closed:
    with db.transaction() as t:
        for j in range(20):
            t.put(b"k%08d" % (i + j), b"x" * 100)
        t.put(b"count", b"%d" % (i + 20))
        t.execute_sql("INSERT INTO log (n) VALUES (?)", [i + 20])
    i += 20
    if i == 2000:
        print("written", flush=True)
    import select
    if select.select([sys.stdin], [], [], 0)[0]:
        break
db.close()
"""


def test_backup_is_consistent_while_a_writer_commits(tmp_path):
    src = tmp_path / "src"
    with Database.open(src) as db:
        db.execute_sql("CREATE TABLE log (n INTEGER)")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(src)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for want in ("ready", "written"):
            ready, _, _ = select.select([writer.stdout], [], [], TIMEOUT)
            assert ready, f"the writer did not print {want!r}"
            assert writer.stdout.readline().strip() == want
        out = ok("backup", src, tmp_path / "copy")
        assert "written to" in out
    finally:
        try:  # the writer may already have finished its 200000 keys and exited
            writer.stdin.write("stop\n")
            writer.stdin.close()
        except BrokenPipeError:
            pass
        writer.wait(timeout=TIMEOUT)
    assert writer.returncode == 0
    with Database.open(tmp_path / "copy") as copy:
        copy.check()
        n = int(copy.get(b"count"))
        assert n >= 2000
        keys = sum(1 for k, _ in copy.scan(b"k"))
        assert keys == n  # every commit whole, or not at all
        assert copy.execute_sql("SELECT max(n) AS m, count(*) AS c FROM log")[0] == {
            "m": n,
            "c": n // 20,
        }
    with Database.open(src) as db:
        assert int(db.get(b"count")) >= n


def test_backup_refuses_an_existing_destination(shop, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    assert "already exists" in fails("backup", shop, tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    ok("backup", shop, tmp_path / "empty")
    assert (
        ok("sql", tmp_path / "empty", "SELECT count(*) AS n FROM products", "-f", "csv") == "n\n3\n"
    )
    assert "no directory" in fails("backup", shop, tmp_path / "a" / "b")
    assert not list(tmp_path.glob(".toondb-backup-*"))


# ---- compact ---------------------------------------------------------------------------

HOLDER = r"""
import sys
from toondb import Database
db = Database.open(sys.argv[1])
print("open", flush=True)
sys.stdin.read()
db.close()
"""


def _fill_and_thin(path: Path) -> dict[bytes, bytes]:
    with Database.open(path) as db:
        db.execute_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        db.execute_sql("INSERT INTO t (v) VALUES (?)", [["a"], ["b"], ["c"]])
        with db.transaction() as t:
            for i in range(20_000):
                t.put(b"k%06d" % i, b"v" * 200)
        with db.transaction() as t:
            for i in range(20_000):
                if i % 20:
                    t.delete(b"k%06d" % i)
        db.put(b"after", b"the deletes")
        return dict(db.scan(b""))


@pytest.mark.parametrize("as_file", [False, True])
def test_compact_shrinks_and_keeps_everything(tmp_path, as_file):
    path = tmp_path / "db"
    kept = _fill_and_thin(path)
    data = path / "toondb.data"
    target = data if as_file else path
    before = data.stat().st_size
    out = ok("compact", target)
    assert out.startswith(f"compacted {target}: {before} -> ")
    after = data.stat().st_size
    assert after < before / 4
    with Database.open(path) as db:
        db.check()
        assert dict(db.scan(b"")) == kept
        assert [r["v"] for r in db.execute_sql("SELECT v FROM t ORDER BY id")] == ["a", "b", "c"]
        assert db.stats()["pages_free"] == 0
        db.put(b"new", b"write after compact")  # still a working database
    assert not list(path.glob(".toondb-compact-*"))


@pytest.mark.parametrize(("held", "named"), [("dir", "dir"), ("dir", "file"), ("file", "dir")])
def test_compact_refuses_while_another_process_has_it_open(tmp_path, held, named):
    """Refused whichever name (the directory, or its page file) either side uses."""
    path = tmp_path / "db"
    kept = _fill_and_thin(path)
    data = path / "toondb.data"
    before = (path / "toondb.data").stat()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path if held == "dir" else data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([holder.stdout], [], [], TIMEOUT)
        assert ready and holder.stdout.readline() == b"open\n"
        err = fails("compact", path if named == "dir" else data)
        assert "open in another process" in err
        after = (path / "toondb.data").stat()
        assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    finally:
        holder.stdin.close()
        holder.wait(timeout=TIMEOUT)
    ok("compact", path)  # and once it is closed, compact goes ahead
    with Database.open(path) as db:
        assert dict(db.scan(b"")) == kept


def test_an_open_waits_for_compact_and_sees_the_new_file(tmp_path):
    """A process that opens the database while compact runs waits for it, then opens
    the compacted file (not the old one, whose pages compact threw away)."""
    path = tmp_path / "db"
    kept = _fill_and_thin(path)
    compact = subprocess.Popen(
        [sys.executable, "-m", "toondb", "compact", str(path), "--pause", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + TIMEOUT
    while not list(path.glob(".toondb-compact-*")):  # compact holds its locks now
        assert compact.poll() is None, compact.communicate()
        assert time.monotonic() < deadline, "compact did not start"
        time.sleep(0.01)
    opener = (
        "import sys\nfrom toondb import Database\n"
        "with Database.open(sys.argv[1]) as db:\n"
        "    db.put(b'late', b'writer')\n"
    )
    late = subprocess.Popen(
        [sys.executable, "-c", opener, str(path)], stdout=subprocess.PIPE, text=True
    )
    out, err = compact.communicate(timeout=TIMEOUT)
    assert compact.returncode == 0, err
    late.communicate(timeout=TIMEOUT)
    assert late.returncode == 0
    # had the late process opened the old page file, its write would be lost with it
    with Database.open(path) as db:
        db.check()
        assert db.get(b"late") == b"writer"
        assert {k: v for k, v in db.scan(b"") if k != b"late"} == kept


# ---- import / export -------------------------------------------------------------------


def test_export_import_round_trip(shop, tmp_path):
    for fmt in ("csv", "jsonl"):
        f = tmp_path / f"products.{fmt}"
        run_out = run("export", shop, "products", f)
        assert run_out.returncode == 0 and "exported 3 rows" in run_out.stderr
        other = tmp_path / f"other_{fmt}"
        ok("sql", other, "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        assert ok("import", other, "products", f) == "imported 3 rows into products\n"
        q = "SELECT * FROM products ORDER BY id"
        assert ok("sql", other, q, "-f", "json") == ok("sql", shop, q, "-f", "json")
    assert ok("export", shop, "products", "-", "--format", "jsonl").splitlines()[0] == (
        '{"id":1,"name":"Laptop","price":999.99}'
    )


def test_import_creates_a_table_with_inferred_types(tmp_path):
    csv_file = tmp_path / "people.csv"
    csv_file.write_text('name,age,score,note\nAda,36,1.5,"likes, commas"\nBob,,2,\n')
    db = tmp_path / "db"
    ok("import", db, "people", csv_file)
    assert json.loads(ok("sql", db, "SELECT * FROM people", "-f", "json")) == [
        {"name": "Ada", "age": 36, "score": 1.5, "note": "likes, commas"},
        {"name": "Bob", "age": None, "score": 2.0, "note": ""},
    ]
    jl = tmp_path / "events.jsonl"
    jl.write_text('{"id": 1, "tags": ["a"], "ok": true}\n\n{"id": 2, "ok": false, "extra": null}\n')
    ok("import", db, "events", jl)
    assert json.loads(ok("sql", db, "SELECT * FROM events ORDER BY id", "-f", "json")) == [
        {"id": 1, "tags": '["a"]', "ok": 1, "extra": None},
        {"id": 2, "tags": None, "ok": 0, "extra": None},
    ]


def test_import_is_all_or_nothing_and_names_the_line(shop, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 10, "name": "A"}\n{"id": 11, "name": "B"}\n{"id": 12, "nam": "C"}\n')
    assert "bad.jsonl:3: 'nam' is not a column of products" in fails(
        "import", shop, "products", bad
    )
    dup = tmp_path / "dup.csv"
    dup.write_text("id,name\n20,X\n1,Duplicate\n")
    assert "unique" in fails("import", shop, "products", dup).lower()
    assert ok("sql", shop, "SELECT count(*) AS n FROM products", "-f", "csv") == "n\n3\n"
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,name\n30,X,extra\n")
    assert "ragged.csv:2: 3 fields where the header has 2" in fails(
        "import", shop, "products", ragged
    )
    notjson = tmp_path / "x.jsonl"
    notjson.write_text("{nope\n")
    assert "x.jsonl:1: not JSON" in fails("import", shop, "products", notjson)
    assert "cannot tell the format" in fails("import", shop, "products", tmp_path / "x.txt")
    assert "cannot open" in fails("import", shop, "products", tmp_path / "missing.csv")
    assert "no such table: nope" in fails("export", shop, "nope", tmp_path / "o.csv")


# ---- the shell, from a script on stdin -------------------------------------------------

SCRIPT = """\
-- a comment line
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO notes (body)
  VALUES ('first; with a semicolon'),
         ('second');
SELECT * FROM notes ORDER BY id;
.mode csv
SELECT body FROM notes; SELECT count(*) AS n FROM notes;
.mode toon
SELECT id, body FROM notes;
.put "user/1" "{\\"name\\": \\"Ada\\"}"
.get user/1
.scan user/
.tables
.schema notes
.indexes
.mode line
SELECT 1 AS one
"""


def test_shell_reads_a_script_on_stdin(tmp_path):
    out = ok("shell", tmp_path / "db", input=SCRIPT)
    lines = out.splitlines()
    assert lines[:6] == [
        "+----+-------------------------+",
        "| id | body                    |",
        "+----+-------------------------+",
        "|  1 | first; with a semicolon |",
        "|  2 | second                  |",
        "+----+-------------------------+",
    ]
    rest = "\n".join(lines[6:]) + "\n"
    assert rest == (
        "body\nfirst; with a semicolon\nsecond\n"
        "n\n2\n"
        "result[2]{id,body}:\n  1,first; with a semicolon\n  2,second\n"
        '{"name": "Ada"}\n'
        'user/1\t{"name": "Ada"}\n'
        "notes\n"
        "CREATE TABLE notes (\n  id INTEGER PRIMARY KEY,\n  body TEXT\n);\n"
        "one = 1\n"
    )


def test_shell_script_errors_go_on_and_fail_the_exit_status(tmp_path):
    script = "SELEC 1;\n.nope\n.get missing\nSELECT 2 AS two;\n"
    proc = run("shell", tmp_path / "db", input=script)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stdout == "+-----+\n| two |\n+-----+\n|   2 |\n+-----+\n"
    assert "Error: near 'SELEC'" in proc.stderr
    assert "Error: unknown command .nope" in proc.stderr
    assert "Error: key not found: missing" in proc.stderr
    proc = run("shell", tmp_path / "db", "--bail", input=script)
    assert proc.returncode == 1 and proc.stdout == ""


def test_shell_key_value_commands_join_an_open_transaction(tmp_path):
    script = "BEGIN;\n.put a 1\n.get a\nROLLBACK;\n.get a\nBEGIN;\n.put b 2\nCOMMIT;\n.get b\n"
    proc = run("shell", tmp_path / "db", input=script)
    assert proc.stdout == "1\n2\n"
    assert "Error: key not found: a" in proc.stderr
    # a transaction left open at the end is rolled back, with a warning
    proc = run("shell", tmp_path / "db", input="BEGIN;\n.put c 3\n")
    assert proc.returncode == 0 and "rolled back" in proc.stderr
    assert "key not found" in fails("get", tmp_path / "db", "c")


def test_shell_schema_round_trips(tmp_path):
    ddl = (
        "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT UNIQUE NOT NULL, "
        "age INTEGER DEFAULT 18 CHECK (age > 0), name TEXT COLLATE BINARY);\n"
        'CREATE TABLE "order items" (a INTEGER, b TEXT, user_id INTEGER REFERENCES users(id) '
        "ON DELETE CASCADE, PRIMARY KEY (a, b), CONSTRAINT small CHECK (a < 100));\n"
        "CREATE INDEX ix_age ON users (age, name);\n"
        'CREATE UNIQUE INDEX ux ON "order items" (user_id);\n'
    )
    schema = ok("shell", tmp_path / "a", input=ddl + ".schema\n")
    assert 'CREATE TABLE "order items" (' in schema
    assert 'CREATE UNIQUE INDEX ux ON "order items" (user_id);' in schema
    # the schema it prints creates the same schema
    again = ok("shell", tmp_path / "b", input=schema + ".schema\n")
    assert again == schema
    indexes = ok("shell", tmp_path / "a", input=".indexes users\n")
    assert "ix_age  ON users (age, name)" in indexes


# ---- the shell, on a terminal ----------------------------------------------------------


def _controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # started as a background job's children are, with SIGINT ignored: Ctrl-C must
    # still reach the shell (it takes the signal back itself), however CI starts us
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Terminal:
    """toondb shell (or the command args) on a pseudo-terminal: stdin is a tty, so it
    prompts and edits lines."""

    def __init__(self, db: Path, home: Path, args: list[str] | None = None) -> None:
        master, slave = pty.openpty()
        env = {
            **os.environ,
            "TERM": "dumb",
            "INPUTRC": os.devnull,
            "HOME": str(home),
            "TOONDB_HISTORY": str(home / "history"),
        }
        env.pop("TOONDB_DEBUG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "toondb", *(args or ["shell", str(db)])],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=_controlling_terminal,  # so Ctrl-C is a SIGINT, as in a real terminal
        )
        os.close(slave)
        self.fd = master
        self.seen = ""

    def expect(self, pattern: str, timeout: float = 60) -> str:
        """Read until pattern (a regex) appears; return everything read up to its end."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.seen)
            if m:
                upto, self.seen = self.seen[: m.end()], self.seen[m.end() :]
                return upto
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {timeout} s; got {self.seen!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the other side closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the shell exited before {pattern!r}; got {self.seen!r}")
                self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=60)
            os.close(self.fd)


@pytest.fixture
def terminal(tmp_path):
    made: list[Terminal] = []

    def start(db: Path | None = None) -> Terminal:
        t = Terminal(db or tmp_path / "db", tmp_path)
        made.append(t)
        return t

    yield start
    for t in made:
        if t.proc.poll() is None:
            os.killpg(t.proc.pid, signal.SIGKILL)
            t.proc.wait(timeout=60)


PROMPT = r"toondb> $"


def test_shell_on_a_terminal(terminal, tmp_path):
    t = terminal()
    t.expect(r"Enter SQL ending with ';'")
    t.expect(PROMPT)
    t.send("CREATE TABLE t (a INTEGER);\r")
    t.expect(PROMPT)
    t.send("INSERT INTO t VALUES (1), (22);\r")
    t.expect(PROMPT)
    # a statement over several lines: the continuation prompt, then the aligned table
    t.send("SELECT a\r")
    t.expect(r"\.\.\.> $")
    t.send("FROM t ORDER BY a;\r")
    out = t.expect(PROMPT)
    assert "+----+\n| a  |\n+----+\n|  1 |\n| 22 |\n+----+\n" in out
    # Ctrl-P recalls the whole statement (one history entry), Enter runs it again
    t.send("\x10\r")
    out = t.expect(PROMPT)
    assert "SELECT a FROM t ORDER BY a;" in out
    assert "|  1 |\n| 22 |" in out
    # errors are reported and the shell goes on
    t.send("SELEC 1;\r")
    out = t.expect(PROMPT)
    assert "Error: near 'SELEC'" in out and "Traceback" not in out
    # Ctrl-C drops a half-typed statement
    t.send("SELECT\r")
    t.expect(r"\.\.\.> $")
    time.sleep(0.5)  # let readline reach its select(): CPython only sees a SIGINT there
    t.send("\x03")
    try:
        out = t.expect(PROMPT, timeout=15)
    except AssertionError:
        t.send("\x03")  # a SIGINT that landed just before the select() waits for input
        out = t.expect(PROMPT)
    assert "^C" in out
    t.send("SELECT 'fresh' AS s;\r")  # the dropped "SELECT" is not part of it
    assert "| fresh |" in t.expect(PROMPT)
    t.send(".mode toon\r")
    t.expect(PROMPT)
    t.send("SELECT count(*) AS n FROM t;\r")
    assert "result[1]{n}:\n  2" in t.expect(PROMPT)
    t.send(".timer on\r")
    t.expect(PROMPT)
    t.send("SELECT 1 AS x;\r")
    assert re.search(r"Run Time: \d+\.\d+ s", t.expect(PROMPT))
    t.send(".quit\r")
    assert t.close() == 0
    history = (tmp_path / "history").read_text()
    assert "SELECT a FROM t ORDER BY a;" in history
    assert ".mode toon" in history


def test_shell_history_survives_the_session_and_ctrl_d_leaves(terminal):
    t = terminal()
    t.expect(PROMPT)
    t.send("SELECT 40 + 2 AS answer;\r")
    assert "|     42 |" in t.expect(PROMPT)
    t.send("\x04")  # Ctrl-D on an empty line
    assert t.close() == 0
    t = terminal()
    t.expect(PROMPT)
    t.send("\x10\r")  # the previous session's statement
    out = t.expect(PROMPT)
    assert "SELECT 40 + 2 AS answer;" in out and "|     42 |" in out
    t.send(".help\r")
    assert ".scan [PREFIX] [LIMIT]" in t.expect(PROMPT)
    t.send(".exit\r")
    assert t.close() == 0
