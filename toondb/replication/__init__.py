"""Replication to object storage: continuous shipping of every committed transaction
(``Replicator``, ``toondb replicate``), read replicas that follow (``Follower``,
``toondb follow``) and point-in-time restore (``restore``, ``toondb restore``).
docs/replication.md describes the design, the object layout and the guarantees.

Modules, one concept each: store.py (object stores: s3://, file://), objects.py (the
object format and names), inventory.py (what a store holds: manifest, chains,
retention), shipper.py (the replicator), restore.py, follow.py, replica.py (the record
a replica keeps of where it stands). The engine's side (the change log each commit
writes while a replicator is attached, the structural diff in it, applying change
records) is toondb.storage.changes.
"""

from __future__ import annotations

from toondb.replication.follow import Follower, follow
from toondb.replication.inventory import describe, parse_duration
from toondb.replication.replica import replica_info
from toondb.replication.restore import restore
from toondb.replication.shipper import Replicator, replicate
from toondb.replication.store import FileStore, ObjectStore, S3Store, open_store

__all__ = [
    "Replicator",
    "replicate",
    "Follower",
    "follow",
    "restore",
    "describe",
    "replica_info",
    "parse_duration",
    "ObjectStore",
    "FileStore",
    "S3Store",
    "open_store",
]
