"""Ed25519 wrapper, hashing and key files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from chain.crypto import (
    SigningKey, is_valid_public_key, read_key_file, sha256, verify, write_key_file,
)
from chain.errors import SignatureError, VecheError

# RFC 8032 §7.1, test 2 (one-byte message).
RFC8032_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
RFC8032_PUBLIC = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
RFC8032_MESSAGE = bytes.fromhex("72")
RFC8032_SIGNATURE = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")


def test_rfc8032_vector() -> None:
    key = SigningKey(RFC8032_SEED)
    assert key.public_key == RFC8032_PUBLIC
    assert key.sign(RFC8032_MESSAGE) == RFC8032_SIGNATURE
    verify(RFC8032_PUBLIC, RFC8032_SIGNATURE, RFC8032_MESSAGE)
    verify(RFC8032_PUBLIC, RFC8032_SIGNATURE, RFC8032_MESSAGE, cache_key=True)


def test_sha256_vector() -> None:
    assert sha256(b"abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("cache_key", [False, True])
def test_wrong_message_key_or_signature_raises(cache_key: bool) -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    signature = key.sign(b"ballot")
    verify(key.public_key, signature, b"ballot", cache_key=cache_key)
    with pytest.raises(SignatureError):
        verify(key.public_key, signature, b"ballot!", cache_key=cache_key)
    with pytest.raises(SignatureError):
        verify(other.public_key, signature, b"ballot", cache_key=cache_key)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(SignatureError):
        verify(key.public_key, flipped, b"ballot", cache_key=cache_key)


@pytest.mark.parametrize("public_key, signature, message", [
    (b"\x00" * 31, b"\x00" * 64, b"m"),
    (b"\x00" * 33, b"\x00" * 64, b"m"),
    (b"\x00" * 32, b"\x00" * 63, b"m"),
    ("00" * 32, b"\x00" * 64, b"m"),
    (b"\x00" * 32, None, b"m"),
    (b"\x00" * 32, b"\x00" * 64, "m"),
])
def test_malformed_inputs_raise_signature_error(public_key: object, signature: object, message: object) -> None:
    with pytest.raises(SignatureError):
        verify(public_key, signature, message)  # type: ignore[arg-type]


def test_signature_with_s_not_reduced_is_rejected() -> None:
    key = SigningKey(RFC8032_SEED)
    signature = key.sign(b"x")
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(signature[32:], "little") + order
    malleated = signature[:32] + s.to_bytes(32, "little")
    with pytest.raises(SignatureError):
        verify(key.public_key, malleated, b"x")


def test_seed_must_be_32_bytes() -> None:
    with pytest.raises(SignatureError):
        SigningKey(b"\x01" * 31)
    with pytest.raises(SignatureError):
        SigningKey("x" * 32)  # type: ignore[arg-type]
    assert SigningKey(b"\x01" * 32).seed == b"\x01" * 32


def test_is_valid_public_key() -> None:
    assert is_valid_public_key(SigningKey.generate().public_key)
    assert not is_valid_public_key(b"\x01" * 31)


def test_key_file_round_trip_with_mode_0600(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "key.json"
    write_key_file(path, key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_key_file(path).public_key == key.public_key
    with pytest.raises(VecheError) as caught:
        write_key_file(path, SigningKey.generate())
    assert caught.value.code == "key_exists"
    assert read_key_file(path).seed == key.seed  # not overwritten
    replacement = SigningKey.generate()
    write_key_file(path, replacement, overwrite=True)
    assert read_key_file(path).seed == replacement.seed


@pytest.mark.parametrize("content", [
    "not json",
    json.dumps(["list"]),
    json.dumps({"kind": "other", "public_key": "00", "private_key": "00"}),
    json.dumps({"kind": "veche-ed25519-key", "public_key": "00" * 32}),
    json.dumps({"kind": "veche-ed25519-key", "public_key": "zz", "private_key": "11" * 32}),
    json.dumps({"kind": "veche-ed25519-key", "public_key": "00" * 32, "private_key": "11" * 32}),
    json.dumps({"kind": "veche-ed25519-key", "public_key": "00" * 32, "private_key": "11" * 31}),
])
def test_bad_key_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "key.json"
    path.write_text(content)
    with pytest.raises(VecheError) as caught:
        read_key_file(path)
    assert caught.value.code in {"bad_key_file", "bad_key"}


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(VecheError) as caught:
        read_key_file(tmp_path / "absent.json")
    assert caught.value.code == "bad_key_file"
