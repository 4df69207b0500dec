"""One benchmark run as the gate keeps it: each benchmark's statistics, and the ratios
measured in the run.

Ratios come from two places:

- anchors measured in the same run (the convention of toondb's bench/conftest.py):
  benchmarks in one pytest-benchmark group that name their engine in
  ``benchmark.extra_info["engine"]`` (and the operations one call does in
  ``extra_info["ops"]``, 1 if absent) are compared by rate, ops / best time: the
  ratio ``"GROUP: SUBJECT/ANCHOR"`` is the subject engine's rate over the anchor's
  (higher is better). A benchmark that records ``extra_info["size"]`` (bytes) instead
  is compared by size: ``"GROUP: SUBJECT/ANCHOR"`` is the subject's size over the
  anchor's (lower is better).
- ratios a benchmark computes itself: every number in ``extra_info["ratios"]`` (a
  dict) is kept as ``"NAME: KEY"``, NAME being the benchmark's name.

Times are the best round (the minimum): on a shared, noisy machine the best round is
the one least disturbed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BenchResult", "Run", "collect", "ratios_of"]


@dataclass
class BenchResult:
    fullname: str
    name: str
    group: str | None
    best: float  # seconds, the fastest round
    median: float
    mean: float
    stddev: float
    iqr: float
    rounds: int
    extra_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    started: str  # ISO 8601, UTC
    machine_id: str  # the same machine and Python: runs comparable with each other
    machine: dict[str, Any]
    commit: dict[str, Any]
    results: list[BenchResult]
    ratios: dict[str, float]
    id: int | None = None  # assigned when stored
    passed: bool | None = None  # the gate's verdict, when it ran


def machine_id(machine: dict[str, Any]) -> str:
    """A short hash of what makes timings comparable: host, CPU, Python."""
    cpu = machine.get("cpu") or {}
    key = [
        machine.get("node"),
        machine.get("machine"),
        cpu.get("brand_raw") if isinstance(cpu, dict) else str(cpu),
        machine.get("python_implementation"),
        machine.get("python_version"),
    ]
    return hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:12]


def collect(
    benchmarks: list[Any], machine: dict[str, Any], commit: dict[str, Any], subject: str
) -> Run:
    """A Run from pytest-benchmark's benchmark objects (those with stats)."""
    results = []
    for bench in benchmarks:
        stats = getattr(bench, "stats", None)
        if not stats:
            continue
        results.append(
            BenchResult(
                fullname=bench.fullname,
                name=bench.name,
                group=bench.group,
                best=float(stats.min),
                median=float(stats.median),
                mean=float(stats.mean),
                stddev=float(stats.stddev) if stats.rounds > 1 else 0.0,
                iqr=float(stats.iqr) if stats.rounds > 1 else 0.0,
                rounds=int(stats.rounds),
                extra_info=_jsonable(dict(bench.extra_info or {})),
            )
        )
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    machine = _jsonable(machine)
    return Run(
        started=started,
        machine_id=machine_id(machine),
        machine=machine,
        commit=_jsonable(commit),
        results=results,
        ratios=ratios_of(results, subject),
    )


def ratios_of(results: list[BenchResult], subject: str) -> dict[str, float]:
    """Every ratio of a run (see the module docstring), by name."""
    rates: dict[str, dict[str, float]] = {}
    sizes: dict[str, dict[str, float]] = {}
    out: dict[str, float] = {}
    for r in results:
        info = r.extra_info
        recorded = info.get("ratios")
        if isinstance(recorded, dict):
            for key, value in recorded.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[f"{r.name}: {key}"] = float(value)
        engine = info.get("engine")
        if not isinstance(engine, str):
            continue
        group = r.group or r.name
        if isinstance(info.get("size"), (int, float)):
            sizes.setdefault(group, {})[engine] = float(info["size"])
        elif r.best > 0:
            ops = info.get("ops", 1)
            rates.setdefault(group, {})[engine] = float(ops) / r.best
    for table in (rates, sizes):
        for group, values in table.items():
            mine = values.get(subject)
            if not mine:
                continue
            for anchor, value in sorted(values.items()):
                if anchor != subject and value:
                    out[f"{group}: {subject}/{anchor}"] = mine / value
    return out


def _jsonable(value: Any) -> Any:
    """value with everything JSON cannot hold turned into text."""
    return json.loads(json.dumps(value, default=str))
