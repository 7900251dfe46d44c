"""The one wrapper around ``cryptography``: Ed25519 keys, signatures and hashing, AES-GCM for the
gateway's vault, and RSA-PSS (SHA-384) for the blind certification tokens of voter-held keys.

Bytes in, bytes out. ``verify`` raises ``SignatureError`` instead of returning False.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from chain.errors import SignatureError, VecheError

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32
DOMAIN = b"veche/v1/"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class SigningKey:
    """An Ed25519 private key. ``seed`` is the 32-byte private key."""

    __slots__ = ("_private", "seed", "public_key")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != SEED_BYTES:
            raise SignatureError(f"an Ed25519 seed is {SEED_BYTES} bytes", "bad_key")
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self.seed = bytes(seed)
        self.public_key = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(os.urandom(SEED_BYTES))

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key.hex()[:16]}…)"


@lru_cache(maxsize=4096)
def _cached_public_key(public_key: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public_key)


def _load_public_key(public_key: bytes, cache: bool) -> Ed25519PublicKey:
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_BYTES:
        raise SignatureError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes", "bad_key")
    try:
        if cache:
            return _cached_public_key(public_key)
        return Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise SignatureError("not a valid Ed25519 public key", "bad_key") from exc


def verify(public_key: bytes, signature: bytes, message: bytes, *, cache_key: bool = False) -> None:
    """Raise ``SignatureError`` unless ``signature`` by ``public_key`` over ``message`` is valid.

    ``cache_key`` keeps the parsed key in a small LRU cache: use it for long-lived keys
    (validators, committee, gateways), not for one-shot voter keys.
    """
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise SignatureError(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes")
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise SignatureError("the signed message must be bytes")
    key = _load_public_key(public_key, cache_key)
    try:
        key.verify(signature, message)
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify") from exc


def is_valid_public_key(public_key: bytes) -> bool:
    try:
        _load_public_key(public_key, cache=False)
    except SignatureError:
        return False
    return True


# --- key files -------------------------------------------------------------------------------

KEY_FILE_KIND = "veche-ed25519-key"


def key_file_payload(key: SigningKey) -> dict[str, str]:
    return {"kind": KEY_FILE_KIND, "public_key": key.public_key.hex(), "private_key": key.seed.hex()}


def write_key_file(path: str | os.PathLike[str], key: SigningKey, *, overwrite: bool = False) -> None:
    """Write ``key`` as JSON, created with mode 0600 (never world-readable, not even briefly)."""
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError as exc:
        raise VecheError(f"key file {target} already exists; refusing to overwrite it", "key_exists") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(key_file_payload(key), handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(target, 0o600)



def _read_json_document(target: Path, what: str, kind: str, kind_name: str) -> dict[str, Any]:
    """A key file's JSON object of ``kind``; ``VecheError("bad_key_file")`` naming the file otherwise."""
    try:
        document = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise VecheError(f"{what} {target} does not exist", "bad_key_file") from exc
    except (OSError, ValueError) as exc:
        raise VecheError(f"{what} {target} is not readable JSON: {exc}", "bad_key_file") from exc
    if not isinstance(document, dict) or document.get("kind") != kind:
        raise VecheError(f"{what} {target} is not {kind_name} (kind {kind!r})", "bad_key_file")
    return document

def read_key_file(path: str | os.PathLike[str]) -> SigningKey:
    target = Path(path)
    payload = _read_json_document(target, "key file", KEY_FILE_KIND, "a Veche key file")
    try:
        key = SigningKey(bytes.fromhex(str(payload["private_key"])))
        public = bytes.fromhex(str(payload["public_key"]))
    except (KeyError, ValueError) as exc:
        raise VecheError(f"key file {target} has a malformed key: {exc}", "bad_key_file") from exc
    if public != key.public_key:
        raise VecheError(f"key file {target}: public key does not match the private key", "bad_key_file")
    return key


# --- authenticated encryption (the gateway's voter-key vault) ----------------------------------

SEAL_NONCE_BYTES = 12


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """AES-256-GCM with a random nonce: returns nonce ‖ ciphertext ‖ tag."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(key) != 32:
        raise VecheError("a sealing key is 32 bytes", "bad_key")
    nonce = os.urandom(SEAL_NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def unseal(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """Inverse of ``seal``; raises ``VecheError`` (code ``unseal_failed``) on any tampering or wrong key."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(key) != 32 or len(sealed) < SEAL_NONCE_BYTES + 16:
        raise VecheError("sealed data is malformed", "unseal_failed")
    try:
        return AESGCM(key).decrypt(sealed[:SEAL_NONCE_BYTES], sealed[SEAL_NONCE_BYTES:], associated_data)
    except InvalidTag as exc:
        raise VecheError("sealed data does not authenticate", "unseal_failed") from exc


# --- RSA-PSS with SHA-384 (RFC 9474 tokens; chain/blind.py has the protocol) ----------------------

RSA_EXPONENT = 65537
RSA_MIN_BITS = 3072
RSA_MAX_BITS = 4096
PSS_SALT_BYTES = 48


