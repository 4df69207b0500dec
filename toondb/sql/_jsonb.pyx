# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The JSON functions' fast path, in C: strict JSON text to SQLite's JSONB, and
the reads json_extract(), ->, ->>, json_each() and json_tree() make over it.

The kernel takes only what it answers exactly as the full parser of
``toondb.sql.jsonvalue`` does (which stays the reference): strict RFC 8259
text (no JSON5 form, no control character in a string, at most
:data:`MAX_DEPTH` levels, no NUL) and simple paths (``$``, ``.label`` with
ASCII letters, digits and ``_``, ``."label"`` without escapes, ``[N]``). For
anything else :func:`extract` and :func:`each` return :data:`DECLINE` (and
:func:`parse` None), and the SQL entry points (json_extract, json_arrow,
json_arrow2, json_each, json_tree) call the full way fn_json registered with
:func:`set_full_way`, which also raises the errors ("malformed JSON", "bad
JSON path").

JSONB (SQLite's format, https://sqlite.org/jsonb.html): each element is a
header then a payload.

    offset  size       field
    0       1          low nibble: element type (NULL 0 ... OBJECT 12);
                       high nibble: payload size 0..11, or 12/13/14 when the
                       size follows in 1/2/4 big-endian bytes
    1       0,1,2,4    the payload size (high nibble 12, 13, 14)
    h       size       the payload: the literal text of a number, the text
                       between the quotes of a string (escapes kept), the
                       elements of an array, the label/value elements of an
                       object (labels are strings)

Invariants kept here:

1. Headers are the smallest that hold the payload size (as SQLite writes
   them from text), so an element's offset is the ``id`` SQLite's
   json_each()/json_tree() report: jsonvalue.size() computes the same sizes.
2. A string is TEXTJ when it has a backslash escape, TEXT otherwise.
3. A blob made here holds only NULL TRUE FALSE INT FLOAT TEXT TEXTJ ARRAY
   OBJECT, each well formed: the readers do not check bounds.
"""

from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, memmove, memcmp
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.long cimport PyLong_FromLongLong

from toondb.sql.fn_printf import atof
from toondb.sql.jsonvalue import TYPE_NAMES as _NAMES, int_value, unescape
from toondb.sql.types import JsonText

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL

cdef enum:  # JSONB element types (jsonvalue.NULL ...), those strict JSON makes
    T_NULL = 0
    T_TRUE = 1
    T_FALSE = 2
    T_INT = 3
    T_FLOAT = 5
    T_TEXT = 7
    T_TEXTJ = 8
    T_ARRAY = 11
    T_OBJECT = 12

MAX_DEPTH = 200
cdef int _max_depth = 200

DECLINE = object()
cdef object _DECLINE = DECLINE
cdef tuple _TYPE_NAMES = tuple(_NAMES)

# ---------------------------------------------------------------- a byte buffer


cdef enum:
    INLINE = 512  # bytes of a buffer held in place (most documents fit)


cdef struct Buf:
    unsigned char* p  # inline until it outgrows it, then on the heap
    Py_ssize_t n
    Py_ssize_t cap
    unsigned char inline[INLINE]


cdef inline void _init(Buf* b) noexcept nogil:
    b.p = b.inline
    b.n = 0
    b.cap = INLINE


cdef inline void _release(Buf* b) noexcept nogil:
    if b.p != b.inline:
        free(b.p)
    b.p = b.inline


cdef int _grow(Buf* b, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap
    cdef unsigned char* p
    if b.n + need <= b.cap:
        return 0
    cap = b.cap * 2
    if cap < b.n + need + 64:
        cap = b.n + need + 64
    if b.p == b.inline:
        p = <unsigned char*>malloc(cap)
        if p != NULL:
            memcpy(p, b.inline, b.n)
    else:
        p = <unsigned char*>realloc(b.p, cap)
    if p == NULL:
        raise MemoryError()
    b.p = p
    b.cap = cap
    return 0


cdef int _append(Buf* b, const unsigned char* s, Py_ssize_t n) except -1:
    _grow(b, n)
    memcpy(b.p + b.n, s, n)
    b.n += n
    return 0


cdef inline int _header_size(Py_ssize_t p) noexcept nogil:
    if p <= 11:
        return 1
    if p <= 0xFF:
        return 2
    if p <= 0xFFFF:
        return 3
    return 5


cdef inline void _put_header(unsigned char* q, int t, Py_ssize_t p, int h) noexcept nogil:
    if h == 1:
        q[0] = <unsigned char>((p << 4) | t)
    elif h == 2:
        q[0] = <unsigned char>(0xC0 | t)
        q[1] = <unsigned char>p
    elif h == 3:
        q[0] = <unsigned char>(0xD0 | t)
        q[1] = <unsigned char>(p >> 8)
        q[2] = <unsigned char>(p & 0xFF)
    else:
        q[0] = <unsigned char>(0xE0 | t)
        q[1] = <unsigned char>((p >> 24) & 0xFF)
        q[2] = <unsigned char>((p >> 16) & 0xFF)
        q[3] = <unsigned char>((p >> 8) & 0xFF)
        q[4] = <unsigned char>(p & 0xFF)


cdef inline Py_ssize_t _header(const unsigned char* b, Py_ssize_t i, Py_ssize_t* size) noexcept nogil:
    """The header size of the element at b[i]; its payload size into size."""
    cdef int x = b[i] >> 4
    if x <= 11:
        size[0] = x
        return 1
    if x == 12:
        size[0] = b[i + 1]
        return 2
    if x == 13:
        size[0] = (<Py_ssize_t>b[i + 1] << 8) | b[i + 2]
        return 3
    size[0] = ((<Py_ssize_t>b[i + 1] << 24) | (<Py_ssize_t>b[i + 2] << 16)
               | (<Py_ssize_t>b[i + 3] << 8) | b[i + 4])
    return 5


cdef inline Py_ssize_t _end(const unsigned char* b, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t p
    cdef Py_ssize_t h = _header(b, i, &p)
    return i + h + p


# ---------------------------------------------------------------- text -> JSONB


cdef struct Parser:
    const unsigned char* z
    Py_ssize_t n
    Buf out


cdef inline bint _space(unsigned char c) noexcept nogil:
    return c == 32 or c == 9 or c == 10 or c == 13


cdef inline bint _digit(unsigned char c) noexcept nogil:
    return 48 <= c <= 57


cdef inline bint _hex(unsigned char c) noexcept nogil:
    return _digit(c) or (97 <= c <= 102) or (65 <= c <= 70)


cdef inline bint _alnum(unsigned char c) noexcept nogil:
    return _digit(c) or (97 <= c <= 122) or (65 <= c <= 90)


cdef int _leaf(Buf* b, int t, const unsigned char* s, Py_ssize_t n) except -1:
    cdef int h = _header_size(n)
    _grow(b, h + n)
    _put_header(b.p + b.n, t, n, h)
    memcpy(b.p + b.n + h, s, n)
    b.n += h + n
    return 0


cdef Py_ssize_t _string(Parser* ps, Py_ssize_t i) except -2:
    """The string at z[i] (a quote); -1 if not strict JSON (invariant 2)."""
    cdef const unsigned char* z = ps.z
    cdef Py_ssize_t n = ps.n
    cdef Py_ssize_t j = i + 1
    cdef int t = T_TEXT
    cdef unsigned char c
    while True:
        if j >= n:
            return -1
        c = z[j]
        if c == 34:  # "
            break
        if c == 92:  # backslash
            if j + 1 >= n:
                return -1
            c = z[j + 1]
            if c == 34 or c == 92 or c == 47 or c == 98 or c == 102 or c == 110 or c == 114 or c == 116:
                j += 2
            elif c == 117 and j + 5 < n and _hex(z[j + 2]) and _hex(z[j + 3]) and _hex(z[j + 4]) and _hex(z[j + 5]):
                j += 6
            else:
                return -1
            t = T_TEXTJ
            continue
        if c < 32:
            return -1  # a control character: JSON5
        j += 1
    _leaf(&ps.out, t, z + i + 1, j - i - 1)
    return j + 1


cdef Py_ssize_t _number(Parser* ps, Py_ssize_t i) except -2:
    cdef const unsigned char* z = ps.z
    cdef Py_ssize_t n = ps.n
    cdef Py_ssize_t j = i
    cdef int t = T_INT
    if z[j] == 45:  # -
        j += 1
    if j >= n or not _digit(z[j]):
        return -1
    if z[j] == 48:  # 0: no leading zeros
        j += 1
        if j < n and _digit(z[j]):
            return -1
    else:
        while j < n and _digit(z[j]):
            j += 1
    if j < n and z[j] == 46:  # .
        j += 1
        if j >= n or not _digit(z[j]):
            return -1
        while j < n and _digit(z[j]):
            j += 1
        t = T_FLOAT
    if j < n and (z[j] == 101 or z[j] == 69):  # e E
        j += 1
        if j < n and (z[j] == 43 or z[j] == 45):
            j += 1
        if j >= n or not _digit(z[j]):
            return -1
        while j < n and _digit(z[j]):
            j += 1
        t = T_FLOAT
    _leaf(&ps.out, t, z + i, j - i)
    return j


cdef Py_ssize_t _word(Parser* ps, Py_ssize_t i, const char* word, Py_ssize_t k, int t) except -2:
    if i + k > ps.n or memcmp(ps.z + i, word, k) != 0:
        return -1
    if i + k < ps.n and _alnum(ps.z[i + k]):
        return -1
    _grow(&ps.out, 1)
    ps.out.p[ps.out.n] = <unsigned char>t
    ps.out.n += 1
    return i + k


cdef Py_ssize_t _value(Parser* ps, Py_ssize_t i, int depth) except -2:
    """Append the element at z[i] (white space first); the index past it, or -1
    when the text is not strict JSON (or nests deeper than MAX_DEPTH)."""
    cdef const unsigned char* z = ps.z
    cdef Py_ssize_t n = ps.n
    cdef Py_ssize_t start, payload
    cdef unsigned char c, close
    cdef int h, t
    while i < n and _space(z[i]):
        i += 1
    if i >= n:
        return -1
    c = z[i]
    if c == 34:
        return _string(ps, i)
    if c == 45 or _digit(c):
        return _number(ps, i)
    if c == 116:
        return _word(ps, i, "true", 4, T_TRUE)
    if c == 102:
        return _word(ps, i, "false", 5, T_FALSE)
    if c == 110:
        return _word(ps, i, "null", 4, T_NULL)
    if c != 123 and c != 91:  # { [
        return -1
    if depth >= _max_depth:
        return -1
    t = T_OBJECT if c == 123 else T_ARRAY
    close = 125 if c == 123 else 93
    start = ps.out.n
    _grow(&ps.out, 5)  # the largest header; the real one is moved in at the end
    ps.out.n += 5
    i += 1
    while i < n and _space(z[i]):
        i += 1
    if i < n and z[i] == close:
        i += 1
    else:
        while True:
            if t == T_OBJECT:
                while i < n and _space(z[i]):
                    i += 1
                if i >= n or z[i] != 34:
                    return -1
                i = _string(ps, i)
                if i < 0:
                    return -1
                while i < n and _space(z[i]):
                    i += 1
                if i >= n or z[i] != 58:  # :
                    return -1
                i += 1
            i = _value(ps, i, depth + 1)
            if i < 0:
                return -1
            while i < n and _space(z[i]):
                i += 1
            if i >= n:
                return -1
            if z[i] == 44:  # ,
                i += 1
                continue
            if z[i] == close:
                i += 1
                break
            return -1
    payload = ps.out.n - start - 5
    h = _header_size(payload)
    memmove(ps.out.p + start + h, ps.out.p + start + 5, payload)
    _put_header(ps.out.p + start, t, payload, h)
    ps.out.n = start + h + payload
    return i


cdef bint _parse(Parser* ps, object text) except -1:
    """Parse text (a str) into ps.out (which the caller _init()s and
    _release()s); False if the kernel does not take it."""
    cdef Py_ssize_t n
    cdef const char* z
    cdef Py_ssize_t i
    try:
        z = PyUnicode_AsUTF8AndSize(text, &n)
    except UnicodeError:
        return False  # lone surrogates
    ps.z = <const unsigned char*>z
    ps.n = n
    i = _value(ps, 0, 0)
    if i < 0:
        return False
    while i < n and _space(ps.z[i]):
        i += 1
    return i == n


def parse(text: str) -> bytes | None:
    """The JSONB of strict JSON text; None for anything else (the full parser
    decides what it is)."""
    cdef Parser ps
    _init(&ps.out)
    try:
        if not _parse(&ps, text):
            return None
        return PyBytes_FromStringAndSize(<char*>ps.out.p, ps.out.n)
    finally:
        _release(&ps.out)


# ---------------------------------------------------------------- paths

cdef dict _paths = {}


cdef object _compile(str path):
    """The steps of a simple path: bytes labels and int indexes; None if the
    path is not simple (the full lookup reads it)."""
    cdef list steps = []
    cdef Py_ssize_t i = 1, k, n = len(path)
    cdef str ch
    if n == 0 or path[0] != "$":
        return None
    while i < n:
        ch = path[i]
        if ch == ".":
            if i + 1 < n and path[i + 1] == '"':
                k = path.find('"', i + 2)
                if k < 0 or "\\" in path[i + 2 : k]:
                    return None
                steps.append(path[i + 2 : k].encode("utf-8"))
                i = k + 1
                continue
            k = i + 1
            while k < n and (path[k].isascii() and (path[k].isalnum() or path[k] == "_")):
                k += 1
            if k == i + 1 or (k < n and path[k] != "." and path[k] != "["):
                return None
            steps.append(path[i + 1 : k].encode("ascii"))
            i = k
        elif ch == "[":
            k = i + 1
            while k < n and "0" <= path[k] <= "9":
                k += 1
            if k == i + 1 or k >= n or path[k] != "]" or k - i > 10:
                return None
            steps.append(int(path[i + 1 : k]))
            i = k + 1
        else:
            return None
    return tuple(steps)


cdef object _steps(object path):
    cdef object steps
    if type(path) is not str:
        return None
    steps = _paths.get(path, _DECLINE)
    if steps is _DECLINE:
        steps = _compile(path)
        if len(_paths) < 512:
            _paths[path] = steps
    return steps


cdef dict _arrow_paths = {}


cdef object _arrow_steps(object v):
    """The steps of the right operand of -> / ->>: an index ([N]), a path, a
    label (."label"); None when the kernel does not read it (SQL NULL, a
    negative index, other types, a label with a quote or backslash)."""
    cdef object steps
    if type(v) is int:
        return (v,) if 0 <= v < 1000000000 else None
    if type(v) is not str:
        return None
    steps = _arrow_paths.get(v, _DECLINE)
    if steps is _DECLINE:
        if v.startswith("$"):
            steps = _compile(v)
        elif v.startswith("["):
            steps = _compile("$" + v)
        elif '"' in v or "\\" in v:
            steps = None
        else:
            steps = (v.encode("utf-8", "surrogatepass"),)
        if len(_arrow_paths) < 512:
            _arrow_paths[v] = steps
    return steps


# ---------------------------------------------------------------- lookup


cdef Py_ssize_t _lookup(const unsigned char* b, tuple steps, int* parent_type, Py_ssize_t* slot) except -3:
    """The offset of the element at steps, -1 if absent, -2 if an escaped label
    is on the way (the full lookup compares those). parent_type: the type of
    its container (-1 for the root); slot: its label's offset in an object,
    its own offset otherwise."""
    cdef Py_ssize_t i = 0, j, end, p, h, k, want, lp
    cdef int t, lt
    cdef bytes label
    cdef const char* lz
    parent_type[0] = -1
    slot[0] = 0
    for step in steps:
        t = b[i] & 0x0F
        h = _header(b, i, &p)
        j = i + h
        end = j + p
        if type(step) is bytes:
            if t != T_OBJECT:
                return -1
            label = <bytes>step
            lz = PyBytes_AS_STRING(label)
            want = PyBytes_GET_SIZE(label)
            while j < end:
                lt = b[j] & 0x0F
                k = _header(b, j, &lp)
                if lt != T_TEXT:
                    return -2
                if lp == want and memcmp(b + j + k, lz, want) == 0:
                    break
                j = _end(b, j + k + lp)
            if j >= end:
                return -1
            slot[0] = j
            i = j + k + lp
            parent_type[0] = T_OBJECT
        else:
            if t != T_ARRAY:
                return -1
            want = step
            k = 0
            while j < end and k < want:
                j = _end(b, j)
                k += 1
            if j >= end:
                return -1
            slot[0] = j
            i = j
            parent_type[0] = T_ARRAY
    if parent_type[0] != T_OBJECT:
        slot[0] = i
    return i


# ---------------------------------------------------------------- JSONB -> values


cdef int _render_into(const unsigned char* b, Py_ssize_t i, Buf* out) except -1:
    """The canonical text of the element at b[i] (invariant 3: strict JSON, so
    a string's payload is its JSON text)."""
    cdef int t = b[i] & 0x0F
    cdef Py_ssize_t p
    cdef Py_ssize_t h = _header(b, i, &p)
    cdef Py_ssize_t j = i + h, end = i + h + p
    cdef int k = 0
    cdef unsigned char sep
    if t == T_NULL:
        _append(out, <const unsigned char*>"null", 4)
    elif t == T_TRUE:
        _append(out, <const unsigned char*>"true", 4)
    elif t == T_FALSE:
        _append(out, <const unsigned char*>"false", 5)
    elif t == T_INT or t == T_FLOAT:
        _append(out, b + j, p)
    elif t == T_TEXT or t == T_TEXTJ:
        _grow(out, p + 2)
        out.p[out.n] = 34
        memcpy(out.p + out.n + 1, b + j, p)
        out.p[out.n + 1 + p] = 34
        out.n += p + 2
    else:
        _grow(out, 1)
        out.p[out.n] = 91 if t == T_ARRAY else 123
        out.n += 1
        while j < end:
            if k:
                sep = 44 if (t == T_ARRAY or k % 2 == 0) else 58
                _grow(out, 1)
                out.p[out.n] = sep
                out.n += 1
            _render_into(b, j, out)
            j = _end(b, j)
            k += 1
        _grow(out, 1)
        out.p[out.n] = 93 if t == T_ARRAY else 125
        out.n += 1
    return 0


cdef object _render(const unsigned char* b, Py_ssize_t i):
    cdef Buf out
    _init(&out)
    try:
        _render_into(b, i, &out)
        return JsonText(PyUnicode_DecodeUTF8(<char*>out.p, out.n, NULL))
    finally:
        _release(&out)


cdef object _text(const unsigned char* b, Py_ssize_t i):
    """The SQL text of a string element (escapes decoded)."""
    cdef Py_ssize_t p
    cdef Py_ssize_t h = _header(b, i, &p)
    cdef object s = PyUnicode_DecodeUTF8(<const char*>(b + i + h), p, NULL)
    if (b[i] & 0x0F) == T_TEXTJ:
        return unescape(s)
    return s


cdef object _sql_value(const unsigned char* b, Py_ssize_t i):
    """What json_extract() returns for the element at b[i] (jsonvalue.sql_value)."""
    cdef int t = b[i] & 0x0F
    cdef Py_ssize_t p, k
    cdef Py_ssize_t h = _header(b, i, &p)
    cdef const unsigned char* s = b + i + h
    cdef long long v = 0
    cdef bint neg
    if t == T_NULL:
        return None
    if t == T_TRUE:
        return 1
    if t == T_FALSE:
        return 0
    if t == T_INT:
        neg = s[0] == 45
        if p - neg > 18:  # may pass 64 bits: as the full way converts it
            return int_value(PyUnicode_DecodeUTF8(<const char*>s, p, NULL))
        for k in range(neg, p):
            v = v * 10 + (s[k] - 48)
        return PyLong_FromLongLong(-v if neg else v)
    if t == T_FLOAT:
        return atof(PyBytes_FromStringAndSize(<const char*>s, p))[0]
    if t == T_TEXT or t == T_TEXTJ:
        return _text(b, i)
    return _render(b, i)


cdef object _extract(object x, object path, bint render, bint arrow):
    """json_extract(x, path) (x ->> path when arrow, path the operator's right
    operand), the element's JSON text instead of its SQL value when render
    (x -> path); DECLINE when x is not strict JSON text or path not simple."""
    cdef object steps
    cdef Parser ps
    cdef int parent_type
    cdef Py_ssize_t slot, i
    if type(x) is not str and type(x) is not JsonText:
        return _DECLINE
    steps = _arrow_steps(path) if arrow else _steps(path)
    if steps is None:
        return _DECLINE
    _init(&ps.out)
    try:
        if not _parse(&ps, x):
            return _DECLINE
        i = _lookup(ps.out.p, <tuple>steps, &parent_type, &slot)
        if i == -2:
            return _DECLINE
        if i == -1:
            return None
        if render:
            return _render(ps.out.p, i)
        return _sql_value(ps.out.p, i)
    finally:
        _release(&ps.out)


def extract(x: object, path: object, bint render, bint arrow) -> object:
    """json_extract(x, path) (x ->> path when arrow, path the operator's right
    operand), the element's JSON text instead of its SQL value when render
    (x -> path); DECLINE when x is not strict JSON text or path not simple."""
    return _extract(x, path, render, arrow)


# ---------------------------------------------------------------- json_each / json_tree


cdef str _step(const unsigned char* b, Py_ssize_t label, int t, Py_ssize_t index):
    """The fullkey step of a child: [N], .label, or ."label" when the label is
    not an ASCII letter then letters and digits."""
    cdef Py_ssize_t p, k
    cdef Py_ssize_t h
    cdef const unsigned char* s
    cdef bint plain
    if t == T_ARRAY:
        return f"[{index}]"
    h = _header(b, label, &p)
    s = b + label + h
    plain = p > 0 and ((97 <= s[0] <= 122) or (65 <= s[0] <= 90))
    k = 0
    while plain and k < p:
        plain = _alnum(s[k])
        k += 1
    raw = PyUnicode_DecodeUTF8(<const char*>s, p, NULL)
    return "." + raw if plain else '."' + raw + '"'


cdef str _keys_rp = None
cdef list _keys = []  # _keys_rp + "[k]" for the first indexes, as made


cdef str _array_fullkey(str rp, Py_ssize_t k):
    """rp + "[k]": json_each's fullkey of element k of the array at rp, kept for
    the first 64 indexes of the last rp (one statement's rows share one)."""
    global _keys_rp, _keys
    if k >= 64:
        return rp + f"[{k}]"
    if rp is not _keys_rp and rp != _keys_rp:
        _keys_rp = rp
        _keys = []
    while len(_keys) <= k:
        _keys.append(rp + f"[{len(_keys)}]")
    return <str>_keys[k]


cdef tuple _row(const unsigned char* b, Py_ssize_t i, object key, Py_ssize_t node_id,
                object parent, str full, str path, object json_col, object root_col):
    cdef int t = b[i] & 0x0F
    cdef object value = _sql_value(b, i)
    return (key, value, _TYPE_NAMES[t], None if t >= T_ARRAY else value, node_id, parent,
            full, path, json_col, root_col)


cdef int _tree(const unsigned char* b, Py_ssize_t i, object key, Py_ssize_t node_id,
               object parent, str full, str path, object json_col, object root_col,
               list rows) except -1:
    cdef int t = b[i] & 0x0F
    cdef Py_ssize_t p, kid_id, j, end
    cdef Py_ssize_t h = _header(b, i, &p)
    cdef Py_ssize_t k = 0
    cdef object kid_key
    rows.append(_row(b, i, key, node_id, parent, full, path, json_col, root_col))
    if t < T_ARRAY:
        return 0
    j = i + h
    end = j + p
    while j < end:
        kid_id = j
        if t == T_OBJECT:
            kid_key = _text(b, j)
            step = _step(b, j, t, k)
            j = _end(b, j)
        else:
            kid_key = k
            step = _step(b, j, t, k)
        _tree(b, j, kid_key, kid_id, node_id, full + step, full, json_col, root_col, rows)
        j = _end(b, j)
        k += 1
    return 0


cdef object _each(object x, object root_path, bint recursive):
    """The rows of json_each(x, root_path) (json_tree when recursive, then only
    for the root path '$'), columns fn_json.EACH_COLUMNS; DECLINE when x is
    not strict JSON text or the path is not simple."""
    cdef object steps
    cdef Parser ps
    cdef int parent_type
    cdef Py_ssize_t slot, i
    cdef list rows = []
    cdef str rp = "$" if root_path is None else root_path if type(root_path) is str else None
    if rp is None or (type(x) is not str and type(x) is not JsonText):
        return _DECLINE
    if recursive and rp != "$":
        return _DECLINE  # json_tree's first row reads its key off the path: the full way
    steps = _steps(rp)
    if steps is None:
        return _DECLINE
    _init(&ps.out)
    try:
        if not _parse(&ps, x):
            return _DECLINE
        i = _lookup(ps.out.p, <tuple>steps, &parent_type, &slot)
        if i == -2:
            return _DECLINE
        if i >= 0:
            json_col = x if type(x) is str else str(x)  # the column is plain TEXT
            if recursive:
                _tree(ps.out.p, i, None, slot, None, rp, "$", json_col, rp, rows)
            else:
                _children(ps.out.p, i, slot, rp, json_col, rows)
        return rows
    finally:
        _release(&ps.out)


cdef int _children(const unsigned char* b, Py_ssize_t i, Py_ssize_t slot, str rp,
                   object json_col, list rows) except -1:
    """json_each's rows for the element at b[i]: one per child of a container,
    itself for a primitive."""
    cdef int t = b[i] & 0x0F
    cdef Py_ssize_t p, j, end, kid_id
    cdef Py_ssize_t h = _header(b, i, &p)
    cdef Py_ssize_t k = 0
    if t < T_ARRAY:
        rows.append(_row(b, i, None, slot, None, rp, rp, json_col, rp))
        return 0
    j = i + h
    end = j + p
    while j < end:
        kid_id = j
        if t == T_OBJECT:
            key = _text(b, j)
            full = rp + _step(b, j, t, k)
            j = _end(b, j)
        else:
            key = k
            full = _array_fullkey(rp, k)
        rows.append(_row(b, j, key, kid_id, None, full, rp, json_col, rp))
        j = _end(b, j)
        k += 1
    return 0


def each(x: object, root_path: object, bint recursive) -> object:
    """The rows of json_each(x, root_path) (json_tree when recursive, then only
    for the root path '$'), columns fn_json.EACH_COLUMNS; DECLINE when x is
    not strict JSON text or the path is not simple."""
    return _each(x, root_path, recursive)


# ---------------------------------------------------------------- the SQL functions

cdef object _full_extract = None
cdef object _full_arrow = None
cdef object _full_arrow2 = None
cdef object _full_each = None


def set_full_way(extract: object, arrow: object, arrow2: object, each: object) -> None:
    """The functions that answer what the kernel declines (toondb.sql.fn_json's:
    json_extract(x, *paths), x -> p, x ->> p, and each(x, root, recursive))."""
    global _full_extract, _full_arrow, _full_arrow2, _full_each
    _full_extract = extract
    _full_arrow = arrow
    _full_arrow2 = arrow2
    _full_each = each


def json_extract(x: object, *paths: object) -> object:
    """json_extract(): the kernel's answer, else the full way's."""
    cdef object got
    if len(paths) == 1:
        got = _extract(x, paths[0], False, False)
        if got is not _DECLINE:
            return got
    return _full_extract(x, *paths)


def json_arrow(x: object, path: object) -> object:
    """x -> path: the kernel's answer, else the full way's."""
    cdef object got = _extract(x, path, True, True)
    return _full_arrow(x, path) if got is _DECLINE else got


def json_arrow2(x: object, path: object) -> object:
    """x ->> path: the kernel's answer, else the full way's."""
    cdef object got = _extract(x, path, False, True)
    return _full_arrow2(x, path) if got is _DECLINE else got


def json_each(x: object, root: object = None) -> object:
    """json_each()'s rows: the kernel's, else the full way's."""
    cdef object rows = _each(x, root, False)
    return _full_each(x, root, False) if rows is _DECLINE else iter(rows)


def json_tree(x: object, root: object = None) -> object:
    """json_tree()'s rows: the kernel's, else the full way's."""
    cdef object rows = _each(x, root, True)
    return _full_each(x, root, True) if rows is _DECLINE else iter(rows)
