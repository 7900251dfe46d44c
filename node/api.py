"""The public JSON API (ARCHITECTURE §6, docs/INTERNALS.md, docs/NODE.md), ``/metrics`` and ``/p2p``.

Every error is ``{"error": {"code", "message"}}``; 413, 415, 429 and 503 carry a clear message and
429/503 a ``Retry-After``. Every status code a route can return is listed in its OpenAPI document
(``node/openapi.py``), and tests hold the two together. GET responses of the public API carry
``Access-Control-Allow-Origin: *`` so observers' dashboards can read any node, and so do answers to
``POST /api/v1/txs`` (after the ``OPTIONS`` preflight): a citizen's browser sends the ballot of its own
voter-held key straight to a node from the gateway's page (docs/NODE.md "CORS"). Credentials are
never allowed (no ``Access-Control-Allow-Credentials``): a browser cannot send cookies along.
"""

from __future__ import annotations

import asyncio
import hmac
import dataclasses
import logging
import math
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
from aiohttp import web

from chain.block import Block, CommitCertificate
from chain.crypto import sha256
from chain.errors import StoreCorrupt, StoreFull
from chain.governance import Roster
from chain.lightclient import proof_to_json
from chain.merkle import inclusion_proof
from chain.numbers import parse_decimal
from chain.records import Campaign, Initiative, Progress, progress_prefix
from chain.results import tally_document
from chain.tx import GATEWAY_HELD, VOTER_HELD, body_to_json
from chain.tx import body_to_json
from genesis.forwarding import ProxyTrust
from node.ballots import parse_cursor, parse_limit, read_ballots
from node.cosign.api import add_request_routes
from node.documents.api import add_document_routes
from node.errors import (
    AdminUnauthorized, ApiError, BadRequest, NotFound, OverBudget, Overloaded, PayloadTooLarge, UnsupportedMediaType,
)
from node.mempool import MAX_BATCH_BYTES, Reservation, decode_batch
from node.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from node.node import Node
from node.openapi import BACKUP_TYPE, LiveExamples, openapi_document
from node.ops.backup import BackupWriter, header_of
from node.ops.health import node_health
from node.p2p import ENVELOPE_PATH, read_envelope

log = logging.getLogger("veche.node.api")

