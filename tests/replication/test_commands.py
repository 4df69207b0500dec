"""The commands users run (toondb replicate, restore, follow, replica-status, replicas
list; toondb-server --replicate), retention (--retain) and generations: a replicator
that cannot resume (every handle of the primary closed) starts a new one, and points
in time of the old one stay restorable."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import threading
import time

import pytest
from ipc_harness import ServerProcess
from replication_harness import child_env, spawn, stop, toondb_cmd

from toondb import Database, IpcClient, ReplicationError
from toondb.replication import Replicator, describe, open_store, restore
from toondb.replication.inventory import apply_retention, read_manifest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        toondb_cmd(*args), capture_output=True, text=True, env=child_env(), timeout=120
    )


def replicate_for_a_while(db, url, commits, **kw) -> Replicator:
    """Commit `commits` keys (one per transaction) while a Replicator runs; stop it."""
    Database.open(db).close()
    stop_ = threading.Event()
    r = Replicator(db, url, interval=0.05, **kw)
    t = threading.Thread(target=r.run, args=(stop_,), daemon=True)
    t.start()
    with Database.open(db) as d:
        for i in range(commits):
            d.put(b"k%06d" % i, os.urandom(200))
            if i % 50 == 0:
                time.sleep(0.06)
    time.sleep(0.2)
    stop_.set()
    t.join(30)
    return r


def test_the_commands(tmp_path):
    url = "file://" + str(tmp_path / "store")
    db = tmp_path / "db"
    with Database.open(db) as d:
        d.put(b"counter", b"0")
    proc = spawn("replicate", str(db), url, "--interval", "0.1", log=tmp_path / "r.log")
    with Database.open(db) as d:
        deadline = time.monotonic() + 20
        while read_manifest(open_store(url)) is None:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        for i in range(1, 101):
            d.put(b"counter", str(i).encode())
        middle = time.time()
        time.sleep(0.05)
        for i in range(101, 201):
            d.put(b"counter", str(i).encode())
        last = d.stats()["last_txn_id"]
    assert stop(proc) == 0  # SIGTERM ships what was committed
    assert f"stopped: transaction {last} shipped" in (tmp_path / "r.log").read_text()

    status = run("replica-status", url, "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["last_txn_id"] == last and info["generation"] == 1

    listed = run("replicas", "list", url)
    assert listed.returncode == 0 and "snapshot at transaction" in listed.stdout

    when = datetime.datetime.fromtimestamp(middle, datetime.timezone.utc).isoformat()
    got = run("restore", url, str(tmp_path / "middle"), "--time", when)
    assert got.returncode == 0, got.stderr
    with Database.open(tmp_path / "middle", read_only=True) as m:
        assert m.get(b"counter") == b"100"
    got = run("restore", url, str(tmp_path / "middle"))
    assert got.returncode == 1 and "already exists" in got.stderr
    got = run("restore", url, str(tmp_path / "x"), "--txn", "5", "--time", when)
    assert got.returncode == 2
    got = run("restore", "file://" + str(tmp_path / "empty"), str(tmp_path / "y"))
    assert got.returncode == 1 and "nothing has been replicated" in got.stderr
    got = run("restore", "ftp://host/x", str(tmp_path / "y"))
    assert got.returncode == 1 and "unsupported store URL" in got.stderr

    # follow: a replica, then replica-status --replica shows how far behind it is
    follower = spawn("follow", url, str(tmp_path / "replica"), "--interval", "0.1")
    deadline = time.monotonic() + 20
    while True:
        got = run("replica-status", url, "--replica", str(tmp_path / "replica"), "--json")
        if got.returncode == 0 and json.loads(got.stdout)["replica_txn_id"] == last:
            break
        assert time.monotonic() < deadline, got.stderr
        time.sleep(0.1)
    # a read-only server on the replica, while the follower keeps it
    with ServerProcess(tmp_path / "replica", "--read-only").start() as server:
        with IpcClient.connect(server.socket_path) as client:
            assert client.get(b"counter") == b"200"
            assert client.stats()["replica"]["txn_id"] == last
        assert server.stop() == 0
    assert stop(follower) == 0
    with Database.open(tmp_path / "replica", read_only=True) as rep:
        assert rep.get(b"counter") == b"200"
        assert rep.stats()["replica"]["source"] == url


def test_the_server_replicates_too(tmp_path):
    url = "file://" + str(tmp_path / "store")
    db = tmp_path / "db"
    with ServerProcess(db, "--replicate", url, "--replicate-interval", "0.1").start() as server:
        with IpcClient.connect(server.socket_path) as client:
            for i in range(50):
                client.put(b"k%03d" % i, b"%d" % i)
            client.execute_sql("CREATE TABLE t (a)")
            client.execute_sql("INSERT INTO t VALUES (42)")
        assert server.stop() == 0
    restore(url, tmp_path / "restored")
    with Database.open(tmp_path / "restored", read_only=True) as r:
        assert r.get(b"k049") == b"49"
        assert r.execute_sql("SELECT a FROM t").rows == [(42,)]


def test_retention_keeps_every_point_of_the_window(tmp_path):
    url = "file://" + str(tmp_path / "store")
    db = tmp_path / "db"
    # a snapshot once 8 KiB of batches were shipped: several snapshots
    replicate_for_a_while(db, url, 600, snapshot_bytes=8 << 10)
    store = open_store(url)
    m = read_manifest(store)
    snaps = m.generation_info(1)["snapshots"]
    assert len(snaps) >= 3
    # keep what is needed from the third snapshot's time on
    cutoff = snaps[2]["time"] + 1e-3
    deleted = apply_retention(store, m, retain=1000.0, now=cutoff + 1000.0)
    assert deleted and all(k.endswith((".snap", ".batch")) for k in deleted)
    kept = read_manifest(store).generation_info(1)["snapshots"]
    assert [s["txn"] for s in kept] == [s["txn"] for s in snaps[2:]]
    assert not any(k.endswith(f"{snaps[1]['txn']:020d}.snap") for k, _ in store.list(""))
    restore(url, tmp_path / "newest")
    restore(url, tmp_path / "in-window", txn=snaps[2]["txn"] + 1)
    with pytest.raises(ReplicationError, match="no snapshot at or before"):
        restore(url, tmp_path / "too-old", txn=snaps[1]["txn"])


def test_a_replicator_that_cannot_resume_starts_a_new_generation(tmp_path):
    url = "file://" + str(tmp_path / "store")
    db = tmp_path / "db"
    first = replicate_for_a_while(db, url, 100)
    assert first.status()["generation"] == 1
    # every handle closed: the lock file (and the pin) is rebuilt at the next open
    with Database.open(db) as d:
        boundary = d.stats()["last_txn_id"]
        d.put(b"between", b"x")
    second = replicate_for_a_while(db, url, 100)
    assert second.status()["generation"] == 2 and not second.stats["resumed"]
    info = describe(open_store(url))
    assert [g["generation"] for g in info["generations"]] == [1, 2]
    restore(url, tmp_path / "newest")
    restore(url, tmp_path / "old", txn=boundary)
    with Database.open(tmp_path / "newest", read_only=True) as n:
        assert n.get(b"between") == b"x" and len(list(n.scan(b"k"))) == 100
    with Database.open(tmp_path / "old", read_only=True) as o:
        assert o.get(b"between") is None and len(list(o.scan(b"k"))) == 100


def test_a_replicator_restarted_in_time_resumes(tmp_path):
    url = "file://" + str(tmp_path / "store")
    db = tmp_path / "db"
    with Database.open(db) as holder:  # keeps the lock file (and the pin) alive
        holder.put(b"x", b"y")
        replicate_for_a_while(db, url, 50)
        holder.put(b"while", b"stopped")
        again = replicate_for_a_while(db, url, 50)
        assert again.stats["resumed"] and again.status()["generation"] == 1
        assert again.stats["snapshots"] == 0
    restore(url, tmp_path / "r")
    with Database.open(tmp_path / "r", read_only=True) as r:
        assert r.get(b"while") == b"stopped"
