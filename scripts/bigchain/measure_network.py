"""A new campaign on top of the big chain against the same campaign on an empty chain, in one run.

Each round builds two networks of 4 validators + 1 observer (real ``python -m node`` processes on
loopback, the big chain's own testnet keys): **big** — every node on a hard-linked copy of the big
chain — and **empty** — the same genesis with no blocks. On each, before the nodes start, two blocks
are appended offline through the real apply path: ``campaign.create`` of a new adult campaign over
the 38 districts (choose-1, voting open from now) and its initiatives. Then
``scripts/bench_network.py``'s driver offers ``--rate`` votes/s (fresh keys, registration + 100
ballots per POST, round-robin over the five nodes) for ``--duration`` seconds after ``--warmup``,
and every validator's RssAnon / RssFile is sampled each second. Rounds alternate big, empty, big,
empty … so both see the same machine load; the ratio is computed from the same run.

The equal-shares results of the big chain's closed campaigns are computed once on the copy before
the nodes start (what a node that has run for years already holds in ``P/``): a first start would
otherwise spend its first minute computing them (measured apart: ``equal_shares_s``).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from chain.ledger import Ledger
from chain.records import STATUS_CLOSED, encode_result
from chain.results import compute_equal_shares_result
from chain.storage import LevelStore
from genesis import demo
from genesis.campaign_json import campaign_from_json, initiative_from_json
from genesis.model import load_genesis
from node.results import computed_key
from tests.node.votes import BallotPlan, make_batches

from bigchain.build import Chain
from bigchain.plan import ADULT_COSTS, DAY_MS, _campaign_json, make_initiatives
from bigchain.snapshot import BigNet, copy_layout, proc_status, snapshot_data

NODES = ("validator-0", "validator-1", "validator-2", "validator-3", "observer-0")


def precompute_equal_shares(data: Path, genesis_file: Path) -> dict[str, float]:
    """Compute and keep (``P/``) the result of every closed equal-shares campaign; seconds per campaign."""
    genesis = load_genesis(genesis_file)
    store = LevelStore(data)
    seconds: dict[str, float] = {}
    try:
        ledger = Ledger(store, genesis.params)
        for campaign_id, campaign in sorted(ledger.state.campaigns.items()):
            if campaign.status != STATUS_CLOSED or campaign.spec.rule.name != "equal-shares":
                continue
            if store.get(computed_key(campaign_id)) is not None:
                continue
            started = time.perf_counter()
            result = compute_equal_shares_result(ledger.state, store, campaign)
            seconds[campaign_id] = round(time.perf_counter() - started, 2)
            store.write({computed_key(campaign_id): encode_result(*result)}, sync=True)
    finally:
        store.close()
    return seconds


def append_campaign(run_dir: Path, campaign_id: str) -> BallotPlan:
    """campaign.create + initiatives on validator-0's copy, voting open from (about) now."""
    chain = Chain(run_dir.parent, net_dir=run_dir)
    try:
        ledger = chain.ledger
        now = int(time.time() * 1000)
        start = max(now - 60_000, ledger.last_time_ms + 1)
        schedule = {"submission_start": start, "submission_end": start + 2, "voting_start": start + 2,
                    "voting_end": now + DAY_MS}
        document = _campaign_json(campaign_id, "Новая кампания поверх десяти лет", "adult", "adult_budget",
                                  {"type": "choose-1", "min_choices": 1, "max_choices": 1},
                                  {"name": "top-n", "scope": "district", "top_n": 5, "min_votes": 0, "budget": 0},
                                  ADULT_COSTS, schedule, per_campaign=False)
        import random

        initiatives = make_initiatives(campaign_id, "adult",
                                       {d.district_id: d.adult_initiatives for d in demo.load_demo_districts()},
                                       random.Random(campaign_id), ADULT_COSTS)
        gateways = {name: key for name, key in ledger.params.gateways}
        chain.add_block([chain.committee_tx("campaign.create", campaign_from_json(document, gateways))], start)
        chain.add_block([chain.committee_tx("initiative.submit", initiative_from_json({
            "campaign_id": campaign_id, "initiative_id": i.initiative_id, "district_id": i.district_id,
            "title": i.title, "category": i.category, "cost": i.cost, "summary": i.summary}))
            for i in initiatives], start + 1)
        by_district: dict[str, list[str]] = {}
        for initiative in initiatives:
            by_district.setdefault(initiative.district_id, []).append(initiative.initiative_id)
        return BallotPlan(chain.chain_id, campaign_id, tuple((d, tuple(ids)) for d, ids in sorted(by_district.items())),
                          chain.gateway.seed)
    finally:
        chain.close()


