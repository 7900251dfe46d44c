"""What a validator has signed, persisted (fsync) before any signed message leaves the node.

``(height, round, step)`` is the high-water mark: the engine never signs at a lower position and,
at an equal position, only re-sends the identical message from ``last_signed``. The lock and the
valid value are restored from it after a restart, so a crash cannot unlock a validator — and so is
``polka``, the peers' prevotes that justify them (a quorum for the locked block in ``locked_round``,
one for the valid block in ``valid_round``): without them a restarted validator could neither
accept a re-proposal of its own locked block (line 28) nor show others why it re-proposes its valid
value, and no one re-sends the prevotes of a past round.

Wire form (canonical msgpack array), format 3::

  [3, height, round, step, locked_round, locked_block_hash|nil, valid_round, valid_block_hash|nil,
   [[block_hash, block], ...], [message, ...], floor, [prevote, ...]]

``floor``: the engine signs nothing at a height ``<= floor`` (0: no floor). A validator that lost its
signing state and was started with ``--recover-signing-state`` gets a floor derived from the chain
(node/ops/recovery.py); later states carry it on. Format 2 (the same array without the prevotes,
first element 2) and format 1 (without ``floor`` either, first element 1) still decode, with no
polka and floor 0.

The file (``encode_file``/``decode_file``; written durably by ``node/signing_state.py``)::

  magic    8 bytes   b"VECHESS2"
  length   4 bytes   big-endian length of body
  body     length    SigningState.encode() (format 3; 2 still decodes)
  digest   32 bytes  SHA-256(magic ‖ length ‖ body)

A format-1 file is the bare body with no magic and no digest (it begins with 0x9a, a 10-element
msgpack array); ``decode_file`` accepts it and says so, so the node can rewrite it in format 2.

Each distinct block is stored once; proposals in ``last_signed`` are stored without their block
bytes, which are restored from the block table by hash.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, replace
from typing import Any

from chain import codec
from chain.errors import DecodeError
from consensus.errors import MalformedMessage, SigningStateError
from consensus.messages import (
    MAX_MESSAGE_BYTES,
    STEP_PROPOSE,
    STEP_RANK,
    MAX_VALIDATORS,
    STEP_PREVOTE,
    Message,
    Proposal,
    Vote,
    message_from_wire,
)

FORMAT_VERSION = 3
LEGACY_FORMAT_VERSION = 1
FIELDS = {1: 10, 2: 11, 3: 12}
"""Fields of each body format that decodes: 1 (no floor), 2 (no polka), 3."""
MAX_SIGNING_STATE_BYTES = 4 * MAX_MESSAGE_BYTES
MAGIC = b"VECHESS2"
DIGEST_BYTES = 32
FILE_HEADER = struct.Struct(">8sI")


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
    floor: int = 0
    polka: tuple[Vote, ...] = ()
    """Prevotes for the locked block in ``locked_round`` and for the valid block in ``valid_round``."""

    @classmethod
    def initial(cls) -> "SigningState":
        """The state of a validator that has never signed anything."""
        return cls(height=0, round=0, step=STEP_PROPOSE)

    @classmethod
    def recovered(cls, floor: int) -> "SigningState":
        """A validator that lost its signing state: it signs nothing at a height ``<= floor``."""
        if floor < 0:
            raise SigningStateError(f"a signing floor is not negative, got {floor}")
        return cls(height=0, round=0, step=STEP_PROPOSE, floor=floor)

    def may_sign_at(self, height: int) -> bool:
        return height > self.floor

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
            self.valid_round, self.valid_block_hash, [[h, b] for h, b in blocks.items()], messages, self.floor,
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
    _want(isinstance(raw, list) and len(raw) in FIELDS.values(), "signing state must be an array of 10 to 12 fields")
    version = raw[0]
    _want(_is_int(version) and FIELDS.get(version) == len(raw),
          f"unknown format version {version!r} with {len(raw)} fields")
    _, height, round_, step, locked_round, locked_hash, valid_round, valid_hash, block_table, messages = raw[:10]
    floor = raw[10] if len(raw) >= 11 else 0
    polka_wire = raw[11] if len(raw) >= 12 else []
    _want(_is_int(floor) and floor >= 0, "floor")
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
        floor=floor,
        polka=tuple(polka),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _want(condition: bool, what: str) -> None:
    if not condition:
        raise SigningStateError(f"malformed signing state: {what}")


def encode_file(state: SigningState) -> bytes:
    """The whole signing-state file: magic, body length, body, SHA-256 of the three."""
    body = state.encode()
    head = FILE_HEADER.pack(MAGIC, len(body))
    return head + body + hashlib.sha256(head + body).digest()


def decode_file(data: bytes) -> tuple[SigningState, bool]:
    """(state, legacy): ``legacy`` is True for a format-1 file (no checksum), to be rewritten.

    Raises ``SigningStateError`` for anything that does not check: wrong magic, truncation, trailing
    bytes, a digest mismatch, or a body that does not decode.
    """
    if data[:1] == b"\x9a":  # format 1: a bare 10-element msgpack array [1, ...]
        return SigningState.decode(data), True
    if len(data) < FILE_HEADER.size + DIGEST_BYTES:
        raise SigningStateError(f"truncated: {len(data)} bytes, a signing-state file has at least "
                                f"{FILE_HEADER.size + DIGEST_BYTES}")
    magic, length = FILE_HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SigningStateError(f"not a signing-state file (magic {magic!r}, expected {MAGIC!r})")
    if len(data) != FILE_HEADER.size + length + DIGEST_BYTES:
        raise SigningStateError(f"length mismatch: the header announces a {length}-byte body, the file holds "
                                f"{len(data) - FILE_HEADER.size - DIGEST_BYTES}")
    end = FILE_HEADER.size + length
    if hashlib.sha256(data[:end]).digest() != data[end:]:
        raise SigningStateError("SHA-256 checksum mismatch: the file was changed or damaged on disk")
    state = SigningState.decode(data[FILE_HEADER.size:end])
    return state, False
