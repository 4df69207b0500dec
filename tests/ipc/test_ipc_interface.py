"""One interface, two implementations: every test here runs against an embedded
``Database`` and against an ``IpcClient`` connected to a toondb-server subprocess,
and must pass unchanged on both (the issue's "code written against one runs
against the other")."""

from __future__ import annotations

import threading

import pytest
from ipc_harness import ServerProcess

import toondb
from toondb import (
    ClosedError,
    IpcClient,
    ReadOnlyError,
    ToonDBError,
    TransactionClosedError,
    TransactionConflictError,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("ipc_interface")
    with ServerProcess(root / "db") as srv:
        srv.start()
        yield srv
    assert srv.proc is not None and srv.proc.returncode == 0, srv.log()
    with toondb.Database.open(root / "db") as db:
        db.check()


def _wipe(client: IpcClient) -> None:
    with client.transaction() as t:
        for key, _ in list(t.scan(b"")):
            t.delete(key)


@pytest.fixture(params=["embedded", "ipc"])
def db(request, open_db):
    if request.param == "embedded":
        yield open_db()
        return
    srv = request.getfixturevalue("server")
    client = IpcClient.connect(srv.socket_path, timeout=30)
    _wipe(client)
    yield client
    if not client.closed:
        _wipe(client)
        client.close()


# ---- key-value ---------------------------------------------------------------


def test_put_get_delete(db):
    assert db.get(b"user:123") is None
    db.put(b"user:123", b'{"name":"Alice","age":30}')
    assert db.get(b"user:123") == b'{"name":"Alice","age":30}'
    db.put(b"user:123", b"again")
    assert db.get(b"user:123") == b"again"
    assert db.delete(b"user:123") is True
    assert db.delete(b"user:123") is False
    assert db.get(b"user:123") is None


def test_bytes_like_arguments_and_empty_values(db):
    db.put(bytearray(b"k1"), memoryview(b"v1"))
    db.put(b"k2", b"")
    assert db.get(memoryview(b"k1")) == b"v1"
    assert db.get(bytearray(b"k2")) == b""
    assert type(db.get(b"k1")) is bytes


def test_binary_and_large_values(db):
    blob = bytes(range(256)) * 4096  # 1 MiB
    db.put(b"blob", blob)
    db.put(b"\x00\xff\x00", b"\x00")
    assert db.get(b"blob") == blob
    assert db.get(b"\x00\xff\x00") == b"\x00"


def _raised(fn, *args):
    with pytest.raises(Exception) as info:
        fn(*args)
    return type(info.value), str(info.value)


def test_argument_errors_are_the_embedded_ones(db):
    assert _raised(db.put, "key", b"v") == (
        TypeError,
        "key must be bytes (or another bytes-like object), not str; encode it first, "
        "for example key.encode()",
    )
    assert _raised(db.put, b"k", None)[0] is TypeError
    assert _raised(db.get, None)[0] is TypeError
    assert _raised(db.put, b"", b"v") == (ValueError, "key must not be empty")
    kind, message = _raised(db.put, b"k" * 5000, b"v")
    assert kind is ValueError and "maximum" in message
    assert _raised(db.get, b"")[0] is ValueError


# ---- the path API --------------------------------------------------------------


def test_path_api(db):
    db.put_path("users/alice/email", b"alice@example.com")
    db.put_path("users/alice/age", b"30")
    db.put_path("users/bob/email", b"bob@example.com")
    db.put_path("users", b"root value")
    assert db.get_path("users/alice/email") == b"alice@example.com"
    assert db.get(b"users/alice/email") == b"alice@example.com"
    assert db.list_path("users") == ["alice", "bob"]
    assert db.list_path("") == ["users"]
    assert db.list_path("users/alice") == ["age", "email"]
    assert db.list_path("nobody") == []
    assert list(db.scan_path("users/alice")) == [
        ("users/alice/age", b"30"),
        ("users/alice/email", b"alice@example.com"),
    ]
    assert db.delete_path("users/alice/age") is True
    assert db.delete_path("users/alice/age") is False
    assert db.get_path("users/alice/age") is None
    with pytest.raises(ValueError):
        db.put_path("/users", b"x")
    with pytest.raises(TypeError):
        db.get_path(b"users")


# ---- scans -----------------------------------------------------------------------


def _fill(db, n, prefix=b"k"):
    with db.transaction() as t:
        for i in range(n):
            t.put(prefix + b"%06d" % i, b"v%d" % i)


def test_scan_prefix_range_reverse(db):
    _fill(db, 50)
    db.put(b"j", b"before")
    db.put(b"l", b"after")
    assert [k for k, _ in db.scan(b"k")] == [b"k%06d" % i for i in range(50)]
    assert list(db.scan_prefix(b"k00001")) == [(b"k%06d" % i, b"v%d" % i) for i in range(10, 20)]
    assert [k for k, _ in db.scan(b"k000010", b"k000013")] == [b"k000010", b"k000011", b"k000012"]
    assert [k for k, _ in db.scan(b"k", reverse=True)][:2] == [b"k000049", b"k000048"]
    assert [k for k, _ in db.scan(b"k000010", b"k000013", reverse=True)] == [
        b"k000012",
        b"k000011",
        b"k000010",
    ]
    assert list(db.scan(b"k000013", b"k000010")) == []
    assert list(db.scan(b"zzz")) == []
    assert len(list(db.scan(b""))) == 52
    assert [k for k, _ in db.scan(b"\xff")] == []


def test_long_scan_is_complete_and_in_order(db):
    _fill(db, 20_000)
    keys = [k for k, _ in db.scan(b"k")]
    assert keys == [b"k%06d" % i for i in range(20_000)]
    back = [k for k, _ in db.scan(b"k", reverse=True)]
    assert back == keys[::-1]


def test_scan_outside_a_transaction_reads_one_snapshot(db):
    _fill(db, 3000)
    it = db.scan(b"k")
    assert next(it)[0] == b"k000000"
    db.put(b"k002999x", b"late")  # committed after the scan began: not seen
    db.delete(b"k001500")  # deleted after the scan began: still seen
    keys = [b"k000000"] + [k for k, _ in it]
    assert len(keys) == 3000
    assert b"k001500" in keys and b"k002999x" not in keys


def test_abandoned_and_closed_scans_release_their_snapshot(db):
    _fill(db, 2000)
    for _ in range(600):  # more than the reader table and the per-connection cursor cap
        it = db.scan(b"k")
        next(it)
        it.close()
    for _ in range(300):
        next(iter(db.scan(b"k")))  # dropped unfinished
    assert db.get(b"k000001") == b"v1"
    assert sum(1 for _ in db.scan(b"k")) == 2000


def test_scan_argument_errors(db):
    with pytest.raises(TypeError):
        list(db.scan("k"))
    with pytest.raises(TypeError):
        list(db.scan(b"a", "b"))


# ---- transactions -----------------------------------------------------------------


def test_transaction_commit_and_abort(db):
    with db.transaction() as t:
        t.put(b"a", b"1")
        t.put(b"b", b"2")
        assert t.get(b"a") == b"1"  # reads its own writes
        assert db.get(b"a") is None  # others do not, until commit
    assert db.get(b"a") == b"1" and db.get(b"b") == b"2"
    t = db.begin_transaction()
    t.put(b"c", b"3")
    assert t.delete(b"a") is True
    t.abort()
    t.abort()  # idempotent
    assert db.get(b"c") is None and db.get(b"a") == b"1"
    assert t.closed


def test_context_manager_aborts_on_exception(db):
    with pytest.raises(RuntimeError):
        with db.transaction() as t:
            t.put(b"x", b"1")
            raise RuntimeError("boom")
    assert db.get(b"x") is None
    assert t.closed


def test_snapshot_isolation(db):
    db.put(b"k", b"old")
    t = db.begin_transaction(read_only=True)
    db.put(b"k", b"new")
    db.put(b"k2", b"added")
    assert t.get(b"k") == b"old"
    assert t.get(b"k2") is None
    assert list(t.scan(b"k")) == [(b"k", b"old")]
    t.commit()
    assert db.get(b"k") == b"new"


def test_first_committer_wins(db):
    db.put(b"counter", b"0")
    t1 = db.begin_transaction()
    t2 = db.begin_transaction()
    t1.put(b"counter", b"1")
    t2.put(b"counter", b"2")
    assert t1.commit() > 0
    with pytest.raises(TransactionConflictError):
        t2.commit()
    assert t2.closed
    assert db.get(b"counter") == b"1"
    # disjoint writes do not conflict
    t3 = db.begin_transaction()
    t4 = db.begin_transaction()
    t3.put(b"x", b"3")
    t4.put(b"y", b"4")
    t3.commit()
    t4.commit()
    assert db.get(b"x") == b"3" and db.get(b"y") == b"4"


def test_immediate_transaction_never_conflicts(db):
    t = db.begin_transaction(immediate=True)
    assert t.get(b"n") is None
    t.put(b"n", b"1")
    t.commit()
    assert db.get(b"n") == b"1"


def test_read_only_transaction_refuses_writes(db):
    db.put(b"a", b"1")
    with db.transaction(read_only=True) as t:
        assert t.read_only
        assert t.get(b"a") == b"1"
        with pytest.raises(ReadOnlyError):
            t.put(b"a", b"2")
    assert db.get(b"a") == b"1"


def test_finished_transaction_is_closed(db):
    t = db.begin_transaction()
    assert isinstance(t.txnid, int) and not t.closed
    t.put(b"a", b"1")
    t.commit()
    for call in (lambda: t.get(b"a"), lambda: t.put(b"a", b"2"), t.commit, lambda: t.txnid):
        with pytest.raises(TransactionClosedError):
            call()
    t.abort()  # still idempotent


def test_scan_in_a_transaction_sees_its_writes_made_while_iterating(db):
    _fill(db, 1000)
    with db.transaction() as t:
        t.put(b"k000000a", b"new")
        t.delete(b"k000002")
        it = t.scan(b"k")
        assert next(it)[0] == b"k000000"
        t.put(b"k000001a", b"during")  # ahead of the cursor: seen
        t.delete(b"k000003")  # ahead of the cursor: not seen
        rest = [k for k, _ in it]
        assert rest[:4] == [b"k000000a", b"k000001", b"k000001a", b"k000004"]
        assert len(rest) == 1000 - 2 + 2 - 1
        back = [k for k, _ in t.scan(b"k", b"k000010", reverse=True)]
        assert back[0] == b"k000009" and b"k000003" not in back


def test_path_api_in_a_transaction(db):
    with db.transaction() as t:
        t.put_path("a/b/c", b"1")
        t.put_path("a/d", b"2")
        assert t.list_path("a") == ["b", "d"]
        assert t.get_path("a/b/c") == b"1"
        assert list(t.scan_path("a")) == [("a/b/c", b"1"), ("a/d", b"2")]
        assert t.delete_path("a/d") is True
    assert db.list_path("a") == ["b"]


def test_transactions_from_many_threads(db):
    db.put(b"counter", b"0")
    errors: list[BaseException] = []

    def work():
        try:
            for _ in range(25):
                while True:
                    t = db.begin_transaction()
                    t.put(b"counter", b"%d" % (int(t.get(b"counter")) + 1))
                    try:
                        t.commit()
                        break
                    except TransactionConflictError:
                        continue
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    assert db.get(b"counter") == b"100"


# ---- maintenance -------------------------------------------------------------------


def test_stats_and_checkpoint(db):
    _fill(db, 100)
    db.checkpoint()
    stats = db.stats()
    assert stats["entries"] == 100
    assert stats["durable_txn_id"] == stats["last_txn_id"]
    for key in ("depth", "page_size", "pages", "pages_free", "file_size", "readers", "sync_mode"):
        assert key in stats
    assert db.check()["entries"] == 100
    assert db.max_key_size == stats["max_key_size"]
    assert db.page_size == stats["page_size"]
    assert db.read_only is False


def test_closed_handle(db):
    db.put(b"a", b"1")
    db.close()
    db.close()  # idempotent
    assert db.closed
    with pytest.raises(ClosedError):
        db.get(b"a")
    with pytest.raises(ClosedError):
        db.put(b"a", b"2")
    with pytest.raises(ToonDBError):
        db.begin_transaction()


def test_context_manager_closes(db):
    with db as handle:
        handle.put(b"a", b"1")
    assert db.closed


# ---- SQL ----------------------------------------------------------------------------


def _users(db) -> None:
    db.execute_sql("DROP TABLE IF EXISTS orders")
    db.execute_sql("DROP TABLE IF EXISTS users")
    db.execute_sql(
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            email TEXT UNIQUE,
            age INTEGER
        )
        """
    )
    db.execute_sql(
        "INSERT INTO users (id, name, email, age) VALUES (1, 'Alice', 'alice@example.com', 30)"
    )
    db.execute_sql(
        "INSERT INTO users (id, name, email, age) VALUES (2, 'Bob', 'bob@example.com', 25)"
    )


def test_sql_guide_examples(db, capsys):
    _users(db)
    results = db.execute_sql("SELECT * FROM users")
    for row in results:
        print(row)
    results = db.execute_sql("SELECT name, age FROM users WHERE age > 26")
    for row in results:
        print(f"{row['name']}: {row['age']} years old")
    db.execute_sql(
        """
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            user_id INTEGER,
            product TEXT,
            amount REAL,
            FOREIGN KEY (user_id) REFERENCES users(id)
        )
        """
    )
    db.execute_sql("INSERT INTO orders VALUES (1, 1, 'Laptop', 999.99)")
    db.execute_sql("INSERT INTO orders VALUES (2, 1, 'Mouse', 25.00)")
    db.execute_sql("INSERT INTO orders VALUES (3, 2, 'Keyboard', 75.00)")
    results = db.execute_sql(
        """
        SELECT users.name, COUNT(*) as order_count, SUM(orders.amount) as total
        FROM users
        JOIN orders ON users.id = orders.user_id
        GROUP BY users.name
        ORDER BY total DESC
        """
    )
    for row in results:
        print(f"{row['name']}: {row['order_count']} orders, ${row['total']} total")
    assert capsys.readouterr().out == (
        "{'id': 1, 'name': 'Alice', 'email': 'alice@example.com', 'age': 30}\n"
        "{'id': 2, 'name': 'Bob', 'email': 'bob@example.com', 'age': 25}\n"
        "Alice: 30 years old\n"
        "Alice: 2 orders, $1024.99 total\n"
        "Bob: 1 orders, $75.0 total\n"
    )


def test_sql_values_keep_their_types(db):
    db.execute_sql("DROP TABLE IF EXISTS t")
    db.execute_sql("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)")
    values = (-(2**63), 0.1, "héllo \u2603", b"\x00\xff", None)
    db.execute_sql("INSERT INTO t VALUES (?, ?, ?, ?, ?)", values)
    db.execute_sql("INSERT INTO t VALUES (:i, :r, :s, :b, :n)", dict(zip("irsbn", values)))
    result = db.execute_sql("SELECT * FROM t")
    assert result.columns == ["i", "r", "s", "b", "n"]
    assert result.rows == [values, values]
    assert [type(v) for v in result.rows[0]] == [int, float, str, bytes, type(None)]
    assert db.execute_sql("SELECT 1 = 1, 2.5, 'x'").rows == [(1, 2.5, "x")]
    many = db.executemany("INSERT INTO t (i) VALUES (?)", [(1,), (2,), (3,)])
    assert many.rowcount == 3
    insert = db.execute_sql("INSERT INTO t (i) VALUES (7)")
    assert insert.rowcount == 1 and insert.columns == [] and len(insert) == 0
    assert db.execute_sql("SELECT count(*) FROM t").scalar() == 6
    assert db.execute("SELECT i FROM t WHERE i = 7").rows == [(7,)]


def test_sql_vectors_and_hnsw_search(db):
    """VECTOR(n) values travel as float32 vectors (typed value 10) both ways; the k-NN
    plan, its EXPLAIN and its errors are the embedded engine's."""
    np = pytest.importorskip("numpy")
    db.execute_sql("DROP TABLE IF EXISTS docs")
    db.execute_sql("CREATE TABLE docs (id INTEGER PRIMARY KEY, cat INT, emb VECTOR(4))")
    x = np.random.default_rng(5).standard_normal((300, 4))  # float64: converted
    db.executemany("INSERT INTO docs VALUES (?, ?, ?)", [(i, i % 10, x[i]) for i in range(300)])
    db.execute_sql("CREATE INDEX docs_emb ON docs USING hnsw (emb) WITH (metric = 'l2')")
    sql = "SELECT id, emb, vec_distance_l2(emb, ?) AS d FROM docs WHERE cat = 3 ORDER BY d LIMIT 3"
    plan = [r[0] for r in db.execute_sql("EXPLAIN QUERY PLAN " + sql).rows]
    assert plan[0].startswith("SEARCH docs USING HNSW INDEX docs_emb")
    q = x[13].astype(np.float32)
    rows = db.execute_sql(sql, [q]).rows
    d = np.sqrt(((x.astype(np.float32) - q) ** 2).sum(1))
    want = [i for i in np.argsort(d) if i % 10 == 3][:3]
    assert [r[0] for r in rows] == want
    emb = rows[0][1]
    assert isinstance(emb, np.ndarray) and emb.dtype == np.float32
    assert np.array_equal(emb, x[13].astype(np.float32)) and rows[0][2] == 0.0
    assert db.execute_sql("SELECT vec_to_json(vec_normalize('[3, 4]'))").scalar() == "[0.6,0.8]"
    assert isinstance(db.execute_sql("SELECT vec_normalize('[3, 4]')").scalar(), np.ndarray)
    with pytest.raises(toondb.VectorValueError, match=r"column docs\.emb: 3 dimensions"):
        db.execute_sql("INSERT INTO docs VALUES (1000, 1, ?)", [np.zeros(3)])
    db.execute_sql("DROP TABLE docs")


