"""toondb: an embedded database for Python in one crash-safe page file.

from toondb import Database

with Database.open("./my_database") as db:
    db.put(b"user:123", b'{"name":"Alice","age":30}')
    print(db.get(b"user:123").decode())
"""

from toondb.db import Database, Transaction
from toondb.errors import *  # noqa: F401,F403
from toondb.errors import __all__ as _error_names
from toondb.ipc import IpcClient
from toondb.vector import VectorIndex

__version__ = "0.3.0"

__all__ = ["Database", "Transaction", "IpcClient", "VectorIndex", "__version__", *_error_names]
