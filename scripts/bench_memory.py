"""Benchmark validator memory: the resting RSS of a validator holding N votes (default 1,000,000).

    .venv/bin/python scripts/bench_memory.py [--votes 1000000] [--block-votes 500] [--settle 10] [--dir DIR] [--keep] [--json]

Builds the chain offline the way ``scripts/bench_catchup.py`` does — real signed registrations and
ballots (fresh voter keys, the testnet gateway key, signed in a pool of 2 processes), blocks of
``--block-votes`` ballots with quorum commit certificates signed by the testnet validator keys,
committed through ``Ledger.build_block``/``Ledger.commit`` into validator-0's data directory of a
4-validator testnet layout. Batches are generated and committed in a bounded window, so the
builder never holds the whole chain in memory.

Then validator-0 starts alone (``python -m node --home DIR/validator-0``): it has no quorum, so it
only opens its chain and waits for peers. Once ``GET /api/v1/status`` answers with the full height
the script calls a few routes (status, the campaign's tally, a block), waits ``--settle`` seconds
and reads VmRSS / VmHWM from ``/proc/<pid>/status``. Also prints the LevelDB size on disk.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.tx import decode_tx  # noqa: E402
from tests.node.netkit import LocalNet, get_json, http_get, wait_for  # noqa: E402
from tests.node.votes import demo_plan, make_batch  # noqa: E402
from tests.transparency.chainkit import testnet_chain_builder  # noqa: E402


def build_chain(net: LocalNet, votes: int, block_votes: int, processes: int = 2,
                progress: bool = True) -> tuple[int, str, float]:
    """Write the chain into validator-0's data directory; return (height, campaign id, seconds)."""
    started = time.perf_counter()
    plan = demo_plan(net.directory)
    sizes = [min(block_votes, votes - start) for start in range(0, votes, block_votes)]
    with testnet_chain_builder(net.directory, net.validators, net.homes["validator-0"] / "data") as builder:
        time_ms = builder.genesis.params.genesis_time_ms
        window = processes * 4
        with ProcessPoolExecutor(processes) as pool:
            pending: deque[Future[list[bytes]]] = deque()
            next_index = 0
            done = 0
            while next_index < len(sizes) or pending:
                while next_index < len(sizes) and len(pending) < window:
                    pending.append(pool.submit(make_batch, plan, sizes[next_index], next_index))
                    next_index += 1
                batch = pending.popleft().result()
                time_ms += 5
                builder.add_block([decode_tx(raw) for raw in batch], time_ms=time_ms, checked=lambda _h: True)
                done += 1
                if progress and done % 100 == 0:
                    elapsed = time.perf_counter() - started
                    print(f"  {done}/{len(sizes)} blocks, {elapsed:.0f} s", file=sys.stderr, flush=True)
        height = builder.ledger.height
    return height, plan.campaign_id, time.perf_counter() - started


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of a process, in kB."""
    result = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            result[key] = int(value.split()[0])
    return result


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--block-votes", type=int, default=500, help="ballots per block")
    parser.add_argument("--processes", type=int, default=2, help="signing pool size")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait before reading RSS")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    directory = args.dir or Path(tempfile.mkdtemp(prefix="veche-memory-"))
    net = LocalNet(directory / "net", validators=4, observers=0)
    name = "validator-0"
    try:
        height, campaign, build_seconds = build_chain(net, args.votes, args.block_votes, args.processes,
                                                      progress=not args.json)
        if not args.json:
            print(f"built {height} blocks with {args.votes} ballots offline in {build_seconds:.1f} s", flush=True)
        data_bytes = dir_size(net.homes[name] / "data")
        start = time.perf_counter()
        net.start(name)
        net.wait_up(name, timeout=600)
        wait_for(lambda: net.height(name) >= height, 600, f"{name} to report height {height}", interval=0.1)
        up_seconds = time.perf_counter() - start
        pid = net.pid(name)
        after_start = proc_memory(pid)
        url = net.urls[name]
        calls = {}
        for route in ("/api/v1/status", f"/api/v1/campaigns/{campaign}", f"/api/v1/campaigns/{campaign}/tally",
                      f"/api/v1/blocks/{height}", f"/api/v1/blocks/{max(1, height // 2)}", "/metrics"):
            t0 = time.perf_counter()
            code, body = http_get(url + route, 60.0)
            calls[route] = (code, len(body), round((time.perf_counter() - t0) * 1000, 1))
        tally = get_json(f"{url}/api/v1/campaigns/{campaign}/tally", 60.0)
        time.sleep(args.settle)
        settled = proc_memory(pid)
        result = {
            "votes": args.votes,
            "blocks": height,
            "ballots_per_block": args.block_votes,
            "build_seconds": round(build_seconds, 1),
            "start_to_status_at_height_s": round(up_seconds, 2),
            "rss_after_start_mb": round(after_start["VmRSS"] / 1024, 1),
            "rss_settled_mb": round(settled["VmRSS"] / 1024, 1),
            "hwm_mb": round(settled["VmHWM"] / 1024, 1),
            "leveldb_mb": round(data_bytes / 1e6, 1),
            "tally_keys": sorted(tally)[:8] if isinstance(tally, dict) else type(tally).__name__,
            "routes": {route: {"status": c, "bytes": n, "ms": ms} for route, (c, n, ms) in calls.items()},
        }
    finally:
        net.close()
        if not args.keep and args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'measure':<32} value")
    for key, value in result.items():
        if key == "routes":
            continue
        print(f"{key:<32} {value}")
    print(f"{'route':<48} {'status':>6} {'bytes':>9} {'ms':>8}")
    for route, info in result["routes"].items():
        print(f"{route:<48} {info['status']:>6} {info['bytes']:>9} {info['ms']:>8}")


if __name__ == "__main__":
    main()
