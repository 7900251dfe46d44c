"""One validator on a copy of a chain: start-up, memory at rest, and what its read routes cost.

Starts ``python -m node`` for validator-0 alone on a hard-linked copy of the chain (it has no
quorum, so it only opens its chain and serves its API), then measures over loopback HTTP:
  * process start → ``/api/v1/status`` answers at the chain's height; RssAnon / RssFile / VmHWM
    sampled every second for ``--settle`` seconds (equal-shares results computed at first start
    included: each is computed once, then kept);
  * ``GET /api/v1/txs/{hash}`` (the receipt proof: Merkle path, header, certificate) for ballots
    sampled evenly over the whole chain: p50 / p99 / max, and the client's check of each proof
    (``chain.receipt``'s Merkle and certificate check) timed apart;
  * ``GET /api/v1/campaigns/{id}/ballots`` pages (limit 2000) of the largest campaign, from its
    start and from the middle of its index, and a whole campaign read page by page (what
    ``veche pabulib export`` reads), in ballots per second;
  * the tally of the largest campaign, a block, the status.

``block_walk``: the copy is told its ballot index starts after its last block
(``M/ballot_index_from``), so every campaign's pages walk the stored blocks as on a store written
before the index existed — the same chain read both ways.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from chain.block import BlockHeader, CommitCertificate, verify_certificate
from chain.merkle import verify_inclusion
from genesis.model import load_genesis
from tests.node.netkit import get_json, http_get, wait_for

from bigchain.snapshot import BigNet, copy_layout, proc_status


def timed_get(url: str, timeout: float = 120.0) -> tuple[float, int, bytes]:
    started = time.perf_counter()
    status, body = http_get(url, timeout)
    return (time.perf_counter() - started) * 1000, status, body


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(percentile(values, 0.5), 2), "p99_ms": round(percentile(values, 0.99), 2),
            "max_ms": round(max(values), 2) if values else float("nan")}


def sample_ballots(url: str, height: int, count: int, rng: random.Random) -> list[str]:
    """Tx hashes of ballots at heights spread evenly over the chain (one per sampled block)."""
    hashes: list[str] = []
    for i in range(count * 3):
        if len(hashes) >= count:
            break
        h = max(1, int((i + rng.random()) * height / (count * 3)))
        block = get_json(f"{url}/api/v1/blocks/{h}", 60.0)
        if len(block["txs"]) > 1:
            hashes.append(block["txs"][rng.randrange(1, len(block["txs"]))])
    return hashes


def check_proof(answer: dict[str, Any], genesis_file: Path) -> float:
    """The receipt check a citizen's client runs (inclusion + certificate), in ms."""
    genesis = load_genesis(genesis_file)
    proof = answer["proof"]
    started = time.perf_counter()
    from chain import codec

    header = BlockHeader.from_wire(codec.decode(bytes.fromhex(proof["header"])))
    certificate = CommitCertificate.decode(bytes.fromhex(proof["certificate"]))
    verify_inclusion(bytes.fromhex(proof["tx"]), answer["index"], proof["tree_size"],
                     [bytes.fromhex(step) for step in proof["path"]], header.tx_root)
    verify_certificate(certificate, genesis.params.validators, genesis.chain_id, height=header.height,
                       block_hash=header.hash())
    return (time.perf_counter() - started) * 1000


def read_campaign(url: str, campaign_id: str, after: str | None = None, pages: int | None = None) -> dict[str, Any]:
    ballots = 0
    count = 0
    times: list[float] = []
    started = time.perf_counter()
    cursor = after
    while True:
        query = f"?limit=2000" + (f"&after={cursor}" if cursor else "")
        ms, status, body = timed_get(f"{url}/api/v1/campaigns/{campaign_id}/ballots{query}")
        if status != 200:
            raise RuntimeError(f"ballots page: HTTP {status}: {body[:200]!r}")
        page = json.loads(body)
        ballots += len(page["ballots"])
        times.append(ms)
        count += 1
        cursor = page["next"]
        if cursor is None or (pages is not None and count >= pages):
            break
    seconds = time.perf_counter() - started
    return {"ballots": ballots, "pages": count, "seconds": round(seconds, 2),
            "ballots_per_s": round(ballots / seconds, 0) if seconds else None, "page": summary(times)}


