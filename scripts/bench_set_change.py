"""Benchmark a validator set change under load: votes/s and commit latency before and around it.

    .venv/bin/python scripts/bench_set_change.py [--rate 600] [--before 60] [--around 60] [--batch 100]
                                                 [--kill] [--dir DIR] [--json]

A testnet of real node processes (4 validators + 1 observer) takes signed votes at ``--rate`` (pre-made,
one registration + ``--batch`` ballots per POST, round-robin over the nodes). After ``--before``
seconds a fresh validator home (its own key, started then) is added and validator-3 removed with
``veche validators update`` (``--kill``: validator-3 is killed -9 first, as for a dead server). The
script prints, for the window before the change and the ``--around`` seconds centred on its commit:
committed votes/s, submission → visible-on-validator-0 latency p50/p99, and block intervals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_network import Watcher, percentile  # noqa: E402
from chain.crypto import sha256  # noqa: E402
from tests.node.netkit import LocalNet  # noqa: E402
from tests.node.votes import demo_plan, encode_batch, make_batches  # noqa: E402
from tests.ops.lifecycle import add_home  # noqa: E402


def window_stats(submitted: dict[str, float], watcher: Watcher, start: float, end: float) -> dict[str, float]:
    sent = [h for h, t in submitted.items() if start <= t < end]
    latency = [watcher.seen[h] - submitted[h] for h in sent if h in watcher.seen]
    committed = [h for h, t in watcher.seen.items() if start <= t < end and h in submitted]
    blocks = [b for b in watcher.blocks if start <= b[1] < end]
    intervals = [later[3] - earlier[3] for earlier, later in zip(blocks, blocks[1:])]
    return {"seconds": round(end - start, 1), "committed_votes_per_s": round(len(committed) / (end - start), 1),
            "latency_p50_s": round(percentile(latency, 0.5), 3), "latency_p99_s": round(percentile(latency, 0.99), 3),
            "latency_max_s": round(max(latency, default=float("nan")), 3), "blocks": len(blocks),
            "block_interval_p99_s": round(percentile(intervals, 0.99), 3),
            "never_committed": sum(1 for h in sent if h not in watcher.seen)}


def change_set(net: LocalNet, kill: bool, result: dict[str, object]) -> None:
    """In a thread: add validator-4 (a new home and key), remove validator-3; note when it committed."""
    key = add_home(net, "validator-4")
    assert key is not None
    net.start("validator-4")
    net.wait_up("validator-4")
    if kill:
        net.kill("validator-3")
    change = net.directory / "replace.json"
    change.write_text(json.dumps({"reason": "benchmark: replace validator-3", "remove": ["validator-3"],
                                  "add": [{"name": "validator-4", "operator": "committee",
                                           "public_key": key.public_key.hex(), "url": net.urls["validator-4"]}]}))
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "node.cli", "validators", "update", str(change), "--key",
                           str(net.directory / "keys" / "committee-0.json"), "--node", net.urls["validator-1"]],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    result.update(submitted_at=started, committed_at=time.time(), output=done.stdout.strip(), code=done.returncode)


async def drive(net: LocalNet, batches: list[list[bytes]], rate: float, batch: int, before: float, around: float,
                kill: bool) -> dict[str, object]:
    names = [n for n in net.names]
    hashes = [[sha256(raw).hex() for raw in b[1:]] for b in batches]
    submitted: dict[str, float] = {}
    change: dict[str, object] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        watcher = Watcher(session, net.urls["validator-0"])
        watching = asyncio.create_task(watcher.run())
        limit = asyncio.Semaphore(32)

        async def send(index: int) -> None:
            async with limit:
                for attempt in range(30):
                    target = names[(index + attempt) % len(names)]
                    if not net.alive(target):
                        continue
                    started = time.time()
                    try:
                        async with session.post(net.urls[target] + "/api/v1/txs", data=encode_batch(batches[index]),
                                                headers={"Content-Type": "application/octet-stream"}) as response:
                            await response.read()
                            if response.status == 200:
                                for tx_hash in hashes[index]:
                                    submitted.setdefault(tx_hash, started)
                                return
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.2)

        start = time.time() + 1
        change_due = start + before
        end = change_due + around
        thread: threading.Thread | None = None
        senders = []
        for index in range(len(batches)):
            due = start + index * batch / rate
            if "committed_at" in change:   # keep the load on for half a window after the change committed
                end = max(end, float(change["committed_at"]) + around / 2 + 1)  # type: ignore[arg-type]
            if due >= end:
                break
            await asyncio.sleep(max(0.0, due - time.time()))
            if thread is None and time.time() >= change_due:
                thread = threading.Thread(target=change_set, args=(net, kill, change), daemon=True)
                thread.start()
            senders.append(asyncio.create_task(send(index)))
        await asyncio.gather(*senders)
        if thread is not None:
            thread.join(timeout=120)
        deadline = time.time() + 30
        while time.time() < deadline and any(h not in watcher.seen for h in submitted):
            await asyncio.sleep(0.2)
        watching.cancel()
    committed_at = float(change.get("committed_at", change_due))  # type: ignore[arg-type]
    half = around / 2
    return {"rate": rate, "change": {k: v for k, v in change.items() if k != "output"},
            "change_output": change.get("output"),
            "before": window_stats(submitted, watcher, start + 5, min(change_due, committed_at - half) - 1),
            "around": window_stats(submitted, watcher, committed_at - half, committed_at + half),
            "load_average": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=600.0)
    parser.add_argument("--before", type=float, default=60.0)
    parser.add_argument("--around", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--kill", action="store_true", help="kill validator-3 (-9) before removing it")
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="veche-bench-set-change-"))
    net = LocalNet(directory / "net", validators=4, observers=1)
    try:
        plan = demo_plan(net.directory)
        seconds = args.before + args.around + 60
        batches = make_batches(plan, int(args.rate * seconds) + args.batch, args.batch, processes=2)
        net.start_all()
        result = asyncio.run(drive(net, batches, args.rate, args.batch, args.before, args.around, args.kill))
    finally:
        net.close()
    if args.json:
        print(json.dumps(result))
        return
    print(f"offered {args.rate:g} votes/s; change: {result['change_output']!r} (load average {result['load_average']:.1f})")
    for name in ("before", "around"):
        stats = result[name]
        assert isinstance(stats, dict)
        print(f"{name:>7}: {stats['committed_votes_per_s']:,.0f} votes/s committed over {stats['seconds']} s, latency "
              f"p50 {stats['latency_p50_s']} s p99 {stats['latency_p99_s']} s (max {stats['latency_max_s']}), "
              f"{stats['blocks']} blocks, block interval p99 {stats['block_interval_p99_s']} s, "
              f"never committed {stats['never_committed']}")


if __name__ == "__main__":
    main()
