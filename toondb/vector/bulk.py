"""The bulk vector API: build an HNSW index on every core and write it as one
toondb page file (a ``.hnsw`` file), then query it from any number of processes.

::

    from toondb.vector.bulk import bulk_build_index, bulk_query_index, bulk_info

    stats = bulk_build_index(embeddings, "my_index.hnsw", m=16, ef_construction=100)
    print(f"Built {stats.vectors} vectors at {stats.rate:.0f} vec/s")
    for hit in bulk_query_index("my_index.hnsw", query, k=10, ef_search=64):
        print(hit.id, hit.distance)

A ``.hnsw`` file is a toondb database (the same page file format) holding one
vector index named ``"default"``: ``Database.open("my_index.hnsw")`` opens it,
and ``db.vector_index("default")`` searches it, or adds to it. Its lock file is
``my_index.hnsw-lock`` beside it.

The build runs in memory (the kernel's parallel insertion, as hnswlib's
``add_items``), then the graph's regions are written in ONE transaction that
also drops the previous index of the file, if any: a crash at any moment leaves
the previous index or, for a new file, no index (an open then raises
VectorIndexError), never a broken one. The file's pages are synced before the
call returns. Rebuilding in place keeps the old pages until the commit, so the
file grows to about old + new; ``toondb compact FILE`` shrinks it.

For repeated queries open the index once: ``open_index(path)`` maps it
(milliseconds, whatever its size) and returns a ``VectorIndex``; the searches
then read the graph through the mapping. ``bulk_query_index(path, ...)`` does
that for you: it keeps the indexes it opened in a small cache (the last
``QUERY_CACHE_SIZE`` files), keyed by the file's path, inode, modification time
and size, so the guide's one-call-per-query loop searches a mapped index. A file
replaced or written since (a rebuild, another process's add) has another key and
is opened afresh; ``bulk_build_index`` drops the entry of the file it writes;
``clear_query_cache()`` closes them all. A cached handle holds a read snapshot of
its file (as an open ``open_index`` does): a writer of the same file cannot
reuse the pages it replaces until the next query (or the clear) lets go of them.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from toondb.config import validate
from toondb.errors import ClosedError, ToonDBError, VectorIndexError
from toondb.storage.env import DATA_FILE, StorageEnvironment
from toondb.vector._hnsw import HnswGraph
from toondb.vector.api import names as index_names
from toondb.vector.checks import (
    _threads,
    _unique_or_raise,
    as_ids,
    as_vectors,
    check_metric,
    check_params,
)
from toondb.vector.index import IndexInfo, Neighbor, VectorIndex, _DbIndex
from toondb.vector.store import DEFAULT_SEED, _chunk_shift, _Meta, _tree_name, write_graph

__all__ = [
    "bulk_build_index",
    "bulk_query_index",
    "bulk_info",
    "open_index",
    "clear_query_cache",
    "BuildStats",
    "IndexInfo",
    "Neighbor",
    "DEFAULT_NAME",
]

DEFAULT_NAME = "default"
PathLike = Union[str, "os.PathLike[str]"]
Progress = Union[None, bool, Callable[[int, int], Any]]

# the engine's magic, at byte 8 of each meta page (toondb/storage/_format.pxi, "Meta page")
_DB_MAGIC = b"toondb\x00\x1a"
_PAGE_SIZES = (512, 1024, 2048, 4096, 8192, 16384, 32768)
# a build is shown with a bar (on a terminal) once it has run this long
PROGRESS_DELAY = 2.0


@dataclass(frozen=True)
class BuildStats:
    """What ``bulk_build_index`` did.

    ``seconds`` is the whole call (checks, build, write and fsync) and ``rate`` is
    ``vectors / seconds``; ``build_seconds`` and ``write_seconds`` split it.
    ``index_bytes`` is the size of the output file afterwards."""

    vectors: int
    dimension: int
    seconds: float
    rate: float
    index_bytes: int
    build_seconds: float
    write_seconds: float
    threads: int
    metric: str
    path: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------


def is_toondb_file(path: str) -> bool:
    """True if path starts like a toondb page file (the magic of either meta page)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2 * _PAGE_SIZES[-1] + 16)
    except IsADirectoryError:
        return False
    if head[8:16] == _DB_MAGIC:
        return True
    return any(head[ps + 8 : ps + 16] == _DB_MAGIC for ps in _PAGE_SIZES)