def measure(chain_dir: Path, run_dir: Path, *, settle: float = 20.0, samples: int = 200,
            full_campaign: str | None = None, seed: int = 1, block_walk: bool = False) -> dict[str, Any]:
    copy_layout(chain_dir, run_dir, data_for=("validator-0",), new_ports=True)
    if block_walk:
        index_from_after_the_last_block(run_dir / "validator-0" / "data")
    net = BigNet(run_dir)
    name = "validator-0"
    url = net.urls[name]
    rng = random.Random(seed)
    result: dict[str, Any] = {"chain": str(chain_dir), "ballot_pages": "block walk" if block_walk else "as stored"}
    try:
        started = time.perf_counter()
        net.start(name)
        net.wait_up(name, timeout=900)
        result["start_to_api_s"] = round(time.perf_counter() - started, 2)
        height = net.height(name)
        result["height"] = height
        memory: list[dict[str, int]] = []
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            memory.append(proc_status(net.pid(name)))
            time.sleep(1.0)
        result["memory_settled_mb"] = {k: round(v / 1024, 1) for k, v in memory[-1].items()}
        result["rss_anon_max_mb"] = round(max(m["RssAnon"] for m in memory) / 1024, 1)
        campaigns = get_json(f"{url}/api/v1/campaigns", 60.0)["campaigns"]
        result["campaigns"] = len(campaigns)
        result["ballots"] = sum(c["total_ballots"] for c in campaigns)
        largest = max(campaigns, key=lambda c: c["total_ballots"])
        result["largest_campaign"] = {"id": largest["campaign_id"], "ballots": largest["total_ballots"]}

        hashes = sample_ballots(url, height, samples, rng)
        lookups: list[float] = []
        checks: list[float] = []
        genesis_file = run_dir / "genesis.json"
        for tx_hash in hashes:
            ms, status, body = timed_get(f"{url}/api/v1/txs/{tx_hash}")
            if status != 200:
                raise RuntimeError(f"tx lookup: HTTP {status}")
            answer = json.loads(body)
            assert answer["status"] == "committed", answer
            lookups.append(ms)
            checks.append(check_proof(answer, genesis_file))
        result["tx_lookup_with_proof"] = summary(lookups)
        result["proof_check_client"] = summary(checks)

        routes: dict[str, float] = {}
        for route in ("/api/v1/status", f"/api/v1/campaigns/{largest['campaign_id']}/tally",
                      f"/api/v1/blocks/{height}", f"/api/v1/blocks/{max(1, height // 2)}"):
            routes[route] = round(statistics.median(timed_get(url + route)[0] for _ in range(5)), 2)
        result["routes_median_ms"] = routes

        first = read_campaign(url, largest["campaign_id"], pages=5)
        details = get_json(f"{url}/api/v1/campaigns/{largest['campaign_id']}", 60.0)
        created, closed = details["created_height"], details["closed_height"] or height
        middle_cursor = f"{(created + closed) // 2}:0"
        middle = read_campaign(url, largest["campaign_id"], after=middle_cursor, pages=5)
        result["ballots_pages_largest"] = {"from_start": first, "from_middle": middle}
        if full_campaign:
            result["whole_campaign"] = {"id": full_campaign, **read_campaign(url, full_campaign)}
        result["memory_end_mb"] = {k: round(v / 1024, 1) for k, v in proc_status(net.pid(name)).items()}
        result["log_equal_shares"] = [line for line in net.log_tail(name, 400).splitlines()
                                      if "equal-shares result" in line][-6:]
    finally:
        net.close()
    return result


def index_from_after_the_last_block(data: Path) -> None:
    from chain.ballot_index import BALLOT_INDEX_FROM_KEY
    from chain.records import u64
    from chain.storage import LevelStore

    store = LevelStore(data)
    try:
        store.write({BALLOT_INDEX_FROM_KEY: u64(2**62)}, sync=True)
    finally:
        store.close()


def wait_height(net: BigNet, name: str, height: int, timeout: float) -> None:
    wait_for(lambda: net.height(name) >= height, timeout, f"{name} at height {height}", interval=0.2)
