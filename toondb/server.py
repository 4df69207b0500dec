"""``python -m toondb.server --db PATH``: the toondb-server command (toondb.ipc.server)."""

from __future__ import annotations

import sys

from toondb.ipc.server import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
