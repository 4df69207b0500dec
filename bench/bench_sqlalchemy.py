"""SQLAlchemy's ORM on toondb's dialect side by side with SQLAlchemy's ORM on SQLite
(pysqlite), in one run: a loop of one-row units of work, each a Session that adds one
object and commits, then reads it back by primary key (``Session.get`` after
``expire_all``, so a SELECT is issued) and by a filtered ``select``.

Run: ``python -m pytest bench/bench_sqlalchemy.py --benchmark-only`` (or
``bash ci/bench.sh sqlalchemy``). sqlite runs in WAL mode with synchronous=NORMAL (as
in bench_sql.py and bench_dbapi.py); toondb with its defaults. Target (issue 17):
within 1.5x of SQLAlchemy-on-sqlite's time, i.e. the ratio toondb/sqlite3 of rates
at least 0.67. Most of the time is SQLAlchemy's own, the same on both sides.
"""

from __future__ import annotations

import itertools

import pytest

sa = pytest.importorskip("sqlalchemy")
from sqlalchemy import String, event, select  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402

N = 500  # units of work per round
ENGINES = ("toondb", "sqlite3")


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    qty: Mapped[int]


def _engine(kind: str, path):
    if kind == "sqlite3":
        eng = sa.create_engine(f"sqlite:///{path / 's.db'}")

        @event.listens_for(eng, "connect")
        def _wal(dbapi_con, _record):
            dbapi_con.execute("PRAGMA journal_mode=WAL")
            dbapi_con.execute("PRAGMA synchronous=NORMAL")

    else:
        eng = sa.create_engine(f"toondb:///{path / 'db'}")
    Base.metadata.create_all(eng)
    return eng


def _loop(eng, start: int) -> int:
    found = 0
    with Session(eng) as s:
        for i in range(start, start + N):
            s.add(Item(id=i, name=f"item{i}", qty=i % 7))
            s.commit()
            s.expire_all()
            found += s.get(Item, i).qty == i % 7
            found += s.scalars(select(Item).where(Item.id == i)).one().id == i
    return found


@pytest.mark.parametrize("engine", ENGINES)
def test_orm_insert_select_one_row(benchmark, engine, tmp_path):
    benchmark.group = "sqlalchemy: ORM insert + commit + 2 selects, one row"
    benchmark.extra_info.update(engine=engine, ops=N, unit="units of work/s")
    eng = _engine(engine, tmp_path)
    starts = itertools.count(0, N)
    try:
        found = benchmark.pedantic(
            lambda: _loop(eng, next(starts)), rounds=5, warmup_rounds=1, iterations=1
        )
    finally:
        eng.dispose()
    assert found == 2 * N
