"""An observer's forwarding of admitted transactions to the validators' public API.

An observer signs nothing, so it cannot use the validators' p2p links: it is a client like any
other. Admitted transactions wait in a bounded queue; one task sends them in batches
(``POST /api/v1/txs``) to a validator, moving to the next one on a connection error, a 5xx, a 429
or a 503, and backing off when none takes them. The observer keeps them pending until block sync
sees them committed (or they expire), and re-forwards any that have not committed after
``REFORWARD_AFTER_S`` to the next validator (the first may have crashed before gossiping them);
validators answer a re-sent transaction with ``already_pending``/``already_committed`` cheaply.

Back-pressure: while every validator refuses (429/503, or is unreachable) the observer refuses new
client transactions too (``check_room`` → 503 ``upstream_busy``) until the validators' Retry-After
has passed — accepting what cannot be forwarded would only make its clients wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque

import aiohttp

from node.errors import Overloaded
from node.mempool import MAX_BATCH_BYTES, MAX_BATCH_TXS, encode_batch

log = logging.getLogger("veche.node.forward")

MAX_QUEUED = 100_000
FORWARD_DELAY_S = 0.004
TIMEOUT_S = 15.0
REFORWARD_AFTER_S = 5.0
MAX_BACKOFF_S = 1.0


class Forwarder:
    def __init__(self, urls: list[str]) -> None:
        self.urls = [url.rstrip("/") for url in urls]
        self.queue: deque[bytes] = deque()
        self.dropped = 0
        self.forwarded = 0
        self._next = random.randrange(len(self.urls)) if self.urls else 0
        self._ready = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self.reforwarded = 0
        self.busy_until = 0.0
        self._retry_after = 0.0

    def check_room(self) -> None:
        """Raise ``Overloaded`` while the validators refuse forwarded transactions (or the queue is long)."""
        wait = self.busy_until - time.monotonic()
        if wait > 0:
            raise Overloaded("the validators are shedding load; retry later", "upstream_busy", retry_after=wait)
        if len(self.queue) > MAX_QUEUED // 2:
            raise Overloaded("too many transactions wait to be forwarded; retry later", "upstream_busy",
                             retry_after=1.0)

    def reforward(self, stale: list[bytes]) -> None:
        """Send again transactions still pending long after they were forwarded, to another validator."""
        if stale:
            self._next += 1
            self.reforwarded += len(stale)
            self.push(stale)

    def attach(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def push(self, raws: list[bytes]) -> None:
        for raw in raws:
            if len(self.queue) >= MAX_QUEUED:
                self.queue.popleft()
                self.dropped += 1
            self.queue.append(raw)
        if raws:
            self._ready.set()

    def _take(self) -> list[bytes]:
        batch: list[bytes] = []
        size = 0
        while self.queue and len(batch) < MAX_BATCH_TXS and size + len(self.queue[0]) + 16 <= MAX_BATCH_BYTES:
            raw = self.queue.popleft()
            batch.append(raw)
            size += len(raw) + 16
        return batch

    async def run(self) -> None:
        backoff = 0.1
        while True:
            await self._ready.wait()
            await asyncio.sleep(FORWARD_DELAY_S)
            batch = self._take()
            if not self.queue:
                self._ready.clear()
            if not batch:
                continue
            self._retry_after = 0.0
            if await self._send(batch):
                backoff = 0.1
                self.forwarded += len(batch)
                self.busy_until = 0.0
                continue
            self.queue.extendleft(reversed(batch))
            self._ready.set()
            delay = max(backoff * (0.5 + random.random()), min(self._retry_after, MAX_BACKOFF_S))
            self.busy_until = time.monotonic() + delay
            log.info("no validator takes forwarded transactions right now; retrying in %.2f s", delay)
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _send(self, batch: list[bytes]) -> bool:
        if self._session is None or not self.urls:
            return False
        body = encode_batch(batch)
        for _ in range(len(self.urls)):
            url = self.urls[self._next % len(self.urls)]
            try:
                async with self._session.post(url + "/api/v1/txs", data=body,
                                              headers={"Content-Type": "application/octet-stream"},
                                              timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as response:
                    await response.read()
                    if response.status == 200:
                        self._next += 1  # spread forwarded admission work over the validators
                        return True
                    if 400 <= response.status < 500 and response.status != 429:
                        log.warning("validator %s refused %d forwarded transactions with HTTP %d; dropped",
                                    url, len(batch), response.status)
                        return True
                    if response.status in (429, 503):
                        self._retry_after = max(self._retry_after, _seconds(response.headers.get("Retry-After")))
                    log.debug("validator %s answered %d to forwarded transactions", url, response.status)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                log.debug("validator %s unreachable for forwarding: %s", url, exc)
            self._next += 1
        return False


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
