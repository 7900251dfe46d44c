"""Block sync: certified blocks from peers; a peer serving forged blocks is benched, the next is used."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from chain import codec
from chain.block import Block, CommitCertificate
from chain.ledger import Ledger
from chain.storage import MemoryStore
from node.chain_app import ChainApp, CommittedBlock
from node.mempool import Mempool
from node.metrics import NodeMetrics
from node.sync import BlockSync
from tests.node.chainfix import NOW, Chain, make_chain
from tests.transparency.chainkit import certify


def grow(chain: Chain, blocks: int) -> None:
    for index in range(blocks):
        voters = chain.voters(3)
        chain.builder.add_block([chain.register(voters)] + [chain.vote(v) for v in voters],
                                time_ms=NOW - 10_000 + index * 10)


def range_bytes(entries: list[tuple[Block, CommitCertificate]]) -> bytes:
    return codec.encode([[block.to_wire(), certificate.to_wire()] for block, certificate in entries])


def source_app(chain: Chain, *, forge: str | None = None, asked: list[int] | None = None) -> web.Application:
    ledger = chain.ledger

    async def status(request: web.Request) -> web.Response:
        return web.json_response({"height": ledger.height})

    async def blocks(request: web.Request) -> web.Response:
        first, last = int(request.query["from"]), min(int(request.query["to"]), ledger.height)
        if asked is not None:
            asked.extend(range(first, last + 1))
        entries = []
        for height in range(first, last + 1):
            block, certificate = ledger.block(height), ledger.certificate(height)
            assert block is not None and certificate is not None
            if forge == "certificate" and height == 3:
                certificate = certify(chain.genesis, chain.keys, block, signers=[0])  # one signature only
            if forge == "data" and height == 3:
                block = replace(block, txs=block.txs[:-1])  # drops a ballot: tx root no longer matches
            entries.append((block, certificate))
        if forge == "garbage":
            return web.Response(body=b"\x93\x01\x02", content_type="application/octet-stream")
        return web.Response(body=range_bytes(entries), content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/api/v1/status", status)
    app.router.add_get("/api/v1/blocks/raw", blocks)
    return app


def fresh_follower(chain: Chain) -> ChainApp:
    ledger = Ledger(MemoryStore(), chain.genesis.params)
    pool = Mempool(ledger, max_txs=1000, max_bytes=1 << 24, clock_ms=lambda: NOW)
    return ChainApp(ledger, pool, max_block_txs=100)


def run_sync(chain: Chain, sources: list[web.Application]) -> tuple[ChainApp, BlockSync, list[int]]:
    follower = fresh_follower(chain)
    synced: list[int] = []
    blocks: list[CommittedBlock] = []

    async def main() -> BlockSync:
        servers = [TestServer(app, host="127.0.0.1") for app in sources]
        for server in servers:
            await server.start_server()
        names = [(f"peer-{i}", str(server.make_url("")).rstrip("/")) for i, server in enumerate(servers)]
        sync = BlockSync(follower, names, NodeMetrics(), poll_interval_s=0.05, on_synced=synced.append,
                         on_block=blocks.append)
        try:
            async with aiohttp.ClientSession() as session:
                sync.attach(session)
                task = asyncio.create_task(sync.run())
                for _ in range(500):
                    if follower.ledger.height >= chain.ledger.height:
                        break
                    await asyncio.sleep(0.02)
                task.cancel()
        finally:
            for server in servers:
                await server.close()
        return sync

    sync = asyncio.run(main())
    assert len(blocks) == follower.ledger.height
    return follower, sync, synced


def test_catches_up_from_an_honest_peer() -> None:
    chain = make_chain()
    grow(chain, 5)
    follower, sync, synced = run_sync(chain, [source_app(chain)])
    assert follower.ledger.height == chain.ledger.height
    assert follower.ledger.app_hash == chain.ledger.app_hash
    assert synced and synced[-1] == chain.ledger.height


def test_forged_blocks_bench_the_peer_and_the_next_one_serves() -> None:
    for forge in ("certificate", "data", "garbage"):
        chain = make_chain()
        grow(chain, 4)
        asked: list[int] = []
        follower, sync, _ = run_sync(chain, [source_app(chain, forge=forge, asked=asked), source_app(chain)])
        assert follower.ledger.height == chain.ledger.height, forge
        assert follower.ledger.app_hash == chain.ledger.app_hash
        forged_served = 3 in asked or (forge == "garbage" and bool(asked))
        assert (sync.metrics.sync_bad_peer.value("peer-0") >= 1) == forged_served, forge
        assert sync.metrics.sync_bad_peer.value("peer-1") == 0


def test_only_forging_peers_apply_nothing_forged() -> None:
    chain = make_chain()
    grow(chain, 4)
    follower = fresh_follower(chain)

    async def main() -> None:
        server = TestServer(source_app(chain, forge="certificate"), host="127.0.0.1")
        await server.start_server()
        sync = BlockSync(follower, [("liar", str(server.make_url("")).rstrip("/"))], NodeMetrics(),
                         poll_interval_s=0.05, on_synced=lambda h: None, on_block=lambda b: None)
        async with aiohttp.ClientSession() as session:
            sync.attach(session)
            sync.request(chain.ledger.height)
            await asyncio.wait_for(sync.catch_up(), 10)
        await server.close()
        assert sync.sources[0].benched_until > 0

    asyncio.run(main())
    assert follower.ledger.height == 2  # blocks below the forged one are genuine and kept
    stored, original = follower.ledger.block(2), chain.ledger.block(2)
    assert stored is not None and original is not None and stored.hash() == original.hash()
