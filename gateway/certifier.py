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

from pathlib import Path
from typing import Any

from chain.crypto import (
    RSA_EXPONENT, RSA_MIN_BITS, RsaPrivateNumbers, generate_rsa_key, read_rsa_key_file, write_rsa_key_file,
)
from chain.errors import VecheError
from gateway.errors import ConfigError, GatewayError


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
        write_rsa_key_file(path, key)
    except VecheError as exc:
        raise ConfigError(exc.message) from exc


def generate_certification_key(path: Path, bits: int = RSA_MIN_BITS) -> RsaPrivateNumbers:
    key = generate_rsa_key(bits)
    write_certification_key(path, key)
    return key


def read_certification_key(path: Path) -> RsaPrivateNumbers:
    try:
        return read_rsa_key_file(path)
    except VecheError as exc:
        raise ConfigError(exc.message) from exc