NODE = web.AppKey("node", Node)
RANGE_MAX_BLOCKS = 500
RANGE_MAX_BYTES = 8 * 1024 * 1024
HASH_PATTERN = re.compile(r"[0-9a-fA-F]{64}")
MSGPACK = "application/octet-stream"
SHED_REASON = {"client": "over_budget", "node": "node_over_budget", "share": "node_over_budget",
               "trusted": "trusted_over_budget"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- errors and CORS -----------------------------------------------------------------------------


def error_response(status: int, code: str, message: str, retry_after: float | None = None) -> web.Response:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def preflight_response() -> web.Response:
    """CORS preflight: any origin, no credentials (``Access-Control-Allow-Credentials`` is never sent)."""
    return web.Response(status=204, headers={
        "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "86400"})


async def options_txs(request: web.Request) -> web.Response:
    return preflight_response()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "OPTIONS" and request.path.startswith("/api/v1/"):
        return preflight_response()
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.retry_after)
    except (StoreCorrupt, StoreFull) as exc:  # never answer from a store that failed: stop the node (exit 5/9)
        request.app[NODE].report_fault(exc)
        return error_response(503, exc.code, "this node found a fault in its own storage and is stopping; ask "
                                             "another node", retry_after=60)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        message = {404: f"no route {request.path}", 405: f"{request.method} is not allowed on {request.path}",
                   413: "request body too large"}.get(exc.status, exc.reason)
        response = error_response(exc.status, codes.get(exc.status, "http_error"), message)
        if "Allow" in exc.headers:  # a 405 names the methods the path has (RFC 9110 §15.5.6)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except ConnectionResetError:
        # the client went away or the connection guard cut it mid-body (too slow): nobody to answer
        log.debug("connection lost while serving %s %s", request.method, request.path)
        return error_response(400, "connection_lost", "the connection was lost while reading the request")
    except Exception:  # noqa: BLE001 - a node never crashes on client input: log it, answer 500
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the node hit an unexpected error; it is logged")


async def cors_header(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/api/v1/") and (request.method in ("GET", "HEAD") or (
            request.method == "POST" and request.path == "/api/v1/txs")):
        response.headers["Access-Control-Allow-Origin"] = "*"


# --- helpers -----------------------------------------------------------------------------------------


def node_of(request: web.Request) -> Node:
    return request.app[NODE]


def client_address(request: web.Request, proxies: ProxyTrust) -> str:
    """The client's IP: the TCP peer, or what a trusted proxy (config ``trusted_proxies``) says it is."""
    if not proxies:
        return request.remote or "unknown"
    forwarded = request.headers.getall("X-Forwarded-For", ())
    return proxies.client(request.remote, ",".join(forwarded) if forwarded else None,
                          request.headers.get("X-Real-IP"))


def parse_height(value: str, what: str = "height") -> int:
    height = parse_decimal(value, 18)
    if height is None:
        raise BadRequest(f"{what} must be a non-negative integer (ASCII digits), got {value[:32]!r}", "bad_height")
    return height


def parse_hash(value: str) -> bytes:
    if not HASH_PATTERN.fullmatch(value):
        raise BadRequest("a transaction hash is 64 hex digits", "bad_hash")
    return bytes.fromhex(value)


def header_json(block: Block) -> dict[str, Any]:
    header = block.header
    return {"chain_id": header.chain_id, "height": header.height, "round": header.round, "time_ms": header.time_ms,
            "previous_hash": header.previous_hash.hex(), "tx_root": header.tx_root.hex(),
            "app_hash": header.app_hash.hex(), "proposer": header.proposer,
            "last_commit_hash": header.last_commit_hash.hex()}


def certificate_json(certificate: CommitCertificate) -> dict[str, Any]:
    return {"height": certificate.height, "round": certificate.round, "block_hash": certificate.block_hash.hex(),
            "signatures": [[index, signature.hex()] for index, signature in certificate.signatures]}


def campaign_gateway_key(node: Node, campaign: Campaign) -> str:
    """The key the campaign's gateway signs registrations with now (keys.rotate may have replaced the
    one the campaign was created with); empty when that gateway was removed."""
    state = node.ledger.state
    name = state.campaign_gateway(campaign)
    key = None if name is None else node.ledger.roster_at(node.ledger.height + 1).gateway_key(name)
    return "" if key is None else key.hex()


def campaign_summary(campaign: Campaign, gateway_key: str = "") -> dict[str, Any]:
    spec = campaign.spec
    return {"campaign_id": campaign.campaign_id, "title": spec.title, "track": spec.track, "status": campaign.status,
            "voting_start": spec.voting_start, "voting_end": spec.voting_end,
            "submission_start": spec.submission_start, "submission_end": spec.submission_end,
            "rule": spec.rule.name, "scope": spec.rule.scope, "ballot": spec.ballot.type,
            "districts": [{"district_id": d.district_id, "name": d.name} for d in spec.districts],
            "total_ballots": campaign.total_ballots, "registered": campaign.registered,
            "initiative_count": campaign.initiative_count, "gateway_key": gateway_key, **key_modes_json(campaign)}


def key_modes_json(campaign: Campaign) -> dict[str, Any]:
    """Ballots per key mode, and the tokens the gateway counted (docs/PROTOCOL.md §16)."""
    return {"voter_held": campaign.spec.voter_held, "tokens_issued": campaign.tokens_issued,
            "ballots_by_mode": {GATEWAY_HELD: campaign.gateway_held_ballots, VOTER_HELD: campaign.voter_held_ballots}}


def initiative_json(node: Node, initiative: Initiative) -> dict[str, Any]:
    spec = initiative.spec
    return {**body_to_json(spec), "status": initiative.status, "review_reason": initiative.review_reason,
            "submitted_height": initiative.submitted_height, "submitter": initiative.submitter.hex(),
            "votes": node.ledger.state.votes(spec.campaign_id, spec.initiative_id)}


def progress_json(progress: Progress) -> dict[str, Any]:
    return {**body_to_json(progress.report), "height": progress.height, "time_ms": progress.time_ms,
            "reporter": progress.reporter.hex()}


def find_campaign(node: Node, campaign_id: str) -> Campaign:
    campaign = node.ledger.state.campaigns.get(campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id[:64]!r} does not exist", "unknown_campaign")
    return campaign


# --- status, genesis, openapi, metrics, evidence ---------------------------------------------------


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(node_of(request).status())


async def get_genesis(request: web.Request) -> web.Response:
    return web.json_response(node_of(request).genesis.document)


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(live_examples(node_of(request))))


