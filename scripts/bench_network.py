"""Benchmark the validator network: sustained signed votes through 4 validators + 1 observer.

    .venv/bin/python scripts/bench_network.py [--rate 1000] [--duration 60] [--warmup 5] [--batch 100]
                                              [--validators 4] [--observers 1] [--dir DIR] [--keep] [--json]
                                              [--tokens]

Starts a testnet of real node processes on loopback (``python -m node``), pre-generates every
voter key and signed transaction *before* the measured window (one registration + ``--batch``
ballots per POST), then sends batches at ``--rate`` votes/s round-robin to every node (observer
included; it forwards to the validators). A watcher follows validator-0's blocks.

Prints: committed votes/s during the window; latency from submission to "visible committed on
validator-0's API" (p50/p99) and to block time; CPU-µs per committed vote for each node process
(utime+stime from /proc/<pid>/stat over the window) and in total; and how many votes never
committed (after a drain period).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.crypto import sha256  # noqa: E402
from tests.node.netkit import LocalNet  # noqa: E402
from tests.node.votes import demo_plan, encode_batch, make_batches  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Watcher:
    """Follows one node's blocks; records when each tx became visible and its block time."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.height = 0
        self.seen: dict[str, float] = {}
        self.block_time: dict[str, float] = {}
        self.blocks: list[tuple[int, float, int, float]] = []  # (height, seen_at, txs, block time)

    async def run(self) -> None:
        while True:
            try:
                async with self.session.get(self.url + "/api/v1/status") as response:
                    height = (await response.json())["height"]
                while self.height < height:
                    async with self.session.get(f"{self.url}/api/v1/blocks/{self.height + 1}") as response:
                        block = await response.json()
                    now = time.time()
                    self.height += 1
                    for tx_hash in block["txs"]:
                        self.seen[tx_hash] = now
                        self.block_time[tx_hash] = block["header"]["time_ms"] / 1000
                    self.blocks.append((self.height, now, len(block["txs"]), block["header"]["time_ms"] / 1000))
            except (aiohttp.ClientError, KeyError, ValueError):
                pass
            await asyncio.sleep(0.02)


async def drive(net: LocalNet, batches: list[list[bytes]], rate: float, warmup: float, duration: float,
                batch_votes: int, start_height: int = 0) -> dict[str, object]:
    """``start_height``: the watcher follows blocks after it (a long chain's history is not walked)."""
    names = net.names
    urls = [net.urls[name] for name in names]
    vote_hashes = [[sha256(raw).hex() for raw in batch[1:]] for batch in batches]
    submitted: dict[str, float] = {}
    refused = {"429": 0, "503": 0, "other": 0}
    rejected_txs = 0
    interval = batch_votes / rate
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        watcher = Watcher(session, net.urls[net.validators[0]])
        watcher.height = start_height
        watch_task = asyncio.create_task(watcher.run())
        limit = asyncio.Semaphore(32)

        async def send(index: int) -> None:
            nonlocal rejected_txs
            body = encode_batch(batches[index])
            async with limit:
                for attempt in range(20):
                    url = urls[(index + attempt) % len(urls)]
                    started = time.time()
                    try:
                        async with session.post(url + "/api/v1/txs", data=body,
                                                headers={"Content-Type": "application/octet-stream"}) as response:
                            payload = await response.read()
                            status = response.status
                            retry = float(response.headers.get("Retry-After", "0.2") or 0.2)
                    except aiohttp.ClientError:
                        refused["other"] += 1
                        await asyncio.sleep(0.2)
                        continue
                    if status == 200:
                        reply = json.loads(payload)
                        rejected_txs += len(reply["rejected"])
                        for tx_hash in vote_hashes[index]:
                            submitted.setdefault(tx_hash, started)
                        return
                    refused[str(status) if str(status) in refused else "other"] += 1
                    await asyncio.sleep(min(retry, 2.0))

        start = time.time() + 0.5
        window_start = start + warmup
        window_end = window_start + duration
        cpu_start: dict[str, float] = {}
        senders = []
        for index in range(len(batches)):
            due = start + index * interval
            if due >= window_end:
                break
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if not cpu_start and time.time() >= window_start:
                cpu_start = {name: net.cpu_seconds(name) for name in names}
            senders.append(asyncio.create_task(send(index)))
        await asyncio.sleep(max(0.0, window_end - time.time()))
        cpu_end = {name: net.cpu_seconds(name) for name in names}
        seen_in_window = [h for h, t in watcher.seen.items() if window_start <= t < window_end and h in submitted]
        await asyncio.gather(*senders)
        drain_deadline = time.time() + 30
        while time.time() < drain_deadline and any(h not in watcher.seen for h in submitted):
            await asyncio.sleep(0.2)
        watch_task.cancel()

    in_window = [h for h, t in submitted.items() if window_start <= t < window_end]
    latency = [watcher.seen[h] - submitted[h] for h in in_window if h in watcher.seen]
    to_block = [watcher.block_time[h] - submitted[h] for h in in_window if h in watcher.block_time]
    committed = len(seen_in_window)
    cpu = {name: (cpu_end[name] - cpu_start.get(name, cpu_end[name])) for name in names}
    window_blocks = [b for b in watcher.blocks if window_start <= b[1] < window_end]
    block_to_visible = [b[1] - b[3] for b in window_blocks]
    intervals = [later[3] - earlier[3] for earlier, later in zip(window_blocks, window_blocks[1:])]
    return {
        "offered_votes_per_s": rate,
        "window_s": duration,
        "committed_votes_per_s": round(committed / duration, 1),
        "votes_submitted_in_window": len(in_window),
        "latency_visible_p50_s": round(percentile(latency, 0.50), 3),
        "latency_visible_p99_s": round(percentile(latency, 0.99), 3),
        "latency_visible_max_s": round(max(latency, default=float("nan")), 3),
        "latency_block_time_p50_s": round(percentile(to_block, 0.50), 3),
        "latency_block_time_p99_s": round(percentile(to_block, 0.99), 3),
        "blocks_in_window": len(window_blocks),
        "block_interval_p50_s": round(percentile(intervals, 0.50), 3),
        "block_interval_p99_s": round(percentile(intervals, 0.99), 3),
        "block_time_to_visible_p50_s": round(percentile(block_to_visible, 0.50), 3),
        "block_time_to_visible_p99_s": round(percentile(block_to_visible, 0.99), 3),
        "mean_txs_per_block": round(statistics.mean([b[2] for b in window_blocks]), 1) if window_blocks else 0,
        "cpu_us_per_vote": {name: round(seconds * 1e6 / max(committed, 1), 1) for name, seconds in cpu.items()},
        "cpu_us_per_vote_total": round(sum(cpu.values()) * 1e6 / max(committed, 1), 1),
        "cpu_cores_used": round(sum(cpu.values()) / duration, 2),
        "never_committed": sum(1 for h in submitted if h not in watcher.seen),
        "refused_requests": refused,
        "rejected_txs": rejected_txs,
    }


