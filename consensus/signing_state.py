"""What a validator has signed, persisted (fsync) before any signed message leaves the node.

``(height, round, step)`` is the high-water mark: the engine never signs at a lower position and,
at an equal position, only re-sends the identical message from ``last_signed``. The lock and the
valid value are restored from it after a restart, so a crash cannot unlock a validator — and so is
``polka``, the peers' prevotes that justify them (a quorum for the locked block in ``locked_round``,
one for the valid block in ``valid_round``): without them a restarted validator could neither
accept a re-proposal of its own locked block (line 28) nor show others why it re-proposes its valid
value, and no one re-sends the prevotes of a past round.

Wire form (canonical msgpack array)::

  [2, height, round, step, locked_round, locked_block_hash|nil, valid_round, valid_block_hash|nil,
   [[block_hash, block], ...], [message, ...], [prevote, ...]]

Each distinct block is stored once; proposals in ``last_signed`` are stored without their block
bytes, which are restored from the block table by hash. Version 1 (the same without the prevotes)
still loads, with an empty ``polka``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chain import codec
from chain.errors import DecodeError
from consensus.errors import MalformedMessage, SigningStateError
from consensus.messages import (
    MAX_MESSAGE_BYTES,
    STEP_PROPOSE,
    STEP_RANK,
    Message,
    MAX_VALIDATORS,
    STEP_PREVOTE,
    Proposal,
    Vote,
    message_from_wire,
)

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_SIGNING_STATE_BYTES = 4 * MAX_MESSAGE_BYTES


@dataclass(frozen=True, slots=True)
class SigningState:
    height: int
    round: int
    step: str
    locked_round: int = -1
    locked_block_hash: bytes | None = None
    locked_block: bytes | None = None
    valid_round: int = -1
    valid_block_hash: bytes | None = None
    valid_block: bytes | None = None
    last_signed: tuple[Message, ...] = ()
    polka: tuple[Vote, ...] = ()
    """Prevotes for the locked block in ``locked_round`` and for the valid block in ``valid_round``."""

    @classmethod
    def initial(cls) -> "SigningState":
        """The state of a validator that has never signed anything."""
        return cls(height=0, round=0, step=STEP_PROPOSE)

    @property
    def position(self) -> tuple[int, int, int]:
        return (self.height, self.round, STEP_RANK[self.step])

    def signed_at(self, height: int, round_: int, step: str) -> Message | None:
        for message in self.last_signed:
            if (message.height, message.round, message.step) == (height, round_, step):
                return message
        return None

    def encode(self) -> bytes:
        blocks: dict[bytes, bytes] = {}
        for block_hash, block in ((self.locked_block_hash, self.locked_block),
                                  (self.valid_block_hash, self.valid_block)):
            if block_hash is not None and block is not None:
                blocks[block_hash] = block
        messages: list[Any] = []
        for message in self.last_signed:
            if isinstance(message, Proposal):
                blocks[message.block_hash] = message.block
                message = replace(message, block=b"")
            messages.append(message.to_wire())
        return codec.encode([
            FORMAT_VERSION, self.height, self.round, self.step, self.locked_round, self.locked_block_hash,
            self.valid_round, self.valid_block_hash, [[h, b] for h, b in blocks.items()], messages,
            [vote.to_wire() for vote in self.polka],
        ])

    @classmethod
    def decode(cls, data: bytes) -> "SigningState":
        try:
            raw = codec.decode(data, max_bytes=MAX_SIGNING_STATE_BYTES)
            return _from_wire(raw)
        except (DecodeError, MalformedMessage) as exc:
            raise SigningStateError(f"signing state does not decode: {exc.message}") from exc


def _from_wire(raw: Any) -> SigningState:
    _want(isinstance(raw, list) and len(raw) in (10, 11), "signing state must be a 10- or 11-field array")
    version = raw[0]
    _want(_is_int(version) and version in READABLE_VERSIONS and len(raw) == 9 + version,
          f"unknown format version {version!r}")
    height, round_, step, locked_round, locked_hash, valid_round, valid_hash, block_table, messages = raw[1:10]
    polka_wire = raw[10] if version >= 2 else []
    _want(_is_int(height) and height >= 0 and _is_int(round_) and round_ >= 0, "height and round")
    _want(isinstance(step, str) and step in STEP_RANK, "step")
    _want(_is_int(locked_round) and -1 <= locked_round <= round_, "locked_round")
    _want(_is_int(valid_round) and -1 <= valid_round <= round_, "valid_round")
    _want(isinstance(block_table, list) and isinstance(messages, list) and len(messages) <= 16, "tables")
    blocks: dict[bytes, bytes] = {}
    for entry in block_table:
        _want(isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, bytes) for x in entry), "block")
        blocks[entry[0]] = entry[1]
    _want(locked_hash is None or isinstance(locked_hash, bytes), "locked_block_hash")
    _want(valid_hash is None or isinstance(valid_hash, bytes), "valid_block_hash")
    _want((locked_round == -1) == (locked_hash is None), "lock fields disagree")
    _want((valid_round == -1) == (valid_hash is None), "valid fields disagree")
    _want(locked_hash is None or locked_hash in blocks, "locked block missing")
    _want(valid_hash is None or valid_hash in blocks, "valid block missing")
    signed: list[Message] = []
    for item in messages:
        message = message_from_wire(item)
        if isinstance(message, Proposal):
            _want(message.block_hash in blocks, "proposal block missing")
            message = replace(message, block=blocks[message.block_hash])
        _want(message.height == height, "last_signed message from another height")
        signed.append(message)
    _want(isinstance(polka_wire, list) and len(polka_wire) <= 2 * MAX_VALIDATORS, "polka")
    justified = {(locked_round, locked_hash), (valid_round, valid_hash)}
    polka: list[Vote] = []
    for item in polka_wire:
        vote = message_from_wire(item)
        if not (isinstance(vote, Vote) and vote.step == STEP_PREVOTE and vote.height == height
                and vote.block_hash is not None and (vote.round, vote.block_hash) in justified):
            raise SigningStateError("malformed signing state: polka prevote for neither the locked nor the valid block")
        polka.append(vote)
    return SigningState(
        height=height, round=round_, step=step,
        locked_round=locked_round, locked_block_hash=locked_hash,
        locked_block=None if locked_hash is None else blocks[locked_hash],
        valid_round=valid_round, valid_block_hash=valid_hash,
        valid_block=None if valid_hash is None else blocks[valid_hash],
        last_signed=tuple(signed),
        polka=tuple(polka),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _want(condition: bool, what: str) -> None:
    if not condition:
        raise SigningStateError(f"malformed signing state: {what}")
