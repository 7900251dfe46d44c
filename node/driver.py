"""Drives the sans-I/O consensus engine: clock, inbox, timers and the engine's outputs.

One task owns the engine. It waits for the earliest of: a consensus message in the inbox, a poke
(new transactions were admitted), or the engine's ``next_deadline()``; then it feeds the engine
and handles the outputs strictly in order, synchronously:

- ``PersistSigningState`` — written with fsync (``SigningStateFile.store``) before anything after
  it is handled, so no signed message leaves before what it commits us to is on disk;
- ``Broadcast`` — queued on every peer link (never blocks); ``Send`` — on one peer's link;
- ``Commit`` — the block, its certificate and state changes in one synced batch, then mempool; the
  block's ``last_commit`` is then compared with the precommits the engine holds (evidence);
- ``EvidenceFound`` — stored (``node/evidence.py``: in LevelDB, no fsync), kept, counted, logged and
  then sent to every peer (evidence gossip); evidence the engine ignored unverified (a recorded slot,
  outside the window, a validator's cap) is counted by reason in ``veche_evidence_ignored_total``;
- ``RejectedMessage`` — counted against the peer link that delivered the input;
- ``PeerAhead`` — handed to block sync.

Stall alarm (``StallAlarm``): no new block — committed here or applied by block sync — for
``STALL_HEARTBEATS`` heartbeats (the heartbeat is the longest expected block time: an empty block is
cut that long after the last one even without transactions) raises ``veche_consensus_stalled`` and
logs a WARNING with the height, round and step and the validators heard from in that window, again
every window while it lasts; the next block clears it with an INFO line.

The signing-state write is synchronous on the loop thread. (A worker thread was measured and
dropped: every ``os`` call in it must re-acquire the GIL from a busy loop, which turned a 1–15 ms
fsync into 50 ms at the median and a second at p99 under load — on the consensus critical path.)
Output handling is a coroutine only so that a future slow output can yield; block sync may call
``skip_to`` between outputs, and outputs still queued for the old height are then harmless (a
``Commit`` of a height the ledger already has is ignored after its hash is compared).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from chain.block import CommitCertificate, ValidatorSet
from chain.errors import StorageError
from consensus.engine import Engine
from consensus.messages import Evidence, Message, PeerItem, Proposal, Vote, encode_evidence, encode_message
from consensus.outputs import (
    Broadcast, Commit, EvidenceFound, Output, PeerAhead, PersistSigningState, RejectedMessage, Send,
)
from node.chain_app import ChainApp, CommittedBlock
from node.evidence import MAX_STORED_EVIDENCE, EvidenceRecord, EvidenceStore, evidence_per_validator, index_to_prune
from node.metrics import NodeMetrics
from node.signing_state import SigningStateFile

log = logging.getLogger("veche.node.consensus")

MAX_INBOX = 20_000
MAX_INBOX_BYTES = 64 * 1024 * 1024
PRIORITY_WAIT_S = 0.05
YIELD_EVERY = 64
MAX_EVIDENCE = MAX_STORED_EVIDENCE
STALL_HEARTBEATS = 6
"""No new block for this many heartbeats (30 s with the default 5 s) raises the stall alarm."""


def _size(message: PeerItem) -> int:
    """Bytes a queued message holds (a proposal carries its block)."""
    return 256 + len(message.block) if isinstance(message, Proposal) else 512 if isinstance(message, Evidence) else 256


def _kind(message: Message) -> str:
    return message.step if isinstance(message, Vote) else "proposal"


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class StallAlarm:
    """Watches for "no new block for ``after_ms``" (pure: the caller passes the time).

    ``heard`` notes the validator (by key) whose link delivered a consensus message; ``progressed`` a
    new height; ``check`` returns the WARNING text when the alarm is raised (and again every
    ``after_ms`` while it lasts), naming the members of the validator set in force that were heard
    and those that were silent; ``progressed`` returns the INFO text when a block ends a stall.
    """

    def __init__(self, after_ms: int, now_ms: int, my_key: bytes | None) -> None:
        self.after_ms = after_ms
        self.my_key = my_key
        self.stalled = False
        self.stalls = 0
        self._since = now_ms
        self._stalled_at = 0
        self.next_check = now_ms + after_ms
        self._heard: dict[bytes, int] = {}

    def heard(self, key: bytes, now_ms: int) -> None:
        self._heard[key] = now_ms

    def progressed(self, height: int, now_ms: int) -> str | None:
        message = None
        if self.stalled:
            message = (f"consensus resumed: height {height} after {(now_ms - self._since) / 1000:.1f} s without a "
                       f"new block (stall alarm cleared after {(now_ms - self._stalled_at) / 1000:.1f} s)")
        self.stalled = False
        self._since = now_ms
        self.next_check = now_ms + self.after_ms
        return message

    def check(self, now_ms: int, height: int, round_: int, step: str, validators: ValidatorSet) -> str | None:
        if now_ms < self.next_check:
            return None
        if not self.stalled:
            self.stalled, self._stalled_at = True, now_ms
            self.stalls += 1
        self.next_check = now_ms + self.after_ms
        window = self.after_ms / 1000
        member = validators.index_of(self.my_key) is not None if self.my_key is not None else False
        others = [v for v in validators.validators if v.public_key != self.my_key]
        heard = [v.name for v in others if self._heard.get(v.public_key, -1) > now_ms - self.after_ms]
        silent = [v.name for v in others if v.name not in heard]
        reachable = len(heard) + member
        return (f"consensus stalled: no new block for {(now_ms - self._since) / 1000:.1f} s (alarm after "
                f"{self.after_ms / 1000:.1f} s) at height {height} round {round_} step {step}; "
                f"heard from {', '.join(heard) or 'none'} in the last {window:.1f} s, "
                f"silent: {', '.join(silent) or 'none'}; "
                f"{reachable} of {validators.size} validators reachable{' counting this one' if member else ''}, "
                f"a block needs {validators.quorum}")


class Driver:
    def __init__(self, engine: Engine, app: ChainApp, signing_file: SigningStateFile | None,
                 broadcast: Callable[[bytes], None], metrics: NodeMetrics, *,
                 send_to: Callable[[bytes, bytes], None] | None = None, peer_count: int = 0,
                 on_commit: Callable[[CommittedBlock], None], on_peer_ahead: Callable[[int], None],
                 validators_at: Callable[[int], ValidatorSet] | None = None,
                 clock_ms: Callable[[], int] = wall_clock_ms,
                 evidence_store: EvidenceStore | None = None,
                 restored_evidence: list[EvidenceRecord] | None = None) -> None:
        self.engine = engine
        self.app = app
        self._signing_file = signing_file
        self._broadcast = broadcast
        self._send_to = send_to
        self._peer_count = peer_count
        self.metrics = metrics
        self._on_commit = on_commit
        self._on_peer_ahead = on_peer_ahead
        self._validators_at: Callable[[int], ValidatorSet] = (
            validators_at if validators_at is not None else (lambda height: engine.validators))
        self._clock_ms = clock_ms
        self._inbox: deque[tuple[bytes, PeerItem]] = deque()
        self._inbox_bytes = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self.evidence: list[EvidenceRecord] = list(restored_evidence or ())[-MAX_EVIDENCE:]
        self._evidence_store = evidence_store
        self._evidence_per_validator = (evidence_store.per_validator if evidence_store is not None
                                        else evidence_per_validator(engine.validators.size))
        self._ignored_seen: dict[str, int] = {}
        self.inbox_dropped = 0
        self._round_seen = (engine.height, engine.round)
        # shed client connections when the signing state cannot be written for lack of descriptors
        self.relieve_fd_pressure: Callable[[], object] = lambda: None
        self.stall = StallAlarm(STALL_HEARTBEATS * engine.heartbeat_ms, clock_ms(), engine.my_key)

    # --- inputs (called from other tasks; never block) ------------------------------------------

    def set_peer_count(self, count: int) -> None:
        """The number of peer links changed (a validator set change); used for the sent-message metric."""
        self._peer_count = count

    def deliver(self, sender_key: bytes, message: PeerItem) -> None:
        """Queue a decoded message from the authenticated link of the validator ``sender_key``; the oldest
        are dropped beyond MAX_INBOX messages or MAX_INBOX_BYTES."""
        self._inbox.append((sender_key, message))
        self._inbox_bytes += _size(message)
        self.stall.heard(sender_key, self._clock_ms())
        while len(self._inbox) > MAX_INBOX or (self._inbox_bytes > MAX_INBOX_BYTES and len(self._inbox) > 1):
            _, dropped = self._inbox.popleft()
            self._inbox_bytes -= _size(dropped)
            self.inbox_dropped += 1
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self, limit_s: float = PRIORITY_WAIT_S) -> None:
        """Admission work calls this between chunks: consensus messages waiting here go first.

        Waits until the inbox is drained (at most ``limit_s``, so admission is slowed, never starved).
        A validator busy verifying gossip must still answer the consensus quickly: a late proposal or
        vote costs every validator a round.
        """
        if self._idle.is_set():
            return
        try:
            async with asyncio.timeout(limit_s):  # not wait_for: on 3.11 it can swallow a cancellation
                await self._idle.wait()
        except TimeoutError:
            pass

    def poke(self) -> None:
        """New transactions: let the engine look at the mempool now rather than at its next poll."""
        self._wake.set()

    def skip_to(self, height: int, last_commit: CommitCertificate | None, *, per_block: bool = False) -> None:
        """After block sync stored blocks up to ``height - 1``.

        ``per_block``: called for each block block sync applies (it yields between blocks), logged at
        DEBUG — a resync of 10,000 blocks must not write 10,000 INFO lines; block sync logs the range.
        """
        if height > self.engine.height:
            log.log(logging.DEBUG if per_block else logging.INFO, "consensus jumps from height %d to %d after "
                    "block sync", self.engine.height, height)
            self.engine.skip_to(height, last_commit)
            self._progressed()
            self._wake.set()

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        self.stall.progressed(self.engine.height, self._clock_ms())  # the window starts with the loop
        await self._handle(self.engine.start(self._clock_ms()))
        while True:
            if not self._inbox:
                deadline = self.engine.next_deadline()
                deadline = self.stall.next_check if deadline is None else min(deadline, self.stall.next_check)
                timeout = max(0.0, (deadline - self._clock_ms()) / 1000)
                if timeout is None or timeout > 0:
                    self._idle.set()
                    try:
                        async with asyncio.timeout(timeout):
                            await self._wake.wait()
                    except TimeoutError:
                        pass
            self._idle.clear()
            self._wake.clear()
            handled = 0
            while self._inbox:
                sender_key, message = self._inbox.popleft()
                self._inbox_bytes -= _size(message)
                sender = self.engine.validators.index_of(sender_key)  # the link, as an index at our height
                await self._handle(self.engine.receive(message, self._clock_ms(), sender))
                handled += 1
                if handled % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            await self._handle(self.engine.tick(self._clock_ms()))
            self._check_stall()
            await asyncio.sleep(0)

    def _check_stall(self) -> None:
        raised = self.stall.stalls
        warning = self.stall.check(self._clock_ms(), self.engine.height, self.engine.round, self.engine.step,
                                   self._validators_at(self.engine.height))
        if warning is not None:
            if self.stall.stalls > raised:
                self.metrics.stalls.inc()
            self.metrics.consensus_stalled = 1.0
            log.warning("%s", warning)

    def _progressed(self) -> None:
        resumed = self.stall.progressed(self.engine.height, self._clock_ms())
        self.metrics.consensus_stalled = 0.0
        if resumed is not None:
            log.info("%s", resumed)

    async def _handle(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, PersistSigningState):
                if self._signing_file is not None:
                    started = time.perf_counter()
                    await self._signing_file.store_retrying(output.state, self.relieve_fd_pressure)
                    self.metrics.signing_write.observe(time.perf_counter() - started)
            elif isinstance(output, Broadcast):
                message = output.message
                if log.isEnabledFor(logging.DEBUG) and message.signer == self.engine.my_index:
                    log.debug("send %s height %d round %d%s", message.step, message.height, message.round,
                              "" if isinstance(message, Proposal) or message.block_hash is not None else " nil")
                self._broadcast(encode_message(message))
                self.metrics.consensus_sent.inc(_kind(message), amount=self._peer_count)
            elif isinstance(output, Send):
                validators = self._validators_at(output.message.height)
                if self._send_to is not None and 0 <= output.to_index < validators.size:
                    self._send_to(validators.public_key(output.to_index), encode_message(output.message))
                    self.metrics.consensus_sent.inc(_kind(output.message))
            elif isinstance(output, Commit):
                certificate = self._commit(output)
                if certificate is not None:
                    await self._handle(self.engine.observe_certificate(certificate, self._clock_ms()))
            elif isinstance(output, EvidenceFound):
                self._evidence(output.evidence)
            elif isinstance(output, RejectedMessage):
                name = self._name(output.sender_index, self.engine.height)
                self.metrics.consensus_rejected.inc(name, output.error.code)
                claimed = "" if output.claimed_index in (None, output.sender_index) else (
                    f" (naming validator {self._name(output.claimed_index, self.engine.height)} as its signer)")
                log.warning("rejected consensus input from %s%s: %s", name, claimed, output.error.message)
            elif isinstance(output, PeerAhead):  # block sync logs whether it fetches or stands down
                self._on_peer_ahead(output.height)
        ignored = self.engine.evidence_ignored
        if ignored != self._ignored_seen:
            for reason, count in ignored.items():
                if count > self._ignored_seen.get(reason, 0):
                    self.metrics.evidence_ignored.inc(reason, amount=count - self._ignored_seen.get(reason, 0))
            self._ignored_seen = dict(ignored)
        current = (self.engine.height, self.engine.round)
        if current[0] > self._round_seen[0]:
            self._progressed()
        if current != self._round_seen:
            if current[0] == self._round_seen[0] and current[1] > self._round_seen[1]:
                self.metrics.rounds.inc(amount=current[1] - self._round_seen[1])
                log.info("height %d: round %d started (round change)", current[0], current[1])
            self._round_seen = current

    def _commit(self, output: Commit) -> CommitCertificate | None:
        """Store the block; returns the certificate it carries of the previous height, to compare."""
        started = time.perf_counter()
        committed = self.app.commit(output.height, output.encoded_block, output.block_hash, output.certificate)
        if committed is None:
            return None
        self.metrics.commit_write.observe(time.perf_counter() - started)
        self.metrics.commit_latency.observe(max(0, self._clock_ms() - committed.block.header.time_ms) / 1000)
        log.debug("committed block %d %s with %d txs (round %d)", output.height, output.block_hash.hex()[:16],
                  len(committed.block.txs), output.certificate.round)
        self._on_commit(committed)
        return committed.block.last_commit

    def _evidence(self, evidence: Evidence) -> None:
        name = self._name(evidence.validator_index, evidence.height)
        record = EvidenceRecord(evidence, self._clock_ms())
        if self._evidence_store is not None:
            try:
                self._evidence_store.add(record)  # before the relay; no fsync (node/evidence.py says why)
            except StorageError as exc:  # still kept in memory and relayed: the peers store the proof
                log.error("cannot store evidence against validator %s: %s", name, exc.message)
        accused = [kept.evidence.validator_index for kept in self.evidence]
        while (index := index_to_prune(accused, evidence.validator_index, limit=MAX_EVIDENCE,
                                       per_validator=self._evidence_per_validator)) is not None:
            del self.evidence[index], accused[index]
        self.evidence.append(record)
        self.metrics.evidence.inc(name)
        self._broadcast(encode_evidence(evidence))  # every peer gets the proof (each node relays it once)
        self.metrics.consensus_sent.inc("evidence", amount=self._peer_count)
        log.error("EQUIVOCATION: validator %s signed two different %s messages at height %d round %d",
                  name, evidence.step, evidence.height, evidence.round)

    def _name(self, index: int | None, height: int) -> str:
        """The name of validator ``index`` of the set in force at ``height``."""
        validators = self._validators_at(height)
        if index is not None and 0 <= index < validators.size:
            return validators.validators[index].name
        return "unknown"
