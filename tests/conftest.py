"""Shared fixtures. Every test that writes through the ``db`` fixture gets a full
integrity check of the file afterwards (as bbolt does after every test)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toondb import Database

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db"


@pytest.fixture
def open_db(db_path: Path):
    """A factory: open_db(config=None, path=db_path) -> Database; every handle it
    opened is checked with check() and closed at the end of the test."""
    handles: list[Database] = []

    def opener(config=None, path=None, **kw):
        handle = Database.open(path or db_path, config, **kw)
        handles.append(handle)
        return handle

    yield opener
    for handle in handles:
        if not handle.closed:
            handle.check()
            handle.close()
    if handles and os.path.exists(db_path):
        with Database.open(db_path) as again:
            again.check()


@pytest.fixture
def db(open_db) -> Database:
    return open_db()
