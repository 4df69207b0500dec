"""A hostile or broken client can neither crash the server nor disturb the other
clients: malformed, oversized and random frames, half-closed and abandoned
connections each get an error reply or a closed connection, and the server keeps
serving everyone else. Also the typed-value codec against random input."""

from __future__ import annotations

import os
import random
import socket
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipc_harness import ServerProcess, error_of, raw_connect, read_frame

from toondb import Database, IpcClient, ProtocolError
from toondb.ipc import protocol as P
from toondb.ipc.protocol import ERROR_CLASSES


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("ipc_robust")
    # a short lock_timeout: the fuzz makes sessions that wait for the write lock
    # their own SQL BEGIN IMMEDIATE holds (as a thread would embedded)
    srv = ServerProcess(root / "db", "--lock-timeout", "0.05").start()
    yield srv
    alive = srv.alive()
    code = srv.stop()
    log = srv.log()
    assert alive, "the server died\n" + log
    assert code == 0, log
    assert "Traceback" not in log and "unexpected" not in log, log
    with Database.open(root / "db") as db:
        db.check()


def _still_serving(server) -> None:
    with IpcClient.connect(server.socket_path, timeout=10) as client:
        client.put(b"canary", b"alive")
        assert client.get(b"canary") == b"alive"
        client.ping()


def _ask(s: socket.socket, code: int, payload: bytes = b"") -> tuple[int, bytes]:
    s.sendall(P.frame(code, payload))
    return read_frame(s)


def _assert_error(reply: tuple[int, bytes], name: str, fragment: str = "") -> None:
    code, payload = reply
    assert code == P.ST_ERROR, reply
    got, message = error_of(payload)
    assert got == name, (got, message)
    assert fragment in message, message


# ---- the handshake ----------------------------------------------------------------


def test_bad_magic_gets_an_error_and_a_close(server):
    s = raw_connect(server.socket_path, hello=False)
    s.sendall(P.frame(P.OP_HELLO, P.HELLO_HEAD.pack(b"GET / HT", 1, 1)))
    _assert_error(read_frame(s), "ProtocolError", "bad magic")
    assert read_frame(s) == (-1, b"")
    _still_serving(server)


def test_version_mismatch_names_the_versions(server):
    s = raw_connect(server.socket_path, hello=False)
    s.sendall(P.frame(P.OP_HELLO, P.HELLO_HEAD.pack(P.MAGIC, 7, 9)))
    _assert_error(read_frame(s), "ProtocolError", "7..9")
    assert read_frame(s) == (-1, b"")


def test_first_frame_must_be_hello(server):
    s = raw_connect(server.socket_path, hello=False)
    s.sendall(P.frame(P.OP_GET, b"key"))
    _assert_error(read_frame(s), "ProtocolError", "HELLO")
    assert read_frame(s) == (-1, b"")
    s = raw_connect(server.socket_path, hello=False)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    code, _ = read_frame(s)
    assert code in (P.ST_ERROR, -1)
    assert read_frame(s) == (-1, b"")
    _still_serving(server)


def test_a_silent_connection_does_not_block_others(server):
    silent = [raw_connect(server.socket_path, hello=False) for _ in range(5)]
    half = raw_connect(server.socket_path)
    half.sendall(P.frame(P.OP_PUT, b"\x05\x00\x00\x00hello world")[:7])  # part of a frame
    _still_serving(server)
    for s in silent:
        s.close()
    half.close()


def test_a_connect_flood_is_survived(server):
    flood = []
    for _ in range(400):
        try:
            flood.append(raw_connect(server.socket_path, hello=False))
        except OSError:  # a full backlog: the server is shedding connections
            break
    for s in flood:
        s.close()
    deadline = time.monotonic() + 10
    while True:  # the server sees the closes asynchronously; then it serves again
        try:
            _still_serving(server)
            break
        except ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.01)


# ---- frames -------------------------------------------------------------------------


def test_oversized_and_empty_frames_close_the_connection(server):
    for length in (P.DEFAULT_MAX_FRAME + 1, 0xFFFFFFFF, 0):
        s = raw_connect(server.socket_path)
        s.sendall(struct.pack("<IB", length, P.OP_PUT) + b"x" * 100)
        _assert_error(read_frame(s), "ProtocolError", "frame of")
        assert read_frame(s) == (-1, b"")
    _still_serving(server)


