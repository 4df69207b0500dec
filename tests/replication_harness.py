"""Processes the replication tests run (``python -m replication_harness ...``): a
writer that commits a counter and one key per commit and logs each commit's id and
time, and a reader of a replica that checks every snapshot it reads.

The invariant both rely on: in every committed state, the counter equals the number
of keys under b"k" (the writer changes both in one transaction)."""

from __future__ import annotations

import json
import os
import sys
import time

from toondb import Database


def count_keys(txn) -> int:
    return sum(1 for _ in txn.scan(b"k"))


def consistent(txn) -> tuple[int, bool]:
    """(counter, counter == number of keys) of a snapshot."""
    c = int(txn.get(b"counter") or b"0")
    return c, count_keys(txn) == c


def writer(db_path: str, seconds: float, pause: float, log_path: str) -> None:
    """Commit counter = i and key k<i> in one transaction, for seconds; log
    [i, txnid, time before the commit, time after] per commit to log_path."""
    db = Database.open(db_path)
    log = []
    with db.transaction(read_only=True) as t:
        i = int(t.get(b"counter") or b"0")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
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


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "writer":
        writer(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    elif role == "reader":
        reader(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown role {role}")
