"""close() in sync_mode="normal" while another process holds the write lock: a handle
that wrote nothing since its last sync point returns at once; one that owes a sync
point hands it to the next holder of the write lock (docs/durability.md). Two real
processes; every wait is bounded (a pipe read with a deadline), none is a sleep."""

from __future__ import annotations

import time

import pytest
from lock_holder import LockHolder

from toondb import Database

LONG = 10.0  # the lock_timeout of the waiting handle: close must not come near it


@pytest.fixture
def holder(db_path):
    with Database.open(db_path) as db:
        db.put(b"k", b"v")
    h = LockHolder(db_path)
    yield h
    h.stop()


def test_a_handle_that_only_read_closes_at_once(db_path, holder):
    db = Database.open(db_path, {"lock_timeout": LONG, "sync_mode": "normal"})
    assert db.get(b"k") == b"v"
    start = time.monotonic()
    db.close()
    assert time.monotonic() - start < 1.0


def test_a_failed_write_does_not_wait_again_in_close(db_path, holder):
    db = Database.open(db_path, {"lock_timeout": 1.0, "sync_mode": "normal"})
    with pytest.raises(Exception, match="write lock"):
        db.put(b"x", b"y")
    start = time.monotonic()
    db.close()
    assert time.monotonic() - start < 0.5


def test_a_handle_that_owes_a_sync_hands_it_to_the_next_writer(db_path):
    with Database.open(db_path) as db:
        db.put(b"k", b"v")
    db = Database.open(db_path, {"lock_timeout": LONG, "sync_mode": "normal"})
    db.put(b"mine", b"1")  # committed, not yet synced (sync_interval has not passed)
    mine = db.stats()
    assert mine["durable_txn_id"] < mine["last_txn_id"]
    h = LockHolder(db_path)
    try:
        start = time.monotonic()
        db.close()  # cannot take the lock: hands the sync point on
        assert time.monotonic() - start < 1.0
        after = h.commit()  # the next commit makes everything durable
        assert after["durable_txn_id"] == after["last_txn_id"] > mine["last_txn_id"]
    finally:
        h.stop()
    with Database.open(db_path) as db:
        assert db.get(b"mine") == b"1" and db.get(b"from-holder") == b"1"


def test_without_a_request_the_next_commit_need_not_sync(db_path):
    """The hand-off is a request, not a change of mode: a commit with nothing handed to
    it stays unsynced in normal mode."""
    with Database.open(db_path) as db:
        db.put(b"k", b"v")
    h = LockHolder(db_path)
    try:
        after = h.commit()
        assert after["durable_txn_id"] < after["last_txn_id"]
    finally:
        h.stop()
