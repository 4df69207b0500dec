# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The binary row codec of toondb's SQL tables, in C (``toondb.codec.rowcodec``
has the same functions in Python and documents the format).

``decode_row(data, defaults, key)`` returns the row's values padded with
``defaults`` up to ``len(defaults)`` columns, plus the rowid taken from the
8-byte table key ``key`` as the last item: one tuple allocation per row.
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.long cimport PyLong_FromLongLong
from cpython.float cimport PyFloat_FromDouble

cdef extern from "Python.h":
    object PyUnicode_AsUTF8String(object)

cdef enum:
    T_NULL = 0
    T_ZERO = 1
    T_ONE = 2
    T_I8 = 3
    T_I16 = 4
    T_I32 = 5
    T_I64 = 6
    T_F64 = 7
    T_TEXT = 8
    T_BLOB = 9

from toondb.errors import RowFormatError

cdef inline int read_varint(const uint8_t* p, Py_ssize_t n, Py_ssize_t* pos, uint64_t* out) except -1:
    cdef uint64_t v = 0
    cdef int shift = 0
    cdef uint8_t b
    while True:
        if pos[0] >= n or shift > 63:
            raise RowFormatError("truncated row")
        b = p[pos[0]]
        pos[0] += 1
        v |= (<uint64_t>(b & 0x7F)) << shift
        if b < 0x80:
            break
        shift += 7
    out[0] = v
    return 0

cdef inline int64_t load_le(const uint8_t* p, int nbytes) noexcept nogil:
    cdef uint64_t u = 0
    cdef int i
    for i in range(nbytes):
        u |= (<uint64_t>p[i]) << (8 * i)
    if nbytes < 8 and (u >> (8 * nbytes - 1)) & 1:
        u |= (~(<uint64_t>0)) << (8 * nbytes)
    return <int64_t>u

cdef object decode_value(const uint8_t* p, Py_ssize_t n, Py_ssize_t* pos):
    cdef uint8_t tag
    cdef uint64_t ln
    cdef double d
    cdef int64_t i
    cdef Py_ssize_t at
    if pos[0] >= n:
        raise RowFormatError("truncated row")
    tag = p[pos[0]]
    pos[0] += 1
    at = pos[0]
    if tag == T_NULL:
        return None
    if tag == T_ZERO:
        return 0
    if tag == T_ONE:
        return 1
    if tag == T_I8 or tag == T_I16 or tag == T_I32 or tag == T_I64:
        ln = 1 if tag == T_I8 else (2 if tag == T_I16 else (4 if tag == T_I32 else 8))
        if at + <Py_ssize_t>ln > n:
            raise RowFormatError("truncated row")
        i = load_le(p + at, <int>ln)
        pos[0] = at + <Py_ssize_t>ln
        return PyLong_FromLongLong(i)
    if tag == T_F64:
        if at + 8 > n:
            raise RowFormatError("truncated row")
        memcpy(&d, p + at, 8)
        pos[0] = at + 8
        return PyFloat_FromDouble(d)
    if tag == T_TEXT or tag == T_BLOB:
        read_varint(p, n, pos, &ln)
        at = pos[0]
        if ln > <uint64_t>(n - at):
            raise RowFormatError("truncated row")
        pos[0] = at + <Py_ssize_t>ln
        if tag == T_TEXT:
            try:
                return PyUnicode_DecodeUTF8(<const char*>(p + at), <Py_ssize_t>ln, "surrogatepass")
            except UnicodeDecodeError as exc:  # toondb writes UTF-8 only: damage
                raise RowFormatError(f"a text value is not UTF-8 ({exc.reason})") from None
        return PyBytes_FromStringAndSize(<const char*>(p + at), <Py_ssize_t>ln)
    raise RowFormatError(f"bad value tag {tag}")

