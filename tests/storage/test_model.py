"""A model-based test: random sequences of put/delete/get/scan/commit/abort/reopen
against a dict, with 512-byte pages so splits, merges and overflow values happen
with a few dozen keys. Hypothesis prints the failing sequence (its seed is in
the report) and shrinks it."""

from __future__ import annotations

import shutil
import tempfile

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from toondb import Database

PAGE = 512
# small key alphabet so that keys collide, share prefixes and sort in interesting ways
keys = st.binary(min_size=1, max_size=40).map(lambda b: bytes(c % 7 + 97 for c in b))
values = st.one_of(
    st.binary(max_size=30),
    st.binary(min_size=100, max_size=400),  # overflow pages at 512-byte pages
    st.builds(lambda n: b"v" * n, st.integers(min_value=1000, max_value=5000)),
)


class KeyValueModel(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="toondb-model-")
        self.db = Database.open(self.dir, {"page_size": PAGE, "sync_mode": "off"})
        self.committed: dict[bytes, bytes] = {}
        self.txn = None
        self.pending: dict[bytes, bytes] | None = None

    def teardown(self):
        if getattr(self, "txn", None) is not None and not self.txn.closed:
            self.txn.abort()
        if getattr(self, "db", None) is not None:
            self.db.check()
            self.db.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def view(self) -> dict[bytes, bytes]:
        return self.pending if self.pending is not None else self.committed

    # ---- autocommit operations (outside a transaction) ----

    @precondition(lambda self: self.txn is None)
    @rule(k=keys, v=values)
    def put(self, k, v):
        self.db.put(k, v)
        self.committed[k] = v

    @precondition(lambda self: self.txn is None)
    @rule(k=keys)
    def delete(self, k):
        assert self.db.delete(k) == (k in self.committed)
        self.committed.pop(k, None)

    @precondition(lambda self: self.txn is None and self.committed)
    @rule(data=st.data())
    def delete_existing(self, data):
        k = data.draw(st.sampled_from(sorted(self.committed)))
        assert self.db.delete(k)
        del self.committed[k]

    # ---- transactions ----

    @precondition(lambda self: self.txn is None)
    @rule()
    def begin(self):
        self.txn = self.db.begin_transaction()
        self.pending = dict(self.committed)

    @precondition(lambda self: self.txn is not None)
    @rule(k=keys, v=values)
    def txn_put(self, k, v):
        self.txn.put(k, v)
        self.pending[k] = v

    @precondition(lambda self: self.txn is not None)
    @rule(k=keys)
    def txn_delete(self, k):
        assert self.txn.delete(k) == (k in self.pending)
        self.pending.pop(k, None)

    @precondition(lambda self: self.txn is not None and self.pending)
    @rule(data=st.data())
    def txn_delete_many(self, data):
        doomed = data.draw(st.lists(st.sampled_from(sorted(self.pending)), max_size=20))
        for k in doomed:
            assert self.txn.delete(k) == (k in self.pending)
            self.pending.pop(k, None)

    @precondition(lambda self: self.txn is not None)
    @rule(k=keys)
    def txn_get(self, k):
        assert self.txn.get(k) == self.pending.get(k)

    @precondition(lambda self: self.txn is not None)
    @rule(a=keys, b=keys, reverse=st.booleans())
    def txn_scan(self, a, b, reverse):
        lo, hi = min(a, b), max(a, b)
        got = list(self.txn.scan(lo, hi, reverse=reverse))
        want = sorted((k, v) for k, v in self.pending.items() if lo <= k < hi)
        assert got == (want[::-1] if reverse else want)

    @precondition(lambda self: self.txn is not None)
    @rule(k=keys, v=values)
    def txn_scan_while_writing(self, k, v):
        """Writes made during a scan of the same transaction are seen by the rest of it."""
        seen = []
        wrote = False
        for key, _ in self.txn.scan(b""):
            seen.append(key)
            if not wrote:
                self.txn.put(k, v)
                self.pending[k] = v
                wrote = True
        assert seen == sorted(set(seen))
        if wrote and k > seen[0]:
            assert k in seen

    @precondition(lambda self: self.txn is not None)
    @rule()
    def commit(self):
        self.txn.commit()
        self.committed = self.pending
        self.txn = None
        self.pending = None

    @precondition(lambda self: self.txn is not None)
    @rule()
    def abort(self):
        self.txn.abort()
        self.txn = None
        self.pending = None

    # ---- reads of committed state ----

    @rule(k=keys)
    def get(self, k):
        assert self.db.get(k) == self.committed.get(k)

    @rule(a=keys, b=keys, reverse=st.booleans())
    def scan(self, a, b, reverse):
        lo, hi = min(a, b), max(a, b)
        got = list(self.db.scan(lo, hi, reverse=reverse))
        want = sorted((k, v) for k, v in self.committed.items() if lo <= k < hi)
        assert got == (want[::-1] if reverse else want)

    @rule(prefix=st.binary(max_size=3).map(lambda b: bytes(c % 7 + 97 for c in b)))
    def scan_prefix(self, prefix):
        got = list(self.db.scan_prefix(prefix))
        want = sorted((k, v) for k, v in self.committed.items() if k.startswith(prefix))
        assert got == want

    @precondition(lambda self: self.txn is None)
    @rule()
    def reopen(self):
        self.db.check()
        self.db.close()
        self.db = Database.open(self.dir, {"sync_mode": "off"})

    @invariant()
    def entry_count(self):
        if hasattr(self, "db"):
            assert self.db.stats()["entries"] == len(self.committed)


KeyValueModel.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestKeyValueModel = KeyValueModel.TestCase
