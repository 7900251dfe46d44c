"""Block sync inside a real node (in-process, LevelDB): what it logs and when it stands down."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.node.apphost import make_testnet, serve_node, until
from tests.transparency import chainkit

SYNCED_BLOCKS = 60


def test_a_resync_logs_its_range_not_a_line_per_block(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    layout = make_testnet(tmp_path / "net", validators=4, demo=False)
    names = [node.name for node in layout.nodes]
    homes = {node.name: node.home for node in layout.nodes}
    with chainkit.testnet_chain_builder(tmp_path / "net", names, homes["validator-1"] / "data") as builder:
        time_ms = builder.genesis.params.genesis_time_ms
        for _ in range(SYNCED_BLOCKS):
            time_ms += 5
            builder.add_block([], time_ms=time_ms)

    async def main() -> None:
        # validator-1 serves the chain; two of four validators are no quorum, so validator-0 only syncs
        async with serve_node(homes["validator-1"]), serve_node(homes["validator-0"]) as (follower, _):
            await until(lambda: follower.ledger.height >= SYNCED_BLOCKS, 60, "validator-0 synced")
            await until(lambda: not follower.sync.syncing, 30, "block sync done")

    caplog.set_level(logging.DEBUG, logger="veche")
    asyncio.run(main())
    info = [r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("veche.node")]
    jumps = [r for r in caplog.records if "after block sync" in r.getMessage()]
    assert not [r.getMessage() for r in info if "after block sync" in r.getMessage()]
    assert len(jumps) >= SYNCED_BLOCKS  # one DEBUG line per synced block
    assert any("block sync: reached height" in r.getMessage() for r in info)
    assert len(info) < 40, [r.getMessage() for r in info]