def test_malformed_payloads_get_errors_and_the_connection_goes_on(server):
    s = raw_connect(server.socket_path)
    cases = [
        (P.OP_PUT, b"\x01\x02", "ProtocolError"),
        (P.OP_PUT, b"\xff\x00\x00\x00key", "ProtocolError"),
        (P.OP_PUT | P.TXN, b"\x01\x00\x00\x00k", "TransactionClosedError"),
        (P.OP_PUT, b"\x00\x00\x00\x00value", "ValueError"),
        (P.OP_GET, b"", "ValueError"),
        (P.OP_GET, b"k" * 5000, "ValueError"),
        (P.OP_SCAN, b"\x00\x01", "ProtocolError"),
        (P.OP_SCAN, b"\x00\x01\x00\x00\x00\xff\xff\x00\x00", "ProtocolError"),
        (P.OP_SCAN, b"\x00\x01\x00\x00\x00\x00\x00\x00\x00stray", "ProtocolError"),
        (P.OP_SCAN_NEXT, b"\x07\x00\x00\x00\x01\x00\x00\x00", "ProtocolError"),
        (P.OP_SCAN_NEXT, b"\x07", "ProtocolError"),
        (P.OP_SCAN_CLOSE, b"\x07\x00", "ProtocolError"),
        (P.OP_BEGIN, b"", "ProtocolError"),
        (P.OP_BEGIN, b"\x00\x00", "ProtocolError"),
        (P.OP_COMMIT, b"", "TransactionClosedError"),
        (P.OP_GET | P.TXN, b"k", "TransactionClosedError"),
        (P.OP_HELLO, P.HELLO_HEAD.pack(P.MAGIC, 1, 1), "ProtocolError"),
        (0x7E, b"whatever", "ProtocolError"),
        (0xFF, b"", "ProtocolError"),
    ]
    for code, payload, name in cases:
        _assert_error(_ask(s, code, payload), name)
        assert _ask(s, P.OP_PING) == (P.ST_OK, b"")
    assert _ask(s, P.OP_SCAN_CLOSE, b"\x07\x00\x00\x00") == (P.ST_OK, b"")  # unknown ids: fine
    # one transaction per connection; an immediate one makes outside writes fail fast
    assert _ask(s, P.OP_BEGIN, bytes([P.BEGIN_IMMEDIATE]))[0] == P.ST_OK
    _assert_error(_ask(s, P.OP_BEGIN, b"\x00"), "TransactionError", "already")
    t0 = time.monotonic()
    _assert_error(_ask(s, P.OP_PUT, b"\x01\x00\x00\x00kv"), "DatabaseLockedError")
    _assert_error(_ask(s, P.OP_CHECKPOINT), "DatabaseLockedError")
    assert time.monotonic() - t0 < 1
    assert _ask(s, P.OP_ABORT) == (P.ST_OK, b"")
    assert _ask(s, P.OP_ABORT) == (P.ST_OK, b"")
    s.close()
    _still_serving(server)


def test_pipelined_and_fragmented_requests(server):
    s = raw_connect(server.socket_path)
    s.sendall(P.frame(P.OP_PING) * 200)
    for _ in range(200):
        assert read_frame(s) == (P.ST_OK, b"")
    # one byte at a time
    request = P.frame(P.OP_PUT, b"\x03\x00\x00\x00abcvalue") + P.frame(P.OP_GET, b"abc")
    for i in range(len(request)):
        s.sendall(request[i : i + 1])
    assert read_frame(s) == (P.ST_OK, b"")
    assert read_frame(s) == (P.ST_OK, b"value")
    # a large frame in uneven pieces
    value = os.urandom(3 << 20)
    request = P.frame(P.OP_PUT, b"\x03\x00\x00\x00big" + value)
    pos = 0
    rnd = random.Random(5)
    while pos < len(request):
        n = rnd.randrange(1, 200_000)
        s.sendall(request[pos : pos + n])
        pos += n
    assert read_frame(s) == (P.ST_OK, b"")
    assert _ask(s, P.OP_GET, b"big") == (P.ST_OK, value)
    s.close()


def test_half_closed_connections(server):
    # a complete request, then the client stops sending: the reply still comes
    s = raw_connect(server.socket_path)
    s.sendall(P.frame(P.OP_PUT, b"\x02\x00\x00\x00hcvalue"))
    s.shutdown(socket.SHUT_WR)
    assert read_frame(s) == (P.ST_OK, b"")
    assert read_frame(s) == (-1, b"")
    # half a frame, then the client stops sending: the server closes
    s = raw_connect(server.socket_path)
    s.sendall(P.frame(P.OP_PUT, b"\x02\x00\x00\x00hcvalue")[:6])
    s.shutdown(socket.SHUT_WR)
    assert read_frame(s) == (-1, b"")
    # the client stops reading: the server is not disturbed
    s = raw_connect(server.socket_path)
    s.shutdown(socket.SHUT_RD)
    s.sendall(P.frame(P.OP_PING) * 100)
    _still_serving(server)
    s.close()


