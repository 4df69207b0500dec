"""Scripts through the CLI: ``toondb sql DB < dump.sql`` (what ``sqlite3 DB .dump``
prints), the shell's ``.read FILE``, and ``toondb export --format sql`` whose output
sqlite3 and toondb both load back."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from toondb import Database

SOURCE = """
CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, photo BLOB, score REAL);
CREATE INDEX people_name ON people(name);
INSERT INTO people VALUES (1, 'it''s; Ann', X'00FF', 1.5), (2, '日本', NULL, NULL);
INSERT INTO people VALUES (3, 'x', X'', -2.5e-7);
"""


def toondb(*args, input=None):
    return subprocess.run(
        [sys.executable, "-m", "toondb", *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _sqlite_dump(tmp_path):
    src = sqlite3.connect(tmp_path / "src.db")
    src.executescript(SOURCE)
    src.commit()
    return "\n".join(src.iterdump()) + "\n", src


def test_sql_reads_a_dump_on_stdin(tmp_path):
    dump, src = _sqlite_dump(tmp_path)
    proc = toondb("sql", tmp_path / "db", input=dump)
    assert proc.returncode == 0, proc.stderr
    with Database.open(tmp_path / "db") as db:
        sql = "SELECT * FROM people ORDER BY id"
        assert db.execute_sql(sql).rows == src.execute(sql).fetchall()


def test_sql_script_error_names_the_statement(tmp_path):
    proc = toondb(
        "sql",
        tmp_path / "db",
        input="CREATE TABLE t (a);\nINSERT INTO t VALUES (1);\nINSERT INTO nope VALUES (2);\n",
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (
        "no such table: nope" in proc.stderr
        and "statement 3" in proc.stderr
        and "line 3" in proc.stderr
    )
    with Database.open(tmp_path / "db") as db:
        assert db.execute_sql("SELECT a FROM t").rows == [(1,)]


def test_shell_read_runs_a_script(tmp_path):
    dump, src = _sqlite_dump(tmp_path)
    (tmp_path / "dump.sql").write_text(dump, encoding="utf-8")
    proc = toondb(
        "shell",
        tmp_path / "db",
        input=f".read {tmp_path / 'dump.sql'}\nSELECT count(*) FROM people;\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert "3" in proc.stdout


def test_export_sql_loads_back_in_sqlite3_and_toondb(tmp_path):
    dump, src = _sqlite_dump(tmp_path)
    assert toondb("sql", tmp_path / "db", input=dump).returncode == 0
    out = tmp_path / "people.sql"
    proc = toondb("export", tmp_path / "db", "people", out)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n") and text.endswith(
        "COMMIT;\n"
    )
    ref = sqlite3.connect(":memory:")
    ref.executescript(text)
    sql = "SELECT * FROM people ORDER BY id"
    assert ref.execute(sql).fetchall() == src.execute(sql).fetchall()
    assert ref.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall() == [
        ("people_name",)
    ]
    assert toondb("sql", tmp_path / "db2", input=text).returncode == 0
    with Database.open(tmp_path / "db2") as db:
        assert db.execute_sql(sql).rows == src.execute(sql).fetchall()
