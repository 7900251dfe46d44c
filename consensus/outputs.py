"""What the engine hands to the node (outputs), what it asks of it (Application), its timing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Union

from chain.block import CommitCertificate
from consensus.errors import RemoteProtocolError
from consensus.messages import Evidence, Message
from consensus.signing_state import SigningState


class Application(Protocol):
    """Implemented by the node; the engine calls it synchronously, only for its current height."""

    def create_block(self, height: int, round_: int, now_ms: int,
                     last_commit: CommitCertificate | None) -> tuple[bytes, bytes]:
        """Return (block_hash, encoded_block) for a new proposal at this height."""

    def check_block(self, height: int, encoded_block: bytes, now_ms: int) -> bytes | None:
        """The block's hash if it is valid to vote for at this height now, else None (cache it)."""

    def has_pending(self) -> bool:
        """True when transactions wait in the mempool."""

    def deadline_due(self, now_ms: int) -> bool:
        """True when a campaign deadline has passed and an empty block should be cut."""


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    """Round timeouts grow linearly with the round; every value is in milliseconds."""

    propose_ms: int = 1000
    propose_delta_ms: int = 500
    prevote_ms: int = 500
    prevote_delta_ms: int = 500
    precommit_ms: int = 500
    precommit_delta_ms: int = 500
    rebroadcast_ms: int = 2000
    """Re-send our own messages of this round and the last one after this long without progress."""
    idle_poll_ms: int = 100
    """While waiting for transactions, ask the application again this often."""
    recheck_ms: int = 50
    """Re-check a certified block the application found invalid (its time ahead of our clock)."""
    catchup_grace_ms: int = 1000
    """Validators one height ahead for this long (two heights: at once) → ``PeerAhead``."""

    def propose(self, round_: int) -> int:
        return self.propose_ms + self.propose_delta_ms * round_

    def prevote(self, round_: int) -> int:
        return self.prevote_ms + self.prevote_delta_ms * round_

    def precommit(self, round_: int) -> int:
        return self.precommit_ms + self.precommit_delta_ms * round_


@dataclass(frozen=True, slots=True)
class PersistSigningState:
    """Write ``state.encode()`` with fsync before handling any later output."""

    state: SigningState


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send ``encode_message(message)`` to every validator (and observers that follow)."""

    message: Message


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``encode_message(message)`` to validator ``to_index`` only (help for one lagging peer)."""

    to_index: int
    message: Message


@dataclass(frozen=True, slots=True)
class Commit:
    """Apply and store the block with its certificate; the engine already moved to ``height + 1``."""

    height: int
    encoded_block: bytes
    block_hash: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class EvidenceFound:
    """New equivocation evidence: keep and report it, and send ``encode_evidence(evidence)`` to every
    peer (emitted once per equivocation slot, so each node relays an item at most once)."""

    evidence: Evidence


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """An invalid peer input, counted against ``sender_index``: the authenticated peer link that
    delivered it (the ``sender`` given to ``receive``), ``None`` when unknown. ``claimed_index`` is
    the signer the message names, which a relaying or forging peer chooses freely: log it, never
    blame it."""

    sender_index: int | None
    error: RemoteProtocolError
    claimed_index: int | None = None


@dataclass(frozen=True, slots=True)
class PeerAhead:
    """At least ⌊n/3⌋+1 validators are at ``height`` or above: run block sync, then ``skip_to``."""

    height: int


Output = Union[PersistSigningState, Broadcast, Send, Commit, EvidenceFound, RejectedMessage, PeerAhead]
