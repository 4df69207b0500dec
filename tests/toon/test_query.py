"""The query builder (toondb.toon.query): filters, projection, order, paging, laziness, the
TOON/JSON outputs, and execute_sql(format=...)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toondb import Database
from toondb.toon import SPEC_VERSION, decode, encode
from toondb.toon.query import OPS, Query, decode_row
from toondb.toon.results import format_result

PRODUCTS = {
    b"products/desk": {"name": "Desk", "price": 300, "stock": 0, "tags": ["office"]},
    b"products/laptop": {"name": "Laptop", "price": 999, "stock": 5, "tags": ["tech", "work"]},
    b"products/mouse": {"name": "Mouse", "price": 25, "stock": 20, "tags": ["tech"]},
    b"products/pen": {"name": "Pen", "price": 2.5, "stock": None, "brand": {"name": "Bic"}},
}


@pytest.fixture
def pdb(db: Database) -> Database:
    for k, v in PRODUCTS.items():
        db.put(k, json.dumps(v).encode())
    db.put(b"productsX", b'{"name":"not under the prefix"}')
    db.put(b"other/1", b'{"name":"Other"}')
    return db


def names(q: Query) -> list[str]:
    return [r["name"] for r in q.to_dicts()]


# ---- the guide's form ------------------------------------------------------------------


def test_to_list_is_the_guides_one_line_form(db):
    db.put(b"products/laptop", b'{"name":"Laptop","price":999,"stock":5}')
    db.put(b"products/mouse", b'{"name":"Mouse","price":25,"stock":20}')
    out = db.query("products/").select(["name", "price"]).limit(10).to_list()
    assert out == [
        (b"products/laptop", b"result[1]{name,price}:Laptop,999"),
        (b"products/mouse", b"result[1]{name,price}:Mouse,25"),
    ]
    assert [decode_row(v) for _, v in out] == [
        {"name": "Laptop", "price": 999},
        {"name": "Mouse", "price": 25},
    ]


@pytest.mark.parametrize(
    "record",
    [
        {"name": "a, b", "note": 'say "hi"\nbye', "n": -0.5, "ok": True, "none": None},
        {"weird {key}:": 1, 'q"uote': "x"},
        {"nested": {"a": 1, "b": {"c": "d"}}, "z": 2},
        {"list": [1, 2, 3]},  # not tabular: the spec's list form
        {},
        {"num_like": "999", "empty": "", "space": " x "},
    ],
)
def test_rows_read_back(db, record):
    db.put(b"r/1", json.dumps(record).encode())
    ((key, row),) = db.query("r/").to_list()
    assert key == b"r/1"
    assert decode_row(row) == record
    tabular = record and not any(isinstance(v, list) for v in record.values())
    assert (b"\n" not in row) == bool(tabular)


def test_decode_row_rejects_other_text():
    with pytest.raises(ValueError):
        decode_row(b"products[1]{a}:1")
    with pytest.raises(ValueError):
        decode_row("result[1]{a")


# ---- select / where --------------------------------------------------------------------


def test_select_missing_fields_are_null_and_paths_reach_into_objects(pdb):
    rows = pdb.query("products/").select("name", "brand.name", "tags.0", "nope").to_dicts()
    assert rows == [
        {"name": "Desk", "brand.name": None, "tags.0": "office", "nope": None},
        {"name": "Laptop", "brand.name": None, "tags.0": "tech", "nope": None},
        {"name": "Mouse", "brand.name": None, "tags.0": "tech", "nope": None},
        {"name": "Pen", "brand.name": "Bic", "tags.0": None, "nope": None},
    ]


def test_a_top_level_key_with_dots_wins_over_the_path(db):
    db.put(b"d/1", b'{"a.b": 1, "a": {"b": 2}}')
    assert db.query("d/").select(["a.b"]).to_dicts() == [{"a.b": 1}]


def test_prefix_bounds_the_scan(pdb):
    assert names(pdb.query("products/")) == ["Desk", "Laptop", "Mouse", "Pen"]
    assert names(pdb.query(b"products")) == [
        "Desk",
        "Laptop",
        "Mouse",
        "Pen",
        "not under the prefix",
    ]
    assert len(pdb.query().to_dicts()) == 6


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("price", "=", 25, ["Mouse"]),
        ("price", "==", 25.0, ["Mouse"]),
        ("price", "!=", 25, ["Desk", "Laptop", "Pen"]),
        ("price", "<>", 25, ["Desk", "Laptop", "Pen"]),
        ("price", "<", 300, ["Mouse", "Pen"]),
        ("price", "<=", 300, ["Desk", "Mouse", "Pen"]),
        ("price", ">", 300, ["Laptop"]),
        ("price", ">=", 300, ["Desk", "Laptop"]),
        ("name", ">", "M", ["Mouse", "Pen"]),
        ("name", "in", ["Pen", "Desk", "Nope"], ["Desk", "Pen"]),
        ("price", "in", (25, 2.5), ["Mouse", "Pen"]),
        ("name", "contains", "o", ["Laptop", "Mouse"]),
        ("tags", "contains", "tech", ["Laptop", "Mouse"]),
        ("name", "startswith", "L", ["Laptop"]),
        ("brand.name", "=", "Bic", ["Pen"]),
        # null semantics: a missing or null field never compares true (SQL)
        ("stock", "!=", 5, ["Desk", "Mouse"]),
        ("stock", "<", 100, ["Desk", "Laptop", "Mouse"]),
        ("stock", "=", None, []),
        ("stock", "!=", None, []),
        ("stock", "is", None, ["Pen"]),
        ("stock", "is not", None, ["Desk", "Laptop", "Mouse"]),
        ("brand", "is", None, ["Desk", "Laptop", "Mouse"]),
        ("stock", "is", 0, ["Desk"]),
        # different JSON types: never equal, never ordered; true is not 1
        ("price", "=", "25", []),
        ("price", "<", "a", []),
        ("name", "!=", 1, ["Desk", "Laptop", "Mouse", "Pen"]),
        ("stock", "=", False, []),
        ("tags", "=", ["tech"], ["Mouse"]),
    ],
)
def test_where_ops(pdb, field, op, value, expected):
    assert names(pdb.query("products/").where(field, op, value)) == expected


def test_every_documented_op_is_tested():
    tested = {"=", "!=", "<", "<=", ">", ">=", "in", "contains", "startswith", "is", "is not"}
    assert set(OPS) == tested


def test_bool_is_not_a_number(db):
    db.put(b"b/1", b'{"v": true}')
    db.put(b"b/2", b'{"v": 1}')
    assert db.query("b/").where("v", "=", 1).count() == 1
    assert db.query("b/").where("v", "=", True).to_list()[0][0] == b"b/1"
    assert db.query("b/").where("v", ">", 0).to_list()[0][0] == b"b/2"
    assert db.query("b/").where("v", "in", [True]).count() == 1


def test_several_wheres_and_together(pdb):
    q = pdb.query("products/").where("price", ">", 10).where("tags", "contains", "tech")
    assert names(q) == ["Laptop", "Mouse"]
    assert names(q.where("stock", ">", 10)) == ["Mouse"]


def test_documents_that_are_not_json_objects_are_skipped(db):
    db.put(b"m/1", b'{"name":"ok"}')
    db.put(b"m/2", b"not json at all")
    db.put(b"m/3", b"[1,2,3]")
    db.put(b"m/4", b"42")
    db.put(b"m/5", b'"a string"')
    db.put(b"m/6", b"\xff\xfe\x00garbage")
    db.put(b"m/7", b"")
    db.put(b"m/8", b'{"name":"also ok"}')
    assert names(db.query("m/")) == ["ok", "also ok"]
    assert db.query("m/").count() == 2


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda q: q.where("a", "like", 1), ValueError),
        (lambda q: q.where("a", 5, 1), TypeError),
        (lambda q: q.where("", "=", 1), ValueError),
        (lambda q: q.where(1, "=", 1), TypeError),
        (lambda q: q.where("a", "in", "abc"), TypeError),
        (lambda q: q.where("a", "in", 5), TypeError),
        (lambda q: q.where("a", "<", [1]), TypeError),
        (lambda q: q.where("a", "startswith", 1), TypeError),
        (lambda q: q.limit(-1), ValueError),
        (lambda q: q.limit(1.5), TypeError),
        (lambda q: q.limit(True), TypeError),
        (lambda q: q.offset(None), TypeError),
        (lambda q: q.select([]), ValueError),
        (lambda q: q.select(["a", "a"]), ValueError),
        (lambda q: q.select([1]), TypeError),
        (lambda q: q.order_by(""), ValueError),
        (lambda q: q.to_toon(name=3), TypeError),
    ],
)
def test_misuse_is_reported(db, call, exc):
    with pytest.raises(exc):
        call(db.query("x/"))


def test_query_needs_a_scan_and_a_str_or_bytes_prefix(db):
    with pytest.raises(TypeError):
        db.query(5)
    with pytest.raises(TypeError):
        Query(object(), "x")


# ---- order / offset / limit ------------------------------------------------------------


def test_order_by(pdb):
    q = pdb.query("products/")
    assert names(q.order_by("price")) == ["Pen", "Mouse", "Desk", "Laptop"]
    assert names(q.order_by("price", desc=True)) == ["Laptop", "Desk", "Mouse", "Pen"]
    # null (Pen's stock) sorts first, last when descending
    assert names(q.order_by("stock")) == ["Pen", "Desk", "Laptop", "Mouse"]
    assert names(q.order_by("stock", desc=True)) == ["Mouse", "Laptop", "Desk", "Pen"]
    assert names(q.order_by("price").offset(1).limit(2)) == ["Mouse", "Desk"]
    assert names(q.order_by("price", desc=True).limit(1)) == ["Laptop"]
    assert q.order_by("price").first() == PRODUCTS[b"products/pen"]


def test_order_by_types_and_ties(db):
    values = [None, "b", 2, True, "a", 1.5, [1], {"x": 1}, False, 2, None]
    for i, v in enumerate(values):
        db.put(b"t/%02d" % i, json.dumps({"v": v, "i": i}).encode())
    got = [r["i"] for r in db.query("t/").order_by("v").to_dicts()]
    # null, booleans, numbers, strings, arrays, objects; ties in key order
    assert got == [0, 10, 8, 3, 5, 2, 9, 4, 1, 6, 7]
    desc = [r["i"] for r in db.query("t/").order_by("v", desc=True).to_dicts()]
    assert desc == [7, 6, 1, 4, 2, 9, 5, 3, 8, 0, 10]


def test_order_by_two_fields(db):
    rows = [("a", 2), ("b", 1), ("a", 1), ("b", 2), ("a", 3)]
    for i, (g, n) in enumerate(rows):
        db.put(b"o/%d" % i, json.dumps({"g": g, "n": n}).encode())
    got = db.query("o/").order_by("g").order_by("n", desc=True).to_dicts()
    assert [(r["g"], r["n"]) for r in got] == [("a", 3), ("a", 2), ("a", 1), ("b", 2), ("b", 1)]


def test_offset_and_limit_without_order(pdb):
    q = pdb.query("products/")
    assert names(q.offset(1).limit(2)) == ["Laptop", "Mouse"]
    assert names(q.offset(3)) == ["Pen"]
    assert names(q.offset(10)) == []
    assert names(q.limit(0)) == []
    assert q.limit(0).count() == 0 and not q.limit(0).exists() and q.limit(0).first() is None
    assert q.offset(1).limit(2).count() == 2
    assert q.offset(3).limit(5).count() == 1
    assert q.offset(4).exists() is False and q.offset(3).exists() is True
    assert q.offset(2).first()["name"] == "Mouse"
    assert q.limit(2).limit(None).count() == 4


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([0.5, -1.5, 2.0]),
    st.sampled_from(["", "a", "b", "ab"]),
    st.lists(st.integers(0, 2), max_size=2),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    docs=st.lists(
        st.fixed_dictionaries({}, optional={"a": json_values, "b": json_values}), max_size=25
    ),
    desc=st.booleans(),
    offset=st.integers(0, 6),
    limit=st.one_of(st.none(), st.integers(0, 8)),
    second=st.booleans(),
)
def test_heap_of_offset_plus_limit_equals_a_full_sort(
    tmp_path_factory, docs, desc, offset, limit, second
):
    path = tmp_path_factory.mktemp("h")
    with Database.open(path) as db:
        for i, d in enumerate(docs):
            db.put(b"h/%03d" % i, json.dumps(d).encode())
        q = db.query("h/").order_by("a", desc=desc)
        if second:
            q = q.order_by("b", desc=not desc)
        full = list(q)
        assert len(full) == len(docs)
        window = full[offset:] if limit is None else full[offset : offset + limit]
        assert list(q.offset(offset).limit(limit)) == window
        plain = list(db.query("h/"))
        assert list(db.query("h/").offset(offset).limit(limit)) == (
            plain[offset:] if limit is None else plain[offset : offset + limit]
        )


# ---- laziness --------------------------------------------------------------------------


class CountingSource:
    """Anything with scan(prefix) can be queried; this one counts what it hands out."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.touched = 0
        self.closed = 0

    def scan(self, prefix):
        it = self.db.scan(prefix)
        try:
            for kv in it:
                self.touched += 1
                yield kv
        finally:
            self.closed += 1


