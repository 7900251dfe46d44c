"""Build the ten-year chain offline through the real apply path, resumably.

Layout of the chain directory (``--dir``, default /work/big-chain):
  DIR/bigchain.json     the plan's inputs (ballot total, seed, anchor time); fixed when DIR is made
  DIR/net/              a ``veche testnet init --demo`` layout (4 validators, 1 observer, gateway, keys)
  DIR/net/validator-0/data   the chain (LevelDB), written by this builder
  DIR/build-log.csv     one line per 200 blocks: ballots, height, seconds, apply CPU per ballot, disk

Every block goes through ``Ledger.build_block`` (each transaction decoded strictly and applied by the
state machine; signatures are not re-checked here — the builder made them, and ``veche verify``
checks every one) and ``Ledger.commit`` (one synced LevelDB batch), with a commit certificate
signed by a quorum of the testnet's validator keys — a different quorum from block to block.
Voter keys are fresh Ed25519 keys made and used in a pool of worker processes; registrations are
signed by the testnet gateway key, campaigns, initiatives and reports by the committee key.

Resuming: the plan is a pure function of bigchain.json, and every step's progress is read back from
the chain's state (campaigns present, initiatives counted, ballots counted, reports present), so
stopping the builder at any moment (Ctrl-C, kill -9) and starting it again continues where the last
committed block left it.
"""

from __future__ import annotations

import csv
import json
import os
import random
import resource
import sys
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.block import Block, CommitCertificate, make_certificate, vote_signing_bytes
from chain.crypto import read_key_file
from chain.ledger import Ledger
from chain.records import STATUS_OPEN, progress_key
from chain.storage import LevelStore
from chain.tx import CampaignClose, ProgressReport, Tx, decode_tx, sign_tx
from genesis.campaign_json import campaign_from_json, initiative_from_json
from genesis.model import Genesis, load_genesis
from genesis.testnet import init_testnet
from node.ops.progress import ProgressBar

from bigchain.ballots import make_block_parts
from bigchain.plan import BallotShape, CampaignPlan, YearPlan, ballot_shape, block_sizes, make_plan

CONFIG = "bigchain.json"
LOG_EVERY_BLOCKS = 200
INITIATIVES_PER_BLOCK = 500
REPORTS_PER_CAMPAIGN = 10


@dataclass(frozen=True)
class BuildConfig:
    ballots: int
    seed: int
    anchor_ms: int

    @classmethod
    def load(cls, directory: Path) -> "BuildConfig":
        data = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
        return cls(int(data["ballots"]), int(data["seed"]), int(data["anchor_ms"]))


