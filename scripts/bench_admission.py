"""Benchmark one node's admission path: decode + verify + check-state apply, with and without threads.

    .venv/bin/python scripts/bench_admission.py [--votes 20000] [--batch 500] [--threads 0 2] [--json]

Runs ``Mempool.admit`` in-process on a real ledger (LevelDB in a temporary folder) with fresh voter
keys (each ballot's key is loaded from bytes, as in production), pre-generated before timing.
Prints admitted votes/s, CPU-µs per vote (process CPU time) and the CPU-to-wall ratio for each
``verify_threads`` setting, answering whether a thread pool pays off on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.ledger import Ledger  # noqa: E402
from chain.storage import LevelStore  # noqa: E402
from genesis.model import load_genesis  # noqa: E402
from genesis.testnet import init_testnet  # noqa: E402
from node.mempool import Mempool  # noqa: E402
from tests.node.votes import demo_plan, make_batches  # noqa: E402


def measure(directory: Path, batches: list[list[bytes]], threads: int) -> dict[str, float]:
    genesis = load_genesis(directory / "genesis.json")
    store = LevelStore(directory / f"data-{threads}")
    try:
        ledger = Ledger(store, genesis.params)
        pool = Mempool(ledger, max_txs=10**7, max_bytes=1 << 34, verify_threads=threads)

        async def run() -> int:
            accepted = 0
            for batch in batches:
                accepted += len((await pool.admit(batch)).accepted)
            return accepted

        cpu, wall = time.process_time(), time.perf_counter()
        accepted = asyncio.run(run())
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        pool.close()
    finally:
        store.close()
    votes = sum(len(b) - 1 for b in batches)
    return {"verify_threads": threads, "accepted": accepted, "votes_per_s": round(votes / wall),
            "cpu_us_per_vote": round(cpu * 1e6 / votes, 1), "cpu_per_wall": round(cpu / wall, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--threads", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tokens", action="store_true",
                        help="voter-held ballots, each with a blind token (one tokens.issued per batch)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="veche-admission-") as folder:
        directory = Path(folder) / "net"
        init_testnet(directory, validators=1, observers=0, base_port=40000, demo=True)
        plan = demo_plan(directory)
        tokens = directory / "gateway" / "certification-key.json" if args.tokens else None
        batches = make_batches(plan, args.votes, args.batch, processes=2, tokens=tokens)
        results = [measure(directory, batches, threads) for threads in args.threads]
    if args.json:
        print(json.dumps(results))
        return
    for result in results:
        print("  ".join(f"{key}={value}" for key, value in result.items()))


if __name__ == "__main__":
    main()
