"""Shared fixtures and the checks that run after every test.

- Integrity (as bbolt does after every test): every toondb page file a test left
  under its ``tmp_path`` (a database directory's ``toondb.data``, a ``.hnsw`` index,
  any file that starts like a page file) is opened read-only and ``check()``ed when
  the test ends. A test that damages files on purpose says so with
  ``@pytest.mark.damages_files``.
- The working directory: a test that changes it must restore it (use
  ``monkeypatch.chdir``); the check fails the test otherwise.

Tests are laid out by package: storage/, sql/, vector/, toon/, ipc/, cli/, guide/
(the product guide's examples); shared helpers sit here (paths.py, sql_harness.py,
ipc_harness.py) and are importable from every folder (pytest's ``pythonpath``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from s3_harness import moto_server, s3  # noqa: F401 - fixtures for every folder

from toondb import CorruptionError, Database
from toondb.storage import StorageEnvironment

_META_MAGIC = b"toondb\x00\x1a"  # at byte 8 of a page file's first meta page


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "damages_files: the test damages page files on purpose (no integrity check after it)",
    )


def _page_files(root: Path) -> list[Path]:
    """Every toondb page file under root, each once."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(("-lock", ".lock", ".sock")):
                continue
            path = Path(dirpath) / name
            try:
                with open(path, "rb") as f:
                    head = f.read(16)
            except OSError:
                continue
            if head[8:16] == _META_MAGIC:
                found.append(path)
    return sorted(found)


def _check_page_file(path: Path) -> None:
    target = path.parent if path.name == "toondb.data" else path
    try:
        env = StorageEnvironment.open(target, {"create_if_missing": False}, read_only=True)
    except CorruptionError:
        raise
    except Exception:
        return  # not openable here (a lock file missing, a half-made file): nothing to check
    try:
        env.check()
    finally:
        env.close()


@pytest.fixture(autouse=True)
def _after_each_test(request: pytest.FixtureRequest):
    """The working directory is restored, and every page file the test left is intact."""
    cwd = os.getcwd()
    tmp: Path | None = None
    if "tmp_path" in request.fixturenames and not request.node.get_closest_marker("damages_files"):
        tmp = request.getfixturevalue("tmp_path")
    yield
    assert os.getcwd() == cwd, "the test changed the working directory without restoring it"
    rep = getattr(request.node, "rep_call", None)
    if tmp is None or (rep is not None and rep.failed):
        return  # nothing to check, or the test's own failure says more
    for path in _page_files(tmp):
        try:
            _check_page_file(path)
        except CorruptionError as e:
            pytest.fail(f"integrity check after the test: {path} is damaged: {e}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[type-arg]
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep


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
