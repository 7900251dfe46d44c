"""Vote receipts verify like a light client, and any tampering makes them fail."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from chain.block import Block, Validator, ValidatorSet, make_header
from chain.crypto import sha256
from chain.merkle import inclusion_proof
from chain.receipt import ReceiptError, build_receipt, verify_receipt
from chain.tx import Tx, encode_tx, make_vote
from tests.chain.helpers import CHAIN_ID, TestChain, make_params, new_chain, seeded_key


def committed_vote() -> tuple[TestChain, Tx, dict[str, Any]]:
    chain = new_chain(validators=4)
    chain.open_voting()
    voters = chain.new_voters(5)
    votes = [chain.vote(v, "d1", ["a1"]) for v in voters]
    chain.commit_block([chain.register(voters)] + votes)
    chain.commit_block([])  # the receipt's block need not be the last one
    return chain, votes[3], receipt_for(chain, votes[3])


def receipt_for(chain: TestChain, tx: Tx) -> dict[str, Any]:
    location = chain.ledger.tx_location(tx.hash)
    assert location is not None
    block = chain.ledger.block(location.height)
    certificate = chain.ledger.certificate(location.height)
    assert block is not None and certificate is not None
    proof = inclusion_proof(block.txs, location.index)
    return build_receipt(chain.params, tx.raw, location.height, location.index, len(block.txs), proof,
                         block.header, certificate)


@pytest.fixture(scope="module")
def receipt_case() -> tuple[TestChain, Tx, dict[str, Any]]:
    return committed_vote()


def test_a_receipt_verifies(receipt_case: tuple[TestChain, Tx, dict[str, Any]]) -> None:
    chain, tx, receipt = receipt_case
    document = json.loads(json.dumps(receipt))  # survives a JSON round trip (the file form)
    checked = verify_receipt(document, chain.params)
    assert checked.tx == tx and checked.height == 2 and checked.index == 4
    assert checked.header.hash() == checked.certificate.block_hash
    assert set(document) == {"version", "chain_id", "genesis_hash", "tx_hash", "tx", "height", "index", "tree_size",
                             "proof", "header", "certificate"}


def flip(hex_text: str, position: int) -> str:
    data = bytearray(bytes.fromhex(hex_text))
    data[position % len(data)] ^= 0x01
    return data.hex()


@pytest.mark.parametrize("field", ["tx", "header", "certificate"])
def test_every_flipped_byte_fails(receipt_case: tuple[TestChain, Tx, dict[str, Any]], field: str) -> None:
    chain, _, receipt = receipt_case
    size = len(bytes.fromhex(receipt[field]))
    for position in range(size):
        tampered = dict(receipt, **{field: flip(receipt[field], position)})
        if field == "tx":  # keep tx_hash consistent so the deeper checks are exercised too
            tampered["tx_hash"] = sha256(bytes.fromhex(tampered["tx"])).hex()
        with pytest.raises(ReceiptError):
            verify_receipt(tampered, chain.params)


def test_flipped_proof_bytes_fail(receipt_case: tuple[TestChain, Tx, dict[str, Any]]) -> None:
    chain, _, receipt = receipt_case
    assert receipt["proof"]
    for index, element in enumerate(receipt["proof"]):
        for position in range(0, 32, 3):
            proof = list(receipt["proof"])
            proof[index] = flip(element, position)
            with pytest.raises(ReceiptError):
                verify_receipt(dict(receipt, proof=proof), chain.params)


@pytest.mark.parametrize("change", [
    {"tx_hash": "00" * 32}, {"index": 3}, {"index": 9}, {"tree_size": 7}, {"height": 1}, {"height": -1},
    {"version": 2}, {"chain_id": "other"}, {"genesis_hash": "11" * 32}, {"proof": []}, {"proof": "ab"},
    {"proof": ["zz"]}, {"proof": ["00" * 31]}, {"tx": "not hex"}, {"index": True}, {"header": ""},
])
def test_inconsistent_receipts_fail(receipt_case: tuple[TestChain, Tx, dict[str, Any]], change: dict[str, Any]) -> None:
    chain, _, receipt = receipt_case
    with pytest.raises(ReceiptError):
        verify_receipt(dict(receipt, **change), chain.params)


def test_missing_fields_and_non_objects_fail(receipt_case: tuple[TestChain, Tx, dict[str, Any]]) -> None:
    chain, _, receipt = receipt_case
    for key in receipt:
        with pytest.raises(ReceiptError):
            verify_receipt({k: v for k, v in receipt.items() if k != key}, chain.params)
    with pytest.raises(ReceiptError):
        verify_receipt([receipt], chain.params)


def test_wrong_chain_or_genesis_fails(receipt_case: tuple[TestChain, Tx, dict[str, Any]]) -> None:
    chain, _, receipt = receipt_case
    other_genesis, _ = make_params(validators=4, genesis_hash=b"\x05" * 32)
    with pytest.raises(ReceiptError, match="genesis"):
        verify_receipt(receipt, other_genesis)
    other_chain, _ = make_params(validators=4, chain_id="veche-other")
    with pytest.raises(ReceiptError, match="chain"):
        verify_receipt(receipt, other_chain)
    # The same chain id with other validators: the certificate proves nothing there.
    strangers = ValidatorSet(tuple(Validator(f"s{i}", seeded_key(f"stranger-{i}").public_key) for i in range(4)))
    other_validators = replace(chain.params, validators=strangers)
    with pytest.raises(ReceiptError, match="certificate"):
        verify_receipt(receipt, other_validators)


def test_a_certificate_below_quorum_fails(receipt_case: tuple[TestChain, Tx, dict[str, Any]]) -> None:
    chain, tx, receipt = receipt_case
    location = chain.ledger.tx_location(tx.hash)
    assert location is not None
    block = chain.ledger.block(location.height)
    assert block is not None
    weak = chain.certify(block, signers=[0, 1])
    with pytest.raises(ReceiptError, match="certificate"):
        verify_receipt(dict(receipt, certificate=weak.encode().hex()), chain.params)
    enough = chain.certify(block, signers=[1, 2, 3])
    verify_receipt(dict(receipt, certificate=enough.encode().hex()), chain.params)


def test_a_receipt_for_a_forged_signature_fails(receipt_case: tuple[TestChain, Tx, dict[str, Any]]) -> None:
    """Even a committed-looking block cannot vouch for a ballot whose signature does not verify."""
    chain, tx, _ = receipt_case
    forged = encode_tx("vote.cast", CHAIN_ID, tx.body, [(tx.signers[0], b"\x00" * 64)])
    header = make_header(chain_id=CHAIN_ID, height=9, round_=0, time_ms=1, previous_hash=b"\x00" * 32,
                         txs=[forged], app_hash=b"\x00" * 32, proposer=9 % 4, last_commit=None)
    block = Block(header, (forged,), None)
    certificate = chain.certify(block)
    receipt = build_receipt(chain.params, forged, 9, 0, 1, [], header, certificate)
    with pytest.raises(ReceiptError, match="signature"):
        verify_receipt(receipt, chain.params)
    # The same block with the genuine ballot does verify: only the signature was at fault.
    genuine = make_vote(CHAIN_ID, seeded_key("voter-3"), "c1", "d1", ["a1"])
    assert genuine.raw == tx.raw
    header = make_header(chain_id=CHAIN_ID, height=9, round_=0, time_ms=1, previous_hash=b"\x00" * 32,
                         txs=[genuine.raw], app_hash=b"\x00" * 32, proposer=1, last_commit=None)
    block = Block(header, (genuine.raw,), None)
    verify_receipt(build_receipt(chain.params, genuine.raw, 9, 0, 1, [], header, chain.certify(block)), chain.params)
