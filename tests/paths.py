"""Where the tests find things: the project's root and the shared conformance data
(``../shared`` beside the project; tests that need it skip when it is absent)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
SEED = SHARED / "seed"
