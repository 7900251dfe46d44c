"""Canonical bytes and hashes: PROTOCOL §1 (msgpack), §6 (RFC 6962 Merkle tree), the signature
checks (Ed25519, §2.1; RSASSA-PSS tokens, §16.2), GENESIS §1 (strict JSON, RFC 8785) and §3 (times)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, NoReturn

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

ZERO32 = b"\x00" * 32

# --------------------------------------------------------------------------------------------
# §1 canonical MessagePack


def enc(value: Any) -> bytes:
    out = bytearray()
    _enc(value, out)
    return bytes(out)


def _enc(v: Any, out: bytearray) -> None:
    if v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, int):
        if v >= 0:
            if v <= 0x7F:
                out.append(v)
            elif v <= 0xFF:
                out += b"\xcc" + v.to_bytes(1, "big")
            elif v <= 0xFFFF:
                out += b"\xcd" + v.to_bytes(2, "big")
            elif v <= 0xFFFFFFFF:
                out += b"\xce" + v.to_bytes(4, "big")
            elif v < 2 ** 64:
                out += b"\xcf" + v.to_bytes(8, "big")
            else:
                raise ValueError("integer too large")
        elif v >= -32:
            out.append(v & 0xFF)
        elif v >= -128:
            out += b"\xd0" + v.to_bytes(1, "big", signed=True)
        elif v >= -32768:
            out += b"\xd1" + v.to_bytes(2, "big", signed=True)
        elif v >= -(2 ** 31):
            out += b"\xd2" + v.to_bytes(4, "big", signed=True)
        elif v >= -(2 ** 63):
            out += b"\xd3" + v.to_bytes(8, "big", signed=True)
        else:
            raise ValueError("integer too small")
    elif isinstance(v, str):
        b = v.encode("utf-8")
        n = len(b)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 256:
            out += b"\xd9" + n.to_bytes(1, "big")
        elif n < 65536:
            out += b"\xda" + n.to_bytes(2, "big")
        else:
            out += b"\xdb" + n.to_bytes(4, "big")
        out += b
    elif isinstance(v, (bytes, bytearray)):
        n = len(v)
        if n < 256:
            out += b"\xc4" + n.to_bytes(1, "big")
        elif n < 65536:
            out += b"\xc5" + n.to_bytes(2, "big")
        else:
            out += b"\xc6" + n.to_bytes(4, "big")
        out += v
    elif isinstance(v, list):
        n = len(v)
        if n < 16:
            out.append(0x90 | n)
        elif n < 65536:
            out += b"\xdc" + n.to_bytes(2, "big")
        else:
            out += b"\xdd" + n.to_bytes(4, "big")
        for item in v:
            _enc(item, out)
    else:
        raise ValueError(f"not an allowed type: {type(v).__name__}")


def dec(data: bytes, *, big: bool = False) -> Any:
    """Strict decoding: the input must be exactly the canonical encoding of its value."""
    limit = 2 ** 31 if big else 65_536
    try:
        value = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True,
                                max_str_len=65_536, max_bin_len=limit, max_array_len=limit,
                                max_map_len=0, max_ext_len=0)
        again = enc(value)
    except Exception as exc:  # noqa: BLE001 - any decoder complaint is "not canonical"
        raise ValueError(f"not canonical msgpack ({exc.__class__.__name__}: {exc})") from None
    if again != data:
        raise ValueError("not canonical msgpack (a longer form than the shortest)")
    return value


def u64(x: int) -> bytes:
    return x.to_bytes(8, "big")


def u32(x: int) -> bytes:
    return x.to_bytes(4, "big")


def sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def ed25519_ok(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


def rsa_pss_sha384_ok(modulus: bytes, signature: bytes, message: bytes) -> bool:
    """RSASSA-PSS-VERIFY (RFC 8017 §8.1.2) with SHA-384, MGF1-SHA-384 and a 48-byte salt under
    (n, 65537): how PROTOCOL §16.2 says a token is checked (RFC 9474's Finalize output is exactly
    such a signature)."""
    if len(signature) != len(modulus):
        return False
    n = int.from_bytes(modulus, "big")
    try:
        key = RSAPublicNumbers(65537, n).public_key()
        key.verify(signature, message, padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48),
                   hashes.SHA384())
        return True
    except (InvalidSignature, ValueError):
        return False


# --------------------------------------------------------------------------------------------
# §6 Merkle tree (RFC 6962)


def merkle_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return sha256(b"")
    level = [sha256(b"\x00", leaf) for leaf in leaves]
    return _mth(level)


def _mth(hashes: list[bytes]) -> bytes:
    n = len(hashes)
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01", _mth(hashes[:k]), _mth(hashes[k:]))


# --------------------------------------------------------------------------------------------
# GENESIS §1: strict JSON and RFC 8785


def load_json_strict(text: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise ValueError(f"repeated key {k!r}")
            out[k] = v
        return out

    def no_float(s: str) -> NoReturn:
        raise ValueError(f"a float is not allowed: {s}")

    value = json.loads(text, object_pairs_hook=pairs, parse_float=no_float, parse_constant=no_float)
    _check_json_ints(value)
    return value


def _check_json_ints(v: Any) -> None:
    if isinstance(v, bool):
        return
    if isinstance(v, int) and abs(v) > 2 ** 53 - 1:
        raise ValueError(f"integer beyond ±(2^53 - 1): {v}")
    if isinstance(v, list):
        for x in v:
            _check_json_ints(x)
    if isinstance(v, dict):
        for x in v.values():
            _check_json_ints(x)
    if isinstance(v, str):
        v.encode("utf-8")   # an unpaired surrogate has no UTF-8 form


def jcs(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _jcs_str(v)
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(_jcs_str(k) + ":" + jcs(x) for k, x in items) + "}"
    raise ValueError(f"not JSON: {type(v).__name__}")


_JCS_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _jcs_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in _JCS_ESCAPES:
            out.append(_JCS_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def genesis_hash(document: Any) -> bytes:
    return sha256(jcs(document).encode("utf-8"))


RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:\d{2})")


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def time_ms(value: Any) -> int:
    """GENESIS §3: unix ms as an integer, or RFC 3339 text with an offset."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = RFC3339.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"not a time: {value!r}")
    y, mo, d, hh, mi, ss = (int(m.group(i)) for i in range(1, 7))
    frac = int((m.group(7) or "").ljust(3, "0"))
    tz = m.group(8)
    offset = 0 if tz == "Z" else (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 60 + int(tz[4:6])) * 60_000
    ms = _days_from_civil(y, mo, d) * 86_400_000 + ((hh * 60 + mi) * 60 + ss) * 1000 + frac - offset
    if ms < 0:
        raise ValueError("before 1970")
    return ms

