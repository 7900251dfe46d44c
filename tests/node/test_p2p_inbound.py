"""Inbound envelopes: proposals, votes and gossiped evidence reach the driver with the authenticated sender."""

from __future__ import annotations

from chain.block import STEP_PRECOMMIT, Validator, ValidatorSet
from chain.crypto import SigningKey
from consensus.messages import Evidence, PeerItem, Vote, encode_evidence, encode_message, make_evidence, make_vote
from node.envelope import seal
from node.metrics import NodeMetrics
from node.p2p import Inbound

KEYS = [SigningKey.generate() for _ in range(4)]
VALIDATORS = ValidatorSet(tuple(Validator(f"validator-{i}", k.public_key) for i, k in enumerate(KEYS)))
CHAIN = "veche-test"


def precommit(block_hash: bytes | None, signer: int = 3) -> Vote:
    return make_vote(CHAIN, STEP_PRECOMMIT, 5, 0, block_hash, signer, KEYS[signer].sign)


def name_of(public_key: bytes) -> str | None:
    index = VALIDATORS.index_of(public_key)
    return None if index is None else VALIDATORS.validators[index].name


def test_evidence_and_votes_are_delivered_with_the_link_that_sent_them() -> None:
    delivered: list[tuple[bytes, PeerItem]] = []
    metrics = NodeMetrics()
    inbound = Inbound(CHAIN, name_of, metrics, accepts=True, deliver=lambda k, m: delivered.append((k, m)),
                      admit_gossip=lambda sender, raws: True)
    evidence = make_evidence(precommit(b"\x01" * 32), precommit(None))
    vote = precommit(b"\x01" * 32, signer=2)
    sender = KEYS[1].public_key
    body = seal(CHAIN, sender, 1, [encode_evidence(evidence), encode_message(vote), b"\x93junk"], [], KEYS[1].sign)
    answer = inbound.handle(body)
    assert answer["malformed_messages"] == 1
    assert delivered == [(sender, evidence), (sender, vote)]
    assert isinstance(delivered[0][1], Evidence)
    assert metrics.p2p_rejected.value("validator-1", "malformed_message") == 1
