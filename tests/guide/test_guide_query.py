"""The product guide's "Query Builder" example: its code, run as the guide shows it, must
print exactly the guide's output, embedded, in a transaction and over IPC. The guide's
own text (shared/seed) is also run verbatim when it is beside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from paths import SEED, require_shared

from toondb import Database

GUIDE_OUTPUT = (
    "products/laptop: result[1]{name,price}:Laptop,999\n"
    "products/mouse: result[1]{name,price}:Mouse,25\n"
)


def run_guide_example(db) -> None:
    # Insert structured data
    db.put(b"products/laptop", b'{"name":"Laptop","price":999,"stock":5}')
    db.put(b"products/mouse", b'{"name":"Mouse","price":25,"stock":20}')

    # Query with column selection
    results = db.query("products/").select(["name", "price"]).limit(10).to_list()

    for key, value in results:
        print(f"{key.decode()}: {value.decode()}")


def test_guide_query_builder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with Database.open("./my_database") as db:
        run_guide_example(db)
        db.check()
    assert capsys.readouterr().out == GUIDE_OUTPUT


def test_guide_query_builder_in_a_transaction(tmp_path, capsys):
    with Database.open(tmp_path / "db") as db, db.transaction() as txn:
        run_guide_example(txn)
    assert capsys.readouterr().out == GUIDE_OUTPUT


def test_guide_query_builder_over_ipc(tmp_path, capsys):
    """IpcClient.query (in the guide's API reference): the same builder over the
    client's scan()."""
    from ipc_harness import ServerProcess

    from toondb import IpcClient

    with ServerProcess(tmp_path / "db").start() as server:
        with IpcClient.connect(server.socket_path) as client:
            run_guide_example(client)
    assert capsys.readouterr().out == GUIDE_OUTPUT


def _guide_text() -> str | None:
    for f in sorted(SEED.glob("*.txt")) if SEED.is_dir() else ():
        text = f.read_text(encoding="utf-8")
        if "## Query Builder" in text:
            return text
    return None


def test_guide_text_verbatim(tmp_path):
    """The code block of the guide's Query Builder section, as written there, in a fresh
    interpreter, prints the output block that follows it."""
    text = _guide_text()
    require_shared(text is not None, "the product guide (shared/seed)")
    section = text.split("## Query Builder", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    output = re.search(r"\*\*Output[^\n]*\n```\n(.*?)```", section, re.S).group(1)
    assert output == GUIDE_OUTPUT  # the contract this file tests
    script = "from toondb import Database\nwith Database.open('./db') as db:\n" + textwrap.indent(
        code, "    "
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == output