@pytest.fixture(scope="module")
def big_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("big")
    with Database.open(path) as db:
        with db.transaction() as txn:
            for i in range(50_000):
                txn.put(
                    b"k/%06d" % i, b'{"i":%d,"even":%s}' % (i, b"true" if i % 2 == 0 else b"false")
                )
        yield db


def test_limit_touches_about_limit_keys(big_db):
    src = CountingSource(big_db)
    rows = Query(src, "k/").select(["i"]).limit(10).to_list()
    assert len(rows) == 10
    assert src.touched <= 11
    assert src.closed == 1  # the scan was closed, not left open


@pytest.mark.parametrize(
    ("build", "at_most"),
    [
        (lambda q: q.first(), 1),
        (lambda q: q.exists(), 1),
        (lambda q: q.where("even", "=", False).first(), 2),
        (lambda q: q.offset(100).limit(5).to_dicts(), 105),
        (lambda q: q.offset(100).limit(5).count(), 105),
        (lambda q: next(iter(q)), 1),
    ],
)
def test_terminals_read_only_what_they_need(big_db, build, at_most):
    src = CountingSource(big_db)
    build(Query(src, "k/"))
    assert 1 <= src.touched <= at_most


def test_order_by_reads_everything_and_keeps_a_heap(big_db):
    src = CountingSource(big_db)
    rows = Query(src, "k/").order_by("i", desc=True).limit(3).to_dicts()
    assert [r["i"] for r in rows] == [49_999, 49_998, 49_997]
    assert src.touched == 50_000


