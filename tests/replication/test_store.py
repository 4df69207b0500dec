"""Object stores (file:// and s3:// against moto's server) behind one interface, the
object format's checksums, and the small parsers (URLs, durations, object names)."""

from __future__ import annotations

import io
import os

import pytest

from toondb import CorruptionError, ObjectStoreError, ReplicationError
from toondb.replication import open_store, parse_duration
from toondb.replication.objects import (
    BATCH,
    HEADER_SIZE,
    SNAPSHOT,
    Header,
    ObjectWriter,
    batch_key,
    iter_frames,
    iter_payload,
    parse_key,
    read_object,
    snapshot_key,
)
from toondb.replication.store import FileStore, retry


def test_a_store_puts_gets_lists_and_deletes(store_url):
    store = open_store(store_url)
    assert store.get("a/missing") is None
    store.put("a/one", b"1" * 10)
    store.put("a/two", io.BytesIO(b"22"))
    big = os.urandom(17 << 20)  # past the in-memory spool: the multipart path on S3
    store.put("b/big", io.BytesIO(big))
    with store.get("a/one") as f:
        assert f.read() == b"1" * 10
    with store.get("b/big") as f:
        assert f.read() == big
    store.put("a/one", b"replaced")
    with store.get("a/one") as f:
        assert f.read() == b"replaced"
    assert store.list("a/") == [("a/one", 8), ("a/two", 2)]
    assert [k for k, _ in store.list("")] == ["a/one", "a/two", "b/big"]
    store.delete(["a/one", "a/never-was"])
    assert [k for k, _ in store.list("")] == ["a/two", "b/big"]
    store.close()


def test_an_unreachable_store_is_an_object_store_error(s3):
    store = open_store(s3.url)
    s3.stop()
    with pytest.raises(ObjectStoreError, match="cannot write"):
        store.put("x", b"y")
    with pytest.raises(ObjectStoreError, match="cannot read"):
        store.get("x")
    s3.start()
    store.put("x", b"y")


def test_urls(tmp_path):
    assert isinstance(open_store("file://" + str(tmp_path)), FileStore)
    for bad, why in [
        ("s3:///prefix", "no bucket"),
        ("file://host/dir", "local directory"),
        ("ftp://x/y", "unsupported"),
        ("file://", "no directory"),
    ]:
        with pytest.raises(ReplicationError, match=why):
            open_store(bad)
    store = open_store("file://" + str(tmp_path))
    for key in ["../escape", "a/../../b", "", ".tmp-x"]:
        with pytest.raises(ValueError, match="bad object key"):
            store.put(key, b"")


def test_retry_backs_off_and_gives_up():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ObjectStoreError("down")
        return "up"

    assert retry(flaky, sleep=sleeps.append) == "up" and len(sleeps) == 2
    with pytest.raises(ObjectStoreError):
        retry(
            lambda: (_ for _ in ()).throw(ObjectStoreError("down")), attempts=3, sleep=sleeps.append
        )
    assert all(s < 10 for s in sleeps)


def _batch() -> io.BytesIO:
    w = ObjectWriter(Header(BATCH, 3, 10, 12, lineage=b"L" * 16))
    for txn in (11, 12):
        records = b"\x04\x01\x00\x01\x00\x00\x00k" + bytes([txn])
        w.write(txn.to_bytes(8, "little") + (5).to_bytes(8, "little"))
        w.write((1).to_bytes(4, "little") + len(records).to_bytes(4, "little") + records)
    return io.BytesIO(w.finish().read())


def test_objects_carry_checksums_that_name_them():
    f = _batch()
    h = read_object(f, "b", BATCH)
    assert (h.generation, h.base, h.last, h.lineage) == (3, 10, 12, b"L" * 16)
    assert [fr.txn for fr in iter_frames(f, h, "b")] == [11, 12]
    raw = bytearray(_batch().getvalue())
    for at, why in [(30, "header checksum"), (HEADER_SIZE + 3, "payload"), (0, "not a toondb")]:
        damaged = bytearray(raw)
        damaged[at] ^= 0x10
        with pytest.raises(CorruptionError, match=f"replica object gen/b is damaged: .*{why}"):
            read_object(io.BytesIO(bytes(damaged)), "gen/b", BATCH)
    with pytest.raises(CorruptionError, match="a batch where a snapshot belongs"):
        read_object(_batch(), "x", SNAPSHOT)
    with pytest.raises(CorruptionError, match="payload"):
        read_object(io.BytesIO(bytes(raw[:-4])), "x", BATCH)  # truncated


def test_a_payload_that_decodes_short_is_damage():
    w = ObjectWriter(Header(SNAPSHOT, 1, 5, 5))
    w.write(b"x" * 1000)
    f = w.finish()
    h = read_object(f, "s", SNAPSHOT)
    h.raw_len += 1  # as if the header said more than the payload holds
    with pytest.raises(CorruptionError, match="decoded"):
        b"".join(iter_payload(f, h, "s"))


def test_names_and_durations():
    assert parse_key(batch_key(7, 123)) == (7, "batches", 123)
    assert parse_key(snapshot_key(7, 5)) == (7, "snapshots", 5)
    assert parse_key("manifest") is None and parse_key("generations/x/batches/1.batch") is None
    assert parse_duration("7d") == 7 * 86400 and parse_duration("90") == 90
    assert parse_duration("1.5h") == 5400 and parse_duration("2w") == 14 * 86400
    for bad in ["", "d", "-1s", "0", "7 days"]:
        with pytest.raises(ValueError):
            parse_duration(bad)
