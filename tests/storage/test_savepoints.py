"""Savepoints inside a transaction (Transaction.savepoint / rollback_to / release),
against a model: a dict per tree and a stack of copies of it, one per savepoint, with
SQLite's rules (ROLLBACK TO keeps the savepoint, RELEASE closes it and every newer
one, the newest of a name wins, names compare case-insensitively)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toondb import Database
from toondb.errors import TransactionError

KEYS = st.sampled_from([b"a", b"b", b"c", b"d"])
TREES = st.sampled_from([None, b"t1", b"t2"])
NAMES = st.sampled_from(["s1", "S1", "s2", "s3"])
OPS = st.one_of(
    st.tuples(st.just("put"), TREES, KEYS, st.binary(max_size=3)),
    st.tuples(st.just("put_big"), TREES, KEYS, st.integers(1, 3)),
    st.tuples(st.just("delete"), TREES, KEYS),
    st.tuples(st.just("drop"), st.sampled_from([b"t1", b"t2"])),
    st.tuples(st.just("savepoint"), NAMES),
    st.tuples(st.just("rollback_to"), NAMES),
    st.tuples(st.just("release"), NAMES),
)


def _state(txn, trees=(b"t1", b"t2")):
    out = {None: dict(txn._scan(b"", None, False))}
    for t in trees:
        if txn.has_tree(t):
            out[t] = dict(txn.tree(t).scan())
    return out


def _find(stack, name):
    for i in range(len(stack) - 1, -1, -1):
        if stack[i][0] == name.lower():
            return i
    return None


@settings(max_examples=150, deadline=None)
@given(st.lists(OPS, max_size=40), st.booleans())
def test_savepoints_follow_the_model(tmp_path_factory, ops, commit_first):
    path = tmp_path_factory.mktemp("sp") / "db"
    with Database.open(path) as db:
        db.put(b"a", b"committed")
        with db.transaction() as txn:
            txn.tree(b"t1", create=True).put(b"a", b"in t1")
        model = {None: {b"a": b"committed"}, b"t1": {b"a": b"in t1"}}
        stack: list = []
        txn = db.begin_transaction()
        for op in ops:
            kind = op[0]
            if kind in ("put", "put_big", "delete"):
                tree = op[1]
                target = txn if tree is None else txn.tree(tree, create=True)
                model.setdefault(tree, {})
                if kind == "delete":
                    target.delete(op[2])
                    model[tree].pop(op[2], None)
                else:
                    value = op[3] if kind == "put" else bytes([op[3]]) * (op[3] * 5000)
                    target.put(op[2], value)
                    model[tree][op[2]] = value
            elif kind == "drop":
                txn.drop_tree(op[1])
                model.pop(op[1], None)
            elif kind == "savepoint":
                txn.savepoint(op[1])
                stack.append((op[1].lower(), copy.deepcopy(model)))
            else:
                i = _find(stack, op[1])
                if i is None:
                    with pytest.raises(TransactionError, match="no such savepoint"):
                        getattr(txn, kind)(op[1])
                    continue
                getattr(txn, kind)(op[1])
                if kind == "rollback_to":
                    model = copy.deepcopy(stack[i][1])
                    del stack[i + 1 :]
                else:
                    del stack[i:]
            assert _state(txn) == model
        if commit_first:
            db.put(b"z", b"other")  # an autocommit first: the commit is replayed
            model[None][b"z"] = b"other"
        txn.commit()
        with db.transaction(read_only=True) as r:
            assert _state(r) == model


def test_a_savepoint_undoes_sql_rows_schema_and_vector_index(tmp_path):
    with Database.open(tmp_path / "db") as db:
        db.execute_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        db.execute_sql("CREATE TABLE docs (id INTEGER PRIMARY KEY, e VECTOR(4))")
        db.execute_sql("CREATE INDEX de ON docs USING hnsw (e) WITH (metric = 'l2')")
        near = "SELECT id FROM docs ORDER BY vec_distance_l2(e, ?) LIMIT 3"
        zero = np.zeros(4, np.float32)
        with db.transaction() as txn:
            txn.execute_sql("INSERT INTO t VALUES (1, 'one')")
            txn.execute_sql("INSERT INTO docs VALUES (1, ?)", (np.ones(4, np.float32),))
            with txn.savepoint("inner") as sp:
                txn.execute_sql("INSERT INTO t VALUES (2, 'two')")
                txn.execute_sql("UPDATE t SET v = 'uno' WHERE id = 1")
                txn.execute_sql("CREATE TABLE u (x)")
                txn.execute_sql("INSERT INTO docs VALUES (2, ?)", (zero,))
                assert txn.execute_sql(near, (zero,)).rows == [(2,), (1,)]
                sp.rollback()
                assert txn.execute_sql("SELECT * FROM t").rows == [(1, "one")]
                assert txn.execute_sql(near, (zero,)).rows == [(1,)]
                with pytest.raises(Exception, match="no such table"):
                    txn.execute_sql("SELECT * FROM u")
                txn.execute_sql("INSERT INTO docs VALUES (3, ?)", (zero + 0.5,))
            with pytest.raises(ZeroDivisionError), txn.savepoint("failing"):
                txn.execute_sql("DELETE FROM t")
                raise ZeroDivisionError
            assert txn.execute_sql("SELECT count(*) FROM t").rows == [(1,)]
        assert db.execute_sql("SELECT * FROM t").rows == [(1, "one")]
        assert db.execute_sql(near, (zero,)).rows == [(3,), (1,)]


def test_savepoint_errors(tmp_path):
    with Database.open(tmp_path / "db") as db:
        txn = db.begin_transaction()
        with pytest.raises(TransactionError, match="no such savepoint: x"):
            txn.rollback_to("x")
        txn.savepoint("x")
        txn.savepoint("y")
        txn.release("X")  # case-insensitive, and closes y too
        with pytest.raises(TransactionError, match="no such savepoint: y"):
            txn.release("y")
        with pytest.raises(TypeError):
            txn.savepoint("")
        txn.abort()
        with db.transaction(read_only=True) as r, pytest.raises(Exception, match="read-only"):
            r.savepoint("s")
