"""toondb's pytest plugin as a user meets it: tests of a temporary project, run by
pytester in a subprocess (the plugin is loaded there by its pytest11 entry point),
use its fixtures; the benchmark gate passes a normal run and fails one with an
injected slowdown, against the stored history and against a floor."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from toondb import benchgate

pytest_plugins = ["pytester"]

FIXTURE_TESTS = """
import os
import pytest
import toondb.dbapi
from toondb import Database


def test_db_is_fresh_and_open(toondb_db, tmp_path):
    assert toondb_db.get(b"k") is None
    toondb_db.put(b"k", b"v")
    toondb_db.execute_sql("CREATE TABLE t (x)")
    toondb_db.execute_sql("INSERT INTO t VALUES (1)")
    assert str(toondb_db.path).startswith(str(tmp_path))
    assert toondb_db.stats()["sync_mode"] == os.environ["EXPECT_SYNC_MODE"]


def test_db_is_fresh_again(toondb_db):
    assert toondb_db.get(b"k") is None


def test_factory_opens_several(toondb_factory):
    a, b = toondb_factory(), toondb_factory("named", lock_timeout=1.0)
    a.put(b"a", b"1")
    b.put(b"b", b"2")
    assert a.get(b"b") is None and b.get(b"a") is None
    again = toondb_factory("named")
    assert again.get(b"b") == b"2"
    b.close()  # closed by the test: checked from a fresh open afterwards


def test_server_and_client(toondb_server, toondb_client):
    assert os.path.exists(toondb_server)
    toondb_client.put(b"from-client", b"1")
    con = toondb.dbapi.connect_ipc(toondb_server)
    con.execute("CREATE TABLE IF NOT EXISTS s (x)")
    with con:
        con.execute("INSERT INTO s VALUES (?)", (7,))
    assert con.execute("SELECT x FROM s").fetchall() == [(7,)]
    con.close()


def test_server_is_shared_by_the_session(toondb_server, toondb_client):
    assert toondb_client.get(b"from-client") == b"1"
"""

DAMAGE_TEST = """
import os

def test_leaves_a_damaged_database(toondb_db):
    for i in range(2000):
        toondb_db.put(b"key%05d" % i, b"x" * 100)
    path = os.path.join(toondb_db.path, "toondb.data")
    toondb_db.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        for offset in range(3 * 4096, size, 4096):
            f.seek(offset + 100)
            f.write(b"\\xde\\xad" * 64)
"""


def test_fixtures_in_a_user_project(pytester, monkeypatch):
    pytester.makepyfile(test_fixtures=FIXTURE_TESTS)
    monkeypatch.setenv("EXPECT_SYNC_MODE", "off")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--toondb-sync-mode", "off")
    result.assert_outcomes(passed=5)


def test_default_sync_mode_and_the_ini_option(pytester, monkeypatch):
    pytester.makepyfile(test_fixtures=FIXTURE_TESTS)
    pytester.makeini("[pytest]\ntoondb_sync_mode = full\n")
    monkeypatch.setenv("EXPECT_SYNC_MODE", "full")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "fresh_and_open")
    result.assert_outcomes(passed=1)


def test_a_damaged_database_fails_the_check_after_the_test(pytester):
    pytester.makepyfile(test_damage=DAMAGE_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*CorruptionError*"])


def test_server_per_module(pytester):
    one = "def test_put(toondb_client):\n    toondb_client.put(b'k', b'1')\n"
    two = "def test_fresh(toondb_client):\n    assert toondb_client.get(b'k') is None\n"
    pytester.makepyfile(test_one=one, test_two=two)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--toondb-server-scope", "module"
    )
    result.assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # one for the session
    result.assert_outcomes(passed=1, failed=1)


# ---- the benchmark gate

BENCHMARKS = """
import os

SLOWDOWN = int(os.environ.get("SLOWDOWN", "1"))


def work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def test_mine(benchmark):
    benchmark.group = "sum of squares"
    benchmark.extra_info.update(engine="toondb", ops=1)
    benchmark(work, 20_000 * SLOWDOWN)


def test_anchor(benchmark):
    benchmark.group = "sum of squares"
    benchmark.extra_info.update(engine="anchor", ops=1)
    benchmark(work, 20_000)


def test_recorded_ratio(benchmark):
    benchmark.extra_info["ratios"] = {"made up": 2.0}
    benchmark(work, 1000)
