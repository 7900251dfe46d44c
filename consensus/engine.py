"""A sans-I/O Tendermint engine (Buchman, Kwon, Milosevic 2018, Algorithm 1), shaped like h11.

The node drives it with three calls — ``receive(message, now_ms)``, ``tick(now_ms)`` and
``skip_to(height, last_commit)`` — plus ``next_deadline()``, and handles the returned outputs in
order. The engine never reads a clock, sleeps or does I/O: time is an argument.

The validator set is an argument per height (``validator_sets(height)``): the set in force at a
height signs its messages, and its size gives that height's quorum, skip threshold and proposer
order. A validator is known by its key (``my_key``); its index, and whether it signs at all,
follow the set of the current height (docs/CONSENSUS.md §13).

The paper's ``upon`` rules are the methods ``_upon_*`` below, named after their lines; the rule
loop (``_run_rules``) fires them until none applies. Thresholds: quorum = ⌊2n/3⌋+1 (the paper's
2f+1), skip = ⌊n/3⌋+1 (the paper's f+1).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import replace

from chain.block import STEP_PRECOMMIT, STEP_PREVOTE, CommitCertificate, ValidatorSet, make_certificate
from chain.crypto import verify
from consensus.catchup import AheadTracker, Decision, FutureBuffer, synced_decision
from consensus.errors import InvalidProposal, LocalProtocolError, MalformedMessage
from consensus.evidence import EvidenceBook
from consensus.intake import PeerIntake
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
)
from consensus.outputs import (
    Application,
    Broadcast,
    Commit,
    Output,
    PersistSigningState,
    TimeoutConfig,
)
from consensus.signing_state import SigningState
from consensus.votes import HeightState

STEP_NEW_HEIGHT = "new_height"
"""Waiting at a new height for transactions, a deadline, the heartbeat or a proposal."""

NEVER = 2**63


def _cached_verify(public_key: bytes, signature: bytes, message: bytes) -> None:
    verify(public_key, signature, message, cache_key=True)


def _one_set(validators: ValidatorSet) -> Callable[[int], ValidatorSet]:
    def at(height: int) -> ValidatorSet:
        return validators
    return at


class Engine(PeerIntake):
    # Reset per height in ``_reset_height``; declared here because ``tick`` reads them first.
    _propose_at: int | None
    _recheck_at: int | None
    _rebroadcast_at: int

    def __init__(self, chain_id: str, validators: ValidatorSet, my_index: int | None,
                 signer: Callable[[bytes], bytes] | None, app: Application,
                 timeouts: TimeoutConfig = TimeoutConfig(), *, heartbeat_ms: int = 5000, batch_ms: int = 5,
                 signing_state: SigningState | None = None, start_height: int = 1,
                 last_commit: CommitCertificate | None = None, verifier: Verifier | None = None,
                 validator_sets: Callable[[int], ValidatorSet] | None = None, my_key: bytes | None = None) -> None:
        """``validators``/``my_index``: one set for every height and our index in it. With
        ``validator_sets`` (the set in force at a height; the node's ledger knows it up to its height
        + 2) ``validators`` is ignored, and ``my_key`` says who we are: the engine signs at the
        heights whose set holds that key, and follows without signing at the others."""
        if validator_sets is None:
            validator_sets = _one_set(validators)
        if my_index is not None:
            start_set = validator_sets(start_height)
            if not 0 <= my_index < start_set.size:
                raise LocalProtocolError(f"my_index {my_index} is outside the validator set")
            if my_key is not None and start_set.public_key(my_index) != my_key:
                raise LocalProtocolError("my_index and my_key name different validators")
            my_key = start_set.public_key(my_index)
        if my_key is not None and signer is None:
            raise LocalProtocolError("a validator engine needs a signer")
        if start_height < 1:
            raise LocalProtocolError("start_height must be at least 1")
        if last_commit is not None and last_commit.height != start_height - 1:
            raise LocalProtocolError(
                f"last_commit is for height {last_commit.height}, start height is {start_height}")
        if heartbeat_ms <= 0 or batch_ms < 0:
            raise LocalProtocolError("heartbeat_ms must be positive and batch_ms not negative")
        self.chain_id = chain_id
        self._validator_sets = validator_sets
        self.my_key = my_key
        self.my_index: int | None = None
        self._signer = signer
        self._app = app
        self._timeouts = timeouts
        self._heartbeat_ms = heartbeat_ms
        self._batch_ms = batch_ms
        self._verify: Verifier = verifier if verifier is not None else _cached_verify
        self._signing = signing_state if signing_state is not None else SigningState.initial()
        self._last_commit = last_commit
        # across heights
        self.height = start_height
        self._entered = False
        self._now: int | None = None
        self._committed_at: int | None = None
        self._future = FutureBuffer()
        self._ahead = AheadTracker()
        self._decision: Decision | None = None if last_commit is None else synced_decision(chain_id, last_commit)
        self._book = EvidenceBook()
        self._link: int | None = None
        self.rejected: dict[str, int] = {}
        self._out: list[Output] = []
        self._reset_height(0)

    # --- public API -----------------------------------------------------------------------------

    @property
    def round(self) -> int:
        return self._round

    @property
    def validators(self) -> ValidatorSet:
        """The validator set in force at the current height."""
        return self._validators_at(self.height)

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
    def heartbeat_ms(self) -> int:
        """An empty block is cut this long after the last commit: the longest expected block time."""
        return self._heartbeat_ms

    @property
    def signing_state(self) -> SigningState:
        return self._signing

    @property
    def last_commit(self) -> CommitCertificate | None:
        return self._last_commit

    @property
    def evidence(self) -> list[Evidence]:
        """The latest ``KEEP_EVIDENCE`` items recorded or restored."""
        return self._book.items

    @property
    def evidence_ignored(self) -> dict[str, int]:
        """Evidence not recorded, by reason (``EVIDENCE_*``): harmless, counted against nobody."""
        return self._book.ignored

    def start(self, now_ms: int) -> list[Output]:
        """Enter the start height: re-send what a restored signing state says we signed there."""
        self._begin(now_ms)
        self._run_rules(now_ms)
        self._check_peer_ahead(now_ms)
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
        for held, vote in self._book.certificate_conflicts(certificate, self.chain_id, self.height):
            if self._verified(vote):
                self._record_evidence(held, vote)
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
        if self._ahead.next_at is not None:
            candidates.append(self._ahead.next_at)
        return min(candidates) if candidates else None

    def restore_evidence(self, items: list[Evidence]) -> None:
        """Evidence recorded before a restart (the node re-verified it): its slots count as recorded,
        so the same equivocation received again is neither recorded nor relayed a second time. No
        ``EvidenceFound`` is emitted for these."""
        self._book.restore(items)

    def skip_to(self, height: int, last_commit: CommitCertificate | None) -> None:
        """Jump to ``height`` after the node synced blocks up to ``height - 1`` by other means."""
        if height <= self.height:
            return
        if last_commit is not None and last_commit.height != height - 1:
            raise LocalProtocolError(f"last_commit is for height {last_commit.height}, not {height - 1}")
        self.height = height
        self._last_commit = last_commit
        if last_commit is not None:
            self._decision = synced_decision(self.chain_id, last_commit)
        self._committed_at = None
        self._entered = False
        self._future.keep_only(height)

    # --- heights and rounds ---------------------------------------------------------------------

    def _validators_at(self, height: int) -> ValidatorSet:
        """The validator set in force at ``height``: it signs that height's messages, and its size
        gives that height's quorum, skip threshold and proposers."""
        return self._validator_sets(height)

    def _my_index_at(self, height: int) -> int | None:
        return None if self.my_key is None else self._validators_at(height).index_of(self.my_key)

    def _reset_height(self, now: int) -> None:
        self.my_index = self._my_index_at(self.height)
        self._state = HeightState(self._validators_at(self.height).quorum)
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
        self._ahead.reset()

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
        for message, link in self._future.take(self.height):
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
        for vote in state.polka:  # what justified the lock and the valid value: no one re-sends it
            self._handle(vote, now, verified=False)
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
        proposer = self._validators_at(self.height).proposer_index(self.height, round_)
        if self.my_index is not None and proposer == self.my_index:
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
        self._decision = Decision(self.height, block_hash, proposal, precommits, self._state.holders_of(block_hash))
        self._book.remember_decided(self.height, {
            round_: votes for (round_, step), votes in self._state.rounds.items() if step == STEP_PRECOMMIT})
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
        higher = [r for r in self._state.rounds_with_senders(self._validators_at(self.height).skip) if r > floor]
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
        if self._state.prevotes(proposal.pol_round).count(proposal.block_hash) < self._state.quorum:
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
            if block_hash is None or count < self._state.quorum:
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
        if self._step != STEP_PREVOTE or self._state.prevotes(self._round).count(None) < self._state.quorum:
            return False
        self._precommit(None, now)
        return True

    def _upon_prevotes_any(self, now: int) -> bool:
        """Line 34: a quorum of prevotes for anything → start the prevote timeout."""
        flag = ("prevote_timeout", self._round)
        if self._step != STEP_PREVOTE or flag in self._flags:
            return False
        if self._state.prevotes(self._round).total < self._state.quorum:
            return False
        self._flags.add(flag)
        self._schedule("prevote", self._round, now + self._timeouts.prevote(self._round))
        return True

    def _upon_precommits_any(self, now: int) -> bool:
        """Line 47: a quorum of precommits for anything → start the precommit timeout."""
        flag = ("precommit_timeout", self._round)
        if self._step == STEP_NEW_HEIGHT or flag in self._flags:
            return False
        if self._state.precommits(self._round).total < self._state.quorum:
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
            last_signed=kept + (signed,), floor=state.floor, polka=self._polka(),
        )
        self._out.append(PersistSigningState(self._signing))
        return signed

    def _polka(self) -> tuple[Vote, ...]:
        """The prevotes we hold for the locked block in the lock round and the valid block in the valid
        round: persisted with them, so a restart keeps the justification as well as the lock."""
        votes: dict[bytes, Vote] = {}
        for round_, block_hash in ((self._locked_round, self._locked_hash), (self._valid_round, self._valid_hash)):
            tally = self._state.rounds.get((round_, STEP_PREVOTE)) if block_hash is not None else None
            if tally is not None:
                votes.update((vote.signature, vote) for vote in tally.votes_for(block_hash))
        return tuple(votes.values())

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