def decode_row(bytes data, tuple defaults, key):
    """The row's values (padded with defaults) and the rowid of its 8-byte key."""
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t pos = 0
    cdef uint64_t ncols, j
    cdef Py_ssize_t width = len(defaults)
    cdef tuple out = PyTuple_New(width + 1)
    cdef object v
    cdef const uint8_t* k
    cdef uint64_t u = 0
    cdef int b
    read_varint(p, n, &pos, &ncols)
    for j in range(<uint64_t>width):
        if j < ncols:
            v = decode_value(p, n, &pos)
        else:
            v = defaults[j]
        Py_INCREF(v)
        PyTuple_SET_ITEM(out, <Py_ssize_t>j, v)
    if type(key) is bytes and PyBytes_GET_SIZE(key) >= 8:
        k = <const uint8_t*>PyBytes_AS_STRING(key)
        for b in range(8):
            u = (u << 8) | k[b]
        v = PyLong_FromLongLong(<int64_t>(u ^ (<uint64_t>1 << 63)))
    else:
        v = key
    Py_INCREF(v)
    PyTuple_SET_ITEM(out, width, v)
    return out

def decode_values(bytes data):
    """Every value stored in the row, as a tuple (no padding, no rowid)."""
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t pos = 0
    cdef uint64_t ncols, j
    read_varint(p, n, &pos, &ncols)
    if ncols > <uint64_t>n:
        raise RowFormatError("bad column count")
    out = PyTuple_New(<Py_ssize_t>ncols)
    for j in range(ncols):
        v = decode_value(p, n, &pos)
        Py_INCREF(v)
        PyTuple_SET_ITEM(out, <Py_ssize_t>j, v)
    return out

cdef inline Py_ssize_t put_varint(uint8_t* out, uint64_t v) noexcept:
    cdef Py_ssize_t i = 0
    while v >= 0x80:
        out[i] = <uint8_t>((v & 0x7F) | 0x80)
        v >>= 7
        i += 1
    out[i] = <uint8_t>v
    return i + 1

def encode_row(values):
    """The binary form of a row (a sequence of None/int/float/str/bytes)."""
    cdef Py_ssize_t n = len(values)
    cdef Py_ssize_t cap = 10 + 9 * n
    cdef Py_ssize_t pos, ln, i
    cdef list bodies = None
    cdef int64_t iv
    cdef double d
    cdef uint64_t u
    cdef int nb
    cdef bytes buf
    cdef uint8_t* p
    cdef object v, enc
    # first pass: the size
    encoded = [None] * n
    for i in range(n):
        v = values[i]
        if type(v) is str:
            enc = PyUnicode_AsUTF8String(v) if True else None
            encoded[i] = enc
            cap += PyBytes_GET_SIZE(enc) + 10
        elif type(v) is bytes:
            cap += PyBytes_GET_SIZE(v) + 10
        elif v is not None and type(v) is not int and type(v) is not float and type(v) is not bool:
            if isinstance(v, (bytearray, memoryview)):
                encoded[i] = bytes(v)
                cap += len(encoded[i]) + 10
            else:
                raise TypeError(f"cannot store a {type(v).__name__} in a row")
    buf = PyBytes_FromStringAndSize(NULL, cap)
    p = <uint8_t*>PyBytes_AS_STRING(buf)
    pos = put_varint(p, <uint64_t>n)
    for i in range(n):
        v = values[i]
        if v is None:
            p[pos] = T_NULL
            pos += 1
        elif type(v) is int or type(v) is bool:
            iv = v
            if iv == 0:
                p[pos] = T_ZERO
                pos += 1
                continue
            if iv == 1:
                p[pos] = T_ONE
                pos += 1
                continue
            if -128 <= iv <= 127:
                p[pos] = T_I8
                nb = 1
            elif -32768 <= iv <= 32767:
                p[pos] = T_I16
                nb = 2
            elif -2147483648 <= iv <= 2147483647:
                p[pos] = T_I32
                nb = 4
            else:
                p[pos] = T_I64
                nb = 8
            pos += 1
            u = <uint64_t>iv
            for ln in range(nb):
                p[pos + ln] = <uint8_t>(u >> (8 * ln))
            pos += nb
        elif type(v) is float:
            d = v
            p[pos] = T_F64
            memcpy(p + pos + 1, &d, 8)
            pos += 9
        else:
            if type(v) is str:
                p[pos] = T_TEXT
                enc = encoded[i]
            else:
                p[pos] = T_BLOB
                enc = v if type(v) is bytes else encoded[i]
            pos += 1
            ln = PyBytes_GET_SIZE(enc)
            pos += put_varint(p + pos, <uint64_t>ln)
            memcpy(p + pos, PyBytes_AS_STRING(enc), ln)
            pos += ln
    return buf[:pos]


