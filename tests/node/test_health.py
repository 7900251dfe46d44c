"""``GET /healthz`` of real in-process nodes: 503 with the reason while a validator lacks the peer links
a quorum needs or an observer has no source, 200 once the chain commits and the node follows it."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from tests.node.apphost import Client, make_testnet, serve_node, until


async def health(client: Client) -> tuple[int, dict[str, Any]]:
    response = await client.get("/healthz")
    return response.status, await response.json()


async def wait_status(client: Client, wanted: int, timeout: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, document = await health(client)
        if status == wanted:
            return document
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"/healthz stayed {status}: {document}")
        await asyncio.sleep(0.1)


def test_health_follows_peers_and_progress(tmp_path: Path) -> None:
    layout = make_testnet(tmp_path / "net", validators=2, observers=1)
    first, second, observer = (node.home for node in layout.nodes)

    async def main() -> None:
        async with AsyncExitStack() as stack:
            _, watcher = await stack.enter_async_context(serve_node(observer))
            status, document = await health(watcher)
            assert status == 503 and document["role"] == "observer"
            assert "no peer answers (block sync has no source)" in document["reasons"]

            node0, client0 = await stack.enter_async_context(serve_node(first))
            status, document = await health(client0)
            assert status == 503 and document["peers"] == 0 and document["peers_expected"] == 1
            assert "0 of 1 peer links up; a quorum needs 1" in document["reasons"]

            node1, client1 = await stack.enter_async_context(serve_node(second))
            await until(lambda: node0.ledger.height >= 2 and node1.ledger.height >= 2, what="blocks from both")
            for client in (client0, client1):
                document = await wait_status(client, 200)
                assert document["status"] == "ok" and document["reasons"] == [] and document["peers"] == 1
                assert document["last_block_age_ms"] < document["stale_after_ms"]
            document = await wait_status(watcher, 200)
            assert document["height"] >= 1 and document["catching_up"] is False

    asyncio.run(main())
