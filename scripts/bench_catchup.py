"""Benchmark block sync: a validator that missed N votes (default 100,000) catches up.

    .venv/bin/python scripts/bench_catchup.py [--votes 100000] [--block-votes 500] [--dir DIR] [--keep] [--json]

Builds the chain offline first — real signed registrations and ballots (fresh voter keys, the
testnet gateway key) in blocks of ``--block-votes`` ballots, each with a quorum commit certificate
signed by the testnet's validator keys, committed through ``Ledger.build_block``/``Ledger.commit``
into validator-0's data directory — and copies it to validators 1 and 2. Then validators 0-2 run
(a live network: 3 of 4 is a quorum) and validator-3 starts from an empty data directory. It
block-syncs everything from its peers' public API, checking every commit certificate against the
genesis validator set (ballot signatures are trusted under a valid certificate; ``veche verify``
checks them all).

``--block-votes 1`` makes one block per ballot: the rate is then bounded by blocks/s (empty-ish
blocks, like the heartbeat's), not by ballots.

Prints votes/s and blocks/s over the whole catch-up (process start to reaching the height) and over the sync
itself (the node's "block sync: from … / reached …" log lines), and the CPU time of the syncing
process (CPU-µs per vote).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.tx import decode_tx  # noqa: E402
from tests.node.netkit import LocalNet, wait_for  # noqa: E402
from tests.node.votes import demo_plan, make_batches  # noqa: E402
from tests.transparency.chainkit import testnet_chain_builder  # noqa: E402

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")


def build_chain(net: LocalNet, votes: int, block_votes: int) -> tuple[int, float]:
    """Write the chain into validator-0's data directory; return (height, seconds)."""
    started = time.perf_counter()
    plan = demo_plan(net.directory)
    batches = make_batches(plan, votes, block_votes, processes=2)
    with testnet_chain_builder(net.directory, net.validators, net.homes["validator-0"] / "data") as builder:
        time_ms = builder.genesis.params.genesis_time_ms
        for batch in batches:
            time_ms += 5
            builder.add_block([decode_tx(raw) for raw in batch], time_ms=time_ms, checked=lambda _h: True)
        height = builder.ledger.height
    for name in ("validator-1", "validator-2"):
        shutil.copytree(net.homes["validator-0"] / "data", net.homes[name] / "data")
    return height, time.perf_counter() - started


def log_moment(path: Path, needle: str) -> float | None:
    for line in path.read_text(errors="replace").splitlines():
        if needle in line:
            match = LOG_TIME.match(line)
            if match:
                return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--block-votes", type=int, default=500, help="ballots per block")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    directory = args.dir or Path(tempfile.mkdtemp(prefix="veche-catchup-"))
    net = LocalNet(directory / "net", validators=4, observers=0)
    try:
        height, build_seconds = build_chain(net, args.votes, args.block_votes)
        if not args.json:
            print(f"built {height} blocks with {args.votes} ballots offline in {build_seconds:.1f} s", flush=True)
        for name in ("validator-0", "validator-1", "validator-2"):
            net.start(name)
        for name in ("validator-0", "validator-1", "validator-2"):
            net.wait_up(name)
        started = time.time()
        net.start("validator-3")
        wait_for(lambda: net.height("validator-3") >= height, 900, "validator-3 to catch up", interval=0.05)
        finished = time.time()
        cpu = net.cpu_seconds("validator-3")
        log = net.homes["validator-3"] / "node.log"
        sync_start = log_moment(log, "block sync: from height")
        # the node logs the end of a sync after the last block it fetched, which may be after the
        # height this script waited for (heartbeat blocks keep coming): wait for that line
        try:
            wait_for(lambda: log_moment(log, "block sync: reached height") is not None, 60, "the sync's last log line")
        except AssertionError:
            pass
        sync_end = log_moment(log, "block sync: reached height")
        result = {
            "votes": args.votes,
            "blocks": height,
            "ballots_per_block": args.block_votes,
            "seconds_from_process_start": round(finished - started, 2),
            "votes_per_s_from_process_start": round(args.votes / (finished - started)),
            "blocks_per_s_from_process_start": round(height / (finished - started)),
            "sync_seconds": round(sync_end - sync_start, 2) if sync_start and sync_end else None,
            "votes_per_s_sync": round(args.votes / (sync_end - sync_start)) if sync_start and sync_end else None,
            "blocks_per_s_sync": round(height / (sync_end - sync_start)) if sync_start and sync_end else None,
            "cpu_seconds_syncing_process": round(cpu, 2),
            "cpu_us_per_vote": round(cpu * 1e6 / args.votes, 1),
            "block_hash_matches_at_height": net.block_hash("validator-3", height) == net.block_hash("validator-0", height),
        }
    finally:
        net.close()
        if not args.keep and args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:<32} {value}")


if __name__ == "__main__":
    main()
