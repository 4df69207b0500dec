"""Type stubs of the SQL row/key codec extension (toondb/codec/_rowcodec.pyx).

The signatures are those of the pure-Python twins in toondb/codec/rowcodec.py and
keycode.py (py_decode_row, py_decode_values, py_encode_row, encode_values), which
stand in for these functions when the extension is not built."""

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from typing_extensions import disjoint_base

from toondb.errors import RowFormatError as RowFormatError

def decode_row(data: bytes, defaults: tuple[Any, ...], key: Any) -> tuple[Any, ...]: ...
def decode_values(data: bytes) -> tuple[Any, ...]: ...
def encode_row(values: Sequence[Any]) -> bytes: ...
def set_fallback_encoder(f: Callable[[Any], bytes]) -> None: ...
def encode_key(values: Any) -> bytes: ...

@disjoint_base
class DecodeScan:
    """Decoded rows of a tree scan's (key, value) pairs; filter: (column, op, number, pred)."""

    def __new__(
        cls,
        it: Iterable[tuple[bytes, bytes]],
        defaults: tuple[Any, ...],
        filter: tuple[int, int, int | float, Callable[[tuple[Any, ...]], Any]] | None = None,
    ) -> DecodeScan: ...
    def __iter__(self) -> Iterator[tuple[Any, ...]]: ...
    def __next__(self) -> tuple[Any, ...]: ...
