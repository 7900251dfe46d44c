"""From a signed ballot to a committed one: registration batching, durable queue, fail-over.

``BallotPipeline.cast`` takes a signed ballot, the voter's public key and the vault write that
records it. Requests arriving within ``batch_ms`` are flushed together: one ``voters.register``
transaction (signed once by the gateway key) registers every new voter key of a campaign, and
one synced LevelDB batch stores the vault entries, the pending ballots and the pending
registration *before* anything is sent. Only then does ``cast`` return, and only then may a page
show the ballot's hash. The batch goes to a node in one ``POST /api/v1/txs`` (registrations
first).

Commits are found by following the chain: the watcher reads ``/status`` and every new block with
its commit certificate (``/blocks/{height}/raw``), from which the receipts of the gateway's own
ballots are built and verified at once (no request per ballot); anything sent but not seen for ``resubmit_s`` is looked up
with ``/txs/{hash}`` and re-sent if the node does not know it. Re-sending is safe: a ballot's
bytes are deterministic, and the same tx can commit only once. On start-up every pending record
in the store is re-sent. A rejection is final only when its code is one of the state machine's
permanent rules (``FINAL_CODES``), whether a node says so at admission or when asked later;
anything else (key not registered *yet*, mempool full, a node in trouble) is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from chain import codec
from chain.block import Block, CommitCertificate
from chain.crypto import SigningKey, sha256
from chain.errors import DecodeError
from chain.ledger import decode_block_with_certificate
from chain.storage import KeyValueStore
from chain.tx import MAX_VOTER_KEYS_PER_REGISTRATION, Tx, decode_tx, make_registration
from gateway.errors import NodeAnswerError, NodeUnavailable, Refusal
from gateway.nodes import NodePool, SubmitResult
from gateway.vault import (
    Writes, iterate_pending, pending_record, pending_registration_key, pending_tokens_key, pending_vote_key,
    registered_key, rejection_key,
)

log = logging.getLogger("veche.gateway.pipeline")

COMMITTED_CODES = frozenset({"replay", "committed", "already_committed"})
PENDING_CODES = frozenset({"already_pending", "pending", "duplicate", "known", "in_mempool"})
FINAL_CODES = frozenset({
    "wrong_chain", "bad_signature", "unknown_kind", "permission_denied", "unknown_campaign", "campaign_closed",
    "outside_window", "unknown_district", "registration_cap", "bad_ballot", "invalid_choice", "double_vote",
    "malformed", "too_large", "not_canonical", "cost_cap", "points_max", "points_total", "rank_points",
    "no_certification", "token_used", "token_wrong_campaign", "bad_token", "tokens_exhausted",
})
WAIT_FOR_REGISTRATION_CODES = frozenset({"not_registered"})
RESIGN_CODES = frozenset({"revoked_key"})
"""A registration signed with a gateway key that keys.rotate has since revoked (a new contractor took over
this gateway's data with its own key): signed again with this gateway's key, its ballots then follow."""
MAX_TXS_PER_POST = 500
MAX_BLOCK_SCAN_GAP = 64
STATUS_CHECKS_PER_TICK = 256


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str                  # "committed" or "rejected"
    height: int | None = None
    code: str = ""
    message: str = ""

    @property
    def committed(self) -> bool:
        return self.status == "committed"


@dataclass(slots=True, eq=False)
class Tracker:
    tx: Tx
    campaign_id: str
    future: asyncio.Future[Outcome]
    depends_on: bytes | None = None           # registration hash a ballot waits for
    registers: tuple[bytes, ...] = ()          # voter keys a registration carries
    last_sent: float = 0.0
    sends: int = 0
    waiting_for_registration: bool = False

    @property
    def kind(self) -> str:
        return self.tx.kind

    @property
    def done(self) -> bool:
        return self.future.done()


@dataclass(slots=True, eq=False)
class CastRequest:
    campaign_id: str
    vote: Tx
    voter_pk: bytes
    writes: Writes
    persisted: asyncio.Future[Tracker] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class BallotPipeline:
    def __init__(self, store: KeyValueStore, pool: NodePool, gateway_key: SigningKey, chain_id: str, *,
                 batch_ms: int = 20, resubmit_s: float = 5.0, max_pending: int = 20000,
                 on_block: Callable[[Block, CommitCertificate, list[int]], object] | None = None) -> None:
        self.store = store
        self.pool = pool
        self.gateway_key = gateway_key
        self.chain_id = chain_id
        self.batch_s = batch_ms / 1000
        self.resubmit_s = resubmit_s
        self.max_pending = max_pending
        self.on_block = on_block
        self.trackers: dict[bytes, Tracker] = {}
        self._queue: list[CastRequest] = []
        self._flush_scheduled = False
        self._flush_lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._last_height: int | None = None
        self._send_failures = 0
        self.stats = {"flushes": 0, "registrations": 0, "votes": 0, "sends": 0, "resends": 0, "resigned": 0}

    # --- casting ---------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self.trackers) + len(self._queue)

    async def cast(self, campaign_id: str, vote: Tx, voter_pk: bytes, writes: Writes) -> Tracker:
        """Queue a ballot; return once it is durably stored (its tracker says when it commits)."""
        if self.in_flight >= self.max_pending:
            raise Refusal("err_overloaded", status=503, reason="overload_queue", retry_after=5)
        existing = self.trackers.get(vote.hash)
        if existing is not None:
            return existing
        request = CastRequest(campaign_id, vote, voter_pk, writes)
        self._queue.append(request)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(self.batch_s, self._start_flush)
        return await asyncio.shield(request.persisted)

    async def submit_record(self, campaign_id: str, tx: Tx, writes: Writes) -> Tracker:
        """A ``tokens.issued`` record: stored (with ``writes``, in one synced batch) before it is sent; its
        tracker's future says when it commits or is refused. Re-sent until then, also after a restart."""
        if self.in_flight >= self.max_pending:
            raise Refusal("err_overloaded", status=503, reason="overload_queue", retry_after=5)
        loop = asyncio.get_running_loop()
        tracker = Tracker(tx, campaign_id, loop.create_future())
        await asyncio.to_thread(self.store.write, {**writes, pending_tokens_key(tx.hash): pending_record(campaign_id,
                                                                                                          tx.raw)},
                                sync=True)
        self.trackers[tx.hash] = tracker
        task = loop.create_task(self._send([tracker]))
        task.add_done_callback(_log_task_failure)
        return tracker

    def _start_flush(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush())
        task.add_done_callback(_log_task_failure)

    async def _flush(self) -> None:
        async with self._flush_lock:
            self._flush_scheduled = False
            batch, self._queue = self._queue, []
            if not batch:
                return
            try:
                new_trackers = await self._persist(batch)
            except Exception as exc:  # storage failure: no ballot is acknowledged
                log.error("could not store %d ballots: %s", len(batch), exc)
                for request in batch:
                    if not request.persisted.done():
                        request.persisted.set_exception(Refusal("err_storage", status=503, reason="storage_error",
                                                                retry_after=5))
                return
        self.stats["flushes"] += 1
        await self._send(new_trackers)

    async def _persist(self, batch: list[CastRequest]) -> list[Tracker]:
        loop = asyncio.get_running_loop()
        writes: Writes = {}
        registrations: list[Tracker] = []
        votes: list[Tracker] = []
        by_campaign: dict[str, list[CastRequest]] = {}
        for request in batch:
            by_campaign.setdefault(request.campaign_id, []).append(request)
        pending_keys: dict[tuple[str, bytes], bytes] = {}
        for campaign_id, requests in by_campaign.items():
            fresh: list[bytes] = []
            for request in requests:
                key = (campaign_id, request.voter_pk)
                if key in pending_keys or request.voter_pk in fresh:
                    continue
                known = self.store.get(registered_key(campaign_id, request.voter_pk))
                if known is not None:
                    pending_keys[key] = known
                else:
                    fresh.append(request.voter_pk)
            for start in range(0, len(fresh), MAX_VOTER_KEYS_PER_REGISTRATION):
                chunk = fresh[start:start + MAX_VOTER_KEYS_PER_REGISTRATION]
                registration = make_registration(self.chain_id, self.gateway_key, campaign_id, chunk)
                writes[pending_registration_key(registration.hash)] = pending_record(campaign_id, registration.raw)
                for voter_pk in chunk:
                    writes[registered_key(campaign_id, voter_pk)] = registration.hash
                    pending_keys[(campaign_id, voter_pk)] = registration.hash
                registrations.append(Tracker(registration, campaign_id, loop.create_future(), registers=tuple(chunk)))
            for request in requests:
                writes.update(request.writes)
                writes[pending_vote_key(request.vote.hash)] = pending_record(campaign_id, request.vote.raw)
                depends = pending_keys[(campaign_id, request.voter_pk)]
                votes.append(Tracker(request.vote, campaign_id, loop.create_future(), depends_on=depends))
        await asyncio.to_thread(self.store.write, writes, sync=True)
        created = registrations + votes
        for tracker in created:
            self.trackers.setdefault(tracker.tx.hash, tracker)
        for request, tracker in zip(batch_order(by_campaign), votes):
            request.persisted.set_result(self.trackers[tracker.tx.hash])
        self.stats["registrations"] += len(registrations)
        self.stats["votes"] += len(votes)
        return created

    # --- sending ---------------------------------------------------------------------------------

    def _registration_pending(self, tracker: Tracker) -> bool:
        if tracker.depends_on is None:
            return False
        registration = self.trackers.get(tracker.depends_on)
        return registration is not None and not registration.done

    async def _send(self, trackers: Iterable[Tracker]) -> None:
        ordered = sorted((t for t in trackers if not t.done), key=lambda t: t.kind != "voters.register")
        for start in range(0, len(ordered), MAX_TXS_PER_POST):
            chunk = ordered[start:start + MAX_TXS_PER_POST]
            now = time.monotonic()
            for tracker in chunk:
                tracker.last_sent = now
                tracker.sends += 1
            self.stats["sends"] += 1
            try:
                result = await self.pool.submit([t.tx.raw for t in chunk])
            except (NodeUnavailable, NodeAnswerError) as exc:
                self._send_failures += 1
                for tracker in chunk:      # retried by the watcher, sooner than resubmit_s
                    tracker.last_sent = now - self.resubmit_s + min(0.25 * self._send_failures, 2.0)
                log.warning("could not submit %d transactions: %s", len(chunk), exc)
                self._wakeup.set()
                continue
            self._send_failures = 0
            self._apply_submit_result(chunk, result)
        self._wakeup.set()

    def _apply_submit_result(self, chunk: list[Tracker], result: SubmitResult) -> None:
        rejected = {r.index: r for r in result.rejected}
        for index, tracker in enumerate(chunk):
            rejection = rejected.get(index)
            if rejection is None:
                continue
            code = rejection.code
            if code in COMMITTED_CODES:
                self._resolve(tracker, Outcome("committed"))
            elif code in PENDING_CODES:
                continue
            elif code in WAIT_FOR_REGISTRATION_CODES and self._registration_pending(tracker):
                tracker.waiting_for_registration = True
            elif (code in RESIGN_CODES and tracker.kind == "voters.register"
                  and tracker.tx.signers != (self.gateway_key.public_key,)):
                self._resign(tracker)
            elif code in FINAL_CODES and tracker.sends == 1:
                self._resolve(tracker, Outcome("rejected", code=code, message=rejection.message))
            else:  # transient, or a resend: the watcher asks the node what it knows
                tracker.last_sent = 0.0
                log.info("node %s deferred tx %s: %s", result.node, tracker.tx.hash.hex()[:16], code)

    def _resign(self, tracker: Tracker) -> None:
        """Replace a pending registration signed by a revoked gateway key with one signed by ours."""
        fresh = make_registration(self.chain_id, self.gateway_key, tracker.campaign_id, list(tracker.registers))
        writes: Writes = {pending_registration_key(tracker.tx.hash): None,
                          pending_registration_key(fresh.hash): pending_record(tracker.campaign_id, fresh.raw)}
        for voter_pk in tracker.registers:
            writes[registered_key(tracker.campaign_id, voter_pk)] = fresh.hash
        self.store.write(writes, sync=True)
        replacement = Tracker(fresh, tracker.campaign_id, tracker.future, registers=tracker.registers)
        self.trackers.pop(tracker.tx.hash, None)
        self.trackers[fresh.hash] = replacement
        for other in self.trackers.values():
            if other.depends_on == tracker.tx.hash:
                other.depends_on = fresh.hash
        self.stats["resigned"] += 1
        log.info("registration %s was signed with a revoked gateway key; signed again with this gateway's key as %s",
                 tracker.tx.hash.hex()[:16], fresh.hash.hex()[:16])
        task = asyncio.get_running_loop().create_task(self._send([replacement]))
        task.add_done_callback(_log_task_failure)

    # --- outcomes --------------------------------------------------------------------------------

    def _resolve(self, tracker: Tracker, outcome: Outcome) -> None:
        if tracker.done:
            return
        tracker.future.set_result(outcome)
        self.trackers.pop(tracker.tx.hash, None)
        writes: Writes = {}
        if tracker.kind == "voters.register":
            writes[pending_registration_key(tracker.tx.hash)] = None
            if not outcome.committed:
                for voter_pk in tracker.registers:
                    writes[registered_key(tracker.campaign_id, voter_pk)] = None
        elif tracker.kind == "tokens.issued":
            writes[pending_tokens_key(tracker.tx.hash)] = None
        else:
            writes[pending_vote_key(tracker.tx.hash)] = None
        if outcome.committed:
            writes[rejection_key(tracker.tx.hash)] = None     # a ballot re-cast after a rejection stands
        else:
            writes[rejection_key(tracker.tx.hash)] = codec.encode([tracker.campaign_id, outcome.code,
                                                                   outcome.message])
            log.warning("%s %s rejected: %s %s", tracker.kind, tracker.tx.hash.hex()[:16], outcome.code,
                        outcome.message)
        self.store.write(writes, sync=False)
        if tracker.kind == "voters.register":
            dependants = [t for t in self.trackers.values() if t.depends_on == tracker.tx.hash and not t.done]
            if outcome.committed:
                waiting = [t for t in dependants if t.waiting_for_registration]
                for dependant in waiting:
                    dependant.waiting_for_registration = False
                if waiting:
                    task = asyncio.get_running_loop().create_task(self._send(waiting))
                    task.add_done_callback(_log_task_failure)
            else:
                for dependant in dependants:
                    self._resolve(dependant, Outcome("rejected", code=outcome.code,
                                                     message="the voter key could not be registered: "
                                                             + outcome.message))

    def rejection(self, tx_hash: bytes) -> tuple[str, str] | None:
        raw = self.store.get(rejection_key(tx_hash))
        if raw is None:
            return None
        decoded = codec.decode(raw)
        return str(decoded[1]), str(decoded[2])

    async def settle_campaign(self, campaign_id: str) -> None:
        """The campaign closed: resolve its open transactions by asking a node, then drop its records.

        Whatever is not committed by now never will be (the window is over), so it is resolved as
        rejected; the chain stays the authority for receipts.
        """
        for tracker in [t for t in self.trackers.values() if t.campaign_id == campaign_id]:
            try:
                found = await self.pool.tx_status(tracker.tx.hash.hex())
            except (NodeUnavailable, NodeAnswerError):
                found = {}
            if found.get("status") == "committed":
                height = found.get("height")
                self._resolve(tracker, Outcome("committed", height=height if isinstance(height, int) else None))
            else:
                self._resolve(tracker, Outcome("rejected", code="campaign_closed",
                                               message="the campaign closed before this transaction committed"))
        writes: Writes = {}
        for prefix in (b"P/", b"R/", b"I/"):
            for tx_hash, campaign, _ in iterate_pending(self.store, prefix):
                if campaign == campaign_id:
                    writes[prefix + tx_hash] = None
        for key, value in self.store.iterate(b"X/"):
            if codec.decode(value)[0] == campaign_id:
                writes[key] = None
        if writes:
            self.store.write(writes, sync=True)

    # --- recovery and watching -------------------------------------------------------------------

    def recover(self) -> int:
        """Load every pending registration and ballot from the store; they are re-sent by ``run``."""
        loop = asyncio.get_running_loop()
        count = 0
        for tx_hash, campaign_id, raw in iterate_pending(self.store, b"R/"):
            tx = decode_tx(raw)
            self.trackers[tx_hash] = Tracker(tx, campaign_id, loop.create_future(), registers=tx.body.voter_keys,
                                             sends=1)
            count += 1
        for tx_hash, campaign_id, raw in iterate_pending(self.store, b"I/"):
            self.trackers[tx_hash] = Tracker(decode_tx(raw), campaign_id, loop.create_future(), sends=1)
            count += 1
        for tx_hash, campaign_id, raw in iterate_pending(self.store, b"P/"):
            tx = decode_tx(raw)
            depends = self.store.get(registered_key(campaign_id, tx.signers[0]))
            self.trackers[tx_hash] = Tracker(tx, campaign_id, loop.create_future(), depends_on=depends, sends=1)
            count += 1
        if count:
            log.info("re-sending %d pending transactions found in the store", count)
        return count

    async def run(self) -> None:
        """Watch the chain for commits and re-send what is overdue, until cancelled."""
        if self.trackers:
            await self._send(list(self.trackers.values()))
        while True:
            try:
                await self._watch_once()
            except (NodeUnavailable, NodeAnswerError) as exc:
                log.warning("watching the chain: %s", exc)
                await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the watcher die: ballots depend on it
                log.exception("watcher failed; continuing")
                await asyncio.sleep(0.5)
            self._wakeup.clear()
            interval = 0.05 if self.trackers else 1.0
            try:
                async with asyncio.timeout(interval):  # not wait_for: on 3.11 it can swallow a cancellation
                    await self._wakeup.wait()
            except TimeoutError:
                pass
            if self.trackers:
                await asyncio.sleep(0.02)

    async def _watch_once(self) -> None:
        status = await self.pool.get_ok("/status")
        height = status.get("height") if isinstance(status, dict) else None
        if not isinstance(height, int):
            raise NodeAnswerError("node status lacks a height")
        if self._last_height is None or height < self._last_height or height - self._last_height > MAX_BLOCK_SCAN_GAP:
            # first look, another node behind us, or a long gap: per-tx lookups cover the rest
            if self._last_height is not None and height > self._last_height:
                for tracker in self.trackers.values():
                    tracker.last_sent = min(tracker.last_sent, time.monotonic() - self.resubmit_s)
            self._last_height = height
        elif self.trackers:
            for block_height in range(self._last_height + 1, height + 1):
                await self._scan_block(block_height)
                self._last_height = block_height
        else:
            self._last_height = height
        await self._check_overdue()

    async def _scan_block(self, height: int) -> None:
        """Resolve the tracked transactions of one block (raw block + certificate: one request)."""
        raw = await self.pool.get_raw(f"/blocks/{height}/raw")
        if raw is None:
            raise NodeAnswerError(f"block {height} not available yet")
        try:
            block, certificate = decode_block_with_certificate(raw)
        except DecodeError as exc:
            raise NodeAnswerError(f"block {height}: malformed raw block: {exc.message}") from exc
        if block.height != height:
            raise NodeAnswerError(f"asked for block {height}, got {block.height}")
        found = [(index, self.trackers[tx_hash]) for index, tx_hash in enumerate(map(sha256, block.txs))
                 if tx_hash in self.trackers]
        if not found:
            return
        votes = [index for index, tracker in found if tracker.kind == "vote.cast"]
        if votes and self.on_block is not None:
            self.on_block(block, certificate, votes)    # receipts are ready before anyone is told
        for _, tracker in found:
            self._resolve(tracker, Outcome("committed", height=height))

    async def _check_overdue(self) -> None:
        now = time.monotonic()
        overdue = [t for t in self.trackers.values()
                   if not t.done and not t.waiting_for_registration and now - t.last_sent >= self.resubmit_s]
        overdue = sorted(overdue, key=lambda t: (t.kind != "voters.register", t.last_sent))[:STATUS_CHECKS_PER_TICK]
        if not overdue:
            return
        semaphore = asyncio.Semaphore(16)
        resend: list[Tracker] = []

        async def check(tracker: Tracker) -> None:
            async with semaphore:
                found = await self.pool.tx_status(tracker.tx.hash.hex())
            state = found.get("status")
            if state == "committed":
                height = found.get("height")
                self._resolve(tracker, Outcome("committed", height=height if isinstance(height, int) else None))
            elif state == "rejected" and str(found.get("code")) in FINAL_CODES:
                self._resolve(tracker, Outcome("rejected", code=str(found.get("code")),
                                               message=str(found.get("message", ""))))
            elif state == "pending":
                tracker.last_sent = time.monotonic()
            elif tracker.depends_on is not None and self._registration_pending(tracker):
                tracker.waiting_for_registration = True
            else:
                resend.append(tracker)

        results = await asyncio.gather(*(check(t) for t in overdue), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            log.warning("could not look up %d overdue transactions: %s", len(failures), failures[0])
        if resend:
            self.stats["resends"] += len(resend)
            log.info("re-sending %d transactions the nodes do not know", len(resend))
            await self._send(resend)


def batch_order(by_campaign: dict[str, list[CastRequest]]) -> list[CastRequest]:
    return [request for requests in by_campaign.values() for request in requests]


def _log_task_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background submission failed: %s", task.exception())