# ---------------------------------------------------------------- scans

cdef class DecodeScan:
    """Iterator over a tree scan's (key, value) pairs yielding decoded rows
    (decode_row(value, defaults, key)): the whole loop stays in C.

    filter (optional): (column, op, number, pred) with op 0..5 for < <= > >= = !=:
    rows whose value in that column does not satisfy `value op number` under
    SQLite's comparison (NULL never does; text and blobs sort above numbers) are
    skipped after decoding that one value, without building the row. When C
    cannot decide exactly (an integer beyond 2**53 against a real), the row is
    decoded and pred(row) decides."""
    cdef object it
    cdef tuple defaults
    cdef bint has_filter
    cdef Py_ssize_t fcol
    cdef int fop
    cdef bint fint
    cdef int64_t fi
    cdef double fd
    cdef object fpred

    def __cinit__(self, it, tuple defaults, filter=None):
        self.it = iter(it)
        self.defaults = defaults
        self.has_filter = False
        if filter is not None:
            col, op, value, pred = filter
            self.fcol = col
            self.fop = op
            self.fpred = pred
            if type(value) is int:
                self.fint = True
                self.fi = value
                self.fd = <double>self.fi
            else:
                self.fint = False
                self.fd = value
            self.has_filter = True

    def __iter__(self):
        return self

    cdef inline int _cmp_result(self, int c) noexcept:
        # c: -1, 0, 1 = value <, =, > the filter number
        if self.fop == 0:
            return c < 0
        if self.fop == 1:
            return c <= 0
        if self.fop == 2:
            return c > 0
        if self.fop == 3:
            return c >= 0
        if self.fop == 4:
            return c == 0
        return c != 0

    cdef int _test(self, bytes data) except -2:
        """1 keep, 0 skip, -1 undecided."""
        cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t pos = 0
        cdef uint64_t ncols, j, ln
        cdef uint8_t tag
        cdef int64_t iv
        cdef double d
        cdef object dv
        read_varint(p, n, &pos, &ncols)
        if <uint64_t>self.fcol >= ncols:
            dv = self.defaults[self.fcol]
            if dv is None:
                return 0
            if type(dv) is int or type(dv) is float:
                return -1
            return self._cmp_result(1)
        for j in range(<uint64_t>self.fcol):  # skip the values before the column
            if pos >= n:
                raise RowFormatError("truncated row")
            tag = p[pos]
            pos += 1
            if tag == T_I8:
                pos += 1
            elif tag == T_I16:
                pos += 2
            elif tag == T_I32:
                pos += 4
            elif tag == T_I64 or tag == T_F64:
                pos += 8
            elif tag == T_TEXT or tag == T_BLOB:
                read_varint(p, n, &pos, &ln)
                pos += <Py_ssize_t>ln
            elif tag > T_BLOB:
                raise RowFormatError(f"bad value tag {tag}")
        if pos >= n:
            raise RowFormatError("truncated row")
        tag = p[pos]
        pos += 1
        if tag == T_NULL:
            return 0
        if tag == T_TEXT or tag == T_BLOB:
            return self._cmp_result(1)
        if tag == T_F64:
            if pos + 8 > n:
                raise RowFormatError("truncated row")
            memcpy(&d, p + pos, 8)
            if d != d:
                return 0
            if self.fint and not (-9007199254740992 <= self.fi <= 9007199254740992):
                return -1
            return self._cmp_result((d > self.fd) - (d < self.fd))
        if tag == T_ZERO:
            iv = 0
        elif tag == T_ONE:
            iv = 1
        else:
            ln = 1 if tag == T_I8 else (2 if tag == T_I16 else (4 if tag == T_I32 else 8))
            if pos + <Py_ssize_t>ln > n:
                raise RowFormatError("truncated row")
            iv = load_le(p + pos, <int>ln)
        if self.fint:
            return self._cmp_result((iv > self.fi) - (iv < self.fi))
        if self.fd != self.fd:
            return 0
        if not (-9007199254740992 <= iv <= 9007199254740992):
            return -1
        d = <double>iv
        return self._cmp_result((d > self.fd) - (d < self.fd))

    def __next__(self):
        cdef object kv
        cdef object row
        cdef int r
        while True:
            kv = next(self.it)
            if self.has_filter:
                r = self._test(<bytes>(<tuple>kv)[1])
                if r == 0:
                    continue
                row = decode_row((<tuple>kv)[1], self.defaults, (<tuple>kv)[0])
                if r < 0 and not self.fpred(row):
                    continue
                return row
            return decode_row((<tuple>kv)[1], self.defaults, (<tuple>kv)[0])