def prepare(directory: Path, ballots: int, seed: int) -> BuildConfig:
    """Make DIR (testnet layout + bigchain.json) on first use; afterwards read what it holds."""
    if (directory / CONFIG).exists():
        config = BuildConfig.load(directory)
        if config.ballots != ballots:
            raise SystemExit(f"{directory} holds a plan of {config.ballots:,} ballots, not {ballots:,}; "
                             "use another --dir or the same --ballots")
        return config
    from bigchain.plan import genesis_time

    directory.mkdir(parents=True, exist_ok=True)
    anchor = int(time.time() * 1000)
    init_testnet(directory / "net", validators=4, observers=1, demo=True, now_ms=genesis_time(anchor),
                 chain_id="veche-bigchain")
    config = BuildConfig(ballots, seed, anchor)
    (directory / CONFIG).write_text(json.dumps({"ballots": ballots, "seed": seed, "anchor_ms": anchor,
                                                "made": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2) + "\n",
                                    encoding="utf-8")
    return config


class Chain:
    """The ledger of validator-0 and the keys that sign for the network (committee, gateway, validators)."""

    def __init__(self, directory: Path, *, net_dir: Path | None = None) -> None:
        net = net_dir if net_dir is not None else directory / "net"
        self.genesis: Genesis = load_genesis(net / "genesis.json")
        self.validator_keys = [read_key_file(net / f"validator-{i}" / "node-key.json")
                               for i in range(self.genesis.params.validators.size)]
        self.committee = read_key_file(net / "keys" / "committee-0.json")
        self.gateway = read_key_file(net / "gateway" / "gateway-key.json")
        self.store = LevelStore(net / "validator-0" / "data")
        self.ledger = Ledger(self.store, self.genesis.params)
        self.last_certificate: CommitCertificate | None = (
            self.ledger.certificate(self.ledger.height) if self.ledger.height else None)

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    def close(self) -> None:
        self.store.close()

    def certify(self, block: Block) -> CommitCertificate:
        """A quorum of the validators; which one left out turns with the height."""
        validators = self.genesis.params.validators
        left_out = block.height % validators.size
        chosen = [i for i in range(validators.size) if i != left_out][:validators.quorum]
        message = vote_signing_bytes(self.chain_id, "precommit", block.height, block.header.round, block.hash())
        return make_certificate(block.height, block.header.round, block.hash(),
                                [(i, self.validator_keys[i].sign(message)) for i in chosen])

    def add_block(self, txs: Sequence[Tx], time_ms: int, *, trusted: bool = False) -> Block:
        built = self.ledger.build_block(list(txs), time_ms=time_ms, round_=0, last_commit=self.last_certificate,
                                        checked=(lambda _h: True) if trusted else (lambda _h: False))
        if built.rejected or built.deferred:
            tx, error = built.rejected[0] if built.rejected else (built.deferred[0], "block full")
            raise RuntimeError(f"block {self.ledger.height + 1}: {len(built.rejected)} rejected, "
                               f"{len(built.deferred)} deferred; first {tx.kind}: {error}")
        certificate = self.certify(built.block)
        self.ledger.commit(built.block, certificate, built.execution, certificate_checked=True)
        self.last_certificate = certificate
        return built.block

    def committee_tx(self, kind: str, body: Any) -> Tx:
        return sign_tx(kind, self.chain_id, body, [self.committee])


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


class Builder:
    def __init__(self, directory: Path, config: BuildConfig, *, workers: int, progress: bool = True) -> None:
        self.directory = directory
        self.config = config
        self.workers = workers
        self.plan = make_plan(config.ballots, config.seed, config.anchor_ms)
        self.chain = Chain(directory)
        self.shapes: dict[str, BallotShape] = {c.campaign_id: ballot_shape(c, config.seed)
                                                for year in self.plan for c in year.campaigns}
        self.rng = random.Random(f"bigchain/{config.seed}/blocks/{self.chain.ledger.height}")
        self.bar = ProgressBar(config.ballots, "ballots", enabled=progress, start_done=self.ballots_done())
        self.log_path = directory / "build-log.csv"
        self._log_mark: tuple[float, float, int] | None = None
        self.started = time.monotonic()

    # --- state read back from the chain ---------------------------------------------------------------

    def ballots_done(self) -> int:
        campaigns = self.chain.ledger.state.campaigns
        return sum(campaigns[c.campaign_id].total_ballots for year in self.plan for c in year.campaigns
                   if c.campaign_id in campaigns)

    def counted(self, campaign: CampaignPlan) -> int:
        record = self.chain.ledger.state.campaigns.get(campaign.campaign_id)
        return 0 if record is None else record.total_ballots

    # --- steps -----------------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            for year in self.plan:
                self.create_year(year)
                self.vote_year(year)
                self.close_by_committee(year)
            self.finish()
        finally:
            self.bar.close(self.note())
            self.chain.close()

    def create_year(self, year: YearPlan) -> None:
        ledger = self.chain.ledger
        missing = [c for c in year.campaigns if not c.genesis and c.campaign_id not in ledger.state.campaigns]
        time_ms = year.create_time if year.year else self.plan[0].campaigns[0].submission_start + 1000
        if missing:
            gateways = {name: key for name, key in ledger.params.gateways}
            txs = [self.chain.committee_tx("campaign.create", campaign_from_json(c.json, gateways)) for c in missing]
            self.chain.add_block(txs, max(time_ms, ledger.last_time_ms + 1))
        if year.year:
            self.report_progress(self.plan[year.year - 1], time_ms + 60_000)
        for campaign in year.campaigns:
            if campaign.genesis:
                continue
            have = ledger.state.initiative_ids(campaign.campaign_id)
            todo = [i for i in campaign.initiatives if i.initiative_id not in have]
            for start in range(0, len(todo), INITIATIVES_PER_BLOCK):
                txs = [self.chain.committee_tx("initiative.submit", initiative_from_json({
                    "campaign_id": campaign.campaign_id, "initiative_id": i.initiative_id,
                    "district_id": i.district_id, "title": i.title, "category": i.category, "cost": i.cost,
                    "summary": i.summary})) for i in todo[start:start + INITIATIVES_PER_BLOCK]]
                self.chain.add_block(txs, max(time_ms + 120_000, ledger.last_time_ms + 1))

    def report_progress(self, previous: YearPlan, time_ms: int) -> None:
        """Contracts signed for the first winners of last year's campaigns decided at close."""
        state = self.chain.ledger.state
        txs: list[Tx] = []
        for campaign in previous.campaigns:
            result = state.results.get(campaign.campaign_id)
            if result is None or not result[0]:
                continue
            winners = result[0][:REPORTS_PER_CAMPAIGN]
            if state.store.get(progress_key(campaign.campaign_id, winners[0], 0)) is not None:
                continue
            txs += [self.chain.committee_tx("progress.report", ProgressReport(
                campaign.campaign_id, winner, "contract", 0, 0, "Контракт заключён", b"")) for winner in winners]
        if txs:
            self.chain.add_block(txs, max(time_ms, self.chain.ledger.last_time_ms + 1))

    def vote_year(self, year: YearPlan) -> None:
        remaining = {c.campaign_id: c.ballots - self.counted(c) for c in year.campaigns}
        total = year.ballots
        if sum(remaining.values()) <= 0:
            return
        unassigned = dict(remaining)
        pending: deque[tuple[int, Future[list[bytes]]]] = deque()
        window = max(2, self.workers * 3)
        seed = self.chain.ledger.height * 1000 + self.config.seed
        with ProcessPoolExecutor(self.workers) as pool:
            while pending or sum(unassigned.values()) > 0:
                while len(pending) < window and sum(unassigned.values()) > 0:
                    parts = self.next_parts(unassigned)
                    seed += 1
                    future = pool.submit(make_block_parts, self.chain.chain_id, self.chain.gateway.seed,
                                         [(self.shapes[cid], n) for cid, n in parts], seed)
                    pending.append((sum(n for _, n in parts), future))
                size, future = pending.popleft()
                raws = future.result()
                done_year = sum(self.counted(c) for c in year.campaigns) + size
                fraction = min(1.0, done_year / total)
                when = year.ballots_from + int(fraction * (year.ballots_until - year.ballots_from))
                txs = [decode_tx(raw) for raw in raws]
                self.chain.add_block(txs, max(when, self.chain.ledger.last_time_ms + 1), trusted=True)
                self.after_block()

    def next_parts(self, unassigned: dict[str, int]) -> list[tuple[str, int]]:
        """Ballots of the next block, shared among the year's campaigns by what each still lacks."""
        left = sum(unassigned.values())
        size = min(left, block_sizes(self.rng))
        parts = [[campaign_id, min(count, size * count // left)] for campaign_id, count in unassigned.items()
                 if count > 0]
        given = sum(int(n) for _, n in parts)
        for part in sorted(parts, key=lambda p: -unassigned[str(p[0])]):   # the remainder
            extra = min(size - given, unassigned[str(part[0])] - int(part[1]))
            part[1] = int(part[1]) + extra
            given += extra
        chosen = [(str(campaign_id), int(n)) for campaign_id, n in parts if int(n) > 0]
        for campaign_id, count in chosen:
            unassigned[campaign_id] -= count
        self.rng.shuffle(chosen)
        return chosen

    def close_by_committee(self, year: YearPlan) -> None:
        for campaign in year.campaigns:
            record = self.chain.ledger.state.campaigns.get(campaign.campaign_id)
            if campaign.close_by_committee and record is not None and record.status == STATUS_OPEN:
                tx = self.chain.committee_tx("campaign.close", CampaignClose(
                    campaign.campaign_id, "Дополнительный отбор завершён досрочно решением комиссии"))
                self.chain.add_block([tx], max(year.ballots_until + 60_000, self.chain.ledger.last_time_ms + 1))

    def finish(self) -> None:
        """One last block after the last year's short windows: it closes them (the adult one stays open)."""
        tail = self.config.anchor_ms - 2 * 24 * 3600 * 1000
        if self.chain.ledger.last_time_ms < tail:
            self.chain.add_block([], tail)

    # --- progress and the degradation log --------------------------------------------------------------

    def note(self) -> str:
        ledger = self.chain.ledger
        return f"height {ledger.height:,}"

    def after_block(self) -> None:
        done = self.ballots_done()
        self.bar.update(done, self.note())
        height = self.chain.ledger.height
        if height % LOG_EVERY_BLOCKS:
            return
        now, cpu = time.monotonic(), time.process_time()
        if self._log_mark is not None:
            then, cpu_then, done_then = self._log_mark
            ballots = done - done_then
            data = self.directory / "net" / "validator-0" / "data"
            row = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "height": height, "ballots": done,
                   "interval_ballots": ballots, "interval_s": round(now - then, 2),
                   "ballots_per_s": round(ballots / max(1e-9, now - then), 1),
                   "main_cpu_us_per_ballot": round((cpu - cpu_then) / max(1, ballots) * 1e6, 1),
                   "leveldb_bytes": dir_bytes(data),
                   "rss_max_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                   "load1": round(os.getloadavg()[0], 2)}
            new = not self.log_path.exists()
            with self.log_path.open("a", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(row))
                if new:
                    writer.writeheader()
                writer.writerow(row)
        self._log_mark = (now, cpu, done)


def build(directory: Path, ballots: int, seed: int, workers: int, progress: bool = True) -> None:
    config = prepare(directory, ballots, seed)
    Builder(directory, config, workers=workers, progress=progress).run()
