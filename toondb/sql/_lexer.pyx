# cython: language_level=3, boundscheck=False, wraparound=False
"""The SQL lexer's scan, in C: text -> token codes, values and offsets.

``scan`` cuts ``sql[pos:end]`` into tokens exactly as the regex ``_TOKEN`` of
toondb/sql/lexer.py does (that regex stays the definition of the token classes,
and the lexer's fallback; tests/sql/test_sql_lexer_scan.py holds the two equal
over corpora and random text). The classes, tried in the regex's order at each
position (the first that matches wins; none is longest-match across classes):

    ws     [ \\t\\n\\r\\f\\v]+ | --[^\\n]* | /\\*.*?(\\*/|\\Z)      skipped
    x      [xX]'[^']*'                                  a blob literal
    word   [A-Za-z_\\x80-] [A-Za-z0-9_$\\x80-]*          keyword or identifier
    n      0[xX]hex+ | (digits[.digits*] | .digits)(e[+-]digits)?,
           not followed by [A-Za-z0-9_$.\\x80-]        a number
    s      '([^']|'')*'                                 a string
    q      "([^"]|"")*" | `([^`]|``)*` | [[^]]*]         a quoted name
    p      ?digits* | [:$@][A-Za-z0-9_\\x80-]+          a parameter
    op     || << >> <= >= == != <> ->> ->
    punct  one of -(),;.*/%+&|~<>=
    E      an unterminated ' or " string (to the end), a digit run that is no
           number ([0-9][A-Za-z0-9_$.\\x80-]*), or any one character

A quoted token that is not closed is what the regex's backtracking makes of it:
the quote opening its last doubled quote closes it (``'ab''`` is ``'ab'`` then
``'``); with no doubled quote it is an E to the end (' and ") or the lone
character (` and [). ``\\x80-`` is every code point from U+0080 up.

Invariants kept here:

1. A token's code is one character: a keyword's from ``keywords`` (looked up
   by ``str.upper()`` of the word, as the regex lexer does, so that non-ASCII
   case mappings agree), an operator's from ``ops``, else its class letter.
2. Nothing outside ``sql[pos:end]`` is read: ``end`` acts as the text's end
   for \\Z and for the number's look-ahead, as ``finditer(sql, pos, end)``.
"""

from cpython.unicode cimport PyUnicode_FromKindAndData, PyUnicode_4BYTE_KIND
from libc.stdlib cimport malloc, realloc, free


cdef inline bint _ascii_alpha(Py_UCS4 c) noexcept:
    return (c >= 97 and c <= 122) or (c >= 65 and c <= 90)


cdef inline bint _digit(Py_UCS4 c) noexcept:
    return c >= 48 and c <= 57


cdef inline bint _hex(Py_UCS4 c) noexcept:
    return _digit(c) or (c >= 97 and c <= 102) or (c >= 65 and c <= 70)


cdef inline bint _word_start(Py_UCS4 c) noexcept:
    return _ascii_alpha(c) or c == 95 or c >= 0x80


cdef inline bint _word(Py_UCS4 c) noexcept:
    return _word_start(c) or _digit(c) or c == 36


cdef inline bint _after_number(Py_UCS4 c) noexcept:
    """May this character not follow a number (the regex's look-ahead)?"""
    return _word(c) or c == 46


cdef inline bint _param_char(Py_UCS4 c) noexcept:
    return _ascii_alpha(c) or _digit(c) or c == 95 or c >= 0x80


cdef inline bint _space(Py_UCS4 c) noexcept:
    return c == 32 or (c >= 9 and c <= 13)


