"""Shared benchmark plumbing: engine adapters name themselves in
``benchmark.extra_info["engine"]`` and give the operations per call in
``extra_info["ops"]``; at the end of the session a table per benchmark group
prints each engine's rate and its ratio to toondb's, measured in this one run
(this machine is shared and noisy: absolute numbers mean little, ratios do).
Lines in ``extra_info["summary"]`` are printed after the table."""

from __future__ import annotations

from collections import defaultdict


def _rate(bench) -> float | None:
    info = bench.extra_info or {}
    if "engine" not in info or "ops" not in info:
        return None
    median = bench.stats.median if hasattr(bench, "stats") else None
    if hasattr(median, "median"):
        median = median.median
    if not median:
        return None
    return info["ops"] / median


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    units: dict[str, str] = {}
    sizes: dict[str, dict[str, int]] = defaultdict(dict)
    summary: list[str] = []
    for bench in session.benchmarks:
        info = bench.extra_info or {}
        summary.extend(info.get("summary", ()))
        if "size" in info and "engine" in info:
            sizes[bench.group or bench.name][info["engine"]] = info["size"]
            continue
        rate = _rate(bench)
        if rate is None:
            continue
        info = bench.extra_info
        groups[bench.group or bench.name][info["engine"]] = rate
        units[bench.group or bench.name] = info.get("unit", "ops/s")
    if not (groups or sizes or summary):
        return
    tr = terminalreporter
    tr.section("toondb vs anchors (same run; ratio = toondb rate / anchor rate)")
    if groups or sizes:
        tr.write_line(f"{'workload':44s} {'engine':10s} {'rate':>14s} {'toondb/this':>12s}")
    for group in sorted(groups):
        rates = groups[group]
        mine = rates.get("toondb")
        for engine in sorted(rates, key=lambda e: (e != "toondb", e)):
            rate = rates[engine]
            ratio = "" if engine == "toondb" or not mine else f"{mine / rate:11.2f}x"
            tr.write_line(f"{group:44s} {engine:10s} {rate:12,.0f} {units[group][:6]:6s} {ratio}")
    for group in sorted(sizes):
        mine = sizes[group].get("toondb")
        for engine, size in sorted(sizes[group].items(), key=lambda kv: (kv[0] != "toondb", kv[0])):
            ratio = "" if engine == "toondb" or not mine else f"{mine / size:11.2f}x"
            tr.write_line(f"{group:44s} {engine:10s} {size:12,d} bytes  {ratio}")
    for line in summary:
        tr.write_line(line)
