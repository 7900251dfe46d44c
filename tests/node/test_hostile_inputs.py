"""Hostile input to one in-process node: Unicode digits, msgpack bombs and garbage bodies.

Every route parameter that takes a number refuses Unicode digits with a typed 400 (never a 500);
a transaction batch that nests arrays is refused without building them; bodies that fail to decode
are charged to the sender's budget, so 429 follows.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from genesis.demo import CHILDREN_CAMPAIGN_ID
from node.config import NodeLimits
from node.node import Node
from tests.node.apphost import Client, make_testnet, serve_node

# "¹" passes str.isdigit() but int() refuses it (the 500 this guards against); the others int() takes.
UNICODE_DIGITS = ["¹", "٣", "３", "১২", "1٣"]


def routes(digit: str) -> list[tuple[str, str]]:
    d = quote(digit)
    ballots = f"/api/v1/campaigns/{CHILDREN_CAMPAIGN_ID}/ballots"
    return [(f"/api/v1/blocks/{d}", "bad_height"), (f"/api/v1/blocks/{d}/raw", "bad_height"),
            (f"/api/v1/blocks/raw?from={d}", "bad_height"), (f"/api/v1/blocks/raw?from=1&to={d}", "bad_height"),
            (f"{ballots}?limit={d}", "bad_limit"), (f"{ballots}?after={d}:0", "bad_cursor"),
            (f"{ballots}?after=1:{d}", "bad_cursor")]


@pytest.mark.parametrize("digit", UNICODE_DIGITS)
def test_unicode_digits_are_a_400_on_every_numeric_parameter(tmp_path: Path, digit: str) -> None:
    home = make_testnet(tmp_path / "net").nodes[0].home

    async def main() -> None:
        async with serve_node(home) as (node, client):
            await check(node, client)

    async def check(node: Node, client: Client) -> None:
        for path, code in routes(digit):
            response = await client.get(path)
            document = await response.json()
            assert response.status == 400, (path, response.status, document)
            assert document["error"]["code"] == code, (path, document)
        # the ASCII forms of the same routes work
        assert (await client.get("/api/v1/blocks/raw?from=1")).status == 200
        assert (await client.get(f"/api/v1/campaigns/{CHILDREN_CAMPAIGN_ID}/ballots?limit=3")).status == 200

    asyncio.run(main())


OCTET = {"Content-Type": "application/octet-stream"}


def test_a_nested_array_batch_is_refused_fast_and_garbage_is_charged_until_429(tmp_path: Path) -> None:
    home = make_testnet(tmp_path / "net").nodes[0].home

    async def main() -> None:
        async with serve_node(home, NodeLimits(client_tx_rate=1)) as (node, client):
            # 4 MiB of nested empty arrays: the decoder stops at the first inner array
            bomb = b"\xdd" + (4 * 1024 * 1024 - 5).to_bytes(4, "big") + b"\x90" * (4 * 1024 * 1024 - 5)
            started = time.perf_counter()
            response = await client.post("/api/v1/txs", data=bomb, headers=OCTET)
            elapsed = time.perf_counter() - started
            assert response.status == 400 and (await response.json())["error"]["code"] == "malformed"
            assert elapsed < 0.5, elapsed
            # 4 MiB charged as 5000 transactions: this client's bucket (5000, 1/s) is spent
            garbage = b"\xc1" * (1024 * 1024)
            response = await client.post("/api/v1/txs", data=garbage, headers=OCTET)
            assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
            assert (await response.json())["error"]["code"] == "over_budget"
            assert (await client.get("/api/v1/status")).status == 200

    asyncio.run(main())


def test_small_garbage_bodies_are_charged_too(tmp_path: Path) -> None:
    home = make_testnet(tmp_path / "net").nodes[0].home

    async def main() -> None:
        async with serve_node(home, NodeLimits(client_tx_rate=1)) as (node, client):
            statuses = []
            for _ in range(12):
                response = await client.post("/api/v1/txs", data=b"\xc1" * (1024 * 1024), headers=OCTET)
                statuses.append(response.status)
            assert statuses[0] == 400 and 429 in statuses
            assert statuses[statuses.index(429):] == [429] * (12 - statuses.index(429))

    asyncio.run(main())
