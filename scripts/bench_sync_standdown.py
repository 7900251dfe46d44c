"""Model of block sync after a validator caught up: does it chase blocks consensus is committing?

    .venv/bin/python scripts/bench_sync_standdown.py [--seconds 30] [--block-s 0.5] [--lag-s 0.35] [--wiring old|new]

A real ``BlockSync`` (real HTTP, real certificate checks) follows one source whose chain grows by one
block every ``--block-s``; the follower's consensus (modelled) commits each block ``--lag-s`` after
the source did — behind, but progressing — and every 2 s while it is behind the engine's
``PeerAhead`` (validators working at the source's height + 1) reaches the node, as
``Engine._check_peer_ahead`` emits it after its grace period. Prints the range fetches and the blocks
block sync took from consensus. ``--wiring old`` is the node before block sync stood down: it asked
for the working height (a block that does not exist yet) and told block sync nothing of consensus
commits.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain import codec  # noqa: E402
from node.metrics import NodeMetrics  # noqa: E402
from node.sync import BlockSync  # noqa: E402
from tests.node.chainfix import make_chain  # noqa: E402
from tests.node.test_sync import fresh_follower, grow  # noqa: E402

PEER_AHEAD_EVERY_S = 2.0  # the engine's rebroadcast_ms
START_HEIGHT = 3


async def run(seconds: float, block_s: float, lag_s: float, new_wiring: bool) -> dict[str, float]:
    chain = make_chain()
    grow(chain, int(seconds / block_s) + 10)
    ledger = chain.ledger
    follower = fresh_follower(chain)
    for height in range(1, START_HEIGHT + 1):
        block, certificate = ledger.block(height), ledger.certificate(height)
        assert block is not None and certificate is not None
        follower.apply_synced(block, certificate)
    started = time.monotonic()

    def source_height() -> int:
        return min(ledger.height, START_HEIGHT + int((time.monotonic() - started) / block_s))

    async def status(request: web.Request) -> web.Response:
        return web.json_response({"height": source_height()})

    async def blocks(request: web.Request) -> web.Response:
        first, last = int(request.query["from"]), min(int(request.query["to"]), source_height())
        entries = []
        for height in range(first, last + 1):
            block, certificate = ledger.block(height), ledger.certificate(height)
            assert block is not None and certificate is not None
            entries.append([block.to_wire(), certificate.to_wire()])
        return web.Response(body=codec.encode(entries), content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/api/v1/status", status)
    app.router.add_get("/api/v1/blocks/raw", blocks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    metrics = NodeMetrics()
    taken: list[int] = []
    sync = BlockSync(follower, [(f"validator-{i}", url) for i in range(3)], metrics, poll_interval_s=2.0,
                     on_synced=lambda height: None, on_block=lambda committed: taken.append(committed.height),
                     lag_tolerance=1)
    committed_by_consensus = 0
    try:
        async with aiohttp.ClientSession() as session:
            sync.attach(session)
            task = asyncio.create_task(sync.run())
            next_peer_ahead = started + 1.0
            while time.monotonic() < started + seconds:
                now = time.monotonic()
                height = follower.ledger.height + 1
                if height <= ledger.height and now >= started + (height - START_HEIGHT) * block_s + lag_s:
                    block, certificate = ledger.block(height), ledger.certificate(height)
                    assert block is not None and certificate is not None
                    follower.apply_synced(block, certificate)  # what consensus commits
                    committed_by_consensus += 1
                    if new_wiring:
                        sync.consensus_committed()
                if now >= next_peer_ahead:
                    next_peer_ahead = now + PEER_AHEAD_EVERY_S
                    working = source_height() + 1
                    if follower.ledger.height < working - 1:
                        sync.request(working - 1 if new_wiring else working)
                await asyncio.sleep(0.01)
            task.cancel()
    finally:
        await server.close()
    return {"seconds": seconds, "height": follower.ledger.height, "sync_fetches": metrics.sync_fetches.value(),
            "blocks_taken_by_sync": len(taken), "blocks_committed_by_consensus": committed_by_consensus}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--block-s", type=float, default=0.5)
    parser.add_argument("--lag-s", type=float, default=0.35)
    parser.add_argument("--wiring", choices=("old", "new"), default="new")
    args = parser.parse_args()
    result = asyncio.run(run(args.seconds, args.block_s, args.lag_s, args.wiring == "new"))
    print(f"wiring {args.wiring}: " + ", ".join(f"{key} {value:g}" for key, value in result.items()))


if __name__ == "__main__":
    main()