def _path(path: Any, what: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a path (str or os.PathLike), not {type(path).__name__}")
    p = os.fspath(path)
    return p if isinstance(p, str) else os.fsdecode(p)


def _open_existing(path: str, *, read_only: bool) -> StorageEnvironment:
    """Open the database at path (a page file or a database directory) or raise a clear
    error: FileNotFoundError when missing, VectorIndexError when not a toondb file."""
    if os.path.isdir(path):
        return StorageEnvironment.open(path, {"create_if_missing": False}, read_only=read_only)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no index file at {path!r}")
    if not is_toondb_file(path):
        raise VectorIndexError(f"{path!r} is not a toondb index file (no toondb header)")
    try:
        return StorageEnvironment.open(path, {"create_if_missing": False}, read_only=read_only)
    except ToonDBError as e:
        if isinstance(e, VectorIndexError):
            raise
        raise VectorIndexError(f"{path!r} cannot be opened as a toondb index file: {e}") from e


def open_index(path: PathLike, name: str = DEFAULT_NAME, *, read_only: bool = True) -> _DbIndex:
    """Open the vector index of an index file (or of a database directory) for repeated
    queries: the graph is mapped, not read (milliseconds, whatever its size). Close it
    with ``close()`` or use it as a context manager. read_only=False allows add(),
    upsert() and delete() (each an atomic commit to the file)."""
    p = _path(path, "path")
    db = _open_existing(p, read_only=read_only)
    try:
        return _DbIndex(db, name, own_db=True)
    except VectorIndexError as e:
        txn = db.begin(write=False)
        try:
            names = index_names(txn)
        finally:
            txn.abort()
        db.close()
        if "no vector index named" in str(e):
            hint = f" (it holds: {', '.join(map(repr, names))})" if names else ""
            raise VectorIndexError(f"{p!r} holds no vector index named {name!r}{hint}") from None
        raise
    except BaseException:
        db.close()
        raise


# ---------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------


class _Bar:
    """The build's progress: a tqdm bar on a terminal (shown once the build has run
    PROGRESS_DELAY seconds), a user's callable(done, total), or nothing."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.total = total
        self.fn: Callable[[int, int], Any] | None = None
        self.bar: Any = None
        self.t0 = time.monotonic()
        self.delay = 0.0 if progress is True else PROGRESS_DELAY
        if progress is None or isinstance(progress, bool):
            show = progress is True or (progress is None and _isatty(sys.stderr))
            if show:
                from tqdm import tqdm

                self.bar = tqdm(
                    total=total,
                    unit="vec",
                    desc="building HNSW",
                    delay=self.delay,
                    file=sys.stderr,
                    dynamic_ncols=True,
                    leave=False,  # a finished bar stays, with the index size (close())
                )
        elif callable(progress):
            self.fn = progress
        else:
            raise TypeError("progress must be None, True, False or a callable(done, total)")

    def __call__(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        if self.fn is not None:
            self.fn(done, self.total)

    @property
    def active(self) -> bool:
        return self.bar is not None or self.fn is not None

    def note(self, text: str) -> None:
        # (a postfix would show a bar that its delay still hides)
        if self.bar is not None and time.monotonic() - self.t0 >= self.delay:
            self.bar.set_postfix_str(text)

    def close(self, summary: str | None = None) -> None:
        """Close the bar; a bar that was shown stays, ending with summary."""
        if self.bar is not None:
            if summary is not None and time.monotonic() - self.t0 >= self.delay:
                self.bar.set_postfix_str(summary, refresh=False)
                self.bar.leave = True
            self.bar.close()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def bulk_build_index(
    embeddings: npt.ArrayLike,
    output: PathLike,
    m: int = 16,
    ef_construction: int = 100,
    metric: str = "cosine",
    ids: npt.ArrayLike | None = None,
    threads: int | None = None,
    progress: Progress = None,
    *,
    name: str = DEFAULT_NAME,
    seed: int = DEFAULT_SEED,
) -> BuildStats:
    """Build an HNSW index over embeddings (n, dimension) and write it to `output`.

    metric: "cosine" (1 - cosine similarity), "l2" (squared Euclidean) or "ip"
    (1 - inner product). ids: n unique integers in 0..2**63-1 (default 0..n-1).
    threads: build threads (default: every core). progress: None shows a bar on a
    terminal for builds longer than a few seconds, True always, False never; or a
    callable(done, total). Float64 and other real dtypes are converted to float32.

    `output` is a new file, an existing index file (its index is replaced
    atomically) or a database directory (its index `name` is replaced). Every
    argument is checked before anything is built or written. Returns BuildStats;
    ``rate`` is vectors per second of the whole call."""
    t0 = time.perf_counter()
    out = _path(output, "output")
    check_metric(metric)
    check_params(1, m, ef_construction)
    _tree_name(name)
    x = as_vectors(embeddings, None, "embeddings", 2)
    n, dim = x.shape
    check_params(dim, m, ef_construction)
    if n >= 0xFFFFFFFE:
        raise ValueError("an index holds at most 2**32-2 vectors")
    labels = np.arange(n, dtype=np.uint64) if ids is None else as_ids(ids)
    if labels.size != n:
        raise ValueError(f"{n} embeddings but {labels.size} ids")
    _unique_or_raise(labels)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError("seed must be an integer")
    nthreads = _threads(threads)
    _check_output(out)
    _forget(out)  # a cached handle would hold the old index's snapshot

    bar = _Bar(progress, n)
    try:
        meta = _Meta.new(dim, metric, int(m), int(ef_construction), int(seed))
        g = HnswGraph(dim, metric, int(m), int(ef_construction), capacity=max(n, 1),
                      seed=int(seed), chunk_shift=_chunk_shift(dim, int(m)))  # fmt: skip
        if n:
            g.add(x, labels, threads=nthreads, progress=bar if bar.active else None)
        t_built = time.perf_counter()
        order = np.argsort(labels, kind="stable")
        sorted_labels, lids = labels[order], order.astype(np.uint32)
        bar.note("writing")
        _write(out, name, g, meta, sorted_labels, lids)
    except BaseException:
        bar.close()
        raise
    size = _size(out)
    bar.close(f"index {size / 1e6:.1f} MB")
    t_end = time.perf_counter()
    seconds = t_end - t0
    return BuildStats(
        vectors=n,
        dimension=dim,
        seconds=seconds,
        rate=n / seconds if seconds > 0 else 0.0,
        index_bytes=size,
        build_seconds=t_built - t0,
        write_seconds=t_end - t_built,
        threads=nthreads,
        metric=metric,
        path=out,
    )


def _size(path: str) -> int:
    if os.path.isdir(path):
        return os.path.getsize(os.path.join(path, DATA_FILE))
    return os.path.getsize(path)


def _check_output(out: str) -> None:
    """Refuse an output that is neither new nor toondb's, before the build."""
    if os.path.isdir(out):
        return
    if os.path.exists(out):
        if not is_toondb_file(out):
            raise VectorIndexError(
                f"{out!r} exists and is not a toondb index file; refusing to overwrite it "
                "(remove it, or choose another path)"
            )
        return
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"no directory {parent!r} to write {out!r} in")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write in {parent!r}")


