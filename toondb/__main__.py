"""``python -m toondb``: the toondb command (toondb.cli)."""

from __future__ import annotations

import sys

from toondb.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