class MemorySampler:
    def __init__(self, net: BigNet, names: list[str]) -> None:
        self.net = net
        self.names = names
        self.samples: dict[str, list[dict[str, int]]] = {name: [] for name in names}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for name in self.names:
                try:
                    self.samples[name].append(proc_status(self.net.pid(name)))
                except OSError:
                    pass

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peaks_mb(self) -> dict[str, dict[str, float]]:
        return {name: {key: round(max((s[key] for s in samples), default=0) / 1024, 1)
                       for key in ("RssAnon", "RssFile", "VmRSS")}
                for name, samples in self.samples.items()}


def wait_quiet(net: BigNet, cores: float = 0.25, window: float = 3.0, timeout: float = 300.0) -> float:
    """Seconds until the idle nodes use less than ``cores`` together (opening a copied LevelDB
    replays its log and compacts it; the measurement starts once that is over)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = sum(net.cpu_seconds(name) for name in net.names)
        time.sleep(window)
        if (sum(net.cpu_seconds(name) for name in net.names) - before) / window < cores:
            break
    return round(time.monotonic() - started, 1)


def one_network(kind: str, chain_dir: Path, work: Path, rate: float, duration: float, warmup: float,
                batch: int, keep: bool = False) -> dict[str, Any]:
    from bench_network import drive   # scripts/bench_network.py

    run_dir = work / f"{kind}-{int(time.time())}" / "net"
    run_dir.parent.mkdir(parents=True)
    copy_layout(chain_dir, run_dir, data_for=("validator-0",) if kind == "big" else ())
    result: dict[str, Any] = {"chain": kind}
    if kind == "big":
        result["equal_shares_s"] = precompute_equal_shares(run_dir / "validator-0" / "data", run_dir / "genesis.json")
    plan = append_campaign(run_dir, f"bench-{kind}-{int(time.time())}")
    for name in NODES[1:]:
        snapshot_data(run_dir / "validator-0" / "data", run_dir / name / "data")
    total = int(rate * (duration + warmup + 2))
    batches = make_batches(plan, total, batch, processes=2)
    net = BigNet(run_dir)
    try:
        started = time.perf_counter()
        net.start_all(timeout=900)
        result["start_s"] = round(time.perf_counter() - started, 1)
        result["settle_s"] = wait_quiet(net)
        result["height_at_start"] = net.height("validator-0")
        with MemorySampler(net, [n for n in NODES if n.startswith("validator-")]) as memory:
            result.update(asyncio.run(drive(net, batches, rate, warmup, duration, batch,
                                            start_height=result["height_at_start"])))
        result["memory_peak_mb"] = memory.peaks_mb()
        result["rss_anon_peak_mb_max"] = max(v["RssAnon"] for v in result["memory_peak_mb"].values())
        heights = {name: net.height(name) for name in net.names}
        hashes = {net.status(name)["app_hash"] for name in net.names if heights[name] == max(heights.values())}
        result["app_hashes_agree"] = len(hashes) == 1
    finally:
        net.close()
        if not keep:
            shutil.rmtree(run_dir.parent, ignore_errors=True)
    return result


def measure(chain_dir: Path, work: Path, *, rounds: int, rate: float, duration: float, warmup: float,
            batch: int = 100, keep: bool = False) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for _ in range(rounds):
        for kind in ("big", "empty"):
            runs.append(one_network(kind, chain_dir, work, rate, duration, warmup, batch, keep))
            print(f"{kind}: {runs[-1]['committed_votes_per_s']} votes/s, p99 {runs[-1]['latency_visible_p99_s']} s, "
                  f"RssAnon peak {runs[-1]['rss_anon_peak_mb_max']} MB", flush=True)

    def mean(kind: str, key: str) -> float:
        return statistics.mean(r[key] for r in runs if r["chain"] == kind)

    big_rate, empty_rate = mean("big", "committed_votes_per_s"), mean("empty", "committed_votes_per_s")
    big_p99, empty_p99 = mean("big", "latency_visible_p99_s"), mean("empty", "latency_visible_p99_s")
    return {"rounds": rounds, "rate": rate, "duration_s": duration,
            "big_votes_per_s": round(big_rate, 1), "empty_votes_per_s": round(empty_rate, 1),
            "ratio_votes_per_s": round(big_rate / empty_rate, 3) if empty_rate else None,
            "big_p99_s": round(big_p99, 3), "empty_p99_s": round(empty_p99, 3),
            "ratio_p99_empty_over_big": round(empty_p99 / big_p99, 3) if big_p99 else None,
            "big_rss_anon_peak_mb": max(r["rss_anon_peak_mb_max"] for r in runs if r["chain"] == "big"),
            "runs": runs}