def _write(
    out: str, name: str, g: HnswGraph, meta: _Meta, labels: np.ndarray, lids: np.ndarray
) -> None:
    """One transaction: drop the previous index `name`, write the new one; then sync."""
    cfg = {"sync_mode": "full"}
    if os.path.isdir(out):
        db = StorageEnvironment.open(out, cfg)
    elif os.path.exists(out):
        db = _open_existing(out, read_only=False)
    else:
        db = StorageEnvironment.open_files(out, out, out + "-lock", validate(cfg), cfg)
    try:
        tname = _tree_name(name)
        with db.transaction(immediate=True) as txn:
            txn.drop_tree(tname)
            tree = txn.tree(tname, create=True)
            write_graph(tree, g, meta, labels, lids, full=True)
        db.checkpoint()
    finally:
        db.close()


# ---------------------------------------------------------------------------------------
# query and info
# ---------------------------------------------------------------------------------------


def bulk_query_index(
    index: PathLike | VectorIndex,
    query: npt.ArrayLike,
    k: int = 10,
    ef_search: int = 64,
    *,
    filter: Any = None,
    threads: int | None = None,
    as_arrays: bool = False,
) -> Any:
    """The k nearest neighbours of query in an index (a path, opened read-only for this
    call, or an opened ``VectorIndex``, e.g. from ``open_index``).

    A 1-D query gives a list of ``Neighbor(id, distance)``, nearest first; a 2-D batch
    one such list per row, searched in parallel (`threads`, default every core).
    as_arrays=True returns ``(ids int64, distances float32)`` instead (a batch: (n, k),
    padded with -1 / inf), which is faster for large batches. k larger than the index
    returns what there is. A path's index is opened once and kept in a small cache
    (the module's docstring), so a query per call is as fast as on an opened index."""
    if isinstance(index, VectorIndex):
        return _query(index, query, k, ef_search, filter, threads, as_arrays)
    idx = _cached(_path(index, "index"))
    try:
        return _query(idx, query, k, ef_search, filter, threads, as_arrays)
    except ClosedError:  # closed by clear_query_cache() in another thread meanwhile
        with open_index(_path(index, "index")) as idx:
            return _query(idx, query, k, ef_search, filter, threads, as_arrays)


