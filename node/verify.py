"""``veche verify``: an observer's independent full replay of a chain from its genesis file.

Nothing the node says is trusted except the genesis file (whose hash is checked against the
node's status, or pinned by the observer). For every block, in order:
  * decode it strictly; its height, chain id, previous-block hash, proposer, time, tx Merkle root
    and last-commit hash must fit (``Ledger.check_block``);
  * its commit certificate must carry precommit signatures of ⌊2n/3⌋+1 distinct validators of the
    set in force at that height — genesis's, or the one the replayed ``validators.update``
    transactions put in force (docs/PROTOCOL.md §15) — for exactly this block (``verify_certificate``);
  * every transaction's signatures are checked (spread over all cores, see below) and every
    transaction must apply under the state machine's rules (permissions, windows, double votes);
  * the app hash in the header must equal the hash of the replayed state changes.
Then the tally and winners of every campaign are recomputed (equal shares from the replayed
ballots) and compared with what the network publishes.

Speed: signature checks dominate. A process pool checks the transactions of a chunk of blocks
(decode + Ed25519 verify of every signature) ahead of the replay; the replay then runs
``check_block`` with ``checked=`` the set of hashes whose signatures verified, so each signature is
checked exactly once. A transaction the pool could not verify is re-checked by the replay itself,
which then rejects the block and names its height.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.block import Block, CommitCertificate, verify_certificate
from chain.errors import DecodeError, StorageError, VecheError
from chain.ledger import GENESIS_KEY, Ledger, block_key, cert_key
from chain.records import STATUS_CLOSED, Campaign, decode_result, read_u64, result_key

CAMPAIGN_PREFIX = b"S/c/"
from chain.results import compute_equal_shares_result, tally_document
from chain.state import APP_HASH_KEY, HEIGHT_KEY
from chain.storage import KeyValueStore, LevelStore
from chain.tx import decode_tx
from genesis.config import load_node_config
from genesis.model import Genesis, load_genesis, parse_genesis
from node.client import NodeApiError, NodeClient, NodeProtocolError
from node.replay.store import ReplayStore, open_checkpoint
from node.results import computed_key

VOTE_PREFIX = b"\x94\xa9vote.cast"   # an encoded envelope [kind, ...] whose kind is "vote.cast"
CHUNK_TXS = 2048                     # transactions per pool task
CHUNK_BLOCKS = 256
POOL_MIN_TXS = 512                   # below this many txs in a chunk, verify in-process
STATE_PREFIX = b"S/"
RANGE_BLOCKS = 500                   # the API's limit for one /blocks/raw request
RESULT_PREFIX = b"S/r/"


class VerifyError(VecheError):
    """The verifier could not run (bad home, unreadable source); not a verdict on the chain."""

    code = "verify_error"


# --- sources of blocks ---------------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    """One height as a source delivered it: the decoded block and certificate, or what is wrong."""

    height: int
    block: Block | None
    certificate: CommitCertificate | None
    problem: str | None = None


def decode_entry(height: int, raw_block: bytes | None, raw_certificate: bytes | None) -> Entry:
    if raw_block is None:
        return Entry(height, None, None, f"block {height} is missing")
    if raw_certificate is None:
        return Entry(height, None, None, f"the commit certificate of block {height} is missing")
    try:
        return Entry(height, Block.decode(raw_block), CommitCertificate.decode(raw_certificate))
    except DecodeError as exc:
        return Entry(height, None, None, f"block {height} is malformed: {exc.message}")


def entry_from_wire(height: int, value: Any) -> Entry:
    try:
        if not isinstance(value, list) or len(value) != 2:
            raise DecodeError("expected [block, certificate]")
        return Entry(height, Block.from_wire(value[0]), CommitCertificate.from_wire(value[1]))
    except DecodeError as exc:
        return Entry(height, None, None, f"block {height} is malformed: {exc.message}")


def iter_store_entries(store: KeyValueStore, start: int, end: int) -> Iterator[Entry]:
    """Blocks ``start..end`` of a node's own store (``--home``)."""
    for height in range(start, end + 1):
        yield decode_entry(height, store.get(block_key(height)), store.get(cert_key(height)))


