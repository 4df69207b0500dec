"""``toondb replicate|restore|follow|replica-status|replicas``: replication to object
storage on the command line, over toondb.replication (docs/replication.md).

``replicate`` and ``follow`` run until SIGTERM or SIGINT (Ctrl-C): SIGTERM flushes
(``replicate`` ships what was committed) and exits 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import signal
import sys
import threading
import time
from typing import Any

from toondb.cli.common import EXIT_OK, argparse_int
from toondb.cli.common import database_files as _files
from toondb.cli.render import print_mapping
from toondb.errors import CLIError

__all__ = ["add_replication_commands", "parse_time"]

_URLS = "s3://bucket/prefix (credentials, region and AWS_ENDPOINT_URL as boto3 reads them) or file:///directory"


def parse_time(text: str) -> float:
    """An ISO-8601 time as seconds since the epoch (no zone: local time)."""
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        when = datetime.datetime.fromisoformat(t)
    except ValueError:
        raise CLIError(
            f"not an ISO-8601 time: {text!r} (write 2026-05-01T12:30:00Z, or without Z "
            "for local time)"
        ) from None
    return when.timestamp()


def _duration(text: str) -> float:
    from toondb.replication import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _iso(ts: float | None) -> str | None:
    if not ts:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(
        timespec="milliseconds"
    )


def _until_signalled() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _log_to_stderr(name: str) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s toondb {name}[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )


def cmd_replicate(args: argparse.Namespace) -> int:
    import os

    from toondb.replication import Replicator

    if not os.path.exists(_files(args.db)[0]):
        raise CLIError(f"no toondb database at {args.db!r}")
    _log_to_stderr("replicate")
    stop = _until_signalled()
    replicator = Replicator(
        args.db,
        args.url,
        interval=args.interval,
        snapshot_interval=args.snapshot_interval,
        snapshot_bytes=args.snapshot_bytes,
        retain=args.retain,
        resume_within=int(args.resume_within),
    )
    sys.stdout.write(
        f"replicating {args.db} to {args.url} every {args.interval:g}s (pid {os.getpid()})\n"
    )
    sys.stdout.flush()
    replicator.run(stop)
    status = replicator.status()
    sys.stdout.write(
        f"stopped: transaction {status['shipped_txn']} shipped (generation {status['generation']})\n"
    )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from toondb.replication import restore

    at_time = parse_time(args.time) if args.time is not None else None
    info = restore(args.url, args.dest, txn=args.txn, at_time=at_time)
    sys.stdout.write(
        f"restored {args.dest} as of transaction {info['txn_id']} committed "
        f"{_iso(info['commit_time'])} (generation {info['generation']}): {info['keys']} keys, "
        f"{info['trees']} named trees\n"
    )
    return EXIT_OK


def cmd_follow(args: argparse.Namespace) -> int:
    import os

    from toondb.replication import Follower

    _log_to_stderr("follow")
    stop = _until_signalled()
    follower = Follower(args.url, args.dest, interval=args.interval)
    sys.stdout.write(
        f"following {args.url} into {args.dest} every {args.interval:g}s (pid {os.getpid()})\n"
    )
    sys.stdout.flush()
    follower.run(stop)
    return EXIT_OK


def cmd_replica_status(args: argparse.Namespace) -> int:
    from toondb.replication import describe, open_store, replica_info

    info = describe(open_store(args.url))
    now = time.time()
    out: dict[str, Any] = {
        "url": info["url"],
        "generation": info["generation"],
        "last_txn_id": info["last_txn"],
        "last_commit_time": _iso(info["last_time"]),
        "primary_txn_id": info["primary_txn"],
        "unshipped_txns": max(0, info["primary_txn"] - info["last_txn"]),
        "updated": _iso(info["updated"]),
        "seconds_since_update": round(now - info["updated"], 3) if info["updated"] else None,
    }
    if args.replica:
        rep = replica_info(args.replica)
        if rep is None:
            raise CLIError(f"{args.replica!r} is not a replica (no toondb.replica record)")
        out.update(
            replica_txn_id=rep["txn_id"],
            replica_behind_txns=max(0, info["last_txn"] - (rep["txn_id"] or 0)),
            replica_lag_seconds=rep["lag_seconds"],
        )
    if args.json:
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        print_mapping(out, sys.stdout)
    return EXIT_OK


def cmd_replicas_list(args: argparse.Namespace) -> int:
    from toondb.replication import describe, open_store

    info = describe(open_store(args.url))
    if args.json:
        sys.stdout.write(json.dumps(info) + "\n")
        return EXIT_OK
    w = sys.stdout.write
    w(f"{info['url']}: generation {info['generation']}, newest transaction {info['last_txn']} "
      f"committed {_iso(info['last_time'])}\n")  # fmt: skip
    for gen in info["generations"]:
        w(f"generation {gen['generation']}: transactions {gen['first_txn']}..{gen['last_txn']} "
          f"({_iso(gen['first_time'])} .. {_iso(gen['last_time'])}), {gen['batches']} batches, "
          f"{gen['bytes']} bytes\n")  # fmt: skip
        for snap in gen["snapshots"]:
            w(
                f"  snapshot at transaction {snap['txn']}  {_iso(snap['time'])}  {snap['bytes']} bytes\n"
            )
    return EXIT_OK


def add_replication_commands(sub: Any) -> None:
    """Register replicate, restore, follow, replica-status and replicas."""
    sp = sub.add_parser(
        "replicate",
        help="ship every committed transaction to an object store, until stopped",
        description="Ship every committed transaction of the database at DB to URL "
        f"({_URLS}), batching what committed within each interval, with a full snapshot "
        "when one is due. Runs until SIGTERM or SIGINT, which ship what was committed and "
        "exit. Started again (even after SIGKILL) it resumes from what the store holds. "
        "Writers of DB never wait for the store.",
    )
    sp.set_defaults(func=cmd_replicate)
    sp.add_argument("db", metavar="DB", help="the database directory (or page file)")
    sp.add_argument("url", metavar="URL", help="where to ship: " + _URLS)
    sp.add_argument("--interval", type=_positive, default=1.0, metavar="SECONDS",
                    help="ship what committed within this many seconds together (default 1): "
                    "about this much is lost with the host")  # fmt: skip
    sp.add_argument("--retain", type=_duration, default=None, metavar="DURATION",
                    help="keep what is needed to restore any point of the last DURATION "
                    "(7d, 12h, 30m), delete older snapshots and batches (default: keep all)")  # fmt: skip
    sp.add_argument("--snapshot-interval", type=_duration, default=86400.0, metavar="DURATION",
                    help="a full snapshot at least this often (default 1d)")  # fmt: skip
    sp.add_argument("--snapshot-bytes", type=argparse_int, default=None, metavar="BYTES",
                    help="a full snapshot once this many bytes of batches were shipped since "
                    "the last (default: the size of the last snapshot, at least 16 MiB)")  # fmt: skip
    sp.add_argument("--resume-within", type=_duration, default=300.0, metavar="DURATION",
                    help="how long the database goes on logging its commits for a replicator "
                    "that stopped, so that one started again within it resumes instead of "
                    "taking a new snapshot (default 5m)")  # fmt: skip

    sp = sub.add_parser(
        "restore",
        help="write a database as of a transaction, from an object store",
        description="Write the database replicated to URL to DEST (a new or empty "
        "directory) as of its newest transaction, or of the newest one at or before "
        "--txn N or committed at or before --time. The copy is checked before it is put "
        "in place; a damaged or missing object stops the restore, naming it.",
    )
    sp.set_defaults(func=cmd_restore)
    sp.add_argument("url", metavar="URL", help=_URLS)
    sp.add_argument("dest", metavar="DEST", help="the database to write: a new or empty directory")
    when = sp.add_mutually_exclusive_group()
    when.add_argument("--txn", type=argparse_int, default=None, metavar="N",
                      help="the newest transaction at or before N")  # fmt: skip
    when.add_argument("--time", default=None, metavar="ISO-8601",
                      help="the newest transaction committed at or before this time "
                      "(2026-05-01T12:30:00Z; without a zone, local time)")  # fmt: skip

    sp = sub.add_parser(
        "follow",
        help="keep a read replica up to date from an object store, until stopped",
        description="Keep DEST a read replica of what is replicated to URL: restore it "
        "if missing, then apply shipped transactions in order, each batch in one "
        "transaction, so processes reading DEST (Database.open(DEST, read_only=True), "
        "toondb-server --read-only) see whole committed states, in order. Runs until "
        "SIGTERM or SIGINT.",
    )
    sp.set_defaults(func=cmd_follow)
    sp.add_argument("url", metavar="URL", help=_URLS)
    sp.add_argument("dest", metavar="DEST", help="the replica's database directory")
    sp.add_argument("--interval", type=_positive, default=1.0, metavar="SECONDS",
                    help="how often to look for new transactions (default 1)")  # fmt: skip

    sp = sub.add_parser(
        "replica-status",
        help="show the newest transaction an object store holds, and the lag",
        description="Show the newest transaction replicated to URL, when it committed, how "
        "far the primary was ahead when the replicator last wrote, and (with --replica "
        "DEST) how far a follower's replica is behind.",
    )
    sp.set_defaults(func=cmd_replica_status)
    sp.add_argument("url", metavar="URL", help=_URLS)
    sp.add_argument("--replica", metavar="DEST", help="also show this replica's position and lag")
    sp.add_argument("--json", action="store_true", help="as one JSON object")

    rp = sub.add_parser(
        "replicas",
        help="list the snapshots and transaction ranges an object store holds",
        description="Replica stores. 'toondb replicas list URL' shows each generation, its "
        "transaction range and its snapshots.",
    )
    rsub = rp.add_subparsers(dest="replicas_command", metavar="ACTION")
    rsub.required = True
    sp = rsub.add_parser("list", help="the snapshots and transaction ranges held at URL")
    sp.set_defaults(func=cmd_replicas_list)
    sp.add_argument("url", metavar="URL", help=_URLS)
    sp.add_argument("--json", action="store_true", help="as one JSON object")
