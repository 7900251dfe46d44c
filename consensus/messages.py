"""Consensus wire messages: proposals, votes and equivocation evidence.

Wire forms (canonical msgpack arrays, via ``chain.codec``)::

  proposal = ["proposal", chain_id, height, round, pol_round, block_hash, block, proposer_index, signature]
  vote     = ["vote", chain_id, step, height, round, block_hash | nil, validator_index, signature]
  evidence = ["evidence", message, message]        (proposals inside evidence carry an empty block)

Peers send all three (``decode_item``): evidence is gossiped so that every validator holds it.

A proposal signature covers ``proposal_signing_bytes(chain_id, height, round, pol_round, block_hash)``
(not the block bytes: the block hash binds them, and the application checks that binding).
``pol_round`` is -1 when the proposer has no proof-of-lock round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Union

from chain import codec
from chain.block import (
    HASH_BYTES,
    MAX_BLOCK_BYTES,
    STEP_PRECOMMIT,
    STEP_PREVOTE,
    STEPS,
    ValidatorSet,
    proposal_signing_bytes,
    vote_signing_bytes,
)
from chain.crypto import SIGNATURE_BYTES
from chain.errors import DecodeError, SignatureError
from consensus.errors import InvalidEvidence, InvalidSignature, MalformedMessage, UnknownValidator

STEP_PROPOSE = "propose"
STEP_RANK = {STEP_PROPOSE: 0, STEP_PREVOTE: 1, STEP_PRECOMMIT: 2}

MAX_CHAIN_ID = 64
MAX_ROUND = 2**31 - 1
MAX_VALIDATORS = 1024
MAX_MESSAGE_BYTES = MAX_BLOCK_BYTES + 4096

Verifier = Callable[[bytes, bytes, bytes], None]
"""``verifier(public_key, signature, message)`` raises ``SignatureError`` unless valid."""


@dataclass(frozen=True, slots=True)
class Proposal:
    chain_id: str
    height: int
    round: int
    pol_round: int
    block_hash: bytes
    block: bytes
    proposer_index: int
    signature: bytes

    @property
    def signer(self) -> int:
        return self.proposer_index

    @property
    def step(self) -> str:
        return STEP_PROPOSE

    def signing_bytes(self) -> bytes:
        return proposal_signing_bytes(self.chain_id, self.height, self.round, self.pol_round, self.block_hash)

    def to_wire(self) -> list[Any]:
        return ["proposal", self.chain_id, self.height, self.round, self.pol_round, self.block_hash,
                self.block, self.proposer_index, self.signature]


@dataclass(frozen=True, slots=True)
class Vote:
    chain_id: str
    step: str
    height: int
    round: int
    block_hash: bytes | None
    validator_index: int
    signature: bytes

    @property
    def signer(self) -> int:
        return self.validator_index

    def signing_bytes(self) -> bytes:
        return vote_signing_bytes(self.chain_id, self.step, self.height, self.round, self.block_hash)

    def to_wire(self) -> list[Any]:
        return ["vote", self.chain_id, self.step, self.height, self.round, self.block_hash,
                self.validator_index, self.signature]


Message = Union[Proposal, Vote]


def message_slot(message: Message) -> tuple[int, int, int, str]:
    """(signer, height, round, step): one honest validator signs at most one message per slot."""
    return (message.signer, message.height, message.round, message.step)


def make_proposal(chain_id: str, height: int, round_: int, pol_round: int, block_hash: bytes, block: bytes,
                  proposer_index: int, signer: Callable[[bytes], bytes]) -> Proposal:
    signature = signer(proposal_signing_bytes(chain_id, height, round_, pol_round, block_hash))
    return Proposal(chain_id, height, round_, pol_round, block_hash, block, proposer_index, signature)


def make_vote(chain_id: str, step: str, height: int, round_: int, block_hash: bytes | None,
              validator_index: int, signer: Callable[[bytes], bytes]) -> Vote:
    signature = signer(vote_signing_bytes(chain_id, step, height, round_, block_hash))
    return Vote(chain_id, step, height, round_, block_hash, validator_index, signature)


def verify_message(message: Message, validators: ValidatorSet, verifier: Verifier) -> None:
    """Raise ``UnknownValidator`` or ``InvalidSignature`` unless the signer's signature is valid."""
    if not 0 <= message.signer < validators.size:
        raise UnknownValidator(f"signer index {message.signer} is not a validator")
    try:
        verifier(validators.validators[message.signer].public_key, message.signature, message.signing_bytes())
    except SignatureError as exc:
        raise InvalidSignature(
            f"{message.step} at height {message.height} round {message.round}: "
            f"signature of validator {message.signer} does not verify"
        ) from exc


# --- codec ---------------------------------------------------------------------------------------


def encode_message(message: Message) -> bytes:
    return encode_item(message)


def decode_message(data: bytes) -> Message:
    """Decode one proposal or vote strictly; any defect (evidence included) raises ``MalformedMessage``."""
    item = decode_item(data)
    if isinstance(item, Evidence):
        raise MalformedMessage("expected a proposal or a vote, got evidence")
    return item


def message_from_wire(raw: Any) -> Message:
    _want(isinstance(raw, list) and len(raw) >= 1 and isinstance(raw[0], str), "message must be a tagged array")
    kind = raw[0]
    if kind == "proposal":
        return _proposal_from_wire(raw)
    if kind == "vote":
        return _vote_from_wire(raw)
    raise MalformedMessage(f"unknown consensus message type {kind[:32]!r}")


