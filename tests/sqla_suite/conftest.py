"""SQLAlchemy's pytest plugin, as README.dialects.rst sets it up (the dialect itself is
registered by toondb's entry points). Tests known to fail, each with its reason, are
in skips.py: they are reported as skipped, never dropped silently."""

import pytest
from sqlalchemy.dialects import registry

# toondb:// and toondb+ipc:// come from toondb's entry points; the suite's provisioning
# also names the driver explicitly ("toondb+toondb")
registry.register("toondb.toondb", "toondb.sqlalchemy.dialect", "ToonDBDialect")

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402,F401,F403


def pytest_collection_modifyitems(session, config, items):  # noqa: F811
    from skips import reason_to_skip
    from sqlalchemy.testing.plugin import pytestplugin

    pytestplugin.pytest_collection_modifyitems(session, config, items)
    for item in items:
        reason = reason_to_skip(item.nodeid, config)
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"skips.py: {reason}"))