def chunk_entries(entries: Iterable[Entry]) -> Iterator[list[Entry]]:
    chunk: list[Entry] = []
    size = 0
    for entry in entries:
        chunk.append(entry)
        size += len(entry.block.txs) if entry.block is not None else 0
        if size >= CHUNK_TXS or len(chunk) >= CHUNK_BLOCKS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


class Prefetcher:
    """Runs a producer in a thread and hands its items over through a bounded queue."""

    _END = object()

    def __init__(self, produce: Callable[[Callable[[Any], None]], None], depth: int = 8) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(produce,), daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stopped()

    def _run(self, produce: Callable[[Callable[[Any], None]], None]) -> None:
        try:
            produce(self._put)
            self._put(self._END)
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the consumer, who raises it
            try:
                self._put(_Failure(exc))
            except _Stopped:
                pass

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class _Stopped(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException


# --- signature checks in a process pool ----------------------------------------------------------


def verify_tx_batch(raws: list[bytes], certification_keys: Mapping[str, bytes] | None = None) -> tuple[bytes, float]:
    """Pool task: concatenated hashes of the transactions whose every signature — and token, for a
    ballot of a voter-held key whose campaign is in ``certification_keys`` — verifies, and the CPU
    seconds the check took (for the CPU-per-vote figure). A token of a campaign created later in the
    chunk is left to the replay."""
    started = time.process_time()
    keys = certification_keys or {}
    verified: list[bytes] = []
    for raw in raws:
        try:
            tx = decode_tx(raw)
            if not tx.verify_credentials(keys.get):
                continue
        except VecheError:
            continue
        verified.append(tx.hash)
    return b"".join(verified), time.process_time() - started


def split_hashes(blob: bytes) -> set[bytes]:
    return {blob[i:i + 32] for i in range(0, len(blob), 32)}


def make_pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: the parent may run threads (prefetching, tests' servers) that fork would copy badly.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["node.verify"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


# --- the replay ----------------------------------------------------------------------------------


@dataclass
class CampaignCheck:
    status: str
    total_ballots: int
    winners: list[str]
    result_hash: str
    result_status: str
    published_result_hash: str | None = None
    matches: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "total_ballots": self.total_ballots, "winners": self.winners,
                "result_hash": self.result_hash, "published_result_hash": self.published_result_hash,
                "matches": self.matches}


@dataclass
class VerifyReport:
    chain_id: str
    genesis_hash: str
    height: int = 0
    blocks: int = 0
    txs: int = 0
    votes: int = 0
    first_bad_height: int | None = None
    error: str | None = None
    campaigns: dict[str, CampaignCheck] = field(default_factory=dict)
    seconds: float = 0.0
    resumed_from: int = 0             # the checkpoint's height this run continued from (0: from genesis)
    pool_cpu_seconds: float = 0.0     # CPU time of the signature-checking processes (not in the JSON)

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.matches is not False for c in self.campaigns.values())

    @property
    def votes_per_second(self) -> float:
        return self.votes / self.seconds if self.seconds > 0 else 0.0

    def fail(self, message: str, height: int | None) -> None:
        if self.error is None:
            self.error = message
            self.first_bad_height = height

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "chain_id": self.chain_id, "height": self.height,
            "blocks": self.blocks, "txs": self.txs, "votes": self.votes, "first_bad_height": self.first_bad_height,
            "error": self.error, "campaigns": {cid: c.to_json() for cid, c in sorted(self.campaigns.items())},
            "seconds": round(self.seconds, 3), "votes_per_second": round(self.votes_per_second, 1),
            "resumed_from": self.resumed_from,
        }


