"""Watching the network from outside: node status, committed blocks, memory.

``CommitWatcher`` polls every node's ``/api/v1/status`` (over the fabric's control URLs, so a
partition does not blind it) and follows the chain on whichever reachable node is highest,
reading ``/api/v1/blocks/raw?from=&to=`` ranges. For each block it notes the first time any node
showed it; every transaction hash in it is marked committed in the ``Tracker`` at that moment, and
a hash that appears a second time anywhere in the chain is recorded as a duplicate.

``Sampler`` writes one JSON line per interval (heights, mempools, RSS of every process from
``/proc``, commit latency of what committed in the interval) — the soak report's raw data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from chain import codec
from chain.block import Block
from chain.crypto import sha256
from chain.errors import DecodeError
from veche_chaos.cluster import Cluster
from veche_chaos.tracking import FLOOD, Tracker, latency_summary

log = logging.getLogger("veche.chaos.observe")

STATUS_TIMEOUT = aiohttp.ClientTimeout(total=1.5)
RANGE_TIMEOUT = aiohttp.ClientTimeout(total=20)
RANGE_BLOCKS = 200


async def get_json(session: aiohttp.ClientSession, url: str, *,
                   timeout: aiohttp.ClientTimeout = STATUS_TIMEOUT) -> Any | None:
    try:
        async with session.get(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            return await response.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
        return None


async def get_bytes(session: aiohttp.ClientSession, url: str, *,
                    timeout: aiohttp.ClientTimeout = RANGE_TIMEOUT) -> bytes | None:
    try:
        async with session.get(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            return await response.read()
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return None


def decode_range(data: bytes) -> list[Block]:
    value = codec.decode(data, max_bytes=1 << 27)
    if not isinstance(value, list):
        raise DecodeError("block range must be an array")
    blocks = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise DecodeError("block range entries must be [block, certificate]")
        blocks.append(Block.from_wire(item[0]))
    return blocks


@dataclass(slots=True)
class NodeSample:
    height: int
    app_hash: str
    mempool: int
    mempool_bytes: int
    catching_up: bool
    at: float
    round: int = 0


@dataclass(slots=True)
class BlockInfo:
    height: int
    block_hash: bytes
    app_hash: bytes
    time_ms: int
    txs: int
    seen: float


@dataclass(eq=False)
class CommitWatcher:
    cluster: Cluster
    tracker: Tracker
    poll_s: float = 0.2
    status: dict[str, NodeSample] = field(default_factory=dict)
    blocks: list[BlockInfo] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    history: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    max_mempool: dict[str, int] = field(default_factory=dict)
    max_mempool_bytes: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    _positions: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    _next_height: int = 1
    _history_at: float = 0.0

    @property
    def height(self) -> int:
        """The highest height the watcher has read blocks up to."""
        return self._next_height - 1

    def node_height(self, name: str) -> int | None:
        sample = self.status.get(name)
        return None if sample is None else sample.height

    def fresh_height(self, name: str, within: float = 2.0) -> int | None:
        sample = self.status.get(name)
        if sample is None or time.time() - sample.at > within:
            return None
        return sample.height

    def max_height(self, exclude: set[str] | None = None) -> int:
        heights = [s.height for n, s in self.status.items() if not exclude or n not in exclude]
        return max(heights, default=0)

    async def poll_status(self, session: aiohttp.ClientSession) -> None:
        names = self.cluster.nodes
        answers = await asyncio.gather(*(get_json(session, self.cluster.url(n) + "/api/v1/status") for n in names))
        now = time.time()
        for name, answer in zip(names, answers):
            if not isinstance(answer, dict):
                continue
            consensus = answer.get("consensus") or {}
            sample = NodeSample(int(answer["height"]), str(answer["app_hash"]), int(answer.get("mempool", 0)),
                                int(answer.get("mempool_bytes", 0)), bool(answer.get("catching_up")), now,
                                int(consensus.get("round", 0)) if isinstance(consensus, dict) else 0)
            self.status[name] = sample
            self.max_mempool[name] = max(self.max_mempool.get(name, 0), sample.mempool)
            self.max_mempool_bytes[name] = max(self.max_mempool_bytes.get(name, 0), sample.mempool_bytes)
        if now - self._history_at >= 1.0:
            self._history_at = now
            self.history.append((now, {n: s.height for n, s in self.status.items() if now - s.at < 2.0}))

    async def refresh(self) -> None:
        """Poll every node's status now (the periodic poll may be a fraction of a second old)."""
        async with aiohttp.ClientSession() as session:
            await self.poll_status(session)

    async def follow(self, session: aiohttp.ClientSession) -> None:
        now = time.time()
        live = sorted(((s.height, n) for n, s in self.status.items() if now - s.at < 2.0), reverse=True)
        for height, name in live:
            if height < self._next_height:
                return
            data = await get_bytes(session, f"{self.cluster.url(name)}/api/v1/blocks/raw?from={self._next_height}"
                                            f"&to={min(height, self._next_height + RANGE_BLOCKS - 1)}")
            if data is None:
                continue
            try:
                blocks = decode_range(data)
            except DecodeError:
                self.errors += 1
                log.warning("node %s served a block range that does not decode", name)
                continue
            seen = time.time()
            for block in blocks:
                if block.height != self._next_height:
                    break
                self._absorb(block, seen)
            return

    def _absorb(self, block: Block, seen: float) -> None:
        height = block.height
        self.blocks.append(BlockInfo(height, block.hash(), block.header.app_hash, block.header.time_ms,
                                     len(block.txs), seen))
        for index, raw in enumerate(block.txs):
            tx_hash = sha256(raw)
            first = self._positions.get(tx_hash)
            if first is not None:
                self.duplicates.append({"tx": tx_hash.hex(), "first": list(first), "again": [height, index]})
                continue
            self._positions[tx_hash] = (height, index)
            self.tracker.committed(tx_hash, height, index, seen)
        self._next_height = height + 1

    def position(self, tx_hash: bytes) -> tuple[int, int] | None:
        return self._positions.get(tx_hash)

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    await self.poll_status(session)
                    await self.follow(session)
                except Exception:  # noqa: BLE001 - the watcher must outlive a bad answer
                    self.errors += 1
                    log.exception("commit watcher round failed")
                elapsed = time.monotonic() - started
                try:
                    await asyncio.wait_for(stop.wait(), max(0.01, self.poll_s - elapsed))
                except TimeoutError:
                    pass

    async def wait_for(self, condition: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            await asyncio.sleep(step)
        return condition()

    def all_caught_up(self, names: list[str], *, within: float = 2.0) -> bool:
        """Every named node answered recently and all are at the same height (or one block apart)."""
        heights = [self.fresh_height(n, within) for n in names]
        if any(h is None for h in heights):
            return False
        values = [h for h in heights if h is not None]
        return max(values) - min(values) <= 1


@dataclass(eq=False)
class Sampler:
    """One JSON line per ``interval_s``: heights, mempools, RSS and commit latency of the interval."""

    cluster: Cluster
    watcher: CommitWatcher
    tracker: Tracker
    path: Path
    interval_s: float = 10.0
    rows: list[dict[str, Any]] = field(default_factory=list)
    peak_rss_kib: dict[str, int] = field(default_factory=dict)

    def sample(self, since: float, now: float) -> dict[str, Any]:
        rss: dict[str, int] = {}
        anon: dict[str, int] = {}
        for name in self.cluster.procs:
            memory = self.cluster.memory_kib(name)
            if memory is None:
                continue
            value = memory["VmRSS"]
            rss[name] = value
            self.peak_rss_kib[name] = max(self.peak_rss_kib.get(name, 0), value)
            if "RssAnon" in memory:
                anon[name] = memory["RssAnon"]
        window = [r for r in self.tracker.records.values()
                  if r.committed is not None and since <= r.committed < now and r.kind == "vote"
                  and r.source != FLOOD]
        return {
            "t": round(now, 3), "height": self.watcher.height,
            "heights": {n: s.height for n, s in self.watcher.status.items() if now - s.at < 3},
            "mempool": {n: s.mempool for n, s in self.watcher.status.items() if now - s.at < 3},
            "rss_kib": rss, "anon_kib": anon, "committed_votes": len(window), "latency": latency_summary(window),
        }

    async def run(self, stop: asyncio.Event) -> None:
        since = time.time()
        with self.path.open("a", encoding="utf-8") as out:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), self.interval_s)
                except TimeoutError:
                    pass
                now = time.time()
                row = self.sample(since, now)
                since = now
                self.rows.append(row)
                out.write(json.dumps(row) + "\n")
                out.flush()
