"""pabulib ``.pb`` files in and out of a Veche chain: the load generator and the export for recounts.

Import (``veche pabulib import FILE.pb --testnet DIR``) turns a real election into a new campaign:
META gives the budget (× 100: kopecks), ballot type and rule; PROJECTS become initiatives (id =
``project_id``, cost × 100), each in its district when the file has a PROJECTS ``district``
column (district ids are ASCII slugs plus a short hash of the real name, which is kept as the
district's name). The competition stays the file's: one campaign-scope budget over every project.
A file without that column is one district's election (or a city-wide one): one district named
after META ``district``/``unit``. VOTES ``district`` is voter data and is ignored.

``--with-votes`` casts every ballot through the real signing path: one fresh random voter key per
voter id, registrations in batches signed by the testnet's gateway key, ballots signed by their
voter keys (``chain.tx.make_vote``). Keys and ballots are made in a process pool, chunk by chunk,
while earlier chunks are already on their way; ballots go out in concurrent batches to every node
of DIR and are re-sent to another node when one fails (``node.client.TxPump``).

Export (``veche pabulib export``) reads a campaign's ballots from the chain through the public API
(``/api/v1/campaigns/{id}/ballots`` pages, with the spec and initiatives from
``/api/v1/campaigns/{id}``; against an older node without that route, by scanning
``/api/v1/blocks/raw`` from the campaign's creation) and writes them anonymised — voters numbered 1..N in the order of their
ballots' tx hashes — with the published winners as ``selected``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.block import Block
from chain.crypto import SigningKey, read_key_file
from chain.errors import DecodeError
from chain.pabulib import PbFile, read_pb, write_pb
from chain.tx import MAX_VOTER_KEYS_PER_REGISTRATION, CampaignClose, Tx, decode_tx, make_registration, make_vote, sign_tx
from genesis.model import Genesis
from genesis.testnet import load_testnet
from node.client import (
    CommitWatcher, NodeApiError, NodeClient, TxPump, fetch_genesis, submit_and_wait,
)
from node.pabulib.export import CampaignRecord, build_export, collect_tx, record_from_details
from node.pabulib.plan import ImportPlan, PabulibImportError, PlannedBallot, district_id_for, plan_import, slugify

# re-exported: the pure halves live in node/pabulib/ (plan: import, export: export)
__all__ = ["CampaignRecord", "ImportPlan", "Importer", "PabulibImportError", "build_export", "collect_tx",
           "district_id_for", "export_campaign", "make_voter_chunk", "plan_import", "read_ballots", "read_campaign",
           "record_from_details", "slugify", "write_export"]

log = logging.getLogger("veche.pabulib")

REGISTRATION_BATCH = MAX_VOTER_KEYS_PER_REGISTRATION
CLOSE_REASON = "pabulib import complete"


def new_campaign_id(file: Path) -> str:
    return f"{slugify(file.stem, 48) or 'pabulib'}-{secrets.token_hex(4)}"


# --- keys and ballots, made in worker processes ------------------------------------------------


def make_voter_chunk(chain_id: str, campaign_id: str,
                     ballots: Sequence[PlannedBallot]) -> tuple[list[bytes], list[tuple[str, bytes]]]:
    """Pool task: a fresh key per voter and that voter's signed ballot."""
    public_keys: list[bytes] = []
    votes: list[tuple[str, bytes]] = []
    for district_id, choices, points in ballots:
        key = SigningKey.generate()
        tx = make_vote(chain_id, key, campaign_id, district_id, choices, points)
        public_keys.append(key.public_key)
        votes.append((tx.hash.hex(), tx.raw))
    return public_keys, votes