def test_abandoned_connections_are_cleaned_up(server):
    for _ in range(50):
        s = raw_connect(server.socket_path)
        s.sendall(P.frame(P.OP_BEGIN, bytes([P.BEGIN_IMMEDIATE])))
        assert read_frame(s)[0] == P.ST_OK
        s.sendall(P.frame(P.OP_PUT | P.TXN, b"\x05\x00\x00\x00ghostboo"))
        s.sendall(P.frame(P.OP_SCAN, struct.pack("<BII", 0, 1, 0)))
        s.close()  # gone mid-transaction, with an open scan
    t0 = time.monotonic()
    _still_serving(server)  # the write lock came back promptly each time
    assert time.monotonic() - t0 < 5
    with IpcClient.connect(server.socket_path) as client:
        assert client.get(b"ghost") is None


@pytest.mark.slow
def test_a_frame_that_never_finishes_is_dropped(server):
    from toondb.ipc.server import FRAME_TIMEOUT

    s = raw_connect(server.socket_path, timeout=FRAME_TIMEOUT + 20)
    s.sendall(P.frame(P.OP_PUT, b"\x02\x00\x00\x00hcvalue")[:6])
    _assert_error(read_frame(s), "ProtocolError", "did not arrive")
    assert read_frame(s) == (-1, b"")


# ---- fuzz ---------------------------------------------------------------------------

_OPS = [
    P.OP_PING, P.OP_GET, P.OP_PUT, P.OP_DELETE, P.OP_SCAN, P.OP_SCAN_NEXT, P.OP_SCAN_CLOSE,
    P.OP_BEGIN, P.OP_COMMIT, P.OP_ABORT, P.OP_CHECKPOINT, P.OP_STATS, P.OP_CHECK, P.OP_SQL,
    P.OP_HELLO,
]  # fmt: skip


_SQL = [
    "SELECT 1",
    "SELECT ?",
    "SELECT :a",
    "CREATE TABLE IF NOT EXISTS fz (k INTEGER PRIMARY KEY, v TEXT UNIQUE)",
    "INSERT INTO fz (k, v) VALUES (?, 'x')",
    "INSERT INTO fz VALUES (?, ?)",
    "SELECT * FROM fz WHERE k > ?",
    "DELETE FROM fz WHERE k = ?",
    "BEGIN",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "nonsense",
    "",
    "SELECT 1; SELECT 2",
]


def _fuzz_payload(rnd: random.Random, op: int) -> bytes:
    kind = rnd.random()
    if kind < 0.3:
        return rnd.randbytes(rnd.randrange(0, 24))
    base = op & ~P.TXN
    if base == P.OP_PUT:
        key = rnd.randbytes(rnd.randrange(0, 8))
        klen = len(key) if kind < 0.8 else rnd.randrange(0, 1 << 32)
        return struct.pack("<I", klen) + key + rnd.randbytes(rnd.randrange(0, 40))
    if base == P.OP_SCAN:
        start = rnd.randbytes(rnd.randrange(0, 4))
        slen = len(start) if kind < 0.8 else rnd.randrange(0, 1 << 32)
        flags = rnd.randrange(0, 256)
        end = rnd.randbytes(rnd.randrange(0, 4)) if flags & P.SCAN_HAS_END else b""
        return struct.pack("<BII", flags, rnd.randrange(0, 1 << 32), slen) + start + end
    if base == P.OP_SCAN_NEXT:
        return struct.pack("<II", rnd.randrange(0, 8), rnd.randrange(0, 1 << 32))
    if base == P.OP_SCAN_CLOSE:
        return struct.pack("<I", rnd.randrange(0, 8)) * rnd.randrange(0, 4)
    if base == P.OP_BEGIN:
        return bytes([rnd.randrange(0, 256)])
    if base == P.OP_SQL:
        sql = rnd.choice(_SQL)
        params = rnd.choice(
            [None, [], [rnd.randrange(-9, 9)], {"a": "x"}, [[1], [2]], [b"\x00", 1.5, None], [[]]]
        )
        many = rnd.random() < 0.2
        if kind < 0.6:
            return P.encode_value([sql, params, many])
        return P.encode_value(rnd.choice([[sql], [sql, params], [1, 2, 3], {"sql": sql}, sql]))
    return rnd.randbytes(rnd.randrange(1, 12))


def _fuzz_frame(rnd: random.Random) -> bytes:
    r = rnd.random()
    op = rnd.choice(_OPS) if r < 0.8 else rnd.randrange(256)
    if r < 0.5 and (op & ~P.TXN) in (P.OP_GET, P.OP_PUT, P.OP_DELETE, P.OP_SCAN):
        op |= P.TXN
    return P.frame(op, _fuzz_payload(rnd, op))