# ---------------------------------------------------------------- index keys
# The format is documented in toondb/sql/keycode.py (encode_value); this is the
# same encoding in C, with the rare integers beyond 2**53 left to Python.

cdef inline Py_ssize_t put_double(uint8_t* p, double f) noexcept:
    cdef uint64_t u
    cdef int i
    f = f + 0.0
    memcpy(&u, &f, 8)
    if u >> 63:
        u = ~u
    else:
        u |= (<uint64_t>1) << 63
    p[0] = 0x10
    for i in range(8):
        p[1 + i] = <uint8_t>(u >> (56 - 8 * i))
    p[9] = 0x80
    return 10

# keycode.encode_value, for the values this encoder leaves to Python (integers
# beyond 2**53, other types); toondb.codec.keycode registers it when it imports
# this module, so that the two modules do not import each other.
_py_encode_value = None


def set_fallback_encoder(f):
    """Register keycode.encode_value for the values encode_key leaves to Python."""
    global _py_encode_value
    _py_encode_value = f


def encode_key(values):
    """keycode.encode_values(values): the order-preserving key of a tuple."""
    cdef Py_ssize_t n = len(values)
    cdef Py_ssize_t cap = 0, pos = 0, i, j, ln
    cdef object v
    cdef int64_t iv
    cdef double d
    cdef bytes buf, enc
    cdef uint8_t* p
    cdef const uint8_t* s
    for i in range(n):
        v = values[i]
        if type(v) is str:
            cap += 2 * len(v) * 4 + 3
        elif type(v) is bytes:
            cap += 2 * PyBytes_GET_SIZE(v) + 3
        else:
            cap += 18
    buf = PyBytes_FromStringAndSize(NULL, cap)
    p = <uint8_t*>PyBytes_AS_STRING(buf)
    for i in range(n):
        v = values[i]
        if v is None:
            p[pos] = 0x05
            pos += 1
        elif type(v) is int or type(v) is bool:
            if -9007199254740992 <= v <= 9007199254740992:
                iv = v
                pos += put_double(p + pos, <double>iv)
            else:
                enc = _py_encode_value(v)
                ln = PyBytes_GET_SIZE(enc)
                memcpy(p + pos, PyBytes_AS_STRING(enc), ln)
                pos += ln
        elif type(v) is float:
            d = v
            if d != d:
                p[pos] = 0x05
                pos += 1
            else:
                pos += put_double(p + pos, d)
        elif type(v) is str or type(v) is bytes:
            if type(v) is str:
                p[pos] = 0x20
                enc = v.encode("utf-8", "surrogatepass")
            else:
                p[pos] = 0x30
                enc = v
            pos += 1
            s = <const uint8_t*>PyBytes_AS_STRING(enc)
            ln = PyBytes_GET_SIZE(enc)
            if pos + 2 * ln + 2 > cap:
                raise ValueError("key buffer too small")
            for j in range(ln):
                p[pos] = s[j]
                pos += 1
                if s[j] == 0:
                    p[pos] = 0xFF
                    pos += 1
            p[pos] = 0
            p[pos + 1] = 1
            pos += 2
        else:
            enc = _py_encode_value(v)
            ln = PyBytes_GET_SIZE(enc)
            if pos + ln > cap:
                raise ValueError("key buffer too small")
            memcpy(p + pos, PyBytes_AS_STRING(enc), ln)
            pos += ln
    return buf[:pos]