def test_sql_errors_are_the_embedded_classes(db):
    _users(db)
    with pytest.raises(toondb.ConstraintError, match="UNIQUE"):
        db.execute_sql("INSERT INTO users (id, name, email) VALUES (3, 'Eve', 'bob@example.com')")
    with pytest.raises(toondb.ConstraintError):
        db.execute_sql("INSERT INTO users (id, name) VALUES (4, NULL)")
    with pytest.raises(toondb.SQLSyntaxError):
        db.execute_sql("SELEC * FROM users")
    with pytest.raises(toondb.SchemaError):
        db.execute_sql("SELECT * FROM nowhere")
    assert db.execute_sql("SELECT count(*) FROM users").scalar() == 2


def test_sql_scripts_and_the_one_statement_rule(db):
    """executescript runs a script (BEGIN/COMMIT honoured, an error names its
    statement and line); execute_sql refuses two statements, embedded and over IPC."""
    db.executescript(
        "DROP TABLE IF EXISTS s;\nBEGIN;\nCREATE TABLE s (a UNIQUE);\n"
        "INSERT INTO s VALUES (1);\nINSERT INTO s VALUES ('it''s; two');\nCOMMIT;"
    )
    assert db.execute_sql("SELECT a FROM s ORDER BY a").rows == [(1,), ("it's; two",)]
    with pytest.raises(toondb.ConstraintError, match="statement 2 of the script, at line 2"):
        db.executescript("INSERT INTO s VALUES (3);\nINSERT INTO s VALUES (1);")
    assert db.execute_sql("SELECT count(*) FROM s").scalar() == 3
    with pytest.raises(toondb.MultipleStatementsError, match="one statement at a time"):
        db.execute_sql("SELECT 1; SELECT 2")
    with db.transaction() as txn:
        txn.executescript("INSERT INTO s VALUES (4); INSERT INTO s VALUES (5)")
    assert db.execute_sql("SELECT count(*) FROM s").scalar() == 5