class Replayer:
    """Replays blocks onto a ledger of its own, on disk, checking everything.

    The replay's state lives in a LevelDB (node/replay/store.py), so memory stays bounded whatever
    the chain's length: in a temporary directory under ``scratch_dir`` (default: the system's
    temporary directory) removed at the end, or — with ``checkpoint`` — in that directory, kept: a
    later run continues from the height it reached (``report.resumed_from``).
    """

    def __init__(self, genesis: Genesis, *, workers: int | None = None, scratch_dir: Path | None = None,
                 checkpoint: Path | None = None) -> None:
        self.genesis = genesis
        self.report = VerifyReport(genesis.chain_id, genesis.hash.hex())
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if checkpoint is not None:
            try:
                self.store, _ = open_checkpoint(checkpoint, genesis.hash)
            except ValueError as exc:
                raise VerifyError(str(exc)) from exc
        else:
            self._scratch = tempfile.TemporaryDirectory(prefix="veche-verify-", dir=scratch_dir)
            self.store = ReplayStore(Path(self._scratch.name) / "replay")
        try:
            self.ledger = Ledger(self.store, genesis.params)
        except StorageError as exc:
            self.store.close()
            raise VerifyError(f"the checkpoint cannot be used: {exc.message}") from exc
        self.report.resumed_from = self.report.height = self.ledger.height
        self.workers = max(1, os.cpu_count() or 1) if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self._last_certificate: CommitCertificate | None = None
        # called after each replayed chunk with (ballots replayed, checkpoint included; height)
        self.on_progress: Callable[[int, int], None] | None = None

    def votes_replayed(self) -> int:
        """Ballots in the replayed state: this run's and those of the checkpoint it continued."""
        return sum(campaign.total_ballots for campaign in self.ledger.state.campaigns.values())

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self.store.close()
        if self._scratch is not None:
            self._scratch.cleanup()

    def __enter__(self) -> "Replayer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def failed(self) -> bool:
        return self.report.error is not None

    def _submit(self, raws: list[bytes]) -> Future[tuple[bytes, float]] | None:
        if self.workers <= 0 or len(raws) < POOL_MIN_TXS:
            return None
        if self._pool is None:
            self._pool = make_pool(self.workers)
        return self._pool.submit(verify_tx_batch, raws, self.certification_keys())

    def certification_keys(self) -> dict[str, bytes]:
        """Certification keys of the campaigns replayed so far (a campaign never changes its key)."""
        return {campaign_id: campaign.spec.certification_key
                for campaign_id, campaign in self.ledger.state.campaigns.items() if campaign.spec.voter_held}

    def replay(self, chunks: Iterable[list[Entry]]) -> None:
        """Replay chunks in order, verifying signatures of later chunks while earlier ones apply."""
        in_flight: deque[tuple[list[Entry], Future[tuple[bytes, float]] | None, list[bytes]]] = deque()
        depth = self.workers + 1
        for chunk in chunks:
            raws = [raw for entry in chunk if entry.block is not None for raw in entry.block.txs]
            in_flight.append((chunk, self._submit(raws), raws))
            while len(in_flight) > depth and not self.failed:
                self._replay_chunk(*in_flight.popleft())
            if self.failed:
                break
        while in_flight and not self.failed:
            self._replay_chunk(*in_flight.popleft())
        for _, future, _ in in_flight:
            if future is not None:
                future.cancel()

    def _replay_chunk(self, chunk: list[Entry], future: Future[tuple[bytes, float]] | None, raws: list[bytes]) -> None:
        if future is not None:
            blob, cpu = future.result()
            self.report.pool_cpu_seconds += cpu
        else:
            blob, _ = verify_tx_batch(raws, self.certification_keys())
        verified = split_hashes(blob)
        for entry in chunk:
            if not self.apply(entry, verified.__contains__):
                return
        if self.on_progress is not None:
            self.on_progress(self.votes_replayed(), self.ledger.height)

    def apply(self, entry: Entry, checked: Callable[[bytes], bool]) -> bool:
        """Check and commit one block; on any fault record it (with the height) and return False."""
        expected = self.ledger.height + 1
        if entry.height != expected:
            self.report.fail(f"the source skipped from height {self.ledger.height} to {entry.height}", expected)
            return False
        if entry.problem is not None or entry.block is None or entry.certificate is None:
            self.report.fail(entry.problem or f"block {expected} is missing", expected)
            return False
        block, certificate = entry.block, entry.certificate
        try:
            if block.header.height != expected:
                raise VerifyError(f"the block delivered for height {expected} says it is block {block.header.height}")
            # the set in force at this height: genesis's, or what the replayed set changes made it
            verify_certificate(certificate, self.ledger.validators_at(expected), self.genesis.chain_id,
                               height=expected, block_hash=block.hash())
            # The embedded last commit needs its own check only if it is not the certificate we checked.
            fresh_last_commit = block.last_commit is not None and block.last_commit != self._last_certificate
            execution = self.ledger.check_block(block, checked=checked, verify_last_commit=fresh_last_commit)
            self.ledger.commit(block, certificate, execution, certificate_checked=True)
        except VecheError as exc:
            self.report.fail(exc.message, expected)
            return False
        self._last_certificate = certificate
        self.report.height = expected
        self.report.blocks += 1
        self.report.txs += len(block.txs)
        self.report.votes += sum(1 for raw in block.txs if raw.startswith(VOTE_PREFIX))
        return True

    # --- results -------------------------------------------------------------------------------

    def campaign_results(self) -> dict[str, CampaignCheck]:
        """Tally and winners of every campaign in the replayed state."""
        state = self.ledger.state
        checks: dict[str, CampaignCheck] = {}
        for campaign_id in sorted(state.campaigns, key=str.encode):
            campaign = state.campaigns[campaign_id]
            result = self.compute_result(campaign)
            document = tally_document(state, campaign, self.ledger.height, result)
            checks[campaign_id] = CampaignCheck(document["status"], document["total_ballots"],
                                                list(document["winners"]), document["result_hash"],
                                                document.get("result_status", ""))
        return checks

    def compute_result(self, campaign: Campaign) -> tuple[tuple[str, ...], bytes] | None:
        if campaign.status != STATUS_CLOSED:
            return None
        stored = self.ledger.state.results.get(campaign.campaign_id)
        if stored is not None:
            return stored
        return compute_equal_shares_result(self.ledger.state, self.store, campaign)