_EXAMPLES: weakref.WeakKeyDictionary[Node, tuple[int, LiveExamples]] = weakref.WeakKeyDictionary()
EXAMPLE_SCAN_BLOCKS = 16


def live_examples(node: Node) -> LiveExamples:
    """Ids of this node's chain for the document's examples: the first campaign, its first initiative, a
    committed transaction and the height. Computed once per height; the transaction is the first of the
    newest block that holds one among those committed since (at most 16 read per height), else the last
    one found — a committed transaction stays one."""
    height = node.ledger.height
    cached = _EXAMPLES.get(node)
    if cached is not None and cached[0] == height:
        return with_stores(node, cached[1])
    state = node.ledger.state
    campaign = min(state.campaigns, key=str.encode, default=None)
    initiatives = state.campaign_initiatives(campaign) if campaign is not None else []
    tx_hash = cached[1].tx_hash if cached is not None else None
    since = cached[0] if cached is not None else 0
    for block_height in range(height, max(since, height - EXAMPLE_SCAN_BLOCKS), -1):
        block = node.ledger.block(block_height)
        if block is not None and block.txs:
            tx_hash = sha256(block.txs[0]).hex()
            break
    examples = LiveExamples(campaign=campaign, initiative=initiatives[0].spec.initiative_id if initiatives else None,
                            tx_hash=tx_hash, height=height or None)
    _EXAMPLES[node] = (height, examples)
    return with_stores(node, examples)


def with_stores(node: Node, examples: LiveExamples) -> LiveExamples:
    """The examples with a document and a signing request this node holds now (they change between blocks)."""
    held = node.documents.store.held
    document = min((d.hex() for d in node.documents.named if d in held and not held[d].provisional), default=None)
    signing_request = min((h.hex() for h in node.requests.entries), default=None)
    return dataclasses.replace(examples, document=document, signing_request=signing_request)


async def get_metrics(request: web.Request) -> web.Response:
    return web.Response(body=node_of(request).metrics.render().encode("utf-8"),
                        headers={"Content-Type": METRICS_CONTENT_TYPE, "X-Content-Type-Options": "nosniff"})


HEALTH_RETRY_AFTER_S = 5


async def get_health(request: web.Request) -> web.Response:
    healthy, document = node_health(node_of(request))
    if healthy:
        return web.json_response(document)
    return web.json_response(document, status=503, headers={"Retry-After": str(HEALTH_RETRY_AFTER_S)})


async def get_evidence(request: web.Request) -> web.Response:
    node = node_of(request)
    records = list(node.driver.evidence) if node.driver is not None else []
    return web.json_response({"evidence": [record.to_json() for record in records]})


# --- validators and the set history ---------------------------------------------------------------


def roster_json(roster: Roster) -> dict[str, Any]:
    validators = roster.validators
    return {
        "validators": [{"index": index, "name": v.name, "operator": v.operator, "public_key": v.public_key.hex(),
                        "url": v.url} for index, v in enumerate(validators.validators)],
        "quorum": validators.quorum, "skip": validators.skip,
        "committee": {"threshold": roster.threshold,
                      "members": [{"name": name, "public_key": key.hex()} for name, key in roster.committee]},
        "district_operators": [{"district_id": d, "public_key": key.hex()} for d, key in roster.district_operators],
        "gateways": [{"name": name, "public_key": key.hex()} for name, key in roster.gateways],
    }


