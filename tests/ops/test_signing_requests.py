"""Signing requests (k of n from separate machines) and the governance CLI's inputs, without a node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chain.crypto import SigningKey
from chain.tx import KeysRotate, ValidatorsUpdate, decode_tx
from node.cli.governance import validators_update_from_json
from node.cli.requests import FORMAT, SigningRequest, SigningRequestError, describe, read_request, write_request
from node.cli_ops import OperatorInputError

ALICE, BORIS = SigningKey.generate(), SigningKey.generate()
NEW = SigningKey.generate()


def request() -> SigningRequest:
    body = KeysRotate("gateway", "gw", ALICE.public_key, NEW.public_key, 0, "new contractor")
    return SigningRequest("veche-test", b"\x01" * 32, "keys.rotate", body, 2,
                          [("alice", ALICE.public_key), ("boris", BORIS.public_key)], 10, 1_700_000_000_000)


def test_a_request_round_trips_and_k_signatures_make_the_transaction(tmp_path: Path) -> None:
    path = tmp_path / "req.json"
    write_request(path, request())
    document = json.loads(path.read_text())
    assert document["format"] == FORMAT and document["signatures"] == []
    assert document["body_json"]["role"] == "gateway" and document["summary"][0].startswith("ROTATE the key")
    loaded = read_request(path)
    loaded.add_signature(ALICE)
    write_request(path, loaded)
    again = read_request(path)
    again.check_signatures()
    again.add_signature(BORIS)
    tx = again.transaction(sorted(again.signatures))
    assert decode_tx(tx.raw) == tx and set(tx.signers) == {ALICE.public_key, BORIS.public_key}
    tx.verify_signatures()                       # every member signed exactly the bytes the chain checks
    assert tx.signing_bytes() == again.signing_bytes
    with pytest.raises(SigningRequestError, match="already"):
        again.add_signature(ALICE)


def mutate(document: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(document))
    changed[key] = value
    return changed


@pytest.mark.parametrize("change", [
    ("format", "veche-signing-request/2"), ("kind", "vote.cast"), ("kind", "nope"), ("body", "zz"),
    ("signing_hash", "00" * 32), ("chain_id", "another-chain"), ("signatures", [{"public_key": "00", "signature": ""}]),
])
def test_a_damaged_or_altered_request_is_refused(change: tuple[str, Any]) -> None:
    document = request().to_json()
    with pytest.raises(SigningRequestError):
        SigningRequest.from_json(mutate(document, *change))


def test_a_signature_over_other_bytes_is_found() -> None:
    signed = request()
    signed.add_signature(ALICE)
    document = signed.to_json()
    other = KeysRotate("gateway", "gw", ALICE.public_key, SigningKey.generate().public_key, 0, "new contractor")
    forged = SigningRequest.from_json({**document, "body": SigningRequest(
        "veche-test", b"\x01" * 32, "keys.rotate", other, 2, [], 10, 0).to_json()["body"],
        "signing_hash": SigningRequest("veche-test", b"\x01" * 32, "keys.rotate", other, 2, [], 10, 0
                                       ).signing_hash.hex()})
    with pytest.raises(SigningRequestError, match="does not verify"):
        forged.check_signatures()


def test_the_summary_comes_from_the_bytes() -> None:
    update = ValidatorsUpdate("server lost", (), ("validator-3",))
    assert describe("validators.update", update)[-1] == "remove validator validator-3"
    rotate = KeysRotate("committee", "alice", b"", b"", 3, "bigger quorum")
    assert describe("keys.rotate", rotate)[0].startswith("CHANGE ONLY THE COMMITTEE THRESHOLD")


@pytest.mark.parametrize("document, message", [
    ([], "must be a JSON object"),
    ({"reason": "x", "add": [], "remove": [], "extra": 1}, "unknown keys: extra"),
    ({"reason": "x", "add": [{"name": "v4", "public_key": "ab"}]}, "missing"),
    ({"reason": "x", "add": [{"name": "v4", "public_key": "zz" * 32, "url": "http://a"}]}, "not hex"),
])
def test_validators_update_file_mistakes_are_named(document: Any, message: str) -> None:
    with pytest.raises(OperatorInputError, match=message):
        validators_update_from_json(document, "change.json")


def test_validators_update_file_defaults() -> None:
    body = validators_update_from_json({"reason": "lost", "add": [{"name": "v4", "public_key": NEW.public_key.hex(),
                                                                    "url": "https://v4.example.org/"}],
                                        "remove": ["v3"]}, "change.json")
    assert body.add[0].operator == "committee" and body.add[0].url == "https://v4.example.org"
    assert body.remove == ("v3",)
