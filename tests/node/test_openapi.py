"""The OpenAPI document lists every route and every status code each route can return.

Each documented (path, method, status) is produced by a real request here, its body checked
against the schema documented for that status (error bodies included: 413, 415, 429, 503, 500),
and every route of the application appears in the document; a route answering with an
undocumented status fails. tests/node/test_api_contract.py checks every body on a real chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import node.api
import node.ops.health
from chain.crypto import SigningKey, read_key_file
from chain.errors import StoreCorrupt
from node.app import create_app
from node.mempool import ClientBudgets
from node.envelope import seal
from node.node import Node
from node.openapi import openapi_document
from tests.node.apischema import validate_body
from tests.node.apphost import Client, make_testnet, serve_node, until
from tests.node.votes import demo_plan, encode_batch, make_batch

OCTET = {"Content-Type": "application/octet-stream"}
MSGPACK = {"Content-Type": "application/msgpack"}
Request = Callable[[Client], Awaitable[Any]]


def documented() -> set[tuple[str, str, int]]:
    pairs = set()
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            for status in operation["responses"]:
                pairs.add((path, method.upper(), int(status)))
    return pairs


def test_every_route_is_documented(tmp_path: Path) -> None:
    home = make_testnet(tmp_path / "net").nodes[0].home
    from node.config import load_config

    config, limits = load_config(home)
    app_node = Node(config, limits)
    try:
        app = create_app(app_node)
        routes = {(resource.canonical, route.method) for resource in app.router.resources()
                  for route in resource if route.method != "HEAD"}
    finally:
        app_node.close()
    paths = openapi_document()["paths"]
    listed = {(path, method.upper()) for path, item in paths.items() for method in item}
    assert routes == listed


def test_every_documented_status_is_reachable_and_nothing_else(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    layout = make_testnet(tmp_path / "net", validators=1, observers=1, config={"mempool_max_txs": 40})
    validator_home, observer_home = layout.nodes[0].home, layout.nodes[1].home
    plan = demo_plan(layout.directory)
    key = read_key_file(validator_home / "node-key.json")
    seen: set[tuple[str, str, int]] = set()

    async def check(client: Client, path: str, method: str, status: int, call: Request) -> None:
        response = await call(client)
        assert response.status == status, (path, method, await response.text())
        validate_body(openapi_document(), path, method, status, response.content_type, await response.read())
        if status in (429, 503):
            assert int(response.headers["Retry-After"]) >= 1
        seen.add((path, method, status))

    async def main() -> None:
        async with serve_node(validator_home) as (validator, client), \
                serve_node(observer_home) as (_, observer):
            plan_batch = make_batch(plan, 3, seed=1)
            posted = await (await client.post("/api/v1/txs", data=encode_batch(plan_batch), headers=OCTET)).json()
            tx_hash = posted["accepted"][-1]
            await until(lambda: validator.ledger.tx_location(bytes.fromhex(tx_hash)) is not None, what="commit")
            campaign = plan.campaign_id
            initiative = plan.districts[0][1][0]
            get: Callable[[str], Request] = lambda url: lambda c: c.get(url)  # noqa: E731
            table: list[tuple[str, str, int, Request]] = [
                ("/api/v1/status", "GET", 200, get("/api/v1/status")),
                ("/api/v1/genesis", "GET", 200, get("/api/v1/genesis")),
                ("/api/v1/openapi.json", "GET", 200, get("/api/v1/openapi.json")),
                ("/api/v1/evidence", "GET", 200, get("/api/v1/evidence")),
                ("/api/v1/validators", "GET", 200, get("/api/v1/validators")),
                ("/api/v1/validators", "GET", 400, get("/api/v1/validators?height=%C2%B9")),   # "¹" is not a digit
                ("/api/v1/validators", "GET", 404, get("/api/v1/validators?height=999999")),
                ("/api/v1/validators/changes", "GET", 200, get("/api/v1/validators/changes")),
                ("/api/v1/txs/{hash}", "GET", 200, get(f"/api/v1/txs/{tx_hash}")),
                ("/api/v1/txs/{hash}", "GET", 400, get("/api/v1/txs/zz")),
                ("/api/v1/blocks/raw", "GET", 200, get("/api/v1/blocks/raw?from=1")),
                ("/api/v1/blocks/raw", "GET", 400, get("/api/v1/blocks/raw")),
                ("/api/v1/blocks/{height}", "GET", 200, get("/api/v1/blocks/1")),
                ("/api/v1/blocks/{height}", "GET", 400, get("/api/v1/blocks/x")),
                ("/api/v1/blocks/{height}", "GET", 404, get("/api/v1/blocks/99999")),
                ("/api/v1/blocks/{height}/raw", "GET", 200, get("/api/v1/blocks/1/raw")),
                ("/api/v1/blocks/{height}/raw", "GET", 400, get("/api/v1/blocks/-1/raw")),
                ("/api/v1/blocks/{height}/raw", "GET", 404, get("/api/v1/blocks/99999/raw")),
                ("/api/v1/campaigns", "GET", 200, get("/api/v1/campaigns")),
                ("/api/v1/campaigns/{campaign}", "GET", 200, get(f"/api/v1/campaigns/{campaign}")),
                ("/api/v1/campaigns/{campaign}", "GET", 404, get("/api/v1/campaigns/none")),
                ("/api/v1/campaigns/{campaign}/tally", "GET", 200, get(f"/api/v1/campaigns/{campaign}/tally")),
                ("/api/v1/campaigns/{campaign}/tally", "GET", 404, get("/api/v1/campaigns/none/tally")),
                ("/api/v1/campaigns/{campaign}/ballots", "GET", 200, get(f"/api/v1/campaigns/{campaign}/ballots")),
                ("/api/v1/campaigns/{campaign}/ballots", "GET", 400,
                 get(f"/api/v1/campaigns/{campaign}/ballots?limit=0")),
                ("/api/v1/campaigns/{campaign}/ballots", "GET", 404, get("/api/v1/campaigns/none/ballots")),
                ("/api/v1/campaigns/{campaign}/initiatives/{initiative}", "GET", 200,
                 get(f"/api/v1/campaigns/{campaign}/initiatives/{initiative}")),
                ("/api/v1/campaigns/{campaign}/initiatives/{initiative}", "GET", 404,
                 get(f"/api/v1/campaigns/{campaign}/initiatives/none")),
                ("/metrics", "GET", 200, get("/metrics")),
                ("/admin/v1/backup", "GET", 200, lambda c: c.get(
                    "/admin/v1/backup", headers={"Authorization": f"Bearer {validator.admin_token}"})),
                ("/admin/v1/backup", "GET", 401, lambda c: c.get(
                    "/admin/v1/backup", headers={"Authorization": "Bearer wrong"})),
                ("/healthz", "GET", 200, get("/healthz")),
                ("/api/v1/txs", "POST", 200, lambda c: c.post("/api/v1/txs", data=encode_batch(make_batch(plan, 2)),
                                                             headers=OCTET)),
                ("/api/v1/txs", "POST", 400, lambda c: c.post("/api/v1/txs", data=b"\xc1", headers=OCTET)),
                ("/api/v1/txs", "OPTIONS", 204, lambda c: c.options("/api/v1/txs", headers={
                    "Origin": "http://127.0.0.1:8080", "Access-Control-Request-Method": "POST"})),
                ("/api/v1/txs", "POST", 413, lambda c: c.post("/api/v1/txs", data=b"\x00" * (5 << 20),
                                                             headers=OCTET)),
                ("/api/v1/txs", "POST", 415, lambda c: c.post("/api/v1/txs", data=b"[]",
                                                             headers={"Content-Type": "application/json"})),
                ("/p2p/v1/envelope", "POST", 200, lambda c: c.post(
                    "/p2p/v1/envelope", data=seal(plan.chain_id, key.public_key, 1, [], [], key.sign), headers=MSGPACK)),
                ("/p2p/v1/envelope", "POST", 400, lambda c: c.post("/p2p/v1/envelope", data=b"\xc1",
                                                                  headers=MSGPACK)),
                ("/p2p/v1/envelope", "POST", 401, lambda c: c.post(
                    "/p2p/v1/envelope", data=seal(plan.chain_id, key.public_key, 2, [], [], SigningKey.generate().sign),
                    headers=MSGPACK)),
                ("/p2p/v1/envelope", "POST", 413, lambda c: c.post("/p2p/v1/envelope", data=b"\x00" * (17 << 20),
                                                                  headers=MSGPACK)),
                ("/p2p/v1/envelope", "POST", 415, lambda c: c.post("/p2p/v1/envelope", data=b"x",
                                                                  headers={"Content-Type": "text/plain"})),
            ]
            for path, method, status, call in table:
                await check(client, path, method, status, call)
            await check_document_routes(validator, client, check)
            await check_request_routes(validator, client, check)
            await check(observer, "/p2p/v1/envelope", "POST", 403, lambda c: c.post(
                "/p2p/v1/envelope", data=seal(plan.chain_id, key.public_key, 3, [], [], key.sign), headers=MSGPACK))
            # 404 for a committed tx whose block this node lost
            real_block = validator.ledger.block
            monkeypatch.setattr(validator.ledger, "block", lambda height: None)
            await check(client, "/api/v1/txs/{hash}", "GET", 404, get(f"/api/v1/txs/{tx_hash}"))
            monkeypatch.setattr(validator.ledger, "block", real_block)
            # 429: this client's budget (1 tx/s after one full batch) is spent
            validator.admission.clients = ClientBudgets(rate=1, burst=1)
            assert validator.admission.clients.take("127.0.0.1", validator.admission.clients.burst) is None
            await check(client, "/api/v1/txs", "POST", 429,
                        lambda c: c.post("/api/v1/txs", data=encode_batch(make_batch(plan, 1)), headers=OCTET))
            validator.admission.clients = ClientBudgets(10**6, 10**6)
            # 503: the mempool (40 txs here) is full; consensus is paused so nothing drains it
            assert validator.driver is not None
            engine = validator.driver.engine
            await until(lambda: len(validator.mempool) == 0, what="mempool to drain")
            engine._app = _Paused(engine._app)  # noqa: SLF001 - pause block cutting for this check
            await client.post("/api/v1/txs", data=encode_batch(make_batch(plan, 45)), headers=OCTET)
            await check(client, "/api/v1/txs", "POST", 503,
                        lambda c: c.post("/api/v1/txs", data=encode_batch(make_batch(plan, 1)), headers=OCTET))
            # 503 on /p2p: too many payload bytes of authenticated envelopes being read at once
            validator.inbound.reading_bytes = 64 * 1024 * 1024
            await check(client, "/p2p/v1/envelope", "POST", 503, lambda c: c.post(
                "/p2p/v1/envelope", data=seal(plan.chain_id, key.public_key, 4, [], [], key.sign), headers=MSGPACK))
            validator.inbound.reading_bytes = 0
            # 503 from /healthz: this node's last block looks a minute old (the clock moved on)
            monkeypatch.setattr(node.ops.health, "wall_clock_ms", lambda: validator.ledger.last_time_ms + 60_000)
            await check(client, "/healthz", "GET", 503, get("/healthz"))
            monkeypatch.undo()
            # 503 on every route: a store fault (corruption, disk full) stops the node instead of answering
            def corrupt(*args: Any) -> Any:
                raise StoreCorrupt("Corruption: block checksum mismatch")
            monkeypatch.setattr(node.api, "node_of", corrupt)
            monkeypatch.setattr(node.api, "openapi_document", corrupt)
            for path, item in openapi_document()["paths"].items():
                for method in (m for m in item if m != "options"):   # a preflight touches no store
                    url = (path.replace("{hash}", tx_hash).replace("{height}", "1").replace("{campaign}", campaign)
                           .replace("{initiative}", initiative).replace("{sha256}", "ab" * 32).replace("{signing_hash}", "ab" * 32))
                    if path == "/api/v1/blocks/raw":
                        url += "?from=1"
                    headers = MSGPACK if path.startswith("/p2p") else OCTET
                    await check(client, path, method.upper(), 503, request_for(method, url, headers))
            assert validator.fault is not None and validator.fault.code == "data_corrupt"
            monkeypatch.undo()
            # 500: any defect behind any route is answered as JSON 500 and logged
            def broken(*args: Any) -> Any:
                raise RuntimeError("defect")
            monkeypatch.setattr(node.api, "node_of", broken)
            monkeypatch.setattr(node.api, "openapi_document", broken)
            for path, item in openapi_document()["paths"].items():
                for method in (m for m in item if m != "options"):   # a preflight touches no store
                    url = (path.replace("{hash}", tx_hash).replace("{height}", "1").replace("{campaign}", campaign)
                           .replace("{initiative}", initiative).replace("{sha256}", "ab" * 32).replace("{signing_hash}", "ab" * 32))
                    if path == "/api/v1/blocks/raw":
                        url += "?from=1"
                    headers = MSGPACK if path.startswith("/p2p") else OCTET
                    await check(client, path, method.upper(), 500, request_for(method, url, headers))
            monkeypatch.undo()

    asyncio.run(main())
    assert seen == documented()


Check = Callable[[Client, str, str, int, Request], Awaitable[None]]


async def check_document_routes(validator: Node, client: Client, check: Check) -> None:
    """Every status of the document routes (node/documents/api.py)."""
    from chain.crypto import read_key_file, sha256
    from chain.tx import sign_tx
    from node.errors import Overloaded
    from tests.docfiles import png_bytes
    from tests.node.docnet import document_set, initiative_naming, open_campaign, upload_headers

    home = validator.config.home.parent
    committee = read_key_file(home / "keys" / "committee-0.json")
    operator = read_key_file(home / "keys" / "district-volgograd.json")
    chain_id = validator.chain_id
    files, manifest = document_set("openapi")
    docs, doc = "/api/v1/documents", "/api/v1/documents/{sha256}"

    def put(data: bytes, **headers: str) -> Request:
        return lambda c: c.post(docs, data=data, headers={**upload_headers(chain_id, operator, data), **headers})

    await check(client, docs, "POST", 201, put(manifest))
    await check(client, docs, "POST", 200, put(manifest))
    await check(client, doc, "GET", 404, lambda c: c.get(f"{docs}/{sha256(manifest).hex()}"))
    await check(client, doc, "GET", 400, lambda c: c.get(f"{docs}/{sha256(manifest).hex().upper()}"))
    for tx in (sign_tx("campaign.create", chain_id, open_campaign("openapi-docs", validator.params.gateways[0][1]),
                       [committee]),
               initiative_naming(chain_id, operator, "openapi-docs", "i1", "volgograd", sha256(manifest))):
        await client.post("/api/v1/txs", data=encode_batch([tx.raw]), headers=OCTET)
        await until(lambda: validator.ledger.tx_location(tx.hash) is not None, what="commit")
    await until(lambda: sha256(manifest) in validator.documents.named, what="the manifest named")
    await check(client, doc, "GET", 200, lambda c: c.get(f"{docs}/{sha256(manifest).hex()}"))
    await check(client, docs, "GET", 200, lambda c: c.get(docs))
    await check(client, docs, "POST", 400, lambda c: c.post(docs, data=files[0] + b"!",
                                                            headers=upload_headers(chain_id, operator, files[0])))
    await check(client, docs, "POST", 401, lambda c: c.post(docs, data=files[0], headers={"Content-Type": PDF}))
    await check(client, docs, "POST", 403, put(files[0], **{"X-Veche-Signature": "00" * 64}))
    await check(client, docs, "POST", 415, put(files[1], **{"Content-Type": "image/jpeg"}))
    big = b"%PDF-" + b"0" * (11 << 20)
    await check(client, docs, "POST", 413, lambda c: c.post(docs, data=big, headers=upload_headers(chain_id, operator,
                                                                                                   big)))
    store = validator.documents.store
    limits = store.limits
    store.limits = type(limits)(max_document_bytes=limits.max_document_bytes, max_total_bytes=store.total_bytes + 10)
    await check(client, docs, "POST", 507, put(files[0]))
    store.limits = type(limits)(max_provisional_per_key=10)
    await check(client, docs, "POST", 429, put(png_bytes(salt=3)))
    store.limits = limits

    def low() -> None:
        raise Overloaded("disk low", "disk_low", retry_after=10)
    validator.documents.check_disk = low
    await check(client, docs, "POST", 503, put(files[0]))
    validator.documents.check_disk = lambda: None


PDF = "application/pdf"


async def check_request_routes(validator: Node, client: Client, check: Check) -> None:
    """Every status of the signing-request routes (node/cosign/api.py)."""
    import json
    import time

    from chain.crypto import read_key_file
    from chain.tx import CampaignClose, InitiativeSubmit
    from node.cosign import store as cosign_store
    from node.cosign.request import SigningRequest

    home = validator.config.home.parent
    committee = read_key_file(home / "keys" / "committee-0.json")
    path, one = "/api/v1/signing-requests", "/api/v1/signing-requests/{signing_hash}"
    JSON = {"Content-Type": "application/json"}

    def request(reason: str, *, expires: int | None = None, kind: str = "campaign.close") -> SigningRequest:
        body = CampaignClose("ib-2027", reason) if kind == "campaign.close" else \
            InitiativeSubmit("ib-2027", "x", "volgograd", "t", "c", 1, "", b"")
        made = SigningRequest(validator.chain_id, validator.genesis.hash, kind, body, 1, [], 0,
                              int(time.time() * 1000), expires_at_ms=expires)
        made.add_signature(committee)
        return made

    def post(made: SigningRequest | bytes, headers: dict[str, str] = JSON) -> Request:
        data = made if isinstance(made, bytes) else json.dumps(made.to_json()).encode()
        return lambda c: c.post(path, data=data, headers=headers)

    first = request("first")
    await check(client, path, "POST", 201, post(first))
    await check(client, path, "POST", 200, post(first))
    await check(client, path, "GET", 200, lambda c: c.get(path))
    await check(client, one, "GET", 200, lambda c: c.get(f"{path}/{first.signing_hash.hex()}"))
    await check(client, one, "GET", 400, lambda c: c.get(f"{path}/{first.signing_hash.hex().upper()}"))
    await check(client, one, "GET", 404, lambda c: c.get(f"{path}/{'ab' * 32}"))
    altered = first.to_json()
    altered["body"] = altered["body"][:-2] + "78"
    await check(client, path, "POST", 403, post(json.dumps(altered).encode()))
    await check(client, path, "POST", 400, post(b"[1, 2]"))
    stranger = request("stranger")
    stranger.signatures.clear()
    stranger.add_signature(SigningKey.generate())
    await check(client, path, "POST", 403, post(stranger))
    await check(client, path, "POST", 410, post(request("late", expires=int(time.time() * 1000) - 1)))
    await check(client, path, "POST", 413, post(b"{" + b" " * (300 * 1024) + b"}"))
    await check(client, path, "POST", 415, post(first, {"Content-Type": "text/plain"}))
    short = request("short", expires=int(time.time() * 1000) + 300)
    await check(client, path, "POST", 201, post(short))
    await asyncio.sleep(0.4)
    await check(client, one, "GET", 410, lambda c: c.get(f"{path}/{short.signing_hash.hex()}"))
    limit = cosign_store.MAX_PER_MEMBER
    cosign_store.MAX_PER_MEMBER = 1
    await check(client, path, "POST", 429, post(request("one too many")))
    cosign_store.MAX_PER_MEMBER = limit
    validator.requests.max_requests = 1
    await check(client, path, "POST", 507, post(request("no room")))
    validator.requests.max_requests = cosign_store.MAX_REQUESTS


def request_for(method: str, url: str, headers: dict[str, str]) -> Request:
    if method == "get":
        return lambda c: c.get(url)
    return lambda c: c.post(url, data=b"\x91\xc4\x01x", headers=headers)


class _Paused:
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
