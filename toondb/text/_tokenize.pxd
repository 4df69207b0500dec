# C-level face of the tokenizers (toondb/text/_tokenize.pyx), for the posting
# accumulator in _postings.pyx: tokens are handed to a C callback, with no
# Python object per token.

from libc.stdint cimport uint8_t, uint32_t

# Called once per token: the folded token bytes and the byte offsets of the
# token in the input text. Returns 0, or -1 with a Python exception set.
ctypedef int (*TokenFn)(void* ctx, const char* tok, int ntok, int start, int end) except -1


cdef class Tokenizer:
    cdef int kind                  # K_UNICODE61, K_ASCII, K_TRIGRAM
    cdef int n_porter              # porter stemmers wrapped around the base
    cdef uint8_t token_char[128]   # ASCII range: 1 = token character
    cdef uint8_t category[64]      # unicode61: 1 = category code is a token class
    cdef int remove_diacritics     # unicode61: 0, 1, 2; trigram: the fold parameter
    cdef bint fold                 # trigram: fold case (case_sensitive=0)
    cdef uint32_t* exceptions      # unicode61: sorted code points flipping their class
    cdef int nexceptions
    cdef char* buf                 # token output buffer (folded bytes)
    cdef int nbuf
    cdef readonly str spec         # the arguments, for repr and the index config

    cdef int run(self, const unsigned char* z, int n, TokenFn fn, void* ctx) except -1
    cdef bint is_exception(self, uint32_t c) noexcept nogil
    cdef bint is_alnum(self, uint32_t c) noexcept nogil
    cdef int grow(self, int need) except -1
    cdef int emit(self, const char* tok, int ntok, int start, int end, TokenFn fn, void* ctx) except -1
    cdef int run_unicode61(self, const unsigned char* z, int n, TokenFn fn, void* ctx) except -1
    cdef int run_ascii(self, const unsigned char* z, int n, TokenFn fn, void* ctx) except -1
    cdef int run_trigram(self, const unsigned char* z, int n, TokenFn fn, void* ctx) except -1
