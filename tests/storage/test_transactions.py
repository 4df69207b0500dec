"""Transactions: atomicity, reads of one's own writes, snapshot isolation,
first-committer-wins conflicts, threads, immediate (locking) transactions,
named trees."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

import toondb
from toondb import Database


def test_guide_automatic_transaction(db):
    with db.transaction() as txn:
        txn.put(b"account:1:balance", b"1000")
        txn.put(b"account:2:balance", b"500")
    assert db.get(b"account:1:balance") == b"1000"
    assert db.get(b"account:2:balance") == b"500"


def test_guide_manual_transaction(db, capsys):
    txn = db.begin_transaction()
    try:
        txn.put(b"key1", b"value1")
        txn.put(b"key2", b"value2")
        for key, value in txn.scan(b"key", b"key~"):
            print(f"{key.decode()}: {value.decode()}")
        txn.commit()
    except Exception:
        txn.abort()
        raise
    assert capsys.readouterr().out == "key1: value1\nkey2: value2\n"
    assert db.get(b"key2") == b"value2"


def test_exception_aborts_everything(db):
    db.put(b"a", b"before")
    with pytest.raises(RuntimeError):
        with db.transaction() as txn:
            txn.put(b"a", b"after")
            txn.put(b"b", b"new")
            raise RuntimeError("boom")
    assert db.get(b"a") == b"before"
    assert db.get(b"b") is None


def test_writes_invisible_to_others_until_commit(db):
    txn = db.begin_transaction()
    txn.put(b"k", b"v")
    assert txn.get(b"k") == b"v"
    assert db.get(b"k") is None
    txn.commit()
    assert db.get(b"k") == b"v"


def test_scan_merges_own_puts_and_deletes_in_order(db):
    for k in [b"a", b"c", b"e", b"g"]:
        db.put(k, b"committed")
    with db.transaction() as txn:
        txn.put(b"b", b"mine")
        txn.put(b"e", b"changed")
        txn.delete(b"c")
        txn.put(b"h", b"mine")
        assert list(txn.scan(b"a", b"z")) == [
            (b"a", b"committed"),
            (b"b", b"mine"),
            (b"e", b"changed"),
            (b"g", b"committed"),
            (b"h", b"mine"),
        ]
        assert [k for k, _ in txn.scan(b"a", b"z", reverse=True)] == [b"h", b"g", b"e", b"b", b"a"]


def test_use_after_commit_or_abort_is_clear(db):
    txn = db.begin_transaction()
    txn.put(b"k", b"v")
    txn.commit()
    for call in (
        lambda: txn.get(b"k"),
        lambda: txn.put(b"k", b"v"),
        lambda: txn.commit(),
        lambda: list(txn.scan(b"")),
    ):
        with pytest.raises(toondb.TransactionClosedError, match="already committed or aborted"):
            call()
    txn.abort()  # idempotent
    t2 = db.begin_transaction()
    t2.abort()
    with pytest.raises(toondb.TransactionClosedError):
        t2.put(b"x", b"y")


def test_snapshot_isolation(db):
    db.put(b"k", b"1")
    reader = db.begin_transaction(read_only=True)
    db.put(b"k", b"2")
    db.put(b"new", b"x")
    assert reader.get(b"k") == b"1"
    assert reader.get(b"new") is None
    assert list(reader.scan(b"")) == [(b"k", b"1")]
    reader.commit()
    assert db.get(b"k") == b"2"


def test_first_committer_wins(db):
    db.put(b"k", b"0")
    t1 = db.begin_transaction()
    t2 = db.begin_transaction()
    t1.put(b"k", b"t1")
    t2.put(b"k", b"t2")
    t2.put(b"other", b"t2")
    t1.commit()
    with pytest.raises(toondb.TransactionConflictError, match="retry"):
        t2.commit()
    assert db.get(b"k") == b"t1"
    assert db.get(b"other") is None
    assert t2.closed


def test_delete_conflicts_with_concurrent_update(db):
    db.put(b"k", b"0")
    t1 = db.begin_transaction()
    t1.delete(b"k")
    db.put(b"k", b"changed")
    with pytest.raises(toondb.TransactionConflictError):
        t1.commit()
    assert db.get(b"k") == b"changed"


def test_disjoint_transactions_both_apply(db):
    db.put(b"shared", b"s")
    t1 = db.begin_transaction()
    t2 = db.begin_transaction()
    assert t2.get(b"shared") == b"s"
    t1.put(b"a", b"1")
    t2.put(b"b", b"2")
    t2.delete(b"nothing")
    t1.commit()
    t2.commit()
    assert db.get(b"a") == b"1" and db.get(b"b") == b"2"


def test_many_keys_replayed_onto_newer_snapshot(db):
    t1 = db.begin_transaction()
    for i in range(3000):
        t1.put(b"t1:%05d" % i, b"x" * (i % 300))
    big = b"B" * 100_000
    t1.put(b"t1:big", big)
    for i in range(0, 3000, 3):
        t1.delete(b"t1:%05d" % i)
    for i in range(500):
        db.put(b"other:%d" % i, b"y")
    t1.commit()
    assert db.get(b"t1:big") == big
    assert sum(1 for _ in db.scan(b"t1:")) == 2001
    assert sum(1 for _ in db.scan(b"other:")) == 500


def test_counters_from_eight_threads_lose_no_update(db):
    keys = [b"c0", b"c1", b"c2"]
    for k in keys:
        db.put(k, b"0")
    per_thread = 150
    conflicts = []

    def work(n):
        for i in range(per_thread):
            k = keys[(n + i) % len(keys)]
            while True:
                try:
                    with db.transaction() as txn:
                        txn.put(k, b"%d" % (int(txn.get(k)) + 1))
                    break
                except toondb.TransactionConflictError:
                    conflicts.append(1)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive()
    assert sum(int(db.get(k)) for k in keys) == 8 * per_thread


def test_immediate_transactions_never_conflict(db):
    db.put(b"n", b"0")

    def work():
        for _ in range(100):
            with db.transaction(immediate=True) as txn:
                txn.put(b"n", b"%d" % (int(txn.get(b"n")) + 1))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert db.get(b"n") == b"400"


def test_immediate_transaction_blocks_other_writers_until_timeout(open_db):
    db = open_db({"lock_timeout": 0.2})
    holder = db.begin_transaction(immediate=True)
    holder.put(b"k", b"holder")
    result = []

    def other():
        try:
            db.put(b"k", b"other")
            result.append("written")
        except toondb.DatabaseLockedError as e:
            result.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join(timeout=30)
    assert isinstance(result[0], toondb.DatabaseLockedError)
    assert "lock_timeout" in str(result[0])
    holder.commit()
    db.put(b"k", b"other")
    assert db.get(b"k") == b"other"


def _hold_write_lock(path, ready, release):
    with Database.open(path) as db:
        txn = db.begin_transaction(immediate=True)
        txn.put(b"from", b"child")
        ready.set()
        release.wait(60)
        txn.commit()


def test_second_process_waits_for_the_write_lock(db_path):
    Database.open(db_path).close()
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_write_lock, args=(str(db_path), ready, release))
    child.start()
    try:
        assert ready.wait(60)
        with Database.open(db_path, {"lock_timeout": 0.3}) as db:
            with pytest.raises(toondb.DatabaseLockedError, match="another process"):
                db.put(b"k", b"v")
            assert db.get(b"from") is None
            release.set()
            child.join(60)
            assert child.exitcode == 0
            db.put(b"k", b"v")
            assert db.get(b"from") == b"child"
            db.check()
    finally:
        release.set()
        child.join(60)


def test_read_only_transaction_rejects_writes(db):
    txn = db.begin_transaction(read_only=True)
    with pytest.raises(toondb.ReadOnlyError, match="read-only transaction"):
        txn.put(b"k", b"v")
    txn.abort()


def test_commit_returns_increasing_ids(db):
    ids = []
    for i in range(3):
        with db.transaction() as t:
            t.put(b"k", b"%d" % i)
        ids.append(db.stats()["last_txn_id"])
    assert ids == sorted(ids) and len(set(ids)) == 3
    t = db.begin_transaction()
    assert t.commit() == ids[-1]  # nothing to write: no new transaction


def test_close_aborts_open_transactions(db_path):
    db = Database.open(db_path)
    txn = db.begin_transaction(immediate=True)
    txn.put(b"k", b"v")
    db.close()
    with pytest.raises((toondb.TransactionClosedError, toondb.ClosedError)):
        txn.put(b"x", b"y")
    with Database.open(db_path, {"lock_timeout": 1}) as db2:
        assert db2.get(b"k") is None
        db2.put(b"k", b"w")  # the write lock was released


# ---- named trees ----


def test_named_trees_are_separate_key_spaces(db):
    with db.transaction() as txn:
        users = txn.tree(b"sql:users", create=True)
        users.put(b"1", b"alice")
        users.put(b"2", b"bob")
        txn.put(b"1", b"kv space")
        assert users.get(b"1") == b"alice"
        assert len(users) == 2
    with db.transaction(read_only=True) as txn:
        users = txn.tree(b"sql:users")
        assert list(users.scan()) == [(b"1", b"alice"), (b"2", b"bob")]
        assert txn.tree_names() == [b"sql:users"]
        with pytest.raises(KeyError):
            txn.tree(b"sql:missing")
    assert db.get(b"1") == b"kv space"
    assert list(db.scan(b"")) == [(b"1", b"kv space")]
    assert db.stats()["trees"] == 1


def test_aborted_tree_creation_leaves_nothing(db):
    txn = db.begin_transaction()
    txn.tree(b"t", create=True).put(b"k", b"v")
    txn.abort()
    with db.transaction(read_only=True) as txn:
        assert not txn.has_tree(b"t")


def test_drop_tree(db):
    with db.transaction() as txn:
        t = txn.tree(b"big", create=True)
        for i in range(3000):
            t.put(b"%05d" % i, b"v" * 100)
        t.put(b"overflow", b"o" * 50_000)
    used_before = db.stats()["pages_used"]
    with db.transaction() as txn:
        assert txn.drop_tree(b"big") is True
        assert txn.drop_tree(b"big") is False
        assert txn.tree_names() == []
    with db.transaction() as txn:
        assert not txn.has_tree(b"big")
        t = txn.tree(b"big", create=True)
        assert len(t) == 0
    s = db.stats()
    assert used_before > 80 and s["pages_used"] < 10, (used_before, s)


def test_concurrent_tree_creation_conflicts(db):
    t1 = db.begin_transaction()
    t2 = db.begin_transaction()
    t1.tree(b"t", create=True).put(b"a", b"1")
    t2.tree(b"t", create=True).put(b"b", b"2")
    t1.commit()
    with pytest.raises(toondb.TransactionConflictError):
        t2.commit()
    with db.transaction(read_only=True) as txn:
        assert list(txn.tree(b"t").scan()) == [(b"a", b"1")]


def test_writes_to_a_tree_replayed_onto_newer_snapshot(db):
    with db.transaction() as txn:
        txn.tree(b"t", create=True).put(b"a", b"1")
    t1 = db.begin_transaction()
    t1.tree(b"t").put(b"b", b"2")
    with db.transaction() as other:
        other.tree(b"t").put(b"c", b"3")
    t1.commit()
    with db.transaction(read_only=True) as txn:
        assert [k for k, _ in txn.tree(b"t").scan()] == [b"a", b"b", b"c"]


def test_an_immediate_begin_that_fails_releases_nothing_it_did_not_take(open_db):
    """A BEGIN IMMEDIATE that timed out waiting for the write lock used to release
    the lock on its way out (when the failed transaction object was collected),
    the lock another transaction held: two writers then committed at once and
    corrupted the file (found by fuzzing toondb-server)."""
    db = open_db({"lock_timeout": 0.05})
    holder = db.begin_transaction(immediate=True)
    for _ in range(3):
        with pytest.raises(toondb.DatabaseLockedError):
            db.begin_transaction(immediate=True)
    with pytest.raises(toondb.DatabaseLockedError):  # the lock is still the holder's
        db.put(b"k", b"outside")
    seen: list[BaseException] = []

    def other_thread():
        try:
            db.put(b"k", b"from another thread")
        except BaseException as exc:
            seen.append(exc)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join(30)
    assert len(seen) == 1 and isinstance(seen[0], toondb.DatabaseLockedError)
    holder.put(b"k", b"holder")
    holder.commit()
    assert db.get(b"k") == b"holder"
    db.put(b"k", b"after")  # and the lock is free once the holder is done
    # no slot left after the lock was taken: the lock is released exactly once
    fresh = open_db({"lock_timeout": 0.05}, path=db.path + "-fresh")
    fresh._limit_readers(1)
    reader = fresh.begin_transaction(read_only=True)
    with pytest.raises(toondb.ReadersFullError):
        fresh.begin_transaction(immediate=True)
    reader.abort()
    holder = fresh.begin_transaction(immediate=True)
    with pytest.raises(toondb.DatabaseLockedError):
        fresh.put(b"k", b"outside")
    holder.abort()
    fresh.put(b"k", b"free again")
    fresh._limit_readers(0)
