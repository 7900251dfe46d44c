#!/usr/bin/env python3
"""Benchmark ``veche pabulib export``: the ballots route against the raw-block scan it replaced.

Starts one in-process validator of a fresh demo testnet (real LevelDB, aiohttp on loopback),
commits ``--votes`` ballots to the adult campaign and as many to the children's campaign (other
traffic in the same blocks), then times ``node.pabulib_io.export_campaign`` for the adult campaign
reading ``GET /api/v1/campaigns/{id}/ballots`` pages, and again as against an older node without
that route (``/api/v1/blocks/raw`` scan). Both exports must be the same file. Node and client share
one process and event loop, so each time is the whole work of both ends.

    .venv/bin/python scripts/bench_export.py [--votes 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genesis.demo import CHILDREN_CAMPAIGN_ID  # noqa: E402
from node.client import NodeApiError, NodeClient  # noqa: E402
from node.config import NodeLimits  # noqa: E402
from node.pabulib_io import export_campaign  # noqa: E402
from tests.node.apphost import Client, make_testnet, serve_node  # noqa: E402
from tests.node.votes import demo_plan, encode_batch, make_batches  # noqa: E402

LIMITS = NodeLimits(client_tx_rate=10**6, client_tx_burst=10**6, node_tx_burst=10**6)


async def submit_all(client: Client, batches: list[list[bytes]]) -> str:
    last = ""
    for batch in batches:
        while True:
            response = await client.post("/api/v1/txs", data=encode_batch(batch),
                                         headers={"Content-Type": "application/octet-stream"})
            if response.status in (429, 503):
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            document: dict[str, Any] = await response.json()
            if response.status != 200 or document["rejected"]:
                raise SystemExit(f"submission failed: {response.status} {str(document)[:300]}")
            last = document["accepted"][-1]
            break
    return last


async def wait_committed(client: Client, tx_hash: str) -> None:
    while (await (await client.get(f"/api/v1/txs/{tx_hash}")).json())["status"] != "committed":
        await asyncio.sleep(0.1)


async def no_route(self: NodeClient, campaign_id: str, **options: Any) -> dict[str, Any]:
    raise NodeApiError(404, "not_found", "no route (simulated older node)", "bench")


async def main(votes: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as temporary:
        layout = make_testnet(Path(temporary) / "net")
        home = layout.nodes[0].home
        adult, children = demo_plan(layout.directory), demo_plan(layout.directory, CHILDREN_CAMPAIGN_ID)
        async with serve_node(home, LIMITS) as (node, client):
            started = time.perf_counter()
            adult_batches = make_batches(adult, votes, processes=2)
            children_batches = make_batches(children, votes, processes=2)
            interleaved = [b for pair in zip(adult_batches, children_batches) for b in pair]
            await wait_committed(client, await submit_all(client, interleaved))
            setup = time.perf_counter() - started
            url = str(client.make_url("")).rstrip("/")
            timings: dict[str, list[float]] = {"route": [], "raw_blocks": []}
            files = {}
            original = NodeClient.ballots
            for _ in range(repeat):
                for how in ("route", "raw_blocks"):
                    NodeClient.ballots = original if how == "route" else no_route  # type: ignore[method-assign]
                    begin = time.perf_counter()
                    files[how], tally = await export_campaign([url], adult.campaign_id)
                    timings[how].append(time.perf_counter() - begin)
            NodeClient.ballots = original  # type: ignore[method-assign]
            if files["route"] != files["raw_blocks"] or len(files["route"].votes) != votes:
                raise SystemExit("the two exports differ")
            return {"votes": votes, "other_campaign_votes": votes, "height": node.ledger.height,
                    "setup_s": round(setup, 1),
                    **{f"{how}_s_best": round(min(t), 3) for how, t in timings.items()},
                    **{f"{how}_ballots_per_s": round(votes / min(t)) for how, t in timings.items()}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(main(arguments.votes, arguments.repeat))))
