"""A sans-I/O Tendermint engine (Buchman, Kwon, Milosevic 2018, Algorithm 1), shaped like h11.

The node drives it with three calls — ``receive(message, now_ms)``, ``tick(now_ms)`` and
``skip_to(height, last_commit)`` — plus ``next_deadline()``, and handles the returned outputs in
order. The engine never reads a clock, sleeps or does I/O: time is an argument.

The paper's ``upon`` rules are the methods ``_upon_*`` below, named after their lines; the rule
loop (``_run_rules``) fires them until none applies. Thresholds: quorum = ⌊2n/3⌋+1 (the paper's
2f+1), skip = ⌊n/3⌋+1 (the paper's f+1).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from chain.block import STEP_PRECOMMIT, STEP_PREVOTE, CommitCertificate, ValidatorSet, make_certificate
from chain.crypto import verify
from consensus.errors import (
    InvalidEvidence,
    InvalidProposal,
    LocalProtocolError,
    MalformedMessage,
    RemoteProtocolError,
    UnknownValidator,
    WrongChain,
    WrongProposer,
)
from consensus.messages import (
    STEP_PROPOSE,
    STEP_RANK,
    Evidence,
    Message,
    PeerItem,
    Proposal,
    Verifier,
    Vote,
    decode_item,
    make_evidence,
    message_slot,
    verify_evidence,
    verify_message,
)
from consensus.outputs import (
    Application,
    Broadcast,
    Commit,
    EvidenceFound,
    Output,
    PeerAhead,
    PersistSigningState,
    RejectedMessage,
    Send,
    TimeoutConfig,
)
from consensus.signing_state import SigningState
from consensus.votes import MAX_PROPOSALS_PER_ROUND, MAX_VARIANTS_PER_VALIDATOR, Added, HeightState, RoundVotes

STEP_NEW_HEIGHT = "new_height"
"""Waiting at a new height for transactions, a deadline, the heartbeat or a proposal."""

FUTURE_BUFFER_PER_VALIDATOR = 12
CATCHUP_ROUNDS_PER_VALIDATOR = 2
NEVER = 2**63
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


def _cached_verify(public_key: bytes, signature: bytes, message: bytes) -> None:
    verify(public_key, signature, message, cache_key=True)


@dataclass(slots=True)
class _Decision:
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


def _carries(message: Message, block_hash: bytes) -> bool:
    """True when signing ``message`` required holding a proposal of ``block_hash``."""
    return message.block_hash == block_hash


class Engine:
    # Reset per height in ``_reset_height``; declared here because ``tick`` reads them first.
    _propose_at: int | None
    _recheck_at: int | None
    _rebroadcast_at: int

    def __init__(self, chain_id: str, validators: ValidatorSet, my_index: int | None,
                 signer: Callable[[bytes], bytes] | None, app: Application,
                 timeouts: TimeoutConfig = TimeoutConfig(), *, heartbeat_ms: int = 5000, batch_ms: int = 5,
                 signing_state: SigningState | None = None, start_height: int = 1,
                 last_commit: CommitCertificate | None = None, verifier: Verifier | None = None) -> None:
        if my_index is not None and not 0 <= my_index < validators.size:
            raise LocalProtocolError(f"my_index {my_index} is outside the validator set")
        if my_index is not None and signer is None:
            raise LocalProtocolError("a validator engine needs a signer")
        if start_height < 1:
            raise LocalProtocolError("start_height must be at least 1")
        if last_commit is not None and last_commit.height != start_height - 1:
            raise LocalProtocolError(
                f"last_commit is for height {last_commit.height}, start height is {start_height}")
        if heartbeat_ms <= 0 or batch_ms < 0:
            raise LocalProtocolError("heartbeat_ms must be positive and batch_ms not negative")
        self.chain_id = chain_id
        self.validators = validators
        self.my_index = my_index
        self._signer = signer
        self._app = app
        self._timeouts = timeouts
        self._heartbeat_ms = heartbeat_ms
        self._batch_ms = batch_ms
        self._verify: Verifier = verifier if verifier is not None else _cached_verify
        self._signing = signing_state if signing_state is not None else SigningState.initial()
        self._last_commit = last_commit
        self._quorum = validators.quorum
        self._skip = validators.skip
        # across heights
        self.height = start_height
        self._entered = False
        self._now: int | None = None
        self._committed_at: int | None = None
        self._future: dict[tuple[int, int, int, str], tuple[Message, int | None]] = {}
        self._ahead: dict[int, int] = {}
        self._ahead_since: int | None = None
        self._peer_ahead_next: int | None = None
        self._peer_ahead_sent: tuple[int, int] | None = None
        self._decision: _Decision | None = None if last_commit is None else self._synced_decision(last_commit)
        self._decided_precommits: dict[int, dict[int, RoundVotes]] = {}
        self._evidence_slots: dict[int, set[tuple[int, int, int, str]]] = {}
        self._link: int | None = None
        self.evidence: list[Evidence] = []
        self.rejected: dict[str, int] = {}
        self.evidence_ignored: dict[str, int] = {}
        """Evidence not recorded, by reason (``EVIDENCE_*``): harmless, counted against nobody."""
        self._out: list[Output] = []
        self._reset_height(0)

    # --- public API -----------------------------------------------------------------------------

    @property
    def round(self) -> int:
        return self._round

    @property
    def step(self) -> str:
        return self._step

    @property
    def locked_round(self) -> int:
        return self._locked_round

    @property
    def valid_round(self) -> int:
        return self._valid_round

    @property
    def signing_state(self) -> SigningState:
        return self._signing

    @property
    def last_commit(self) -> CommitCertificate | None:
        return self._last_commit

    def start(self, now_ms: int) -> list[Output]:
        """Enter the start height: re-send what a restored signing state says we signed there."""
        self._begin(now_ms)
        self._run_rules(now_ms)
        return self._flush()

    def receive(self, message: PeerItem, now_ms: int, sender: int | None = None) -> list[Output]:
        """Take a peer's proposal, vote or evidence. ``sender`` is the validator whose authenticated
        link delivered it (``None`` if unknown): rejections are counted against it, and help for a
        lagging validator goes to it."""
        self._begin(now_ms)
        self._link = sender
        if isinstance(message, Evidence):
            self._handle_evidence(message)
        else:
            self._handle(message, now_ms, verified=False)
        self._link = None
        self._run_rules(now_ms)
        self._check_peer_ahead(now_ms)
        return self._flush()

    def receive_data(self, data: bytes, now_ms: int, sender: int | None = None) -> list[Output]:
        """Decode and receive; undecodable bytes become a ``RejectedMessage(sender, MalformedMessage)``."""
        try:
            message = decode_item(data)
        except MalformedMessage as exc:
            self._link = sender
            self._reject(None, exc)
            self._link = None
            return self._flush()
        return self.receive(message, now_ms, sender)

    def observe_certificate(self, certificate: CommitCertificate, now_ms: int,
                            sender: int | None = None) -> list[Output]:
        """Compare a commit certificate seen elsewhere (in a block's ``last_commit``, from block sync)
        with the precommits we hold for that height: a signature for another block is evidence."""
        self._now = now_ms
        self._link = sender
        rounds = self._decided_precommits.get(certificate.height, {})
        tally = rounds.get(certificate.round, RoundVotes())
        for index, signature in certificate.signatures:
            signed = tally.variants.get(index)
            if not signed or certificate.block_hash in signed:
                continue
            vote = Vote(self.chain_id, STEP_PRECOMMIT, certificate.height, certificate.round,
                        certificate.block_hash, index, signature)
            if not self._evidence_unwanted(message_slot(vote)) and self._verified(vote):
                self._record_evidence(next(iter(signed.values())), vote)
        self._link = None
        return self._flush()

    def tick(self, now_ms: int) -> list[Output]:
        self._begin(now_ms)
        self._run_rules(now_ms)
        while self._entered and self._timers and self._timers[0][0] <= now_ms:
            _, _, kind, round_ = heapq.heappop(self._timers)
            self._on_timeout(kind, round_, now_ms)
            self._run_rules(now_ms)
        if self._entered and self._propose_at is not None and now_ms >= self._propose_at:
            self._propose_at = None
            if self._step == STEP_PROPOSE and (self._round, STEP_PROPOSE) not in self._own:
                self._propose(now_ms)
                self._run_rules(now_ms)
        if self._entered and self._recheck_at is not None and now_ms >= self._recheck_at:
            self._recheck_at = None
            self._run_rules(now_ms)
        if self._entered and self._step != STEP_NEW_HEIGHT and now_ms >= self._rebroadcast_at:
            self._rebroadcast(now_ms)
        self._check_peer_ahead(now_ms)
        return self._flush()

    def next_deadline(self) -> int | None:
        """When the node should call ``tick`` next (it may call it earlier, or on new transactions)."""
        if self._now is None:
            return None
        if not self._entered:
            return self._now
        candidates = [self._timers[0][0]] if self._timers else []
        for moment in (self._propose_at, self._recheck_at):
            if moment is not None:
                candidates.append(moment)
        if self._step == STEP_NEW_HEIGHT:
            candidates.append(self._height_started_at + self._heartbeat_ms)
            candidates.append(self._now + self._timeouts.idle_poll_ms)
        elif self._own:
            candidates.append(self._rebroadcast_at)
        if self._peer_ahead_next is not None:
            candidates.append(self._peer_ahead_next)
        return min(candidates) if candidates else None

    def restore_evidence(self, items: list[Evidence]) -> None:
        """Evidence recorded before a restart (the node re-verified it): its slots count as recorded,
        so the same equivocation received again is neither recorded nor relayed a second time. No
        ``EvidenceFound`` is emitted for these."""
        for evidence in items:
            slot = message_slot(evidence.first)
            slots = self._evidence_slots.setdefault(slot[0], set())
            if slot in slots:
                continue
            slots.add(slot)
            self.evidence.append(evidence)
        del self.evidence[:-KEEP_EVIDENCE]

    def skip_to(self, height: int, last_commit: CommitCertificate | None) -> None:
        """Jump to ``height`` after the node synced blocks up to ``height - 1`` by other means."""
        if height <= self.height:
            return
        if last_commit is not None and last_commit.height != height - 1:
            raise LocalProtocolError(f"last_commit is for height {last_commit.height}, not {height - 1}")
        self.height = height
        self._last_commit = last_commit
        if last_commit is not None:
            self._decision = self._synced_decision(last_commit)
        self._committed_at = None
        self._entered = False
        self._future = {key: item for key, item in self._future.items() if key[0] == height}

    # --- heights and rounds ---------------------------------------------------------------------

    def _reset_height(self, now: int) -> None:
        self._state = HeightState(self._quorum)
        self._round = 0
        self._step = STEP_NEW_HEIGHT
        self._locked_round = -1
        self._locked_hash: bytes | None = None
        self._locked_block: bytes | None = None
        self._valid_round = -1
        self._valid_hash: bytes | None = None
        self._valid_block: bytes | None = None
        self._flags: set[tuple[str, int]] = set()
        self._timers: list[tuple[int, int, str, int]] = []
        self._timer_seq = 0
        self._propose_at = None
        self._recheck_at = None
        self._own: dict[tuple[int, str], Message] = {}
        self._validity: dict[tuple[bytes, bytes], tuple[bool, int]] = {}
        self._proposal_links: dict[int, int | None] = {}
        """id() of each held proposal → the link that delivered it (blamed if its bytes do not match)."""
        self._catchup: dict[int, set[int]] = {}
        self._height_started_at = now
        self._rebroadcast_at = now + self._timeouts.rebroadcast_ms
        self._ahead_since = self._peer_ahead_next = None

    def _begin(self, now: int) -> None:
        self._now = now
        if not self._entered:
            self._enter_height(now)

    def _enter_height(self, now: int) -> None:
        self._entered = True
        self._reset_height(now)
        if self._committed_at is not None:
            self._height_started_at = self._committed_at
        state = self._signing
        if state.height == self.height and self.my_index is not None:
            self._restore(state, now)
        buffered = [item for key, item in self._future.items() if key[0] == self.height]
        self._future = {}
        for message, link in buffered:
            self._link = link
            self._handle(message, now, verified=True)
        self._link = None

    def _restore(self, state: SigningState, now: int) -> None:
        """Resume where the persisted signing state says we were at this height, lock included."""
        self._round, self._step = state.round, state.step
        self._locked_round, self._locked_hash, self._locked_block = (
            state.locked_round, state.locked_block_hash, state.locked_block)
        self._valid_round, self._valid_hash, self._valid_block = (
            state.valid_round, state.valid_block_hash, state.valid_block)
        for message in state.last_signed:
            self._send(message)
        if self._step == STEP_PROPOSE:
            self._schedule("propose", self._round, now + self._timeouts.propose(self._round))
        self._progress(now)

    def _start_round(self, round_: int, now: int, *, batch: bool = False) -> None:
        self._round = round_
        self._step = STEP_PROPOSE
        self._propose_at = None
        self._progress(now)
        for rounds in self._catchup.values():
            rounds.difference_update([r for r in rounds if r <= round_ + 1])
        self._schedule("propose", round_, now + self._timeouts.propose(round_))
        if self.my_index is not None and self.validators.proposer_index(self.height, round_) == self.my_index:
            if batch and self._batch_ms > 0:
                self._propose_at = now + self._batch_ms
            else:
                self._propose(now)

    def _propose(self, now: int) -> None:
        if self.my_index is None:
            return
        if self._valid_hash is not None and self._valid_block is not None:
            block_hash, block, pol_round = self._valid_hash, self._valid_block, self._valid_round
        else:
            block_hash, block = self._app.create_block(self.height, self._round, now, self._last_commit)
            pol_round = -1
        signed = self._sign(Proposal(self.chain_id, self.height, self._round, pol_round, block_hash, block,
                                     self.my_index, b""))
        if signed is None:
            return
        self._send(signed)
        self._relay_polka(signed)

    def _relay_polka(self, message: Message) -> None:
        """A re-proposal carries its justification: the prevotes of its pol_round."""
        if isinstance(message, Proposal) and message.pol_round >= 0:
            for vote in self._state.prevotes(message.pol_round).votes_for(message.block_hash):
                self._out.append(Broadcast(vote))

    def _decide(self, round_: int, block_hash: bytes, proposal: Proposal, now: int) -> None:
        precommits = tuple(self._state.precommits(round_).votes_for(block_hash))
        certificate = make_certificate(self.height, round_, block_hash,
                                       [(v.validator_index, v.signature) for v in precommits])
        self._out.append(Commit(self.height, proposal.block, block_hash, certificate))
        self._decision = _Decision(self.height, block_hash, proposal, precommits, self._holders_of(block_hash))
        self._decided_precommits[self.height] = {
            round_: votes for (round_, step), votes in self._state.rounds.items() if step == STEP_PRECOMMIT}
        for old in sorted(self._decided_precommits)[:-KEEP_DECIDED_HEIGHTS]:
            del self._decided_precommits[old]
        self._last_commit = certificate
        self._committed_at = now
        self.height += 1
        self._entered = False  # the next height starts on the next call, after the node applied this one

    # --- the rules of Algorithm 1 ----------------------------------------------------------------

    def _run_rules(self, now: int) -> None:
        while self._entered:
            for rule in _RULES:
                if rule(self, now):
                    break
            else:
                return

    def _upon_commit_quorum(self, now: int) -> bool:
        """Line 49: a proposal and a quorum of precommits for its block, from any round → decide."""
        waiting = False
        for round_, block_hash in self._state.precommit_quorums:
            for proposal in self._state.proposals_for(block_hash):
                if self._is_valid(proposal, now):
                    self._decide(round_, block_hash, proposal, now)
                    return True
                waiting = True
        if waiting and self._recheck_at is None:
            self._recheck_at = now + self._timeouts.recheck_ms
        return False

    def _upon_round_skip(self, now: int) -> bool:
        """Line 55: ⌊n/3⌋+1 validators sent messages of a higher round → start that round."""
        floor = -1 if self._step == STEP_NEW_HEIGHT else self._round
        higher = [r for r in self._state.rounds_with_senders(self._skip) if r > floor]
        if not higher:
            return False
        self._start_round(max(higher), now)
        return True

    def _upon_height_start(self, now: int) -> bool:
        """Block cutting: start round 0 when there is something to propose, or someone proposed."""
        if self._step != STEP_NEW_HEIGHT:
            return False
        if self._state.proposals or now >= self._height_started_at + self._heartbeat_ms:
            self._start_round(0, now)
        elif self._app.deadline_due(now):
            self._start_round(0, now)
        elif self._app.has_pending():
            self._start_round(0, now, batch=True)
        else:
            return False
        return True

    def _upon_proposal_fresh(self, now: int) -> bool:
        """Line 22: a proposal without pol_round → prevote it if valid and we are not locked elsewhere."""
        proposal = self._state.primary_proposal(self._round)
        if self._step != STEP_PROPOSE or proposal is None or proposal.pol_round != -1:
            return False
        acceptable = self._locked_round == -1 or self._locked_hash == proposal.block_hash
        self._prevote(proposal.block_hash if acceptable and self._is_valid(proposal, now) else None, now)
        return True

    def _upon_proposal_with_polka(self, now: int) -> bool:
        """Line 28: a re-proposal backed by a quorum of prevotes of its pol_round."""
        proposal = self._state.primary_proposal(self._round)
        if self._step != STEP_PROPOSE or proposal is None or not 0 <= proposal.pol_round < self._round:
            return False
        if self._state.prevotes(proposal.pol_round).count(proposal.block_hash) < self._quorum:
            return False
        acceptable = self._locked_round <= proposal.pol_round or self._locked_hash == proposal.block_hash
        self._prevote(proposal.block_hash if acceptable and self._is_valid(proposal, now) else None, now)
        return True

    def _upon_polka_for_block(self, now: int) -> bool:
        """Line 36: a quorum of prevotes for this round's valid proposal → lock, precommit, valid value."""
        if self._step not in (STEP_PREVOTE, STEP_PRECOMMIT) or ("polka", self._round) in self._flags:
            return False
        prevotes = self._state.prevotes(self._round)
        for block_hash, count in list(prevotes.counts.items()):
            if block_hash is None or count < self._quorum:
                continue
            for proposal in list(self._state.proposals.get(self._round, [])):
                if proposal.block_hash != block_hash or not self._is_valid(proposal, now):
                    continue
                self._flags.add(("polka", self._round))
                if self._step == STEP_PREVOTE:
                    self._locked_round, self._locked_hash, self._locked_block = (
                        self._round, block_hash, proposal.block)
                    self._valid_round, self._valid_hash, self._valid_block = (
                        self._round, block_hash, proposal.block)
                    self._precommit(block_hash, now)
                else:
                    self._valid_round, self._valid_hash, self._valid_block = (
                        self._round, block_hash, proposal.block)
                return True
        return False

    def _upon_polka_nil(self, now: int) -> bool:
        """Line 44: a quorum of nil prevotes → precommit nil."""
        if self._step != STEP_PREVOTE or self._state.prevotes(self._round).count(None) < self._quorum:
            return False
        self._precommit(None, now)
        return True

    def _upon_prevotes_any(self, now: int) -> bool:
        """Line 34: a quorum of prevotes for anything → start the prevote timeout."""
        flag = ("prevote_timeout", self._round)
        if self._step != STEP_PREVOTE or flag in self._flags:
            return False
        if self._state.prevotes(self._round).total < self._quorum:
            return False
        self._flags.add(flag)
        self._schedule("prevote", self._round, now + self._timeouts.prevote(self._round))
        return True

    def _upon_precommits_any(self, now: int) -> bool:
        """Line 47: a quorum of precommits for anything → start the precommit timeout."""
        flag = ("precommit_timeout", self._round)
        if self._step == STEP_NEW_HEIGHT or flag in self._flags:
            return False
        if self._state.precommits(self._round).total < self._quorum:
            return False
        self._flags.add(flag)
        self._schedule("precommit", self._round, now + self._timeouts.precommit(self._round))
        return True

    def _on_timeout(self, kind: str, round_: int, now: int) -> None:
        """Lines 57-67: timeouts of the current round only."""
        if round_ != self._round:
            return
        if kind == "propose" and self._step == STEP_PROPOSE:
            self._prevote(None, now)
        elif kind == "prevote" and self._step == STEP_PREVOTE:
            self._precommit(None, now)
        elif kind == "precommit" and self._step != STEP_NEW_HEIGHT:
            self._start_round(round_ + 1, now)

    # --- signing --------------------------------------------------------------------------------

    def _prevote(self, block_hash: bytes | None, now: int) -> None:
        self._step = STEP_PREVOTE
        self._progress(now)
        self._vote(STEP_PREVOTE, block_hash)

    def _precommit(self, block_hash: bytes | None, now: int) -> None:
        self._step = STEP_PRECOMMIT
        self._progress(now)
        self._vote(STEP_PRECOMMIT, block_hash)

    def _vote(self, step: str, block_hash: bytes | None) -> None:
        if self.my_index is None:
            return
        signed = self._sign(Vote(self.chain_id, step, self.height, self._round, block_hash, self.my_index, b""))
        if signed is not None:
            self._send(signed)

    def _sign(self, unsigned: Message) -> Message | None:
        """Sign above the high-water mark (persisting first); at or below it, only re-send what we signed."""
        if self.my_index is None or self._signer is None:
            return None
        state = self._signing
        position = (unsigned.height, unsigned.round, STEP_RANK[unsigned.step])
        if position <= state.position:
            return state.signed_at(unsigned.height, unsigned.round, unsigned.step)
        if not state.may_sign_at(unsigned.height):
            return None  # a recovered validator's floor: it may have signed here before it lost its state
        signed: Message = replace(unsigned, signature=self._signer(unsigned.signing_bytes()))
        kept = tuple(m for m in state.last_signed if m.height == signed.height and m.round >= signed.round - 1)
        self._signing = SigningState(
            height=signed.height, round=signed.round, step=signed.step,
            locked_round=self._locked_round, locked_block_hash=self._locked_hash, locked_block=self._locked_block,
            valid_round=self._valid_round, valid_block_hash=self._valid_hash, valid_block=self._valid_block,
            last_signed=kept + (signed,), floor=state.floor,
        )
        self._out.append(PersistSigningState(self._signing))
        return signed

    def _send(self, message: Message) -> None:
        self._out.append(Broadcast(message))
        self._own[(message.round, message.step)] = message
        if isinstance(message, Proposal):
            self._state.add_proposal(message)
            self._proposal_links[id(message)] = None
        else:
            self._state.add_vote(message)

    def _rebroadcast(self, now: int) -> None:
        """Re-send our messages of this round and the previous one (lost messages must not stall rounds)."""
        self._rebroadcast_at = now + self._timeouts.rebroadcast_ms
        for (round_, _), message in sorted(self._own.items(), key=lambda item: (item[0][0], STEP_RANK[item[0][1]])):
            if round_ >= self._round - 1:
                self._out.append(Broadcast(message))
                if round_ == self._round:
                    self._relay_polka(message)

    # --- incoming messages ----------------------------------------------------------------------

    def _handle(self, message: Message, now: int, *, verified: bool) -> None:
        signer = message.signer
        if message.chain_id != self.chain_id:
            self._reject(signer, WrongChain(f"message for chain {message.chain_id[:64]!r}"))
            return
        if not 0 <= signer < self.validators.size:
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
        if not verified and self._only_evidence(message) and self._evidence_unwanted(message_slot(message)):
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

    def _only_evidence(self, message: Message) -> bool:
        """Whether ``message`` (not held) would only be evidence: the state already keeps as many
        variants of its signer's slot as it will (see ``RoundVotes.add`` and ``HeightState``)."""
        if isinstance(message, Proposal):
            return len(self._state.proposals.get(message.round, ())) >= MAX_PROPOSALS_PER_ROUND
        tally = self._state.rounds.get((message.round, message.step))
        signed = tally.variants.get(message.validator_index) if tally is not None else None
        if not signed or len(signed) < MAX_VARIANTS_PER_VALIDATOR:
            return False
        return message.block_hash is None or not self._state.proposals_for(message.block_hash)

    def _proposal_fields_ok(self, proposal: Proposal) -> bool:
        expected = self.validators.proposer_index(proposal.height, proposal.round)
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
        signer = message.signer
        known = self._ahead.get(signer, 0)
        if message.height == self.height + 1:
            if isinstance(message, Proposal) and not self._proposal_fields_ok(message):
                return
            key = (message.height, signer, message.round, message.step)
            held_item = self._future.get(key)
            held = held_item[0] if held_item is not None else None
            if held is not None and held.signing_bytes() == message.signing_bytes():
                return
            if held is not None and not verified and self._evidence_unwanted(message_slot(message)):
                return  # a conflicting variant is only evidence here (it is not buffered)
            room = sum(1 for k in self._future if k[1] == signer) < FUTURE_BUFFER_PER_VALIDATOR
            if held is None and not room and message.height <= known:
                return
            if not verified and not self._verified(message):
                return
            if held is not None:
                self._record_evidence(held, message)
            elif room:
                self._future[key] = (message, self._link)
        elif message.height <= known:
            return
        elif not verified and not self._verified(message):
            return
        self._ahead[signer] = max(known, message.height)

    def _verified(self, message: Message) -> bool:
        try:
            verify_message(message, self.validators, self._verify)
        except RemoteProtocolError as exc:
            self._reject(None if isinstance(exc, UnknownValidator) else message.signer, exc)
            return False
        return True

    def _catchup_allowed(self, signer: int, round_: int) -> bool:
        """Each validator may hold us to at most two rounds beyond the next one (bounded memory)."""
        rounds = self._catchup.get(signer, set())
        return round_ in rounds or len(rounds) < CATCHUP_ROUNDS_PER_VALIDATOR

    def _help_stale(self, message: Message, now: int) -> None:
        """A validator still at the height we decided last: send it that block's precommits, and the
        proposal unless it provably holds one (then only if it is still there a rebroadcast later).

        Help goes only to the validator whose link delivered the message (or, without a link, to its
        signer), at most once per ``rebroadcast_ms`` each. A validator that precommitted the block
        has its proposal; re-sending it every height was most of a decided height's traffic.
        """
        decision = self._decision
        if decision is None or message.height != decision.height:
            return
        target = self._link if self._link is not None else message.signer
        if not 0 <= target < self.validators.size or target == self.my_index:
            return
        if message.signer == target and _carries(message, decision.block_hash):
            decision.has_block.add(target)  # its own claim: a lie could only hurt itself
        next_at, times = decision.helped.get(target, (0, 0))
        if now < next_at:
            return
        decision.helped[target] = (now + self._timeouts.rebroadcast_ms, times + 1)
        if decision.proposal is not None and (target not in decision.has_block or times >= 1):
            self._out.append(Send(target, decision.proposal))
        for vote in decision.precommits:
            if vote.validator_index != target:
                self._out.append(Send(target, vote))

    def _synced_decision(self, certificate: CommitCertificate) -> _Decision:
        """What we can still give validators at a height we did not decide ourselves: its precommits,
        rebuilt from the certificate (a quorum of them lets a validator holding the block commit)."""
        precommits = tuple(Vote(self.chain_id, STEP_PRECOMMIT, certificate.height, certificate.round,
                                certificate.block_hash, index, signature)
                           for index, signature in certificate.signatures)
        return _Decision(certificate.height, certificate.block_hash, None, precommits)

    def _holders_of(self, block_hash: bytes) -> set[int]:
        """Validators whose verified proposal or vote for ``block_hash`` we hold at this height."""
        holders = {p.proposer_index for p in self._state.proposals_for(block_hash)}
        for votes in self._state.rounds.values():
            holders.update(index for index, signed in votes.variants.items() if block_hash in signed)
        return holders

    def _compare_decided(self, message: Message) -> None:
        """A (relayed) precommit of a decided height that contradicts one we hold is evidence."""
        if not isinstance(message, Vote) or message.step != STEP_PRECOMMIT:
            return
        rounds = self._decided_precommits.get(message.height)
        tally = rounds.get(message.round) if rounds is not None else None
        signed = tally.variants.get(message.validator_index) if tally is not None else None
        if not signed or message.block_hash in signed or self._evidence_unwanted(message_slot(message)):
            return
        if self._verified(message):
            self._record_evidence(next(iter(signed.values())), message)

    def _handle_evidence(self, evidence: Evidence) -> None:
        """Gossiped evidence: verify both signatures and the conflict, record it (and so relay it) once."""
        if self._evidence_unwanted(message_slot(evidence.first), gossiped=True):
            return  # before any signature check: counted, not against the (honest) relaying link
        try:
            verify_evidence(evidence, self.validators, self.chain_id, self._verify)
        except InvalidEvidence as exc:
            self._reject(evidence.first.signer, exc)
            return
        self._record_evidence(evidence.first, evidence.second)

    def _check_peer_ahead(self, now: int) -> None:
        """⌊n/3⌋+1 validators at a higher height: one height for the grace period, or two at once."""
        heights = sorted((h for h in self._ahead.values() if h > self.height), reverse=True)
        if len(heights) < self._skip:
            self._ahead_since = self._peer_ahead_next = None
            return
        target = heights[self._skip - 1]
        if self._ahead_since is None:
            self._ahead_since = now
        due = now if target >= self.height + 2 else self._ahead_since + self._timeouts.catchup_grace_ms
        sent = self._peer_ahead_sent
        if sent is not None and sent[0] >= target:
            due = max(due, sent[1] + self._timeouts.rebroadcast_ms)
        if now < due:
            self._peer_ahead_next = due
            return
        self._peer_ahead_sent = (target, now)
        self._peer_ahead_next = now + self._timeouts.rebroadcast_ms
        self._out.append(PeerAhead(target))

    # --- helpers --------------------------------------------------------------------------------

    def _is_valid(self, proposal: Proposal, now: int) -> bool:
        """The application's verdict on a proposal's block, cached; a wrong block hash is rejected."""
        key = (proposal.block_hash, proposal.block)
        cached = self._validity.get(key)
        if cached is not None and (cached[0] or now < cached[1]):
            return cached[0]
        block_hash = self._app.check_block(self.height, proposal.block, now)
        if block_hash is None:
            self._validity[key] = (False, now + self._timeouts.recheck_ms)
            return False
        if block_hash != proposal.block_hash:
            self._validity[key] = (False, NEVER)
            self._state.drop_proposal(proposal)
            link, self._link = self._link, self._proposal_links.pop(id(proposal), None)
            self._reject(proposal.proposer_index, InvalidProposal(
                f"proposal at height {proposal.height} round {proposal.round}: block hash does not match"))
            self._link = link
            return False
        self._validity[key] = (True, 0)
        return True

    def _evidence_unwanted(self, slot: tuple[int, int, int, str], *, gossiped: bool = False) -> bool:
        """True (and counted by reason) if evidence for ``slot`` is not to be recorded: already
        recorded, too far from our height, or (``gossiped``) its validator at the cap."""
        reason = None
        signer, height = slot[0], slot[1]
        slots = self._evidence_slots.get(signer)
        if abs(height - self.height) > EVIDENCE_HEIGHT_WINDOW:
            reason = EVIDENCE_OUTSIDE_WINDOW
        elif slots is not None and slot in slots:
            reason = EVIDENCE_DUPLICATE
        elif slots is not None and len(slots) >= KEEP_EVIDENCE_PER_VALIDATOR:
            oldest = self.height - EVIDENCE_HEIGHT_WINDOW
            slots.difference_update([old for old in slots if old[1] < oldest])
            if gossiped and len(slots) >= KEEP_EVIDENCE_PER_VALIDATOR:
                reason = EVIDENCE_VALIDATOR_CAP
        if reason is None:
            return False
        self.evidence_ignored[reason] = self.evidence_ignored.get(reason, 0) + 1
        return True

    def _record_evidence(self, first: Message, second: Message) -> None:
        slot = message_slot(first)
        if self._evidence_unwanted(slot):
            return
        self._evidence_slots.setdefault(slot[0], set()).add(slot)
        evidence = make_evidence(first, second)
        self.evidence.append(evidence)
        del self.evidence[:-KEEP_EVIDENCE]
        self._out.append(EvidenceFound(evidence))

    def _reject(self, claimed: int | None, error: RemoteProtocolError) -> None:
        """Count ``error`` against the link that delivered the input; ``claimed`` is only reported."""
        self.rejected[error.code] = self.rejected.get(error.code, 0) + 1
        self._out.append(RejectedMessage(self._link, error, claimed))

    def _schedule(self, kind: str, round_: int, deadline: int) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (deadline, self._timer_seq, kind, round_))

    def _progress(self, now: int) -> None:
        self._rebroadcast_at = now + self._timeouts.rebroadcast_ms

    def _flush(self) -> list[Output]:
        out, self._out = self._out, []
        return out


_RULES: tuple[Callable[[Engine, int], bool], ...] = (
    Engine._upon_commit_quorum,
    Engine._upon_round_skip,
    Engine._upon_height_start,
    Engine._upon_proposal_fresh,
    Engine._upon_proposal_with_polka,
    Engine._upon_polka_for_block,
    Engine._upon_polka_nil,
    Engine._upon_prevotes_any,
    Engine._upon_precommits_any,
)
