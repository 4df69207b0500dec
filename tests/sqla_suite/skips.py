"""Tests of SQLAlchemy's suite that toondb's dialect fails for a reason not stated by a
requirement (toondb_requirements.py), each with that reason. Keyed by the test's node
id without the file ("Class::test[params]"): a prefix of it matches."""

from __future__ import annotations

import re

_SCHEMA = "one schema per database: a schema-qualified name is taken as the bare name"
_FK_NAMES = "the catalog keeps no FOREIGN KEY constraint names (reflected as None)"
_NAMES = "the catalog keeps no UNIQUE constraint names (reflected as None)"

SKIPS: dict[str, str] = {
    # the [True-...] variants use config.test_schema without asking requirements.schemas
    "ComponentReflectionTestExtra::test_check_constraint_parenthesized_expressions[True": _SCHEMA,
    "ComponentReflectionTestExtra::test_check_constraint_standalone[True": _SCHEMA,
    "ComponentReflectionTestExtra::test_check_constraint_inline[True": _SCHEMA,
    "ComponentReflectionTestExtra::test_check_constraint_mixed[True": _SCHEMA,
    "ComponentReflectionTest::test_get_unique_constraints_quoted_name": _NAMES,
    "ComponentReflectionTest::test_get_unique_constraints[": _NAMES,
    "ComponentReflectionTest::test_get_multi_unique_constraints": _NAMES,
    "ComponentReflectionTest::test_get_foreign_keys[": _FK_NAMES,
    "ComponentReflectionTest::test_get_foreign_keys_quoted_name": _FK_NAMES,
    "ComponentReflectionTest::test_get_multi_foreign_keys": _FK_NAMES,
    "IsolationLevelTest::test_dialect_user_setting_is_restored": (
        "one isolation level besides AUTOCOMMIT (SERIALIZABLE): no second level to switch to"
    ),
    "TrueDivTest::test_floordiv_numeric": (
        "no floor() function (SQLite's math functions came in 3.35; pysqlite's dialect "
        "registers a Python floor)"
    ),
}


def reason_to_skip(nodeid: str, config) -> str | None:
    if getattr(config.option, "dburi", None) and not any(
        u.startswith("toondb") for u in config.option.dburi
    ):
        return None  # the skip list is toondb's: another dialect runs everything
    # "test_suite.py::Class_toondb+toondb_3_34_0::test[params]" -> "Class::test[params]"
    name = re.sub(r"_[a-z]+\+[a-z]+_[\d_]+::", "::", nodeid.split("::", 1)[-1])
    for key, reason in SKIPS.items():
        if name.startswith(key):
            return reason
    return None