def test_sql_begin_commit_rollback_in_this_thread(db):
    _users(db)
    db.execute_sql("BEGIN")
    db.execute_sql("INSERT INTO users (id, name) VALUES (3, 'Carol')")
    assert db.execute_sql("SELECT count(*) FROM users").scalar() == 3
    seen = []
    other = threading.Thread(
        target=lambda: seen.append(db.execute_sql("SELECT count(*) FROM users").scalar())
    )
    other.start()
    other.join(30)
    assert seen == [2]  # another thread is not in this thread's transaction
    db.put(b"kv", b"1")  # key-value calls are not in it either
    db.execute_sql("ROLLBACK")
    assert db.execute_sql("SELECT count(*) FROM users").scalar() == 2
    assert db.get(b"kv") == b"1"
    db.execute_sql("BEGIN")
    db.execute_sql("UPDATE users SET age = 31 WHERE name = 'Alice'")
    db.execute_sql("COMMIT")
    assert db.execute_sql("SELECT age FROM users WHERE id = 1").rows == [(31,)]
    with pytest.raises(toondb.SQLError):
        db.execute_sql("COMMIT")


def test_sql_in_a_transaction_commits_with_key_value_writes(db):
    _users(db)
    with pytest.raises(RuntimeError):
        with db.transaction() as t:
            t.execute_sql("DELETE FROM users WHERE id = 2")
            t.put(b"audit", b"deleted bob")
            assert t.execute_sql("SELECT count(*) FROM users").scalar() == 1
            raise RuntimeError("changed my mind")
    assert db.execute_sql("SELECT count(*) FROM users").scalar() == 2
    assert db.get(b"audit") is None
    with db.transaction() as t:
        t.execute_sql("DELETE FROM users WHERE id = 2")
        with pytest.raises(toondb.ConstraintError):  # a failed statement undoes itself only
            t.execute_sql(
                "INSERT INTO users (id, name, email) VALUES (5, 'X', 'alice@example.com')"
            )
        t.executemany("INSERT INTO users (id, name) VALUES (?, ?)", [(6, "F"), (7, "G")])
        t.put(b"audit", b"deleted bob")
    assert db.execute_sql("SELECT id FROM users ORDER BY id").rows == [(1,), (6,), (7,)]
    assert db.get(b"audit") == b"deleted bob"