cdef Py_ssize_t _number_end(str s, Py_ssize_t i, Py_ssize_t n) noexcept:
    """The end of the number at i, or -1 where the n class does not match."""
    cdef Py_ssize_t j = i, k
    cdef Py_UCS4 c = s[i]
    if c == 48 and i + 2 < n and (s[i + 1] == 120 or s[i + 1] == 88) and _hex(s[i + 2]):
        j = i + 2
        while j < n and _hex(s[j]):
            j += 1
        # a shorter match ends before a hex digit or the x: never a number either
        if j < n and _after_number(s[j]):
            return -1
        return j
    if c == 46:
        j = i + 1
        while j < n and _digit(s[j]):
            j += 1
    else:
        while j < n and _digit(s[j]):
            j += 1
        if j < n and s[j] == 46:
            j += 1
            while j < n and _digit(s[j]):
                j += 1
    if j < n and (s[j] == 101 or s[j] == 69):
        k = j + 1
        if k < n and (s[k] == 43 or s[k] == 45):
            k += 1
        if k < n and _digit(s[k]):
            while k < n and _digit(s[k]):
                k += 1
            j = k
    if j < n and _after_number(s[j]):
        return -1  # and so is every shorter match (it ends before a digit, '.', e or x)
    return j


cdef Py_ssize_t _quoted_end(str s, Py_ssize_t i, Py_ssize_t n, Py_UCS4 q) noexcept:
    """The end of the quoted token opening at i with quote q (a doubled q is
    one character of it), or -1 when it is not closed and holds no doubled q;
    see the module docstring for the unclosed one that does."""
    cdef Py_ssize_t j = i + 1, last_pair = -1
    while j < n:
        if s[j] == q:
            if j + 1 < n and s[j + 1] == q:
                last_pair = j
                j += 2
                continue
            return j + 1
        j += 1
    if last_pair >= 0:
        return last_pair + 1
    return -1


cdef inline bint _blob_ok(str s, Py_ssize_t i, Py_ssize_t j) noexcept:
    """Is s[i:j] (x'...') an even run of hex digits between the quotes?"""
    cdef Py_ssize_t k
    if (j - i - 3) % 2:
        return False
    for k in range(i + 2, j - 1):
        if not _hex(s[k]):
            return False
    return True


cdef inline Py_UCS4 _op2(Py_UCS4 a, Py_UCS4 b) noexcept:
    """The code of the two-character operator ab, or 0."""
    if a == 124 and b == 124:
        return 99  # || c
    if a == 60:
        if b == 60:
            return 108  # << l
        if b == 61:
            return 123  # <= {
        if b == 62:
            return 33  # <> !
    elif a == 62:
        if b == 62:
            return 114  # >> r
        if b == 61:
            return 125  # >= }
    elif a == 61 and b == 61:
        return 61  # == =
    elif a == 33 and b == 61:
        return 33  # != !
    elif a == 45 and b == 62:
        return 97  # -> a
    return 0


cdef inline bint _punct(Py_UCS4 c) noexcept:
    return (c == 45 or c == 40 or c == 41 or c == 44 or c == 59 or c == 46 or c == 42
            or c == 47 or c == 37 or c == 43 or c == 38 or c == 124 or c == 126
            or c == 60 or c == 62 or c == 61)


