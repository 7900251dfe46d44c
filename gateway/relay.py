"""The cookie-less ballot relay: for deployments where citizens' browsers cannot reach a node directly.

``POST /relay/v1/txs`` takes what ``POST /api/v1/txs`` takes — a msgpack array of encoded
transactions — but only ballots of voter-held keys (``vote.cast`` with a token), and never a
request that carries the gateway's session cookie (400 ``cookie_not_allowed``: the relay must not be
able to tie a ballot to a login). Each ballot is held **in memory only** for a random delay,
uniform in ``[min_delay_seconds, max_delay_seconds]``; every ``tick_seconds`` the ballots that are
due go to a node together, shuffled, in one request. Nothing about a relayed ballot is written to
the gateway's store or logs. The answer (202) says how long at most until it is sent; the device
keeps the ballot and re-sends it (here or to a node) if it is not on the chain by then, so a
restart of the gateway loses no vote.

Why: the gateway knows when it issued each token (to whom, in its batch). If ballots reached the
chain in the order tokens were issued, a time-order attacker holding the gateway's records could
pair them. The delay mixes every ballot with the others relayed in the same window; see
docs/TRUST.md and ``scripts/unlinkability.py`` for the measured matching rate.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from dataclasses import dataclass

from chain.errors import DecodeError
from chain.tx import Tx, decode_tx
from gateway.config import RelayConfig
from gateway.errors import NodeAnswerError, NodeUnavailable
from gateway.nodes import NodePool

log = logging.getLogger("veche.gateway.relay")
MAX_RELAY_TXS = 64


class RelayRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(slots=True)
class Held:
    due: float
    raw: bytes


class Relay:
    def __init__(self, config: RelayConfig, pool: NodePool, chain_id: str) -> None:
        self.config = config
        self.pool = pool
        self.chain_id = chain_id
        self._held: list[Held] = []
        self._random = random.Random(secrets.randbits(128))
        self.stats = {"received": 0, "sent": 0, "send_failures": 0}

    def __len__(self) -> int:
        return len(self._held)

    def accept(self, raws: list[bytes]) -> list[Tx]:
        """Check and hold ``raws``; ``RelayRefused`` for anything but a batch of voter-held ballots."""
        if not 1 <= len(raws) <= MAX_RELAY_TXS:
            raise RelayRefused(400, "bad_batch", f"send 1..{MAX_RELAY_TXS} ballots")
        if len(self._held) + len(raws) > self.config.max_held:
            raise RelayRefused(503, "relay_full", "the relay holds as many ballots as it may; send to a node")
        txs: list[Tx] = []
        for raw in raws:
            try:
                tx = decode_tx(raw)
            except DecodeError as exc:
                raise RelayRefused(400, exc.code, exc.message) from None
            if tx.kind != "vote.cast" or not tx.body.token or tx.chain_id != self.chain_id:
                raise RelayRefused(400, "not_a_voter_held_ballot",
                                   "the relay takes only ballots of voter-held keys (vote.cast with a token) "
                                   "of this chain")
            txs.append(tx)
        now = time.monotonic()
        for tx in txs:
            delay = self._random.uniform(self.config.min_delay_seconds, self.config.max_delay_seconds)
            self._held.append(Held(now + delay, tx.raw))
        self.stats["received"] += len(txs)
        return txs

    def due(self, now: float) -> list[bytes]:
        ready = [held.raw for held in self._held if held.due <= now]
        if ready:
            self._held = [held for held in self._held if held.due > now]
            self._random.shuffle(ready)
        return ready

    async def run(self) -> None:
        """Every tick, send what is due (shuffled) in one request; on failure, hold it for the next tick."""
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            ready = self.due(time.monotonic())
            if not ready:
                continue
            try:
                await self.pool.submit(ready)
                self.stats["sent"] += len(ready)
            except (NodeUnavailable, NodeAnswerError) as exc:
                self.stats["send_failures"] += 1
                log.warning("relay: could not send %d ballots, keeping them for the next tick: %s", len(ready), exc)
                now = time.monotonic()
                self._held.extend(Held(now, raw) for raw in ready)
