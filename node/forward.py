"""An observer's forwarding of admitted transactions to the validators' public API.

An observer signs nothing, so it cannot use the validators' p2p links: it is a client like any
other. Admitted transactions wait in a bounded queue and go out in batches (``POST /api/v1/txs``),
up to ``MAX_IN_FLIGHT`` batches at a time, each to one validator chosen by health:

* a validator that timed out or refused the connection recently is avoided (for 1 s, doubling up
  to ``MAX_AVOID_S`` while it keeps failing), as is one that answered 429/503 until its Retry-After;
* among the rest, block sync's view decides (``health(url)``): a validator whose status poll failed
  is worst, one whose height lags the best known or whose peer links are not all up comes next
  (it may be cut off: what it admits would wait for its links);
* among the healthiest, the **primary** — one validator kept while it stays among them, so batches
  reach it in the order clients submitted them (a ballot after the registration it depends on) —
  while it has fewer than ``PRIMARY_DEPTH`` batches in flight; beyond that (a slow or frozen
  primary) the next one with the fewest in flight takes the batch. The primary changes only when
  it fails, is avoided, lags, or transactions it took have not committed in time (``reforward``:
  a validator that takes transactions and never proposes them must not keep them).

A validator answers each transaction: one refused as ``not_registered`` (its registration went to
another validator and has not reached this one yet) is sent again after ``NOT_REGISTERED_RETRY_S``,
at most ``NOT_REGISTERED_RETRIES`` times, instead of waiting for the re-forward.

Timeouts are short: ``CONNECT_TIMEOUT_S`` to connect, and a response time proportionate to the
batch (``RESPONSE_BASE_S`` + ``RESPONSE_PER_TX_S`` per transaction). A batch that times out, cannot
connect, or is refused (5xx, 429, 503) moves to the next validator in that order — one validator at
a time, never sprayed to all; re-sending the same bytes is harmless (a tx hash commits once, and a
validator answers ``already_pending``/``already_committed``). Only when every validator failed does
the batch go back to the front of the queue, with back-off.

The observer keeps forwarded transactions pending until block sync sees them committed (or they
expire), and re-forwards any that have not committed after ``REFORWARD_AFTER_S`` (the validator
may have crashed before gossiping them).

Back-pressure: while every validator refuses (429/503, or is unreachable) the observer refuses new
client transactions too (``check_room`` → 503 ``upstream_busy``) until the validators' Retry-After
has passed — accepting what cannot be forwarded would only make its clients wait.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from chain.numbers import parse_seconds
from node.errors import Overloaded
from node.mempool import MAX_BATCH_BYTES, MAX_BATCH_TXS, encode_batch

log = logging.getLogger("veche.node.forward")

MAX_QUEUED = 100_000
FORWARD_DELAY_S = 0.004
MAX_IN_FLIGHT = 4
CONNECT_TIMEOUT_S = 1.0
RESPONSE_BASE_S = 2.0
RESPONSE_PER_TX_S = 0.0005  # a full 5,000-transaction batch: 4.5 s
REFORWARD_AFTER_S = 5.0
MAX_BACKOFF_S = 1.0
AVOID_S = 1.0
MAX_AVOID_S = 8.0
PRIMARY_DEPTH = 2            # batches in flight to the primary before the next batch goes elsewhere
NOT_REGISTERED_RETRY_S = 0.5
NOT_REGISTERED_RETRIES = 4
RETRY_MEMORY = 10_000        # transactions whose re-sends are counted (oldest forgotten)

HEALTHY, DEGRADED, UNREACHABLE = 0, 1, 2


def response_timeout(transactions: int) -> float:
    return RESPONSE_BASE_S + RESPONSE_PER_TX_S * transactions


@dataclass(frozen=True, slots=True)
class Answer:
    """A validator's answer to one batch: ``taken`` (or the Retry-After it asked for), and the indexes
    of transactions it refused as ``not_registered``."""

    taken: bool
    retry_after: float = 0.0
    not_registered: tuple[int, ...] = ()


@dataclass(slots=True)
class Target:
    url: str
    in_flight: int = 0
    avoid_until: float = 0.0
    strikes: int = 0  # consecutive timeouts / connection failures


class Forwarder:
    def __init__(self, urls: list[str], *, health: Callable[[str], int] = lambda url: HEALTHY,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.targets = [Target(url.rstrip("/")) for url in urls]
        self.queue: deque[bytes] = deque()
        self.dropped = 0
        self.forwarded = 0
        self.reforwarded = 0
        self.busy_until = 0.0
        self._health = health
        self._primary = random.randrange(len(self.targets)) if self.targets else 0
        self.retried = 0
        self._retries: OrderedDict[bytes, int] = OrderedDict()  # raw → not_registered re-sends so far
        self._ready = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._session: aiohttp.ClientSession | None = None
        self._backoff = 0.1

    @property
    def urls(self) -> list[str]:
        return [target.url for target in self.targets]

    def set_targets(self, urls: list[str]) -> None:
        """The validators changed (a set change): forward to these, keeping what is known of the old ones."""
        known = {target.url: target for target in self.targets}
        self.targets = [known.get(url.rstrip("/")) or Target(url.rstrip("/")) for url in urls]
        self._primary = self._primary % len(self.targets) if self.targets else 0

    def check_room(self) -> None:
        """Raise ``Overloaded`` while the validators refuse forwarded transactions (or the queue is long)."""
        wait = self.busy_until - time.monotonic()
        if wait > 0:
            raise Overloaded("the validators are shedding load; retry later", "upstream_busy", retry_after=wait)
        if len(self.queue) > MAX_QUEUED // 2:
            raise Overloaded("too many transactions wait to be forwarded; retry later", "upstream_busy",
                             retry_after=1.0)

    def reforward(self, stale: list[bytes]) -> None:
        """Send again transactions still pending long after they were forwarded, to another validator
        (the primary took them and they did not commit: it may have crashed, or may not propose them)."""
        if stale:
            if self.targets:
                self._primary = (self._primary + 1) % len(self.targets)
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
        """Take batches off the queue while a slot is free; each is delivered by its own task."""
        async with asyncio.TaskGroup() as group:
            while True:
                await self._ready.wait()
                await asyncio.sleep(FORWARD_DELAY_S)
                wait = self.busy_until - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._slots.acquire()
                batch = self._take()
                if not self.queue:
                    self._ready.clear()
                if not batch:
                    self._slots.release()
                    continue
                group.create_task(self._deliver(batch))

    async def _deliver(self, batch: list[bytes]) -> None:
        """Hand ``batch`` to one validator, the next healthiest on failure; requeue it if none takes it."""
        try:
            if self._session is not None and self.targets:
                body = encode_batch(batch)
                retry_after = 0.0
                tried: set[str] = set()
                while (target := self._choose(tried)) is not None:
                    tried.add(target.url)
                    answer = await self._post(target, body, len(batch))
                    if answer.taken:
                        self.forwarded += len(batch)
                        self._backoff = 0.1
                        self.busy_until = 0.0
                        self._retry_unregistered([batch[i] for i in answer.not_registered if 0 <= i < len(batch)])
                        return
                    retry_after = max(retry_after, answer.retry_after)
            self.queue.extendleft(reversed(batch))
            self._ready.set()
            delay = max(self._backoff * (0.5 + random.random()), min(retry_after, MAX_BACKOFF_S))
            self.busy_until = max(self.busy_until, time.monotonic() + delay)
            self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
            log.info("no validator takes forwarded transactions right now; retrying in %.2f s", delay)
        finally:
            self._slots.release()

    def _retry_unregistered(self, raws: list[bytes]) -> None:
        """Send ``raws`` (refused as ``not_registered``) again shortly, each at most ``NOT_REGISTERED_RETRIES`` times."""
        due: list[bytes] = []
        for raw in raws:
            attempts = self._retries.pop(raw, 0)
            if attempts < NOT_REGISTERED_RETRIES:
                self._retries[raw] = attempts + 1
                due.append(raw)
        while len(self._retries) > RETRY_MEMORY:
            self._retries.popitem(last=False)
        if due:
            self.retried += len(due)
            asyncio.get_running_loop().call_later(NOT_REGISTERED_RETRY_S, self.push, due)

    def _choose(self, tried: set[str]) -> Target | None:
        """The validator for this batch among those not yet tried for it (see the module docstring)."""
        now = time.monotonic()
        count = len(self.targets)

        def rank(index: int, target: Target) -> tuple[bool, int, int, int, int]:
            primary = 0 if target.in_flight < PRIMARY_DEPTH else 2
            return (target.avoid_until > now, self._health(target.url),
                    primary if index == self._primary else 1, target.in_flight, (index - self._primary) % count)

        candidates = [(rank(index, t), index) for index, t in enumerate(self.targets) if t.url not in tried]
        if not candidates:
            return None
        chosen_rank, chosen = min(candidates)
        if chosen != self._primary:
            primary = self.targets[self._primary]
            spill = (primary.url not in tried and rank(self._primary, primary)[:2] == chosen_rank[:2])
            if not spill:  # the primary failed, is avoided or lags: the chosen one takes its place
                self._primary = chosen
        return self.targets[chosen]

    async def _post(self, target: Target, body: bytes, transactions: int) -> Answer:
        """POST one batch and say whether the validator took it (see ``Answer``)."""
        session = self._session
        if session is None:
            return Answer(False)
        timeout = aiohttp.ClientTimeout(total=CONNECT_TIMEOUT_S + response_timeout(transactions),
                                        sock_connect=CONNECT_TIMEOUT_S)
        target.in_flight += 1
        try:
            async with session.post(target.url + "/api/v1/txs", data=body, timeout=timeout,
                                    headers={"Content-Type": "application/octet-stream"}) as response:
                content = await response.read()
                status = response.status
                retry_after = _seconds(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self._avoid(target, AVOID_S * 2 ** min(target.strikes, 3))
            target.strikes += 1
            log.info("validator %s did not take %d forwarded transactions (%s); trying another",
                     target.url, transactions, type(exc).__name__ if not str(exc) else exc)
            return Answer(False)
        finally:
            target.in_flight -= 1
        if status == 200:
            target.strikes = 0
            return Answer(True, not_registered=_not_registered(content))
        if 400 <= status < 500 and status != 429:
            log.warning("validator %s refused %d forwarded transactions with HTTP %d; dropped",
                        target.url, transactions, status)
            return Answer(True)
        if status in (429, 503):
            self._avoid(target, min(retry_after or AVOID_S, MAX_AVOID_S))
        log.debug("validator %s answered %d to forwarded transactions", target.url, status)
        return Answer(False, retry_after)

    @staticmethod
    def _avoid(target: Target, seconds: float) -> None:
        target.avoid_until = max(target.avoid_until, time.monotonic() + min(seconds, MAX_AVOID_S))


def _not_registered(content: bytes) -> tuple[int, ...]:
    """Indexes the validator refused as ``not_registered`` in its ``{"accepted", "rejected"}`` answer."""
    if b"not_registered" not in content:
        return ()
    try:
        answer = json.loads(content)
        rejected = answer.get("rejected", []) if isinstance(answer, dict) else []
        return tuple(item["index"] for item in rejected
                     if isinstance(item, dict) and item.get("code") == "not_registered"
                     and isinstance(item.get("index"), int))
    except (ValueError, TypeError, AttributeError):
        return ()


def _seconds(value: str | None) -> float:
    return parse_seconds(value, default=0.0, maximum=3600.0)
