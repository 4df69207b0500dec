"""Processes the replication tests run (``python -m replication_harness ...``): a
writer that commits a counter and one key per commit and logs each commit's id and
time, and a reader of a replica that checks every snapshot it reads; and the helpers
that start them and toondb commands (``spawn``, ``stop``, ``harness``).

The invariant both rely on: in every committed state, the counter equals the number
of keys under b"k" (the writer changes both in one transaction)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from paths import ROOT

from toondb import Database


def count_keys(txn) -> int:
    return sum(1 for _ in txn.scan(b"k"))


def consistent(txn) -> tuple[int, bool]:
    """(counter, counter == number of keys) of a snapshot."""
    c = int(txn.get(b"counter") or b"0")
    return c, count_keys(txn) == c


def writer(db_path: str, until: str, pause: float, log_path: str) -> None:
    """Commit counter = i and key k<i> in one transaction, for `until` seconds (a
    number) or until the file `until` exists (at most 120 s); log [i, txnid, time
    before the commit, time after] per commit to log_path."""
    db = Database.open(db_path)
    log = []
    with db.transaction(read_only=True) as t:
        i = int(t.get(b"counter") or b"0")
    try:
        end = time.monotonic() + float(until)
        stop_path = None
    except ValueError:
        end = time.monotonic() + 120
        stop_path = until
    while time.monotonic() < end and not (stop_path and os.path.exists(stop_path)):
        i += 1
        t = db.begin_transaction(immediate=True)
        t.put(b"counter", str(i).encode())
        t.put(b"k%08d" % i, b"v" * 64)
        before = time.time()
        txnid = t.commit()
        log.append([i, txnid, before, time.time()])
        if pause:
            time.sleep(pause)
    db.close()
    with open(log_path + ".tmp", "w") as f:
        json.dump(log, f)
    os.replace(log_path + ".tmp", log_path)


def reader(dest: str, stop_path: str, out_path: str) -> None:
    """Read snapshots of the replica at dest until stop_path exists; report how many,
    the last counter, and every snapshot that was inconsistent or went backwards."""
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(dest, "toondb.data")):
        if time.monotonic() > deadline or os.path.exists(stop_path):
            break
        time.sleep(0.01)
    bad: list[str] = []
    snapshots = 0
    last = -1
    db = Database.open(dest, read_only=True)
    while not os.path.exists(stop_path) and time.monotonic() < deadline:
        with db.transaction(read_only=True) as t:
            c, ok = consistent(t)
        snapshots += 1
        if not ok:
            bad.append(f"counter {c} but another number of keys")
        if c < last:
            bad.append(f"counter went back from {last} to {c}")
        last = c
    db.close()
    with open(out_path, "w") as f:
        json.dump({"snapshots": snapshots, "last": last, "bad": bad[:20]}, f)


def toondb_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "toondb", *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    return env


def spawn(*args: str, **kw) -> subprocess.Popen:
    """A toondb command as a child process (output to a log file when log= is given)."""
    log = kw.pop("log", None)
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(toondb_cmd(*args), stdout=out, stderr=out, env=child_env(), **kw)
    finally:
        if log:
            out.close()


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM, then wait (SIGKILL if it does not exit in time)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def harness(*args: str) -> subprocess.Popen:
    """This module as a child process: harness("writer", ...) or harness("reader", ...)."""
    return subprocess.Popen(
        [sys.executable, "-m", "replication_harness", *args],
        env=child_env(),
        stdout=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "writer":
        writer(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
    elif role == "reader":
        reader(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown role {role}")
