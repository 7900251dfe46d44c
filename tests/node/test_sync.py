"""Block sync: certified blocks from peers; a peer serving forged blocks is benched, the next is used."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from chain import block as block_module
from chain import codec
from chain import ledger as ledger_module
from chain.block import Block, CommitCertificate
from chain.crypto import sha256
from chain.ledger import Ledger
from chain.storage import LevelStore, MemoryStore
from node.chain_app import ChainApp, CommittedBlock
from node.mempool import Mempool
from node.metrics import NodeMetrics
from node import sync as sync_module
from node.sync import BlockSync
from tests.node.chainfix import NOW, Chain, make_chain
from tests.paths import REPO_ROOT as ROOT
from tests.transparency.chainkit import ChainBuilder, certify


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
                    if follower.ledger.height >= chain.ledger.height and synced:
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


class CountingStore(MemoryStore):
    """Counts synced writes: each one is an fsync on LevelDB."""

    def __init__(self) -> None:
        super().__init__()
        self.synced_writes = 0

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        super().write(changes, sync=sync)
        self.synced_writes += 1 if sync else 0


def test_a_fetched_range_lands_in_one_synced_write_with_every_certificate_checked() -> None:
    chain = make_chain()
    grow(chain, 8)
    store = CountingStore()
    ledger = Ledger(store, chain.genesis.params)
    follower = ChainApp(ledger, Mempool(ledger, max_txs=1000, max_bytes=1 << 24, clock_ms=lambda: NOW),
                        max_block_txs=100)
    before = store.synced_writes  # the genesis record
    checked: list[int] = []
    original = block_module.verify_certificate

    def counting_verify(certificate: CommitCertificate, *args: Any, **kwargs: Any) -> None:
        checked.append(certificate.height)
        original(certificate, *args, **kwargs)

    async def main() -> None:
        server = TestServer(source_app(chain), host="127.0.0.1")
        await server.start_server()
        sync = BlockSync(follower, [("peer", str(server.make_url("")).rstrip("/"))], NodeMetrics(),
                         poll_interval_s=0.05, on_synced=lambda h: None, on_block=lambda b: None)
        async with aiohttp.ClientSession() as session:
            sync.attach(session)
            sync.request(chain.ledger.height)
            await asyncio.wait_for(sync.catch_up(), 30)
        await server.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ledger_module, "verify_certificate", counting_verify)
        asyncio.run(main())
    assert ledger.height == chain.ledger.height == 10
    assert ledger.app_hash == chain.ledger.app_hash
    assert store.synced_writes - before == 1  # ten blocks, one fsync
    # each block's own certificate, and the last commit it carries (from block 2 on)
    assert sorted(checked) == sorted(list(range(1, 11)) + list(range(1, 10)))


CRASHING_FOLLOWER = """
import asyncio, os, signal, sys
import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from chain.ledger import Ledger
from chain.storage import LevelStore
from genesis.model import load_genesis
from node import sync as sync_module
from node.chain_app import ChainApp
from node.mempool import Mempool
from node.metrics import NodeMetrics

source_dir, follower_dir, genesis_file, range_blocks, kill_at = sys.argv[1:6]
params = load_genesis(genesis_file).params
source = Ledger(LevelStore(source_dir), params)
follower = Ledger(LevelStore(follower_dir), params)
app = ChainApp(follower, Mempool(follower, max_txs=1000, max_bytes=1 << 24), max_block_txs=100)
sync_module.RANGE_BLOCKS = int(range_blocks)

async def blocks(request):
    first, last = int(request.query["from"]), min(int(request.query["to"]), source.height)
    body = b"".join(source.raw_block_with_certificate(h) for h in range(first, last + 1))
    count = last - first + 1
    header = bytes([0x90 | count]) if count < 16 else b"\\xdc" + count.to_bytes(2, "big")
    return web.Response(body=header + body, content_type="application/octet-stream")

async def status(request):
    return web.json_response({"height": source.height})

def on_block(committed):
    print("applied", committed.height, flush=True)
    if committed.height == int(kill_at):
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of a range

async def main():
    web_app = web.Application()
    web_app.router.add_get("/api/v1/blocks/raw", blocks)
    web_app.router.add_get("/api/v1/status", status)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    sync = sync_module.BlockSync(app, [("source", str(server.make_url("")).rstrip("/"))], NodeMetrics(),
                                 poll_interval_s=0.05, on_synced=lambda h: None, on_block=on_block)
    async with aiohttp.ClientSession() as session:
        sync.attach(session)
        sync.request(source.height)
        await sync.catch_up()

