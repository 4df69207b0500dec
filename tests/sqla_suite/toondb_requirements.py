"""What toondb's dialect supports, for SQLAlchemy's compliance suite
(sqlalchemy.testing.requirements.SuiteRequirements: open() = supported, closed() =
not; every closed() here says why). Features the SQL engine has not yet got (RETURNING,
SAVEPOINT, window functions) are being built under the SQL issue: they are closed
here until then, and the suite then says so in its skip count.

When the suite runs on another dialect (SQLite's, for comparison) the answers fall
back to SuiteRequirements'."""

from __future__ import annotations

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements


def _toondb_lacks(reason: str) -> exclusions.compound:
    """Closed on toondb (reason given), as SuiteRequirements says elsewhere."""
    return exclusions.skip_if(lambda config: config.db.dialect.name == "toondb", reason)


def _toondb_has() -> exclusions.compound:
    return exclusions.open()


class Requirements(SuiteRequirements):
    # ------------------------------------------------ SQL features toondb has (issue 13)
    @property
    def savepoints(self):
        return _toondb_has()

    @property
    def window_functions(self):
        return _toondb_has()

    @property
    def window_range(self):
        return _toondb_has()

    @property
    def window_range_numeric(self):
        return _toondb_has()

    @property
    def window_range_non_numeric(self):
        return _toondb_has()

    # RETURNING: the dialect reports SQLite 3.35, so SQLAlchemy's insert_returning /
    # update_returning / delete_returning flags are on, as on SQLite 3.35+.

    # ---------------------------------------------------------------- not in toondb
    @property
    def temporary_tables(self):
        return _toondb_lacks("toondb has no TEMP schema")

    @property
    def temp_table_reflection(self):
        return _toondb_lacks("toondb has no TEMP schema")

    @property
    def temp_table_names(self):
        return _toondb_lacks("toondb has no TEMP schema")

    @property
    def has_temp_table(self):
        return _toondb_lacks("toondb has no TEMP schema")

    @property
    def temporary_views(self):
        return _toondb_lacks("toondb has no TEMP schema")

    # toondb: one schema per database (no ATTACH). Closed for every dialect: SQLite's
    # ATTACHed "test_schema" (its provisioning) does not take in this standalone setup
    # (its connections come without it), so SQLite's counts beside toondb's are
    # without schemas as well
    @property
    def schemas(self):
        return exclusions.closed()

    @property
    def cross_schema_fk_reflection(self):
        return exclusions.closed()

    @property
    def regexp_match(self):
        return exclusions.open()  # the dialect registers pysqlite's regexp (on_connect)

    @property
    def regexp_replace(self):
        return _toondb_lacks("no regexp_replace()")

    @property
    def two_phase_transactions(self):
        return exclusions.closed()

    @property
    def comment_reflection(self):
        return exclusions.closed()

    @property
    def computed_columns(self):
        return _toondb_lacks("no generated (computed) columns")

    @property
    def identity_columns(self):
        return exclusions.closed()

    @property
    def deferrable_fks(self):
        return _toondb_lacks("no DEFERRABLE foreign keys")

    @property
    def tuple_in(self):
        return _toondb_lacks("no row values ((a, b) IN ...): a grammar change (sql-speed branch)")

    @property
    def tuple_in_w_empty(self):
        return _toondb_lacks("no row values ((a, b) IN ...): a grammar change (sql-speed branch)")

    @property
    def parens_in_union_contained_select_w_limit_offset(self):
        return exclusions.closed()  # as SQLite: no parenthesized SELECT in a compound

    @property
    def parens_in_union_contained_select_wo_limit_offset(self):
        return exclusions.closed()  # as SQLite

    # ---------------------------------------------------------------- as SQLite's
    @property
    def reflects_pk_names(self):
        return exclusions.open()  # table-level CONSTRAINT names are kept (sqlite_schema)

    @property
    def foreign_key_constraint_name_reflection(self):
        return exclusions.open()

    @property
    def views(self):
        return _toondb_has()

    @property
    def view_reflection(self):
        return _toondb_has()

    @property
    def unique_constraint_reflection(self):
        return exclusions.open()

    @property
    def index_reflection(self):
        return exclusions.open()

    @property
    def check_constraint_reflection(self):
        return exclusions.open()

    @property
    def implicitly_named_constraints(self):
        return exclusions.closed()  # as SQLite: an unnamed constraint stays unnamed

    @property
    def reflect_table_options(self):
        return exclusions.open()  # SQLite's dialect reads them (none) from sqlite_schema

    @property
    def ctes(self):
        return exclusions.open()

    @property
    def ctes_with_values(self):
        return exclusions.open()

    @property
    def intersect(self):
        return exclusions.open()

    @property
    def except_(self):
        return exclusions.open()

    @property
    def empty_inserts(self):
        return exclusions.open()

    @property
    def insert_from_select(self):
        return exclusions.open()

    @property
    def json_type(self):
        return exclusions.open()

    @property
    def datetime(self):
        return exclusions.open()

    @property
    def datetime_microseconds(self):
        return exclusions.open()

    @property
    def date(self):
        return exclusions.open()

    @property
    def time(self):
        return exclusions.open()

    @property
    def time_microseconds(self):
        return exclusions.open()

    @property
    def datetime_historic(self):
        return exclusions.open()

    @property
    def date_historic(self):
        return exclusions.open()

    @property
    def precision_numerics_general(self):
        return exclusions.closed()  # as SQLite: no DECIMAL storage, floats

    @property
    def precision_numerics_enotation_large(self):
        return exclusions.closed()

    @property
    def precision_numerics_many_significant_digits(self):
        return exclusions.closed()

    @property
    def floats_to_four_decimals(self):
        return exclusions.open()

    @property
    def nullsordering(self):
        return exclusions.open()

    @property
    def order_by_col_from_union(self):
        return exclusions.open()

    @property
    def update_from(self):
        return exclusions.open()

    @property
    def isolation_level(self):
        return exclusions.open()

    @property
    def autocommit(self):
        return exclusions.open()

    def get_isolation_levels(self, config):
        return {"default": "SERIALIZABLE", "supported": ["SERIALIZABLE", "AUTOCOMMIT"]}
