"""Flood one node with ten times what it can admit, while honest votes keep flowing.

1. *Measure* the target's sustained admission rate: pre-signed fresh votes (with their
   registrations) are posted for ``measure_seconds`` in batches of ``batch`` from a client address
   of the measurement's own (``Fabric.measure_source``; the runner lists it in the target's
   ``limits.trusted_clients`` with a budget that never binds, so what is measured is what the node
   can admit, not what its budgets let one client send) by ``concurrency`` senders, a shed batch
   being put back after a short pause; rate = admitted votes / seconds. The network is then let
   drain. (Without a measurement address the first flood address measures, and budgets bind.)
2. *Flood* for ``seconds`` at ``factor`` × that rate, from untrusted addresses
   (``Fabric.flood_source``; ``sources`` of them), with the node's own budgets, ignoring
   ``Retry-After`` like an attacker: each batch mixes ``valid_share`` fresh valid votes (a pool
   that is re-offered until each vote is admitted), ``duplicate_share`` re-sends of votes already
   sent (pending or committed), and the rest forged votes with random keys and signatures (every
   one costs the node a signature check unless it sheds the request first).
3. Gates: the target's mempool never exceeds its configured bounds (sampled from
   ``/api/v1/status`` every 0.2 s) and its RSS stays under ``rss_limit_mib``; honest votes
   (direct and gateway) first offered during the flood commit with p99 ≤ ``honest_p99_s``.
   The run's invariants then check that nothing — flood or honest — was duplicated or lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from chain import codec
from chain.crypto import read_key_file
from chain.tx import Tx, VoteCast, encode_tx
from veche_chaos.hostile import HostileConfig, HostileLoad
from veche_chaos.load import CAMPAIGN, OCTET, DirectLoad, ballot_options, post_txs, record_answer
from veche_chaos.runner import Context, Phase
from veche_chaos.tracking import DIRECT, FLOOD, GATEWAY, latency_summary

log = logging.getLogger("veche.chaos.flood")

SHED_PAUSE_S = 0.2


@dataclass(slots=True)
class FloodConfig:
    target: str = "validator-1"
    factor: float = 10.0
    seconds: float = 30.0
    measure_votes: int = 8000
    measure_seconds: float = 3.0
    batch: int = 500
    concurrency: int = 6
    valid_share: float = 0.10
    duplicate_share: float = 0.45
    valid_pool: int = 12000
    forged_pool: int = 60000
    sources: int = 1                  # client addresses the flood comes from (each has its own budget)
    networks: bool = False            # each address in a /24 of its own (loopback fabric only)
    flood_batch: int = 0              # transactions per flood request (0: ``batch``)
    light_rate: float = 0.0           # votes/s of a light untrusted client posting to the target only
    honest_p99_s: float = 2.0
    rss_limit_mib: float = 500.0
    attacks: tuple[str, ...] = ()     # hostile clients beside the flood (veche_chaos.hostile.KINDS)


@dataclass(slots=True)
class FloodStats:
    requests: int = 0
    offered: Counter[str] = field(default_factory=Counter)       # by class: valid, duplicate, forged
    statuses: Counter[int] = field(default_factory=Counter)      # HTTP status (0 = no answer)
    codes: Counter[str] = field(default_factory=Counter)         # per-tx rejection codes
    admitted: int = 0
    behind: int = 0                                              # batches the client could not send in time

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "offered": dict(self.offered), "http_status": dict(self.statuses),
                "rejection_codes": dict(self.codes.most_common(12)), "admitted": self.admitted,
                "batches_not_sent_in_time": self.behind}


class Flooder:
    def __init__(self, context: Context, config: FloodConfig) -> None:
        self.context = context
        self.config = config
        cluster = context.cluster
        self.url = cluster.url(config.target) + "/api/v1/txs"
        self.sources = [context.fabric.flood_source(config.target, number, config.networks)
                        for number in range(config.sources)]
        measurer = context.fabric.measure_source(config.target) if context.config.measured_node == config.target \
            else None
        self.flood_size = config.flood_batch or config.batch
        self.measure_address = measurer if measurer is not None else self.sources[0]
        gateway_key = read_key_file(context.gateway_key_file)
        ballots = ballot_options(cluster.genesis_document)
        self.maker = DirectLoad(context.tracker, context.ring, context.chain_id, gateway_key, ballots, rate=0,
                                source=FLOOD, seed=7)
        self.rng = random.Random(11)
        self.sent_votes: list[bytes] = []
        self.pool: list[Tx] = []
        self.stats = FloodStats()
        self.template = ballots[0]
        self.forged: list[bytes] = []
        self._forged_at = 0

    def _session(self, number: int = 0, source: str | None = None) -> aiohttp.ClientSession:
        source = source if source is not None else self.sources[number % len(self.sources)]
        connector = aiohttp.TCPConnector(limit=64, local_addr=(source, 0) if source else None)
        return aiohttp.ClientSession(connector=connector)

    async def _post(self, session: aiohttp.ClientSession, raws: list[bytes],
                    txs: list[Tx | None]) -> tuple[int, int]:
        """POST one batch: (HTTP status, 0 without an answer; votes of ``txs`` admitted)."""
        self.stats.requests += 1
        try:
            async with session.post(self.url, data=codec.encode(raws), headers=OCTET,
                                    timeout=aiohttp.ClientTimeout(total=10)) as response:
                status = response.status
                body = await response.json(content_type=None) if status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            self.stats.statuses[0] += 1
            return 0, 0
        self.stats.statuses[status] += 1
        if not isinstance(body, dict):
            return status, 0
        accepted = {bytes.fromhex(h) for h in body.get("accepted", [])}
        self.stats.admitted += len(accepted)
        for rejection in body.get("rejected", []):
            self.stats.codes[str(rejection.get("code"))] += 1
        now = time.time()
        admitted_votes = 0
        for tx in txs:
            if tx is None:
                continue
            if tx.hash in accepted:
                self.context.tracker.ack(tx.hash, now)
                if tx.kind == "vote.cast":
                    admitted_votes += 1
        for rejection in body.get("rejected", []):
            index, code = int(rejection["index"]), str(rejection["code"])
            tx = txs[index] if index < len(txs) else None
            if tx is not None and code in ("already_pending", "already_committed"):
                self.context.tracker.ack(tx.hash, now)
        return status, admitted_votes

    # --- 1: measure -------------------------------------------------------------------------------

    async def measure(self) -> float:
        """Sustained admission: fresh votes posted for ``measure_seconds`` by ``concurrency`` senders;
        a shed batch (503/429) is put back and its sender pauses ``SHED_PAUSE_S``, like a client."""
        config = self.config
        per_batch = config.batch - 1
        batches = [self.maker.make_batch(per_batch) for _ in range(max(1, config.measure_votes // per_batch))]
        for batch in batches:
            self.sent_votes.extend(tx.raw for tx in batch[1:])
        queue: asyncio.Queue[list[Tx]] = asyncio.Queue()
        for batch in batches:
            queue.put_nowait(batch)
        admitted = 0
        shed = 0
        deadline = time.perf_counter() + config.measure_seconds

        async def sender(session: aiohttp.ClientSession) -> None:
            nonlocal admitted, shed
            while not queue.empty() and time.perf_counter() < deadline:
                batch = queue.get_nowait()
                for tx in batch:
                    record = self.context.tracker.records[tx.hash]
                    record.last_submit = time.time()
                    record.last_node = config.target
                status, count = await self._post(session, [tx.raw for tx in batch], list(batch))
                admitted += count  # read after the await: concurrent senders add up
                if status != 200:
                    shed += 1
                    queue.put_nowait(batch)
                    await asyncio.sleep(SHED_PAUSE_S)

        started = time.perf_counter()
        async with self._session(source=self.measure_address) as session:
            await asyncio.gather(*(sender(session) for _ in range(config.concurrency)))
        seconds = time.perf_counter() - started
        rate = admitted / seconds if seconds > 0 else 0.0
        log.info("admission of %s: %d votes in %.2f s = %.0f votes/s", config.target, admitted, seconds, rate)
        self.context.notes["admission measurement"] = {"source_address": self.measure_address,
                                                       "votes_prepared": sum(len(b) - 1 for b in batches),
                                                       "votes_admitted": admitted, "batches_shed": shed,
                                                       "seconds": round(seconds, 2), "votes_per_second": round(rate, 1)}
        return rate

    def prepare(self) -> None:
        """Make the flood's valid pool and forgeries before the measured window (the runner shares
        the machine: a second of key generation inside the window would stall the honest load)."""
        self.pool = [tx for batch in [self.maker.make_batch(self.flood_size - 1) for _ in range(4)] for tx in batch]
        self._make_forged()

    # --- 2: flood ---------------------------------------------------------------------------------

    def _make_forged(self) -> None:
        """Forged votes (random key, random signature), made once and cycled: the runner shares the
        machine with the nodes, so it must not spend a core making junk. The node remembers the
        hashes of bad signatures (a bounded LRU), so a forgery re-sent while remembered costs it a
        hash lookup; the pool is large enough (``forged_pool``) that most are fresh in a short flood."""
        body = VoteCast(CAMPAIGN, self.template.district_id, (self.template.initiative_id,))
        self.forged = [encode_tx("vote.cast", self.context.chain_id, body,
                                 [(self.rng.randbytes(32), self.rng.randbytes(64))])
                       for _ in range(self.config.forged_pool)]

    def _forged_batch(self, count: int) -> list[bytes]:
        start = self._forged_at
        self._forged_at = (start + count) % len(self.forged)
        chunk = self.forged[start:start + count]
        return chunk + self.forged[: count - len(chunk)]

    def _refill_pool(self) -> None:
        tracker = self.context.tracker
        self.pool = [tx for tx in self.pool if tracker.records[tx.hash].acked is None]
        while len(self.pool) < self.flood_size:
            self.pool.extend(self.maker.make_batch(self.flood_size - 1))

    def _flood_batch(self) -> tuple[list[bytes], list[Tx | None]]:
        config = self.config
        valid = int(self.flood_size * config.valid_share)
        duplicates = int(self.flood_size * config.duplicate_share)
        forged = self.flood_size - valid - duplicates
        self._refill_pool()
        chosen = self.pool[:valid]
        # keep a vote's registration ahead of it: registrations not yet admitted go first
        tracker = self.context.tracker
        raws: list[bytes] = []
        txs: list[Tx | None] = []
        for tx in chosen:
            raws.append(tx.raw)
            txs.append(tx)
        if self.sent_votes:
            for raw in self.rng.choices(self.sent_votes, k=duplicates):
                raws.append(raw)
                txs.append(None)
        raws.extend(self._forged_batch(forged))
        txs.extend([None] * forged)
        now = time.time()
        for tx in chosen:
            record = tracker.records[tx.hash]
            record.last_submit = now
            record.last_node = config.target
            if tx.kind == "vote.cast":
                self.sent_votes.append(tx.raw)
        self.stats.offered["valid"] += len(chosen)
        self.stats.offered["duplicate"] += duplicates if self.sent_votes else 0
        self.stats.offered["forged"] += forged
        return raws, txs

    async def light_client(self, stop: asyncio.Event) -> dict[str, Any]:
        """An honest untrusted client beside the flood (the runner's own address, not the flood's): every
        0.2 s a registration and its votes to the target only; a refused batch is re-sent at the next
        tick (new votes wait behind it). Reports its answers and how long votes took to be admitted."""
        per_batch = max(1, round(self.config.light_rate * 0.2))
        statuses: Counter[int] = Counter()
        delays: list[float] = []
        offered = 0
        waiting: list[tuple[float, list[Tx]]] = []
        async with aiohttp.ClientSession() as session:
            next_at = time.monotonic()
            while not stop.is_set():
                if not waiting:
                    waiting.append((time.monotonic(), self.maker.make_batch(per_batch)))
                    offered += per_batch
                first_offered, txs = waiting[0]
                for tx in txs:
                    record = self.context.tracker.records[tx.hash]
                    record.last_submit = time.time()
                    record.last_node = self.config.target
                result = await post_txs(session, self.config.target, self.context.cluster.url(self.config.target),
                                        [tx.raw for tx in txs])
                statuses[result.status] += 1
                if record_answer(self.context.tracker, txs, result):
                    waiting.pop(0)
                    delays.extend([time.monotonic() - first_offered] * (len(txs) - 1))
                next_at += 0.2  # a refused batch is re-sent at the next tick
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
                except TimeoutError:
                    pass
        delays.sort()
        return {"votes_per_s": self.config.light_rate, "votes_offered": offered, "votes_admitted": len(delays),
                "http_status": dict(statuses),
                "admission_delay_s": {"p50": round(delays[len(delays) // 2], 3) if delays else None,
                                      "p99": round(delays[int(len(delays) * 0.99)], 3) if delays else None,
                                      "max": round(delays[-1], 3) if delays else None}}

    async def flood(self, rate: float) -> dict[str, Any]:
        config = self.config
        interval = self.flood_size / rate if rate > 0 else 1.0
        inflight: set[asyncio.Task[tuple[int, int]]] = set()
        if not self.forged:
            self.prepare()
        started = time.monotonic()
        deadline = started + config.seconds
        next_at = started
        sessions = [self._session(number) for number in range(len(self.sources))]
        turn = 0
        try:
            while time.monotonic() < deadline:
                if len(inflight) < config.concurrency * 4 * len(sessions):
                    raws, txs = self._flood_batch()
                    session = sessions[turn % len(sessions)]
                    turn += 1
                    task = asyncio.create_task(self._post(session, raws, txs))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                else:
                    self.stats.behind += 1
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -1.0:
                    next_at = time.monotonic()  # far behind: do not burst to catch up
                    await asyncio.sleep(0)
                else:
                    await asyncio.sleep(0)
            if inflight:
                await asyncio.wait(inflight, timeout=15)
        finally:
            for session in sessions:
                await session.close()
        seconds = time.monotonic() - started
        offered = sum(self.stats.offered.values())
        return {"target_rate": round(rate, 1), "offered_txs": offered,
                "offered_rate": round(offered / seconds, 1) if seconds else 0, "seconds": round(seconds, 1),
                **self.stats.to_json()}


ADMISSION_METRICS = ("veche_requests_shed_total", "veche_txs_invalid_remembered_total", "veche_admission_rate_limit",
                     "veche_connections_cut_total", "veche_connections_refused_total", "veche_p2p_rejected_total")


async def admission_metrics(url: str) -> dict[str, float]:
    """The target's shed requests by reason, invalid hashes refused by lookup, and its node-wide rate."""
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/metrics", timeout=aiohttp.ClientTimeout(total=10)) as response:
                text = await response.text()
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(ADMISSION_METRICS):
            name, _, value = line.rpartition(" ")
            try:
                found[name] = float(value)
            except ValueError:
                continue
    return found


