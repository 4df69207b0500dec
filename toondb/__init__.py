"""toondb: an embedded database for Python in one crash-safe page file."""

from toondb.errors import *  # noqa: F401,F403
from toondb.errors import __all__ as _error_names

__version__ = "0.3.0"

__all__ = ["__version__", *_error_names]