def test_sql_result_as_toon_and_json(db):
    _users(db)
    toon = db.execute_sql("SELECT name, age FROM users ORDER BY id", format="toon")
    assert toon == "result[2]{name,age}:\n  Alice,30\n  Bob,25"
    assert db.execute_sql("SELECT name FROM users WHERE id = ?", [2], format="json") == (
        '[{"name":"Bob"}]'
    )
    with db.transaction() as t:
        assert t.execute_sql("SELECT count(*) AS n FROM users", format="json") == '[{"n":2}]'
    with pytest.raises(ValueError):
        db.execute_sql("SELECT 1", format="xml")


# ---- the query builder -----------------------------------------------------------------


def test_query_builder_guide_example(db, capsys):
    db.put(b"products/laptop", b'{"name":"Laptop","price":999,"stock":5}')
    db.put(b"products/mouse", b'{"name":"Mouse","price":25,"stock":20}')
    results = db.query("products/").select(["name", "price"]).limit(10).to_list()
    for key, value in results:
        print(f"{key.decode()}: {value.decode()}")
    assert capsys.readouterr().out == (
        "products/laptop: result[1]{name,price}:Laptop,999\n"
        "products/mouse: result[1]{name,price}:Mouse,25\n"
    )


def test_query_builder_over_many_documents(db):
    with db.transaction() as t:
        for i in range(3000):
            t.put(b"doc/%05d" % i, b'{"n":%d,"even":%s}' % (i, b"true" if i % 2 == 0 else b"false"))
        t.put(b"doc/zzz", b"not json")
    q = db.query("doc/").where("n", ">=", 2990).select(["n"])
    assert q.to_dicts() == [{"n": n} for n in range(2990, 3000)]
    assert db.query("doc/").where("even", "=", True).count() == 1500
    top = db.query("doc/").order_by("n", desc=True).limit(2).to_dicts()
    assert [d["n"] for d in top] == [2999, 2998]
    assert (
        db.query("doc/").where("n", "<", 3).select(["n"]).to_toon() == "doc[3]{n}:\n  0\n  1\n  2"
    )
    with db.transaction() as t:
        t.put(b"doc/00000", b'{"n":-1,"even":true}')
        assert t.query("doc/").first()["n"] == -1  # sees the transaction's own write
    assert db.query("doc/").first()["n"] == -1
