"""RFC 9474 blind signatures, the client's side (chain/blind.py) and RSA-PSS verification
(chain/crypto.py): the RFC's four test vectors, and tokens bound to chain, campaign and voter key."""

from __future__ import annotations

import json
from pathlib import Path
import pytest

from chain.blind import (
    BlindingError, blind, emsa_pss_encode, finalize, mgf1_sha384, token_message, verify_token,
)
from chain.crypto import RsaPrivateNumbers, SigningKey, check_rsa_modulus, rsa_private_numbers, verify_rsa_pss_sha384
from chain.errors import SignatureError

DATA = Path(__file__).parent / "data"
VECTORS: list[dict[str, str]] = json.loads((DATA / "rfc9474_vectors.json").read_text())["vectors"]


def load_test_key() -> RsaPrivateNumbers:
    document = json.loads((DATA / "cert_key_3072.json").read_text())
    return rsa_private_numbers(int(document["p"], 16), int(document["q"], 16))


def raw_sign(key: RsaPrivateNumbers, blinded_msg: bytes) -> bytes:
    """BlindSign with Python integers (the gateway uses gmpy2: tests/gateway/test_certifier.py)."""
    return pow(int.from_bytes(blinded_msg, "big"), key.d, key.n).to_bytes(len(key.modulus), "big")


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_rfc9474_vectors(vector: dict[str, str]) -> None:
    """Blind and Finalize reproduce the RFC's bytes; the signature verifies as RSA-PSS (SHA-384)."""
    n = int(vector["n"], 16)
    modulus = bytes.fromhex(vector["n"])
    assert int(vector["e"], 16) == 65537 and check_rsa_modulus(modulus) == n
    key = rsa_private_numbers(int(vector["p"], 16), int(vector["q"], 16))
    assert key.n == n and key.d == int(vector["d"], 16)
    message = bytes.fromhex(vector["msg"])
    prepared = bytes.fromhex(vector.get("msg_prefix", "")) + message
    assert prepared.hex() == vector["prepared_msg"]
    salt = bytes.fromhex(vector.get("salt", ""))
    assert emsa_pss_encode(prepared, n.bit_length() - 1, salt).hex() == vector["encoded_msg"]
    inverse = int(vector["inv"], 16)
    blinded = blind(modulus, prepared, salt=salt, r=pow(inverse, -1, n))
    assert blinded.blinded_msg.hex() == vector["blinded_msg"]
    assert blinded.inverse == inverse
    assert raw_sign(key, blinded.blinded_msg).hex() == vector["blind_sig"]
    signature = finalize(modulus, prepared, bytes.fromhex(vector["blind_sig"]), inverse, salt_length=len(salt))
    assert signature.hex() == vector["sig"]
    verify_rsa_pss_sha384(modulus, signature, prepared, salt_length=len(salt))


def test_mgf1_lengths() -> None:
    assert mgf1_sha384(b"seed", 0) == b""
    assert len(mgf1_sha384(b"seed", 100)) == 100
    assert mgf1_sha384(b"seed", 100)[:48] == mgf1_sha384(b"seed", 48)


def test_token_round_trip_with_a_3072_bit_key() -> None:
    key = load_test_key()
    voter = SigningKey.generate()
    message = token_message("veche-test", "c1", voter.public_key)
    blinded = blind(key.modulus, message)
    assert blinded.blinded_msg != message and len(blinded.blinded_msg) == 384
    token = finalize(key.modulus, message, raw_sign(key, blinded.blinded_msg), blinded.inverse)
    verify_token(key.modulus, "veche-test", "c1", voter.public_key, token)


def test_a_token_is_bound_to_its_chain_campaign_and_key() -> None:
    key = load_test_key()
    voter, other = SigningKey.generate(), SigningKey.generate()
    message = token_message("veche-test", "c1", voter.public_key)
    blinded = blind(key.modulus, message)
    token = finalize(key.modulus, message, raw_sign(key, blinded.blinded_msg), blinded.inverse)
    for chain_id, campaign_id, public_key in (("veche-other", "c1", voter.public_key),
                                              ("veche-test", "c2", voter.public_key),
                                              ("veche-test", "c1", other.public_key)):
        with pytest.raises(SignatureError):
            verify_token(key.modulus, chain_id, campaign_id, public_key, token)
    forged = bytearray(token)
    forged[-1] ^= 1
    with pytest.raises(SignatureError):
        verify_token(key.modulus, "veche-test", "c1", voter.public_key, bytes(forged))
    other_key = VECTORS[2]
    with pytest.raises(SignatureError):   # a token of another gateway key
        verify_token(bytes.fromhex(other_key["n"]), "veche-test", "c1", voter.public_key, token)


def test_two_blindings_of_one_message_look_unrelated() -> None:
    """The gateway sees a fresh uniformly random number each time; the tokens differ (random salt)."""
    key = load_test_key()
    message = token_message("veche-test", "c1", SigningKey.generate().public_key)
    first, second = blind(key.modulus, message), blind(key.modulus, message)
    assert first.blinded_msg != second.blinded_msg
    tokens = [finalize(key.modulus, message, raw_sign(key, b.blinded_msg), b.inverse) for b in (first, second)]
    assert tokens[0] != tokens[1]
    assert "inverse" not in repr(first) and str(first.inverse) not in repr(first)


def test_finalize_refuses_an_answer_that_is_not_the_signature() -> None:
    key = load_test_key()
    message = token_message("veche-test", "c1", SigningKey.generate().public_key)
    blinded = blind(key.modulus, message)
    good = raw_sign(key, blinded.blinded_msg)
    with pytest.raises(BlindingError, match="invalid signature"):
        finalize(key.modulus, message, raw_sign(key, blind(key.modulus, message).blinded_msg), blinded.inverse)
    with pytest.raises(BlindingError, match="input size"):
        finalize(key.modulus, message, good[1:], blinded.inverse)
    with pytest.raises(BlindingError, match="below the modulus"):
        finalize(key.modulus, message, b"\xff" * 384, blinded.inverse)


@pytest.mark.parametrize("modulus", [b"", b"\x01" * 384, b"\xff" * 383, b"\xff" * 513, b"\xfe" * 384,
                                     b"\x7f" + b"\xff" * 383])
def test_certification_keys_are_odd_3072_to_4096_bit_moduli(modulus: bytes) -> None:
    with pytest.raises(SignatureError) as caught:
        check_rsa_modulus(modulus)
    assert caught.value.code == "bad_key"
    with pytest.raises(SignatureError):
        blind(modulus, b"message")
