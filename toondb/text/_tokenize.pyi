"""Type stubs of the tokenizer extension (toondb/text/_tokenize.pyx)."""

from collections.abc import Iterable

from typing_extensions import disjoint_base

K_UNICODE61: int
K_ASCII: int
K_TRIGRAM: int
NCATEGORY: int

def category_of(c: int) -> int: ...
def fold(c: int, remove_diacritics: int = ...) -> int: ...
def diacritic(c: int) -> bool: ...
def porter(word: bytes) -> bytes: ...

@disjoint_base
class Tokenizer:
    spec: str
    def __init__(
        self,
        kind: int,
        *,
        n_porter: int = ...,
        token_char: bytes | None = ...,
        categories: bytes | None = ...,
        remove_diacritics: int = ...,
        fold: bool = ...,
        exceptions: Iterable[int] = ...,
        spec: str = ...,
    ) -> None: ...
    def tokenize(self, text: str | bytes) -> list[tuple[bytes, int, int]]: ...
    def count(self, text: str | bytes) -> int: ...