def make_pool(workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["node.pabulib_io"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


# --- the import ----------------------------------------------------------------------------------


@dataclass
class ImportResult:
    campaign_id: str
    initiatives: int
    votes_submitted: int = 0
    votes_committed: int = 0
    seconds: float = 0.0
    vote_seconds: float = 0.0
    closed_height: int | None = None
    notes: list[str] = field(default_factory=list)
    failures: dict[str, tuple[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "initiatives": self.initiatives,
                "votes_submitted": self.votes_submitted, "votes_committed": self.votes_committed,
                "seconds": round(self.seconds, 3)}


Progress = Callable[[str], None]


class Importer:
    def __init__(self, directory: Path, file: Path, *, with_votes: bool, close: bool,
                 progress: Progress = lambda text: None, workers: int | None = None,
                 timeout: float | None = None) -> None:
        self.layout = load_testnet(directory)
        self.file = file
        self.with_votes = with_votes
        self.close = close
        self.progress = progress
        self.workers = workers if workers is not None else max(1, os.cpu_count() or 1)
        self.timeout = timeout
        self.committee = [read_key_file(path) for path in self.layout.committee_key_files]
        self.gateway = read_key_file(self.layout.gateway.key_file)
        self.urls = [node.api_url for node in self.layout.nodes]

    async def run(self) -> ImportResult:
        started = time.monotonic()
        pb = read_pb(self.file)
        async with NodeClient(self.urls, timeout=30.0) as client:
            genesis = await self._check_chain(client)
            campaign_id = new_campaign_id(self.file)
            plan = plan_import(pb, campaign_id=campaign_id, gateway=self.gateway.public_key,
                               now_ms=int(time.time() * 1000))
            result = ImportResult(campaign_id, len(plan.initiatives), notes=list(plan.notes))
            for note in plan.notes:
                self.progress(f"note: {note}")
            status = await client.status()
            watcher = CommitWatcher(client, int(status.get("height", 0)))
            watcher.start()
            try:
                await self._setup(client, watcher, genesis, plan)
                if self.with_votes:
                    await self._cast(client, watcher, genesis, plan, result)
                if self.close:
                    result.closed_height = await self._close(client, genesis, campaign_id)
            finally:
                await watcher.stop()
        result.seconds = time.monotonic() - started
        return result

    def committee_keys(self, genesis: Genesis) -> list[SigningKey]:
        params = genesis.params
        keys = [k for k in self.committee if k.public_key in params.committee_keys][: params.committee_threshold]
        if len(keys) < params.committee_threshold:
            raise PabulibImportError(f"{self.layout.directory}/keys holds {len(keys)} committee keys of this chain; "
                                     f"{params.committee_threshold} are needed")
        return keys

    async def _check_chain(self, client: NodeClient) -> Genesis:
        genesis = await fetch_genesis(client)
        if genesis.hash != self.layout.genesis_hash:
            raise PabulibImportError(f"the nodes of {self.layout.directory} run another genesis than its genesis.json")
        if not genesis.params.is_gateway(self.gateway.public_key):
            raise PabulibImportError(f"{self.layout.gateway.key_file} is not a gateway key of this chain")
        self.committee_keys(genesis)
        return genesis

    async def _setup(self, client: NodeClient, watcher: CommitWatcher, genesis: Genesis, plan: ImportPlan) -> None:
        keys = self.committee_keys(genesis)
        create = sign_tx("campaign.create", genesis.chain_id, plan.campaign, keys)
        submits = [sign_tx("initiative.submit", genesis.chain_id, body, keys) for body in plan.initiatives]
        deadline_ms = plan.campaign.voting_start
        await self._submit_committed(client, watcher, [create], "campaign.create", deadline_ms)
        await self._submit_committed(client, watcher, submits, "initiative.submit", deadline_ms)
        self.progress(f"campaign {plan.campaign.campaign_id}: created with {len(submits)} initiatives")

    async def _submit_committed(self, client: NodeClient, watcher: CommitWatcher, txs: Sequence[Tx], what: str,
                                deadline_ms: int) -> None:
        for start in range(0, len(txs), 1000):
            part = txs[start:start + 1000]
            result = await client.submit([tx.raw for tx in part])
            for rejection in result.rejected:
                if rejection.code not in ("already_pending", "already_committed"):
                    raise PabulibImportError(f"{what} rejected: {rejection.code}: {rejection.message}")
        seconds_left = max(1.0, (deadline_ms - time.time() * 1000) / 1000)
        try:
            await watcher.wait_all([tx.hash.hex() for tx in txs], timeout=seconds_left)
        except TimeoutError:
            raise PabulibImportError(f"{what} did not commit before voting opens; is the network running "
                                     "and making blocks?") from None

    async def _cast(self, client: NodeClient, watcher: CommitWatcher, genesis: Genesis, plan: ImportPlan,
                    result: ImportResult) -> None:
        total = len(plan.ballots)
        campaign_id = plan.campaign.campaign_id
        chunks = [plan.ballots[i:i + REGISTRATION_BATCH] for i in range(0, total, REGISTRATION_BATCH)]
        timeout = self.timeout if self.timeout is not None else 120.0 + total * 0.02
        pool = make_pool(self.workers) if chunks else None
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(pool, make_voter_chunk, genesis.chain_id, campaign_id, chunk)
                   for chunk in chunks]
        await self._wait_until_voting(plan.campaign.voting_start)
        pump = TxPump(client, watcher)
        pump.start()
        started = time.monotonic()
        vote_hashes: list[str] = []
        reporter = asyncio.create_task(self._report(pump, vote_hashes, total, started))
        try:
            async with asyncio.timeout(timeout):
                releases = []
                for future in futures:
                    public_keys, votes = await future
                    registration = make_registration(genesis.chain_id, self.gateway, campaign_id, public_keys)
                    pump.send([(registration.hash.hex(), registration.raw)])
                    vote_hashes.extend(h for h, _ in votes)
                    releases.append(asyncio.create_task(
                        self._release(pump, registration.hash.hex(), votes, plan.campaign.voting_start)))
                await asyncio.gather(*releases)
                await pump.drain(vote_hashes, timeout=timeout)
        except TimeoutError:
            raise PabulibImportError(f"only {pump.committed} of {pump.stats.submitted} transactions committed "
                                     f"within {timeout:.0f} s") from None
        finally:
            reporter.cancel()
            await pump.stop()
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        result.vote_seconds = time.monotonic() - started
        result.votes_submitted = len(vote_hashes)
        result.votes_committed = sum(1 for h in vote_hashes if h in watcher.committed)
        result.failures = dict(pump.stats.failed)
        if result.failures:
            code, message = next(iter(result.failures.values()))
            raise PabulibImportError(f"{len(result.failures)} transactions were not committed; first: {code}: {message}")

    async def _release(self, pump: TxPump, registration_hash: str, votes: list[tuple[str, bytes]],
                       voting_start: int) -> None:
        """Ballots go out once their voters' registration is committed in a block timed inside the
        voting window (status ``last_block_time_ms`` as the blocks report it)."""
        while not pump.done([registration_hash]) or pump.watcher.last_block_time_ms < voting_start:
            await pump.watcher.changed(1.0)
        if registration_hash in pump.stats.failed:
            code, message = pump.stats.failed[registration_hash]
            raise PabulibImportError(f"voter registration rejected: {code}: {message}")
        pump.send(votes)

    async def _wait_until_voting(self, voting_start: int) -> None:
        delay = voting_start / 1000 - time.time()
        if delay > 0:
            self.progress(f"voting opens in {delay:.1f} s")
            await asyncio.sleep(delay + 0.05)

    async def _report(self, pump: TxPump, vote_hashes: list[str], total: int, started: float) -> None:
        while True:
            await asyncio.sleep(5.0)
            done = sum(1 for h in vote_hashes if h in pump.watcher.committed)
            elapsed = time.monotonic() - started
            self.progress(f"ballots committed {done}/{total} ({done / elapsed:,.0f}/s), resent {pump.stats.resent}")

    async def _close(self, client: NodeClient, genesis: Genesis, campaign_id: str) -> int | None:
        tx = sign_tx("campaign.close", genesis.chain_id, CampaignClose(campaign_id, CLOSE_REASON),
                     self.committee_keys(genesis))
        outcome = await submit_and_wait(client, tx.raw, tx.hash.hex(), timeout=120.0)
        if outcome.status != "committed":
            raise PabulibImportError(f"campaign.close {outcome.status}: {outcome.code}: {outcome.message}")
        self.progress(f"campaign {campaign_id}: closed at height {outcome.height}")
        return outcome.height


# --- export ----------------------------------------------------------------------------------------


async def read_campaign(client: NodeClient, genesis: Genesis, campaign_id: str, end: int,
                        start: int = 1) -> CampaignRecord:
    """Scan blocks start..end for the campaign's transactions (and genesis data for its start)."""
    record = CampaignRecord(genesis.params.committee_keys)
    for kind, body in genesis.params.initial_bodies:
        if getattr(body, "campaign_id", None) == campaign_id:
            if kind == "campaign.create":
                record.spec = body
            elif kind == "initiative.submit":
                record.initiatives[body.initiative_id] = body
                record.approved.add(body.initiative_id)
    height = start
    while height <= end:
        values = await client.raw_blocks(height, min(end, height + 499))
        if not values:
            raise PabulibImportError(f"the node returned no block {height}")
        for value in values:
            try:
                block = Block.from_wire(value[0])
                for raw in block.txs:
                    collect_tx(record, campaign_id, decode_tx(raw))
            except DecodeError as exc:
                raise PabulibImportError(f"block {height} is malformed: {exc.message}") from exc
            height += 1
    return record


async def read_ballots(client: NodeClient, details: dict[str, Any], committee: frozenset[bytes], campaign_id: str,
                       end: int, node: str) -> CampaignRecord | None:
    """The campaign (from its details) with its ballots up to height ``end``, from ``/ballots`` pages of ``node``.

    None when the node has no such route (an older node: the caller scans raw blocks instead).
    """
    record: CampaignRecord | None = None
    cursor: str | None = None
    while True:
        try:
            page = await client.ballots(campaign_id, after=cursor, only=node)
        except NodeApiError as exc:
            if exc.status == 404 and cursor is None:  # the campaign exists (its tally answered): no such route
                return None
            raise
        if record is None:
            record = record_from_details(details, committee)
        ballots = page.get("ballots")
        if not isinstance(ballots, list):
            raise PabulibImportError("the node's ballots page lacks its ballots")
        for ballot in ballots:
            try:
                height, tx_hash, choices = ballot["height"], bytes.fromhex(ballot["tx_hash"]), ballot["choices"]
                points = ballot.get("points", [])
            except (TypeError, KeyError, ValueError, AttributeError):
                raise PabulibImportError(f"the node sent a malformed ballot: {str(ballot)[:200]}") from None
            if not isinstance(height, int) or not isinstance(choices, list) or not isinstance(points, list) or \
                    not all(isinstance(p, int) and not isinstance(p, bool) for p in points) or \
                    (points and len(points) != len(choices)):
                raise PabulibImportError(f"the node sent a malformed ballot: {str(ballot)[:200]}")
            if height > end:  # committed after the tally this export matches
                return record
            record.ballots[tx_hash] = (tuple(str(choice) for choice in choices), tuple(points))
        cursor = page.get("next")
        if cursor is None:  # (a node that fell behind shows as ballots that miss the tally: build_export)
            return record
        if not isinstance(cursor, str):
            raise PabulibImportError("the node's ballots page has a malformed next cursor")


async def export_campaign(urls: Sequence[str], campaign_id: str) -> tuple[PbFile, dict[str, Any]]:
    async with NodeClient(urls, timeout=60.0) as client:
        genesis = await fetch_genesis(client)
        try:
            tally = await client.tally(campaign_id)
        except NodeApiError as exc:
            if exc.status == 404:
                raise PabulibImportError(f"the node knows no campaign {campaign_id!r}") from None
            raise
        node = client.current_url  # the tally's node: its pages end where its tally was counted
        start = 1
        details: dict[str, Any] | None = None
        try:
            details = await client.campaign(campaign_id)
            created = details.get("created_height")
            if isinstance(created, int) and created >= 1:
                start = created
        except NodeApiError:
            pass
        end = int(tally.get("height", 0))
        record = None
        if details is not None:
            record = await read_ballots(client, details, genesis.params.committee_keys, campaign_id, end, node)
        if record is None:
            log.info("no ballots route on %s: scanning raw blocks %d..%d", node, start, end)
            record = await read_campaign(client, genesis, campaign_id, end, start)
    return build_export(record, tally, genesis.chain_id), tally


def write_export(pb: PbFile, out: Path) -> None:
    text = write_pb(pb)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)