# ---- outputs ---------------------------------------------------------------------------


def test_to_toon_is_one_spec_document(pdb):
    assert SPEC_VERSION == "4.0"
    text = pdb.query("products/").select(["name", "price"]).order_by("price").to_toon()
    assert text == "products[4]{name,price}:\n  Pen,2.5\n  Mouse,25\n  Desk,300\n  Laptop,999"
    assert decode(text) == {
        "products": pdb.query("products/").select(["name", "price"]).order_by("price").to_dicts()
    }
    # names: the prefix's last segment, or given
    assert (
        pdb.query("products/").limit(1).select("name").to_toon(name="items")
        == "items[1]{name}:\n  Desk"
    )
    assert pdb.query("").limit(1).select("name").to_toon().startswith("result[1]{name}:")
    assert pdb.query("products/").select("name").limit(1).to_toon(delimiter="|", indent=4) == (
        "products[1|]{name}:\n    Desk"
    )


def test_to_toon_falls_back_to_the_list_form(pdb):
    text = pdb.query("products/").to_toon()  # tags arrays and a missing brand: not uniform
    assert text.startswith("products[4]:\n  - name: Desk\n")
    assert decode(text) == {"products": list(PRODUCTS.values())}


def test_empty_result(pdb):
    q = pdb.query("nothing/")
    assert q.to_list() == [] and q.to_dicts() == [] and q.to_json() == "[]"
    assert decode(q.to_toon()) == {"nothing": []}
    assert q.count() == 0 and q.first() is None and q.exists() is False


