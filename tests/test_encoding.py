"""RFC 8785 canonical encoding: the RFC's own vectors, rejections, properties."""

from __future__ import annotations

import json
import math
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import (
    MAX_SAFE_INTEGER,
    _loads_exact,
    canonical,
    canonical_exact,
    format_number,
    loads,
    loads_trusted,
)
from ledger.errors import MalformedRecord

VECTORS = json.loads((Path(__file__).parents[1] / "specs/vectors/jcs.json").read_text())


@pytest.mark.parametrize("case", VECTORS["numbers"], ids=lambda c: c["desc"])
def test_rfc8785_appendix_b_numbers(case: dict[str, str]) -> None:
    value = struct.unpack(">d", bytes.fromhex(case["ieee754"]))[0]
    assert format_number(value) == case["expected"]
    assert canonical([value]) == f"[{case['expected']}]".encode()


@pytest.mark.parametrize("case", VECTORS["objects"], ids=lambda c: c["desc"])
def test_rfc8785_objects(case: dict[str, str]) -> None:
    assert canonical(json.loads(case["input_json"])) == case["expected"].encode("utf-8")


@pytest.mark.parametrize("case", VECTORS["rejected"], ids=lambda c: c["desc"])
def test_unrepresentable_values_are_refused_naming_the_field(case: dict[str, str]) -> None:
    value = json.loads(case["input_json"]) if "input_json" in case else eval(case["python"])
    with pytest.raises(MalformedRecord) as info:
        canonical(value)
    assert info.value.field == case["field"]
    assert info.value.rule == case["rule"]


def test_safe_integer_bounds_are_inclusive() -> None:
    assert canonical(MAX_SAFE_INTEGER) == b"9007199254740991"
    assert canonical(-MAX_SAFE_INTEGER) == b"-9007199254740991"


def test_booleans_are_not_numbers() -> None:
    assert canonical({"a": True, "b": 1}) == b'{"a":true,"b":1}'


def test_large_integers_read_as_doubles_so_re_encoding_is_stable() -> None:
    encoded = canonical(1.3490997336069144e16)
    assert encoded == b"13490997336069144"
    assert canonical(loads(encoded)) == encoded


def test_strict_loads_refuses_duplicate_members_and_nan() -> None:
    with pytest.raises(MalformedRecord) as info:
        loads(b'{"amount": 1, "amount": 2}')
    assert info.value.rule == "duplicate_key"
    with pytest.raises(MalformedRecord):
        loads(b"[NaN]")
    with pytest.raises(MalformedRecord) as info:
        loads(b"{not json")
    assert info.value.rule == "json"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, int | float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


@given(json_values)
def test_canonical_round_trips_and_is_a_fixed_point(value: Any) -> None:
    encoded = canonical(value)
    parsed = loads(encoded)
    assert _same(value, parsed)
    assert canonical(parsed) == encoded


@given(st.dictionaries(st.text(max_size=6), st.integers(0, 10), max_size=8))
def test_member_order_does_not_change_the_bytes(value: dict[str, int]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert canonical(value) == canonical(reordered)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip_exactly(value: float) -> None:
    assert float(format_number(value)) == value


class _Key(str):
    """A str subclass, which orjson refuses as a key and the standard encoder takes."""


# Any code point, lone surrogates included: those must be refused the same way.
_any_text = st.text(st.characters(exclude_categories=()), max_size=6)
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | _any_text,
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
    | st.dictionaries(_any_text | st.builds(_Key, _any_text), children, max_size=4),
    max_leaves=20,
)


def _encoded(encode: Any, value: Any) -> Any:
    try:
        return encode(value)
    except MalformedRecord as exc:
        return ("refused", exc.field, exc.rule)


@given(plain_values)
def test_the_fast_encoder_gives_the_reference_writers_bytes(value: Any) -> None:
    """canonical() hands plain values (no floats, safe integers) to orjson; on every
    such value, lone surrogates and str-subclass keys included, it gives the bytes
    (or the error) of the module's own RFC 8785 writer."""
    assert _encoded(canonical, value) == _encoded(canonical_exact, value)


def test_values_orjson_refuses_take_the_standard_encoder() -> None:
    deep: Any = "bottom"
    for _ in range(300):  # deeper than orjson nests
        deep = [deep]
    assert canonical(deep) == canonical_exact(deep) == b"[" * 300 + b'"bottom"' + b"]" * 300
    assert canonical({_Key("b"): 1, "a": 2}) == b'{"a":2,"b":1}'
    with pytest.raises(MalformedRecord) as info:
        canonical({"a": "\ud800"})
    assert info.value.rule == "utf8"
    # 2**53 as a double prints as 16 digits; read back it is a double again, as
    # loads reads it, so that it re-encodes (an int there is out of the safe range).
    assert canonical(2.0**53) == b"9007199254740992"
    assert loads_trusted(b"[9007199254740992]") == loads(b"[9007199254740992]") == [2.0**53]
    assert type(loads_trusted(b"[9007199254740992]")[0]) is float


