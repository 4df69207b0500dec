"""Type stubs of the SQL lexer's C scan (toondb/sql/_lexer.pyx). Without the
extension, toondb.sql.lexer cuts text with its regex (tokenize_by_regex)."""

def scan(
    sql: str,
    pos: int,
    end: int,
    keywords: dict[str, str],
    max_depth: int,
    one_statement: bool = False,
) -> tuple[str, list[object], list[int], list[int], list[int], int, int]: ...
