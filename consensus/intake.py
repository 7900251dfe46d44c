"""Peer input (docs/CONSENSUS.md §6): what a proposal, vote or evidence item must pass before the
engine's rules see it — chain id, signer, height, proposer, duplicates, signature, the catch-up and
next-height bounds — and what a message of an older or newer height is used for instead (decision
help, evidence against decided heights, the ``PeerAhead`` estimate).

``PeerIntake`` is the base of ``Engine`` (consensus/engine.py), which owns the state declared below.
Every validator set is read through ``_validators_at(height)``.
"""

from __future__ import annotations

from chain.block import ValidatorSet
from consensus.catchup import AheadTracker, Decision, FutureBuffer
from consensus.errors import (
    InvalidEvidence,
    InvalidProposal,
    RemoteProtocolError,
    UnknownValidator,
    WrongChain,
    WrongProposer,
)
from consensus.evidence import EvidenceBook
from consensus.messages import Evidence, Message, Proposal, Verifier, message_slot, verify_evidence, verify_message
from consensus.outputs import EvidenceFound, Output, RejectedMessage, TimeoutConfig
from consensus.signing_state import SigningState
from consensus.votes import Added, HeightState

CATCHUP_ROUNDS_PER_VALIDATOR = 2
"""Rounds beyond round+1 at the current height one validator may make us hold messages for."""


