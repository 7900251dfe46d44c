"""Canonical msgpack codec.

Signed and hashed data uses msgpack arrays only (no maps, no floats, no extension types), each
value in its shortest form (docs/PROTOCOL.md §1). ``encode`` refuses anything else; ``decode`` is
strict: it rejects trailing bytes, maps, floats, extension types, oversized inputs and (by
default) any encoding that is not byte-for-byte the canonical one, always with ``DecodeError`` —
``msgpack`` exceptions never escape.
"""

from __future__ import annotations

from typing import Any

import msgpack

from chain.errors import DecodeError

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_INT = 2**64 - 1
MIN_INT = -(2**63)

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


def decode(data: bytes | bytearray | memoryview, *, max_bytes: int = MAX_MESSAGE_BYTES, allow_maps: bool = False,
           canonical: bool = True) -> Any:
    """Decode one msgpack value; lists come back as lists.

    With ``canonical`` (the default) the bytes must be exactly ``encode(value)`` — the shortest
    form of every integer, string, byte string and array header — or ``DecodeError`` (code
    ``not_canonical``) is raised.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("expected bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(f"encoding of {len(data)} bytes exceeds the limit of {max_bytes}", "too_large")
    try:
        if allow_maps:
            value = _unpackb(data, use_list=True, raw=False, strict_map_key=True)
        else:
            value = _unpackb(data, use_list=True, raw=False, object_pairs_hook=_reject_map)
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the encoded value") from exc
    except Exception as exc:  # ValueError, TypeError, UnicodeDecodeError, StackError, OutOfData, ...
        raise DecodeError(f"malformed msgpack: {exc.__class__.__name__}") from exc
    _check_decoded(value)
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


def _check_decoded(value: Any) -> None:
    if type(value) is not list:
        if type(value) in (int, str, bytes, bool) or value is None:
            return
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is list:
            stack.extend(item)
        elif kind is dict:
            stack.extend(item.values())
        elif kind is float:
            raise DecodeError("floats are not allowed in canonical encoding")
        elif not (kind is int or kind is str or kind is bytes or kind is bool or item is None):
            raise DecodeError(f"unsupported type {kind.__name__}")


def is_canonical(data: bytes, value: Any) -> bool:
    """True when ``data`` is exactly the canonical encoding of ``value``."""
    try:
        return encode(value) == bytes(data)
    except DecodeError:
        return False
