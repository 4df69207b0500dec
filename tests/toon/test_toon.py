"""Tests of toondb.toon: the official TOON v4.0 conformance fixtures, a round-trip
property over arbitrary JSON data, and hand-written cases for the tabular forms."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import math
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from paths import SHARED_DATA, require_shared

from toondb.errors import ToonDBError
from toondb.toon import SPEC_VERSION, ToonDecodeError, decode, encode

# ../shared/data relative to the project root; never copied into the project.
SPEC_DIR = SHARED_DATA / "toon-spec" / "v4.0"
FIXTURES = SPEC_DIR / "fixtures"

# The fixtures' option names and ours.
ENCODE_OPTIONS = {"delimiter": "delimiter", "indentSize": "indent"}
DECODE_OPTIONS = {"indentSize": "indent", "strict": "strict"}


def _fixture_cases(category: str) -> list[Any]:
    if not FIXTURES.is_dir():
        return [pytest.param(None, id="fixtures-absent")]
    cases = []
    for path in sorted((FIXTURES / category).glob("*.json")):
        for test in json.loads(path.read_text(encoding="utf-8"))["tests"]:
            cases.append(pytest.param(test, id=f"{path.stem}::{test['name']}"))
    return cases


def _options(test: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    options = test.get("options") or {}
    unknown = set(options) - set(names)
    assert not unknown, f"fixture uses options this codec lacks: {sorted(unknown)}"
    return {names[k]: v for k, v in options.items()}


def _skip_if_absent(test: Any) -> None:
    require_shared(test is not None, f"TOON spec fixtures ({SPEC_DIR})")


def json_equal(a: Any, b: Any, *, ordered: bool = True) -> bool:
    """JSON equality: bools apart from numbers, ints equal to floats of the same value,
    and (when ``ordered``) object keys in the same order."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        if ordered and list(a) != list(b):
            return False
        return a.keys() == b.keys() and all(json_equal(a[k], b[k], ordered=ordered) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y, ordered=ordered) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_spec_version_is_pinned() -> None:
    assert SPEC_VERSION == "4.0"


def test_fixture_folder_pins_the_same_version() -> None:
    require_shared(FIXTURES.is_dir(), f"TOON spec fixtures ({SPEC_DIR})")
    versions = {
        json.loads(p.read_text(encoding="utf-8"))["version"] for p in FIXTURES.glob("*/*.json")
    }
    assert versions == {SPEC_VERSION}


@pytest.mark.parametrize("test", _fixture_cases("encode"))
def test_encode_fixture(test: Any) -> None:
    _skip_if_absent(test)
    options = _options(test, ENCODE_OPTIONS)
    if test.get("shouldError"):
        with pytest.raises((TypeError, ValueError)):
            encode(test["input"], **options)
        return
    assert encode(test["input"], **options) == test["expected"]


@pytest.mark.parametrize("test", _fixture_cases("decode"))
def test_decode_fixture(test: Any) -> None:
    _skip_if_absent(test)
    options = _options(test, DECODE_OPTIONS)
    if test.get("shouldError"):
        with pytest.raises(ToonDecodeError) as caught:
            decode(test["input"], **options)
        error = caught.value
        assert error.line is not None
        assert str(error).startswith(f"line {error.line}: ")
        return
    result = decode(test["input"], **options)
    assert json_equal(result, test["expected"]), (result, test["expected"])


# --- round trip over arbitrary JSON data --------------------------------------------

TRICKY_STRINGS = [
    "",
    " ",
    "  ",
    "true",
    "false",
    "null",
    "True",
    "42",
    "-3.14",
    "1e-7",
    "1E+05",
    "05",
    "-05",
    "+1",
    "-0",
    "0.0",
    ".5",
    "1.",
    "1_000",
    "0x10",
    "Infinity",
    "-Infinity",
    "NaN",
    "-",
    "- item",
    "-x",
    "#",
    "#x",
    "a # b",
    "[1]: x",
    "[]",
    "{a}",
    "a,b",
    "a|b",
    "a\tb",
    "a:b",
    "a: b",
    '"',
    'say "hi"',
    "\\",
    "C:\\path",
    "\n",
    "line1\nline2",
    "\r",
    "x\ry",
    " lead",
    "trail ",
    "\u00a0x\u00a0",
    "\u2028",
    "\x85",
    "\x7f",
    "\x00",
    "\x1f",
    "é",
    "你好",
    "🚀 launch",
    "١٢٣",
    "²",
    "key[2]",
    "a{b}",
    "u\u0301",
    "null ",
    "items[2]{a,b}:",
]
TRICKY_KEYS = TRICKY_STRINGS + ["id", "user.name", "_x", "a-b", "__proto__", "2key"]
FLOATS = [
    0.0,
    -0.0,
    1.0,
    -1.5,
    1e-7,
    1.5e-10,
    5e-324,
    1e16,
    1e21,
    1e23,
    1e300,
    1.7976931348623157e308,
    0.1 + 0.2,
    1 / 3,
]
INTS = [0, -1, 2**53 + 1, -(2**63), 10**30]

