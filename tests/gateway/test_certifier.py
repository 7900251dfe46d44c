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


# --- `veche gateway certification-key`: the public half, for the committee's campaign wizard ------------------

def _certification_key_cli(home: Path, *args: str) -> Any:
    from click.testing import CliRunner

    from gateway.cli import gateway_group

    return CliRunner().invoke(gateway_group, ["certification-key", "--home", str(home), *args])


def test_the_gateway_prints_its_certification_key_in_the_form_the_wizard_takes(tmp_path: Path) -> None:
    import node.cli  # noqa: F401  - the program's import order (the console's modules need `veche` loaded)
    from chain.crypto import sha256
    from genesis.testnet import init_testnet
    from node.console.forms import parse_certification_key

    key = load_test_key()
    layout = init_testnet(tmp_path / "net", validators=1, observers=0, base_port=29900, demo=True,
                          certification_key=key)
    home = layout.directory / "gateway"
    result = _certification_key_cli(home)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "3072 bits" in lines[0] and "65537" in lines[0]
    assert lines[1] == key.modulus.hex() and parse_certification_key(lines[1]) == key.modulus
    assert lines[2] == f"SHA-256 fingerprint: {sha256(key.modulus).hex()}"
    assert str(key.p) not in result.output and format(key.p, "x") not in result.output   # never the private half
    answer = json.loads(_certification_key_cli(home, "--json").output)
    assert answer == {"certification_key": key.modulus.hex(), "bits": 3072, "sha256": sha256(key.modulus).hex()}


def test_a_gateway_without_a_key_says_how_to_make_one_and_create_never_replaces_it(tmp_path: Path) -> None:
    from genesis.testnet import init_testnet

    layout = init_testnet(tmp_path / "net", validators=1, observers=0, base_port=29900)
    home = layout.directory / "gateway"
    path = home / "certification-key.json"
    assert not path.exists()
    missing = _certification_key_cli(home)
    assert missing.exit_code == 3 and "--create" in missing.output and not path.exists()
    created = _certification_key_cli(home, "--create", "--json")
    assert created.exit_code == 0, created.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = read_certification_key(path)
    assert json.loads(created.stdout)["certification_key"] == stored.modulus.hex()
    before = path.read_bytes()
    again = _certification_key_cli(home, "--create")
    assert again.exit_code == 3 and "never replaced" in again.output and path.read_bytes() == before
    path.write_text("{}")
    damaged = _certification_key_cli(home)
    assert damaged.exit_code == 3 and "not a certification key file" in damaged.output
