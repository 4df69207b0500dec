"""Alembic migrations (upgrade, downgrade, batch mode as with SQLite) and pandas'
DataFrame.to_sql / read_sql through a toondb engine, with SQLite's engine as the
reference for the round trips."""

from __future__ import annotations

import datetime

import pytest

sa = pytest.importorskip("sqlalchemy")
pd = pytest.importorskip("pandas")
alembic = pytest.importorskip("alembic")

from alembic.migration import MigrationContext  # noqa: E402
from alembic.operations import Operations  # noqa: E402


@pytest.fixture
def engine(tmp_path):
    eng = sa.create_engine(f"toondb:///{tmp_path / 'db'}")
    yield eng
    eng.dispose()


def _columns(engine, table):
    return [c["name"] for c in sa.inspect(engine).get_columns(table)]


def upgrade(op: Operations) -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
    )
    op.add_column("account", sa.Column("email", sa.String(100)))
    op.create_index("ix_account_name", "account", ["name"])
    # what SQLite's ALTER TABLE cannot do: batch mode copies the table
    with op.batch_alter_table("account") as batch:
        batch.alter_column("email", new_column_name="mail", existing_type=sa.String(100))
    with op.batch_alter_table("account") as batch:
        batch.create_unique_constraint("uq_account_mail", ["mail"])


def downgrade(op: Operations) -> None:
    with op.batch_alter_table("account") as batch:
        batch.drop_constraint("uq_account_mail", type_="unique")
        batch.alter_column("mail", new_column_name="email", existing_type=sa.String(100))
    op.drop_index("ix_account_name", "account")
    with op.batch_alter_table("account") as batch:
        batch.drop_column("email")
    op.drop_table("account")


def test_alembic_upgrade_and_downgrade(engine):
    with engine.begin() as con:
        ctx = MigrationContext.configure(con)
        assert type(ctx.impl).__name__ == "ToonDBImpl"  # SQLite's, registered for toondb
        upgrade(Operations(ctx))
    assert _columns(engine, "account") == ["id", "name", "mail"]
    assert [ix["name"] for ix in sa.inspect(engine).get_indexes("account")] == ["ix_account_name"]
    assert [u["column_names"] for u in sa.inspect(engine).get_unique_constraints("account")] == [
        ["mail"]
    ]
    with engine.begin() as con:
        con.execute(sa.text("INSERT INTO account (name, mail) VALUES ('a', 'a@x')"))
    with engine.connect() as con, pytest.raises(sa.exc.IntegrityError):
        con.execute(sa.text("INSERT INTO account (name, mail) VALUES ('b', 'a@x')"))
    with engine.begin() as con:
        downgrade(Operations(MigrationContext.configure(con)))
    assert sa.inspect(engine).get_table_names() == []


def test_alembic_batch_keeps_the_rows(engine):
    with engine.begin() as con:
        con.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER)"))
        con.execute(sa.text("INSERT INTO t (a, b) VALUES ('x', 1), ('y', 2)"))
        op = Operations(MigrationContext.configure(con))
        with op.batch_alter_table("t") as batch:
            batch.drop_column("b")
            batch.add_column(sa.Column("c", sa.Float, server_default="0.5"))
    with engine.connect() as con:
        assert con.execute(sa.text("SELECT id, a, c FROM t ORDER BY id")).all() == [
            (1, "x", 0.5),
            (2, "y", 0.5),
        ]


def _frame():
    return pd.DataFrame(
        {
            "i": pd.array([1, 2, None, 4], dtype="Int64"),
            "f": [1.5, float("nan"), -2.25, 1e300],
            "s": ["a", None, "ünïcode", ""],
            "t": [
                datetime.datetime(2024, 1, 2, 3, 4, 5),
                None,
                datetime.datetime(1999, 12, 31, 23, 59, 59, 999999),
                datetime.datetime(2024, 2, 29),
            ],
        }
    )


@pytest.mark.parametrize("url_kind", ["toondb", "sqlite"])
def test_pandas_round_trip(tmp_path, url_kind):
    eng = sa.create_engine(f"{url_kind}:///{tmp_path / 'db'}")
    df = _frame()
    assert df.to_sql("frame", eng, index=False) == 4
    back = pd.read_sql("SELECT * FROM frame", eng, parse_dates=["t"])
    assert list(back.columns) == ["i", "f", "s", "t"]
    assert back["i"].tolist()[:2] == [1, 2] and pd.isna(back["i"][2]) and back["i"][3] == 4
    assert back["f"][0] == 1.5 and pd.isna(back["f"][1]) and back["f"][3] == 1e300
    assert back["s"][0] == "a" and pd.isna(back["s"][1]) and back["s"][2] == "ünïcode"
    assert back["t"][0] == pd.Timestamp("2024-01-02 03:04:05") and pd.isna(back["t"][1])
    assert back["t"][2] == pd.Timestamp("1999-12-31 23:59:59.999999")
    # appending, and read_sql_table (reflection) agree
    df.to_sql("frame", eng, index=False, if_exists="append")
    table = pd.read_sql_table("frame", eng)
    assert len(table) == 8 and table["t"].dtype.kind == "M"
    eng.dispose()


def test_pandas_agrees_with_sqlite(tmp_path):
    frames = []
    for kind in ("toondb", "sqlite"):
        eng = sa.create_engine(f"{kind}:///{tmp_path / kind}")
        _frame().to_sql("frame", eng, index=False, chunksize=2)
        frames.append(pd.read_sql("SELECT * FROM frame ORDER BY rowid", eng))
        eng.dispose()
    pd.testing.assert_frame_equal(frames[0], frames[1])
