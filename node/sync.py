"""Block sync: fetch certified blocks from peers' public API and apply them.

A node is behind when the engine reports ``PeerAhead``, when a peer's ``/api/v1/status`` shows a
higher height (observers poll one source every ``poll_interval_s`` in turn and all of them every
``FULL_POLL_EVERY`` polls; validators rarely, as a safety net), and at start-up. It then fetches ``GET /api/v1/blocks/raw?from=&to=`` ranges and applies each block
with ``ChainApp.apply_synced``: the commit certificate is checked against the *genesis* validator
set before anything is written, and the block must re-execute to its header's app hash. The
blocks of one fetched range are written together in one synced batch (``Ledger.committing``).

Trust choice: under a valid certificate, transaction signatures are not re-verified during sync
(a quorum of validators verified them before precommitting); ``veche verify`` checks everything.

A peer that serves something that does not check (bad certificate, mismatching data, garbage) is
counted, logged and benched for ``BAD_PEER_BENCH_S``; the next peer is tried.

Standing down: a validator whose consensus is committing (a block within ``CONSENSUS_PROGRESS_S``)
and which is within ``lag_tolerance`` of the best known height leaves the next blocks to consensus:
``PeerAhead`` does not force a fetch then, and a catch-up in progress ends. ``PeerAhead(h)`` means
validators are *working* at ``h``, so the node asks for ``h - 1``, the committed height (asking for
``h`` itself chased a block that did not exist yet, polling and fetching until consensus made it).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from chain import codec
from chain.block import Block, CommitCertificate
from chain.errors import BlockInvalid, DecodeError, StorageError
from chain.ledger import decode_block_with_certificate
from node.chain_app import ChainApp, CommittedBlock
from node.errors import FatalError
from node.metrics import NodeMetrics

log = logging.getLogger("veche.node.sync")

RANGE_BLOCKS = 500
MAX_RANGE_RESPONSE = 64 * 1024 * 1024
MAX_RANGE_BLOCKS = 500            # what /api/v1/blocks/raw serves at most (node/api.py RANGE_MAX_BLOCKS)
BAD_PEER_BENCH_S = 30.0
STATUS_TIMEOUT_S = 3.0
STATUS_WAIT_S = 0.5
FULL_POLL_EVERY = 10
FETCH_TIMEOUT_S = 60.0
LAG_BLOCKS = 3
CONSENSUS_PROGRESS_S = 2.0
"""A consensus commit this recent means consensus is progressing (block sync may stand down)."""


@dataclass(slots=True)
class Source:
    name: str
    url: str
    height: int = 0
    benched_until: float = 0.0
    failures: int = 0
    reachable: bool = False
    links_down: bool = False  # a validator's status showed fewer peer links up than the other validators


class BlockSync:
    def __init__(self, app: ChainApp, sources: list[tuple[str, str]], metrics: NodeMetrics, *,
                 poll_interval_s: float, on_synced: Callable[[int], None],
                 on_block: Callable[[CommittedBlock], None], lag_tolerance: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.ledger = app.ledger
        self.sources = [Source(name, url.rstrip("/")) for name, url in sources]
        self.metrics = metrics
        self.poll_interval_s = poll_interval_s
        self._on_synced = on_synced
        self._on_block = on_block
        self.target = 0
        self.lag_tolerance = lag_tolerance
        self.syncing = False
        self._forced = False
        self._polls = 0
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._polls_in_flight: dict[str, asyncio.Task[None]] = {}
        self._clock = clock
        self._consensus_at: float | None = None

    def attach(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def set_sources(self, sources: list[tuple[str, str]]) -> None:
        """The validators changed (a set change): poll and fetch from these, keeping known sources' state."""
        known = {source.url: source for source in self.sources}
        fresh = []
        for name, url in sources:
            source = known.get(url.rstrip("/")) or Source(name, url.rstrip("/"))
            source.name = name
            fresh.append(source)
        self.sources = fresh

    @property
    def catching_up(self) -> bool:
        return self.target > self.ledger.height + 1

    def request(self, height: int) -> None:
        """Block ``height`` is committed elsewhere (the node passes ``PeerAhead(h)`` as ``h - 1``):
        fetch up to it now — unless consensus is progressing within the lag tolerance."""
        if height > self.target:
            self.target = height
        if height <= self.ledger.height or self.standing_down():
            log.debug("validators committed height %d, this node has %d: left to consensus", height,
                      self.ledger.height)
            return
        log.info("validators committed height %d, this node has %d: block sync", height, self.ledger.height)
        self._forced = True
        self._wake.set()

    def consensus_committed(self) -> None:
        """Consensus (not block sync) committed a block."""
        self._consensus_at = self._clock()

    def standing_down(self) -> bool:
        """Consensus is progressing and the node is within ``lag_tolerance`` of the best known height."""
        return is_standing_down(self.target, self.ledger.height, self.lag_tolerance, self._consensus_at,
                                self._clock())

    async def run(self) -> None:
        try:
            await self._follow()
        finally:
            for poll in list(self._polls_in_flight.values()):
                poll.cancel()

    async def _follow(self) -> None:
        await self._poll_status()
        self._forced = True  # at start-up, catch up with whatever the peers have
        while True:
            if self.target > self.ledger.height + (0 if self._forced else self.lag_tolerance):
                self._forced = False
                await self.catch_up()
            self._forced = False
            try:
                async with asyncio.timeout(self.poll_interval_s):  # not wait_for (3.11 cancellation bug)
                    await self._wake.wait()
            except TimeoutError:
                self._polls += 1
                await self._poll_status(everyone=self._polls % FULL_POLL_EVERY == 0)
            self._wake.clear()

    # --- status polling -----------------------------------------------------------------------------

    async def _poll_status(self, *, everyone: bool = True) -> None:
        """Ask every live source for its height, or (between full rounds) just the next reachable one.

        Waits at most ``STATUS_WAIT_S``: a source that does not answer by then (stopped, cut off,
        overloaded) is polled on in the background, up to ``STATUS_TIMEOUT_S``, so it never holds
        up block sync; its answer, when it comes, updates the source and the target.
        """
        now = time.monotonic()
        live = [s for s in self.sources if s.benched_until <= now]
        if not live:
            return
        if not everyone:
            reachable = [s for s in live if s.reachable] or live
            live = [reachable[self._polls % len(reachable)]]
        polls = []
        for source in live:
            poll = self._polls_in_flight.get(source.url)
            if poll is None:
                poll = asyncio.create_task(self._poll_one(source))
                self._polls_in_flight[source.url] = poll
                poll.add_done_callback(functools.partial(self._poll_done, source.url))
            polls.append(poll)
        await asyncio.wait(polls, timeout=STATUS_WAIT_S)

    def _poll_done(self, url: str, _poll: asyncio.Task[None]) -> None:
        self._polls_in_flight.pop(url, None)

    async def _poll_one(self, source: Source) -> None:
        try:
            height = await self._status(source)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever a peer answers, it only makes it unreachable
            source.reachable = False
            log.debug("status of %s: %s", source.name, exc)
            return
        source.reachable = True
        source.height = height
        if height > self.target:
            self.target = height
            if height > self.ledger.height + self.lag_tolerance:
                self._wake.set()

    def health(self, url: str) -> int:
        """How fit the node at ``url`` looks for forwarding to (``node.forward``: 0 best, 2 worst).

        2: its last status poll failed (down, stopped or cut off); 1: its height lags the best
        known by more than ``LAG_BLOCKS`` or it reported peer links down; 0 otherwise (and for URLs
        that are not sources).
        """
        url = url.rstrip("/")
        best = max((s.height for s in self.sources if s.reachable), default=0)
        for source in self.sources:
            if source.url == url:
                if not source.reachable:
                    return 2
                return 1 if source.links_down or source.height + LAG_BLOCKS < best else 0
        return 0

    async def _status(self, source: Source) -> int:
        session = self._require_session()
        async with session.get(source.url + "/api/v1/status",
                               timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT_S)) as response:
            if response.status != 200:
                raise aiohttp.ClientResponseError(response.request_info, (), status=response.status)
            document = await response.json()
        height = document.get("height") if isinstance(document, dict) else None
        if not isinstance(height, int) or isinstance(height, bool) or height < 0:
            raise ValueError("status without a height")
        links = document.get("peer_links")
        source.links_down = isinstance(links, list) and any(
            isinstance(link, dict) and link.get("connected") is False for link in links)
        return height

    # --- catching up --------------------------------------------------------------------------------

    async def catch_up(self) -> None:
        start_height = self.ledger.height
        started = time.perf_counter()
        self.syncing = True
        if self.target > start_height + 1:
            log.info("block sync: from height %d to %d", start_height, self.target)
        try:
            while self.ledger.height < self.target and not self.standing_down():
                progressed = await self._fetch_round()
                if not progressed:
                    await self._poll_status()
                    if self.target <= self.ledger.height:
                        break
                    await asyncio.sleep(0.2 + random.random() * 0.3)
                    if not any(s.benched_until <= time.monotonic() for s in self.sources):
                        break
        finally:
            self.syncing = False
        gained = self.ledger.height - start_height
        if gained:
            self._on_synced(self.ledger.height)
            seconds = time.perf_counter() - started
            if gained > 1:
                log.info("block sync: reached height %d (+%d blocks in %.2f s)", self.ledger.height, gained, seconds)

    async def _fetch_round(self) -> bool:
        """Try sources, best first, until one yields blocks. True if the ledger advanced."""
        now = time.monotonic()
        candidates = [s for s in self.sources if s.benched_until <= now]
        candidates.sort(key=lambda s: (-(s.height >= self.ledger.height + 1), s.failures, random.random()))
        for source in candidates:
            first = self.ledger.height + 1
            last = min(self.target, first + RANGE_BLOCKS - 1)
            self.metrics.sync_fetches.inc()
            try:
                entries = await self._fetch(source, first, last)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
                source.failures += 1
                log.debug("block sync: %s unavailable: %s", source.name, exc)
                continue
            except DecodeError as exc:
                self._bench(source, f"served undecodable blocks: {exc.message}")
                continue
            if not entries:
                source.height = min(source.height, self.ledger.height)
                continue
            applied = await self._apply(source, entries)
            if applied:
                source.failures = 0
                return True
        return False

    async def _fetch(self, source: Source, first: int, last: int) -> list[tuple[Block, CommitCertificate]]:
        session = self._require_session()
        url = f"{source.url}/api/v1/blocks/raw?from={first}&to={last}"
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)) as response:
            if response.status == 404:
                return []
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            if response.content_length is not None and response.content_length > MAX_RANGE_RESPONSE:
                raise DecodeError("block range response is too large")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(1 << 20):
                size += len(chunk)
                if size > MAX_RANGE_RESPONSE:
                    raise DecodeError("block range response is too large")
                chunks.append(chunk)
        return decode_block_range(b"".join(chunks))

    async def _apply(self, source: Source, entries: list[tuple[Block, CommitCertificate]]) -> bool:
        """Check and apply a fetched range; every block it applies lands in ONE synced write.

        Each block's certificate is checked and the block re-executed before it is applied; the
        ledger holds the writes (``Ledger.committing``) and writes them together at the end, so a
        range of empty heartbeat blocks costs one fsync instead of one per block. A crash leaves the
        ledger at the height before the range or at its last applied block (docs/NODE.md §6).
        """
        applied = 0
        try:
            with self.ledger.committing():
                for block, certificate in entries:
                    height = self.ledger.height
                    if block.height <= height:
                        continue  # consensus got there first
                    if block.height != height + 1:
                        self._bench(source, f"served block {block.height} when {height + 1} was asked")
                        break
                    try:
                        committed = self.app.apply_synced(block, certificate)
                    except BlockInvalid as exc:  # CertificateError is a BlockInvalid
                        self._bench(source, f"served block {block.height} that does not check: {exc.message}")
                        break
                    applied += 1
                    self.metrics.sync_blocks.inc()
                    self.metrics.blocks_committed.inc("sync")
                    self._on_block(committed)
                    await asyncio.sleep(0)
        except StorageError as exc:
            raise FatalError(f"block sync cannot store blocks up to {self.ledger.height}: {exc.message}") from exc
        return applied > 0

    def _bench(self, source: Source, why: str) -> None:
        source.benched_until = time.monotonic() + BAD_PEER_BENCH_S
        source.failures += 1
        self.metrics.sync_bad_peer.inc(source.name)
        log.warning("block sync: peer %s %s; ignoring it for %.0f s", source.name, why, BAD_PEER_BENCH_S)

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("block sync used before its ClientSession was attached")
        return self._session

    def reachable(self) -> int:
        """Sources that answered the last status poll and are not benched."""
        now = time.monotonic()
        return sum(1 for s in self.sources if s.reachable and s.benched_until <= now)

    def describe(self) -> list[dict[str, object]]:
        now = time.monotonic()
        return [{"name": s.name, "url": s.url, "height": s.height, "reachable": s.reachable,
                 "benched": s.benched_until > now} for s in self.sources]


def is_standing_down(target: int, height: int, lag_tolerance: int, consensus_at: float | None,
                     now: float) -> bool:
    """Block sync leaves the blocks up to ``target`` to consensus: at most ``lag_tolerance`` of them
    are missing and consensus committed one less than ``CONSENSUS_PROGRESS_S`` ago."""
    return (target <= height + lag_tolerance and consensus_at is not None
            and now - consensus_at < CONSENSUS_PROGRESS_S)


def decode_block_range(data: bytes) -> list[tuple[Block, CommitCertificate]]:
    """``[[block, certificate], ...]`` as served by ``/api/v1/blocks/raw``; raises ``DecodeError``."""
    items = codec.array_items(data, max_items=MAX_RANGE_BLOCKS, max_bytes=MAX_RANGE_RESPONSE)
    return [decode_block_with_certificate(item) for item in items]   # one block at a time, each bounded
