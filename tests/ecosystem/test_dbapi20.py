"""The DB-API compliance suite (``pip install dbapi-compliance``: ``dbapi20``) against
toondb.dbapi, on a fresh database per test. The tests that do not apply are listed
with their reasons in dbapi20_skips.py; everything else must pass."""

from __future__ import annotations

import unittest

import pytest
from dbapi20_skips import SKIPS

import toondb.dbapi

dbapi20 = pytest.importorskip("dbapi20")


class TestToonDBCompliance(dbapi20.DatabaseAPI20Test):
    driver = toondb.dbapi
    connect_args = ()
    connect_kw_args: dict = {}

    @pytest.fixture(autouse=True)
    def _database_in_tmp_path(self, tmp_path):
        # a fresh database per test, in tmp_path so that it is check()ed afterwards
        self.connect_args = (str(tmp_path / "db"),)

    def test_setoutputsize(self) -> None:
        # the suite leaves this one to the driver: setoutputsize does nothing, takes
        # a size with or without a column, and the cursor works after it
        con = self._connect()
        try:
            cur = con.cursor()
            cur.setoutputsize(100)
            cur.setoutputsize(100, 0)
            self._paraminsert(cur)
        finally:
            con.close()


for _name, _reason in SKIPS.items():
    setattr(TestToonDBCompliance, _name, unittest.skip(_reason)(lambda self: None))


def test_the_skip_list_names_tests_of_the_suite():
    for name in SKIPS:
        assert hasattr(dbapi20.DatabaseAPI20Test, name), name