def test_to_json_and_iteration(pdb):
    q = pdb.query("products/").where("price", ">", 20).select("name")
    assert json.loads(q.to_json()) == [{"name": "Desk"}, {"name": "Laptop"}, {"name": "Mouse"}]
    assert list(q) == [
        (b"products/desk", {"name": "Desk"}),
        (b"products/laptop", {"name": "Laptop"}),
        (b"products/mouse", {"name": "Mouse"}),
    ]
    assert "where('price', '>', 20)" in repr(q)


def test_builders_are_immutable(pdb):
    base = pdb.query("products/").where("price", ">", 20)
    cheap = base.where("price", "<", 500)
    assert names(base) == ["Desk", "Laptop", "Mouse"]
    assert names(cheap) == ["Desk", "Mouse"]
    assert names(base.limit(1)) == ["Desk"] and base.count() == 3


def test_a_query_runs_again_on_current_data(pdb):
    q = pdb.query("products/").where("price", "<", 10)
    assert q.count() == 1
    pdb.put(b"products/clip", b'{"name":"Clip","price":1}')
    assert q.count() == 2


def test_transaction_query_sees_its_own_writes_and_snapshot(pdb):
    with pdb.transaction() as txn:
        txn.put(b"products/zzz", b'{"name":"Zed","price":1}')
        txn.delete(b"products/desk")
        pdb.put(b"products/aaa", b'{"name":"Outside","price":1}')  # after txn began
        assert names(txn.query("products/").where("price", "<", 10)) == ["Pen", "Zed"]
        assert txn.query("products/").count() == 4
    assert names(pdb.query("products/").where("price", "<", 10)) == ["Outside", "Pen", "Zed"]


