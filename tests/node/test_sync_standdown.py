"""Block sync stands down while consensus is committing within the lag tolerance, and asks for what
exists: ``PeerAhead(h)`` (validators working at ``h``) means block ``h - 1`` is committed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from chain.block import STEP_PREVOTE
from chain.crypto import read_key_file
from consensus.messages import make_vote
from consensus.signing_state import SigningState
from node.config import load_config
from node.metrics import NodeMetrics
from node.signing_state import SigningStateFile
from node.sync import CONSENSUS_PROGRESS_S, BlockSync, is_standing_down
from tests.node.apphost import make_testnet, serve_node, until
from tests.node.chainfix import make_chain
from tests.node.test_sync import fresh_follower, grow, source_app


def test_standing_down_needs_progress_and_a_lag_within_the_tolerance() -> None:
    assert is_standing_down(11, 10, 1, consensus_at=100.0, now=100.5)
    assert is_standing_down(10, 10, 0, consensus_at=100.0, now=100.0 + CONSENSUS_PROGRESS_S - 0.01)
    assert not is_standing_down(12, 10, 1, consensus_at=100.0, now=100.5)          # too far behind
    assert not is_standing_down(11, 10, 0, consensus_at=100.0, now=100.5)          # observers: no tolerance
    assert not is_standing_down(11, 10, 1, consensus_at=None, now=100.5)           # consensus never committed
    assert not is_standing_down(11, 10, 1, consensus_at=100.0, now=100.0 + CONSENSUS_PROGRESS_S)  # stalled


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_request_within_the_tolerance_is_left_to_progressing_consensus_and_fetched_once_it_stalls() -> None:
    chain = make_chain()
    grow(chain, 5)
    top = chain.ledger.height
    follower = fresh_follower(chain)
    for height in range(1, top):  # the follower has all but the last block
        block, certificate = chain.ledger.block(height), chain.ledger.certificate(height)
        assert block is not None and certificate is not None
        follower.apply_synced(block, certificate)
    status_calls: list[int] = []
    source = source_app(chain)

    @web.middleware
    async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.path.endswith("/status"):
            status_calls.append(1)
        return await handler(request)

    source.middlewares.append(count)
    clock = FakeClock()
    metrics = NodeMetrics()

    async def main() -> None:
        server = TestServer(source, host="127.0.0.1")
        await server.start_server()
        sync = BlockSync(follower, [("peer", str(server.make_url("")).rstrip("/"))], metrics, poll_interval_s=0.02,
                         on_synced=lambda h: None, on_block=lambda c: None, lag_tolerance=1, clock=clock)
        sync.consensus_committed()  # consensus committed block top - 1 just now
        try:
            async with aiohttp.ClientSession() as session:
                sync.attach(session)
                task = asyncio.create_task(sync.run())
                await until(lambda: sync.target == top and len(status_calls) >= 2, 10, "first status polls")
                assert follower.ledger.height == top - 1 and metrics.sync_fetches.value() == 0
                sync.request(top)  # PeerAhead(top + 1): consensus is committing, one block behind
                seen = len(status_calls)
                await until(lambda: len(status_calls) >= seen + 3 and not sync.syncing, 10, "idle polls")
                assert metrics.sync_fetches.value() == 0 and follower.ledger.height == top - 1
                clock.now += CONSENSUS_PROGRESS_S  # consensus stalled: the next PeerAhead fetches
                sync.request(top)
                await until(lambda: follower.ledger.height == top, 10, "the block fetched")
                task.cancel()
        finally:
            await server.close()

    asyncio.run(main())


def test_peer_ahead_asks_block_sync_for_the_committed_height_not_the_working_one(tmp_path: Path) -> None:
    layout = make_testnet(tmp_path / "net", validators=4, demo=False)
    homes = {node.name: node.home for node in layout.nodes}
    keys = {index: read_key_file(homes[f"validator-{index}"] / "node-key.json") for index in (1, 2)}

    async def main() -> None:
        async with serve_node(homes["validator-0"]) as (node, _):
            assert node.driver is not None
            await until(lambda: node.driver is not None and node.driver.engine.height == 1, 10, "engine at 1")
            for index, key in keys.items():  # two validators (⌊n/3⌋+1) prevote at height 3
                node.driver.deliver(index, make_vote(node.chain_id, STEP_PREVOTE, 3, 0, None, index, key.sign))
            await until(lambda: node.sync.target > 0, 10, "PeerAhead handed to block sync")
            assert node.sync.target == 2  # they are working at 3: block 2 is the newest that can exist

    asyncio.run(main())


def test_a_wiped_validator_asks_block_sync_for_the_height_below_its_signing_state_unprompted(tmp_path: Path) -> None:
    """Seed (4, 14071) on a real node: the data directory is gone, the signing state says the validator
    signed at height 3. It signs nothing below that height, so no peer hears from it there or helps it,
    and its peers may be too few, and too close, for ``PeerAhead`` or the status poll's lag tolerance.
    Its own signing state proves block 2 exists: block sync is asked for it without any peer message."""
    layout = make_testnet(tmp_path / "net", validators=4, demo=False)
    home = {node.name: node.home for node in layout.nodes}["validator-0"]
    config, _ = load_config(home)
    SigningStateFile(config.signing_state_file).store(SigningState(height=3, round=0, step=STEP_PREVOTE))

    async def main() -> None:
        async with serve_node(home) as (node, _):
            assert node.driver is not None and node.ledger.height == 0
            await until(lambda: node.sync.target > 0, 10, "the signing state's height handed to block sync")
            assert node.sync.target == 2

    asyncio.run(main())
