"""Campaign results served by ``/tally``, with equal shares computed off the block-apply path.

Counting rules (top-n, greedy, greedy-no-skip) are decided inside the block that closes the
campaign and sit in state (``State.results``). The Method of Equal Shares needs every ballot, so
after a close commits this service reads the ballots in a worker thread and runs the rule in a
separate *process* (pure Python holds the GIL; a thread would slow block production) and then
publishes (winners, result hash). Until then the tally says ``result_status: "computing"``.
The computation is deterministic, so every node and ``veche verify`` reach the same hash. The
node keeps each result it computed in its store (``P/<campaign>`` → ``[winners, result_hash]``,
node-local: not state, not in the app hash), so a restart publishes it at once: a node holding ten
years of closed equal-shares campaigns does not read millions of ballots again each time it starts.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from chain.errors import StorageError
from chain.ledger import Ledger
from chain.records import STATUS_CLOSED, Campaign, Initiative, decode_result, encode_result
from chain.results import Ballots, Counts, compute_result, read_ballots

log = logging.getLogger("veche.node.results")

Result = tuple[tuple[str, ...], bytes]
COMPUTED_PREFIX = b"P/"


def computed_key(campaign_id: str) -> bytes:
    """Where a node keeps the equal-shares result it computed for a closed campaign."""
    return COMPUTED_PREFIX + campaign_id.encode()


def compute_equal_shares(campaign: Campaign, initiatives: Sequence[Initiative], counts: Counts,
                         ballots: Ballots) -> Result:
    """Pure: the equal-shares winners and result hash (runs in a worker process)."""
    return compute_result(campaign, initiatives, counts, ballots)


class Results:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.computed: dict[str, Result] = {}
        self.failed: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self._queue: list[str] = []
        self._wake = asyncio.Event()
        self._pool: ProcessPoolExecutor | None = None
        self._load()

    def _load(self) -> None:
        """The results this node computed before it (re)started."""
        state = self.ledger.state
        for key, value in self.ledger.store.iterate(COMPUTED_PREFIX):
            campaign_id = key[len(COMPUTED_PREFIX):].decode()
            campaign = state.campaigns.get(campaign_id)
            if campaign is None or campaign.status != STATUS_CLOSED or campaign.spec.rule.name != "equal-shares":
                continue
            try:
                self.computed[campaign_id] = decode_result(value)
            except StorageError:
                log.warning("the stored equal-shares result of campaign %s is corrupt; computing it again",
                            campaign_id)

    def result(self, campaign: Campaign) -> Result | None:
        """The published result of a closed campaign, or None (open, or equal shares still computing)."""
        if campaign.status != STATUS_CLOSED:
            return None
        if campaign.spec.rule.name == "equal-shares":
            return self.computed.get(campaign.campaign_id)
        return self.ledger.state.results.get(campaign.campaign_id)

    def reconcile(self) -> None:
        """Queue every closed equal-shares campaign that has no result yet (after commits, at start)."""
        for campaign_id, campaign in sorted(self.ledger.state.campaigns.items()):
            if (campaign.status == STATUS_CLOSED and campaign.spec.rule.name == "equal-shares"
                    and campaign_id not in self.computed and campaign_id not in self.failed
                    and campaign_id not in self._queue):
                self._queue.append(campaign_id)
                self._wake.set()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def run(self) -> None:
        self.reconcile()
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            campaign_id = self._queue[0]
            try:
                await self._compute(campaign_id)
            except Exception as exc:  # noqa: BLE001 - a failed computation must not stop the node
                log.exception("equal-shares result of campaign %s failed", campaign_id)
                self.failed[campaign_id] = f"{exc.__class__.__name__}: {exc}"
            finally:
                self._queue.pop(0)

    async def _compute(self, campaign_id: str) -> None:
        state = self.ledger.state
        campaign = state.campaigns[campaign_id]
        initiatives = state.campaign_initiatives(campaign_id)
        counts = Counts.of(state, campaign, initiatives)
        started = time.perf_counter()
        log.info("computing the equal-shares result of campaign %s (%d ballots) off the apply path",
                 campaign_id, campaign.total_ballots)
        ballots = await asyncio.to_thread(read_ballots, self.ledger.store, campaign)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._pool, compute_equal_shares, campaign, initiatives, counts, ballots)
        self.computed[campaign_id] = result
        self.ledger.store.write({computed_key(campaign_id): encode_result(*result)}, sync=True)
        self.seconds[campaign_id] = time.perf_counter() - started
        log.info("equal-shares result of campaign %s published: %d winners, hash %s (%.2f s)", campaign_id,
                 len(result[0]), result[1].hex()[:16], self.seconds[campaign_id])
