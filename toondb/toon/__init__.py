"""TOON (Token-Oriented Object Notation): encode Python/JSON data as TOON text and back.

Pinned version: **TOON specification v4.0** (github.com/toon-format/spec, release v4.0).
``SPEC_VERSION`` says so, and the tests run the official v4.0 conformance fixtures
(``../shared/data/toon-spec/v4.0``): all 516 of them pass (173 encode, 343 decode).

The format
----------
TOON carries the JSON data model in indented lines, like YAML, and writes arrays of
uniform objects as tables, like CSV, declaring the length and the field names once::

    >>> print(encode({"products": [{"name": "Laptop", "price": 999},
    ...                            {"name": "Mouse", "price": 25}]}))
    products[2]{name,price}:
      Laptop,999
      Mouse,25

- objects: ``key: value`` lines, nested objects indented (2 spaces by default);
- arrays of primitives inline: ``tags[3]: a,b,c``; empty arrays ``key: []``;
- arrays of objects with one key set whose values are primitives, or such objects
  again, as a table: ``orders[2]{id,customer{name,country}}:`` then one row per line;
- objects of (two or more) such objects in the keyed form ``servers[2:]{host,port}:``
  with rows ``alpha: a.example.com,8080``;
- anything else as a list: ``items[2]:`` then ``- `` items;
- strings are quoted only when they would read back as something else (a number,
  ``true``/``false``/``null``, structure, a comment ``#``, or have edge spaces), with
  the escapes ``\\\\ \\" \\n \\r \\t \\uXXXX``; numbers in canonical decimal form (no
  exponent, ``-0`` is ``0``). The ``delimiter`` option picks ``,`` (default), tab or ``|``
  for rows and inline arrays. Decoders drop comment lines (``# ...``) and, in strict mode
  (the default), check every declared length, row width, indentation and key.

Round trip: ``decode(encode(x)) == x`` for every JSON value ``x`` (dicts with str
keys, lists, str, int, finite float, bool, None), with two documented differences of
type, not value: a float with an integral value decodes as ``int`` (``2.0`` -> ``2``, as
the spec writes it ``2``; ``1e300`` is written as the exact integer that float holds, so
the int decoded is equal to it), and tabular rows take the first row's key order.
``encode`` also accepts tuples, other mappings, ``Decimal``/``Fraction``/NumPy numbers,
enums, dates and UUIDs (see ``encoder._normalize``); NaN and infinities encode as ``null``.

Options. v4.0 fixtures use ``delimiter`` and ``indentSize`` (encode; here ``indent``)
and ``indentSize`` and ``strict`` (decode); those are all the options there are. The
v3.x options ``keyFolding``/``flattenDepth`` (encode) and ``expandPaths`` (decode) were
removed from the spec in v4.0, so this module does not offer them.

Design choice: our own implementation, not a PyPI dependency
-----------------------------------------------------------
Both candidates were measured against the v4.0 fixtures and on the same data (best
of repeated runs, all in one process on one shared machine, so the absolute numbers
move with its load but the ratios hold; "rows" are the 1000 rows of a 5-field table,
or the 200 team members of a nested document -- the data of ``bench/bench_toon.py``):

======================  ===========  =============  =============  =============  =============
package                 v4.0 pass    table encode   table decode   nested encode  nested decode
======================  ===========  =============  =============  =============  =============
toondb.toon (this)      516 / 516    610k rows/s    450k rows/s    200k rows/s    70k rows/s
python-toon 0.2.0       516 / 516    124k rows/s    69k rows/s     63k rows/s     33k rows/s
toon-format 1.2.0       512 / 516    109k rows/s    164k rows/s    72k rows/s     56k rows/s
======================  ===========  =============  =============  =============  =============

(``json.dumps``, in C, writes the same table at about 720k rows/s.) toon-format fails the
four non-strict "literal key" fixtures (``foo[1][bar]: 10``); python-toon passes every
fixture but is 2-6.5 times slower. So, per the rule "depend on a package only if it
passes every fixture and is at least as fast", TOON is implemented here, in pure Python
with no dependency (``bench/bench_toon.py`` measures it; it also measures the two
packages when they are installed). The encoder works column by column on tables --
it finds a table's columns once, encodes each column with a function chosen for its
type, and checks a whole string column for characters that need quotes with one regex
over the joined column -- and the decoder splits rows with ``str.split`` and converts
whole columns of numbers with one regex match each.

What TOON saves: against compact JSON (``json.dumps(x, separators=(",", ":"))``),
counted in cl100k_base tokens by ``bench/bench_toon.py``, the 1000-row table takes 42%
fewer tokens (15263 vs 26274) and the two-row ``products`` table 14% fewer (18 vs 21);
objects and non-uniform lists take more tokens than compact JSON (the nested document
+44%), because indentation costs more than braces. Use TOON for tabular data.
"""

from toondb.toon.decoder import ToonDecodeError, decode
from toondb.toon.encoder import encode
from toondb.toon.lexical import SPEC_VERSION, JsonValue

__all__ = ["encode", "decode", "ToonDecodeError", "JsonValue", "SPEC_VERSION"]
