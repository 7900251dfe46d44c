"""Blind certification tokens: RFC 9474 RSABSSA-SHA384-PSS-Deterministic, the client's side.

A voter-held key is certified like this (docs/PROTOCOL.md §16, docs/TRUST.md):

1. the citizen's device makes a fresh Ed25519 voter key and computes the **token message**
   ``token_message(chain_id, campaign_id, voter_public_key)``;
2. ``blind`` encodes it with EMSA-PSS (SHA-384, MGF1-SHA-384, 48-byte random salt) and multiplies it
   by ``r^e`` for a uniformly random ``r``: the gateway sees only ``blinded_msg``, a uniformly random
   number modulo ``n``;
3. the gateway (``gateway/certifier.py``) returns ``blind_sig = blinded_msg^d mod n`` — once per
   (campaign, phone);
4. ``finalize`` unblinds it (``sig = blind_sig · r⁻¹ mod n``) and checks it with RSASSA-PSS-VERIFY;
   ``sig`` is the **token** that the ballot carries. Nodes check it with ``verify_token``.

Variant: *PSS-Deterministic* (identity preparation, no 32-byte message prefix). RFC 9474 §5 allows
the deterministic preparation for "applications that provide high-entropy input messages", and
§7.3 names the condition: the message holds a value the signer could not guess when it chose its
key. Our message holds the voter's fresh Ed25519 public key (256 random bits made by the device
after the campaign named the certification key), so the randomized preparation would add nothing
but 32 bytes to every ballot. The PSS salt (48 random bytes) still makes every token unique.

Everything here is plain integer arithmetic and ``hashlib``: the device's side needs no secret but
its own. The only RSA operation with the private key is on the gateway.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
from dataclasses import dataclass

from chain import codec
from chain.crypto import PSS_SALT_BYTES, RSA_EXPONENT, check_rsa_modulus, verify_rsa_pss_sha384
from chain.errors import SignatureError

HASH_BYTES = 48                      # SHA-384
TOKEN_DOMAIN = b"veche/v1/voter-token"


class BlindingError(SignatureError):
    """The protocol cannot go on with these inputs (a bad key or an answer that is not a signature)."""

    code = "bad_token"


def token_message(chain_id: str, campaign_id: str, voter_public_key: bytes) -> bytes:
    """What the gateway's certification key signs (blindly): ``"veche/v1/voter-token" ‖
    enc([chain_id, campaign_id, voter_public_key])`` — bound to one chain, one campaign, one key."""
    return TOKEN_DOMAIN + codec.encode([chain_id, campaign_id, voter_public_key])


def verify_token(modulus: bytes, chain_id: str, campaign_id: str, voter_public_key: bytes, token: bytes) -> None:
    """Raise ``SignatureError`` unless ``token`` is the campaign's certification of ``voter_public_key``."""
    verify_rsa_pss_sha384(modulus, token, token_message(chain_id, campaign_id, voter_public_key))


def mgf1_sha384(seed: bytes, length: int) -> bytes:
    """MGF1 (RFC 8017 §B.2.1) with SHA-384."""
    output = bytearray()
    counter = 0
    while len(output) < length:
        output += hashlib.sha384(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(output[:length])


def emsa_pss_encode(message: bytes, em_bits: int, salt: bytes) -> bytes:
    """EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with SHA-384 and MGF1-SHA-384; ``em_bits`` = modBits − 1."""
    em_len = (em_bits + 7) // 8
    m_hash = hashlib.sha384(message).digest()
    if em_len < HASH_BYTES + len(salt) + 2:
        raise BlindingError("encoding error: the key is too short for this salt", "bad_key")
    h = hashlib.sha384(b"\x00" * 8 + m_hash + salt).digest()
    db = b"\x00" * (em_len - len(salt) - HASH_BYTES - 2) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(db, mgf1_sha384(h, em_len - HASH_BYTES - 1)))
    masked[0] &= 0xFF >> (8 * em_len - em_bits)
    return bytes(masked) + h + b"\xbc"


@dataclass(frozen=True, slots=True)
class Blinded:
    """What ``blind`` gives: the message for the gateway, and the inverse the device keeps."""

    blinded_msg: bytes
    inverse: int
    encoded_msg: bytes

    def __repr__(self) -> str:   # the inverse unblinds: keep it out of logs
        return f"Blinded(blinded_msg={self.blinded_msg.hex()[:16]}…)"


def random_blind(n: int) -> int:
    """``r`` uniform in [1, n) with an inverse modulo n (rejection sampling)."""
    while True:
        r = secrets.randbelow(n)
        if r >= 1 and math.gcd(r, n) == 1:
            return r


def blind(modulus: bytes, message: bytes, *, salt: bytes | None = None, r: int | None = None) -> Blinded:
    """RFC 9474 §4.2 Blind; ``salt`` and ``r`` are random unless given (tests pin them to the RFC's)."""
    n = check_rsa_modulus(modulus)
    salt = os.urandom(PSS_SALT_BYTES) if salt is None else salt
    encoded = emsa_pss_encode(message, n.bit_length() - 1, salt)
    m = int.from_bytes(encoded, "big")
    if math.gcd(m, n) != 1:
        raise BlindingError("invalid input: the encoded message is not coprime with the modulus", "bad_key")
    r = random_blind(n) if r is None else r
    try:
        inverse = pow(r, -1, n)
    except ValueError as exc:
        raise BlindingError("blinding error: the blind has no inverse") from exc
    z = m * pow(r, RSA_EXPONENT, n) % n
    return Blinded(z.to_bytes(len(modulus), "big"), inverse, encoded)


def finalize(modulus: bytes, message: bytes, blind_sig: bytes, inverse: int, *,
             salt_length: int = PSS_SALT_BYTES) -> bytes:
    """RFC 9474 §4.4 Finalize: unblind the gateway's answer and check it (RSASSA-PSS-VERIFY)."""
    n = check_rsa_modulus(modulus)
    if not isinstance(blind_sig, bytes) or len(blind_sig) != len(modulus):
        raise BlindingError(f"unexpected input size: a blind signature is {len(modulus)} bytes")
    z = int.from_bytes(blind_sig, "big")
    if z >= n:
        raise BlindingError("the blind signature is not below the modulus")
    signature = (z * inverse % n).to_bytes(len(modulus), "big")
    try:
        verify_rsa_pss_sha384(modulus, signature, message, salt_length=salt_length)
    except SignatureError as exc:
        raise BlindingError("invalid signature: the gateway's answer does not unblind to a valid token") from exc
    return signature
