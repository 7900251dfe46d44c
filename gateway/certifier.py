"""The gateway's certification key: RFC 9474 BlindSign with gmpy2, and its key file.

``BlindSign`` is a raw RSA private-key operation, which ``cryptography`` does not expose. It runs
here with gmpy2's constant-time ``powmod_sec`` and the Chinese remainder theorem (≈ 2.7 ms per
3072-bit token on the reference machine; Python's ``pow`` takes ≈ 19 ms), and every result is
checked with the public key before it leaves (``s^e mod n = m``, RFC 9474 §7.1: a fault in the
CRT computation would otherwise hand out a factor of ``n``). gmpy2 is a gateway-only dependency
(the ``gateway`` extra): ``chain/`` and the nodes never need it.

Key file ``<home>/certification-key.json`` (0600, written once, never overwritten):
``{"kind": "veche-rsabssa-key", "modulus": hex, "p": hex, "q": hex}``; the public part (the
modulus, ``e = 65537``) goes into each campaign that lets citizens hold their own keys.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chain.crypto import RSA_EXPONENT, RSA_MIN_BITS, RsaPrivateNumbers, generate_rsa_key, rsa_private_numbers
from chain.errors import VecheError
from gateway.errors import ConfigError, GatewayError

CERT_KEY_KIND = "veche-rsabssa-key"


class CertifyError(GatewayError):
    """A blinded message that cannot be signed, or a signature that failed its check."""

    code = "certify_failed"


def _gmpy2() -> Any:
    try:
        import gmpy2
    except ImportError as exc:
        raise ConfigError("issuing tokens for voter-held keys needs gmpy2: pip install 'veche[gateway]'") from exc
    return gmpy2


class Certifier:
    """RFC 9474 BlindSign under one RSA key (``e = 65537``)."""

    def __init__(self, key: RsaPrivateNumbers) -> None:
        gmpy2 = _gmpy2()
        self.key = key
        self.modulus = key.modulus
        self.modulus_bytes = len(self.modulus)
        self._mpz = gmpy2.mpz
        self._powmod_sec = gmpy2.powmod_sec
        self._powmod = gmpy2.powmod
        self._n, self._p, self._q = gmpy2.mpz(key.n), gmpy2.mpz(key.p), gmpy2.mpz(key.q)
        self._dp, self._dq, self._qinv = gmpy2.mpz(key.dp), gmpy2.mpz(key.dq), gmpy2.mpz(key.qinv)

    def blind_sign(self, blinded_msg: bytes) -> bytes:
        """``blinded_msg^d mod n`` (CRT, constant-time exponentiation), checked before it is returned."""
        if not isinstance(blinded_msg, bytes) or len(blinded_msg) != self.modulus_bytes:
            raise CertifyError(f"a blinded message is {self.modulus_bytes} bytes")
        m = self._mpz(int.from_bytes(blinded_msg, "big"))
        if m >= self._n:
            raise CertifyError("message representative out of range")
        s1 = self._powmod_sec(m % self._p, self._dp, self._p)
        s2 = self._powmod_sec(m % self._q, self._dq, self._q)
        s = s2 + (self._qinv * (s1 - s2) % self._p) * self._q
        if self._powmod(s, RSA_EXPONENT, self._n) != m:
            raise CertifyError("signing failure: the signature does not check against the public key")
        return int(s).to_bytes(self.modulus_bytes, "big")


def write_certification_key(path: Path, key: RsaPrivateNumbers) -> None:
    """Create the key file with mode 0600 (refuses to overwrite one)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"certification key {path} already exists; refusing to overwrite it") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"kind": CERT_KEY_KIND, "modulus": key.modulus.hex(), "p": f"{key.p:x}", "q": f"{key.q:x}"},
                  handle, indent=1)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def generate_certification_key(path: Path, bits: int = RSA_MIN_BITS) -> RsaPrivateNumbers:
    key = generate_rsa_key(bits)
    write_certification_key(path, key)
    return key


def read_certification_key(path: Path) -> RsaPrivateNumbers:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"certification key {path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"certification key {path} is not readable JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("kind") != CERT_KEY_KIND:
        raise ConfigError(f"{path} is not a certification key file (kind {CERT_KEY_KIND!r})")
    try:
        key = rsa_private_numbers(int(str(document["p"]), 16), int(str(document["q"]), 16))
        modulus = bytes.fromhex(str(document["modulus"]))
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"certification key {path} is malformed: {exc}") from exc
    except VecheError as exc:
        raise ConfigError(f"certification key {path}: {exc.message}") from exc
    if key.modulus != modulus:
        raise ConfigError(f"certification key {path}: the modulus does not match p·q")
    return key
