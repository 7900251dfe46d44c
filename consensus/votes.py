"""Vote and proposal bookkeeping for one height: counts per round and step, conflicts, senders."""

from __future__ import annotations

import enum

from chain.block import STEP_PRECOMMIT, STEP_PREVOTE
from consensus.messages import Message, Proposal, Vote

MAX_PROPOSALS_PER_ROUND = 8
"""A lying proposer may send different proposals to different validators; keep a few per round."""
MAX_VARIANTS_PER_VALIDATOR = 2
"""Conflicting votes kept per validator and (round, step), beyond those for a proposed block."""


class Added(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


class RoundVotes:
    """Votes of one (round, step).

    ``total`` counts distinct validators. ``counts[h]`` counts distinct validators that signed a
    vote for ``h``: an equivocating validator counts for each block it signed. That is safe — two
    quorums share more than ⌊n/3⌋ validators, so they always share an honest one, who never signs
    two blocks — and needed: otherwise a double-voter's first vote could hide a real polka from us.
    """

    __slots__ = ("by_validator", "variants", "counts", "total")

    def __init__(self) -> None:
        self.by_validator: dict[int, Vote] = {}
        self.variants: dict[int, dict[bytes | None, Vote]] = {}
        self.counts: dict[bytes | None, int] = {}
        self.total = 0

    def add(self, vote: Vote, *, keep_conflict: bool = False) -> tuple[Added, Vote | None]:
        """Add a verified vote; a conflicting one is kept (and counted) while the variant cap allows."""
        signed = self.variants.setdefault(vote.validator_index, {})
        if vote.block_hash in signed:
            return Added.DUPLICATE, signed[vote.block_hash]
        first = self.by_validator.get(vote.validator_index)
        if first is None:
            self.by_validator[vote.validator_index] = vote
            self.total += 1
        elif len(signed) >= MAX_VARIANTS_PER_VALIDATOR and not keep_conflict:
            return Added.CONFLICT, first
        signed[vote.block_hash] = vote
        self.counts[vote.block_hash] = self.counts.get(vote.block_hash, 0) + 1
        return (Added.NEW, None) if first is None else (Added.CONFLICT, first)

    def held(self, vote: Vote) -> Vote | None:
        return self.variants.get(vote.validator_index, {}).get(vote.block_hash)

    def count(self, block_hash: bytes | None) -> int:
        return self.counts.get(block_hash, 0)

    def votes_for(self, block_hash: bytes | None) -> list[Vote]:
        return [signed[block_hash] for signed in self.variants.values() if block_hash in signed]


class HeightState:
    """Everything received for one height: votes by (round, step), proposals, senders per round."""

    __slots__ = ("quorum", "rounds", "proposals", "senders", "precommit_quorums")

    def __init__(self, quorum: int) -> None:
        self.quorum = quorum
        self.rounds: dict[tuple[int, str], RoundVotes] = {}
        self.proposals: dict[int, list[Proposal]] = {}
        self.senders: dict[int, set[int]] = {}
        self.precommit_quorums: list[tuple[int, bytes]] = []

    def votes(self, round_: int, step: str) -> RoundVotes:
        key = (round_, step)
        tally = self.rounds.get(key)
        if tally is None:
            tally = self.rounds[key] = RoundVotes()
        return tally

    def prevotes(self, round_: int) -> RoundVotes:
        return self.votes(round_, STEP_PREVOTE)

    def precommits(self, round_: int) -> RoundVotes:
        return self.votes(round_, STEP_PRECOMMIT)

    def find(self, message: Message) -> Message | None:
        """The message with the same signed content already held, if any."""
        if isinstance(message, Vote):
            return self.votes(message.round, message.step).held(message)
        signed = message.signing_bytes()
        for held in self.proposals.get(message.round, []):
            if held.signing_bytes() == signed:
                return held
        return None

    def add_vote(self, vote: Vote) -> tuple[Added, Vote | None]:
        tally = self.votes(vote.round, vote.step)
        proposed = vote.block_hash is not None and bool(self.proposals_for(vote.block_hash))
        before = tally.count(vote.block_hash)
        result, existing = tally.add(vote, keep_conflict=proposed)
        if result is Added.NEW:
            self.senders.setdefault(vote.round, set()).add(vote.validator_index)
        if (vote.step == STEP_PRECOMMIT and vote.block_hash is not None
                and before < self.quorum <= tally.count(vote.block_hash)):
            self.precommit_quorums.append((vote.round, vote.block_hash))
        return result, existing

    def add_proposal(self, proposal: Proposal) -> tuple[Added, Proposal | None]:
        held = self.proposals.setdefault(proposal.round, [])
        signed = proposal.signing_bytes()
        for existing in held:
            if existing.signing_bytes() == signed:
                return Added.DUPLICATE, existing
        first = held[0] if held else None
        if len(held) < MAX_PROPOSALS_PER_ROUND:
            held.append(proposal)
        self.senders.setdefault(proposal.round, set()).add(proposal.proposer_index)
        return (Added.NEW, None) if first is None else (Added.CONFLICT, first)

    def drop_proposal(self, proposal: Proposal) -> None:
        held = self.proposals.get(proposal.round, [])
        if proposal in held:
            held.remove(proposal)

    def primary_proposal(self, round_: int) -> Proposal | None:
        held = self.proposals.get(round_)
        return held[0] if held else None

    def proposals_for(self, block_hash: bytes) -> list[Proposal]:
        return [p for held in self.proposals.values() for p in held if p.block_hash == block_hash]

    def rounds_with_senders(self, minimum: int) -> list[int]:
        return [r for r, who in self.senders.items() if len(who) >= minimum]

    def only_evidence(self, message: Message) -> bool:
        """Whether ``message`` (not held) would only be evidence: this state already keeps as many
        variants of its signer's slot as it will (see ``RoundVotes.add`` and ``add_proposal``)."""
        if isinstance(message, Proposal):
            return len(self.proposals.get(message.round, ())) >= MAX_PROPOSALS_PER_ROUND
        tally = self.rounds.get((message.round, message.step))
        signed = tally.variants.get(message.validator_index) if tally is not None else None
        if not signed or len(signed) < MAX_VARIANTS_PER_VALIDATOR:
            return False
        return message.block_hash is None or not self.proposals_for(message.block_hash)

    def holders_of(self, block_hash: bytes) -> set[int]:
        """Validators whose verified proposal or vote for ``block_hash`` we hold at this height."""
        holders = {p.proposer_index for p in self.proposals_for(block_hash)}
        for votes in self.rounds.values():
            holders.update(index for index, signed in votes.variants.items() if block_hash in signed)
        return holders