def flood_phase(config: FloodConfig) -> Phase:
    async def phase(context: Context) -> None:
        cluster, watcher = context.cluster, context.watcher
        if config.target not in cluster.nodes:
            raise ValueError(f"flood target {config.target} is not a node of this testnet")
        flooder = Flooder(context, config)
        rss_before = cluster.rss_kib(config.target) or 0
        measured = await flooder.measure()
        flooder.prepare()
        # start from a quiet network: the measurement's votes commit first
        await watcher.wait_for(lambda: all(s.mempool <= 100 for s in watcher.status.values()), 30, step=0.2)
        await asyncio.sleep(1)
        mempool_before = watcher.max_mempool.get(config.target, 0)
        watcher.max_mempool[config.target] = 0
        watcher.max_mempool_bytes[config.target] = 0
        peak_rss = rss_before

        async def watch_rss(stop: asyncio.Event) -> None:
            nonlocal peak_rss
            while not stop.is_set():
                peak_rss = max(peak_rss, cluster.rss_kib(config.target) or 0)
                try:
                    await asyncio.wait_for(stop.wait(), 0.5)
                except TimeoutError:
                    pass

        stop = asyncio.Event()
        rss_task = asyncio.create_task(watch_rss(stop))
        before = await admission_metrics(cluster.url(config.target))
        flood_started = time.time()
        light_stop = asyncio.Event()
        light = asyncio.create_task(flooder.light_client(light_stop)) if config.light_rate > 0 else None
        hostile = HostileLoad(context, config.target, HostileConfig(kinds=config.attacks)) if config.attacks else None
        hostile_task = asyncio.create_task(hostile.run(light_stop)) if hostile is not None else None
        result = await flooder.flood(config.factor * measured)
        light_stop.set()
        light_result = await light if light is not None else None
        hostile_result = await hostile_task if hostile_task is not None else None
        flood_ended = time.time()
        after = await admission_metrics(cluster.url(config.target))
        target_metrics = {name: value - (before.get(name, 0.0) if "_total" in name else 0.0)
                          for name, value in after.items()}
        await asyncio.sleep(2)
        stop.set()
        await rss_task
        # let honest votes offered in the flood window commit before judging their latency
        honest = [r for r in context.tracker.votes()
                  if r.source in (DIRECT, GATEWAY) and flood_started <= r.offered <= flood_ended]
        await watcher.wait_for(lambda: all(r.committed is not None for r in honest if r.acked is not None), 60)
        latency = latency_summary([r for r in honest if r.acked is not None])
        honest_p99 = latency["p99"]
        home_config = cluster.home(config.target) / "config.json"
        node_config = json.loads(home_config.read_text(encoding="utf-8"))
        max_txs = int(node_config.get("mempool_max_txs", 100_000))
        max_bytes = int(node_config.get("mempool_max_bytes", 32 * 1024 * 1024))
        mempool_peak = watcher.max_mempool.get(config.target, 0)
        mempool_bytes_peak = watcher.max_mempool_bytes.get(config.target, 0)
        context.extra["flood"] = {
            "target": config.target, "factor": config.factor, "measured_admission_votes_per_s": round(measured, 1),
            "window": [round(flood_started, 3), round(flood_ended, 3)],
            "flood": result, "honest_latency_during_flood": latency,
            "honest_votes_offered_during_flood": len(honest),
            "target_mempool_peak": mempool_peak, "target_mempool_bytes_peak": mempool_bytes_peak,
            "mempool_peak_before_flood": mempool_before, "mempool_bounds": [max_txs, max_bytes],
            "target_rss_mib_before": round(rss_before / 1024, 1), "target_rss_mib_peak": round(peak_rss / 1024, 1),
            "source_addresses": flooder.sources, "measure_address": flooder.measure_address,
            "target_metrics_during_flood": target_metrics, "light_untrusted_client": light_result,
            "hostile_clients": hostile_result,
        }
        context.notes["flood"] = (f"{result['offered_rate']:.0f} tx/s offered for {result['seconds']:.0f} s "
                                  f"(= {result['offered_rate'] / measured if measured else 0:.1f}x the measured "
                                  f"{measured:.0f} votes/s); statuses {result['http_status']}; "
                                  f"mempool peak {mempool_peak}; RSS {rss_before / 1024:.0f} → "
                                  f"{peak_rss / 1024:.0f} MiB; honest p99 {latency['p99']}")
        context.gate(f"flood offered >= {config.factor * 0.8:.0f}x the measured admission rate",
                     measured > 0 and result["offered_rate"] >= 0.8 * config.factor * measured)
        context.gate(f"mempool of {config.target} stayed within its bounds ({mempool_peak} <= {max_txs} txs, "
                     f"{mempool_bytes_peak} <= {max_bytes} bytes)", mempool_peak <= max_txs
                     and mempool_bytes_peak <= max_bytes)
        context.gate(f"RSS of {config.target} stayed under {config.rss_limit_mib:.0f} MiB "
                     f"(peak {peak_rss / 1024:.0f} MiB)", 0 < peak_rss / 1024 <= config.rss_limit_mib)
        if hostile is not None and hostile_result is not None:
            for name, passed in hostile.judge(hostile_result):
                context.gate(name, passed)
        context.gate(f"honest votes during the flood: p99 commit latency {latency['p99']} s <= "
                     f"{config.honest_p99_s} s ({latency['count']} votes)",
                     honest_p99 is not None and honest_p99 <= config.honest_p99_s and (latency["count"] or 0) > 0)

    return phase


__all__ = ["FloodConfig", "Flooder", "flood_phase"]