"""

BENCH_ARGS = ("-p", "no:cacheprovider", "--benchmark-min-rounds=5", "--benchmark-max-time=0.1")


def _bench(pytester, monkeypatch, store, slowdown, *extra):
    monkeypatch.setenv("SLOWDOWN", str(slowdown))
    return pytester.runpytest_subprocess(
        *BENCH_ARGS, "--toondb-bench-store", str(store), "--toondb-bench-gate", *extra
    )


def test_gate_against_history_passes_a_normal_run_and_fails_a_slowdown(pytester, monkeypatch):
    pytester.makepyfile(test_bench=BENCHMARKS)
    store = pytester.path / "history"
    # noise: a normal run may be up to 60% slower than the median of the ones before
    threshold = ("--toondb-bench-threshold", "0.6")
    first = _bench(pytester, monkeypatch, store, 1, *threshold)
    assert first.ret == 0
    first.stdout.fnmatch_lines(["*no history yet for 3 benchmarks*", "gate: passed", "*run #1*"])
    second = _bench(pytester, monkeypatch, store, 1, *threshold)
    assert second.ret == 0
    second.stdout.fnmatch_lines(["*history: 3 benchmarks compared*0 slower*", "gate: passed"])
    slow = _bench(pytester, monkeypatch, store, 5, *threshold)
    assert slow.ret == pytest.ExitCode.TESTS_FAILED
    slow.stdout.fnmatch_lines(["*REGRESSION*test_mine*", "gate: FAILED"])
    runs = benchgate.load_runs(store)
    assert [r.passed for r in runs] == [True, True, False]
    assert runs[0].ratios["test_recorded_ratio: made up"] == 2.0
    assert {r.name for r in runs[0].results} == {"test_mine", "test_anchor", "test_recorded_ratio"}
    assert runs[0].machine.get("python_version") and "id" in runs[0].commit
    # the failed run is not history: the next normal run is compared with the good ones
    again = _bench(pytester, monkeypatch, store, 1, *threshold)
    assert again.ret == 0


def test_gate_against_a_floor_of_ratios_in_the_same_run(pytester, monkeypatch):
    pytester.makepyfile(test_bench=BENCHMARKS)
    floors = pytester.path / "floors.json"
    floors.write_text(
        json.dumps(
            {
                "floors": [
                    {"ratio": "sum of squares: toondb/anchor", "min": 0.6, "source": "the test"},
                    {"ratio": "test_recorded_ratio: made up", "max": 3},
                    {"ratio": "not measured: toondb/anchor", "min": 1.0},
                ]
            }
        )
    )
    store = pytester.path / "history"
    ok = _bench(pytester, monkeypatch, store, 1, "--toondb-bench-floors", str(floors))
    assert ok.ret == 0
    ok.stdout.fnmatch_lines(
        ["*sum of squares: toondb/anchor*ok*the test*", "*not measured in this run: not measured*"]
    )
    # a slowdown fails the floor even with no history to compare with
    slow = _bench(
        pytester, monkeypatch, pytester.path / "other", 5, "--toondb-bench-floors", str(floors)
    )
    assert slow.ret == pytest.ExitCode.TESTS_FAILED
    slow.stdout.fnmatch_lines(["*sum of squares: toondb/anchor*FAIL*", "gate: FAILED"])


def test_bench_history_prints_the_trend(pytester, monkeypatch, capsys):
    pytester.makepyfile(test_bench=BENCHMARKS)
    store = pytester.path / "history"
    monkeypatch.setenv("SLOWDOWN", "1")
    for _ in range(2):
        result = pytester.runpytest_subprocess(*BENCH_ARGS, "--toondb-bench-store", str(store))
        assert result.ret == 0
    status = benchgate.bench_history(store)
    out = capsys.readouterr().out
    assert status == 0
    assert "sum of squares: toondb/anchor" in out and "test_mine" in out
    assert "#1 " in out and "#2 " in out
    assert benchgate.bench_history(pytester.path / "nothing") == 1
    # the same through the command line
    cli = subprocess.run(
        [sys.executable, "-m", "toondb", "bench-history", str(store), "--last", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert (
        "test_mine" in cli.stdout and "#2 " in cli.stdout and "#1 " not in cli.stdout
    )  # the newest
