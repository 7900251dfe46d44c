"""A light client trusting only genesis follows validator set changes, and receipts verify across them."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from chain.crypto import SigningKey
from chain.lightclient import (
    ChangeProof, LightClientError, follow_set_changes, proof_to_json, proofs_from_json,
)
from chain.receipt import ReceiptError, verify_receipt
from chain.tx import Tx, ValidatorEntry, ValidatorsUpdate
from tests.chain.helpers import CHAIN_ID, TestChain, new_chain, seeded_key
from tests.chain.test_receipt import receipt_for


def replace_validator(chain: TestChain, remove: str, label: str) -> Tx:
    key = seeded_key(label)
    chain.extra_validator_keys.append(key)
    entry = ValidatorEntry(label, "committee", key.public_key, f"https://{label}.example.org")
    return chain.sign("validators.update", ValidatorsUpdate(f"{remove} retired", (entry,), (remove,)))


def changing_chain() -> tuple[TestChain, list[Tx]]:
    """4 validators, three set changes (v3 → n1, v0 → n2, n1 → n3), a ballot before, between and after."""
    chain = new_chain(validators=4)
    chain.open_voting()
    voters = chain.new_voters(4)
    chain.commit_block([chain.register(voters)])
    ballots = [chain.vote(v, "d1", ["a1"]) for v in voters]
    chain.commit_block([ballots[0]])
    for number, (remove, label) in enumerate((("v3", "n1"), ("v0", "n2"), ("n1", "n3"))):
        chain.commit_block([replace_validator(chain, remove, label)])
        chain.commit_block([])
        chain.commit_block([ballots[number + 1]])
    return chain, ballots


@pytest.fixture(scope="module")
def changed() -> tuple[TestChain, list[Tx]]:
    return changing_chain()


def test_the_walk_reaches_every_set(changed: tuple[TestChain, list[Tx]]) -> None:
    chain, _ = changed
    proofs = chain.ledger.set_change_proofs()
    assert len(proofs) == 3
    schedule = follow_set_changes(CHAIN_ID, chain.params.validators, proofs)
    assert schedule.changes == 3
    for height in range(1, chain.ledger.height + 3):
        assert schedule.at(height) == chain.ledger.validators_at(height), height


def test_receipts_before_and_after_the_changes_verify_with_only_genesis(changed: tuple[TestChain, list[Tx]]) -> None:
    chain, ballots = changed
    document = json.loads(json.dumps({"changes": [proof_to_json(p) for p in chain.ledger.set_change_proofs()]}))
    schedule = follow_set_changes(CHAIN_ID, chain.params.validators, proofs_from_json(document))
    for ballot in ballots:
        receipt = receipt_for(chain, ballot)
        checked = verify_receipt(receipt, chain.params, schedule.at)
        assert checked.tx == ballot
    late = receipt_for(chain, ballots[-1])
    with pytest.raises(ReceiptError, match="commit certificate fails"):
        verify_receipt(late, chain.params)                      # the genesis set alone cannot check it
    verify_receipt(receipt_for(chain, ballots[0]), chain.params)  # before any change it can


def test_a_left_out_change_makes_later_certificates_fail(changed: tuple[TestChain, list[Tx]]) -> None:
    chain, ballots = changed
    proofs = chain.ledger.set_change_proofs()
    with pytest.raises(LightClientError, match="commit certificate fails"):
        follow_set_changes(CHAIN_ID, chain.params.validators, [proofs[0], proofs[2]])
    partial = follow_set_changes(CHAIN_ID, chain.params.validators, proofs[:2])
    with pytest.raises(ReceiptError):
        verify_receipt(receipt_for(chain, ballots[-1]), chain.params, partial.at)


def tampered(proof: ChangeProof, **changes: Any) -> ChangeProof:
    return replace(proof, **changes)


def test_tampered_proofs_are_refused(changed: tuple[TestChain, list[Tx]]) -> None:
    chain, _ = changed
    proofs = chain.ledger.set_change_proofs()
    first = proofs[0]
    other_tx = replace(first.txs[0], tx=chain.blocks[1][0].txs[0])
    cases: list[list[ChangeProof]] = [
        [tampered(first, txs=(other_tx,))],                                    # not the included tx
        [tampered(first, txs=(replace(first.txs[0], index=first.txs[0].index + 1),))],
        [tampered(first, txs=())],                                             # no transaction
        [tampered(first, header=replace(first.header, tx_root=b"\x00" * 32))],  # certificate no longer matches
        [proofs[1], proofs[0]],                                                # out of order
        [tampered(first, header=replace(first.header, chain_id="other-chain"))],
    ]
    for case in cases:
        with pytest.raises(LightClientError):
            follow_set_changes(CHAIN_ID, chain.params.validators, case)


def test_a_forged_change_signed_by_outsiders_is_refused(changed: tuple[TestChain, list[Tx]]) -> None:
    chain, _ = changed
    proof = chain.ledger.set_change_proofs()[0]
    outsiders = [SigningKey(bytes([i]) * 32) for i in range(1, 5)]
    from chain.block import STEP_PRECOMMIT, make_certificate, vote_signing_bytes
    message = vote_signing_bytes(CHAIN_ID, STEP_PRECOMMIT, proof.height, 0, proof.header.hash())
    forged = make_certificate(proof.height, 0, proof.header.hash(), [(i, k.sign(message)) for i, k in enumerate(outsiders)])
    with pytest.raises(LightClientError, match="commit certificate fails"):
        follow_set_changes(CHAIN_ID, chain.params.validators, [tampered(proof, certificate=forged)])


@pytest.mark.parametrize("document", [
    None, {}, {"changes": {}}, {"changes": [1]}, {"changes": [{"height": 1}]},
    {"changes": [{"height": 1, "header": "zz", "certificate": "", "txs": []}]},
])
def test_malformed_json_is_a_light_client_error(document: Any) -> None:
    with pytest.raises(LightClientError):
        proofs_from_json(document)


def test_json_height_must_match_the_header(changed: tuple[TestChain, list[Tx]]) -> None:
    chain, _ = changed
    item = proof_to_json(chain.ledger.set_change_proofs()[0])
    item["height"] += 1
    with pytest.raises(LightClientError, match="height"):
        proofs_from_json({"changes": [item]})
