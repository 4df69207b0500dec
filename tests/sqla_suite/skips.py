"""Tests of SQLAlchemy's suite that toondb's dialect fails for a reason not stated by a
requirement (toondb_requirements.py), each with that reason. Keyed by the test's node
id without the file ("Class::test[params]"): a prefix of it matches."""

from __future__ import annotations

import re

_SCHEMA = "one schema per database: a schema-qualified name is taken as the bare name"

# on every dialect: the [True-...] variants use config.test_schema without asking
# requirements.schemas (closed for every dialect: see toondb_requirements.py)
SKIPS_ALL: dict[str, str] = {
    "ComponentReflectionTestExtra::test_check_constraint_parenthesized_expressions[True": _SCHEMA,
    "ComponentReflectionTestExtra::test_check_constraint_standalone[True": _SCHEMA,
    "ComponentReflectionTestExtra::test_check_constraint_inline[True": _SCHEMA,
    "ComponentReflectionTestExtra::test_check_constraint_mixed[True": _SCHEMA,
}

# on toondb's dialect only
SKIPS: dict[str, str] = {
    "IsolationLevelTest::test_dialect_user_setting_is_restored": (
        "one isolation level besides AUTOCOMMIT (SERIALIZABLE): no second level to switch to"
    ),
    "WindowFunctionTest::test_window_range_dates": (
        "RANGE with a date-string offset: SQLite refuses it the same way ('frame starting "
        "offset must be a non-negative number'); SQLAlchemy's SQLite dialect fails it too"
    ),
}


def reason_to_skip(nodeid: str, config) -> str | None:
    """The reason to skip the test nodeid in this run, or None."""
    # "test_suite.py::Class_toondb+toondb_3_35_0::test[params]" -> "Class::test[params]"
    name = re.sub(r"_[a-z]+\+[a-z]+_[\d_]+::", "::", nodeid.split("::", 1)[-1])
    skips = dict(SKIPS_ALL)
    urls = getattr(config.option, "dburi", None) or []
    if not urls or any(u.startswith("toondb") for u in urls):
        skips.update(SKIPS)
    for key, reason in skips.items():
        if name.startswith(key):
            return reason
    return None
