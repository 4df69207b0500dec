"""Damaged SQL data: a stored row or index entry that does not decode raises
``CorruptionError`` (``RowFormatError`` where it is the row format), never a
``ValueError``, ``struct.error``, ``IndexError`` or ``UnicodeDecodeError``, and
never a wrong answer.

The damage is forged through the storage API (``txn.tree(name).put``), so every
page checksum is valid: only the SQL layer can tell. Each SQL test runs twice,
with the C row decoder and with the pure-Python fallback.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toondb import CorruptionError, SQLError
from toondb.codec import keycode, rowcodec
from toondb.errors import RowFormatError
from toondb.sql import catalog, executor

GOOD = rowcodec.encode_row([2, "bob", 20, 30])
ID2 = b"\x04\x03\x02"  # four values, the first the int8 2 (the id column agrees with the key)

# (what is wrong, the forged row value of rowid 2); each fails by the second value
BAD_ROWS = [
    ("empty value", b""),
    ("truncated after the value count", b"\x04"),
    ("truncated inside the text", GOOD[:6]),
    ("unknown value tag", ID2 + b"\x0c"),
    ("text that is not UTF-8", ID2 + b"\x08\x02\xff\xfe\x03\x14\x03\x1e"),
    ("text longer than the value", ID2 + b"\x08\x7fab"),
    ("text length beyond 2**63", ID2 + b"\x08" + b"\xff" * 9 + b"\x01ab"),
    ("integer cut short", b"\x04\x06\x01\x02"),
    ("value count varint never ends", b"\xff" * 12),
]


@pytest.fixture(params=["c", "python"])
def decoder(request, monkeypatch):
    """Which row decoder the SQL operators use."""
    if request.param == "python":
        monkeypatch.setattr(executor, "decode_row", rowcodec.py_decode_row)
        monkeypatch.setattr(executor, "decode_scan", rowcodec.py_decode_scan)
    return request.param


@pytest.fixture
def people(db, decoder):
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER UNIQUE, age INTEGER)")
    db.execute("CREATE INDEX t_name ON t(name)")
    db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(1, "ann", 10, 40), (2, "bob", 20, 30)])
    return db


def _trees(db) -> tuple[bytes, dict[str, bytes]]:
    """The rows tree of table t and its index trees by index name (catalog.py)."""
    with db.transaction(read_only=True) as txn:
        table = catalog.load(txn).tables["t"]
    assert table.tree.startswith(b"sql:t:")
    return table.tree, {ix.name: ix.tree for ix in table.indexes}


def _forge(db, tree: bytes, key: bytes, value: bytes) -> None:
    with db.transaction() as txn:
        txn.tree(tree).put(key, value)


def _raises_corruption(db, sql: str, params=(), kind=CorruptionError) -> CorruptionError:
    with pytest.raises(kind) as info:
        db.execute(sql, params)
    assert not isinstance(info.value, (SQLError, ValueError)), type(info.value)
    return info.value


@pytest.mark.parametrize("what, value", BAD_ROWS, ids=[w for w, _ in BAD_ROWS])
def test_a_forged_row_value_raises_corruption_on_every_read_path(people, what, value):
    rows_tree, _ = _trees(people)
    _forge(people, rows_tree, keycode.rowid_key(2), value)
    for sql in (
        "SELECT * FROM t",  # full scan
        "SELECT * FROM t WHERE id = 2",  # rowid lookup
        "SELECT * FROM t WHERE id >= 2",  # rowid range
        "SELECT * FROM t WHERE id IN (2, 3)",  # rowid IN list
        "SELECT * FROM t WHERE name = 'bob'",  # index probe, then the row
        "SELECT * FROM t WHERE n = 20",  # UNIQUE index probe
        "SELECT COUNT(*) FROM t WHERE name > 'a'",  # aggregate over an index range
        "SELECT name FROM t WHERE age > 0",  # a scan the C decoder filters
        "SELECT name FROM t WHERE age + 0 > 0",  # a scan filtered in Python
        "SELECT a.name FROM t AS a JOIN t AS b ON a.age = b.n",  # an index nested loop
        "SELECT a.name FROM t AS a JOIN t AS b ON a.age = b.age",  # a hash join
        "UPDATE t SET n = n + 1",
        "DELETE FROM t WHERE id = 2",
    ):
        err = _raises_corruption(people, sql, kind=RowFormatError)
        assert isinstance(err, CorruptionError)
    # the undamaged row still reads
    assert people.execute("SELECT name FROM t WHERE id = 1").rows == [("ann",)]


def test_a_forged_row_key_that_is_no_rowid_raises_corruption(people):
    rows_tree, _ = _trees(people)
    _forge(people, rows_tree, b"\x80\x00\x01", rowcodec.encode_row([3, "cy", 30, 50]))
    _raises_corruption(people, "SELECT * FROM t", kind=RowFormatError)
    _raises_corruption(people, "SELECT name FROM t WHERE age > 0", kind=RowFormatError)


def test_an_index_entry_whose_value_is_no_rowid_key_raises_corruption(people):
    _, index_trees = _trees(people)
    key = keycode.encode_values(["bob"]) + keycode.rowid_key(2)
    _forge(people, index_trees["t_name"], key, b"\x01\x02\x03")
    _raises_corruption(people, "SELECT id FROM t WHERE name = 'bob'", kind=RowFormatError)


def test_an_index_entry_for_a_missing_row_raises_corruption(people):
    _, index_trees = _trees(people)
    ghost = keycode.rowid_key(99)
    _forge(people, index_trees["t_name"], keycode.encode_values(["zed"]) + ghost, ghost)
    err = _raises_corruption(people, "SELECT id FROM t WHERE name = 'zed'")
    assert "t_name" in str(err) and "99" in str(err)
    _raises_corruption(people, "SELECT id FROM t WHERE name > 'a' ORDER BY name")
    # the entries of rows that exist still answer
    assert people.execute("SELECT id FROM t WHERE name = 'ann'").rows == [(1,)]


def test_a_forged_unique_index_entry_raises_corruption_on_a_conflict_check(people):
    _, index_trees = _trees(people)
    unique = next(tree for name, tree in index_trees.items() if name != "t_name")
    _forge(people, unique, keycode.encode_values([20]), b"\x00\x07")  # no rowid key
    _raises_corruption(
        people, "INSERT OR REPLACE INTO t VALUES (3, 'cy', 20, 50)", kind=RowFormatError
    )
    assert people.execute("SELECT COUNT(*) FROM t").rows == [(2,)]


def test_a_rowid_key_of_another_length_does_not_decode():
    assert keycode.key_rowid(keycode.rowid_key(-5)) == -5
    for key in (b"", b"\x80\x00", keycode.rowid_key(1) + b"\x00"):
        with pytest.raises(RowFormatError):
            keycode.key_rowid(key)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=0, max_value=6))
def test_c_and_python_row_decoders_agree_on_any_bytes(data, width):
    """Both decode the same row or both raise RowFormatError: nothing else."""
    defaults = tuple(range(width))
    key = keycode.rowid_key(1)
    outcomes = []
    for decode in (rowcodec.decode_row, rowcodec.py_decode_row):
        try:
            outcomes.append(repr(decode(data, defaults, key)))
        except RowFormatError:
            outcomes.append("RowFormatError")
    assert outcomes[0] == outcomes[1], (data, outcomes)
    outcomes = []
    for decode in (rowcodec.decode_values, rowcodec.py_decode_values):
        try:
            outcomes.append(repr(decode(data)))
        except RowFormatError:
            outcomes.append("RowFormatError")
    assert outcomes[0] == outcomes[1], (data, outcomes)