# ---------------------------------------------------------------------------------------
# the per-call query cache
# ---------------------------------------------------------------------------------------

QUERY_CACHE_SIZE = 8
_cache: OrderedDict[str, tuple[tuple[int, ...], VectorIndex]] = OrderedDict()
_cache_lock = threading.Lock()


def _stamp(path: str) -> tuple[int, ...]:
    """What must not change for a cached handle to serve path: the process (a forked
    child opens its own), the page file's inode, modification time and size."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        st = os.stat(os.path.join(path, DATA_FILE))
    return (os.getpid(), st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size)


def _cached(path: str) -> VectorIndex:
    key = os.path.abspath(path)
    stamp = _stamp(path)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == stamp:
            _cache.move_to_end(key)
            return hit[1]
    idx = open_index(path)
    stale: list[tuple[tuple[int, ...], VectorIndex]] = []
    with _cache_lock:
        old = _cache.pop(key, None)
        if old is not None:
            stale.append(old)
        _cache[key] = (stamp, idx)
        while len(_cache) > QUERY_CACHE_SIZE:
            stale.append(_cache.popitem(last=False)[1])
    _close_all(stale)
    return idx


def _close_all(hits: list[tuple[tuple[int, ...], VectorIndex]]) -> None:
    # a handle inherited from the parent process is dropped, not closed (the engine
    # marked its database forked; the parent still uses it)
    pid = os.getpid()
    for stamp, idx in hits:
        if stamp[0] == pid:
            idx.close()  # type: ignore[attr-defined]


def _forget(path: str) -> None:
    """Close the cached handle of path, if any (before the file is rewritten)."""
    with _cache_lock:
        hit = _cache.pop(os.path.abspath(path), None)
    _close_all([hit] if hit is not None else [])


def clear_query_cache() -> None:
    """Close every index ``bulk_query_index`` keeps open (in this process)."""
    with _cache_lock:
        hits = list(_cache.values())
        _cache.clear()
    _close_all(hits)


def _query(
    idx: VectorIndex,
    query: npt.ArrayLike,
    k: int,
    ef: int,
    filter: Any,
    threads: int | None,
    as_arrays: bool,
) -> Any:
    if as_arrays:
        return idx.search_arrays(query, k, ef, filter, threads)
    return idx.search(query, k, ef, filter, threads=threads)


def bulk_info(index: PathLike | VectorIndex) -> IndexInfo:
    """What an index holds: vectors, dimension, metric, m, ef_construction, levels, bytes
    (of the index in its file), deleted, file_bytes (an ``IndexInfo``; ``.as_dict()``)."""
    if isinstance(index, VectorIndex):
        return index.info()
    with open_index(_path(index, "index")) as idx:
        return idx.info()
