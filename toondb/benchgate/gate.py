"""The gate: does a run regress?

Two checks, each noise-aware:

- Floors, on the ratios measured in the run itself (see toondb.benchgate.run): a
  floors file lists, for a ratio name or an fnmatch pattern of names, ``min`` (the
  ratio must be at least this) and/or ``max`` (at most this), and ``source`` (where
  the bound comes from: an issue's target). Both sides of a ratio run on the same
  machine in the same minutes, so the machine's speed cancels out. A floor that no
  ratio of the run matches is listed as not measured and fails nothing (a run of
  part of the benchmarks).
- History, on each benchmark's best round (its minimum over the rounds): it must not
  be slower than the median of the best rounds of the last ``window`` runs stored
  for the same machine that passed their gate, by more than the benchmark's
  threshold (a fraction: 0.25 lets it be 25% slower). The threshold is, in order:
  ``benchmark.extra_info["threshold"]``, the first pattern of the floors file's
  ``thresholds`` table that matches the benchmark's full name (or its name), the
  ``--toondb-bench-threshold`` option, the file's ``threshold``, 0.25. A benchmark
  with no stored history passes (and becomes history), and so does one that
  records a size (``extra_info["size"]``) rather than a time.

The floors file is JSON, or TOML where Python has tomllib (3.11+)::

    {"threshold": 0.3,
     "thresholds": {"test_autocommit_*": 0.6},
     "floors": [{"ratio": "get, present keys*: toondb/lmdb", "min": 1.0,
                 "source": "issue 2: db.get at least as fast as py-lmdb's"}]}
"""

from __future__ import annotations

import fnmatch
import json
import os
import statistics
from dataclasses import dataclass, field
from typing import Any

from toondb.benchgate.run import Run

__all__ = ["Floor", "Floors", "Report", "load_floors", "evaluate", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 0.25


@dataclass
class Floor:
    ratio: str  # a name or an fnmatch pattern
    min: float | None = None
    max: float | None = None
    source: str = ""


@dataclass
class Floors:
    floors: list[Floor] = field(default_factory=list)
    threshold: float | None = None
    thresholds: dict[str, float] = field(default_factory=dict)


def load_floors(path: str | os.PathLike[str]) -> Floors:
    """The floors file at path (JSON, or TOML by its .toml suffix)."""
    path = os.fspath(path)
    if str(path).endswith(".toml"):
        import tomllib  # Python 3.11+

        with open(path, "rb") as f:
            data = tomllib.load(f)
    else:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a floors file is a JSON object")
    floors = []
    for i, item in enumerate(data.get("floors", [])):
        if not isinstance(item, dict) or "ratio" not in item:
            raise ValueError(f"{path}: floors[{i}] needs a 'ratio'")
        if item.get("min") is None and item.get("max") is None:
            raise ValueError(f"{path}: floors[{i}] ({item['ratio']}) needs 'min' or 'max'")
        floors.append(
            Floor(str(item["ratio"]), item.get("min"), item.get("max"), str(item.get("source", "")))
        )
    thresholds = {str(k): float(v) for k, v in dict(data.get("thresholds", {})).items()}
    threshold = data.get("threshold")
    return Floors(floors, None if threshold is None else float(threshold), thresholds)


@dataclass
class FloorCheck:
    floor: Floor
    name: str
    value: float
    ok: bool


@dataclass
class HistoryCheck:
    fullname: str
    best: float
    baseline: float  # the median of the stored best rounds
    runs: int  # how many stored runs the baseline comes from
    threshold: float
    ok: bool


@dataclass
class Report:
    floors: list[FloorCheck] = field(default_factory=list)
    unmeasured: list[Floor] = field(default_factory=list)
    history: list[HistoryCheck] = field(default_factory=list)
    new: list[str] = field(default_factory=list)  # benchmarks without history

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.floors) and all(c.ok for c in self.history)

    def lines(self) -> list[str]:
        """The report as terminal lines: every floor, every regression."""
        out = []
        if self.floors:
            out.append(f"{'ratio':72s} {'value':>8s} {'bound':>9s}  verdict  source")
            for c in sorted(self.floors, key=lambda c: c.name):
                bound = _bound(c.floor)
                verdict = "ok" if c.ok else "FAIL"
                out.append(
                    f"{c.name[:72]:72s} {c.value:8.3f} {bound:>9s}  {verdict:7s}  {c.floor.source}"
                )
        for floor in self.unmeasured:
            out.append(f"not measured in this run: {floor.ratio} ({_bound(floor)})")
        slower = [c for c in self.history if not c.ok]
        if self.history:
            out.append(
                f"history: {len(self.history)} benchmarks compared with their stored runs, "
                f"{len(slower)} slower than allowed"
            )
        for h in slower:
            out.append(
                f"REGRESSION {h.fullname}: best {_seconds(h.best)} vs {_seconds(h.baseline)} "
                f"(median of {h.runs} runs), {h.best / h.baseline - 1:+.0%} > +{h.threshold:.0%}"
            )
        if self.new:
            out.append(f"no history yet for {len(self.new)} benchmarks")
        out.append("gate: " + ("passed" if self.passed else "FAILED"))
        return out


def evaluate(
    run: Run,
    history: list[Run],
    floors: Floors | None = None,
    threshold: float | None = None,
    window: int = 5,
) -> Report:
    """Check run against floors and against history (earlier runs, oldest first;
    only those of run's machine that passed are used, the last `window` of them)."""
    floors = floors or Floors()
    report = Report()
    for floor in floors.floors:
        names = [n for n in run.ratios if fnmatch.fnmatchcase(n, floor.ratio)]
        if not names:
            report.unmeasured.append(floor)
        for name in names:
            value = run.ratios[name]
            ok = (floor.min is None or value >= floor.min) and (
                floor.max is None or value <= floor.max
            )
            report.floors.append(FloorCheck(floor, name, value, ok))
    usable = [h for h in history if h.machine_id == run.machine_id and h.passed is not False]
    usable = usable[-window:] if window > 0 else []
    for result in run.results:
        if "size" in result.extra_info:
            continue
        past = [r.best for h in usable for r in h.results if r.fullname == result.fullname]
        if not past:
            report.new.append(result.fullname)
            continue
        limit = _threshold(result.fullname, result.extra_info, floors, threshold)
        baseline = statistics.median(past)
        ok = result.best <= baseline * (1 + limit)
        report.history.append(
            HistoryCheck(result.fullname, result.best, baseline, len(past), limit, ok)
        )
    return report


def _threshold(fullname: str, info: dict[str, Any], floors: Floors, option: float | None) -> float:
    mine = info.get("threshold")
    if isinstance(mine, (int, float)) and not isinstance(mine, bool):
        return float(mine)
    short = fullname.rsplit("::", 1)[-1]
    for pattern, value in floors.thresholds.items():
        if fnmatch.fnmatchcase(fullname, pattern) or fnmatch.fnmatchcase(short, pattern):
            return value
    if option is not None:
        return option
    if floors.threshold is not None:
        return floors.threshold
    return DEFAULT_THRESHOLD


def _bound(floor: Floor) -> str:
    parts = []
    if floor.min is not None:
        parts.append(f">={floor.min:g}")
    if floor.max is not None:
        parts.append(f"<={floor.max:g}")
    return " ".join(parts)


def _seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.2f} us"
