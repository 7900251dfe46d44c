"""The four citizen steps against a fake node: phone → SMS code → district → vote → receipt."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from chain.receipt import verify_receipt
from tests.gateway.harness import PHONE, TX_HASH, gateway_world


def test_full_flow_counts_the_vote_and_serves_a_verifiable_receipt(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                status, home = await citizen.get("/")
                assert status == 200 and "/c/ib-test/d/north" in home
                await citizen.login()
                assert world.outbox()[-1]["to"] == PHONE
                status, page = await citizen.vote("ib-test", "north", ["n2"])
                assert status == 200, page
                tx_hash = TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                assert "Ваш голос учтён" in page
                status, receipt_page = await citizen.get(f"/receipt/{tx_hash}")
                assert status == 200 and "Освещение улицы Мира" in receipt_page
                async with citizen.session.get(f"{world.url}/receipt/{tx_hash}.json") as response:
                    assert response.status == 200
                    receipt = json.loads(await response.text())
                checked = verify_receipt(receipt, world.genesis.params)
                assert checked.tx.body.choices == ("n2",)
                assert world.chain.ledger.state.votes("ib-test", "n2") == 1
                campaign = world.chain.ledger.state.campaigns["ib-test"]
                assert campaign.registered == 1 and campaign.total_ballots == 1
            finally:
                await citizen.close()

    asyncio.run(scenario())
