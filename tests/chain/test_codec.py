"""Canonical msgpack: round trips, byte stability, and strict rejection of everything else."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import codec
from chain.errors import DecodeError

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.text(max_size=40), st.binary(max_size=40),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6), max_leaves=30)


@given(values)
@settings(max_examples=300, deadline=None)
def test_round_trip_and_byte_stability(value: Any) -> None:
    data = codec.encode(value)
    decoded = codec.decode(data)
    assert decoded == value
    assert codec.encode(decoded) == data
    assert codec.is_canonical(data, decoded)


@given(st.binary(max_size=64))
@settings(max_examples=500, deadline=None)
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        value = codec.decode(data)
    except DecodeError:
        return
    assert codec.encode(value) == data


@given(values, st.data())
@settings(max_examples=200, deadline=None)
def test_any_single_byte_change_is_decode_error_or_canonical(value: Any, data: st.DataObject) -> None:
    encoded = bytearray(codec.encode(value))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    try:
        decoded = codec.decode(bytes(encoded))
    except DecodeError:
        return
    assert codec.encode(decoded) == bytes(encoded)


@pytest.mark.parametrize("value, expected", [
    (0, "00"), (127, "7f"), (128, "cc80"), (255, "ccff"), (256, "cd0100"), (65536, "ce00010000"),
    (2**32, "cf0000000100000000"), (-1, "ff"), (-32, "e0"), (-33, "d0df"), (-129, "d1ff7f"),
    ("", "a0"), ("a" * 32, "d920" + "61" * 32), (b"", "c400"), (b"\x01", "c40101"),
    ([], "90"), ([1] * 16, "dc0010" + "01" * 16), (True, "c3"), (False, "c2"), (None, "c0"),
    (("t", 1), "92a17401"),
])
def test_encodings_are_the_shortest_form(value: Any, expected: str) -> None:
    assert codec.encode(value).hex() == expected


@pytest.mark.parametrize("hex_data", [
    "cc05",            # 5 as uint8 (canonical: positive fixint)
    "cd0005",          # 5 as uint16
    "d001",            # 1 as int8
    "d0ff",            # -1 as int8 (canonical: negative fixint)
    "d10001",          # 1 as int16
    "d90161",          # "a" as str8 (canonical: fixstr)
    "da000161",        # "a" as str16
    "c5000101",        # b"\x01" as bin16
    "dc000101",        # [1] as array16
    "dd0000000101",    # [1] as array32
])
def test_non_canonical_encodings_are_rejected(hex_data: str) -> None:
    data = bytes.fromhex(hex_data)
    with pytest.raises(DecodeError) as caught:
        codec.decode(data)
    assert caught.value.code == "not_canonical"
    codec.decode(data, canonical=False)  # well-formed, only not canonical


@pytest.mark.parametrize("hex_data, why", [
    ("81a161a162", "map"),
    ("80", "empty map"),
    ("cb3ff0000000000000", "float64"),
    ("ca3f800000", "float32"),
    ("91cb3ff0000000000000", "float inside an array"),
    ("d40100", "fixext"),
    ("c70101ff", "ext8"),
    ("d6ff00000000", "timestamp ext"),
    ("0000", "trailing bytes"),
    ("92", "truncated array"),
    ("d9", "truncated str8"),
    ("c1", "never-used byte"),
    ("a2c328", "invalid UTF-8"),
    ("a3eda080", "UTF-8 surrogate"),
    ("", "empty input"),
    ("91" * 3000 + "00", "nesting too deep"),
])
def test_malformed_inputs_raise_decode_error(hex_data: str, why: str) -> None:
    with pytest.raises(DecodeError):
        codec.decode(bytes.fromhex(hex_data))


def test_non_bytes_input_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        codec.decode("00")  # type: ignore[arg-type]
    assert codec.decode(bytearray(b"\x01")) == 1
    assert codec.decode(memoryview(b"\x92\x01\x02")) == [1, 2]


def test_size_limit() -> None:
    data = codec.encode(b"x" * 100)
    assert codec.decode(data, max_bytes=len(data)) == b"x" * 100
    with pytest.raises(DecodeError) as caught:
        codec.decode(data, max_bytes=len(data) - 1)
    assert caught.value.code == "too_large"


@pytest.mark.parametrize("value", [1.5, [1, [2.0]], {"a": 1}, {1, 2}, 2**64, -(2**63) - 1, object(), [b"x", {}]])
def test_encode_refuses_values_without_canonical_form(value: Any) -> None:
    with pytest.raises(DecodeError):
        codec.encode(value)


def test_encode_accepts_tuples_and_byte_like() -> None:
    assert codec.encode((1, (2, b"x"))) == codec.encode([1, [2, b"x"]])
    assert codec.encode(bytearray(b"ab")) == codec.encode(b"ab")
    assert codec.encode(2**64 - 1) == bytes.fromhex("cf" + "ff" * 8)
    assert codec.encode(-(2**63)) == bytes.fromhex("d3" + "80" + "00" * 7)


def test_maps_only_where_allowed() -> None:
    data = msgpack.packb({"a": 1, "b": [1, 2]}, use_bin_type=True)
    assert codec.decode(data, allow_maps=True) == {"a": 1, "b": [1, 2]}
    with pytest.raises(DecodeError):
        codec.decode(data)
    duplicate_keys = bytes.fromhex("82a16101a16102")  # {"a": 1, "a": 2}
    with pytest.raises(DecodeError):
        codec.decode(duplicate_keys, allow_maps=True)
    with pytest.raises(DecodeError):
        codec.decode(bytes.fromhex("81cb3ff000000000000001"), allow_maps=True)  # float key
    assert codec.decode(codec.encode_with_maps({"k": [1]}), allow_maps=True) == {"k": [1]}


def test_is_canonical() -> None:
    assert codec.is_canonical(b"\x05", 5)
    assert not codec.is_canonical(b"\xcc\x05", 5)
    assert not codec.is_canonical(b"\x05", 1.5)


def test_decode_limits_refuse_bombs_without_building_them() -> None:
    # 1 MiB of nested empty arrays: stopped after `containers` arrays, whatever the header claims
    nested = b"\xdc\x01\x00" + (b"\xdc\x01\x00" + b"\x90" * 256) * 256
    with pytest.raises(DecodeError) as caught:
        codec.decode(nested, limits=codec.Limits(containers=1000))
    assert caught.value.code == "too_large"
    with pytest.raises(DecodeError):
        codec.decode(b"\x91" * 17 + b"\x90")                       # nested 18 deep > 16
    assert codec.decode(b"\x91" * 15 + b"\x90") is not None          # 16 deep is fine
    with pytest.raises(DecodeError):
        codec.decode(codec.encode(["x" * 70_000]), max_bytes=1 << 20)  # a string past 65,536 bytes
    with pytest.raises(DecodeError):
        codec.decode(codec.encode([[1], [2]]), limits=codec.Limits(array=5, containers=2))
    with pytest.raises(DecodeError):
        codec.decode(codec.encode([1, 2, 3]), limits=codec.Limits(array=2))
    assert codec.decode(codec.encode([b"a", b"b"]), limits=codec.Limits(containers=1, depth=1)) == [b"a", b"b"]


def test_array_items_splits_without_decoding_and_checks_the_frame() -> None:
    items = [codec.encode([1, b"x" * 300]), codec.encode("s"), codec.encode([])]
    data = codec.encode([codec.decode(item) for item in items])
    assert codec.array_items(data, max_items=10, max_bytes=1 << 20) == items
    for bad in (data + b"\x00", data[:-1], b"\xdc\x00\x01\x01", b"\xc1"):
        with pytest.raises(DecodeError):
            codec.array_items(bad, max_items=10, max_bytes=1 << 20)
    with pytest.raises(DecodeError):
        codec.array_items(data, max_items=2, max_bytes=1 << 20)


@pytest.mark.parametrize("pairs", [
    [],
    [[b"k", b"v"], [b"S/b/c1/" + b"\xff" * 32, None], [b"", b""]],
    [[b"k" * 300, b"v" * 70_000]],
    [[bytearray(b"k"), b"v"]],            # byte-like keys take the general path, to the same bytes
    [[b"k", memoryview(b"v")]],
    [(b"a", None), (b"b", b"")],          # tuples, as sorted(changes.items()) gives them
])
def test_encode_pairs_gives_the_bytes_of_encode(pairs: list[list[Any]]) -> None:
    """The app hash encodes each block's state changes with ``encode_pairs``: byte for byte ``encode``."""
    assert codec.encode_pairs(pairs) == codec.encode(pairs)


@pytest.mark.parametrize("pairs", [[[b"k", 1.5]], [[b"k", {"a": 1}]], [[b"k", [2**64]]]])
def test_encode_pairs_refuses_what_encode_refuses(pairs: list[list[Any]]) -> None:
    with pytest.raises(DecodeError):
        codec.encode_pairs(pairs)
