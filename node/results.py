"""Campaign results served by ``/tally``, with equal shares computed off the block-apply path.

Counting rules (top-n, greedy, greedy-no-skip) are decided inside the block that closes the
campaign and sit in state (``State.results``). The Method of Equal Shares needs every ballot, so
after a close commits this service runs the rule in a separate *process* (pure Python holds the
GIL; a thread would slow block production) and then publishes (winners, result hash). Until then
the tally says ``result_status: "computing"``. The computation is deterministic, so every node and
``veche verify`` reach the same hash. The node keeps each result it computed in its store
(``P/<campaign>`` → ``[winners, result_hash]``, node-local: not state, not in the app hash), so a
restart publishes it at once: a node holding ten years of closed equal-shares campaigns does not
read millions of ballots again each time it starts.

The node holds none of a campaign's ballots: a thread reads the stored values and streams them,
as they come, in length-prefixed chunks of at most ``CHUNK_BYTES`` (chain/ballot_groups.py) over a
pipe to a worker process started for this one computation; the pipe's buffer is the only backlog,
so the node's memory does not grow with the campaign. The worker merges the ballots by content as
they arrive (its memory follows the distinct ballots), counts, sends (winners, hash) back and
exits, giving its memory back.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from chain.ballot_groups import CHUNK_BYTES, BallotGroups, frames
from chain.errors import StorageError
from chain.ledger import Ledger
from chain.records import STATUS_CLOSED, Campaign, Initiative, ballot_prefix, decode_result, encode_result
from chain.results import Counts, compute_result

log = logging.getLogger("veche.node.results")

Result = tuple[tuple[str, ...], bytes]
COMPUTED_PREFIX = b"P/"
END_OF_BALLOTS = b""


def computed_key(campaign_id: str) -> bytes:
    """Where a node keeps the equal-shares result it computed for a closed campaign."""
    return COMPUTED_PREFIX + campaign_id.encode()


class WorkerFailed(RuntimeError):
    """The worker reported an error, or stopped without a result."""


class Stopped(RuntimeError):
    """The node closed while a computation was streaming."""


@dataclass(frozen=True, slots=True)
class Computed:
    result: Result
    voters: int      # ballots the worker received
    distinct: int    # of which distinct contents


def count_in_worker(connection: Connection, campaign: Campaign, initiatives: Sequence[Initiative],
                    counts: Counts) -> None:
    """The worker process: receive the campaign's stored ballots chunk by chunk until an empty
    message, merge them, count, and send back ``("ok", Computed)`` or ``("error", text)``."""
    try:
        groups = BallotGroups(campaign.spec.ballot.scored)
        while chunk := connection.recv_bytes():
            groups.add_frames(chunk)
        result = compute_result(campaign, initiatives, counts, groups.ballots())
        connection.send(("ok", Computed(result, groups.voters, groups.distinct)))
    except (EOFError, OSError):
        return  # the node went away: nobody to answer
    except Exception as exc:  # noqa: BLE001 - reported to the node, which records it
        try:
            connection.send(("error", f"{exc.__class__.__name__}: {exc}"))
        except OSError:
            return
    finally:
        connection.close()


class Results:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.computed: dict[str, Result] = {}
        self.failed: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self._queue: list[str] = []
        self._wake = asyncio.Event()
        self.chunk_bytes = CHUNK_BYTES
        self.largest_chunk = 0           # bytes of the largest chunk sent to a worker (tests, metrics)
        self._worker: BaseProcess | None = None
        self._stop = threading.Event()
        self._idle = threading.Event()   # no computation is reading the store
        self._idle.set()
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
        """Stop a running computation: its worker is killed and its reading thread leaves the store
        (waited for, up to 10 s, so the node can close its store after this)."""
        self._stop.set()
        worker = self._worker
        if worker is not None and worker.is_alive():
            worker.kill()
        self._idle.wait(timeout=10)

    async def run(self) -> None:
        self.reconcile()
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            campaign_id = self._queue[0]
            try:
                await self._compute(campaign_id)
            except Stopped:
                pass  # the node is closing; the next start computes it
            except WorkerFailed as exc:
                log.error("equal-shares result of campaign %s failed: %s", campaign_id, exc)
                self.failed[campaign_id] = str(exc)
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
        computed = await asyncio.to_thread(self._stream_to_worker, campaign, initiatives, counts)
        result = computed.result
        self.computed[campaign_id] = result
        self.ledger.store.write({computed_key(campaign_id): encode_result(*result)}, sync=True)
        self.seconds[campaign_id] = time.perf_counter() - started
        log.info("equal-shares result of campaign %s published: %d winners, hash %s (%.2f s; %d ballots, %d distinct)",
                 campaign_id, len(result[0]), result[1].hex()[:16], self.seconds[campaign_id], computed.voters,
                 computed.distinct)

    def _stream_to_worker(self, campaign: Campaign, initiatives: Sequence[Initiative], counts: Counts) -> Computed:
        """In a thread: start a worker, stream it the campaign's stored ballots, wait for its result."""
        if self._stop.is_set():
            raise Stopped("the node is closing")
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=True)
        worker = context.Process(target=count_in_worker, args=(theirs, campaign, initiatives, counts),
                                 name=f"equal-shares {campaign.campaign_id}", daemon=True)
        self._idle.clear()
        try:
            worker.start()
            theirs.close()
            self._worker = worker
            try:
                prefix = ballot_prefix(campaign.campaign_id)
                values = (value for _, value in self.ledger.store.iterate(prefix, bulk=True))
                for chunk in frames(values, self.chunk_bytes):
                    if self._stop.is_set():
                        raise Stopped("the node is closing")
                    ours.send_bytes(chunk)
                    self.largest_chunk = max(self.largest_chunk, len(chunk))
                ours.send_bytes(END_OF_BALLOTS)
            except OSError:
                pass  # the worker stopped reading: its answer (if it sent one) says why
            try:
                status, payload = ours.recv()
            except (EOFError, OSError) as exc:
                worker.join(timeout=10)
                if self._stop.is_set():
                    raise Stopped("the node is closing") from exc
                raise WorkerFailed(f"the equal-shares worker stopped without a result "
                                   f"(exit code {worker.exitcode})") from exc
            if status != "ok" or not isinstance(payload, Computed):
                raise WorkerFailed(str(payload))
            return payload
        finally:
            ours.close()
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
            self._worker = None
            self._idle.set()
