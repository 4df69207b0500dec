"""The tests of the DB-API compliance suite (dbapi-compliance's ``dbapi20``) that do
not apply to toondb, each with the reason. tests/ecosystem/test_dbapi20.py skips
exactly these, naming the reason; every other test of the suite must pass.

For comparison, stdlib sqlite3 (Python 3.11, SQLite 3.40) on the same suite here:
24 passed, 12 failed (the five type objects, description's type code, fetch*
after a statement without rows, close twice, and the two tests that exist only to be
overridden).
"""

SKIPS: dict[str, str] = {
    "test_nextset": (
        "the suite's test needs a stored procedure returning two result sets; toondb "
        "(SQLite's dialect) has neither stored procedures nor multiple result sets, so "
        "Cursor has no nextset() (an optional PEP 249 method)"
    ),
    "test_non_idempotent_close": (
        "closing a closed connection does nothing, as in sqlite3: PEP 249 does not ask "
        "for an error (the suite says 'reasonable persons differ'), and sqlite3-based "
        "code (contextlib.closing after close(), SQLAlchemy's pool) closes twice"
    ),
}
