"""``bench_history``: the trend of the stored runs as a table (and a chart).

One column per run (oldest first: its id, date and commit), one row per ratio and
per benchmark (its best round), and a last column with the change from the first
shown run to the last. With ``image=PATH`` and matplotlib installed, the same
series are drawn to a PNG: ratios on one axis, times relative to their first run on
another.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from toondb.benchgate.run import Run
from toondb.benchgate.store import load_runs

__all__ = ["bench_history"]


def bench_history(
    path: str | os.PathLike[str],
    *,
    last: int = 8,
    image: str | os.PathLike[str] | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the trend of the runs stored at path (the last `last` ones) and, with
    image, draw it to that PNG file. Returns an exit status: 0, or 1 when there is
    nothing to show or the chart cannot be drawn (matplotlib missing)."""
    out = out or sys.stdout
    runs = load_runs(path, last=last)
    if not runs:
        print(f"no benchmark runs stored in {os.fspath(path)}", file=out)
        return 1
    for line in table(runs):
        print(line, file=out)
    if image is not None:
        try:
            draw(runs, image)
        except ImportError:
            print("no chart: matplotlib is not installed (pip install matplotlib)", file=out)
            return 1
        print(f"chart written to {os.fspath(image)}", file=out)
    return 0


def _label(run: Run) -> str:
    commit = str((run.commit or {}).get("id") or "")[:7] or "-"
    verdict = {True: "", False: " FAIL", None: ""}[run.passed]
    return f"#{run.id} {run.started[:10]} {commit}{verdict}"


def table(runs: list[Run]) -> list[str]:
    """The trend as text lines (see the module docstring)."""
    labels = [_label(r) for r in runs]
    width = max(12, *(len(label) for label in labels))
    ratio_names = sorted({n for r in runs for n in r.ratios})
    bench_names = sorted(
        {b.fullname for r in runs for b in r.results if "size" not in b.extra_info}
    )
    name_width = min(60, max([20, *(len(n) for n in ratio_names + bench_names)]))
    head = f"{'':{name_width}s} " + " ".join(f"{label:>{width}s}" for label in labels)
    lines = [head + f" {'change':>8s}"]
    if ratio_names:
        lines.append("ratios (higher is better unless a size)")
    for name in ratio_names:
        values = [r.ratios.get(name) for r in runs]
        cells = [f"{v:{width - 1}.2f}x" if v is not None else f"{'':{width}s}" for v in values]
        lines.append(f"{name[-name_width:]:{name_width}s} " + " ".join(cells) + _change(values))
    if bench_names:
        lines.append("best round per benchmark")
    for name in bench_names:
        values = [next((b.best for b in r.results if b.fullname == name), None) for r in runs]
        cells = [f"{_seconds(v):>{width}s}" if v is not None else f"{'':{width}s}" for v in values]
        lines.append(f"{name[-name_width:]:{name_width}s} " + " ".join(cells) + _change(values))
    return lines


def _change(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if len(known) < 2 or not known[0]:
        return ""
    return f" {known[-1] / known[0] - 1:+8.0%}"


def _seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def draw(runs: list[Run], image: str | os.PathLike[str]) -> None:
    """The trend as a PNG chart (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = list(range(len(runs)))
    labels = [_label(r) for r in runs]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(15, 9), sharex=True)
    for name in sorted({n for r in runs for n in r.ratios}):
        top.plot(xs, [r.ratios.get(name) for r in runs], marker="o", label=name[:50])
    top.set_ylabel("ratio (log scale)")
    top.set_yscale("log")
    top.set_title("ratios to anchors measured in the same run")
    names = sorted({b.fullname for r in runs for b in r.results if "size" not in b.extra_info})
    for name in names:
        series = [next((b.best for b in r.results if b.fullname == name), None) for r in runs]
        first = next((v for v in series if v), None)
        if first:
            bottom.plot(xs, [v / first if v else None for v in series], marker=".", alpha=0.6)
    bottom.set_ylabel("best round / first run's")
    bottom.set_title(f"{len(names)} benchmarks, time relative to their first run (lower is better)")
    bottom.set_xticks(xs)
    bottom.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    if top.lines:
        top.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1)
    fig.tight_layout()
    fig.savefig(os.fspath(image), dpi=100)
    plt.close(fig)
