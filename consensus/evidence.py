"""Equivocation evidence bookkeeping: recorded slots, per-validator caps, the height window, and the
precommits of the last decided heights that relayed precommits and certificates are compared with.

``EvidenceBook`` decides what is worth recording and remembers what was; the engine verifies
signatures (it owns the link to blame) and emits ``EvidenceFound`` for what the book records.
"""

from __future__ import annotations

from collections.abc import Iterator

from chain.block import STEP_PRECOMMIT, CommitCertificate
from consensus.messages import Evidence, Message, Vote, make_evidence, message_slot
from consensus.votes import RoundVotes

Slot = tuple[int, int, int, str]
"""(signer, height, round, step), see ``message_slot``."""

KEEP_EVIDENCE = 256
"""``engine.evidence`` keeps the latest items; every one is also emitted once as ``EvidenceFound``."""
KEEP_EVIDENCE_PER_VALIDATOR = 64
"""Equivocation slots per validator within the height window beyond which *gossiped* evidence against
it is ignored before any signature is checked (as is evidence for a slot already recorded): a
Byzantine validator can sign any number of values for any number of rounds, but it cannot make the
others verify, store and relay more than this many relayed proofs against itself per window, nor
evict evidence against another validator (slots are never evicted, only expired by height).
Equivocations this engine sees itself are always recorded: consensus bounds them (current round and
the catch-up rounds, the future buffer, the last two decided heights)."""
EVIDENCE_HEIGHT_WINDOW = 1000
"""Evidence more than this many heights from ours is ignored, and recorded slots below our height by
more than this are forgotten: a slot is recorded (and so relayed) at most once, and an item can never
circulate between validators for ever."""
EVIDENCE_DUPLICATE = "duplicate_slot"
EVIDENCE_OUTSIDE_WINDOW = "outside_window"
EVIDENCE_VALIDATOR_CAP = "validator_cap"
KEEP_DECIDED_HEIGHTS = 2
"""Precommits kept of the last decided heights, to compare with relayed ones and with certificates."""


class EvidenceBook:
    """What this engine recorded (one proof per slot), what it ignored and why, and the precommits
    of the last ``KEEP_DECIDED_HEIGHTS`` decided heights."""

    __slots__ = ("items", "ignored", "_slots", "_decided")

    def __init__(self) -> None:
        self.items: list[Evidence] = []
        """The latest ``KEEP_EVIDENCE`` recorded (or restored) items."""
        self.ignored: dict[str, int] = {}
        """Evidence not recorded, by reason (``EVIDENCE_*``): harmless, counted against nobody."""
        self._slots: dict[int, set[Slot]] = {}
        self._decided: dict[int, dict[int, RoundVotes]] = {}

    def unwanted(self, slot: Slot, height: int, *, gossiped: bool = False) -> bool:
        """True (and counted by reason) if evidence for ``slot`` is not to be recorded at our
        ``height``: already recorded, too far from our height, or (``gossiped``) its validator at the cap."""
        reason = None
        signer, slot_height = slot[0], slot[1]
        slots = self._slots.get(signer)
        if abs(slot_height - height) > EVIDENCE_HEIGHT_WINDOW:
            reason = EVIDENCE_OUTSIDE_WINDOW
        elif slots is not None and slot in slots:
            reason = EVIDENCE_DUPLICATE
        elif slots is not None and len(slots) >= KEEP_EVIDENCE_PER_VALIDATOR:
            oldest = height - EVIDENCE_HEIGHT_WINDOW
            slots.difference_update([old for old in slots if old[1] < oldest])
            if gossiped and len(slots) >= KEEP_EVIDENCE_PER_VALIDATOR:
                reason = EVIDENCE_VALIDATOR_CAP
        if reason is None:
            return False
        self.ignored[reason] = self.ignored.get(reason, 0) + 1
        return True

    def record(self, first: Message, second: Message, height: int) -> Evidence | None:
        """Record the equivocation (``first``, ``second``) unless unwanted; the new item, if any."""
        slot = message_slot(first)
        if self.unwanted(slot, height):
            return None
        self._slots.setdefault(slot[0], set()).add(slot)
        evidence = make_evidence(first, second)
        self.items.append(evidence)
        del self.items[:-KEEP_EVIDENCE]
        return evidence

    def restore(self, items: list[Evidence]) -> None:
        """Evidence recorded before a restart: its slots count as recorded."""
        for evidence in items:
            slot = message_slot(evidence.first)
            slots = self._slots.setdefault(slot[0], set())
            if slot in slots:
                continue
            slots.add(slot)
            self.items.append(evidence)
        del self.items[:-KEEP_EVIDENCE]

    # --- decided heights ------------------------------------------------------------------------

    def remember_decided(self, height: int, precommits: dict[int, RoundVotes]) -> None:
        """Keep the precommits (by round) of a height we just decided; forget older heights."""
        self._decided[height] = precommits
        for old in sorted(self._decided)[:-KEEP_DECIDED_HEIGHTS]:
            del self._decided[old]

    def decided_variants(self, height: int, round_: int, validator: int) -> dict[bytes | None, Vote]:
        """The precommits we hold of ``validator`` at a decided (height, round), by block."""
        rounds = self._decided.get(height)
        tally = rounds.get(round_) if rounds is not None else None
        signed = tally.variants.get(validator) if tally is not None else None
        return signed or {}

    def contradicted(self, message: Message, height: int) -> Vote | None:
        """A precommit we hold that the relayed precommit ``message`` (of a decided height)
        contradicts, if it is worth proving — the caller verifies ``message`` and records the pair."""
        if not isinstance(message, Vote) or message.step != STEP_PRECOMMIT:
            return None
        signed = self.decided_variants(message.height, message.round, message.validator_index)
        if not signed or message.block_hash in signed or self.unwanted(message_slot(message), height):
            return None
        return next(iter(signed.values()))

    def certificate_conflicts(self, certificate: CommitCertificate, chain_id: str,
                              height: int) -> Iterator[tuple[Vote, Vote]]:
        """(held precommit, precommit rebuilt from the certificate) for every signature of
        ``certificate`` for another block than we hold of that validator and round; unverified."""
        for index, signature in certificate.signatures:
            signed = self.decided_variants(certificate.height, certificate.round, index)
            if not signed or certificate.block_hash in signed:
                continue
            vote = Vote(chain_id, STEP_PRECOMMIT, certificate.height, certificate.round,
                        certificate.block_hash, index, signature)
            if not self.unwanted(message_slot(vote), height):
                yield next(iter(signed.values())), vote
