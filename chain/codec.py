"""Canonical msgpack codec.

Signed and hashed data uses msgpack arrays only (no maps, no floats, no extension types), each
value in its shortest form (docs/PROTOCOL.md §1). ``encode`` refuses anything else; ``decode`` is
strict: it rejects trailing bytes, maps, floats, extension types, oversized inputs and (by
default) any encoding that is not byte-for-byte the canonical one, always with ``DecodeError`` —
``msgpack`` exceptions never escape.

Every decode runs under explicit ``Limits`` (array, map, string and byte-string lengths, nesting
depth and the number of arrays and maps in one value), matched to the protocol's real maxima
(docs/PROTOCOL.md §10) and tightened by callers that know their shape (a transaction batch is one
array of byte strings). The container count is what bounds memory: an empty array is one input
byte but a 56-byte Python list, so 16 MiB of nested empty arrays would become gigabytes; with at
most ``containers`` arrays the decoder stops after that many, whatever the input says.
``array_items`` splits a large top-level array into its items' raw bytes without building them,
so a 64 MiB block range is decoded one block at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from chain.errors import DecodeError

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_INT = 2**64 - 1
MIN_INT = -(2**63)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one decoded value; the defaults cover every structure of the protocol.

    array: items of one array (a block holds ≤ 20,000 transactions; the largest array of all);
    map: entries of one map (maps only where ``allow_maps``); string: bytes of one string (strings
    live in transactions, ≤ 65,536 bytes); binary: bytes of one byte string (None: the input size;
    a block inside a proposal is the largest); depth: nesting of arrays and maps (the deepest
    protocol structure, a campaign record, nests 5); containers: arrays and maps in one value
    (a full block with its certificate has ≈ 1,100).
    """

    array: int = 65_536
    map: int = 65_536
    string: int = 65_536
    binary: int | None = None
    depth: int = 16
    containers: int = 65_536


DEFAULT_LIMITS = Limits()

_packb = msgpack.packb
_unpackb = msgpack.unpackb


