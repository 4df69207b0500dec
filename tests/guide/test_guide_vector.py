"""The product guide's "Vector Search" examples and its Best Practice 5, run as the
guide shows them: they print what their code prints, with this machine's rate and
ids and distances in place of the guide's. The guide's own text (shared/seed) must hold
the same code, when it is beside the repository.

The guide's output block of the build also shows ``Index size: 45.2 MB``, which the
code does not print (a narration line, like "Table 'users' created" elsewhere). On a
terminal the build's progress bar stays when the build is done and ends with the
index's size, so the reader sees the size as well: tested on a pseudo-terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from paths import SEED, require_shared

GUIDE_BUILD = """\
from toondb.bulk import bulk_build_index, bulk_query_index
import numpy as np

# Generate embeddings (10K × 768D)
embeddings = np.random.randn(10000, 768).astype(np.float32)

# Build HNSW index at ~1,600 vec/s
stats = bulk_build_index(
    embeddings,
    output="my_index.hnsw",
    m=16,
    ef_construction=100,
    metric="cosine"
)

print(f"Built {stats.vectors} vectors at {stats.rate:.0f} vec/s")
"""

GUIDE_QUERY = """\
# Single query vector
query = np.random.randn(768).astype(np.float32)

results = bulk_query_index(
    index="my_index.hnsw",
    query=query,
    k=10,
    ef_search=64
)

print(f"Top {len(results)} nearest neighbors:")
for i, neighbor in enumerate(results):
    print(f"{i+1}. ID: {neighbor.id}, Distance: {neighbor.distance:.4f}")
"""

# the guide's output blocks; the narration lines (not printed by the code) marked
GUIDE_BUILD_OUTPUT = ["Built 10000 vectors at 1598 vec/s", "Index size: 45.2 MB"]
NARRATION = {"Index size: 45.2 MB", "..."}
GUIDE_QUERY_OUTPUT = [
    "Top 10 nearest neighbors:",
    "1. ID: 3421, Distance: 0.1234",
    "2. ID: 7892, Distance: 0.1456",
    "3. ID: 1205, Distance: 0.1678",
    "...",
]

BEST_PRACTICE_5 = """\
# ✅ Good: Fast bulk operations
bulk_build_index(embeddings, "index.hnsw")
"""


def pattern(line: str) -> re.Pattern[str]:
    """A guide output line with its numbers free: 1598 -> any integer, 0.1234 -> any
    number with four decimals (distances may be negative by a rounding hair)."""
    out, pos = [], 0
    for m in re.finditer(r"\d+\.\d+|\d+", line):
        out.append(re.escape(line[pos : m.start()]))
        if "." in m.group():
            decimals = len(m.group().split(".")[1])
            out.append(r"-?\d+\.\d{" + str(decimals) + "}")
        elif m.group() in ("10", "10000"):
            out.append(re.escape(m.group()))  # the counts are the code's own
        else:
            out.append(r"\d+")
        pos = m.end()
    out.append(re.escape(line[pos:]))
    return re.compile("".join(out))


def check_output(stdout: str) -> None:
    lines = stdout.splitlines()
    expected = [x for x in GUIDE_BUILD_OUTPUT + GUIDE_QUERY_OUTPUT if x not in NARRATION]
    # the query prints ten neighbours; the guide shows three and "..."
    expected += [f"{i}. ID: 3421, Distance: 0.1234" for i in range(4, 11)]
    assert len(lines) == len(expected), stdout
    for got, want in zip(lines, expected):
        assert pattern(want).fullmatch(got), (got, want)
    ids = [int(re.search(r"ID: (\d+)", x).group(1)) for x in lines[2:]]
    dists = [float(x.rsplit(" ", 1)[1]) for x in lines[2:]]
    assert len(set(ids)) == 10 and all(0 <= i < 10000 for i in ids)
    assert dists == sorted(dists)


def test_guide_vector_search(tmp_path):
    script = GUIDE_BUILD + GUIDE_QUERY + BEST_PRACTICE_5
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    check_output(out.stdout)
    assert out.stderr == ""  # not a terminal: no progress bar
    assert (tmp_path / "my_index.hnsw").is_file() and (tmp_path / "index.hnsw").is_file()
    from toondb.bulk import bulk_info

    info = bulk_info(tmp_path / "my_index.hnsw")
    assert (info.vectors, info.dimension, info.metric) == (10000, 768, "cosine")


def test_guide_vector_search_on_a_terminal(tmp_path):
    """On a terminal a build longer than 2 s shows a bar that stays with the index size
    (here a fifth of the guide's vectors, and the bar's 2 s delay set to 0)."""
    import fcntl
    import pty
    import struct
    import termios

    script = "import toondb.bulk\ntoondb.bulk.PROGRESS_DELAY = 0\n" + GUIDE_BUILD.replace(
        "randn(10000, 768)", "randn(2000, 768)"
    )
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        os.chdir(tmp_path)
        os.execv(sys.executable, [sys.executable, "-c", script])
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert re.search(r"Built 2000 vectors at \d+ vec/s", text), text
    assert re.search(r"building HNSW: 100%.*2000/2000.*index \d+\.\d MB", text), text


def _guide_text() -> str | None:
    for f in sorted(SEED.glob("*.txt")) if SEED.is_dir() else ():
        text = f.read_text(encoding="utf-8")
        if "## Vector Search" in text:
            return text
    return None


def test_the_guide_text_holds_this_code():
    text = _guide_text()
    require_shared(text is not None, "the product guide (shared/seed)")
    section = text.split("## Vector Search", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    outputs = re.findall(r"\*\*Output:\*\*\n```\n(.*?)```", section, re.S)
    assert blocks == [GUIDE_BUILD, GUIDE_QUERY]
    assert [o.splitlines() for o in outputs] == [GUIDE_BUILD_OUTPUT, GUIDE_QUERY_OUTPUT]
    practices = text.split("### 5. Use Bulk API for Vectors", 1)[1]
    assert BEST_PRACTICE_5 in re.search(r"```python\n(.*?)```", practices, re.S).group(1)
