"""Every route parameter that takes a number refuses Unicode digits with a typed 400 (never a 500)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote

import pytest

from genesis.demo import CHILDREN_CAMPAIGN_ID
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
