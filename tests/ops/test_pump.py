"""TxPump and CommitWatcher: many transactions, a node that swallows them, re-sending elsewhere."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.test_utils import TestServer

from chain.crypto import SigningKey, read_key_file
from chain.tx import (
    BallotSpec, CampaignCreate, District, InitiativeSubmit, RuleSpec, make_registration, make_vote, sign_tx,
)
from node.client import CommitWatcher, NodeClient, TxPump
from tests.transparency.fakenode import ThreadedTestnet


async def black_hole() -> TestServer:
    """A node that accepts every transaction and never passes any on."""
    async def accept(request: web.Request) -> web.StreamResponse:
        from chain import codec
        from chain.crypto import sha256

        raws = codec.decode(await request.read())
        return web.json_response({"accepted": [sha256(raw).hex() for raw in raws], "rejected": []})

    app = web.Application()
    app.router.add_post("/api/v1/txs", accept)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def test_pump_resends_what_a_node_swallowed(fake_testnet: ThreadedTestnet) -> None:
    directory = fake_testnet.directory
    committee = read_key_file(directory / "keys" / "committee-0.json")
    gateway = read_key_file(directory / "gateway" / "gateway-key.json")
    chain_id = fake_testnet.network.genesis.chain_id
    now = int(time.time() * 1000)
    start = now + 6000   # the setup may take a re-send (1 s) or two before voting opens
    campaign = CampaignCreate("pump", "Pump", "adult", (District("d", "D", 10**6),), BallotSpec("choose-1", 1, 1),
                              RuleSpec("greedy", "district", 0, 0, 0), 1, 10**9, (), now - 1000, start, start,
                              start + 3_600_000, gateway.public_key, 10_000, "campaign")
    setup = [sign_tx("campaign.create", chain_id, campaign, [committee]),
             sign_tx("initiative.submit", chain_id, InitiativeSubmit("pump", "a", "d", "A", "c", 5, "", b""),
                     [committee])]
    voters = [SigningKey.generate() for _ in range(90)]
    registration = make_registration(chain_id, gateway, "pump", [v.public_key for v in voters])
    votes = [make_vote(chain_id, voter, "pump", "d", ["a"]) for voter in voters]

    async def run() -> TxPump:
        hole = await black_hole()
        real = fake_testnet.url(0)
        try:
            async with NodeClient(real) as watch_client, NodeClient([str(hole.make_url("")), real]) as client:
                watcher = CommitWatcher(watch_client, 0)
                watcher.start()
                pump = TxPump(client, watcher, batch_size=20, concurrency=2, resend_after=1.0)
                pump.start()
                try:
                    pump.send([(tx.hash.hex(), tx.raw) for tx in setup])
                    await pump.drain([tx.hash.hex() for tx in setup], timeout=30)
                    await asyncio.sleep(max(0.0, start / 1000 - time.time()) + 0.1)
                    pump.send([(registration.hash.hex(), registration.raw)])
                    await pump.drain([registration.hash.hex()], timeout=30)
                    pump.send([(vote.hash.hex(), vote.raw) for vote in votes])
                    pump.send([(votes[0].hash.hex(), votes[0].raw)])   # sent twice: one transaction
                    await pump.drain([vote.hash.hex() for vote in votes], timeout=60)
                finally:
                    await pump.stop()
                    await watcher.stop()
        finally:
            await hole.close()
        return pump

    pump = asyncio.run(run())
    assert not pump.stats.failed, list(pump.stats.failed.values())[:3]
    assert pump.stats.submitted == len(setup) + 1 + len(votes)
    assert pump.committed == pump.stats.submitted
    assert pump.stats.resent > 0   # what went to the black hole was re-sent to the real node
    assert fake_testnet.network.ledger.state.campaigns["pump"].total_ballots == len(votes)
