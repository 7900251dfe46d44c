"""The mempool: bounded, verify-once admission of transactions and FIFO block building.

Admission of a batch (one ``POST /api/v1/txs`` or one gossip envelope) runs in two phases:

1. *stateless*: strict decoding, chain id, duplicates (in the batch, already pending, already
   committed — all cheap lookups done before any signature work), hashes that failed a permanent
   check before (bad signature, wrong chain, undecodable: a bounded LRU, so a re-sent forgery costs
   a hash lookup, not a signature check), then every signature is verified once. This phase
   yields to the event loop every few dozen transactions (or runs in a thread pool when
   configured), so a large batch never stalls consensus.
2. *stateful*, without yielding: each verified transaction, in batch order, is applied to the
   *check state* — an ``Execution`` overlay on the committed state holding every pending
   transaction — with ``signatures_checked=True``. What does not apply (second ballot of the
   same voter, unknown campaign or initiative, closed campaign, unregistered voter …) is rejected
   with the state machine's code; the rest becomes pending. A registration and the ballots it
   enables may come in one batch, registration first.

The check state stays consistent across commits without re-executing the pending set in the
common case (a block made only of ballots, registrations and tokens.issued records that were all
pending here, or that apply on top of the check state): they only add keys and raise counters, so they
commute. Anything else (a campaign
created or closed, other kinds, a conflict) triggers a rebuild that re-applies the pending
transactions in FIFO order without re-verifying signatures; what no longer applies is dropped and
remembered as rejected (a bounded LRU), so ``GET /api/v1/txs/{hash}`` can say why.

Bounds: ``max_txs`` and ``max_bytes`` for pending transactions; ``check_room`` refuses a request
*before* its body is decoded when the pool is full or too much is already being verified. It also
refuses new client transactions while the pending backlog exceeds what the network committed in
the last ``backlog_ms`` (at least ``BACKLOG_FLOOR_TXS``): past that point a transaction would only
wait, so an overloaded network sheds load honestly instead of letting latency grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from chain import codec
from chain.crypto import sha256
from chain.errors import DecodeError, SignatureError, TxRejected, VecheError
from chain.ledger import Ledger
from chain.state import Execution
from chain.tx import MAX_TX_BYTES, Tx, decode_tx
from node.errors import BadRequest, Overloaded, PayloadTooLarge

log = logging.getLogger("veche.node.mempool")

MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_BATCH_TXS = 5000
MAX_INFLIGHT_BYTES = 8 * 1024 * 1024
# a batch is one array of byte strings: no strings, no nesting (an array inside stops the decoder)
BATCH_LIMITS = codec.Limits(array=MAX_BATCH_TXS + 1, string=0, depth=1, containers=1)
VERIFY_CHUNK = 48
ADMIT_SLICE = 512
REJECTED_MEMORY = 100_000
VERIFIED_MEMORY = 100_000
INVALID_MEMORY = 100_000
COMMUTING_KINDS = frozenset({"vote.cast", "voters.register", "tokens.issued"})
RETRY_AFTER_FULL_S = 1.0
BACKLOG_FLOOR_TXS = 1000
RATE_WINDOW_MS = 10_000


# (index in the batch, transaction, whether its signatures *and* token are checked): a token whose
# campaign is not committed yet is left to the state machine (``Tx.verify_credentials``).
Checked = tuple[int, Tx, bool]


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    code: str
    message: str


@dataclass(slots=True)
class Admission:
    accepted: list[bytes]
    rejected: list[Rejection]
    admitted: list[Tx]


def decode_batch(body: bytes) -> list[bytes]:
    """The POST body: a msgpack array of encoded transactions (bin). Raises ``BadRequest``."""
    if len(body) > MAX_BATCH_BYTES:
        raise PayloadTooLarge(f"a transaction batch is at most {MAX_BATCH_BYTES} bytes")
    try:
        value = codec.decode(body, max_bytes=MAX_BATCH_BYTES, limits=BATCH_LIMITS)
    except DecodeError as exc:
        raise BadRequest(f"body is not a msgpack array of transactions: {exc.message}", "malformed") from exc
    if not isinstance(value, list) or not all(isinstance(item, bytes) for item in value):
        raise BadRequest("body must be a msgpack array of encoded transactions (bin)", "malformed")
    if not value:
        raise BadRequest("the batch is empty", "empty")
    if len(value) > MAX_BATCH_TXS:
        raise PayloadTooLarge(f"a batch holds at most {MAX_BATCH_TXS} transactions", "too_many_txs")
    return value


def encode_batch(raws: Sequence[bytes]) -> bytes:
    return codec.encode(list(raws))


class Reservation:
    """Bytes of one request counted in ``Mempool.inflight_bytes``."""

    def __init__(self, pool: "Mempool") -> None:
        self._pool = pool
        self.size = 0

    def grow(self, size: int) -> None:
        """Count ``size`` more bytes; 503 ``busy`` when that would pass ``MAX_INFLIGHT_BYTES``."""
        if self._pool.inflight_bytes + size > MAX_INFLIGHT_BYTES:
            raise Overloaded("too many transactions are being read or verified right now; retry later",
                             "busy", retry_after=RETRY_AFTER_FULL_S / 2)
        self._pool.inflight_bytes += size
        self.size += size


class ClientBudgets:
    """Per-client token buckets (transactions per second with a burst), least recently used first out."""

    def __init__(self, rate: float, burst: float, *, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = float(max(burst, MAX_BATCH_TXS))
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, client: str, now: float) -> float:
        tokens, stamp = self._buckets.get(client, (self.burst, now))
        return min(self.burst, tokens + (now - stamp) * self.rate)

    def retry_after(self, client: str, amount: float = 1.0) -> float | None:
        """Seconds until ``amount`` tokens are available, or None if they are now."""
        level = self._level(client, self._clock())
        if level >= amount:
            return None
        return (amount - level) / self.rate

    def take(self, client: str, amount: float) -> float | None:
        """Spend ``amount`` tokens, or return the seconds to wait (spending nothing)."""
        now = self._clock()
        level = self._level(client, now)
        if level < amount:
            return (amount - level) / self.rate
        self._set(client, level - amount, now)
        return None

    def charge(self, client: str, amount: float) -> None:
        """Spend ``amount`` tokens whatever the level (work already done); the bucket may go below
        zero, down to one burst, so the client waits until it refills."""
        now = self._clock()
        self._set(client, max(-self.burst, self._level(client, now) - amount), now)

    def _set(self, client: str, tokens: float, now: float) -> None:
        self._buckets[client] = (tokens, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return None


class Mempool:
    def __init__(self, ledger: Ledger, *, max_txs: int, max_bytes: int,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 verify_threads: int = 0, rejected_memory: int = REJECTED_MEMORY,
                 backlog_ms: int = 1000, invalid_memory: int = INVALID_MEMORY) -> None:
        self.ledger = ledger
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self._clock_ms = clock_ms
        self.pending: dict[bytes, Tx] = {}
        self.arrival_ms: dict[bytes, int] = {}
        self.pending_bytes = 0
        self.inflight_bytes = 0
        self.rejected: OrderedDict[bytes, tuple[str, str]] = OrderedDict()
        self._rejected_memory = rejected_memory
        # hashes whose signatures this node checked (admission or a valid proposal): never twice.
        # A hash leaves when its transaction commits (a committed transaction is refused as a replay
        # before any signature check, so its entry would only cost memory: ~200 bytes per ballot);
        # what never commits leaves oldest first beyond VERIFIED_MEMORY.
        self.verified: OrderedDict[bytes, None] = OrderedDict()
        self.verifications = 0
        # hashes of transactions that can never be valid (bad signature, wrong chain, undecodable)
        self.invalid: OrderedDict[bytes, tuple[str, str]] = OrderedDict()
        self._invalid_memory = invalid_memory
        self._verdicts: dict[tuple[str, str], tuple[str, str]] = {}
        self.invalid_hits = 0
        self._executor = ThreadPoolExecutor(verify_threads, "veche-verify") if verify_threads > 0 else None
        self._verify_threads = verify_threads
        self.rebuilds = 0
        self.backlog_ms = backlog_ms
        self._commits: deque[tuple[int, int]] = deque()  # (time ms, transactions committed)
        self.on_rejected: Callable[[str, int], None] = lambda code, count: None
        self.on_reaped: Callable[[float], None] = lambda waited_s: None
        self.on_invalid_hit: Callable[[], None] = lambda: None  # a remembered invalid hash came again
        self.yield_to: Callable[[], Awaitable[None]] = _yield  # between verification chunks
        self._check = self._fresh_check_state()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- reads -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.pending)

    def has_ripe(self, ripe_before_ms: int) -> bool:
        """True when the oldest pending transaction was admitted at or before ``ripe_before_ms``."""
        for arrived in self.arrival_ms.values():
            return arrived <= ripe_before_ms
        return False

    def is_verified(self, tx_hash: bytes) -> bool:
        """Signature-check lookup for ``Ledger.build_block``/``check_block``: pending txs were verified."""
        return tx_hash in self.pending or tx_hash in self.verified

    def mark_verified(self, tx_hashes: Iterable[bytes]) -> None:
        """Remember hashes whose signatures were checked (e.g. every tx of a proposal that checked)."""
        verified = self.verified
        for tx_hash in tx_hashes:
            verified[tx_hash] = None
        while len(verified) > VERIFIED_MEMORY:
            verified.popitem(last=False)

    def status(self, tx_hash: bytes) -> tuple[str, str, str] | None:
        """("pending", "", "") or ("rejected", code, message), or None when this pool never saw it."""
        if tx_hash in self.pending:
            return ("pending", "", "")
        found = self.rejected.get(tx_hash) or self.invalid.get(tx_hash)
        if found is not None:
            return ("rejected", found[0], found[1])
        return None

    def reap(self, max_txs: int, max_bytes: int, ripe_before_ms: int | None = None) -> list[Tx]:
        """The oldest pending transactions, FIFO, within both limits (and admitted before ``ripe_before_ms``)."""
        chosen: list[Tx] = []
        size = 0
        now = self._clock_ms()
        for tx_hash, tx in self.pending.items():
            if len(chosen) >= max_txs or size + len(tx.raw) > max_bytes:
                break
            if ripe_before_ms is not None and self.arrival_ms.get(tx_hash, 0) > ripe_before_ms:
                break
            chosen.append(tx)
            size += len(tx.raw)
            self.on_reaped((now - self.arrival_ms.get(tx_hash, now)) / 1000)
        return chosen

    # --- admission -------------------------------------------------------------------------------

    def check_room(self, incoming_bytes: int) -> None:
        """Shed load before decoding: raise ``Overloaded`` (503) when full or when too much is in flight."""
        if len(self.pending) >= self.max_txs:
            raise Overloaded(f"the mempool is full ({len(self.pending)} transactions); retry later",
                             "mempool_full", retry_after=RETRY_AFTER_FULL_S)
        if self.pending_bytes + incoming_bytes > self.max_bytes:
            raise Overloaded(f"the mempool is full ({self.pending_bytes} bytes); retry later",
                             "mempool_full", retry_after=RETRY_AFTER_FULL_S)
        if self.inflight_bytes + incoming_bytes > MAX_INFLIGHT_BYTES:
            raise Overloaded("too many transactions are being verified right now; retry later",
                             "busy", retry_after=RETRY_AFTER_FULL_S / 2)
        limit = self.backlog_limit()
        if len(self.pending) >= limit:
            raise Overloaded(f"{len(self.pending)} transactions already wait, more than the network commits in "
                             f"{self.backlog_ms} ms; retry later", "backlog", retry_after=RETRY_AFTER_FULL_S)

    def note_committed(self, count: int) -> None:
        """Record a committed block's size (throughput estimate for the backlog limit)."""
        now = self._clock_ms()
        self._commits.append((now, count))
        while self._commits and self._commits[0][0] < now - RATE_WINDOW_MS:
            self._commits.popleft()

    def commit_rate(self) -> float:
        """Transactions committed per second over the last ``RATE_WINDOW_MS``."""
        now = self._clock_ms()
        recent = [count for moment, count in self._commits if moment >= now - RATE_WINDOW_MS]
        if not recent:
            return 0.0
        span_ms = max(1000, now - self._commits[0][0])
        return sum(recent) * 1000 / span_ms

    def backlog_limit(self) -> int:
        return max(BACKLOG_FLOOR_TXS, int(self.commit_rate() * self.backlog_ms / 1000))

    @contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        """Count ``size`` bytes as in flight (being read or verified) while the block runs."""
        self.inflight_bytes += size
        try:
            yield
        finally:
            self.inflight_bytes -= size

    @contextmanager
    def reservation(self) -> Iterator[Reservation]:
        """Bytes in flight that grow as a body arrives (``Reservation.grow``), released at the end: a
        slow upload holds only what it has sent, never what it announced."""
        held = Reservation(self)
        try:
            yield held
        finally:
            self.inflight_bytes -= held.size

    async def admit(self, raws: Sequence[bytes]) -> Admission:
        """Admit a batch; each raw transaction is accepted (its hash) or rejected (index, code, message).

        Large batches (a peer's gossip can carry thousands) go in slices of ``ADMIT_SLICE``, in order,
        yielding between them, so no synchronous stretch of admission grows with the batch.
        """
        rejected: list[Rejection] = []
        accepted: list[bytes] = []
        admitted: list[Tx] = []
        seen: set[bytes] = set()
        for start in range(0, len(raws), ADMIT_SLICE):
            if start:
                await self.yield_to()
            verified = await self._stateless(raws[start:start + ADMIT_SLICE], rejected, start, seen)
            part = self._stateful(verified, rejected)
            accepted.extend(part.accepted)
            admitted.extend(part.admitted)
        rejected.sort(key=lambda r: r.index)
        for rejection in rejected:
            self.on_rejected(rejection.code, 1)
        return Admission(accepted, rejected, admitted)

    def certification_key(self, campaign_id: str) -> bytes | None:
        """The committed campaign's certification key (tokens are checked before the check state)."""
        campaign = self.ledger.state.campaigns.get(campaign_id)
        return campaign.spec.certification_key if campaign is not None else None

    async def _stateless(self, raws: Sequence[bytes], rejected: list[Rejection], offset: int,
                         seen: set[bytes]) -> list[Checked]:
        candidates: list[tuple[int, Tx]] = []
        trusted: list[Checked] = []
        chain_id = self.ledger.params.chain_id
        for index, raw in enumerate(raws, offset):
            if len(raw) > MAX_TX_BYTES:
                rejected.append(Rejection(index, "too_large", f"a transaction is at most {MAX_TX_BYTES} bytes"))
                continue
            tx_hash = sha256(raw)
            known_invalid = self.invalid.get(tx_hash)
            if known_invalid is not None:
                self.invalid.move_to_end(tx_hash)
                self.invalid_hits += 1
                self.on_invalid_hit()
                rejected.append(Rejection(index, known_invalid[0], known_invalid[1]))
                continue
            if tx_hash in seen:
                rejected.append(Rejection(index, "duplicate", "the same transaction appears twice in this batch"))
                continue
            seen.add(tx_hash)
            if tx_hash in self.pending:
                rejected.append(Rejection(index, "already_pending", "this transaction is already pending"))
                continue
            if self.ledger.state.is_committed_tx(tx_hash):
                rejected.append(Rejection(index, "already_committed", "this transaction is already committed"))
                continue
            try:
                tx = decode_tx(raw)
            except DecodeError as exc:
                rejected.append(Rejection(index, exc.code, exc.message))
                self._remember_invalid(tx_hash, exc.code, exc.message)
                continue
            if tx.chain_id != chain_id:
                message = f"transaction is for chain {tx.chain_id!r}, this is {chain_id!r}"
                rejected.append(Rejection(index, "wrong_chain", message))
                self._remember_invalid(tx_hash, "wrong_chain", message)
                continue
            if tx_hash in self.verified:
                trusted.append((index, tx, True))
            else:
                candidates.append((index, tx))
        self.verifications += len(candidates)
        checked_from = len(rejected)
        if self._executor is not None and len(candidates) > VERIFY_CHUNK:
            verified = await self._verify_in_threads(candidates, rejected)
        else:
            verified = []
            for start in range(0, len(candidates), VERIFY_CHUNK):
                if start:
                    await self.yield_to()
                verified.extend(_verify_chunk(candidates[start:start + VERIFY_CHUNK], rejected,
                                              self.certification_key))
        self.mark_verified(tx.hash for _, tx, complete in verified if complete)
        if len(rejected) > checked_from:
            by_index = dict(candidates)
            for rejection in rejected[checked_from:]:
                self._remember_invalid(by_index[rejection.index].hash, rejection.code, rejection.message)
        if trusted:
            verified = sorted(verified + trusted, key=lambda item: item[0])
        return verified

    async def _verify_in_threads(self, candidates: list[tuple[int, Tx]],
                                 rejected: list[Rejection]) -> list[Checked]:
        loop = asyncio.get_running_loop()
        parts = max(1, self._verify_threads)
        size = (len(candidates) + parts - 1) // parts
        chunks = [candidates[i:i + size] for i in range(0, len(candidates), size)]
        outcomes = [list[Rejection]() for _ in chunks]
        results = await asyncio.gather(*(loop.run_in_executor(self._executor, _verify_chunk, chunk, outcome,
                                                              self.certification_key)
                                         for chunk, outcome in zip(chunks, outcomes)))
        for outcome in outcomes:
            rejected.extend(outcome)
        return [item for part in results for item in part]

    def _stateful(self, verified: list[Checked], rejected: list[Rejection]) -> Admission:
        accepted: list[bytes] = []
        admitted: list[Tx] = []
        check = self._check
        now = self._clock_ms()
        check.time_ms = max(check.time_ms, now)
        for index, tx, complete in verified:
            if tx.hash in self.pending:
                rejected.append(Rejection(index, "already_pending", "this transaction is already pending"))
                continue
            if len(self.pending) >= self.max_txs or self.pending_bytes + len(tx.raw) > self.max_bytes:
                rejected.append(Rejection(index, "mempool_full", "the mempool is full; retry later"))
                continue
            try:
                check.apply(tx, signatures_checked=complete)
            except TxRejected as exc:
                rejected.append(Rejection(index, exc.code, exc.message))
                self._remember(tx.hash, exc.code, exc.message)
                continue
            except VecheError as exc:  # a defect elsewhere must not take the node down
                log.exception("check state failed on transaction %s", tx.hash.hex())
                rejected.append(Rejection(index, "internal_error", exc.message))
                self._check = check = self._rebuild()
                continue
            if not complete:   # the check state checked its token
                self.mark_verified((tx.hash,))
            self.pending[tx.hash] = tx
            self.arrival_ms[tx.hash] = now
            self.pending_bytes += len(tx.raw)
            self.rejected.pop(tx.hash, None)
            accepted.append(tx.hash)
            admitted.append(tx)
        return Admission(accepted, rejected, admitted)

    # --- after a block ---------------------------------------------------------------------------

    def absorb(self, block_txs: Sequence[bytes], block_events: bool) -> bool:
        """Before a block commits: fold its transactions into the check state.

        Returns True when the check state is still exact afterwards (the block holds only ballots and
        registrations, each pending here or applying on top of the check state); False means
        ``after_commit`` must rebuild.
        """
        if block_events:
            return False
        check = self._check
        for raw in block_txs:
            tx_hash = sha256(raw)
            pending = self.pending.get(tx_hash)
            if pending is not None:
                if pending.kind not in COMMUTING_KINDS:
                    return False
                continue
            try:
                tx = decode_tx(raw)
            except DecodeError:
                return False
            if tx.kind not in COMMUTING_KINDS:
                return False
            try:
                check.apply(tx, signatures_checked=True)
            except VecheError:
                return False
        return True

    def after_commit(self, block_txs: Iterable[bytes], *, exact: bool) -> None:
        """After a block committed: drop its transactions; rebuild the check state unless ``exact``."""
        count = 0
        verified = self.verified
        for raw in block_txs:
            tx_hash = sha256(raw)
            self._forget(tx_hash)
            verified.pop(tx_hash, None)
            count += 1
        self.note_committed(count)
        now = self._clock_ms()
        if exact and not self.ledger.state.open_campaigns_due(now):
            check = self._check
            check.height = self.ledger.height + 1
            check.time_ms = max(check.time_ms, now)
            if not self.pending or len(check.writes) > 4 * len(self.pending) + 10_000:
                self._check = self._rebuild()
            return
        self._check = self._rebuild()

    def drop(self, tx_hash: bytes, code: str, message: str) -> None:
        """Remove a pending transaction that cannot commit (found while building a block)."""
        if self._forget(tx_hash):
            self.on_rejected(code, 1)
        self._remember(tx_hash, code, message)

    def expire(self, older_than_ms: int) -> int:
        """Drop transactions pending since before ``older_than_ms`` (observers: forwarded, never committed)."""
        stale = [h for h, arrived in self.arrival_ms.items() if arrived < older_than_ms]
        for tx_hash in stale:
            self.drop(tx_hash, "expired", "the transaction did not commit in time; submit it again")
        if stale:
            self._check = self._rebuild()
        return len(stale)

    def resync(self) -> None:
        """Rebuild the check state from scratch (after block sync moved the ledger)."""
        for tx_hash in [h for h in self.pending if self.ledger.state.is_committed_tx(h)]:
            self._forget(tx_hash)
            self.verified.pop(tx_hash, None)
        self._check = self._rebuild()

    def _forget(self, tx_hash: bytes) -> bool:
        tx = self.pending.pop(tx_hash, None)
        if tx is None:
            return False
        self.arrival_ms.pop(tx_hash, None)
        self.pending_bytes -= len(tx.raw)
        return True

    def _fresh_check_state(self) -> Execution:
        check = self.ledger.state.begin(self.ledger.height + 1, max(self._clock_ms(), self.ledger.last_time_ms + 1))
        check.begin_block()
        return check

    def _rebuild(self) -> Execution:
        """Re-apply every pending transaction in FIFO order (no signature checks)."""
        self.rebuilds += 1
        check = self._fresh_check_state()
        dropped: list[tuple[bytes, str, str]] = []
        for tx_hash, tx in self.pending.items():
            try:
                check.apply(tx, signatures_checked=True)
            except TxRejected as exc:
                dropped.append((tx_hash, exc.code, exc.message))
            except VecheError as exc:
                log.error("check state rebuild: transaction %s fails unexpectedly: %s", tx_hash.hex(), exc)
                dropped.append((tx_hash, "internal_error", exc.message))
        for tx_hash, code, message in dropped:
            self.drop(tx_hash, code, message)
        if dropped:
            log.info("mempool: %d pending transactions no longer apply and were dropped", len(dropped))
        return check

    def _remember_invalid(self, tx_hash: bytes, code: str, message: str) -> None:
        """A transaction failed a check its bytes alone decide: re-sent, it is refused by hash."""
        verdict = self._verdicts.setdefault((code, message), (code, message))  # one tuple per distinct verdict
        if len(self._verdicts) > 1024:
            self._verdicts.clear()
        self.invalid[tx_hash] = verdict
        self.invalid.move_to_end(tx_hash)
        while len(self.invalid) > self._invalid_memory:
            self.invalid.popitem(last=False)

    def _remember(self, tx_hash: bytes, code: str, message: str) -> None:
        self.rejected[tx_hash] = (code, message)
        self.rejected.move_to_end(tx_hash)
        while len(self.rejected) > self._rejected_memory:
            self.rejected.popitem(last=False)


async def _yield() -> None:
    await asyncio.sleep(0)


def _verify_chunk(chunk: Sequence[tuple[int, Tx]], rejected: list[Rejection],
                  certification_key_of: Callable[[str], bytes | None]) -> list[Checked]:
    """Signatures (and tokens) of a chunk: (index, tx, fully checked); failures go to ``rejected``."""
    verified: list[Checked] = []
    for index, tx in chunk:
        try:
            complete = tx.verify_credentials(certification_key_of)
        except SignatureError as exc:
            rejected.append(Rejection(index, exc.code, exc.message))
            continue
        verified.append((index, tx, complete))
    return verified
