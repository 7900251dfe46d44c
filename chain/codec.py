"""Canonical msgpack codec.

Signed data uses msgpack arrays only (no maps, no floats). ``decode`` is strict: it
rejects trailing bytes, maps, floats, extension types and oversized inputs with a
``DecodeError`` and never lets ``msgpack`` exceptions escape.
"""

from __future__ import annotations

from typing import Any

import msgpack

from chain.errors import DecodeError

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def encode(obj: Any) -> bytes:
    """Encode ``obj`` (nested lists/tuples of int, str, bytes, bool, None)."""
    try:
        return msgpack.packb(obj, use_bin_type=True, strict_types=False)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise DecodeError(f"cannot encode value: {exc}") from exc


def _reject_map(pairs: Any) -> Any:
    raise DecodeError("maps are not allowed in canonical encoding")


def decode(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES, allow_maps: bool = False) -> Any:
    """Decode one canonical msgpack value; lists come back as lists."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("expected bytes")
    if len(data) > max_bytes:
        raise DecodeError(f"encoding of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        kwargs: dict[str, Any] = {
            "raw": False,
            "strict_map_key": True,
        }
        if not allow_maps:
            kwargs["object_pairs_hook"] = _reject_map
        value = msgpack.unpackb(bytes(data), use_list=True, **kwargs)
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the encoded value") from exc
    except (ValueError, TypeError, UnicodeDecodeError, msgpack.UnpackException, RecursionError) as exc:
        raise DecodeError(f"malformed msgpack: {exc.__class__.__name__}") from exc
    except Exception as exc:  # msgpack may raise other internal errors on hostile input
        raise DecodeError(f"malformed msgpack: {exc.__class__.__name__}") from exc
    _reject_floats(value)
    return value


def _reject_floats(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            raise DecodeError("floats are not allowed in canonical encoding")
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif not isinstance(item, (int, str, bytes, bool)) and item is not None:
            raise DecodeError(f"unsupported type {type(item).__name__}")


def is_canonical(data: bytes, value: Any) -> bool:
    """True when ``data`` is exactly the canonical encoding of ``value``."""
    return encode(value) == bytes(data)