class PeerIntake:
    # Owned and set up by ``Engine``.
    chain_id: str
    height: int
    my_index: int | None
    rejected: dict[str, int]
    _round: int
    _state: HeightState
    _catchup: dict[int, set[int]]
    """Validator → the catch-up rounds (beyond round+1) it made us hold messages for."""
    _proposal_links: dict[int, int | None]
    _link: int | None
    """The authenticated link the input being handled came from (None if unknown)."""
    _future: FutureBuffer
    _ahead: AheadTracker
    _signing: SigningState
    _decision: Decision | None
    _book: EvidenceBook
    _timeouts: TimeoutConfig
    _verify: Verifier
    _out: list[Output]

    def _validators_at(self, height: int) -> ValidatorSet:
        """The validator set in force at ``height`` (``Engine`` defines it)."""
        raise NotImplementedError

    def _my_index_at(self, height: int) -> int | None:
        """Our index in the set of ``height``, None if we do not validate there (``Engine`` defines it)."""
        raise NotImplementedError

    def _handle(self, message: Message, now: int, *, verified: bool) -> None:
        signer = message.signer
        if message.chain_id != self.chain_id:
            self._reject(signer, WrongChain(f"message for chain {message.chain_id[:64]!r}"))
            return
        if message.height > self.height + 1:
            self._handle_far(message, verified=verified)
            return
        if not 0 <= signer < self._validators_at(message.height).size:
            self._reject(None, UnknownValidator(f"signer index {signer} is not a validator"))
            return
        if message.height < self.height:
            self._compare_decided(message)
            self._help_stale(message, now)
            return
        if message.height > self.height:
            self._handle_future(message, now, verified=verified)
            return
        if isinstance(message, Proposal) and not self._proposal_fields_ok(message):
            return
        catchup = message.round > self._round + 1
        if catchup and not self._catchup_allowed(signer, message.round):
            return
        held = self._state.find(message)
        if held is not None and held.signature == message.signature:
            return
        if not verified and self._state.only_evidence(message) and self._evidence_unwanted(message_slot(message)):
            return
        if not verified and not self._verified(message):
            return
        if catchup:
            self._catchup.setdefault(signer, set()).add(message.round)
        existing: Message | None
        if isinstance(message, Proposal):
            result, existing = self._state.add_proposal(message)
        else:
            result, existing = self._state.add_vote(message)
        if isinstance(message, Proposal) and result is not Added.DUPLICATE:
            self._proposal_links[id(message)] = self._link
        if result is Added.CONFLICT and existing is not None:
            self._record_evidence(existing, message)

    def _proposal_fields_ok(self, proposal: Proposal) -> bool:
        expected = self._validators_at(proposal.height).proposer_index(proposal.height, proposal.round)
        if proposal.proposer_index != expected:
            self._reject(proposal.proposer_index, WrongProposer(
                f"validator {proposal.proposer_index} is not the proposer of height {proposal.height} "
                f"round {proposal.round} (validator {expected} is)"))
            return False
        if not -1 <= proposal.pol_round < proposal.round:
            self._reject(proposal.proposer_index, InvalidProposal(
                f"pol_round {proposal.pol_round} is not below round {proposal.round}"))
            return False
        return True

    def _handle_future(self, message: Message, now: int, *, verified: bool) -> None:
        """Height+1 (whose validator set we know): verify and buffer (bounded per validator)."""
        signer = message.signer
        key = self._validators_at(message.height).public_key(signer)
        known = self._ahead.known(key)
        if isinstance(message, Proposal) and not self._proposal_fields_ok(message):
            return
        held = self._future.held(message)
        if held is not None and held.signing_bytes() == message.signing_bytes():
            return
        if held is not None and not verified and self._evidence_unwanted(message_slot(message)):
            return  # a conflicting variant is only evidence here (it is not buffered)
        room = self._future.has_room(signer)
        if held is None and not room and message.height <= known:
            return
        if not verified and not self._verified(message):
            return
        if held is not None:
            self._record_evidence(held, message)
        elif room:
            self._future.put(message, self._link)
        self._ahead.saw(key, message.height)

    def _handle_far(self, message: Message, *, verified: bool) -> None:
        """Beyond height+1: only the ``PeerAhead`` estimate. The set in force there may not be known
        yet (a change committed at our height is in force at height+2, and after a change every index
        may name another validator), so the message is checked against the latest set we know; one
        that does not check is ignored, not blamed — and then counts only for the authenticated link
        that delivered it, which holds messages of that height, so it is at least one height below."""
        validators = self._validators_at(message.height)
        if 0 <= message.signer < validators.size:
            key = validators.public_key(message.signer)
            if message.height <= self._ahead.known(key):
                return
            try:
                if not verified:
                    verify_message(message, validators, self._verify)
            except RemoteProtocolError:
                pass
            else:
                self._ahead.saw(key, message.height)
                return
        link = self._link
        current = self._validators_at(self.height)
        if link is not None and 0 <= link < current.size:
            self._ahead.saw(current.public_key(link), message.height - 1)

    def _verified(self, message: Message) -> bool:
        try:
            verify_message(message, self._validators_at(message.height), self._verify)
        except RemoteProtocolError as exc:
            self._reject(None if isinstance(exc, UnknownValidator) else message.signer, exc)
            return False
        return True

    def _catchup_allowed(self, signer: int, round_: int) -> bool:
        """Each validator may hold us to at most two rounds beyond the next one (bounded memory)."""
        rounds = self._catchup.get(signer, set())
        return round_ in rounds or len(rounds) < CATCHUP_ROUNDS_PER_VALIDATOR

    def _help_stale(self, message: Message, now: int) -> None:
        """A validator still at the height we decided last: help the validator whose link delivered
        the message (or, without a link, its signer) — ``Decision.help``."""
        decision = self._decision
        if decision is None or message.height != decision.height:
            return
        target = self._link if self._link is not None else message.signer
        if not 0 <= target < self._validators_at(message.height).size or target == self._my_index_at(message.height):
            return
        self._out.extend(decision.help(message, target, now, self._timeouts.rebroadcast_ms))

    def _compare_decided(self, message: Message) -> None:
        """A (relayed) precommit of a decided height that contradicts one we hold is evidence."""
        held = self._book.contradicted(message, self.height)
        if held is not None and self._verified(message):
            self._record_evidence(held, message)

    def _handle_evidence(self, evidence: Evidence) -> None:
        """Gossiped evidence: verify both signatures and the conflict, record it (and so relay it) once."""
        if self._evidence_unwanted(message_slot(evidence.first), gossiped=True):
            return  # before any signature check: counted, not against the (honest) relaying link
        try:
            verify_evidence(evidence, self._validators_at(evidence.first.height), self.chain_id, self._verify)
        except InvalidEvidence as exc:
            self._reject(evidence.first.signer, exc)
            return
        self._record_evidence(evidence.first, evidence.second)

    def _check_peer_ahead(self, now: int) -> None:
        """``PeerAhead`` when ⌊n/3⌋+1 validators are ahead, or our own signing state is (a wiped validator)."""
        ahead = self._ahead.check(self.height, self._validators_at(self.height).skip, now, self._timeouts,
                                  own=self._signing.height)
        if ahead is not None:
            self._out.append(ahead)

    # --- evidence and rejections -----------------------------------------------------------------

    def _evidence_unwanted(self, slot: tuple[int, int, int, str], *, gossiped: bool = False) -> bool:
        return self._book.unwanted(slot, self.height, gossiped=gossiped)

    def _record_evidence(self, first: Message, second: Message) -> None:
        evidence = self._book.record(first, second, self.height)
        if evidence is not None:
            self._out.append(EvidenceFound(evidence))

    def _reject(self, claimed: int | None, error: RemoteProtocolError) -> None:
        """Count ``error`` against the link that delivered the input; ``claimed`` is only reported."""
        self.rejected[error.code] = self.rejected.get(error.code, 0) + 1
        self._out.append(RejectedMessage(self._link, error, claimed))