# --- comparing with what the network publishes ---------------------------------------------------


def compare_published(checks: Mapping[str, CampaignCheck], published: Mapping[str, str | None],
                      report: VerifyReport) -> None:
    """Fill ``published_result_hash``/``matches``; a mismatch fails the report."""
    for campaign_id, check in checks.items():
        value = published.get(campaign_id)
        check.published_result_hash = value
        check.matches = None if value is None else value == check.result_hash
        if check.matches is False:
            report.fail(f"campaign {campaign_id}: the published result hash {value} differs from the "
                        f"replayed {check.result_hash}", None)
    report.campaigns = dict(checks)


def compare_home_state(node_store: KeyValueStore, replay_store: KeyValueStore, report: VerifyReport) -> None:
    """The node's stored state must equal the replayed state, key by key (results aside)."""
    node_items = ((k, v) for k, v in node_store.iterate(STATE_PREFIX) if not k.startswith(RESULT_PREFIX))
    replay_items = ((k, v) for k, v in replay_store.iterate(STATE_PREFIX) if not k.startswith(RESULT_PREFIX))
    sentinel = (b"\xff" * 8, b"")
    node_item, replay_item = next(node_items, sentinel), next(replay_items, sentinel)
    while node_item is not sentinel or replay_item is not sentinel:
        if node_item != replay_item:
            key = min(node_item[0], replay_item[0])
            report.fail(f"the node's stored state differs from the replay at key {describe_key(key)}", None)
            return
        node_item, replay_item = next(node_items, sentinel), next(replay_items, sentinel)


def describe_key(key: bytes) -> str:
    printable = key[:4].decode("ascii", errors="replace")
    rest = key[4:]
    try:
        return printable + rest.decode("ascii")
    except UnicodeDecodeError:
        return printable + rest.hex()