def scan(str sql, Py_ssize_t pos, Py_ssize_t end, dict keywords, int max_depth,
         bint one_statement=False):
    """(codes, vals, starts, ends, literals, depth, rest) of sql[pos:end]: the
    token codes as a str, each token's value (its text; a quoted name's name),
    its offsets, the indices of the literal tokens, and the deepest nesting of
    parentheses; depth is -1 (and the rest incomplete) once it passes
    max_depth. one_statement: stop at the first ';' token, which is left out;
    rest is then the offset just past it (-1 when the text ended first, and
    always without one_statement)."""
    cdef Py_ssize_t n = min(end, len(sql)), i = max(pos, 0), j, start, ntok = 0, cap = 256
    cdef Py_UCS4 c, code, q
    cdef int depth = 0, maxdepth = 0
    cdef Py_ssize_t rest = -1
    cdef Py_UCS4* codes = <Py_UCS4*>malloc(cap * sizeof(Py_UCS4))
    cdef Py_UCS4* grown
    cdef object val, kw
    cdef list vals = [], starts = [], ends = [], literals = []
    if codes == NULL:
        raise MemoryError()
    try:
        while i < n:
            c = sql[i]
            # ws
            if _space(c):
                i += 1
                while i < n and _space(sql[i]):
                    i += 1
                continue
            if c == 45 and i + 1 < n and sql[i + 1] == 45:
                while i < n and sql[i] != 10:
                    i += 1
                continue
            if c == 47 and i + 1 < n and sql[i + 1] == 42:
                j = i + 2
                while j + 1 < n and not (sql[j] == 42 and sql[j + 1] == 47):
                    j += 1
                i = j + 2 if j + 1 < n else n
                continue
            start = i
            j = -1
            code = 0
            if (c == 120 or c == 88) and i + 1 < n and sql[i + 1] == 39:
                j = i + 2
                while j < n and sql[j] != 39:
                    j += 1
                if j < n:
                    j += 1
                    if _blob_ok(sql, i, j):
                        code = 120  # x
                        literals.append(ntok)
                    else:
                        code = 69  # E: a malformed blob literal
                    val = sql[i:j]
                else:
                    j = -1
            if j < 0 and _word_start(c):
                j = i + 1
                while j < n and _word(sql[j]):
                    j += 1
                val = sql[i:j]
                kw = keywords.get(val.upper())
                code = 105 if kw is None else ord(kw)  # i
            elif j < 0 and (_digit(c) or (c == 46 and i + 1 < n and _digit(sql[i + 1]))):
                j = _number_end(sql, i, n)
                if j >= 0:
                    code = 110  # n
                    literals.append(ntok)
                elif c == 46:
                    j = i + 1
                    code = 46  # the '.' punctuation
                else:
                    j = i + 1
                    while j < n and _after_number(sql[j]):
                        j += 1
                    code = 69  # E: a digit run that is no number
                val = sql[i:j]
            elif j < 0 and (c == 39 or c == 34 or c == 96):
                j = _quoted_end(sql, i, n, c)
                if j >= 0:
                    if c == 39:
                        code = 115  # s
                        literals.append(ntok)
                        val = sql[i:j]
                    else:
                        code = 113  # q
                        val = sql[i + 1:j - 1]
                        val = val.replace('""', '"') if c == 34 else val.replace("``", "`")
                elif c == 96:
                    j = i + 1
                    code = 69
                    val = sql[i:j]
                else:
                    j = n
                    code = 69  # E: an unterminated string or name, to the end
                    val = sql[i:j]
            elif j < 0 and c == 91:
                j = i + 1
                while j < n and sql[j] != 93:
                    j += 1
                if j < n:
                    j += 1
                    code = 113
                    val = sql[i + 1:j - 1]
                else:
                    j = i + 1
                    code = 69
                    val = sql[i:j]
            elif j < 0 and c == 63:
                j = i + 1
                while j < n and _digit(sql[j]):
                    j += 1
                code = 63  # ?
                val = sql[i:j]
            elif j < 0 and (c == 58 or c == 36 or c == 64) and i + 1 < n and _param_char(sql[i + 1]):
                j = i + 2
                while j < n and _param_char(sql[j]):
                    j += 1
                code = 63
                val = sql[i:j]
            elif j < 0:
                if c == 45 and i + 2 < n and sql[i + 1] == 62 and sql[i + 2] == 62:
                    j = i + 3
                    code = 65  # ->> A
                elif i + 1 < n and _op2(c, sql[i + 1]) != 0:
                    code = _op2(c, sql[i + 1])
                    j = i + 2
                else:
                    j = i + 1
                    code = c if _punct(c) else 69
                    if c == 40:
                        depth += 1
                        if depth > maxdepth:
                            maxdepth = depth
                            if depth > max_depth:
                                return "", vals, starts, ends, literals, -1, -1
                    elif c == 41:
                        depth -= 1
                    elif c == 59 and one_statement:
                        rest = j
                        break
                val = sql[i:j]
            if ntok == cap:
                cap *= 2
                grown = <Py_UCS4*>realloc(codes, cap * sizeof(Py_UCS4))
                if grown == NULL:
                    raise MemoryError()
                codes = grown
            codes[ntok] = code
            ntok += 1
            vals.append(val)
            starts.append(start)
            ends.append(j)
            i = j
        return (
            PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, codes, ntok),
            vals, starts, ends, literals, maxdepth, rest,
        )
    finally:
        free(codes)
