"""Vector indexes sharded over several processes or a Ray cluster.

::

    from toondb.distributed import ShardedIndex

    stats = ShardedIndex.build(vectors, path="idx/", shards=4, metric="cosine")
    with ShardedIndex.open("idx/", backend="local") as index:   # or backend="ray"
        for hit in index.search(query, k=10, ef_search=64):
            print(hit.id, hit.distance)

One concept per module: the partition rule (partition.py), the manifest (manifest.py),
where the files live (location.py), the build's spools (spool.py), one shard's build
(shard_build.py) and server (shard_server.py), the exact merge (merge.py), the
backends (backend.py, local_backend.py, ray_backend.py: Ray is imported only there,
only for backend="ray"), the flagged results (results.py), and the index
(sharded_index.py). docs/distributed.md is the guide.
"""

from toondb.distributed.build import ShardedBuildStats
from toondb.distributed.location import LocalDirectory, StorageLocation, resolve_location
from toondb.distributed.manifest import Manifest, ShardEntry
from toondb.distributed.results import ShardedArrays, ShardedNeighbors
from toondb.distributed.shard_build import ShardBuildStats
from toondb.distributed.sharded_index import ShardedIndex, ShardedIndexInfo

__all__ = [
    "ShardedIndex",
    "ShardedIndexInfo",
    "ShardedBuildStats",
    "ShardBuildStats",
    "ShardedNeighbors",
    "ShardedArrays",
    "Manifest",
    "ShardEntry",
    "StorageLocation",
    "LocalDirectory",
    "resolve_location",
]
