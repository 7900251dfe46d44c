"""Help for validators behind us, and noticing that we are behind: the last decided height's
precommits (decision help), the buffer of messages for the next height, and the ``PeerAhead`` estimate.

None of this is in the paper, which assumes every message between correct processes is eventually
delivered; real links drop messages while disconnected (docs/CONSENSUS.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chain.block import STEP_PRECOMMIT, CommitCertificate
from consensus.messages import Message, Proposal, Vote
from consensus.outputs import PeerAhead, Send, TimeoutConfig

FUTURE_BUFFER_PER_VALIDATOR = 12
"""Messages for height+1 buffered per validator (verified, replayed when we enter that height)."""

FutureKey = tuple[int, int, int, str]
"""(height, signer, round, step) of a buffered message."""


@dataclass(slots=True)
class Decision:
    """The last block this engine decided, kept to help validators still at that height."""

    height: int
    block_hash: bytes
    proposal: Proposal | None
    """None when the height was reached by block sync (or a restart): only the certificate is known."""
    precommits: tuple[Vote, ...]
    has_block: set[int] = field(default_factory=set)
    """Validators that provably hold a proposal of the block: its proposers and every validator
    whose verified vote for it we hold (line 22/28/36 need the proposal before such a vote)."""
    helped: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Validator → (next time it may be helped, how often it was helped)."""

    def help(self, message: Message, target: int, now: int, rebroadcast_ms: int) -> list[Send]:
        """``message`` of this height reached us over ``target``'s link: send ``target`` the block's
        precommits, and the proposal unless it provably holds one (then only if it is still here a
        rebroadcast later); at most once per ``rebroadcast_ms``."""
        if message.signer == target and message.block_hash == self.block_hash:
            self.has_block.add(target)  # its own claim: a lie could only hurt itself
        next_at, times = self.helped.get(target, (0, 0))
        if now < next_at:
            return []
        self.helped[target] = (now + rebroadcast_ms, times + 1)
        sends = []
        if self.proposal is not None and (target not in self.has_block or times >= 1):
            sends.append(Send(target, self.proposal))
        sends.extend(Send(target, vote) for vote in self.precommits if vote.validator_index != target)
        return sends


def synced_decision(chain_id: str, certificate: CommitCertificate) -> Decision:
    """What we can still give validators at a height we did not decide ourselves: its precommits,
    rebuilt from the certificate (a quorum of them lets a validator holding the block commit)."""
    precommits = tuple(Vote(chain_id, STEP_PRECOMMIT, certificate.height, certificate.round,
                            certificate.block_hash, index, signature)
                       for index, signature in certificate.signatures)
    return Decision(certificate.height, certificate.block_hash, None, precommits)


class FutureBuffer:
    """Verified messages for the next height with the link that delivered each, bounded per validator."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[FutureKey, tuple[Message, int | None]] = {}

    @staticmethod
    def key(message: Message) -> FutureKey:
        return (message.height, message.signer, message.round, message.step)

    def held(self, message: Message) -> Message | None:
        item = self._items.get(self.key(message))
        return item[0] if item is not None else None

    def has_room(self, signer: int) -> bool:
        return sum(1 for k in self._items if k[1] == signer) < FUTURE_BUFFER_PER_VALIDATOR

    def put(self, message: Message, link: int | None) -> None:
        self._items[self.key(message)] = (message, link)

    def take(self, height: int) -> list[tuple[Message, int | None]]:
        """Everything buffered for ``height``; the buffer is emptied."""
        taken = [item for key, item in self._items.items() if key[0] == height]
        self._items = {}
        return taken

    def keep_only(self, height: int) -> None:
        self._items = {key: item for key, item in self._items.items() if key[0] == height}


class AheadTracker:
    """The highest height each validator (by public key: indices differ between validator sets) has
    shown us, and when to emit ``PeerAhead``."""

    __slots__ = ("heights", "next_at", "_since", "_sent")

    def __init__(self) -> None:
        self.heights: dict[bytes, int] = {}
        self.next_at: int | None = None
        """When ``check`` should run again (a grace period or a retry pending), else None."""
        self._since: int | None = None
        self._sent: tuple[int, int] | None = None

    def known(self, signer: bytes) -> int:
        return self.heights.get(signer, 0)

    def saw(self, signer: bytes, height: int) -> None:
        self.heights[signer] = max(self.known(signer), height)

    def reset(self) -> None:
        """A new height: the grace period starts again."""
        self._since = self.next_at = None

    def check(self, height: int, skip: int, now: int, timeouts: TimeoutConfig, own: int = 0) -> PeerAhead | None:
        """⌊n/3⌋+1 validators (``skip``) above ``height``: one height for the grace period, or two at once.
        ``own`` above ``height`` (the height of our own signing state): at once, whoever else is ahead.

        A validator counts by its key, whichever set it signed in: after a set change the validators
        ahead of us may be ones our current height's set does not hold yet.

        ``own``: we signed at that height, which we entered only after block ``own - 1`` was committed,
        so that block exists — our data was wiped since. Below our own mark we sign nothing, so no peer
        hears from us at this height and none helps us (decision help answers a message of ours), and
        the peers ahead may be too few for the count above (seed (4, 14071))."""
        heights = sorted((h for h in self.heights.values() if h > height), reverse=True)
        counted = heights[skip - 1] if len(heights) >= skip else 0
        target = max(counted, own)
        if target <= height:
            self._since = self.next_at = None
            return None
        if self._since is None:
            self._since = now
        due = now if target >= height + 2 or own > height else self._since + timeouts.catchup_grace_ms
        sent = self._sent
        if sent is not None and sent[0] >= target:
            due = max(due, sent[1] + timeouts.rebroadcast_ms)
        if now < due:
            self.next_at = due
            return None
        self._sent = (target, now)
        self.next_at = now + timeouts.rebroadcast_ms
        return PeerAhead(target)
