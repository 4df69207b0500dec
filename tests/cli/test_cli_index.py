"""``toondb index build|query|info``: the bulk vector API on the command line, driven as
a subprocess (python -m toondb), and once on a pseudo-terminal for the progress bar."""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np
import pytest
from test_cli import fails, ok, run

from toondb import Database
from toondb.vector.bulk import bulk_info


@pytest.fixture
def vectors(tmp_path):
    x = np.random.default_rng(3).standard_normal((500, 8)).astype(np.float32)
    np.save(tmp_path / "v.npy", x)
    return x


def test_help():
    out = ok("index", "--help")
    assert "build" in out and "query" in out and "info" in out
    assert "VECTORS" in ok("index", "build", "--help")
    assert "index" in ok("--help")
    assert run("index").returncode == 2  # an action is required


def test_build_query_info(tmp_path, vectors):
    idx = tmp_path / "v.hnsw"
    out = ok("index", "build", idx, tmp_path / "v.npy", "--metric", "l2", "-m", "8")
    assert re.fullmatch(
        r"built 500 vectors \(8-d, l2\) at \d+ vec/s in \d+\.\d s with \d thread\(s\): "
        r".*v\.hnsw \(\d+\.\d MB\)\n",
        out,
    ), out
    info = bulk_info(idx)
    assert (info.vectors, info.dimension, info.metric, info.m) == (500, 8, "l2", 8)
    # one vector inline: the guide's lines
    q = ",".join(str(v) for v in vectors[7])
    lines = ok("index", "query", idx, q, "-k", "3").splitlines()
    assert len(lines) == 3 and lines[0].startswith("1. ID: 7, Distance: 0.0000")
    assert all(re.fullmatch(r"\d\. ID: \d+, Distance: -?\d+\.\d{4}", x) for x in lines)
    # a file of queries, as JSON and CSV
    np.save(tmp_path / "q.npy", vectors[:3])
    rows = json.loads(ok("index", "query", idx, tmp_path / "q.npy", "-k", "2", "-f", "json"))
    assert [r[0]["id"] for r in rows] == [0, 1, 2] and len(rows[0]) == 2
    csv_lines = ok("index", "query", idx, tmp_path / "q.npy", "-k", "2", "-f", "csv").splitlines()
    assert csv_lines[0] == "query,rank,id,distance" and csv_lines[1].startswith("0,1,0,")
    text = ok("index", "query", idx, tmp_path / "q.npy", "-k", "1")
    assert text.splitlines()[0] == "query 0:" and "query 2:" in text
    info_lines = ok("index", "info", idx)
    assert re.search(r"^vectors\s+500$", info_lines, re.M) and re.search(
        r"^metric\s+l2$", info_lines, re.M
    )
    assert json.loads(ok("index", "info", idx, "--json"))["dimension"] == 8


def test_text_and_fvecs_input_and_ids(tmp_path, vectors):
    csv_file = tmp_path / "v.csv"
    csv_file.write_text("\n".join(",".join(map(str, r)) for r in vectors[:50].tolist()) + "\n")
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(str(1000 + i) for i in range(50)) + "\n")
    ok("index", "build", tmp_path / "a.hnsw", csv_file, "--ids", ids_file, "--metric", "l2")
    first = ok("index", "query", tmp_path / "a.hnsw", ",".join(map(str, vectors[4])), "-k", "1")
    assert first.startswith("1. ID: 1004,")
    fv = np.concatenate([np.full((50, 1), 8, np.int32), vectors[:50].view(np.int32)], axis=1)
    fv.tofile(tmp_path / "v.fvecs")
    ok("index", "build", tmp_path / "b.hnsw", tmp_path / "v.fvecs", "--metric", "l2")
    assert bulk_info(tmp_path / "b.hnsw").vectors == 50


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-index")
    np.save(d / "v.npy", np.random.default_rng(3).standard_normal((500, 8)).astype(np.float32))
    np.save(d / "bad.npy", np.full((3, 8), np.nan))
    (d / "v.xyz").write_text("1 2\n")
    (d / "junk.bin").write_bytes(os.urandom(10_000))
    with Database.open(d / "kv") as db:
        db.put(b"k", b"v")
    ok("index", "build", d / "v.hnsw", d / "v.npy")
    return d


