"""Type stubs of the JSON functions' C kernel (toondb/sql/_jsonb.pyx): strict
JSON text to SQLite's JSONB and the reads of json_extract(), ->, ->>,
json_each() and json_tree() over it. Without the extension, toondb.sql.fn_json
answers every call the full way (toondb.sql.jsonvalue)."""

from typing import Any

MAX_DEPTH: int
DECLINE: object

def parse(text: str) -> bytes | None: ...
def extract(x: object, path: object, render: bool, arrow: bool) -> Any: ...
def each(x: object, root_path: object, recursive: bool) -> Any: ...
