"""The gateway's BlindSign (gmpy2, CRT, constant-time exponentiation) and its key file."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from chain.blind import blind, finalize, token_message, verify_token
from chain.crypto import SigningKey, rsa_private_numbers
from gateway import certifier
from gateway.certifier import (
    CertifyError, Certifier, generate_certification_key, read_certification_key, write_certification_key,
)
from gateway.errors import ConfigError

DATA = Path(__file__).parents[1] / "chain" / "data"
VECTORS: list[dict[str, str]] = json.loads((DATA / "rfc9474_vectors.json").read_text())["vectors"]


def load_test_key() -> Any:
    document = json.loads((DATA / "cert_key_3072.json").read_text())
    return rsa_private_numbers(int(document["p"], 16), int(document["q"], 16))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_blind_sign_reproduces_the_rfc9474_vectors(vector: dict[str, str]) -> None:
    signer = Certifier(rsa_private_numbers(int(vector["p"], 16), int(vector["q"], 16)))
    assert signer.blind_sign(bytes.fromhex(vector["blinded_msg"])).hex() == vector["blind_sig"]


def test_a_citizen_device_and_the_gateway_make_a_token() -> None:
    signer = Certifier(load_test_key())
    voter = SigningKey.generate()
    message = token_message("veche-test", "c1", voter.public_key)
    blinded = blind(signer.modulus, message)
    token = finalize(signer.modulus, message, signer.blind_sign(blinded.blinded_msg), blinded.inverse)
    verify_token(signer.modulus, "veche-test", "c1", voter.public_key, token)


def test_blind_sign_refuses_out_of_range_input() -> None:
    signer = Certifier(load_test_key())
    with pytest.raises(CertifyError, match="out of range"):
        signer.blind_sign(b"\xff" * 384)
    with pytest.raises(CertifyError, match="384 bytes"):
        signer.blind_sign(b"\x01" * 383)


def test_a_faulty_signature_never_leaves_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 9474 §7.1: a CRT fault would leak a factor of n; the check against the public key stops it."""
    signer = Certifier(load_test_key())
    real = signer._powmod_sec
    calls = []

    def faulty(base: Any, exponent: Any, modulus: Any) -> Any:
        calls.append(1)
        result = real(base, exponent, modulus)
        return result + 1 if len(calls) == 1 else result

    monkeypatch.setattr(signer, "_powmod_sec", faulty)
    blinded = blind(signer.modulus, b"message").blinded_msg
    with pytest.raises(CertifyError, match="signing failure"):
        signer.blind_sign(blinded)
    assert len(signer.blind_sign(blinded)) == 384   # the next, fault-free, computation is fine


def test_the_key_file_is_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "certification-key.json"
    key = load_test_key()
    write_certification_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_certification_key(path) == key
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        write_certification_key(path, key)
    document = json.loads(path.read_text())
    document["modulus"] = "ff" + document["modulus"][2:]
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="does not match"):
        read_certification_key(path)
    path.write_text(json.dumps({**document, "kind": "other"}))
    with pytest.raises(ConfigError, match="not a certification key"):
        read_certification_key(path)
    with pytest.raises(ConfigError, match="does not exist"):
        read_certification_key(tmp_path / "missing.json")


def test_generated_keys_are_3072_bits(tmp_path: Path) -> None:
    key = generate_certification_key(tmp_path / "k.json")
    assert key.n.bit_length() == 3072 and len(key.modulus) == 384


def test_without_gmpy2_the_gateway_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> Any:
        raise ConfigError("issuing tokens for voter-held keys needs gmpy2: pip install 'veche[gateway]'")

    monkeypatch.setattr(certifier, "_gmpy2", missing)
    with pytest.raises(ConfigError, match=r"veche\[gateway\]"):
        Certifier(load_test_key())