def scrape(net: LocalNet, name: str, metric: str) -> float:
    """Sum of a metric's samples in a node's /metrics."""
    from tests.node.netkit import http_get

    status, body = http_get(net.urls[name] + "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(metric) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def histogram_quantiles(net: LocalNet, metric: str) -> tuple[float, float]:
    """Approximate p50 and p99 (bucket upper bounds) of a histogram summed over the validators."""
    from tests.node.netkit import http_get

    buckets: dict[float, float] = {}
    for name in net.validators:
        for line in http_get(net.urls[name] + "/metrics")[1].decode().splitlines():
            if line.startswith(metric + "_bucket"):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                key = float("inf") if bound == "+Inf" else float(bound)
                buckets[key] = buckets.get(key, 0) + float(line.rsplit(" ", 1)[1])
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0
    def quantile(fraction: float) -> float:
        for bound in bounds:
            if total and buckets[bound] >= fraction * total:
                return bound
        return float("nan")
    return quantile(0.5), quantile(0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000, help="offered votes per second")
    parser.add_argument("--duration", type=float, default=60, help="measured window, seconds")
    parser.add_argument("--warmup", type=float, default=5, help="load before the window, seconds")
    parser.add_argument("--batch", type=int, default=100, help="ballots per POST (plus one registration)")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--observers", type=int, default=1)
    parser.add_argument("--verify-threads", type=int, default=None,
                        help="set limits.verify_threads in every node's config.json")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="set limits.NAME (an integer) in every node's config.json; repeatable")
    parser.add_argument("--dir", type=Path, default=None, help="testnet folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="leave the testnet folder in place")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tokens", action="store_true",
                        help="voter-held ballots: each carries a blind certification token (one tokens.issued "
                             "record per POST instead of a registration; docs/PROTOCOL.md §16)")
    args = parser.parse_args()

    directory = args.dir or Path(tempfile.mkdtemp(prefix="veche-bench-"))
    net = LocalNet(directory / "net", validators=args.validators, observers=args.observers)
    limits = dict(item.split("=", 1) for item in args.limit)
    if args.verify_threads is not None:
        limits["verify_threads"] = str(args.verify_threads)
    if limits:
        for name in net.names:
            path = net.homes[name] / "config.json"
            config = json.loads(path.read_text())
            config.setdefault("limits", {}).update({key: int(value) for key, value in limits.items()})
            path.write_text(json.dumps(config))
    plan = demo_plan(net.directory)
    total = int(args.rate * (args.duration + args.warmup + 2))
    started = time.perf_counter()
    tokens = net.directory / "gateway" / "certification-key.json" if args.tokens else None
    batches = make_batches(plan, total, args.batch, processes=2, tokens=tokens)
    generation = time.perf_counter() - started
    if not args.json:
        print(f"pre-generated {total} signed votes in {len(batches)} batches ({generation:.1f} s)", flush=True)
    try:
        net.start_all()
        result = asyncio.run(drive(net, batches, args.rate, args.warmup, args.duration, args.batch))
        heights = {name: net.height(name) for name in net.names}
        result["round_changes"] = {name: scrape(net, name, "veche_consensus_round_changes_total")
                                   for name in net.validators}
        for metric in ("veche_mempool_wait_seconds", "veche_gossip_queue_seconds", "veche_event_loop_lag_seconds",
                       "veche_signing_state_write_seconds"):
            result[metric.removeprefix("veche_") + "_p50_p99"] = histogram_quantiles(net, metric)
        result["stale_proposals_received"] = sum(scrape(net, name, "veche_p2p_stale_proposals_total")
                                                 for name in net.validators)
        hashes = {net.status(name)["app_hash"] for name in net.names if heights[name] == max(heights.values())}
        result["heights"] = heights
        result["app_hashes_agree"] = len(hashes) == 1
    finally:
        net.close()
        if not args.keep and args.dir is None:
            import shutil
            shutil.rmtree(directory, ignore_errors=True)
    result["nodes"] = f"{args.validators} validators + {args.observers} observer(s), loopback, real processes"
    result["ballots"] = "voter-held, each with a token" if args.tokens else "gateway-held (registered keys)"
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:<28} {value}")


if __name__ == "__main__":
    main()