@pytest.mark.parametrize(
    "args,message",
    [
        (["build", "{d}/x.hnsw", "{d}/missing.npy"], "no vectors file"),
        (["build", "{d}/x.hnsw", "{d}/bad.npy"], "NaN"),
        (["build", "{d}/x.hnsw", "{d}/v.npy", "--metric", "l2", "-m", "1"], "m must be"),
        (["build", "{d}/junk.bin", "{d}/v.npy"], "refusing to overwrite"),
        (["build", "{d}/x.hnsw", "{d}/v.xyz"], "unknown vectors format"),
        (["query", "{d}/junk.bin", "1,2,3,4,5,6,7,8"], "not a toondb index file"),
        (["query", "{d}/missing.hnsw", "1,2"], "no index file"),
        (["query", "{d}/v.hnsw", "1,2,3"], "dimension"),
        (["query", "{d}/v.hnsw", "nope"], "not a vector like"),
        (["query", "{d}/v.hnsw", "1,2,3,4,5,6,7,8", "-k", "0"], "k must be >= 1"),
        (["info", "{d}/kv"], "holds no vector index"),
        (["info", "{d}/junk.bin"], "not a toondb index file"),
    ],
)
def test_errors_are_one_line(files, args, message):
    d = str(files)
    err = fails("index", *[a.format(d=d) for a in args])
    assert message in err, err
    assert not (files / "x.hnsw").exists()
    assert (files / "junk.bin").stat().st_size == 10_000


def test_progress_bar_on_a_terminal(tmp_path):
    """A build on a terminal shows the bar (--progress forces it for this short one); it
    stays at the end with the index's size."""
    import pty

    x = np.random.default_rng(1).standard_normal((3000, 32)).astype(np.float32)
    np.save(tmp_path / "v.npy", x)
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        import fcntl
        import struct
        import termios

        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        args = ["-m", "toondb", "index", "build", str(tmp_path / "v.hnsw"), str(tmp_path / "v.npy")]
        os.execv(sys.executable, [sys.executable, *args, "--progress"])
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
    assert re.search(r"building HNSW: 100%.*3000/3000.*index \d+\.\d MB", text), text
    assert "built 3000 vectors" in text


# ---- sharded indexes (toondb.distributed) ----------------------------------------------

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _exact_top(x, q, k):
    d = ((x - q) ** 2).sum(axis=1)
    return [int(i) for i in np.argsort(d, kind="stable")[:k]]


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_sharded_build_query_info(tmp_path, vectors, backend):
    """build --shards writes a directory with a manifest; query and info on it fan out
    to the shards and merge: the answer is the exact top-k here (500 vectors, ef 64).
    With Ray, the build runs as Ray tasks and the query on Ray actors (each command
    starts a local Ray, about 25 s here: info stays on the local backend)."""
    if backend == "ray":
        pytest.importorskip("ray")
    env = RAY_ENV if backend == "ray" else None
    idx = tmp_path / "sharded"
    out = ok("index", "build", idx, tmp_path / "v.npy", "--metric", "l2", "--shards", "3",
             "--backend", backend, "--no-progress", env=env)  # fmt: skip
    assert re.fullmatch(rf"built 500 vectors in 3 shards \({backend}\) at .*\n", out)
    assert (idx / "manifest.json").is_file()
    q = vectors[7] + 0.01
    found = json.loads(ok("index", "query", idx, ",".join(map(repr, q.tolist())), "-k", "5",
                          "--format", "json", "--backend", backend, env=env))  # fmt: skip
    assert [hit["id"] for hit in found] == _exact_top(vectors, q, 5)
    info = json.loads(ok("index", "info", idx, "--json"))
    assert (info["shards"], info["vectors"], info["metric"]) == (3, 500, "l2")
    assert sum(s["vectors"] for s in info["shard_info"]) == 500


def test_sharded_index_at_an_s3_url(tmp_path, vectors, s3, monkeypatch):
    """build --shards into s3://bucket/prefix (moto on 127.0.0.1), then query and info
    on the URL: the same exact top-k as from a directory."""
    monkeypatch.setenv("TOONDB_CACHE_DIR", str(tmp_path / "cache"))
    url = s3.url.replace("/replica", "/vectors")
    out = ok("index", "build", url, tmp_path / "v.npy", "--metric", "l2", "--shards", "2",
             "--no-progress")  # fmt: skip
    assert out.startswith("built 500 vectors in 2 shards (local)")
    q = vectors[11] + 0.01
    found = json.loads(ok("index", "query", url, ",".join(map(repr, q.tolist())), "-k", "5",
                          "--format", "json"))  # fmt: skip
    assert [hit["id"] for hit in found] == _exact_top(vectors, q, 5)
    info = json.loads(ok("index", "info", url, "--json"))
    assert (info["shards"], info["vectors"]) == (2, 500)


def test_sharded_build_refuses_zero_shards(tmp_path, vectors):
    assert "at least 1" in fails("index", "build", tmp_path / "s", tmp_path / "v.npy",
                                 "--shards", "0")  # fmt: skip
