"""The version of toondb (also ``toondb.__version__``), in a module of its own so
that any layer can read it without importing the public package."""

__version__ = "0.3.0"
