"""``toondb index build|query|info INDEX ...``: the bulk vector API (toondb.vector.bulk)
on the command line, and sharded indexes (toondb.distributed): ``build --shards N``
writes a directory of shards with its manifest, and ``query``/``info`` on such a
directory fan out to its shards (``--backend local|ray``)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Any, Callable

from toondb.cli.common import EXIT_OK, argparse_int, error_message
from toondb.cli.render import print_mapping
from toondb.errors import CLIError

__all__ = ["add_index_commands", "cmd_index_build", "cmd_index_query", "cmd_index_info"]

VECTOR_FORMATS = ".npy (a NumPy array), .fvecs (float32 rows), .csv/.tsv/.txt (one vector per line)"


def _load_array(path: str, what: str, *, ints: bool = False) -> Any:
    """A NumPy array from a .npy, .fvecs or text file ('-': text on stdin)."""
    import numpy as np

    ext = os.path.splitext(path)[1].lower() if path != "-" else ".txt"
    if path != "-" and not os.path.isfile(path):
        raise CLIError(f"no {what} file {path!r}")
    try:
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
        if ext == ".fvecs" and not ints:
            raw = np.fromfile(path, dtype=np.int32)
            if raw.size == 0:
                return np.empty((0, 0), np.float32)
            dim = int(raw[0])
            if dim <= 0 or raw.size % (dim + 1) or (raw.reshape(-1, dim + 1)[:, 0] != dim).any():
                raise CLIError(f"{path}: not an .fvecs file (each row: int32 dim, dim float32)")
            return raw.reshape(-1, dim + 1)[:, 1:].view(np.float32)
        if ext in (".csv", ".tsv", ".txt", ".text", ""):
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
            rows = [line.replace(",", " ").replace("\t", " ").split() for line in text.splitlines()]
            rows = [r for r in rows if r and not r[0].startswith("#")]
            conv = int if ints else float
            try:
                return np.array([[conv(v) for v in r] for r in rows])
            except ValueError as e:
                raise CLIError(f"{path}: {e}") from None
    except CLIError:
        raise
    except (OSError, ValueError) as e:
        raise CLIError(f"{path}: cannot read {what} ({error_message(e)})") from None
    raise CLIError(f"{path}: unknown {what} format {ext!r}; use {VECTOR_FORMATS}")


def _query_vectors(text: str) -> Any:
    """QUERY: a file, or one vector written inline as numbers separated by commas."""
    import numpy as np

    if text != "-" and not os.path.exists(text):
        parts = [p for p in text.replace(",", " ").split() if p]
        try:
            return np.array([float(p) for p in parts], dtype=np.float32)
        except ValueError:
            raise CLIError(
                f"no query file {text!r} (and it is not a vector like '0.1,0.2,0.3')"
            ) from None
    q = _load_array(text, "query")
    return q[0] if q.ndim == 2 and len(q) == 1 else q


def _is_sharded(path: str) -> bool:
    """Is path a sharded index (a directory holding a manifest, or an object-store
    URL such as s3://bucket/prefix: only sharded indexes live there)?"""
    from toondb.distributed.manifest import MANIFEST_NAME

    if "://" in path and not path.startswith("file://"):
        return True
    return os.path.isfile(os.path.join(path.removeprefix("file://"), MANIFEST_NAME))


def _open_sharded(args: argparse.Namespace) -> Any:
    from toondb.distributed import ShardedIndex

    if args.backend == "ray":
        import ray  # the cluster: RAY_ADDRESS, or a local instance

        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)
    return ShardedIndex.open(args.index, backend=args.backend)