def test_encoded_values_hold_no_more_memory_than_their_length() -> None:
    """Nodes cache encoded state values by the hundred thousand: each must take
    about its own length, not the encoder's working buffer (4 KiB with orjson)."""
    values = [{"key_id": f"{i:032x}", "kind": "member", "since": i} for i in range(2_000)]
    values += list(range(2_000)) + [f"member-{i}" for i in range(2_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [canonical(v) for v in values]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    payload = sum(len(b) for b in kept)
    # Object headers (33 bytes each) and the list itself come on top of the
    # bytes; 4 KiB buffers would make this about 60 times the payload.
    assert held < payload + 100 * len(kept), (held, payload)


@given(json_values)
def test_trusted_loads_reads_canonical_bytes_as_strict_loads_does(value: Any) -> None:
    encoded = canonical(value)
    assert _same(loads_trusted(encoded), loads(encoded))
    assert canonical(loads_trusted(encoded)) == encoded


# JSON texts as a peer might send them: objects as member lists that may repeat a
# name (also spelt with escapes), strings with colons raw or escaped, integers
# past the safe range, floats, white space between the tokens.
_names = st.sampled_from(["a", "b", "a:b", ":", "\\u0061", "\\u003a", "\\u003A", "x\\\"y"])
_scalars = (st.sampled_from(["null", "true", "false", "-0", "0.0", "1e400", "-1.5e-7"])
            | st.integers(-(2**70), 2**70).map(str)
            | st.floats(allow_nan=False, allow_infinity=False).map(repr)
            | _names.map(lambda n: f'"{n}"') | st.text(max_size=6).map(json.dumps))
_space = st.sampled_from(["", " ", "\n"])


def _text(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    members = st.lists(st.tuples(_names, children, _space), max_size=4)
    return (st.lists(children, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
            | members.map(lambda ms: "{" + ",".join(f'"{n}"{w}:{w}{v}' for n, v, w in ms)
                          + "}"))


json_texts = st.recursive(_scalars, _text, max_leaves=20)


def _outcome(parse: Any, text: bytes | str) -> tuple[Any, ...]:
    try:
        value = parse(text)
    except MalformedRecord as exc:
        return ("refused", exc.rule, exc.field, exc.message)
    return ("parsed", repr(value))


@given(json_texts, st.booleans())
def test_strict_loads_reads_any_text_as_the_exact_parser_does(text: str, as_bytes: bool) -> None:
    """The orjson path with its colon count accepts, refuses and reads numbers
    exactly as the standard library's parser with a hook on every object."""
    data: bytes | str = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert _outcome(loads, data) == _outcome(_loads_exact, data)


@pytest.mark.parametrize("text", [
    b'{"a":1,"a":2}', b'{"a":"x:y","a":"z"}', b'{"a":1,"\\u0061":2}', b'{"a":"\\u003a","a":1}',
    b'{"k":{"a":1,"b":{"a":1,"a":1}}}', b'[{"a":1},{"a":1}]', b'{"x:y":1}', b'"\\u003A"',
    b"[NaN]", b"[-Infinity]", b"[123456789012345678901234567890]", b"[-9007199254740993]",
    b"[9007199254740991]", b"[1e400]", b'["\\ud800"]', b"\xef\xbb\xbf{}", "\ufeff{}",
    b"[" * 300 + b"]" * 300, b"[" * 2000 + b"]" * 2000, '{"a": "\ud800"}',
    b'  {"a" : 1 }  ', b'{"a":1}x', b"", "{}".encode("utf-16"),
])
def test_strict_loads_edge_cases_match_the_exact_parser(text: bytes | str) -> None:
    assert _outcome(loads, text) == _outcome(_loads_exact, text)


def test_strict_loads_refuses_a_duplicate_hidden_behind_colons_in_strings() -> None:
    # As many colons in the dropped member's value as the kept one lacks would
    # balance a naive count; the escape and the nesting are refused too.
    for text in (b'{"a":"::","a":""}', b'{"a":"","a":"::"}', b'{"a":{"b":1},"a":1}',
                 b'{"a":1,"\\u0061":"\\u003a"}'):
        with pytest.raises(MalformedRecord) as info:
            loads(text)
        assert info.value.rule == "duplicate_key"
