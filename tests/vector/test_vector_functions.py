"""The vec_ SQL functions and vector values (toondb/sql/fn_vector.py): against sqlite-vec
(the reference for the functions it has: cosine and l2 distances, vec_length,
vec_normalize, vec_to_json, vec_f32) and NumPy (the inner product), NULLs, the three
input forms, and the typed error for what is not a vector."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toondb import Database, VectorValueError
from toondb.sql import fn_vector


@pytest.fixture(scope="module")
def vec():
    """sqlite-vec on pysqlite3 (a sqlite3 that loads extensions)."""
    sqlite3 = pytest.importorskip("pysqlite3.dbapi2")
    sqlite_vec = pytest.importorskip("sqlite_vec")
    con = sqlite3.connect(":memory:")
    con.enable_load_extension(True)
    sqlite_vec.load(con)
    yield con
    con.close()


@pytest.fixture()
def db(tmp_path):
    with Database.open(str(tmp_path / "db")) as d:
        yield d


def one(db, sql, *params):
    return db.execute_sql(sql, list(params)).rows[0][0]


def pairs(n, dim, seed):
    rng = np.random.default_rng(seed)
    scale = rng.choice([1e-3, 1.0, 1e3], size=(n, 1))
    return (rng.standard_normal((n, 2, dim)) * scale[:, :, None]).astype(np.float32)


@pytest.mark.parametrize("dim", [1, 3, 16, 384])
def test_distances_match_sqlite_vec_and_numpy(db, vec, dim):
    for a, b in pairs(20, dim, dim):
        ab, bb = a.tobytes(), b.tobytes()
        ref_cos, ref_l2 = vec.execute(
            "SELECT vec_distance_cosine(?, ?), vec_distance_l2(?, ?)", (ab, bb, ab, bb)
        ).fetchone()
        cos, l2, ip = db.execute_sql(
            "SELECT vec_distance_cosine(?, ?), vec_distance_l2(?, ?), vec_distance_ip(?, ?)",
            [a, b, ab, bb, a, json.dumps(b.tolist())],
        ).rows[0]
        assert cos == pytest.approx(ref_cos, rel=1e-5, abs=1e-6)
        assert l2 == pytest.approx(ref_l2, rel=1e-5)
        assert ip == pytest.approx(-float(a.astype(np.float64) @ b.astype(np.float64)), rel=1e-9)


def test_length_normalize_json_and_f32_match_sqlite_vec(db, vec):
    for a, _b in pairs(10, 7, 1):
        text = json.dumps(a.tolist())
        ref = vec.execute(
            "SELECT vec_length(?), vec_normalize(vec_f32(?)), vec_to_json(?), vec_f32(?)",
            (text, text, a.tobytes(), text),
        ).fetchone()
        got = db.execute_sql(
            "SELECT vec_length(?), vec_normalize(?), vec_to_json(?), vec_f32(?)",
            [text, text, a.tobytes(), text],
        ).rows[0]
        assert got[0] == ref[0] == 7
        assert np.allclose(got[1], np.frombuffer(ref[1], np.float32), rtol=1e-6)
        assert got[1].dtype == np.float32  # a vector-valued result reads back as an array
        # the same float32 values; toondb's text is the shortest that reads back exactly
        assert np.array_equal(np.array(json.loads(got[2]), np.float32), a)
        assert np.allclose(json.loads(got[2]), json.loads(ref[2]), atol=1e-6)
        assert got[3].tobytes() == ref[3]


def test_null_in_null_out(db):
    for fn in ("vec_distance_cosine(NULL, '[1]')", "vec_distance_l2('[1]', NULL)"):
        assert one(db, f"SELECT {fn}") is None
    for fn in ("vec_length", "vec_normalize", "vec_to_json", "vec_f32"):
        assert one(db, f"SELECT {fn}(NULL)") is None


def test_zero_vectors(db):
    assert one(db, "SELECT vec_distance_cosine('[0, 0]', '[1, 2]')") == 1.0
    assert one(db, "SELECT vec_to_json(vec_normalize('[0, 0]'))") == "[0.0,0.0]"


@pytest.mark.parametrize(
    "arg, match",
    [
        ("'[1, 2'", "not a JSON array"),
        ("'[]'", "non-empty JSON array"),
        ("'[1, [2]]'", "non-empty JSON array"),
        ("'[true]'", "non-empty JSON array"),
        ("'[1e39]'", "beyond float32"),
        ("X'000000'", "3 bytes"),
        ("12", "integer is not a vector"),
        ("2.5", "real is not a vector"),
    ],
)
def test_what_is_not_a_vector_raises_the_typed_error(db, arg, match):
    with pytest.raises(VectorValueError, match=match):
        one(db, f"SELECT vec_to_json({arg})")
    assert issubclass(VectorValueError, ValueError)


def test_nan_and_dimension_mismatch(db):
    with pytest.raises(VectorValueError, match="NaN or infinity"):
        one(db, "SELECT vec_distance_l2(?, '[1, 2]')", np.array([np.nan, 1.0]))
    with pytest.raises(VectorValueError, match="NaN or infinity"):
        one(db, "SELECT vec_to_json(?)", np.array([1e300]))  # beyond float32
    with pytest.raises(VectorValueError, match="3 and 2 dimensions"):
        one(db, "SELECT vec_distance_ip('[1, 2, 3]', '[1, 2]')")


def test_numpy_parameters(db):
    a = np.arange(4, dtype=np.float64)
    assert one(db, "SELECT ?", a) == a.astype(np.float32).tobytes()  # a blob where no column says
    assert one(db, "SELECT vec_length(?)", np.arange(5, dtype=np.int32)) == 5
    assert one(db, "SELECT ? + 1", np.float32(1.5)) == 2.5
    assert one(db, "SELECT ? * 2", np.int64(21)) == 42
    with pytest.raises(VectorValueError, match="1-D"):
        one(db, "SELECT ?", np.zeros((2, 2)))
    with pytest.raises(VectorValueError, match="real numbers"):
        one(db, "SELECT ?", np.array(["a"]))


def test_the_helpers():
    assert fn_vector.vector_dim("VECTOR(384)") == 384
    assert fn_vector.vector_dim(" vector ( 3 ) ") == 3
    assert fn_vector.vector_dim("VECTOR") is None
    assert fn_vector.vector_dim("VECTOR(0)") is None
    assert fn_vector.vector_dim("INTEGER") is None
    blob = fn_vector.column_value("[1, 2]", 2, "t", "v")
    assert np.array_equal(fn_vector.as_array(blob), [1, 2])
    with pytest.raises(VectorValueError, match=r"column t\.v: 2 dimensions.*VECTOR\(3\)"):
        fn_vector.column_value(blob, 3, "t", "v")
    assert fn_vector.column_value(None, 3, "t", "v") is None
