"""Public API and /p2p handlers of a real in-process node (aiohttp test utilities, no processes).

A one-validator demo testnet commits alone, so submit → committed → proof runs end to end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import chain.tx
from chain import codec
from chain.block import BlockHeader, CommitCertificate
from chain.crypto import read_key_file
from chain.ledger import decode_block_with_certificate
from chain.receipt import build_receipt, verify_receipt
from chain.tx import CampaignClose, make_registration, make_vote
import node.ballots as node_ballots
from genesis.demo import CHILDREN_CAMPAIGN_ID
from node.client import NodeClient, fetch_genesis
from node.config import NodeLimits
from node.envelope import seal
from node.node import Node
from node.pabulib_io import build_export, export_campaign, read_ballots, read_campaign
from node.sync import decode_block_range
from tests.node.apphost import Client, make_testnet, serve_node, until
from tests.node.votes import demo_plan, encode_batch, make_batch

OCTET = {"Content-Type": "application/octet-stream"}
MSGPACK = {"Content-Type": "application/msgpack"}
Body = Callable[[Node, Client], Awaitable[None]]


def run(home: Path, body: Body, limits: NodeLimits | None = None) -> None:
    async def main() -> None:
        async with serve_node(home, limits) as (node, client):
            await body(node, client)
    asyncio.run(main())


async def post_txs(client: Client, raws: list[bytes]) -> dict[str, Any]:
    response = await client.post("/api/v1/txs", data=encode_batch(raws), headers=OCTET)
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def error_of(response: Any) -> tuple[int, str]:
    document = await response.json()
    assert set(document) == {"error"} and set(document["error"]) == {"code", "message"}
    assert document["error"]["message"]
    return response.status, document["error"]["code"]


async def wait_committed(client: Client, tx_hash: str) -> dict[str, Any]:
    for _ in range(1500):
        document: dict[str, Any] = await (await client.get(f"/api/v1/txs/{tx_hash}")).json()
        if document["status"] == "committed":
            return document
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{tx_hash} not committed")


@pytest.fixture
def single(tmp_path: Path) -> Path:
    return make_testnet(tmp_path / "net").nodes[0].home


def test_status_has_every_contract_key(single: Path) -> None:
    async def body(node: Node, client: Client) -> None:
        response = await client.get("/api/v1/status")
        status = await response.json()
        assert {"chain_id", "node", "role", "height", "last_block_hash", "app_hash", "peers", "mempool",
                "catching_up", "genesis_hash", "last_block_time_ms", "validator_index"} <= set(status)
        assert status["role"] == "validator" and status["validator_index"] == 0 and status["node"] == "validator-0"
        assert status["genesis_hash"] == node.genesis.hash.hex()
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        options = await client.options("/api/v1/status")
        assert options.status == 204 and "GET" in options.headers["Access-Control-Allow-Methods"]
        genesis = await (await client.get("/api/v1/genesis")).json()
        assert genesis == node.genesis.document
    run(single, body)


def test_any_origin_may_post_transactions_but_never_with_credentials(single: Path) -> None:
    """A citizen's browser sends its voter-held ballot from the gateway's page straight to a node."""
    plan = demo_plan(single.parent)

    async def body(node: Node, client: Client) -> None:
        origin = {"Origin": "https://vote.example.org"}
        preflight = await client.options("/api/v1/txs", headers={**origin, "Access-Control-Request-Method": "POST",
                                                                  "Access-Control-Request-Headers": "content-type"})
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type"
        posted = await client.post("/api/v1/txs", data=encode_batch(make_batch(plan, 2, seed=3)),
                                   headers={**origin, "Content-Type": "application/octet-stream"})
        assert posted.status == 200 and posted.headers["Access-Control-Allow-Origin"] == "*"
        refused = await client.post("/api/v1/txs", data=b"\xc1",
                                    headers={**origin, "Content-Type": "application/octet-stream"})
        assert refused.status == 400 and refused.headers["Access-Control-Allow-Origin"] == "*"
        for response in (preflight, posted, refused):
            assert "Access-Control-Allow-Credentials" not in response.headers
    run(single, body)


def test_votes_commit_with_a_proof_a_light_client_accepts(single: Path) -> None:
    plan = demo_plan(single.parent)
    batch = make_batch(plan, 20, seed=1)

    async def body(node: Node, client: Client) -> None:
        result = await post_txs(client, batch)
        assert result["rejected"] == [] and len(result["accepted"]) == 21
        last = result["accepted"][-1]
        assert (await (await client.get(f"/api/v1/txs/{last}")).json())["status"] in ("pending", "committed")
        found = await wait_committed(client, last)
        proof = found["proof"]
        receipt = build_receipt(node.params, bytes.fromhex(proof["tx"]), found["height"], found["index"],
                                proof["tree_size"], [bytes.fromhex(p) for p in proof["path"]],
                                BlockHeader.from_wire(codec.decode(bytes.fromhex(proof["header"]))),
                                CommitCertificate.decode(bytes.fromhex(proof["certificate"])))
        checked = verify_receipt(receipt, node.params)
        assert checked.tx.hash.hex() == last
        block = await (await client.get(f"/api/v1/blocks/{found['height']}")).json()
        assert last in block["txs"] and block["hash"] == proof["block_hash"]
        assert block["header"]["app_hash"] and block["commit"]["block_hash"] == block["hash"]
        raw = await (await client.get(f"/api/v1/blocks/{found['height']}/raw")).read()
        decoded_block, certificate = decode_block_with_certificate(raw)
        assert decoded_block.hash().hex() == block["hash"] and certificate.height == found["height"]
        unknown = await (await client.get("/api/v1/txs/" + "ab" * 32)).json()
        assert unknown == {"status": "unknown", "height": None, "index": None, "proof": None}
    run(single, body)


def test_block_ranges_for_sync(single: Path) -> None:
    plan = demo_plan(single.parent)

    async def body(node: Node, client: Client) -> None:
        for seed in range(3):
            result = await post_txs(client, make_batch(plan, 5, seed=seed))
            await wait_committed(client, result["accepted"][-1])
        height = node.ledger.height
        data = await (await client.get(f"/api/v1/blocks/raw?from=1&to={height + 10}")).read()
        entries = decode_block_range(data)
        assert [block.height for block, _ in entries] == list(range(1, height + 1))
        one = await (await client.get("/api/v1/blocks/raw?from=2&to=2")).read()
        assert [b.height for b, _ in decode_block_range(one)] == [2]
        beyond = await (await client.get(f"/api/v1/blocks/raw?from={height + 1}")).read()
        assert decode_block_range(beyond) == []
        backwards = await client.get("/api/v1/blocks/raw?from=5&to=3")  # an empty range, not an error
        assert backwards.status == 200 and decode_block_range(await backwards.read()) == []
        for query in ("", "?from=x", "?from=0", "?from=1&to=-2", "?from=\u00b9", "?from=1&to=\u0663"):
            status, code = await error_of(await client.get("/api/v1/blocks/raw" + query))
            assert status == 400 and code in ("bad_range", "bad_height"), query
        assert await error_of(await client.get(f"/api/v1/blocks/{height + 5}")) == (404, "unknown_block")
        assert await error_of(await client.get("/api/v1/blocks/0/raw")) == (404, "unknown_block")
        assert await error_of(await client.get("/api/v1/blocks/abc")) == (400, "bad_height")
        # digits that are not ASCII ("¹".isdigit() is true, int("¹") raises) are a 400, not a 500
        for height_text in ("\u00b9", "\u0663", "1\u00b2"):
            assert await error_of(await client.get(f"/api/v1/blocks/{height_text}")) == (400, "bad_height")
            assert await error_of(await client.get(f"/api/v1/blocks/{height_text}/raw")) == (400, "bad_height")
    run(single, body)


def test_ballot_page_parameters_are_ascii_digits(single: Path) -> None:
    async def body(node: Node, client: Client) -> None:
        url = "/api/v1/campaigns/ib-2027/ballots"
        for limit in ("\u00b9", "\u0663", "1\u00b2"):
            assert await error_of(await client.get(f"{url}?limit={limit}")) == (400, "bad_limit")
        for cursor in ("\u0663:1", "1:\u0661", "\u00b9:1"):
            assert await error_of(await client.get(f"{url}?after={cursor}")) == (400, "bad_cursor")
    run(single, body)


def test_campaigns_tally_and_initiatives(single: Path) -> None:
    plan = demo_plan(single.parent)

    async def body(node: Node, client: Client) -> None:
        listing = await (await client.get("/api/v1/campaigns")).json()
        ids = [c["campaign_id"] for c in listing["campaigns"]]
        assert plan.campaign_id in ids
        result = await post_txs(client, make_batch(plan, 10, seed=3))
        await wait_committed(client, result["accepted"][-1])
        campaign = await (await client.get(f"/api/v1/campaigns/{plan.campaign_id}")).json()
        assert campaign["status"] == "open" and campaign["total_ballots"] == 10 and campaign["registered"] == 10
        assert campaign["campaign"]["campaign_id"] == plan.campaign_id and campaign["initiatives"]
        tally = await (await client.get(f"/api/v1/campaigns/{plan.campaign_id}/tally")).json()
        assert tally["status"] == "open" and tally["total_ballots"] == 10 and tally["winners"] == []
        assert sum(sum(d["initiatives"].values()) for d in tally["districts"].values()) == 10
        district, initiatives = plan.districts[0]
        initiative = await (await client.get(
            f"/api/v1/campaigns/{plan.campaign_id}/initiatives/{initiatives[0]}")).json()
        assert initiative["initiative_id"] == initiatives[0] and initiative["progress"] == []
        assert initiative["district_id"] == district and "votes" in initiative
        assert await error_of(await client.get("/api/v1/campaigns/nope")) == (404, "unknown_campaign")
        assert await error_of(await client.get("/api/v1/campaigns/nope/tally")) == (404, "unknown_campaign")
        assert await error_of(await client.get(
            f"/api/v1/campaigns/{plan.campaign_id}/initiatives/nope")) == (404, "unknown_initiative")
    run(single, body)


def test_ballots_route_pages_every_ballot_once_in_commit_order(single: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    plan = demo_plan(single.parent)
    other = demo_plan(single.parent, CHILDREN_CAMPAIGN_ID)

    async def read_all(client: Client, query: str) -> tuple[list[dict[str, Any]], int]:
        ballots: list[dict[str, Any]] = []
        cursor: str | None = None
        pages = 0
        while True:
            after = "" if cursor is None else f"&after={cursor}"
            response = await client.get(f"/api/v1/campaigns/{plan.campaign_id}/ballots?{query}{after}")
            assert response.status == 200, await response.text()
            page = await response.json()
            assert page["campaign"] == plan.campaign_id and response.headers["Access-Control-Allow-Origin"] == "*"
            ballots += page["ballots"]
            pages += 1
            cursor = page["next"]
            if cursor is None:
                return ballots, pages

    async def body(node: Node, client: Client) -> None:
        empty = await (await client.get(f"/api/v1/campaigns/{plan.campaign_id}/ballots")).json()
        assert empty["ballots"] == [] and empty["next"] is None
        sent: dict[str, tuple[str, list[str]]] = {}  # tx hash -> (voter key, choices)
        for seed in range(3):
            for each_plan in (plan, other):
                batch = make_batch(each_plan, 7, seed=seed)
                result = await post_txs(client, batch)
                assert result["rejected"] == [], result
                await wait_committed(client, result["accepted"][-1])
                if each_plan is plan:
                    for raw in batch[1:]:
                        tx = chain.tx.decode_tx(raw)
                        sent[tx.hash.hex()] = (tx.signers[0].hex(), list(tx.body.choices))
        ballots, pages = await read_all(client, "limit=4")
        assert pages >= 6
        assert {b["tx_hash"]: (b["voter_key"], b["choices"]) for b in ballots} == sent
        assert len(ballots) == len(sent) == 21
        positions = [(b["height"], b["index"]) for b in ballots]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        for ballot in ballots[:3]:
            where = await (await client.get(f"/api/v1/txs/{ballot['tx_hash']}")).json()
            assert (where["status"], where["height"], where["index"]) == ("committed", ballot["height"], ballot["index"])
        whole, _ = await read_all(client, "limit=2000")
        assert whole == ballots
        # a page reads a bounded stretch of blocks: it may come back short, with a next cursor
        monkeypatch.setattr(node_ballots, "MAX_BLOCKS_PER_PAGE", 1)
        bounded, pages = await read_all(client, "limit=2000")
        assert bounded == ballots and pages >= 3
        monkeypatch.undo()
        url = f"/api/v1/campaigns/{plan.campaign_id}/ballots"
        for query in ("?limit=0", "?limit=2001", "?limit=x", "?limit=-1"):
            assert await error_of(await client.get(url + query)) == (400, "bad_limit"), query
        for query in ("?after=", "?after=x", "?after=1", "?after=1:-1", "?after=1:2:3"):
            assert await error_of(await client.get(url + query)) == (400, "bad_cursor"), query
        assert await error_of(await client.get("/api/v1/campaigns/nope/ballots")) == (404, "unknown_campaign")
        beyond = await (await client.get(f"{url}?after={node.ledger.height + 5}:0")).json()
        assert beyond["ballots"] == [] and beyond["next"] is None
    run(single, body)


def test_pabulib_export_reads_the_ballots_route_and_matches_a_raw_block_scan(single: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    plan = demo_plan(single.parent)
    other = demo_plan(single.parent, CHILDREN_CAMPAIGN_ID)

    async def body(node: Node, client: Client) -> None:
        for seed in range(2):
            for each_plan in (plan, other):
                result = await post_txs(client, make_batch(each_plan, 9, seed=seed))
                await wait_committed(client, result["accepted"][-1])
        url = str(client.make_url("")).rstrip("/")
        requested: list[str] = []
        original = NodeClient.request

        async def recording(self: NodeClient, method: str, path: str, **options: Any) -> Any:
            requested.append(path)
            return await original(self, method, path, **options)

        monkeypatch.setattr(NodeClient, "request", recording)
        exported, tally = await export_campaign([url], plan.campaign_id)
        monkeypatch.undo()
        assert any(path.endswith("/ballots") for path in requested)
        assert not any(path.endswith("/blocks/raw") for path in requested)
        assert len(exported.votes) == tally["total_ballots"] == 18
        async with NodeClient(url) as api:
            genesis = await fetch_genesis(api)
            scanned = await read_campaign(api, genesis, plan.campaign_id, int(tally["height"]))
            details = await api.campaign(plan.campaign_id)
            routed = await read_ballots(api, details, genesis.params.committee_keys, plan.campaign_id,
                                        int(tally["height"]), url)
        assert routed is not None
        assert routed.ballots == scanned.ballots and len(routed.ballots) == 18
        assert (routed.spec, routed.initiatives, routed.approved) == (scanned.spec, scanned.initiatives,
                                                                      scanned.approved)
        assert exported == build_export(scanned, tally, genesis.chain_id)
        # closed: the walk ends at the close, below the node's (and the tally's) height
        committee = read_key_file(single.parent / "keys" / "committee-0.json")
        close = chain.tx.sign_tx("campaign.close", plan.chain_id, CampaignClose(plan.campaign_id, "test over"),
                                 [committee])
        await wait_committed(client, (await post_txs(client, [close.raw]))["accepted"][0])
        result = await post_txs(client, make_batch(other, 3, seed=9))
        await wait_committed(client, result["accepted"][-1])
        exported, tally = await export_campaign([url], plan.campaign_id)
        assert tally["status"] == "closed" and len(exported.votes) == 18
        async with NodeClient(url) as api:
            assert exported == build_export(await read_campaign(api, genesis, plan.campaign_id, int(tally["height"])),
                                            tally, genesis.chain_id)
            page = await api.ballots(plan.campaign_id)
        assert page["height"] == tally["closed_height"] < tally["height"] and page["next"] is None
    run(single, body)


def test_rejections_are_reported_and_remembered(single: Path) -> None:
    plan = demo_plan(single.parent)
    gateway = read_key_file(single.parent / "gateway" / "gateway-key.json")

    async def body(node: Node, client: Client) -> None:
        voter = chain.crypto.SigningKey.generate()
        district, initiatives = plan.districts[0]
        registration = make_registration(plan.chain_id, gateway, plan.campaign_id, [voter.public_key])
        first = make_vote(plan.chain_id, voter, plan.campaign_id, district, [initiatives[0]])
        second = make_vote(plan.chain_id, voter, plan.campaign_id, district, [initiatives[-1]])
        result = await post_txs(client, [registration.raw, first.raw, second.raw, b"\x01"])
        rejected = {r["index"]: r["code"] for r in result["rejected"]}
        assert rejected == {2: "double_vote", 3: "malformed"}
        status = await (await client.get(f"/api/v1/txs/{second.hash.hex()}")).json()
        assert status["status"] == "rejected" and status["code"] == "double_vote" and status["message"]
        assert await error_of(await client.get("/api/v1/txs/xyz")) == (400, "bad_hash")
    run(single, body)


def test_bad_requests_to_the_tx_endpoint(single: Path) -> None:
    async def body(node: Node, client: Client) -> None:
        wrong_type = await client.post("/api/v1/txs", data=b"{}", headers={"Content-Type": "application/json"})
        assert await error_of(wrong_type) == (415, "unsupported_media_type")
        huge = await client.post("/api/v1/txs", data=b"\x00" * (10 * 1024 * 1024), headers=OCTET)
        assert await error_of(huge) == (413, "too_large")
        for garbage in (b"\xc1\xc1", b"\x92\xc4\x05abc", codec.encode([1, 2]), codec.encode([])):
            response = await client.post("/api/v1/txs", data=garbage, headers=OCTET)
            assert response.status == 400
        assert (await client.get("/api/v1/status")).status == 200
    run(single, body)


def test_over_budget_client_gets_429_with_retry_after(single: Path) -> None:
    plan = demo_plan(single.parent)

    async def body(node: Node, client: Client) -> None:
        budgets = node.admission.clients
        assert budgets.take("127.0.0.1", budgets.burst) is None
        response = await client.post("/api/v1/txs", data=encode_batch(make_batch(plan, 2)), headers=OCTET)
        assert await error_of(response) == (429, "over_budget")
        assert int(response.headers["Retry-After"]) >= 1
        assert len(node.mempool) == 0
    run(single, body, NodeLimits(client_tx_rate=1, client_tx_burst=1))


def test_node_wide_budget_refuses_every_untrusted_client_with_429(single: Path) -> None:
    plan = demo_plan(single.parent)

    async def body(node: Node, client: Client) -> None:
        shared = node.admission.node
        shared.spend(shared.burst)  # other clients spent the node-wide budget
        response = await client.post("/api/v1/txs", data=encode_batch(make_batch(plan, 2)), headers=OCTET)
        assert await error_of(response) == (429, "over_budget")
        assert int(response.headers["Retry-After"]) >= 1
        assert len(node.mempool) == 0 and node.mempool.verifications == 0
        assert node.metrics.requests_shed.value("node_over_budget") == 1
        assert "veche_admission_rate_limit 1" in node.metrics.render()
    run(single, body, NodeLimits(node_tx_rate=1))


def test_trusted_client_passes_while_the_node_wide_budget_is_spent(single: Path) -> None:
    plan = demo_plan(single.parent)

    async def body(node: Node, client: Client) -> None:
        shared = node.admission.node
        shared.spend(shared.burst)
        result = await post_txs(client, make_batch(plan, 2))
        assert len(result["accepted"]) == 3 and result["rejected"] == []
    run(single, body, NodeLimits(node_tx_rate=1, trusted_clients=("127.0.0.0/8",)))


def test_full_mempool_sheds_load_before_any_signature_check(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    home = make_testnet(tmp_path / "net", config={"mempool_max_txs": 3}).nodes[0].home
    plan = demo_plan(home.parent)
    calls: list[bytes] = []
    real = getattr(chain.tx, "verify")

    def counting(public_key: bytes, signature: bytes, message: bytes, *, cache_key: bool = False) -> None:
        calls.append(public_key)
        real(public_key, signature, message, cache_key=cache_key)

    async def body(node: Node, client: Client) -> None:
        first = await post_txs(client, make_batch(plan, 5, seed=9))
        assert len(first["accepted"]) == 3
        monkeypatch.setattr(chain.tx, "verify", counting)
        response = await client.post("/api/v1/txs", data=encode_batch(make_batch(plan, 5, seed=10)), headers=OCTET)
        assert await error_of(response) == (503, "mempool_full")
        assert int(response.headers["Retry-After"]) >= 1
        assert calls == []
        metrics = await (await client.get("/metrics")).text()
        assert 'veche_requests_shed_total{reason="mempool_full"} 1' in metrics
    async def main() -> None:
        async with serve_node(home) as (node, client):
            assert node.driver is not None  # keep the pool full: this validator never proposes
            node.driver.engine._app = _NoBlocks(node.driver.engine._app)  # noqa: SLF001
            await body(node, client)
    asyncio.run(main())


class _NoBlocks:
    """An Application that never has anything to propose (keeps a test's mempool full)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_block(self, *args: Any) -> Any:
        return self._inner.create_block(*args)

    def check_block(self, *args: Any) -> Any:
        return self._inner.check_block(*args)

    def has_pending(self) -> bool:
        return False

    def deadline_due(self, now_ms: int) -> bool:
        return False


def test_metrics_and_evidence(single: Path) -> None:
    async def body(node: Node, client: Client) -> None:
        await until(lambda: node.ledger.height >= 0)
        metrics = await (await client.get("/metrics")).text()
        for name in ("veche_height", "veche_mempool_txs", "veche_mempool_bytes", "veche_txs_accepted_total",
                     "veche_txs_rejected_total", "veche_peers_connected", "veche_p2p_rejected_total",
                     "veche_block_commit_seconds_bucket", "veche_consensus_round_changes_total",
                     "veche_sync_target_height", "veche_equivocation_evidence_total"):
            assert f"# TYPE {name.removesuffix('_bucket')}" in metrics
        evidence = await (await client.get("/api/v1/evidence")).json()
        assert evidence == {"evidence": []}
    run(single, body)


def test_p2p_rejects_anything_not_from_a_validator(single: Path) -> None:
    async def body(node: Node, client: Client) -> None:
        key = read_key_file(single / "node-key.json")
        chain_id = node.chain_id
        good = seal(chain_id, key.public_key, 1, [], [], key.sign)
        response = await client.post("/p2p/v1/envelope", data=good, headers=MSGPACK)
        assert response.status == 200 and (await response.json())["duplicate"] is False
        replay = await client.post("/p2p/v1/envelope", data=good, headers=MSGPACK)
        assert replay.status == 200 and (await replay.json())["duplicate"] is True
        stranger = chain.crypto.SigningKey.generate()
        cases = [
            (b"\xc1garbage", MSGPACK, 400, "malformed"),
            (good[:-7], MSGPACK, 400, "malformed"),
            (seal("another-chain", key.public_key, 2, [], [], key.sign), MSGPACK, 400, "wrong_chain"),
            (seal(chain_id, key.public_key, 3, [], [], stranger.sign), MSGPACK, 401, "bad_signature"),
            (seal(chain_id, stranger.public_key, 4, [], [], stranger.sign), MSGPACK, 401, "unknown_sender"),
            (good, {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
            (b"\x00" * (17 * 1024 * 1024), MSGPACK, 413, "too_large"),
        ]
        for data, headers, status, code in cases:
            assert await error_of(await client.post("/p2p/v1/envelope", data=data, headers=headers)) == (status, code)
        garbage_message = seal(chain_id, key.public_key, 5, [b"\x93not a consensus message"], [], key.sign)
        reply = await (await client.post("/p2p/v1/envelope", data=garbage_message, headers=MSGPACK)).json()
        assert reply["malformed_messages"] == 1
        metrics = await (await client.get("/metrics")).text()
        assert 'veche_p2p_rejected_total{peer="validator-0",reason="bad_signature"} 1' in metrics
        assert 'veche_p2p_rejected_total{peer="unknown",reason="malformed"}' in metrics
        assert (await client.get("/api/v1/status")).status == 200
    run(single, body)


def test_observer_follows_forwards_and_takes_no_p2p(tmp_path: Path) -> None:
    layout = make_testnet(tmp_path / "net", validators=1, observers=1)
    validator_home, observer_home = layout.nodes[0].home, layout.nodes[1].home
    plan = demo_plan(layout.directory)
    key = read_key_file(validator_home / "node-key.json")

    async def main() -> None:
        async with serve_node(validator_home) as (validator, _), serve_node(observer_home) as (observer, client):
            assert observer.role == "observer" and observer.driver is None
            status = await (await client.get("/api/v1/status")).json()
            assert status["role"] == "observer" and status["validator_index"] is None
            result = await post_txs(client, make_batch(plan, 10, seed=4))
            assert len(result["accepted"]) == 11
            last = result["accepted"][-1]
            found = await wait_committed(client, last)
            assert found["height"] >= 1
            await until(lambda: observer.ledger.height >= validator.ledger.height, what="observer sync")
            assert observer.ledger.app_hash == validator.ledger.app_hash or observer.ledger.height < validator.ledger.height
            refused = await client.post("/p2p/v1/envelope",
                                        data=seal(plan.chain_id, key.public_key, 1, [], [], key.sign), headers=MSGPACK)
            assert await error_of(refused) == (403, "not_a_validator")
            await until(lambda: len(observer.mempool) == 0, what="observer mempool to drain")
    asyncio.run(main())


def test_unexpected_errors_answer_500_and_the_node_keeps_serving(single: Path) -> None:
    async def body(node: Node, client: Client) -> None:
        original = node.status

        def broken() -> dict[str, Any]:
            raise RuntimeError("defect")
        node.status = broken  # type: ignore[method-assign]
        assert await error_of(await client.get("/api/v1/status")) == (500, "internal_error")
        node.status = original  # type: ignore[method-assign]
        assert (await client.get("/api/v1/status")).status == 200
        assert await error_of(await client.get("/api/v1/nothing-here")) == (404, "not_found")
        refused = await client.put("/api/v1/status")
        assert await error_of(refused) == (405, "method_not_allowed")
        assert "GET" in refused.headers["Allow"]  # RFC 9110: a 405 lists the methods the path has
    run(single, body)


def test_json_error_documents_are_json(single: Path) -> None:
    async def body(node: Node, client: Client) -> None:
        response = await client.get("/api/v1/campaigns/none")
        assert response.content_type == "application/json"
        assert json.loads(await response.text())["error"]["code"] == "unknown_campaign"
    run(single, body)


def test_validators_route_shows_the_roster_in_force(single: Path) -> None:
    async def body(node: Node, client: Client) -> None:
        await until(lambda: node.ledger.height >= 1)
        document = await (await client.get("/api/v1/validators")).json()
        height = document["height"]
        assert height >= 2 and document["node_height"] >= height - 1
        assert document["from_height"] == 0 and document["committed_height"] is None
        assert [v["name"] for v in document["validators"]] == ["validator-0"]
        assert document["validators"][0]["public_key"] == read_key_file(single / "node-key.json").public_key.hex()
        assert document["quorum"] == 1 and document["committee"]["threshold"] == 1
        assert document["committee"]["members"][0]["name"] == "committee-0"
        assert document["protocol_version"] == 1 and document["next_change"] is None
        at_zero = await (await client.get("/api/v1/validators?height=0")).json()
        assert at_zero["validators"] == document["validators"]
        for bad in ("-1", "x", "1.5", "%C2%B2", "1" * 19):
            assert await error_of(await client.get(f"/api/v1/validators?height={bad}")) == (400, "bad_height"), bad
        assert (await error_of(await client.get(f"/api/v1/validators?height={node.ledger.height + 50}")))[1] == \
            "height_not_final"
        changes = await (await client.get("/api/v1/validators/changes")).json()
        assert changes["changes"] == [] and changes["chain_id"] == node.chain_id
        status = await (await client.get("/api/v1/status")).json()
        assert status["validator_set"]["validators"] == ["validator-0"] and status["protocol_version"] == 1
        assert status["protocol_upgrade"] is None and status["supported_protocol_version"] >= 2
    run(single, body)
