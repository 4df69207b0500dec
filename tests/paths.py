"""Where the tests find things: the project's root and the shared conformance data
(``../shared`` beside the project).

A test that needs the shared data calls :func:`require_shared`: on a fresh clone
without it the test skips; where ``TOONDB_REQUIRE_FIXTURES=1`` is set (CI, which has
``../shared``: see .ci/run) it fails instead, so CI never passes without running it."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
SEED = SHARED / "seed"

REQUIRE_ENV = "TOONDB_REQUIRE_FIXTURES"


def fixtures_required() -> bool:
    """True where the environment says the shared data must be present (CI)."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def require_shared(present: bool, what: str) -> None:
    """Skip the calling test when ``what`` (shared data) is absent, or fail it when
    ``TOONDB_REQUIRE_FIXTURES`` is set."""
    if present:
        return
    message = f"{what} not found beside the repository (../shared)"
    if fixtures_required():
        pytest.fail(f"{message}, and {REQUIRE_ENV} is set", pytrace=False)
    pytest.skip(message)