# ---- execute_sql(format=...) -----------------------------------------------------------


@pytest.fixture
def sqldb(db: Database) -> Database:
    db.execute_sql("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT, price REAL, img BLOB)")
    db.execute_sql(
        "INSERT INTO p VALUES (1, 'Laptop', 999.99, NULL), (2, 'Mouse, wireless', 25, x'00ff')"
    )
    return db


def test_execute_sql_format_toon(sqldb):
    text = sqldb.execute_sql("SELECT id, name, price FROM p ORDER BY id", format="toon")
    assert text == 'result[2]{id,name,price}:\n  1,Laptop,999.99\n  2,"Mouse, wireless",25'
    assert decode(text) == {
        "result": [dict(r) for r in sqldb.execute_sql("SELECT id, name, price FROM p")]
    }
    assert sqldb.execute_sql("SELECT img FROM p WHERE id = ?", [2], format="toon") == (
        "result[1]{img}:\n  AP8="  # BLOBs as base64 text
    )


def test_execute_sql_format_json(sqldb):
    text = sqldb.execute_sql("SELECT * FROM p WHERE price < ?", [100], format="json")
    assert json.loads(text) == [{"id": 2, "name": "Mouse, wireless", "price": 25.0, "img": "AP8="}]
    assert sqldb.execute_sql("SELECT 1 AS x, 2 AS x", format="json") == '[{"x":1,"x:1":2}]'


def test_execute_sql_format_without_rows(sqldb):
    assert decode(sqldb.execute_sql("SELECT * FROM p WHERE id > 5", format="toon")) == {
        "result": []
    }
    assert sqldb.execute_sql("SELECT * FROM p WHERE id > 5", format="json") == "[]"
    assert sqldb.execute_sql("INSERT INTO p (name) VALUES ('Pen')", format="toon") == (
        "rowcount: 1\nlastrowid: 3"
    )
    assert json.loads(sqldb.execute_sql("UPDATE p SET price = 1", format="json")) == {"rowcount": 3}


def test_execute_sql_format_in_a_transaction_and_errors(sqldb):
    with sqldb.transaction() as txn:
        txn.execute_sql("INSERT INTO p (name) VALUES ('Pen')")
        assert txn.execute_sql("SELECT count(*) AS n FROM p", format="toon") == "result[1]{n}:\n  3"
    with pytest.raises(ValueError, match="unknown format"):
        sqldb.execute_sql("SELECT 1", format="xml")
    assert isinstance(sqldb.execute_sql("SELECT 1"), list) is False  # a Result, unchanged
    assert sqldb.execute_sql("SELECT 1 AS one")[0] == {"one": 1}


def test_format_result_names_and_non_finite_floats(sqldb):
    res = sqldb.execute_sql("SELECT 1.5 AS f")
    assert format_result(res, "toon", name="rows") == "rows[1]{f}:\n  1.5"


primitive = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)


@settings(max_examples=150, deadline=None)
@given(
    fields=st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4, unique=True),
    data=st.data(),
)
def test_rows_cut_from_one_table_equal_rows_encoded_one_by_one(fields, data):
    """to_list() encodes uniform records as one table and cuts it into rows; that must
    give exactly the text of encoding each record alone."""
    from toondb.toon.query import _row_text, _row_texts

    n = data.draw(st.integers(0, 6))
    records = [{f: data.draw(primitive) for f in fields} for _ in range(n)]
    assert _row_texts(records) == [_row_text(r) for r in records]
    assert [decode_row(t) for t in _row_texts(records)] == [
        decode(encode({"x": [r]}))["x"][0] for r in records
    ]