async def get_validators(request: web.Request) -> web.Response:
    """Who signs what at ``height`` (default: the next block): validators, committee, operators, gateways."""
    node = node_of(request)
    ledger = node.ledger
    raw = request.query.get("height")
    height = ledger.height + 1 if raw is None else parse_height(raw)
    known = ledger.height + 2
    if height > known:
        raise NotFound(f"the set in force at height {height} is not decided yet: this node is at height "
                       f"{ledger.height}, and a change committed now is in force from height {known}",
                       "height_not_final")
    history = ledger.state.history
    change = history.change_at(height)
    upcoming = next((c for c in history.changes() if c.from_height > height), None)
    return web.json_response({
        "height": height, "node_height": ledger.height,
        "from_height": change.from_height, "committed_height": change.committed_height if change.from_height else None,
        "changed_by": [{"kind": kind, "tx_hash": tx_hash.hex()} for kind, tx_hash in change.txs],
        **roster_json(change.roster),
        "protocol_version": ledger.protocol_version_at(height),
        "next_change": None if upcoming is None else {"from_height": upcoming.from_height,
                                                      "committed_height": upcoming.committed_height},
    })


async def get_validator_changes(request: web.Request) -> web.Response:
    """Every validators.update with its block header, certificate and inclusion proof (chain/lightclient.py)."""
    node = node_of(request)
    return web.json_response({"chain_id": node.chain_id, "height": node.ledger.height,
                              "changes": [proof_to_json(proof) for proof in node.ledger.set_change_proofs()]})


# --- transactions ----------------------------------------------------------------------------------