def check_rsa_modulus(modulus: bytes) -> int:
    """The integer of a certification key's modulus (big-endian, no leading zero byte, 3072..4096
    bits in whole bytes, odd); ``SignatureError`` (code ``bad_key``) otherwise."""
    if not isinstance(modulus, bytes) or not RSA_MIN_BITS // 8 <= len(modulus) <= RSA_MAX_BITS // 8 \
            or modulus[0] < 0x80 or not modulus[-1] & 1:
        raise SignatureError(f"a certification key is an odd RSA modulus of {RSA_MIN_BITS}..{RSA_MAX_BITS} bits "
                             "in whole bytes (big-endian, top bit set)", "bad_key")
    return int.from_bytes(modulus, "big")


@lru_cache(maxsize=256)
def _rsa_public_key(modulus: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

    try:
        return RSAPublicNumbers(RSA_EXPONENT, check_rsa_modulus(modulus)).public_key()
    except ValueError as exc:
        raise SignatureError(f"not a usable RSA public key: {exc}", "bad_key") from exc


@lru_cache(maxsize=8)
def _pss_sha384(salt_length: int) -> tuple[Any, Any]:
    """The PSS padding (MGF1-SHA-384) and SHA-384 objects: immutable, so made once, not per token."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=salt_length), hashes.SHA384()


def verify_rsa_pss_sha384(modulus: bytes, signature: bytes, message: bytes, *,
                          salt_length: int = PSS_SALT_BYTES) -> None:
    """RSASSA-PSS-VERIFY (RFC 8017 §8.1.2) with SHA-384, MGF1-SHA-384 and ``salt_length`` under the key
    ``(modulus, 65537)``; raise ``SignatureError`` unless it verifies."""
    key = _rsa_public_key(modulus)
    if not isinstance(signature, bytes) or len(signature) != len(modulus):
        raise SignatureError(f"an RSA signature under this key is {len(modulus)} bytes")
    pss, sha384 = _pss_sha384(salt_length)
    try:
        key.verify(signature, message, pss, sha384)
    except InvalidSignature as exc:
        raise SignatureError("RSA-PSS signature does not verify") from exc


@dataclass(frozen=True, slots=True)
class RsaPrivateNumbers:
    """An RSA key as integers (the gateway's certification key): ``n = p·q``, ``e = 65537``, CRT values."""

    n: int
    d: int
    p: int
    q: int
    dp: int
    dq: int
    qinv: int

    @property
    def modulus(self) -> bytes:
        return self.n.to_bytes((self.n.bit_length() + 7) // 8, "big")

    def __repr__(self) -> str:
        return f"RsaPrivateNumbers(modulus={self.modulus.hex()[:16]}…)"


def generate_rsa_key(bits: int = RSA_MIN_BITS) -> RsaPrivateNumbers:
    """A fresh RSA key (FIPS 186-4 generation by OpenSSL) with ``e = 65537``."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if bits % 8 or not RSA_MIN_BITS <= bits <= RSA_MAX_BITS:
        raise VecheError(f"certification keys have {RSA_MIN_BITS}..{RSA_MAX_BITS} bits, a multiple of 8", "bad_key")
    numbers = rsa.generate_private_key(public_exponent=RSA_EXPONENT, key_size=bits).private_numbers()
    return RsaPrivateNumbers(numbers.public_numbers.n, numbers.d, numbers.p, numbers.q, numbers.dmp1,
                             numbers.dmq1, numbers.iqmp)


def rsa_private_numbers(p: int, q: int) -> RsaPrivateNumbers:
    """The key with primes ``p`` and ``q`` (and ``e = 65537``); ``VecheError`` if they do not make one."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        n = p * q
        d = pow(RSA_EXPONENT, -1, math.lcm(p - 1, q - 1))   # FIPS 186-4: d modulo λ(n)
        numbers = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                        rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(RSA_EXPONENT, n))
        numbers.private_key()   # OpenSSL checks the key's consistency
    except (ValueError, ArithmeticError) as exc:
        raise VecheError(f"not a valid RSA key: {exc}", "bad_key") from exc
    return RsaPrivateNumbers(n, d, p, q, numbers.dmp1, numbers.dmq1, numbers.iqmp)


CERT_KEY_KIND = "veche-rsabssa-key"


def write_rsa_key_file(path: str | os.PathLike[str], key: RsaPrivateNumbers) -> None:
    """A certification key file ``{"kind", "modulus", "p", "q"}`` (hex), created 0600, never overwritten."""
    target = Path(path)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise VecheError(f"certification key {target} already exists; refusing to overwrite it", "key_exists") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"kind": CERT_KEY_KIND, "modulus": key.modulus.hex(), "p": f"{key.p:x}", "q": f"{key.q:x}"},
                  handle, indent=1)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_rsa_key_file(path: str | os.PathLike[str]) -> RsaPrivateNumbers:
    target = Path(path)
    document = _read_json_document(target, "certification key", CERT_KEY_KIND, "a certification key file")
    try:
        key = rsa_private_numbers(int(str(document["p"]), 16), int(str(document["q"]), 16))
        modulus = bytes.fromhex(str(document["modulus"]))
    except (KeyError, ValueError) as exc:
        raise VecheError(f"certification key {target} is malformed: {exc}", "bad_key_file") from exc
    except VecheError as exc:
        raise VecheError(f"certification key {target}: {exc.message}", "bad_key_file") from exc
    if key.modulus != modulus:
        raise VecheError(f"certification key {target}: the modulus does not match p·q", "bad_key_file")
    return key