def cmd_index_build(args: argparse.Namespace) -> int:
    from toondb.vector.bulk import bulk_build_index

    vectors = _load_array(args.vectors, "vectors")
    ids = None
    if args.ids:
        ids = _load_array(args.ids, "ids", ints=True)
        ids = ids.reshape(-1) if ids.ndim == 2 and 1 in ids.shape else ids
    progress = False if args.no_progress else (True if args.progress else None)
    if args.shards is not None:
        return _build_sharded(args, vectors, ids, progress)
    stats = bulk_build_index(
        vectors,
        args.index,
        m=args.m,
        ef_construction=args.ef_construction,
        metric=args.metric,
        ids=ids,
        threads=args.threads,
        progress=progress,
        name=args.name,
    )
    sys.stdout.write(
        f"built {stats.vectors} vectors ({stats.dimension}-d, {stats.metric}) at "
        f"{stats.rate:.0f} vec/s in {stats.seconds:.1f} s with {stats.threads} thread(s): "
        f"{args.index} ({stats.index_bytes / 1e6:.1f} MB)\n"
    )
    return EXIT_OK


def _build_sharded(args: argparse.Namespace, vectors: Any, ids: Any, progress: Any) -> int:
    from toondb.distributed import ShardedIndex

    if args.shards < 1:
        raise CLIError("--shards must be at least 1")
    if args.backend == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)
    stats = ShardedIndex.build(
        vectors, ids, path=args.index, shards=args.shards, metric=args.metric, m=args.m,
        ef_construction=args.ef_construction, backend=args.backend, progress=progress,
        threads=args.threads,
    )  # fmt: skip
    sys.stdout.write(
        f"built {stats.vectors} vectors in {stats.shards} shards ({args.backend}) at "
        f"{stats.rate:.0f} vec/s in {stats.seconds:.1f} s: {args.index}\n"
    )
    return EXIT_OK


def cmd_index_query(args: argparse.Namespace) -> int:
    from toondb.vector.bulk import open_index

    q = _query_vectors(args.query)
    if _is_sharded(args.index):
        with _open_sharded(args) as idx:
            found = idx.search(q, args.k, args.ef_search)
            rows = [found] if q.ndim == 1 else list(found)
    else:
        with open_index(args.index, args.name) as idx:
            if q.ndim == 1:
                rows = [idx.search(q, args.k, args.ef_search)]
            else:
                rows = idx.search(q, args.k, args.ef_search, threads=args.threads)
    out = sys.stdout
    if args.format == "json":
        data = [[{"id": n.id, "distance": n.distance} for n in r] for r in rows]
        out.write(json.dumps(data[0] if q.ndim == 1 else data) + "\n")
    elif args.format == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["query", "rank", "id", "distance"])
        for qi, r in enumerate(rows):
            for rank, n in enumerate(r, 1):
                w.writerow([qi, rank, n.id, repr(n.distance)])
    else:  # the product guide's lines
        for qi, r in enumerate(rows):
            if q.ndim == 2:
                out.write(f"query {qi}:\n")
            for rank, n in enumerate(r, 1):
                out.write(f"{rank}. ID: {n.id}, Distance: {n.distance:.4f}\n")
    return EXIT_OK


def cmd_index_info(args: argparse.Namespace) -> int:
    from toondb.vector.bulk import bulk_info, open_index

    if _is_sharded(args.index):
        with _open_sharded(args) as idx:
            info = idx.info().as_dict()
        info["shard_info"] = list(info["shard_info"])
    else:
        with open_index(args.index, args.name) as idx:
            info = bulk_info(idx).as_dict()
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
    else:
        shards = info.pop("shard_info", ())
        print_mapping(info, sys.stdout)
        for i, shard in enumerate(shards):
            sys.stdout.write(
                f"shard {i}: {shard['vectors']} vectors, {shard['deleted']} deleted, "
                f"{shard['file_bytes']} file bytes\n"
            )
    return EXIT_OK


