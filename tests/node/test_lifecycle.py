"""A campaign's whole life on a real in-process validator: created, initiatives submitted, votes,
closed automatically by an empty block when its voting window ends (``deadline_due``), and its
equal-shares result computed off the apply path and published with its hash."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from chain.crypto import SigningKey, read_key_file
from chain.results import compute_equal_shares_result
from chain.tx import ProgressReport, make_registration, make_vote, sign_tx
from genesis.campaign_json import campaign_from_json, initiative_from_json
from node.node import Node
from tests.node.apphost import Client, make_testnet, serve_node, until
from tests.node.votes import encode_batch

OCTET = {"Content-Type": "application/octet-stream"}


async def post(client: Client, raws: list[bytes]) -> dict[str, Any]:
    response = await client.post("/api/v1/txs", data=encode_batch(raws), headers=OCTET)
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def committed(node: Node, tx_hash: bytes) -> None:
    await until(lambda: node.ledger.tx_location(tx_hash) is not None, what="commit")


def test_campaign_closes_at_its_deadline_and_publishes_equal_shares(tmp_path: Path) -> None:
    layout = make_testnet(tmp_path / "net", demo=False)
    home = layout.nodes[0].home
    committee = read_key_file(layout.directory / "keys" / "committee-0.json")
    gateway = read_key_file(layout.gateway.key_file)
    now = int(time.time() * 1000)
    voting_start, voting_end = now + 4_000, now + 9_000
    document = {
        "campaign_id": "parks", "title": "Parks", "track": "adult",
        "districts": [{"district_id": "north", "name": "North", "budget": 300}],
        "ballot": {"type": "approval", "min_choices": 1, "max_choices": 2},
        "rule": {"name": "equal-shares", "scope": "district"},
        "submission_start": now - 60_000, "submission_end": voting_start,
        "voting_start": voting_start, "voting_end": voting_end, "gateway": "gateway",
    }

    async def main() -> None:
        async with serve_node(home) as (node, client):
            chain_id = node.chain_id
            spec = campaign_from_json(document, {"gateway": gateway.public_key})
            create = sign_tx("campaign.create", chain_id, spec, [committee])
            initiatives = [sign_tx("initiative.submit", chain_id, initiative_from_json(
                {"campaign_id": "parks", "initiative_id": iid, "district_id": "north", "title": iid.title(),
                 "category": "parks", "cost": cost}), [committee]) for iid, cost in (("a", 200), ("b", 100),
                                                                                     ("c", 150))]
            assert (await post(client, [create.raw]))["rejected"] == []
            await committed(node, create.hash)
            assert (await post(client, [tx.raw for tx in initiatives]))["rejected"] == []
            await committed(node, initiatives[-1].hash)
            voters = [SigningKey.generate() for _ in range(6)]
            early = make_vote(chain_id, voters[0], "parks", "north", ["a"])
            registration = make_registration(chain_id, gateway, "parks", [v.public_key for v in voters])
            result = await post(client, [registration.raw, early.raw])
            assert [r["code"] for r in result["rejected"]] == ["outside_window"]
            await until(lambda: time.time() * 1000 > voting_start + 200, timeout=20, what="voting to open")
            choices = [["a"], ["a"], ["a", "b"], ["b", "c"], ["c"], ["b"]]
            ballots = [make_vote(chain_id, v, "parks", "north", c) for v, c in zip(voters, choices)]
            assert (await post(client, [b.raw for b in ballots]))["rejected"] == []
            await committed(node, ballots[-1].hash)
            open_tally = await (await client.get("/api/v1/campaigns/parks/tally")).json()
            assert open_tally["status"] == "open" and open_tally["result_status"] == "provisional"
            # nobody sends anything now: the node cuts an empty block once the window has ended
            await until(lambda: node.ledger.state.campaigns["parks"].status == "closed", timeout=30,
                        what="the automatic close")
            closed = node.ledger.state.campaigns["parks"]
            closing_block = node.ledger.block(closed.closed_height)
            assert closing_block is not None and closing_block.txs == ()
            assert closing_block.header.time_ms >= voting_end
            await until(lambda: "parks" in node.results.computed, timeout=60, what="equal shares")
            tally = await (await client.get("/api/v1/campaigns/parks/tally")).json()
            expected = compute_equal_shares_result(node.ledger.state, node.ledger.store, closed)
            assert tally["status"] == "closed" and tally["result_status"] == "final"
            assert tally["result_hash"] == expected[1].hex() and tally["winners"] == list(expected[0])
            assert tally["total_ballots"] == 6
            late = make_vote(chain_id, SigningKey.generate(), "parks", "north", ["a"])
            result = await post(client, [late.raw])
            assert result["accepted"] == []
            winner = tally["winners"][0]
            report = sign_tx("progress.report", chain_id,
                             ProgressReport("parks", winner, "contract", 10, 5000, "signed", b""), [committee])
            assert (await post(client, [report.raw]))["rejected"] == []
            await committed(node, report.hash)
            initiative = await (await client.get(f"/api/v1/campaigns/parks/initiatives/{winner}")).json()
            assert [(p["stage"], p["percent"], p["note"]) for p in initiative["progress"]] == [("contract", 10, "signed")]
            assert initiative["progress"][0]["reporter"] == committee.public_key.hex()

    asyncio.run(main())