def _broken_length(rnd: random.Random) -> bytes:
    """A frame header whose length is 0, over the limit, or longer than what follows."""
    length = rnd.choice([0, P.DEFAULT_MAX_FRAME + 1, 0xFFFFFFFF, rnd.randrange(50, 1 << 32)])
    return struct.pack("<IB", length, rnd.randrange(256)) + rnd.randbytes(rnd.randrange(0, 40))


def test_fuzz_ten_thousand_frames(server):
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"fuzz seed {seed}")
    rnd = random.Random(seed)
    sent = replies = closes = 0
    names: set[str] = set()
    s = raw_connect(server.socket_path)
    while sent < 10_000:
        batch = [_fuzz_frame(rnd) for _ in range(rnd.randrange(1, 40))]
        broken = rnd.random() < 0.05
        s.sendall(b"".join(batch) + (_broken_length(rnd) if broken else b""))
        sent += len(batch)
        for _ in batch:
            code, payload = read_frame(s)
            if code == -1:  # the server closed the connection: the fuzz frame was fatal
                closes += 1
                break
            replies += 1
            assert code in (P.ST_OK, P.ST_NIL, P.ST_ERROR), code
            if code == P.ST_ERROR:
                name, message = error_of(payload)
                assert name in ERROR_CLASSES, (name, message)
                names.add(name)
        else:
            if not broken and rnd.random() > 0.01:
                continue
        # a broken length: an error reply and a close, or a server that waits for
        # the rest of the frame; either way start a new connection (as now and then)
        s.close()
        s = raw_connect(server.socket_path)
    s.close()
    # valid frames never make the server close: every one of them got its reply
    assert replies == sent and closes == 0, (sent, replies, closes)
    assert "ProtocolError" in names
    # raw random bytes, with and without a handshake
    for i in range(200):
        s = raw_connect(server.socket_path, hello=bool(i % 2))
        s.sendall(rnd.randbytes(rnd.randrange(1, 2000)))
        s.close()
    _still_serving(server)
    log = server.log()
    assert "Traceback" not in log and "unexpected" not in log, log[-3000:]


# ---- the typed-value codec -------------------------------------------------------------

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_typed_values_round_trip(value):
    decoded = P.decode_value(P.encode_value(value))
    assert decoded == value
    assert type(decoded) is type(value)


def test_typed_values_keep_special_floats_and_surrogates():
    assert P.decode_value(P.encode_value(float("inf"))) == float("inf")
    nan = P.decode_value(P.encode_value(float("nan")))
    assert nan != nan
    assert P.decode_value(P.encode_value("\udcff")) == "\udcff"
    assert P.decode_value(P.encode_value((1, 2))) == [1, 2]
    with pytest.raises(TypeError):
        P.encode_value(object())
    with pytest.raises(TypeError):
        P.encode_value({1, 2})


def test_vectors_travel_as_float32():
    np = pytest.importorskip("numpy")
    for a in (np.arange(5, dtype=np.float32), np.array([0.1, -2.5]), np.arange(3)):
        out = P.decode_value(P.encode_value([a, {"v": a}]))
        assert out[0].dtype == np.float32 and np.array_equal(out[0], a.astype(np.float32))
        assert np.array_equal(out[1]["v"], out[0])
    assert P.encode_value(np.float32(1.5)) == P.encode_value(1.5)
    assert P.decode_value(P.encode_value(np.int64(7))) == 7
    for bad in (np.zeros((2, 2)), np.array(["x"]), np.array([True])):
        with pytest.raises(TypeError, match="1-D array of real numbers"):
            P.encode_value(bad)
    with pytest.raises(ProtocolError):
        P.decode_value(b"\x0a\x03\x00\x00\x00" + b"\x00" * 8)  # 3 dimensions, 2 sent


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_decode_into_anything_but_protocol_error(data):
    try:
        P.decode_value(data)
    except ProtocolError:
        pass


def test_hostile_typed_values_are_bounded():
    deep = b"\x08\x01\x00\x00\x00" * 100 + b"\x00"
    with pytest.raises(ProtocolError, match="deeper"):
        P.decode_value(deep)
    with pytest.raises(ProtocolError):
        P.decode_value(b"\x08\xff\xff\xff\xff\x00")  # a huge count in a tiny frame
    with pytest.raises(ProtocolError):
        P.decode_value(b"\x07\xff\xff\xff\x7f")
    with pytest.raises(ProtocolError):
        P.decode_value(b"\x09\x01\x00\x00\x00\x08\x00\x00\x00\x00\x00")  # a list as a key
    with pytest.raises(ProtocolError):
        P.decode_value(b"\x00\x00")  # stray bytes
