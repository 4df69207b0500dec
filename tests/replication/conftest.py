"""Fixtures for the replication tests: ``store_url``, each kind of store. The S3 API
(``moto_server``, ``s3``) comes from s3_harness.py through the root conftest.py;
helpers to run processes: replication_harness.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["file", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of each kind."""
    if request.param == "file":
        return "file://" + str(tmp_path / "store")
    return request.getfixturevalue("s3").url
