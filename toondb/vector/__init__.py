"""Vector search: the HNSW kernel (``_hnsw.pyx``, Cython, NumPy arrays in and out),
indexes stored in named trees of the page file (``index.py``), the operations the
public face offers (``api.py``), and the bulk API over whole ``.hnsw`` files
(``bulk.py``). Importing this package imports NumPy.
"""

from toondb.vector.index import MAX_ID, METRICS, IndexInfo, Neighbor, VectorIndex

__all__ = ["VectorIndex", "Neighbor", "IndexInfo", "METRICS", "MAX_ID"]
