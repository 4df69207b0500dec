"""Vector search: the HNSW kernel (``_hnsw.pyx`` and its ``.pxi`` parts, Cython,
NumPy arrays in and out), the stored form of an index in a named tree of the page
file (``store.py``), the checks of arguments (``checks.py``), the index handles
(``index.py``), the operations the public face offers (``api.py``), the bulk
API over whole ``.hnsw`` files (``bulk.py``), and the HNSW indexes of SQL tables
(``sql_index.py``, registered with the SQL engine by toondb/database.py). Importing
this package imports NumPy.
"""

from toondb.vector.index import MAX_ID, METRICS, IndexInfo, Neighbor, VectorIndex

__all__ = ["VectorIndex", "Neighbor", "IndexInfo", "METRICS", "MAX_ID"]