asyncio.run(main())
"""


def test_kill_9_in_the_middle_of_a_range_leaves_the_ledger_at_a_range_boundary(tmp_path: Path) -> None:
    chain = make_chain()
    genesis_file = tmp_path / "genesis.json"
    genesis_file.write_text(json.dumps(chain.genesis.document), encoding="utf-8")
    source_store = LevelStore(tmp_path / "source")
    source = ChainBuilder(source_store, chain.genesis, chain.keys)
    for height in (1, 2):  # the campaign and its initiatives, as make_chain built them
        block, certificate = chain.ledger.block(height), chain.ledger.certificate(height)
        assert block is not None and certificate is not None
        source.ledger.apply_synced(block, certificate)
    source.last_certificate = source.ledger.certificate(2)
    grow(Chain(chain.keys, chain.genesis, source), 12)
    expected = [(source.ledger.block(h), source.ledger.certificate(h)) for h in range(1, 15)]
    source_store.close()

    child = subprocess.run([sys.executable, "-c", CRASHING_FOLLOWER, str(tmp_path / "source"),
                            str(tmp_path / "follower"), str(genesis_file), "5", "8"],
                           cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode(errors="replace")[-2000:]
    applied = [int(line.split()[1]) for line in child.stdout.decode().splitlines() if line.startswith("applied")]
    assert applied == list(range(1, 9))  # blocks 6-8 were applied (and readable) when it died

    store = LevelStore(tmp_path / "follower")
    try:
        ledger = Ledger(store, chain.genesis.params)
        # the range 1-5 was written; 6-8 of the range 6-10 were held in memory and are gone whole
        assert ledger.height == 5
        stored = ledger.block(5)
        assert stored is not None and stored.hash() == expected[4][0].hash()  # type: ignore[union-attr]
        assert ledger.app_hash == stored.header.app_hash and ledger.last_time_ms == stored.header.time_ms
        assert ledger.block(6) is None and ledger.certificate(6) is None
        for block, _ in expected[:5]:
            assert block is not None
            assert all(ledger.tx_location(sha256(raw)) is not None for raw in block.txs)
        for block, _ in expected[5:8]:
            assert block is not None
            assert all(ledger.tx_location(sha256(raw)) is None for raw in block.txs)
        # the state is that of height 5: the rest of the chain applies on it to the source's app hash
        for block, certificate in expected[5:]:
            assert block is not None and certificate is not None
            ledger.apply_synced(block, certificate)
        last = expected[-1][0]
        assert last is not None and ledger.app_hash == last.header.app_hash
        assert ledger.state.votes("c1", "n1") == chain.ledger.state.votes("c1", "n1") + 12 * 3
    finally:
        store.close()


def test_health_ranks_sources_for_the_observers_forwarder() -> None:
    chain = make_chain()
    sync = BlockSync(fresh_follower(chain), [("a", "http://a/"), ("b", "http://b"), ("c", "http://c"),
                                              ("d", "http://d")],
                     NodeMetrics(), poll_interval_s=1, on_synced=lambda h: None, on_block=lambda b: None)
    a, b, c, d = sync.sources
    for source, height in ((a, 100), (b, 99), (c, 96), (d, 100)):
        source.reachable, source.height = True, height
    d.links_down = True
    c_down = sync.health("http://c")
    assert [sync.health("http://a"), sync.health("http://b/"), c_down, sync.health("http://d")] == [0, 0, 1, 1]
    b.reachable = False  # its last status poll failed
    assert sync.health("http://b") == 2
    assert sync.health("http://elsewhere") == 0


def test_a_source_that_never_answers_its_status_does_not_hold_up_block_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_module, "STATUS_TIMEOUT_S", 10.0)  # a frozen peer holds a poll this long
    chain = make_chain()
    grow(chain, 4)
    follower = fresh_follower(chain)

    async def never(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    frozen_app = web.Application()
    frozen_app.router.add_get("/api/v1/status", never)
    frozen_app.router.add_get("/api/v1/blocks/raw", never)

    async def main() -> float:
        frozen, good = TestServer(frozen_app, host="127.0.0.1"), TestServer(source_app(chain), host="127.0.0.1")
        await frozen.start_server()
        await good.start_server()
        sync = BlockSync(follower, [("frozen", str(frozen.make_url("")).rstrip("/")),
                                    ("good", str(good.make_url("")).rstrip("/"))], NodeMetrics(),
                         poll_interval_s=0.05, on_synced=lambda h: None, on_block=lambda b: None)
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            sync.attach(session)
            task = asyncio.create_task(sync.run())
            while follower.ledger.height < chain.ledger.height and time.monotonic() - started < 30:
                await asyncio.sleep(0.02)
            elapsed = time.monotonic() - started
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await good.close()
        await frozen.close()
        return elapsed

    elapsed = asyncio.run(main())
    assert follower.ledger.height == chain.ledger.height
    assert elapsed < 5.0, elapsed  # it waited for the frozen source's status poll: 10 s
