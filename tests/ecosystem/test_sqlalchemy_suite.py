"""SQLAlchemy's dialect compliance suite (tests/sqla_suite, set up as SQLAlchemy's
README.dialects.rst says) in the default test run: a pytest of its own in a
subprocess (its plugin takes over the session it runs in), on a fresh file database.
It must pass: every test toondb cannot pass is closed by a requirement
(tests/sqla_suite/toondb_requirements.py) or listed with a reason in
tests/sqla_suite/skips.py, so nothing is skipped silently; the counts are printed."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from paths import ROOT

pytest.importorskip("sqlalchemy")

SUITE = ROOT / "tests" / "sqla_suite"


def run_suite(dburi: str, *args: str) -> tuple[int, dict[str, int], str]:
    """(exit status, {passed, failed, skipped, error}, output) of the suite on dburi."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(SUITE), "--dburi", dburi, "-q", *args],
        cwd=SUITE,
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    counts = {k: 0 for k in ("passed", "failed", "skipped", "error")}
    for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", tail):
        counts[word.rstrip("s") if word.startswith("error") else word] += int(n)
    return proc.returncode, counts, proc.stdout + proc.stderr


def test_sqlalchemy_compliance_suite_passes_on_toondb(tmp_path):
    status, counts, output = run_suite(f"toondb:///{tmp_path / 'db'}")
    print(f"SQLAlchemy compliance suite on toondb: {counts}")
    failures = [line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert status == 0 and counts["failed"] == counts["error"] == 0, "\n".join(failures[:50])
    assert counts["passed"] > 900  # the suite ran, not just its collection
