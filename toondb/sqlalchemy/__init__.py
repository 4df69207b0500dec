"""toondb's SQLAlchemy 2.x dialect (docs/sqlalchemy.md).

    from sqlalchemy import create_engine

    engine = create_engine("toondb:///relative/path/to/db")    # toondb.dbapi.connect
    engine = create_engine("toondb:////absolute/path/to/db")
    engine = create_engine("toondb+ipc:////path/to/db/toondb.sock")  # a toondb-server

The dialects are registered by entry points (``sqlalchemy.dialects``: ``toondb`` and
``toondb.ipc``), so importing this package is not needed; it needs SQLAlchemy>=2
(``pip install toondb[sqlalchemy]``). Importing it with Alembic installed also
registers Alembic's migration implementation for the dialect (SQLite's: batch mode).
"""

from toondb.sqlalchemy.dialect import ToonDBDialect, ToonDBIpcDialect

__all__ = ["ToonDBDialect", "ToonDBIpcDialect"]
