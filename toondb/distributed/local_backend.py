"""The local backend: one process per shard on this machine (the default; needs no Ray).

Workers are started with multiprocessing's forkserver context (spawn where there is
none): each is forked from a server process that imported toondb but never opened a
handle, and opens its shard file itself, so no toondb handle ever crosses a fork
(docs/concurrency.md). Each worker holds a ShardServer and answers requests from a
pipe, one at a time, in order:

    parent -> worker   (request id, method, args)            pickled on the pipe
    worker -> parent   (request id, True, value) | (request id, False, exception)

Request id 0 is the worker's "opened" message (its ping, or the exception its open
raised). Invariants:

1. A reply is taken only if its id is the one the current call awaits from that
   worker; any other is a late answer to a call that gave up on it (a timeout) and is
   dropped. So a hung worker delays nobody but the calls that include it, and a
   worker that catches up cannot answer the wrong call.
2. The parent never blocks on a worker: requests are written by a sender thread per
   worker (a worker that stopped reading would otherwise stall a large write), and
   replies are read only when ``connection.wait`` reports them ready, until one
   deadline per call.
3. A worker that died (end of file on its pipe) is replaced by a new process that
   opens the shard file again, and the call's request is sent to it, within the same
   deadline, at most ``max_restarts`` times per call (option, default 3).

Builds run in a ProcessPoolExecutor of the same context, one fresh process per shard.

A worker runs with the environment the parent has when it starts the worker (as a
forked child would), not the fork server's, which is frozen when the fork server
first starts: credentials or ``TOONDB_CACHE_DIR`` set later reach the workers.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from toondb.distributed.backend import Outcome, ShardPool
from toondb.distributed.location import StorageLocation
from toondb.distributed.manifest import Manifest
from toondb.distributed.shard_server import ShardServer
from toondb.errors import ShardUnavailableError

__all__ = ["LocalShardPool", "run_builds_local"]


def _context() -> Any:
    """forkserver where the platform has it, else spawn. Either way a worker starts
    from a process that never opened a toondb handle: the fork server is a fresh
    interpreter that only imported the modules below (once: a worker then starts in
    milliseconds instead of importing NumPy and toondb again)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["numpy", "toondb.distributed.shard_build",
                                    "toondb.distributed.local_backend"])  # fmt: skip
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - not Linux / macOS


_CTX = _context()
DEFAULT_MAX_RESTARTS = 3
_OPTIONS = ("max_restarts", "processes")


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _check_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    opts = dict(options or {})
    unknown = set(opts) - set(_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown local-backend options {sorted(unknown)}; it takes {', '.join(_OPTIONS)}"
        )
    return opts


# ---------------------------------------------------------------------------------------
# the worker process
# ---------------------------------------------------------------------------------------


def _portable(e: BaseException) -> BaseException:
    """e if it pickles, else a RuntimeError carrying its type and message."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - any failure to round-trip
        return RuntimeError(f"{type(e).__name__}: {e}")


def _adopt_environment(env: Mapping[str, str]) -> None:
    """Take the parent's environment (see the module docstring)."""
    if dict(os.environ) != env:
        os.environ.clear()
        os.environ.update(env)