def stored_results(node_store: KeyValueStore, campaigns: Iterable[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for campaign_id in campaigns:
        # counting rules: the closing block's result in state; equal shares: what the node computed
        raw = node_store.get(result_key(campaign_id)) or node_store.get(computed_key(campaign_id))
        try:
            out[campaign_id] = None if raw is None else decode_result(raw)[1].hex()
        except StorageError:
            out[campaign_id] = "corrupt"
    return out


def stored_height(store: KeyValueStore) -> int:
    raw = store.get(HEIGHT_KEY)
    return 0 if raw is None else read_u64(raw)


def stored_app_hash(store: KeyValueStore) -> bytes | None:
    return store.get(APP_HASH_KEY)


# --- drivers -------------------------------------------------------------------------------------


def home_paths(home: Path) -> tuple[Path, Path]:
    """(genesis file, data directory) of a node home, from its config.json when it has one."""
    if not home.is_dir():
        raise VerifyError(f"--home {home} is not a directory")
    if (home / "config.json").is_file():
        config = load_node_config(home)
        return config.genesis_file, config.data_dir
    return home / "genesis.json", home / "data"


def open_node_store(data_dir: Path) -> LevelStore:
    if not (data_dir / "CURRENT").is_file():
        raise VerifyError(f"{data_dir} holds no LevelDB database (has the node ever run?)")
    try:
        return LevelStore(data_dir, create=False)
    except StorageError as exc:
        if "lock" in exc.message.lower():
            raise VerifyError(f"{data_dir} is in use (LevelDB allows one process): stop the node first, or copy "
                              f"its home with the data directory (cp -a) while it is stopped and verify the copy") from exc
        raise VerifyError(exc.message) from exc


Progress = Callable[[int, int, int], None]
"""``progress(ballots replayed, ballots on the chain, height)``: after each replayed chunk."""


def stored_ballot_total(store: KeyValueStore) -> int:
    """Ballots a node's store counts (its campaign records): the total a progress bar runs to."""
    total = 0
    for _, value in store.iterate(CAMPAIGN_PREFIX):
        try:
            total += Campaign.decode(value).total_ballots
        except StorageError:
            continue
    return total


def start_height(replayer: Replayer, top: int) -> int:
    """Where this run begins: after the checkpoint's height, which must not be above the source's."""
    if replayer.ledger.height > top:
        raise VerifyError(f"the checkpoint is at height {replayer.ledger.height}, above the {top} blocks this "
                          "source holds: it was made from a longer chain; use a new checkpoint directory")
    return replayer.ledger.height + 1


def verify_home(home: Path, *, workers: int | None = None, scratch_dir: Path | None = None,
                checkpoint: Path | None = None, progress: Progress | None = None) -> VerifyReport:
    """Replay a stopped node's own database and compare its stored state and results."""
    started = time.perf_counter()
    genesis_file, data_dir = home_paths(home)
    genesis = load_genesis(genesis_file)
    node_store = open_node_store(data_dir)
    try:
        with Replayer(genesis, workers=workers, scratch_dir=scratch_dir, checkpoint=checkpoint) as replayer:
            report = replayer.report
            stored_genesis = node_store.get(GENESIS_KEY)
            if stored_genesis is not None and stored_genesis != genesis.hash:
                report.fail(f"{data_dir} belongs to another genesis than {genesis_file}", 0)
            else:
                top = stored_height(node_store)
                first = start_height(replayer, top)
                if progress is not None:
                    total = stored_ballot_total(node_store)
                    replayer.on_progress = lambda done, height: progress(done, total, height)
                    progress(replayer.votes_replayed(), total, replayer.ledger.height)
                replayer.replay(chunk_entries(iter_store_entries(node_store, first, top)))
            if not replayer.failed:
                if stored_app_hash(node_store) != replayer.ledger.app_hash:
                    report.fail("the node's stored app hash differs from the replayed state's", None)
                compare_home_state(node_store, replayer.store, report)
            checks = replayer.campaign_results()
            published = stored_results(node_store, [cid for cid, c in checks.items() if c.status == STATUS_CLOSED])
            compare_published(checks, published, report)
    finally:
        node_store.close()
    report.seconds = time.perf_counter() - started
    return report


async def fetch_head(urls: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    async with NodeClient(urls) as client:
        return await client.genesis(), await client.status()


def produce_node_entries(urls: list[str], start: int, end: int) -> Callable[[Callable[[Any], None]], None]:
    """A producer (for ``Prefetcher``) that downloads blocks start..end in ranges."""
    async def download(put: Callable[[Any], None]) -> None:
        async with NodeClient(urls, timeout=60.0) as client:
            height = start
            while height <= end:
                last = min(end, height + RANGE_BLOCKS - 1)
                try:
                    values = await client.raw_blocks(height, last)
                    entries = [entry_from_wire(height + i, value) for i, value in enumerate(values)]
                except NodeProtocolError:
                    entries = [await fetch_one(client, height)]  # find the bad block one by one
                if not entries:
                    put([Entry(height, None, None, f"the node returned no block {height} though its status "
                                                   f"reported height {end}")])
                    return
                put(entries)
                height += len(entries)

    def produce(put: Callable[[Any], None]) -> None:
        asyncio.run(download(put))

    return produce


async def fetch_one(client: NodeClient, height: int) -> Entry:
    try:
        return entry_from_wire(height, await client.raw_block(height))
    except NodeProtocolError as exc:
        return Entry(height, None, None, f"block {height} is malformed: {exc.message}")
    except NodeApiError as exc:
        return Entry(height, None, None, f"the node does not serve block {height}: {exc}")


def node_entries(urls: list[str], start: int, end: int) -> Iterator[Entry]:
    prefetcher = Prefetcher(produce_node_entries(urls, start, end))
    try:
        for batch in prefetcher:
            yield from batch
    finally:
        prefetcher.close()


async def fetch_ballot_total(urls: list[str]) -> int:
    """Ballots the node's campaigns count (for the progress bar only: nothing here is trusted)."""
    async with NodeClient(urls) as client:
        listing = await client.campaigns()
    campaigns = listing.get("campaigns", []) if isinstance(listing, dict) else []
    return sum(c["total_ballots"] for c in campaigns
               if isinstance(c, dict) and isinstance(c.get("total_ballots"), int))


async def fetch_tallies(urls: list[str], campaign_ids: list[str]) -> dict[str, dict[str, Any] | None]:
    async with NodeClient(urls) as client:
        async def one(campaign_id: str) -> dict[str, Any] | None:
            try:
                return await client.tally(campaign_id)
            except NodeApiError as exc:
                if exc.status == 404:
                    return None
                raise
        found = await asyncio.gather(*(one(cid) for cid in campaign_ids))
    return dict(zip(campaign_ids, found))


def published_hash(check: CampaignCheck, tally: dict[str, Any], height: int) -> str | None:
    """The hash the node publishes for the same state we replayed, or None if not comparable yet."""
    if check.status == STATUS_CLOSED:
        if tally.get("status") == STATUS_CLOSED and tally.get("result_status", "final") != "final":
            return None  # equal shares still being computed by the node
        return str(tally.get("result_hash"))
    return str(tally.get("result_hash")) if tally.get("height") == height else None


def verify_node(urls: list[str], *, pinned_genesis: Genesis | None = None, workers: int | None = None,
                scratch_dir: Path | None = None, catch_up_rounds: int = 3, checkpoint: Path | None = None,
                progress: Progress | None = None) -> VerifyReport:
    """Download the genesis and every block from a node, replay them and compare its tallies."""
    started = time.perf_counter()
    document, status = asyncio.run(fetch_head(urls))
    genesis = parse_genesis(document)
    if status.get("genesis_hash") not in (None, genesis.hash.hex()):
        raise NodeProtocolError(f"the node serves a genesis document hashing to {genesis.hash.hex()} but its "
                                f"status says {status.get('genesis_hash')}")
    if pinned_genesis is not None and pinned_genesis.hash != genesis.hash:
        raise VerifyError(f"the node's genesis {genesis.hash.hex()} is not the pinned genesis "
                          f"{pinned_genesis.hash.hex()}")
    target = status.get("height")
    if not isinstance(target, int) or target < 0:
        raise NodeProtocolError("the node's status has no height")
    with Replayer(genesis, workers=workers, scratch_dir=scratch_dir, checkpoint=checkpoint) as replayer:
        report = replayer.report
        first = start_height(replayer, target)
        if progress is not None:
            total = asyncio.run(fetch_ballot_total(urls))
            replayer.on_progress = lambda done, height: progress(done, total, height)
            progress(replayer.votes_replayed(), total, replayer.ledger.height)
        replayer.replay(chunk_entries(node_entries(urls, first, target)))
        checks = replayer.campaign_results()
        tallies: dict[str, dict[str, Any] | None] = {}
        for _ in range(catch_up_rounds):
            if replayer.failed:
                break
            tallies = asyncio.run(fetch_tallies(urls, list(checks)))
            ahead = [t["height"] for cid, t in tallies.items() if t is not None and checks[cid].status != STATUS_CLOSED
                     and isinstance(t.get("height"), int) and t["height"] > replayer.ledger.height]
            if not ahead:
                break
            replayer.replay(chunk_entries(node_entries(urls, replayer.ledger.height + 1, max(ahead))))
            checks = replayer.campaign_results()
        published: dict[str, str | None] = {}
        for campaign_id, check in checks.items():
            tally = tallies.get(campaign_id)
            if tally is None and not replayer.failed and campaign_id in tallies:
                report.fail(f"campaign {campaign_id} is on the chain but the node does not publish its tally", None)
            published[campaign_id] = None if tally is None else published_hash(check, tally, replayer.ledger.height)
        compare_published(checks, published, report)
    report.seconds = time.perf_counter() - started
    return report