def encode(obj: Any) -> bytes:
    """Encode ``obj`` (nested lists/tuples of int, str, bytes, bool, None) canonically.

    Floats, maps, sets and any other type raise ``DecodeError`` (the value has no canonical
    encoding); so do integers outside [-2**63, 2**64 - 1].
    """
    _check_encodable(obj)
    try:
        return _packb(obj, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:  # pragma: no cover - _check_encodable caught it
        raise DecodeError(f"cannot encode value: {exc}") from exc


def encode_pairs(pairs: Sequence[Sequence[bytes | None]]) -> bytes:
    """``encode`` of ``[[key, value], ...]`` (state changes: byte-string keys, values bytes or None;
    pairs as lists or tuples), the same bytes without ``encode``'s walk over every item."""
    for key, value in pairs:
        if type(key) is not bytes or (value is not None and type(value) is not bytes):
            return encode(pairs)   # anything else takes the general path (and its refusals)
    return _packb(pairs, use_bin_type=True)  # type: ignore[no-any-return]


def encode_with_maps(obj: Any) -> bytes:
    """Encode data that may contain maps (never for signed or hashed data)."""
    try:
        return _packb(obj, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise DecodeError(f"cannot encode value: {exc}") from exc


def _check_encodable(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is list or kind is tuple:
            stack.extend(item)
        elif kind is str or kind is bytes or kind is bool or item is None:
            continue
        elif isinstance(item, int):  # int and its subclasses (IntEnum) encode as plain integers
            if not MIN_INT <= item <= MAX_INT:
                raise DecodeError(f"integer {item} is outside the msgpack range")
        elif isinstance(item, (str, bytes, bytearray, memoryview)):
            continue
        else:
            raise DecodeError(f"{kind.__name__} values have no canonical encoding")


def _reject_map(pairs: Any) -> Any:
    raise DecodeError("maps are not allowed in canonical encoding")


class _ContainerCount:
    """``list_hook``/``object_hook`` of one decode: refuses the value past ``limit`` arrays and maps."""

    __slots__ = ("left",)

    def __init__(self, limit: int) -> None:
        self.left = limit

    def array(self, value: list[Any]) -> list[Any]:
        self.left -= 1
        if self.left < 0:
            raise DecodeError("too many arrays in one value", "too_large")
        return value

    def map(self, value: dict[Any, Any]) -> dict[Any, Any]:
        self.left -= 1
        if self.left < 0:
            raise DecodeError("too many maps in one value", "too_large")
        return value


def decode(data: bytes | bytearray | memoryview, *, max_bytes: int = MAX_MESSAGE_BYTES, allow_maps: bool = False,
           canonical: bool = True, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode one msgpack value; lists come back as lists.

    With ``canonical`` (the default) the bytes must be exactly ``encode(value)`` — the shortest
    form of every integer, string, byte string and array header — or ``DecodeError`` (code
    ``not_canonical``) is raised. ``limits`` bounds lengths, depth and the number of containers
    (``DecodeError`` with code ``too_large`` past a count, ``malformed`` past a length).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("expected bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(f"encoding of {len(data)} bytes exceeds the limit of {max_bytes}", "too_large")
    size = len(data)
    lengths: dict[str, Any] = {"max_str_len": min(limits.string, size), "max_bin_len": min(limits.binary or size, size),
                               "max_array_len": min(limits.array, size), "max_ext_len": 0}
    if size > limits.containers:   # the input could hold more arrays than allowed: count them as they are built
        count = _ContainerCount(limits.containers)
        lengths["list_hook"] = count.array
        if allow_maps:
            lengths["object_hook"] = count.map
    try:
        if allow_maps:
            value = _unpackb(data, use_list=True, raw=False, strict_map_key=True,
                             max_map_len=min(limits.map, size), **lengths)
        else:
            value = _unpackb(data, use_list=True, raw=False, object_pairs_hook=_reject_map, max_map_len=0, **lengths)
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the encoded value") from exc
    except Exception as exc:  # ValueError, TypeError, UnicodeDecodeError, StackError, OutOfData, ...
        raise DecodeError(f"malformed msgpack: {exc.__class__.__name__}") from exc
    _check_decoded(value, limits.depth)
    if canonical:
        try:
            again = _packb(value, use_bin_type=True)
        except Exception as exc:  # pragma: no cover - every decoded value re-encodes
            raise DecodeError(f"malformed msgpack: {exc.__class__.__name__}") from exc
        if again != data:
            raise DecodeError("value is not in canonical encoding", "not_canonical")
    return value


def decode_stored(data: bytes) -> Any:
    """Unpack bytes this node itself stored in canonical form (no shape walk, no canonical check).

    For re-checking stored blocks before they are served: the checks that matter there compare
    hashes. Anything that does not unpack raises ``DecodeError``.
    """
    try:
        return _unpackb(data, use_list=True, raw=False, strict_map_key=True)
    except Exception as exc:  # ValueError, TypeError, UnicodeDecodeError, StackError, OutOfData, ExtraData
        raise DecodeError(f"malformed msgpack: {exc.__class__.__name__}") from exc


def _check_decoded(value: Any, max_depth: int) -> None:
    """Only canonical types, and arrays and maps nested at most ``max_depth`` deep (one level at a time)."""
    if type(value) is not list:
        if type(value) in (int, str, bytes, bool) or value is None:
            return
    level = [value]
    depth = 0
    while level:
        depth += 1
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is list:
                if depth > max_depth:
                    raise DecodeError(f"arrays and maps nest deeper than {max_depth}")
                below.extend(item)
            elif kind is dict:
                if depth > max_depth:
                    raise DecodeError(f"arrays and maps nest deeper than {max_depth}")
                below.extend(item.values())
            elif kind is float:
                raise DecodeError("floats are not allowed in canonical encoding")
            elif not (kind is int or kind is str or kind is bytes or kind is bool or item is None):
                raise DecodeError(f"unsupported type {kind.__name__}")
        level = below


def array_items(data: bytes, *, max_items: int, max_bytes: int) -> list[bytes]:
    """The raw encoded items of one top-level array, each still to be decoded (and checked) on its
    own: nothing inside is built, so a large array of large items costs one item at a time.
    The array header must be canonical and nothing may follow the array."""
    if len(data) > max_bytes:
        raise DecodeError(f"encoding of {len(data)} bytes exceeds the limit of {max_bytes}", "too_large")
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(1, len(data)), max_array_len=max_items,
                                max_map_len=0, max_ext_len=0)
    unpacker.feed(data)
    try:
        count = unpacker.read_array_header()
        if count > max_items:
            raise DecodeError(f"array of {count} items exceeds the limit of {max_items}", "too_large")
        if unpacker.tell() != len(_packb_array_header(count)):
            raise DecodeError("value is not in canonical encoding", "not_canonical")
        items = []
        start = unpacker.tell()
        for _ in range(count):
            unpacker.skip()
            end = unpacker.tell()
            items.append(data[start:end])
            start = end
    except DecodeError:
        raise
    except Exception as exc:  # OutOfData, ValueError (a length past its limit), StackError, ...
        raise DecodeError(f"malformed msgpack: {exc.__class__.__name__}") from exc
    if start != len(data):
        raise DecodeError("trailing bytes after the encoded value")
    return items


def _packb_array_header(count: int) -> bytes:
    return msgpack.Packer().pack_array_header(count)  # type: ignore[no-any-return]


def is_canonical(data: bytes, value: Any) -> bool:
    """True when ``data`` is exactly the canonical encoding of ``value``."""
    try:
        return encode(value) == bytes(data)
    except DecodeError:
        return False
