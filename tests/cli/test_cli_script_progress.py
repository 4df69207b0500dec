"""The progress of a long script: run_script's callback, and the CLI's bar on a
terminal (tqdm's), silent off a terminal."""

from __future__ import annotations

import io

from toondb import Database
from toondb.cli.common import PROGRESS_MIN_CHARS, script_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _script(rows: int) -> str:
    lines = ["CREATE TABLE t (i INTEGER PRIMARY KEY, s TEXT);", "BEGIN;"]
    lines += [f"INSERT INTO t VALUES ({i}, '{'x' * 40}');" for i in range(rows)]
    return "\n".join(lines + ["COMMIT;"])


def test_executescript_reports_progress_to_the_end(tmp_path):
    script = _script(2000)
    seen: list[tuple[int, int]] = []
    with Database.open(tmp_path / "db") as db:
        db.executescript(script, progress=lambda done, total: seen.append((done, total)))
        assert db.execute_sql("SELECT count(*) FROM t").rows == [(2000,)]
        with db.transaction() as txn:
            txn.executescript("SAVEPOINT a; DELETE FROM t; ROLLBACK TO a; RELEASE a;")
        assert db.execute_sql("SELECT count(*) FROM t").rows == [(2000,)]
    assert len(seen) >= 2000 // 256
    assert all(total == len(script) for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1] == (len(script), len(script))


def test_no_bar_off_a_terminal_or_for_a_short_script():
    assert script_progress(10 * PROGRESS_MIN_CHARS, io.StringIO())[0] is None
    assert script_progress(PROGRESS_MIN_CHARS - 1, _Terminal())[0] is None


def test_a_bar_on_a_terminal():
    out = _Terminal()
    progress, finish = script_progress(2 * PROGRESS_MIN_CHARS, out)
    assert progress is not None
    progress(PROGRESS_MIN_CHARS, 2 * PROGRESS_MIN_CHARS)
    shown = out.getvalue()
    assert "50%" in shown
    finish()
