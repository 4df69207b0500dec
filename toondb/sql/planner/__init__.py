"""The planner: a SELECT's AST -> a tree of physical operators over B+tree cursors.

Rules (docs/sql.md has the long form):

1. FROM items join left-deep in the order written (no reordering); WHERE is
   split into conjuncts, each applied as soon as every table it names is joined
   (an inner join's ON is a WHERE conjunct; a LEFT JOIN's ON is its join condition).
2. A table's access path: rowid equality (``SEARCH ... USING ROWID``) > rowid
   IN list > index equality on the most leading columns (a unique index that is
   fully bound first), with a range on the next column > rowid range > index
   range > full scan. Probes are constants, parameters, outer-query columns and,
   for the inner side of a join, columns of the tables joined before it.
3. A join's inner side: an index (or rowid) lookup per outer row when one
   applies (index nested loop); otherwise a hash join on an equality conjunct;
   otherwise a nested loop over the inner rows, read once.
4. ORDER BY is satisfied by the scan when a single-table query orders by its
   rowid or by the first column of the index being scanned; otherwise it sorts
   (``SORT``), with a bounded heap for ORDER BY ... LIMIT.
5. Every conjunct is evaluated on every row an access path returns (a probe only
   narrows what is read), so a probe may over-approximate but never misses a row.
6. ORDER BY vec_distance_<metric>(t.col, ?) LIMIT k, with t first in FROM and an
   HNSW index of that metric on t.col, reads t through the index, nearest first
   (knn.py); otherwise the rows are sorted (rule 4).
7. A full-text table (CREATE VIRTUAL TABLE ... USING fts5) is read through its
   index: its MATCH searched once per execution; ORDER BY rank / bm25() LIMIT k
   with the table first in FROM yields best first (fts.py).

Where each part is::

    planner.py      Planner: the context of one statement; plan_select, the entry
    select_core.py  one SELECT: result columns, GROUP BY and aggregates, HAVING,
                    DISTINCT, ORDER BY, LIMIT (rule 4)
    joins.py        the FROM clause: its items, where each conjunct applies, how
                    each table joins (rules 1 and 3)
    access.py       how one table is read: rowid and index probes and ranges,
                    scans in a requested order (rules 2, 4, 5)
    knn.py          nearest first through an HNSW index, filtered (rule 6)
    fts.py          full-text tables: FtsScan, ORDER BY rank (rule 7)
    compound.py     UNION / INTERSECT / EXCEPT, and VALUES
    ctes.py         WITH names (recursive ones too) and views
    common.py       SelectPlan (what planning produces), conjunct helpers, LIMIT
"""

from toondb.sql.catalog import ROWID_NAMES
from toondb.sql.functions import is_aggregate_call
from toondb.sql.planner.common import SelectPlan, split_and, sql_text, table_defaults, table_scope
from toondb.sql.planner.planner import Planner

__all__ = [
    "Planner",
    "SelectPlan",
    "split_and",
    "sql_text",
    "table_defaults",
    "table_scope",
    "ROWID_NAMES",
    "is_aggregate_call",
]