def _proposal_from_wire(raw: list[Any]) -> Proposal:
    _want(len(raw) == 9, "proposal must have 9 fields")
    _, chain_id, height, round_, pol_round, block_hash, block, proposer_index, signature = raw
    _check_common(chain_id, height, round_, proposer_index, signature)
    _want(_is_int(pol_round) and -1 <= pol_round < round_, "proposal pol_round must be -1 or below round")
    _want(_is_hash(block_hash), "proposal block_hash must be 32 bytes")
    _want(isinstance(block, bytes) and len(block) <= MAX_BLOCK_BYTES, "proposal block must be bytes")
    return Proposal(chain_id, height, round_, pol_round, block_hash, block, proposer_index, signature)


def _vote_from_wire(raw: list[Any]) -> Vote:
    _want(len(raw) == 8, "vote must have 8 fields")
    _, chain_id, step, height, round_, block_hash, validator_index, signature = raw
    _check_common(chain_id, height, round_, validator_index, signature)
    _want(isinstance(step, str) and step in STEPS, "vote step must be prevote or precommit")
    _want(block_hash is None or _is_hash(block_hash), "vote block_hash must be nil or 32 bytes")
    return Vote(chain_id, step, height, round_, block_hash, validator_index, signature)


def _check_common(chain_id: Any, height: Any, round_: Any, signer: Any, signature: Any) -> None:
    _want(isinstance(chain_id, str) and 0 < len(chain_id) <= MAX_CHAIN_ID, "chain_id")
    _want(_is_int(height) and 1 <= height < 2**63, "height must be a positive integer")
    _want(_is_int(round_) and 0 <= round_ <= MAX_ROUND, "round must be a non-negative integer")
    _want(_is_int(signer) and 0 <= signer < MAX_VALIDATORS, "signer index")
    _want(isinstance(signature, bytes) and len(signature) == SIGNATURE_BYTES, "signature must be 64 bytes")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hash(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_BYTES


def _want(condition: bool, what: str) -> None:
    if not condition:
        raise MalformedMessage(f"malformed consensus message: {what}")


# --- evidence -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two different messages signed by one validator for the same height, round and step."""

    first: Message
    second: Message

    @property
    def validator_index(self) -> int:
        return self.first.signer

    @property
    def height(self) -> int:
        return self.first.height

    @property
    def round(self) -> int:
        return self.first.round

    @property
    def step(self) -> str:
        return self.first.step

    def to_wire(self) -> list[Any]:
        return ["evidence", self.first.to_wire(), self.second.to_wire()]


def make_evidence(first: Message, second: Message) -> Evidence:
    """Evidence from two conflicting messages; proposals are kept without their block bytes."""
    return Evidence(_strip_block(first), _strip_block(second))


def _strip_block(message: Message) -> Message:
    return replace(message, block=b"") if isinstance(message, Proposal) else message


def encode_evidence(evidence: Evidence) -> bytes:
    return codec.encode(evidence.to_wire())


def decode_evidence(data: bytes) -> Evidence:
    try:
        raw = codec.decode(data, max_bytes=MAX_MESSAGE_BYTES)
    except DecodeError as exc:
        raise MalformedMessage(f"evidence is not canonical msgpack: {exc.message}") from exc
    return _evidence_from_wire(raw)


def _evidence_from_wire(raw: Any) -> Evidence:
    _want(isinstance(raw, list) and len(raw) == 3 and raw[0] == "evidence", "evidence must be a 3-field array")
    evidence = Evidence(message_from_wire(raw[1]), message_from_wire(raw[2]))
    for message in (evidence.first, evidence.second):
        _want(not isinstance(message, Proposal) or message.block == b"", "a proposal in evidence carries no block")
    return evidence


PeerItem = Union[Proposal, Vote, Evidence]
"""What a peer may send the engine: a proposal, a vote, or equivocation evidence (gossiped)."""


def encode_item(item: PeerItem) -> bytes:
    return codec.encode(item.to_wire())


def decode_item(data: bytes) -> PeerItem:
    """Decode a proposal, a vote or evidence strictly; any defect raises ``MalformedMessage``."""
    try:
        raw = codec.decode(data, max_bytes=MAX_MESSAGE_BYTES)
    except DecodeError as exc:
        raise MalformedMessage(f"consensus message is not canonical msgpack: {exc.message}") from exc
    item: PeerItem
    if isinstance(raw, list) and raw and raw[0] == "evidence":
        item = _evidence_from_wire(raw)
    else:
        item = message_from_wire(raw)
    if not codec.is_canonical(data, raw):
        raise MalformedMessage("consensus message is not in canonical encoding")
    return item


def is_conflict(first: Message, second: Message) -> bool:
    """True when both messages fill the same slot but sign different bytes."""
    return (type(first) is type(second) and first.chain_id == second.chain_id
            and message_slot(first) == message_slot(second)
            and first.signing_bytes() != second.signing_bytes())


def verify_evidence(evidence: Evidence, validators: ValidatorSet, chain_id: str, verifier: Verifier) -> None:
    """Raise ``InvalidEvidence`` unless the evidence proves that one validator equivocated."""
    first, second = evidence.first, evidence.second
    if first.chain_id != chain_id or not is_conflict(first, second):
        raise InvalidEvidence("the two messages do not conflict")
    try:
        verify_message(first, validators, verifier)
        verify_message(second, validators, verifier)
    except (InvalidSignature, UnknownValidator) as exc:
        raise InvalidEvidence(f"evidence message does not verify: {exc.message}") from exc


__all__ = [
    "Evidence", "Message", "PeerItem", "Proposal", "STEP_PRECOMMIT", "STEP_PREVOTE", "STEP_PROPOSE", "STEP_RANK",
    "Verifier", "Vote", "decode_evidence", "decode_item", "decode_message", "encode_evidence", "encode_item",
    "encode_message",
    "is_conflict", "make_evidence", "make_proposal", "make_vote", "message_from_wire", "message_slot",
    "verify_evidence", "verify_message",
]
