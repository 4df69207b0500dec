"""Every error toondb raises on purpose is a class of toondb.errors (the one place a
user reads to learn what can go wrong), and the public names do not hide builtins."""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil

import toondb
import toondb.errors


def _modules():
    for info in pkgutil.walk_packages(toondb.__path__, "toondb."):
        if info.name.endswith("__main__"):
            continue
        yield importlib.import_module(info.name)


def test_every_exception_class_lives_in_errors():
    strays = []
    for module in _modules():
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
                and module.__name__ != "toondb.errors"
                and not name.startswith("_")  # private control flow, caught where raised
            ):
                strays.append(f"{module.__name__}.{name}")
    assert strays == []


def test_every_error_derives_from_toondberror_and_is_exported():
    for name in toondb.errors.__all__:
        cls = getattr(toondb.errors, name)
        assert issubclass(cls, toondb.errors.ToonDBError), name
        assert getattr(toondb, name) is cls, name


def test_no_public_error_name_hides_a_builtin():
    assert not set(toondb.errors.__all__) & set(dir(builtins))
    namespace: dict[str, object] = {}
    exec("from toondb import *", namespace)
    assert "ConnectionError" not in namespace


def test_the_old_connection_error_name_still_works():
    assert toondb.ConnectionError is toondb.ServerConnectionError
    assert issubclass(toondb.ServerConnectionError, builtins.ConnectionError)


def test_damaged_row_formats_are_corruption():
    assert issubclass(toondb.RowFormatError, toondb.CorruptionError)
    assert issubclass(toondb.HnswCorruptionError, toondb.CorruptionError)


def test_pep249_classes_live_in_errors_under_toondberror():
    # PEP 249's names are toondb.dbapi's (and each connection's); they are defined in
    # toondb.errors like every other error, but kept out of __all__ ("Warning" would
    # hide the builtin, "Error" says nothing at the top of toondb). They derive from
    # ToonDBError, so `except toondb.ToonDBError` still catches everything toondb raises.
    import toondb.dbapi

    for name in toondb.errors.DBAPI_ERRORS:
        cls = getattr(toondb.errors, name)
        assert cls.__module__ == "toondb.errors"
        assert issubclass(cls, toondb.errors.ToonDBError), name
        assert getattr(toondb.dbapi, name) is cls, name
        assert getattr(toondb.dbapi.Connection, name) is cls, name
        assert name not in toondb.errors.__all__
    assert issubclass(toondb.errors.Error, Exception)
    assert issubclass(toondb.errors.Warning, Exception)


def test_every_toondb_error_is_the_pep249_error_it_means():
    from toondb import errors as E

    expected = {
        "ClosedError": E.ProgrammingError,
        "ReadOnlyError": E.OperationalError,
        "DatabaseLockedError": E.OperationalError,
        "DatabaseFullError": E.OperationalError,
        "ReadersFullError": E.OperationalError,
        "CorruptionError": E.DatabaseError,
        "TransactionClosedError": E.ProgrammingError,
        "TransactionConflictError": E.OperationalError,
        "ForkedHandleError": E.ProgrammingError,
        "SQLError": E.DatabaseError,
        "SQLSyntaxError": E.ProgrammingError,
        "SchemaError": E.ProgrammingError,
        "ConstraintError": E.IntegrityError,
        "RowFormatError": E.DatabaseError,
        "VectorIndexError": E.DatabaseError,
        "ToonDecodeError": E.DataError,
        "ServerConnectionError": E.OperationalError,
        "ProtocolError": E.InterfaceError,
    }
    for name, pep249 in expected.items():
        assert issubclass(getattr(E, name), pep249), name
    # no error is two different things to a program that tells them apart
    assert not issubclass(E.ConstraintError, E.OperationalError)
    assert not issubclass(E.TransactionConflictError, E.IntegrityError)
    assert not issubclass(E.CLIError, E.Error)  # a command line's mistake, not a DB-API error
