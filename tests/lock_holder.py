"""A child process that holds a database's write lock (tests of what must not wait for
a writer: tests/storage/test_close_beside_a_writer.py, tests/cli)."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import textwrap


class LockHolder:
    """A child process that opens the database and holds its write lock (an immediate
    transaction) until told "commit" (then reports the stats) or killed."""

    def __init__(self, path):
        code = textwrap.dedent(
            f"""
            import json, sys
            from toondb import Database
            db = Database.open({str(path)!r})
            t = db.begin_transaction(immediate=True)
            print("locked", flush=True)
            for line in sys.stdin:
                if line.strip() == "commit":
                    t.put(b"from-holder", b"1")
                    t.commit()
                    print(json.dumps(db.stats()), flush=True)
            db.close()
            """
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.line(30) == "locked"

    def line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "the lock holder said nothing in time"
        return self.proc.stdout.readline().strip()

    def commit(self) -> dict:
        self.proc.stdin.write("commit\n")
        self.proc.stdin.flush()
        return json.loads(self.line(30))

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
