"""The ``toondb`` command: an interactive shell and one-shot commands (docs/cli.md).
``main`` is the entry point (``toondb = "toondb.cli:main"``)."""

from toondb.cli.main import main

__all__ = ["main"]
