"""Full-text search: SQLite FTS5's tokenizers, query language, bm25, highlight()
and snippet(), over an index stored in the page file.

The SQL layer's ``CREATE VIRTUAL TABLE ... USING fts5`` maps onto
``FullTextIndex`` (toondb/text/index.py); docs/fulltext.md describes the design
and what matches FTS5 exactly.
"""

from toondb.text.config import FullTextConfig, parse_arguments
from toondb.text.index import FullTextIndex
from toondb.text.match import Match
from toondb.text.query import Query, parse_query
from toondb.text.tokenizers import Tokenizer, tokenizer

__all__ = [
    "FullTextIndex",
    "FullTextConfig",
    "Match",
    "Query",
    "Tokenizer",
    "parse_arguments",
    "parse_query",
    "tokenizer",
]
