"""The SQLAlchemy dialect (toondb.sqlalchemy): engines by URL, Core, reflection, the
ORM (relationships, cascades, the unit of work, a rollback), IntegrityError, and the
same scenarios on SQLAlchemy's own SQLite dialect as the reference."""

from __future__ import annotations

import datetime

import pytest

sa = pytest.importorskip("sqlalchemy")
from sqlalchemy import (  # noqa: E402
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    inspect,
    select,
    text,
)
from sqlalchemy.orm import (  # noqa: E402
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
)


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    books: Mapped[list[Book]] = relationship(
        back_populates="author", cascade="all, delete-orphan", order_by="Book.id"
    )


class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    price: Mapped[float | None] = mapped_column(Float)
    published: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id", ondelete="CASCADE"))
    author: Mapped[Author] = relationship(back_populates="books")


@pytest.fixture(params=["toondb", "sqlite"])
def engine(request, tmp_path):
    """An engine on a fresh file database: toondb's dialect, and SQLite's beside it."""
    eng = create_engine(f"{request.param}:///{tmp_path / 'db'}")
    yield eng
    eng.dispose()


def test_the_url_picks_the_dialect_by_entry_point(tmp_path):
    eng = create_engine(f"toondb:///{tmp_path / 'db'}")
    assert eng.dialect.name == "toondb" and eng.dialect.driver == "toondb"
    with eng.connect() as con:
        assert con.execute(text("SELECT 1 + 1")).scalar() == 2
    eng.dispose()


def test_core_create_insert_select_update_delete(engine):
    md = MetaData()
    t = Table(
        "t",
        md,
        Column("id", Integer, primary_key=True),
        Column("v", String(20)),
        Column("x", Float),
    )
    md.create_all(engine)
    with engine.begin() as con:
        r = con.execute(t.insert(), {"v": "a", "x": 1.5})
        assert r.inserted_primary_key == (1,)
        con.execute(t.insert(), [{"v": "b", "x": None}, {"v": "c", "x": 3.0}])
        con.execute(t.update().where(t.c.v == "c").values(x=t.c.x * 2))
        con.execute(t.delete().where(t.c.v == "a"))
    with engine.connect() as con:
        rows = con.execute(select(t.c.v, t.c.x).order_by(t.c.id)).all()
    assert rows == [("b", None), ("c", 6.0)]


def test_reflection_through_pragmas(engine):
    md = MetaData()
    Table(
        "parent",
        md,
        Column("id", Integer, primary_key=True),
        Column("code", String(10), nullable=False),
        UniqueConstraint("code"),
    )
    Table(
        "child",
        md,
        Column("id", Integer, primary_key=True),
        Column("parent_id", Integer, ForeignKey("parent.id"), index=True),
        Column("note", String(30), server_default="none"),
    )
    md.create_all(engine)
    insp = inspect(engine)
    assert insp.get_table_names() == ["child", "parent"]
    assert insp.has_table("child") and not insp.has_table("nope")
    cols = {c["name"]: c for c in insp.get_columns("child")}
    assert list(cols) == ["id", "parent_id", "note"]
    assert isinstance(cols["note"]["type"], String) and cols["note"]["type"].length == 30
    assert cols["note"]["default"] == "'none'"
    assert insp.get_pk_constraint("child")["constrained_columns"] == ["id"]
    [fk] = insp.get_foreign_keys("child")
    assert (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]) == (
        ["parent_id"],
        "parent",
        ["id"],
    )
    [ix] = insp.get_indexes("child")
    assert ix["column_names"] == ["parent_id"] and not ix["unique"]
    assert [u["column_names"] for u in insp.get_unique_constraints("parent")] == [["code"]]
    assert not cols["id"]["nullable"] or cols["id"]["primary_key"]
    reflected = MetaData()
    reflected.reflect(engine)
    assert set(reflected.tables) == {"parent", "child"}


def test_orm_relationships_cascades_and_unit_of_work(engine):
    Base.metadata.create_all(engine)
    when = datetime.datetime(2024, 5, 17, 12, 30, 1, 250000)
    with Session(engine) as s:
        a = Author(name="Le Guin")
        a.books = [Book(title="Earthsea", price=9.5, published=when), Book(title="Dispossessed")]
        s.add(a)
        s.commit()
        assert a.id == 1 and [b.id for b in a.books] == [1, 2]
    with Session(engine) as s:
        a = s.scalars(select(Author).where(Author.name == "Le Guin")).one()
        assert [b.title for b in a.books] == ["Earthsea", "Dispossessed"]
        assert a.books[0].published == when and a.books[1].price is None
        a.books[0].price = 11.0  # dirty: an UPDATE
        del a.books[1]  # delete-orphan: a DELETE
        s.commit()
    with Session(engine) as s:
        assert s.scalars(select(Book.price)).all() == [11.0]
        s.delete(s.get(Author, 1))  # cascade: the books go too
        s.commit()
        assert s.scalar(select(sa.func.count()).select_from(Book)) == 0


def test_unique_violation_is_an_integrity_error_and_rollback_undoes(engine):
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Author(name="A"))
        s.commit()
        s.add(Author(name="B"))
        s.flush()
        s.add(Author(name="A"))
        with pytest.raises(sa.exc.IntegrityError):
            s.flush()
        s.rollback()
        assert s.scalars(select(Author.name)).all() == ["A"]  # B went with the rollback


def test_a_rolled_back_core_transaction_leaves_nothing(engine):
    md = MetaData()
    t = Table("t", md, Column("id", Integer, primary_key=True))
    md.create_all(engine)
    with engine.connect() as con:
        trans = con.begin()
        con.execute(t.insert(), [{"id": i} for i in range(5)])
        trans.rollback()
        assert con.execute(select(sa.func.count()).select_from(t)).scalar() == 0


def test_autocommit_isolation_level(tmp_path):
    eng = create_engine(f"toondb:///{tmp_path / 'db'}", isolation_level="AUTOCOMMIT")
    with eng.connect() as con:
        assert con.get_isolation_level() == "AUTOCOMMIT"
        con.execute(text("CREATE TABLE t (x)"))
        con.execute(text("INSERT INTO t VALUES (1)"))
    other = create_engine(f"toondb:///{tmp_path / 'db'}")
    with other.connect() as con:
        assert con.execute(text("SELECT x FROM t")).all() == [(1,)]
        assert con.get_isolation_level() == "SERIALIZABLE"
    eng.dispose()
    other.dispose()


def test_over_the_server(toondb_server):
    eng = create_engine(f"toondb+ipc:///{toondb_server}")
    assert eng.dialect.name == "toondb" and eng.dialect.driver == "ipc"
    Base.metadata.create_all(eng)
    with Session(eng) as s:
        s.add(Author(name="X", books=[Book(title="Y")]))
        s.commit()
    with Session(eng) as s:
        assert [b.title for b in s.scalars(select(Author)).one().books] == ["Y"]
    assert {"author", "book"} <= set(inspect(eng).get_table_names())
    eng.dispose()
