"""toondb: an embedded database for Python in one crash-safe page file.

from toondb import Database

with Database.open("./my_database") as db:
    db.put(b"user:123", b'{"name":"Alice","age":30}')
    print(db.get(b"user:123").decode())
"""

from typing import TYPE_CHECKING, Any

from toondb.database import Database, Transaction
from toondb.errors import *  # noqa: F401,F403
from toondb.errors import ConnectionError  # noqa: F401,A004  (the old name, not in __all__)
from toondb.errors import __all__ as _error_names
from toondb.ipc import IpcClient
from toondb.version import __version__

if TYPE_CHECKING:
    from toondb.vector.index import VectorIndex


__all__ = ["Database", "Transaction", "IpcClient", "VectorIndex", "__version__", *_error_names]


def __getattr__(name: str) -> Any:
    # VectorIndex lives with NumPy in toondb.vector.index, imported on first use so
    # that `import toondb` stays light for key-value and SQL programs
    if name == "VectorIndex":
        from toondb.vector.index import VectorIndex

        return VectorIndex
    raise AttributeError(f"module 'toondb' has no attribute {name!r}")
