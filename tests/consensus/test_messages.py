"""Wire codec strictness, evidence and signing-state encoding: valid/invalid pairs."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from chain import codec
from chain.crypto import verify
from chain.errors import DecodeError
from consensus import (
    InvalidEvidence,
    MalformedMessage,
    SigningState,
    SigningStateError,
    decode_evidence,
    decode_message,
    encode_evidence,
    encode_message,
    verify_evidence,
    verify_message,
)
from consensus.messages import Proposal, Vote, decode_item, make_evidence
from consensus.errors import InvalidSignature, UnknownValidator
from tests.consensus.helpers import block_hash, precommit, prevote, proposal, validator_set


def _verify(public_key: bytes, signature: bytes, message: bytes) -> None:
    verify(public_key, signature, message)


def test_messages_round_trip() -> None:
    for message in (proposal(1, 0, "A"), proposal(7, 3, "B", pol_round=1), prevote(2, 1, None, 0),
                    precommit(2, 1, "A", 3)):
        assert decode_message(encode_message(message)) == message


VALID_VOTE = prevote(1, 0, "A", 2).to_wire()
VALID_PROPOSAL = proposal(1, 0, "A").to_wire()


def _with(wire: list[Any], index: int, value: Any) -> bytes:
    changed = list(wire)
    changed[index] = value
    return codec.encode(changed)


@pytest.mark.parametrize("data", [
    b"",
    b"\xc1",
    codec.encode([]),
    codec.encode(["ballot", 1, 2]),
    codec.encode(VALID_VOTE[:-1]),
    codec.encode(VALID_VOTE + [b"extra"]),
    codec.encode(VALID_PROPOSAL + [b"extra"]),
    _with(VALID_VOTE, 0, 1),
    _with(VALID_VOTE, 1, ""),
    _with(VALID_VOTE, 1, 7),
    _with(VALID_VOTE, 2, "propose"),
    _with(VALID_VOTE, 3, 0),
    _with(VALID_VOTE, 3, True),
    _with(VALID_VOTE, 3, -1),
    _with(VALID_VOTE, 4, "0"),
    _with(VALID_VOTE, 5, b"short"),
    _with(VALID_VOTE, 5, ""),
    _with(VALID_VOTE, 6, 5000),
    _with(VALID_VOTE, 7, b"\x00" * 63),
    _with(VALID_PROPOSAL, 4, 0),      # pol_round must be below round 0
    _with(VALID_PROPOSAL, 4, -2),
    _with(VALID_PROPOSAL, 5, None),   # a proposal is never for nil
    _with(VALID_PROPOSAL, 6, "text"),
    msgpack.packb({"type": "vote"}),
    msgpack.packb([*VALID_VOTE[:3], 1.0, *VALID_VOTE[4:]]),
    encode_message(prevote(1, 0, "A", 2)) + b"\x00",
    # non-canonical: height 1 as a uint64 instead of a fixint
    encode_message(prevote(1, 0, "A", 2)).replace(b"\xa7prevote\x01", b"\xa7prevote\xcf" + (1).to_bytes(8, "big")),
])
def test_malformed_messages_raise_decode_errors(data: bytes) -> None:
    with pytest.raises(MalformedMessage) as caught:
        decode_message(data)
    assert isinstance(caught.value, DecodeError)


def test_random_bytes_never_raise_other_errors() -> None:
    import random
    rng = random.Random(7)
    good = encode_message(proposal(1, 0, "A"))
    for _ in range(2000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            decode_message(bytes(data[: rng.randint(0, len(data))]))
        except MalformedMessage:
            pass


def test_signatures_verify_and_a_flipped_bit_does_not() -> None:
    validators = validator_set()
    verify_message(prevote(1, 0, "A", 2), validators, _verify)
    forged = Vote(**{**_fields(prevote(1, 0, "A", 2)), "block_hash": block_hash("B")})
    with pytest.raises(InvalidSignature):
        verify_message(forged, validators, _verify)
    with pytest.raises(UnknownValidator):
        verify_message(Vote(**{**_fields(prevote(1, 0, "A", 2)), "validator_index": 9}), validators, _verify)


def _fields(message: Vote) -> dict[str, Any]:
    return {name: getattr(message, name) for name in Vote.__dataclass_fields__}


# --- evidence ------------------------------------------------------------------------------------

def test_evidence_of_a_double_prevote_verifies_and_round_trips() -> None:
    evidence = make_evidence(prevote(1, 0, "A", 2), prevote(1, 0, None, 2))
    verify_evidence(evidence, validator_set(), "veche-test", _verify)
    assert decode_evidence(encode_evidence(evidence)) == evidence


def test_evidence_of_two_proposals_keeps_no_block_bytes() -> None:
    evidence = make_evidence(proposal(1, 0, "A"), proposal(1, 0, "B"))
    assert isinstance(evidence.first, Proposal) and evidence.first.block == b""
    verify_evidence(evidence, validator_set(), "veche-test", _verify)


@pytest.mark.parametrize("first, second", [
    (prevote(1, 0, "A", 2), prevote(1, 0, "A", 2)),          # the same vote twice
    (prevote(1, 0, "A", 2), prevote(1, 1, "B", 2)),          # different rounds
    (prevote(1, 0, "A", 2), precommit(1, 0, "B", 2)),        # different steps
    (prevote(1, 0, "A", 2), prevote(1, 0, "B", 1)),          # different validators
])
def test_non_conflicting_pairs_are_not_evidence(first: Vote, second: Vote) -> None:
    with pytest.raises(InvalidEvidence):
        verify_evidence(make_evidence(first, second), validator_set(), "veche-test", _verify)


def test_evidence_with_a_forged_signature_is_rejected() -> None:
    forged = Vote(**{**_fields(prevote(1, 0, "A", 2)), "block_hash": block_hash("C")})
    with pytest.raises(InvalidEvidence):
        verify_evidence(make_evidence(prevote(1, 0, "A", 2), forged), validator_set(), "veche-test", _verify)


def test_decode_item_takes_proposals_votes_and_evidence_strictly() -> None:
    evidence = make_evidence(proposal(1, 0, "A"), proposal(1, 0, "B"))
    vote = prevote(1, 0, "A", 2)
    assert decode_item(encode_evidence(evidence)) == evidence
    assert decode_item(encode_message(vote)) == vote
    with_block = ["evidence", proposal(1, 0, "A").to_wire(), evidence.second.to_wire()]
    for bad in (codec.encode(with_block),                       # a proposal inside evidence keeps no block
                codec.encode(["evidence", vote.to_wire()]),       # one message only
                codec.encode(["evidence", vote.to_wire(), ["vote"]]),
                encode_evidence(evidence) + b"\x00"):              # trailing bytes
        with pytest.raises(MalformedMessage):
            decode_item(bad)


# --- signing state -------------------------------------------------------------------------------

def test_signing_state_round_trips_with_blocks_stored_once() -> None:
    reproposal = proposal(3, 1, "A", pol_round=0, proposer=0)
    state = SigningState(height=3, round=1, step="precommit", locked_round=0, locked_block_hash=block_hash("A"),
                         locked_block=b"block:A", valid_round=0, valid_block_hash=block_hash("A"),
                         valid_block=b"block:A",
                         last_signed=(reproposal, prevote(3, 1, "A", 0), precommit(3, 1, "A", 0)))
    data = state.encode()
    assert SigningState.decode(data) == state
    assert data.count(b"block:A") == 1


def test_signing_state_keeps_the_prevotes_behind_its_lock_and_valid_value() -> None:
    polka = (prevote(3, 0, "A", 0), prevote(3, 0, "A", 1), prevote(3, 0, "A", 2),
             prevote(3, 2, "B", 1), prevote(3, 2, "B", 2), prevote(3, 2, "B", 3))
    state = SigningState(height=3, round=2, step="precommit", locked_round=0, locked_block_hash=block_hash("A"),
                         locked_block=b"block:A", valid_round=2, valid_block_hash=block_hash("B"),
                         valid_block=b"block:B", last_signed=(precommit(3, 2, None, 0),), polka=polka)
    assert SigningState.decode(state.encode()) == state


@pytest.mark.parametrize("older", [[1], [2, 5]])
def test_older_signing_states_still_load_without_a_polka(older: list[int]) -> None:
    version, *floor = older
    data = codec.encode([version, 3, 1, "prevote", 0, block_hash("A"), 0, block_hash("A"),
                         [[block_hash("A"), b"block:A"]], [prevote(3, 1, "A", 0).to_wire()], *floor])
    state = SigningState.decode(data)
    assert (state.position, state.locked_block, state.polka) == ((3, 1, 1), b"block:A", ())
    assert state.last_signed == (prevote(3, 1, "A", 0),) and state.floor == (floor[0] if floor else 0)


def test_initial_signing_state_is_below_every_position() -> None:
    assert SigningState.initial().position < (1, 0, 0)
    assert SigningState.decode(SigningState.initial().encode()) == SigningState.initial()


@pytest.mark.parametrize("data", [
    b"",
    codec.encode([4, 1, 0, "prevote", -1, None, -1, None, [], [], 0, []]),  # unknown version
    codec.encode([3, 1, 0, "prevote", -1, None, -1, None, [], [], 0]),      # version 3 without its polka
    codec.encode([2, 1, 0, "prevote", -1, None, -1, None, [], [], 0, []]),  # version 2 with one
    codec.encode([3, 1, 0, "prevote", 0, block_hash("A"), 0, block_hash("A"), [[block_hash("A"), b"block:A"]],
                  [], 0, [prevote(1, 0, "B", 1).to_wire()]]),              # polka for another block
    codec.encode([3, 1, 0, "prevote", -1, None, -1, None, [], [], 0, [precommit(1, 0, None, 1).to_wire()]]),
    codec.encode([3, 1, 0, "prevote", 0, block_hash("A"), 0, block_hash("A"), [[block_hash("A"), b"block:A"]],
                  [], 0, [prevote(2, 0, "A", 1).to_wire()]]),              # polka of another height
    codec.encode([1, 1, 0, "vote", -1, None, -1, None, [], []]),        # unknown step
    codec.encode([1, 1, 0, "prevote", 0, None, -1, None, [], []]),      # lock round without block
    codec.encode([1, 1, 0, "prevote", 0, [1], -1, None, [], []]),       # lock hash of the wrong type
    codec.encode([1, 1, 0, "prevote", 0, b"h" * 32, -1, None, [], []]),  # locked block missing
    codec.encode([1, 1, 0, "prevote", -1, None, -1, None, [], [prevote(2, 0, None, 1).to_wire()]]),
    codec.encode([1, 1, 0, "prevote", -1, None, -1, None, [], [["vote"]]]),
])
def test_broken_signing_states_refuse_to_load(data: bytes) -> None:
    with pytest.raises(SigningStateError):
        SigningState.decode(data)