async def read_limited(request: web.Request, limit: int, reservation: Reservation) -> bytes:
    """The body, at most ``limit`` bytes, each chunk counted in flight as it arrives."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"a transaction batch is at most {limit} bytes")
        reservation.grow(len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)


async def post_txs(request: web.Request) -> web.Response:
    node = node_of(request)
    if request.content_type != "application/octet-stream":
        raise UnsupportedMediaType("send a msgpack array of encoded transactions as application/octet-stream")
    length = request.content_length
    if length is not None and length > MAX_BATCH_BYTES:
        raise PayloadTooLarge(f"a transaction batch is at most {MAX_BATCH_BYTES} bytes")
    client = client_address(request, node.proxies)
    node.metrics.tx_posts.inc("trusted" if node.admission.is_trusted(client) else "untrusted")
    refusal = node.admission.precheck(client)
    if refusal is not None:
        node.metrics.requests_shed.inc(SHED_REASON[refusal.scope])
        raise OverBudget(refusal.message(), retry_after=refusal.retry_after)
    with node.mempool.reservation() as reservation:   # grows as the body arrives: slow uploads hold little
        try:
            node.check_room(length or 0)
            body = await read_limited(request, MAX_BATCH_BYTES, reservation)
        except Overloaded as exc:
            node.metrics.requests_shed.inc(exc.code)
            raise
        try:
            raws = decode_batch(body)
        except ApiError:
            node.admission.charge_failure(client, len(body))   # garbage costs budget too: 429 follows
            raise
        refusal = node.admission.take(client, len(raws))
        if refusal is not None:
            node.metrics.requests_shed.inc(SHED_REASON[refusal.scope])
            raise OverBudget(refusal.message(len(raws)), retry_after=refusal.retry_after)
        admission = await node.submit(raws)
    return web.json_response({
        "accepted": [tx_hash.hex() for tx_hash in admission.accepted],
        "rejected": [{"index": r.index, "code": r.code, "message": r.message} for r in admission.rejected],
    })


async def get_tx(request: web.Request) -> web.Response:
    node = node_of(request)
    tx_hash = parse_hash(request.match_info["hash"])
    location = node.ledger.tx_location(tx_hash)
    if location is not None:
        block = node.ledger.block(location.height)
        certificate = node.ledger.certificate(location.height)
        if block is None or certificate is None:
            raise NotFound(f"block {location.height} is not stored on this node", "not_found")
        return web.json_response({
            "status": "committed", "height": location.height, "index": location.index,
            "proof": {"tree_size": len(block.txs),
                      "path": [step.hex() for step in inclusion_proof(block.txs, location.index)],
                      "tx": block.txs[location.index].hex(), "block_hash": block.hash().hex(),
                      "header": block.header.encode().hex(), "certificate": certificate.encode().hex()},
        })
    known = node.mempool.status(tx_hash)
    if known is not None and known[0] == "rejected":
        return web.json_response({"status": "rejected", "height": None, "index": None, "proof": None,
                                  "code": known[1], "message": known[2]})
    status = "pending" if known is not None else "unknown"
    return web.json_response({"status": status, "height": None, "index": None, "proof": None})


# --- blocks ------------------------------------------------------------------------------------------


async def get_block(request: web.Request) -> web.Response:
    node = node_of(request)
    height = parse_height(request.match_info["height"])
    block = node.ledger.block(height) if height >= 1 else None
    certificate = node.ledger.certificate(height) if block is not None else None
    if block is None or certificate is None:
        raise NotFound(f"no block at height {height} (this node is at {node.ledger.height})", "unknown_block")
    return web.json_response({"height": height, "hash": block.hash().hex(), "header": header_json(block),
                              "txs": [sha256(raw).hex() for raw in block.txs],
                              "commit": certificate_json(certificate)})


async def get_block_raw(request: web.Request) -> web.Response:
    node = node_of(request)
    height = parse_height(request.match_info["height"])
    raw = node.ledger.vouched_block_with_certificate(height) if height >= 1 else None
    if raw is None:
        raise NotFound(f"no block at height {height} (this node is at {node.ledger.height})", "unknown_block")
    return web.Response(body=raw, content_type=MSGPACK)


async def get_blocks_raw(request: web.Request) -> web.Response:
    """``[[block, certificate], ...]`` from ``from`` up to ``to`` (≤ 500 blocks, ≤ 8 MiB, ≤ our height)."""
    node = node_of(request)
    if "from" not in request.query:
        raise BadRequest("query parameter from is required", "bad_range")
    first = parse_height(request.query["from"], "from")
    last = parse_height(request.query["to"], "to") if "to" in request.query else first + RANGE_MAX_BLOCKS - 1
    if first < 1:
        raise BadRequest("from must be at least 1", "bad_range")
    last = min(last, first + RANGE_MAX_BLOCKS - 1, node.ledger.height)
    parts: list[bytes] = []
    size = 0
    for height in range(first, last + 1):
        raw = node.ledger.vouched_block_with_certificate(height)
        if raw is None:
            break
        if parts and size + len(raw) > RANGE_MAX_BYTES:
            break
        parts.append(raw)
        size += len(raw)
    packer = msgpack.Packer()
    return web.Response(body=packer.pack_array_header(len(parts)) + b"".join(parts), content_type=MSGPACK)


# --- campaigns -----------------------------------------------------------------------------------------


async def get_campaigns(request: web.Request) -> web.Response:
    node = node_of(request)
    campaigns = sorted(node.ledger.state.campaigns.values(), key=lambda c: c.campaign_id.encode())
    return web.json_response({"height": node.ledger.height,
                              "campaigns": [campaign_summary(c, campaign_gateway_key(node, c)) for c in campaigns]})


async def get_campaign(request: web.Request) -> web.Response:
    node = node_of(request)
    campaign = find_campaign(node, request.match_info["campaign"])
    initiatives = node.ledger.state.campaign_initiatives(campaign.campaign_id)
    return web.json_response({
        "campaign": body_to_json(campaign.spec), "status": campaign.status,
        "created_height": campaign.created_height, "closed_height": campaign.closed_height or None,
        "closed_time_ms": campaign.closed_time_ms or None, "close_reason": campaign.close_reason or None,
        "registered": campaign.registered, "total_ballots": campaign.total_ballots,
        "initiative_count": campaign.initiative_count, "height": node.ledger.height,
        "gateway_key": campaign_gateway_key(node, campaign), **key_modes_json(campaign),
        "initiatives": [initiative_json(node, i) for i in initiatives],
    })


async def get_tally(request: web.Request) -> web.Response:
    node = node_of(request)
    campaign = find_campaign(node, request.match_info["campaign"])
    document = tally_document(node.ledger.state, campaign, node.ledger.height, node.results.result(campaign))
    failure = node.results.failed.get(campaign.campaign_id)
    if failure is not None:
        document["result_error"] = failure
    return web.json_response(document)


async def get_ballots(request: web.Request) -> web.Response:
    """Anonymised ballots in commit order, a page at a time (node/ballots.py)."""
    node = node_of(request)
    campaign = find_campaign(node, request.match_info["campaign"])
    after = parse_cursor(request.query.get("after"))
    limit = parse_limit(request.query.get("limit"))
    page = read_ballots(node.ledger, campaign, after, limit)
    return web.json_response(page.to_json(campaign.campaign_id))


async def get_initiative(request: web.Request) -> web.Response:
    node = node_of(request)
    campaign = find_campaign(node, request.match_info["campaign"])
    initiative_id = request.match_info["initiative"]
    initiative = node.ledger.state.initiatives.get((campaign.campaign_id, initiative_id))
    if initiative is None:
        raise NotFound(f"initiative {initiative_id[:64]!r} does not exist in this campaign", "unknown_initiative")
    reports = [progress_json(Progress.decode(value)) for _, value in
               node.ledger.store.iterate(progress_prefix(campaign.campaign_id, initiative_id))]
    return web.json_response({**initiative_json(node, initiative), "progress": reports})


# --- operations ---------------------------------------------------------------------------------------------


async def get_backup(request: web.Request) -> web.StreamResponse:
    """A consistent LevelDB snapshot of this node, streamed in the backup format (node/ops/backup.py).

    Needs ``Authorization: Bearer <the home's admin-token>``. The snapshot is read in a worker thread
    while the node goes on committing; the bytes are those of one instant of the store."""
    node = node_of(request)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {node.admin_token}".encode()):
        raise AdminUnauthorized("this route needs the node's admin token (Authorization: Bearer <home/admin-token>)")
    signing_state = b""
    if node.signing_file is not None:
        try:
            signing_state = node.signing_file.path.read_bytes()
        except FileNotFoundError:
            signing_state = b""
    snapshot = node.store.snapshot()
    try:
        header = header_of(snapshot.get, chain_id=node.chain_id, genesis_hash=node.genesis.hash, node=node.name,
                           signing_state=signing_state)
        chunks = BackupWriter().chunks(header, snapshot.items())
        response = web.StreamResponse(headers={"Content-Type": BACKUP_TYPE,
                                               "Content-Disposition": f'attachment; filename="{node.name}.backup"'})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        while True:
            chunk = await loop.run_in_executor(None, next, chunks, None)
            if chunk is None:
                break
            await response.write(chunk)
        await response.write_eof()
        log.info("backup of height %d streamed to %s", header.height, request.remote)
        return response
    finally:
        snapshot.close()


# --- p2p ---------------------------------------------------------------------------------------------------


async def post_envelope(request: web.Request) -> web.Response:
    return web.json_response(await read_envelope(request, node_of(request).inbound))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/status", get_status)
    app.router.add_get("/api/v1/genesis", get_genesis)
    app.router.add_get("/api/v1/openapi.json", get_openapi)
    app.router.add_get("/api/v1/evidence", get_evidence)
    app.router.add_get("/api/v1/validators", get_validators)
    app.router.add_get("/api/v1/validators/changes", get_validator_changes)
    app.router.add_post("/api/v1/txs", post_txs)
    app.router.add_route("OPTIONS", "/api/v1/txs", options_txs)
    app.router.add_get("/api/v1/txs/{hash}", get_tx)
    app.router.add_get("/api/v1/blocks/raw", get_blocks_raw)
    app.router.add_get("/api/v1/blocks/{height}", get_block)
    app.router.add_get("/api/v1/blocks/{height}/raw", get_block_raw)
    app.router.add_get("/api/v1/campaigns", get_campaigns)
    app.router.add_get("/api/v1/campaigns/{campaign}", get_campaign)
    app.router.add_get("/api/v1/campaigns/{campaign}/tally", get_tally)
    app.router.add_get("/api/v1/campaigns/{campaign}/ballots", get_ballots)
    app.router.add_get("/api/v1/campaigns/{campaign}/initiatives/{initiative}", get_initiative)
    add_document_routes(app, lambda request: node_of(request).documents)
    add_request_routes(app, lambda request: node_of(request).requests)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/admin/v1/backup", get_backup)
    app.router.add_get("/healthz", get_health)
    app.router.add_post(ENVELOPE_PATH, post_envelope)