def _serve(conn: Connection, location: StorageLocation, shard: int, file: str,
           kw: dict[str, Any], env: dict[str, str]) -> None:  # fmt: skip
    """The worker's main: open the shard, then answer requests until told to close or
    the parent goes away (end of file)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _adopt_environment(env)
    try:
        server = ShardServer(location, shard, file, **kw)
        opened = server.ping()  # raises what the open raised
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        conn.send((0, False, _portable(e)))
        return
    conn.send((0, True, opened))
    while True:
        try:
            rid, method, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (rid, True, getattr(server, method)(*args))
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            reply = (rid, False, _portable(e))
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return
        if method == "close":
            return


# ---------------------------------------------------------------------------------------
# the parent's side
# ---------------------------------------------------------------------------------------


class _Worker:
    """The parent's record of one shard's worker process (invariants 1-3)."""

    def __init__(self, shard: int, args: tuple[Any, ...]) -> None:
        self.shard = shard
        self.args = args
        self.process: Any = None
        self.conn: Connection | None = None
        self.outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.ready = False  # its "opened" message arrived
        self.next_id = 1
        self.awaiting = -1  # the request id the current call waits for

    def start(self) -> None:
        parent, child = _CTX.Pipe(duplex=True)
        p = _CTX.Process(target=_serve, args=(child, *self.args, dict(os.environ)),
                         name=f"toondb-shard-{self.shard}", daemon=True)  # fmt: skip
        p.start()
        child.close()  # the worker's death must show as end of file on parent
        self.process, self.conn, self.ready = p, parent, False
        self.outbox = queue.SimpleQueue()
        threading.Thread(target=_send_loop, args=(parent, self.outbox),
                         name=f"toondb-shard-{self.shard}-sender", daemon=True).start()  # fmt: skip

    def send(self, method: str, args: tuple[Any, ...]) -> None:
        self.awaiting = self.next_id
        self.next_id += 1
        self.outbox.put((self.awaiting, method, args))

    def stop(self, grace: float) -> None:
        """End the process: it exits on its own after close() or end of file; one that
        does not within grace seconds (hung) is killed."""
        self.outbox.put(None)
        if self.conn is not None:
            self.conn.close()
        if self.process is not None:
            self.process.join(grace)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)


def _send_loop(conn: Connection, outbox: queue.SimpleQueue[Any]) -> None:
    while True:
        msg = outbox.get()
        if msg is None:
            return
        try:
            conn.send(msg)
        except (OSError, ValueError):  # the worker died (the reader sees end of file)
            return


class LocalShardPool(ShardPool):
    backend = "local"

    def __init__(
        self,
        location: StorageLocation,
        manifest: Manifest,
        *,
        read_only: bool,
        threads: int | None,
        verify: bool,
        open_timeout: float,
        options: Mapping[str, Any] | None,
    ) -> None:
        opts = _check_options(options)
        self.max_restarts = int(opts.get("max_restarts", DEFAULT_MAX_RESTARTS))
        self.shards = len(manifest.shards)
        per_shard = threads if threads is not None else max(1, _cores() // self.shards)
        self._lock = threading.Lock()
        self._workers = []
        for e in manifest.shards:
            kw = {"read_only": read_only, "threads": per_shard,
                  "sha256": e.sha256 if verify else None}  # fmt: skip
            self._workers.append(_Worker(e.shard, (location, e.shard, e.file, kw)))
        try:
            for w in self._workers:
                w.start()
            self._await_ready(self._workers, open_timeout)
        except BaseException:
            for w in self._workers:
                w.stop(1.0)
            raise

    def _await_ready(self, workers: list[_Worker], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting: dict[Any, _Worker] = {w.conn: w for w in workers}
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ShardUnavailableError(
                    f"{len(waiting)} shard worker(s) did not open within {timeout:g} s",
                    {w.shard: f"not opened within {timeout:g} s" for w in waiting.values()},
                )
            for conn in wait(list(waiting), remaining):
                w = waiting.pop(conn)
                try:
                    _, ok, value = w.conn.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    raise ShardUnavailableError(
                        f"shard {w.shard}: its worker died while opening the shard file",
                        {w.shard: "died while opening"},
                    ) from None
                if not ok:
                    raise value
                w.ready = True

    def worker_handle(self, shard: int) -> Any:
        return self._workers[shard].process

    def call(self, method: str, args: Mapping[int, tuple[Any, ...]], timeout: float) -> Outcome:
        with self._lock:
            return self._call(method, args, timeout)

    def _call(self, method: str, args: Mapping[int, tuple[Any, ...]], timeout: float) -> Outcome:
        out = Outcome()
        deadline = time.monotonic() + timeout
        waiting: dict[Any, _Worker] = {}
        restarts = dict.fromkeys(args, 0)
        for s, a in args.items():
            w = self._workers[s]
            w.send(method, a)
            waiting[w.conn] = w
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for conn in wait(list(waiting), remaining):
                w = waiting[conn]
                try:
                    rid, ok, value = cast(Connection, conn).recv()
                except (EOFError, OSError):  # the worker died (invariant 3)
                    del waiting[conn]
                    s = w.shard
                    if restarts[s] >= self.max_restarts:
                        out.missing[s] = (
                            f"its worker died (restarted {restarts[s]} times in this call)"
                        )
                        continue
                    restarts[s] += 1
                    w.stop(0.5)
                    w.start()
                    w.send(method, args[s])
                    waiting[w.conn] = w
                    continue
                if rid == 0 and not w.ready:  # a restarted worker opened its file, or not
                    w.ready = bool(ok)
                    if not ok:
                        del waiting[conn]
                        out.missing[w.shard] = f"its worker could not reopen the shard: {value}"
                    continue
                if rid != w.awaiting:
                    continue  # a late answer to an abandoned call (invariant 1)
                del waiting[conn]
                w.awaiting = -1
                if ok:
                    out.answers[w.shard] = value
                else:
                    out.raised[w.shard] = value
        for w in waiting.values():
            out.missing[w.shard] = f"no answer within {timeout:g} s"
        return out

    def close(self, timeout: float) -> Outcome:
        with self._lock:
            alive = {w.shard: () for w in self._workers if w.process is not None}
            out = self._call("close", alive, timeout) if alive else Outcome()
            for w in self._workers:
                w.stop(0.0 if w.shard in out.missing else 5.0)
            return out


# ---------------------------------------------------------------------------------------
# builds
# ---------------------------------------------------------------------------------------


def run_builds_local(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    *,
    threads: int | None,
    options: Mapping[str, Any] | None,
    on_done: Callable[[Any], None],
) -> list[Any]:
    """fn(*job, threads) in worker processes: `processes` (option; default as many as
    cores, at most one per job) at a time, each with threads (default cores //
    processes) build threads; a fresh process per job."""
    opts = _check_options(options)
    procs = int(opts.get("processes") or min(len(jobs), _cores()))
    procs = max(1, min(procs, len(jobs)))
    per_job = threads if threads is not None else max(1, _cores() // procs)
    kw: dict[str, Any] = {"max_workers": procs, "mp_context": _CTX,
                          "initializer": _adopt_environment, "initargs": (dict(os.environ),)}  # fmt: skip
    if sys.version_info >= (3, 11):
        kw["max_tasks_per_child"] = 1  # a fresh process per shard: its memory is returned
    results: list[Any] = [None] * len(jobs)
    first_error: BaseException | None = None
    with concurrent.futures.ProcessPoolExecutor(**kw) as pool:
        futures = {pool.submit(fn, *job, per_job): i for i, job in enumerate(jobs)}
        for f in concurrent.futures.as_completed(futures):
            try:
                results[futures[f]] = f.result()
            except BaseException as e:  # noqa: BLE001 - raised after the others end
                if first_error is None:
                    first_error = e
                    for other in futures:
                        other.cancel()
                continue
            on_done(results[futures[f]])
    if first_error is not None:
        raise first_error
    return results