strings = st.one_of(st.sampled_from(TRICKY_STRINGS), st.text())
keys = st.one_of(st.sampled_from(TRICKY_KEYS), st.text())
primitives = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(FLOATS),
    strings,
)


def _tables(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Lists of dicts with one key set (the tabular form, nested groups included) and
    dicts of such dicts (the keyed form): a random strategy seldom makes them."""
    cell = st.one_of(primitives, st.dictionaries(keys, primitives, min_size=1, max_size=2))

    @st.composite
    def table(draw: st.DrawFn) -> Any:
        names = draw(st.lists(keys, min_size=1, max_size=4, unique=True))
        rows = draw(
            st.lists(st.fixed_dictionaries({n: cell for n in names}), min_size=1, max_size=5)
        )
        if draw(st.booleans()):
            return rows
        return dict(
            zip(draw(st.lists(keys, min_size=len(rows), max_size=len(rows), unique=True)), rows)
        )

    return st.one_of(
        table(), st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
    )


json_values = st.recursive(primitives, _tables, max_leaves=25)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, delimiter=st.sampled_from([",", "\t", "|"]), indent=st.integers(1, 4))
@example(
    value={"products": [{"name": "Laptop", "price": 999}, {"name": "Mouse", "price": 25}]},
    delimiter=",",
    indent=2,
)
@example(value=[[], [[]], {}, [{}], {"a": {}}], delimiter="|", indent=1)
@example(value={"a": {"x": {"p": 1}}, "b": {"x": {"p": 2}}}, delimiter="\t", indent=3)
def test_round_trip(value: Any, delimiter: str, indent: int) -> None:
    text = encode(value, delimiter=delimiter, indent=indent)
    assert not text.endswith("\n")
    assert all(line == line.rstrip(" ") for line in text.split("\n"))
    back = decode(text, indent=indent)
    # tabular rows take the first row's key order, so key order is not compared
    assert json_equal(back, value, ordered=False), (value, text, back)
    assert encode(back, delimiter=delimiter, indent=indent) == text or not _same_key_orders(value)


def _same_key_orders(value: Any) -> bool:
    """True when every list of dicts in ``value`` keeps one key order, so that
    re-encoding the decoded value must give the same text."""
    if isinstance(value, dict):
        return all(_same_key_orders(v) for v in value.values())
    if isinstance(value, list):
        dicts = [v for v in value if isinstance(v, dict)]
        if len({tuple(d) for d in dicts}) > 1:
            return False
        return all(_same_key_orders(v) for v in value)
    return True


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_round_trip_non_strict_decoding(value: Any) -> None:
    assert json_equal(decode(encode(value), strict=False), value, ordered=False)


@pytest.mark.parametrize("value", TRICKY_STRINGS + FLOATS + INTS)
def test_tricky_primitives_round_trip_everywhere(value: Any) -> None:
    """Each tricky value as a root, a field, an inline cell, a row cell, a list item and
    a key."""
    docs = [
        value,
        {"k": value},
        {"k": [value, value]},
        {"t": [{"a": value, "b": 1}, {"a": 1, "b": value}]},
        {"t": [{"a": value}, {"a": "plain"}], "k": {"x": {"a": value}, "y": {"a": "plain"}}},
        {"l": [value, {"x": value}]},
    ]
    if isinstance(value, str):
        docs.append({value: value, "z": {value: [value]}})
    for delimiter in (",", "\t", "|"):
        for doc in docs:
            assert json_equal(decode(encode(doc, delimiter=delimiter)), doc), (doc, delimiter)


# --- hand-written cases --------------------------------------------------------------

PRODUCTS = {"products": [{"name": "Laptop", "price": 999}, {"name": "Mouse", "price": 25}]}


def test_uniform_records_take_the_tabular_form() -> None:
    text = encode(PRODUCTS)
    assert text == "products[2]{name,price}:\n  Laptop,999\n  Mouse,25"
    assert decode(text) == PRODUCTS


def test_tabular_form_with_options() -> None:
    text = encode(PRODUCTS, delimiter="|", indent=4)
    assert text == "products[2|]{name|price}:\n    Laptop|999\n    Mouse|25"
    assert decode(text, indent=4) == PRODUCTS


def test_tabular_rows_are_indented_under_their_header() -> None:
    doc = {"shop": {"products": PRODUCTS["products"], "open": True}}
    assert encode(doc) == (
        "shop:\n  products[2]{name,price}:\n    Laptop,999\n    Mouse,25\n  open: true"
    )
    assert decode(encode(doc)) == doc


def test_records_with_different_keys_fall_back_to_the_list_form() -> None:
    doc = {"products": [{"name": "Laptop", "price": 999}, {"name": "Mouse"}]}
    text = encode(doc)
    assert text == "products[2]:\n  - name: Laptop\n    price: 999\n  - name: Mouse"
    assert decode(text) == doc


def test_records_holding_arrays_fall_back_to_the_list_form() -> None:
    doc = {"products": [{"name": "Laptop", "tags": ["a"]}, {"name": "Mouse", "tags": []}]}
    text = encode(doc)
    assert "{" not in text
    assert text.splitlines()[0] == "products[2]:"
    assert decode(text) == doc


def test_records_mixed_with_other_values_fall_back_to_the_list_form() -> None:
    doc = {"items": [{"a": 1}, 2, [3]]}
    assert encode(doc) == "items[3]:\n  - a: 1\n  - 2\n  - [1]: 3"
    assert decode(encode(doc)) == doc


def test_nested_uniform_objects_take_field_groups_and_keyed_form() -> None:
    orders = [
        {"id": 1, "customer": {"name": "Ada", "country": "DK"}},
        {"id": 2, "customer": {"name": "Bob", "country": "UK"}},
    ]
    assert encode({"orders": orders}) == (
        "orders[2]{id,customer{name,country}}:\n  1,Ada,DK\n  2,Bob,UK"
    )
    servers = {"alpha": {"port": 1}, "beta": {"port": 2}}
    assert encode({"servers": servers}) == "servers[2:]{port}:\n  alpha: 1\n  beta: 2"
    assert decode(encode({"orders": orders, "servers": servers})) == {
        "orders": orders,
        "servers": servers,
    }


def test_large_table_round_trips() -> None:
    rows = [
        {
            "id": i,
            "name": f"user {i}",
            "score": i / 7,
            "ok": i % 3 == 0,
            "note": None if i % 5 else "x,y",
        }
        for i in range(500)
    ]
    for delimiter in (",", "\t", "|"):
        text = encode(rows, delimiter=delimiter)
        assert text.count("\n") == 500
        assert decode(text) == rows


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-7, "0.0000001"),
        (-1.5e-10, "-0.00000000015"),
        (-0.0, "0"),
        (2.0, "2"),
        (1e21, "1000000000000000000000"),
        (1e23, "99999999999999991611392"),
        (2**70, "1180591620717411303424"),
        (0.1, "0.1"),
        (float("nan"), "null"),
        (float("-inf"), "null"),
        (True, "true"),
    ],
)
def test_canonical_numbers(value: Any, text: str) -> None:
    assert encode(value) == text
    if isinstance(value, float) and math.isfinite(value):
        assert decode(text) == value


def test_decoded_number_types() -> None:
    assert decode("a[6]: 1,-0,1.5,1e3,-0.0,99999999999999999999") == {
        "a": [1, 0, 1.5, 1000.0, 0.0, 99999999999999999999]
    }
    values = decode("a[4]: 05,1e999,+1,.5")["a"]
    assert values == ["05", "1e999", "+1", ".5"]
    assert [type(v) for v in decode("a[3]: 1,1.5,true")["a"]] == [int, float, bool]


def test_decoded_numbers_in_table_columns() -> None:
    text = "t[4]{i,f,e,s}:\n  1,1.5,1e2,a\n  -0,-0.0,-0e1,true\n  3,2,2E-1,null\n  4,0.25,5,05"
    rows = decode(text)["t"]
    assert rows == [
        {"i": 1, "f": 1.5, "e": 100.0, "s": "a"},
        {"i": 0, "f": 0.0, "e": 0.0, "s": True},
        {"i": 3, "f": 2, "e": 0.2, "s": None},
        {"i": 4, "f": 0.25, "e": 5, "s": "05"},
    ]
    for row in rows:  # -0 decodes to 0, not -0.0
        assert math.copysign(1.0, row["f"]) == math.copysign(1.0, row["e"]) == 1.0
    assert [type(r["f"]) for r in rows] == [float, float, int, float]
    assert [type(r["i"]) for r in rows] == [int] * 4


def test_numbers_beyond_the_host_range_stay_strings() -> None:
    huge = "9" * 5000  # more digits than int() converts by default
    assert decode(f"a: {huge}\nb: -1e999") == {"a": huge, "b": "-1e999"}
    assert decode(f"t[1]{{a}}:\n  {huge}") == {"t": [{"a": huge}]}


def test_python_values_are_normalized() -> None:
    class Colour(enum.Enum):
        RED = "red"

    class Size(enum.IntEnum):
        BIG = 3

    doc = OrderedDict(
        [
            ("t", (1, 2)),
            ("d", decimal.Decimal("1.25")),
            ("when", datetime.date(2024, 1, 2)),
            ("c", Colour.RED),
            ("s", Size.BIG),
            (1, "int key"),
        ]
    )
    assert decode(encode(doc)) == {
        "t": [1, 2],
        "d": 1.25,
        "when": "2024-01-02",
        "c": "red",
        "s": 3,
        "1": "int key",
    }


@pytest.mark.parametrize("value", [{1, 2}, object(), {"a": b"bytes"}, {(1, 2): 3}])
def test_values_without_a_json_form_raise_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        encode(value)


def test_reference_cycles_and_lone_surrogates_raise_value_error() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError):
        encode(cycle)
    with pytest.raises(ValueError, match="surrogate"):
        encode({"k": "a\ud800b"})


@pytest.mark.parametrize(
    "options", [{"delimiter": ";"}, {"delimiter": ""}, {"indent": 0}, {"indent": 1.5}]
)
def test_invalid_encode_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        encode({"a": 1}, **options)


def test_decode_error_is_a_toondb_error_with_the_line_number() -> None:
    with pytest.raises(ToonDecodeError) as caught:
        decode("a: 1\nitems[3]: x,y\nb: 2")
    error = caught.value
    assert isinstance(error, ToonDBError)
    assert isinstance(error, ValueError)
    assert error.line == 2
    assert str(error).startswith("line 2: ")
    assert "3" in str(error) and "2" in str(error)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('a:\n  b: "unterminated', 2),
        ("rows[2]{a,b}:\n  1,2\n  3", 3),
        ("a: 1\n\n\n   b: 2", 4),
        ("x:\n  y: 1\n  y: 2", 3),
    ],
)
def test_decode_errors_name_the_offending_line(text: str, line: int) -> None:
    with pytest.raises(ToonDecodeError) as caught:
        decode(text)
    assert caught.value.line == line


def test_non_strict_decoding_tolerates_what_strict_rejects() -> None:
    text = "items[3]: a,b\nname: x\nname: y"
    with pytest.raises(ToonDecodeError):
        decode(text)
    assert decode(text, strict=False) == {"items": ["a", "b"], "name": "y"}


def test_comment_lines_are_dropped_in_tab_delimited_documents() -> None:
    text = '# rows follow\nitems[2\t]{a\tb}:\n  1\tx y\n  # note\n  2\t"#z"'
    assert decode(text) == {"items": [{"a": 1, "b": "x y"}, {"a": 2, "b": "#z"}]}
    with pytest.raises(ToonDecodeError) as caught:
        decode("a: 1\n\t# a tab before the hash: not a comment")
    assert caught.value.line == 2


def test_strict_indentation_is_checked_in_documents_with_tabs() -> None:
    text = 't: "a\tb"\na:\n   b: 1'
    with pytest.raises(ToonDecodeError) as caught:
        decode(text)
    assert caught.value.line == 3
    assert decode(text, strict=False) == {"t": "a\tb", "a": {"b": 1}}


def test_non_strict_decoding_drops_stray_fields_but_not_stray_values() -> None:
    assert decode("a: 1\n    b: 2\nc: 3", strict=False) == {"a": 1, "c": 3}
    with pytest.raises(ToonDecodeError) as caught:
        decode("a: 1\n  hello", strict=False)
    assert caught.value.line == 2


def test_decode_accepts_bytes_and_crlf() -> None:
    assert decode("a: é\r\nb[2]: 1,2\r\n".encode()) == {"a": "é", "b": [1, 2]}


def test_empty_document_and_empty_containers() -> None:
    assert encode({}) == ""
    assert decode("") == {}
    assert encode([]) == "[]"
    assert decode("[]") == []
    assert encode({"a": [], "b": {}}) == "a: []\nb:"
    assert decode("a: []\nb:") == {"a": [], "b": {}}