def add_index_commands(sub: Any) -> None:
    """toondb index build|query|info INDEX ...: the bulk vector API (toondb.vector.bulk)."""
    ip = sub.add_parser(
        "index",
        help="build, query and describe a vector index file (.hnsw)",
        description="The bulk vector API on the command line. INDEX is an index file "
        "(a toondb page file holding one vector index, e.g. my_index.hnsw) or a database "
        "directory. Run 'toondb index ACTION --help' for an action's options.",
    )
    isub = ip.add_subparsers(dest="index_command", metavar="ACTION")
    isub.required = True

    def action(name: str, func: Callable[[argparse.Namespace], int], help: str, desc: str) -> Any:
        sp = isub.add_parser(name, help=help, description=desc)
        sp.set_defaults(func=func)
        sp.add_argument("index", metavar="INDEX", help="the index file (or database directory)")
        return sp

    sp = action(
        "build",
        cmd_index_build,
        "build an HNSW index from a file of vectors",
        "Build an HNSW index over the rows of VECTORS on every core and write INDEX "
        "(replacing its index atomically when it exists: a crash leaves the previous one). "
        f"VECTORS: {VECTOR_FORMATS}. A progress bar is shown on a terminal for builds "
        "longer than a few seconds.",
    )
    sp.add_argument("vectors", metavar="VECTORS", help="the vectors, one per row")
    sp.add_argument("--metric", choices=("cosine", "l2", "ip"), default="cosine",
                    help="cosine (default): 1 - cosine similarity; l2: squared Euclidean; "
                    "ip: 1 - inner product")  # fmt: skip
    sp.add_argument("-m", type=argparse_int, default=16, help="links per node (16)")
    sp.add_argument("--ef-construction", type=argparse_int, default=100,
                    help="candidate list size while building (100)")  # fmt: skip
    sp.add_argument("--ids", metavar="FILE",
                    help="one integer id per vector (.npy or text); default 0..n-1")  # fmt: skip
    sp.add_argument("--threads", type=argparse_int, default=None,
                    help="build threads (default: every core)")  # fmt: skip
    sp.add_argument("--name", default="default", help=argparse.SUPPRESS)
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    g.add_argument("--progress", action="store_true", help="always show a progress bar")
    sp.add_argument("--shards", type=argparse_int, default=None, metavar="N",
                    help="build a sharded index: INDEX is a new directory (or an "
                    "s3://bucket/prefix URL) of N shards (partitioned by id hash) and "
                    "their manifest")  # fmt: skip
    _backend_option(sp)

    sp = action(
        "query",
        cmd_index_query,
        "print the nearest neighbours of query vectors",
        "Print the K nearest vectors of QUERY in INDEX, nearest first, as '1. ID: 3421, "
        "Distance: 0.1234' lines (--format json or csv for programs). QUERY is one vector "
        "written inline ('0.1,0.2,...'), or a file of one or more vectors "
        f"({VECTOR_FORMATS}); several are searched in parallel.",
    )
    sp.add_argument("query", metavar="QUERY")
    sp.add_argument("-k", type=argparse_int, default=10, help="neighbours per query (10)")
    sp.add_argument("--ef-search", type=argparse_int, default=64,
                    help="candidate list size: higher is more accurate and slower (64)")  # fmt: skip
    sp.add_argument("--format", "-f", choices=("text", "json", "csv"), default="text")
    sp.add_argument("--threads", type=argparse_int, default=None, help=argparse.SUPPRESS)
    sp.add_argument("--name", default="default", help=argparse.SUPPRESS)
    _backend_option(sp)

    sp = action(
        "info",
        cmd_index_info,
        "describe an index: vectors, dimension, metric, m, levels, bytes",
        "Print what INDEX holds and how it was built: vectors, dimension, metric, m, "
        "ef_construction, levels, bytes (of the index) and file_bytes.",
    )
    sp.add_argument("--json", action="store_true", help="as one JSON object")
    sp.add_argument("--name", default="default", help=argparse.SUPPRESS)
    _backend_option(sp)


def _backend_option(sp: Any) -> None:
    sp.add_argument("--backend", choices=("local", "ray"), default="local",
                    help="a sharded index's workers: local processes (default) or Ray "
                    "actors (the cluster at $RAY_ADDRESS, else a local Ray)")  # fmt: skip
