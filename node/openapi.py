"""The node's OpenAPI 3.1 document, written by hand: every route, every status code, exact bodies.

``tests/node/test_openapi.py`` drives each route into each documented status and checks that no
route answers with a status its entry does not list; ``tests/node/test_api_schemas.py`` checks
every body a real node serves against its schema (``node/apidoc/schemas.py``), and
``tests/node/test_schemathesis.py`` runs schemathesis against a real node. 500 is listed
everywhere because a handler that hits a defect answers 500 (logged) instead of taking the node down.

The document a node serves carries *live examples*: ids of its own chain (a campaign, one of its
initiatives, a committed transaction, its height), and links from each list to the routes of its
items, so that generated requests reach real campaigns instead of 404s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.apidoc.cosign import COSIGN_SCHEMAS, cosign_paths
from node.apidoc.documents import DOCUMENT_SCHEMAS, document_paths
from node.apidoc.schemas import components, ref

Operation = dict[str, Any]


@dataclass(frozen=True, slots=True)
class LiveExamples:
    """Real values of one node's chain for the document's parameter examples (``None``: no such value yet)."""

    campaign: str | None = None
    initiative: str | None = None
    tx_hash: str | None = None
    height: int | None = None
    document: str | None = None
    signing_request: str | None = None


def _error(description: str, *, retry_after: bool = False, allow: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {"application/json": {"schema": ref("Error")}}}
    headers = {}
    if retry_after:
        headers["Retry-After"] = {"description": "seconds to wait before retrying",
                                  "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"}}
    if allow:
        headers["Allow"] = {"description": "the methods this path supports", "schema": {"type": "string"}}
    if headers:
        response["headers"] = headers
    return response


def _json(description: str, schema: str | dict[str, Any] | None = None,
          links: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON response; ``schema`` names a component (``"Status"``) or is a schema itself."""
    body = ref(schema) if isinstance(schema, str) else schema if schema is not None else {"type": "object"}
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": body}}}
    if links:
        response["links"] = links
    return response


def _msgpack(description: str, schema: str | None = None) -> dict[str, Any]:
    body = ref(schema) if schema is not None else {"type": "string", "format": "binary"}
    return {"description": description, "content": {"application/octet-stream": {"schema": body}}}


def _link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters, "description": description}


BACKUP_TYPE = "application/x-veche-backup"
INTERNAL = _error("unexpected defect on this node (logged); the node keeps running")
STORE_FAULT = _error("data_corrupt or disk_full: this node found a fault in its own storage (a checksum, a served "
                     "block that does not match its certificate, no space left) and is stopping (exit code 5 or 9); "
                     "it serves nothing it cannot vouch for — ask another node", retry_after=True)
ERROR_SCHEMA = ref("Error")
HEIGHT_SCHEMA = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}
ID_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}
HEIGHT_PARAM = {"name": "height", "in": "path", "required": True, "schema": HEIGHT_SCHEMA}
CAMPAIGN_PARAM = {"name": "campaign", "in": "path", "required": True, "schema": ID_SCHEMA}


def _param(name: str, where: str, schema: dict[str, Any], description: str, *, required: bool = True,
           example: Any = None) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema,
                                 "description": description}
    if example is not None:
        parameter["example"] = example
    return parameter


HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "reasons", "warnings", "node", "role", "height", "sync_target", "last_block_age_ms",
                 "stale_after_ms", "peers", "peers_expected", "catching_up"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unhealthy"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "node": {"type": "string"}, "role": {"type": "string", "enum": ["validator", "observer"]},
        "height": {"type": "integer", "minimum": 0}, "sync_target": {"type": "integer", "minimum": 0},
        "last_block_age_ms": {"type": "integer", "minimum": 0}, "stale_after_ms": {"type": "integer", "minimum": 0},
        "peers": {"type": "integer", "minimum": 0}, "peers_expected": {"type": "integer", "minimum": 0},
        "catching_up": {"type": "boolean"},
    },
}


def _get(summary: str, ok: dict[str, Any], errors: dict[str, dict[str, Any]] | None = None,
         parameters: list[dict[str, Any]] | None = None, tag: str = "public", *,
         operation_id: str | None = None) -> dict[str, Operation]:
    responses: dict[str, Any] = {"200": ok}
    responses.update(errors or {})
    responses.setdefault("503", STORE_FAULT)
    responses["500"] = INTERNAL
    operation: Operation = {"summary": summary, "tags": [tag], "responses": responses}
    if operation_id is not None:  # links name their target by operationId
        operation = {"operationId": operation_id, **operation}
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


def openapi_document(live: LiveExamples | None = None) -> dict[str, Any]:
    live = live or LiveExamples()
    height_example = live.height if live.height else None
    campaign = _param("campaign", "path", {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                      "a campaign id", example=live.campaign)
    initiative = _param("initiative", "path", {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                        "an initiative id of that campaign", example=live.initiative)
    height = _param("height", "path", HEIGHT_SCHEMA, "a block height (ASCII digits, at most 18)",
                    example=height_example)
    no_campaign = {"404": _error("no such campaign (unknown_campaign)")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Veche node API", "version": "1",
                 "description": "Public API of a Veche validator or observer (docs/NODE.md §7). Errors are "
                                "{\"error\": {\"code\", \"message\"}}. application/octet-stream bodies are canonical "
                                "msgpack (docs/PROTOCOL.md §1); their schemas describe the decoded msgpack value: "
                                "strings with format binary are msgpack bin, other strings msgpack str. The "
                                "examples of this document are ids of the serving node's own chain."},
        "paths": {
            "/api/v1/status": _get(
                "Node status: chain, role, height, hashes, peers, mempool, catching_up",
                _json("status", "Status", {"block": _link("getBlock", "the last committed block",
                                                          height="$response.body#/height")}),
                operation_id="getStatus"),
            "/api/v1/genesis": _get("The genesis document this node runs (hash: docs/GENESIS.md §1)",
                                    _json("the genesis file's JSON", "Genesis"), operation_id="getGenesis"),
            "/api/v1/openapi.json": _get("This document", _json("OpenAPI 3.1 document", "OpenApi"),
                                         operation_id="getOpenApi"),
            "/api/v1/evidence": _get("Equivocation evidence this validator has seen",
                                     _json("evidence, oldest first", "Evidence"), operation_id="getEvidence"),
            "/api/v1/validators": _get(
                "Who may sign what at a height (default: the next block): the validator set in force there "
                "(with quorum and proposer order), the committee keys and threshold, district operator and "
                "gateway keys, the protocol version, and which change put them in force (docs/PROTOCOL.md §15)",
                _json("the roster in force at the height", "Roster"),
                {"400": _error("height is not ASCII digits (bad_height)"),
                 "404": _error("height is more than 2 above this node's height: the set there is not decided yet, "
                               "a change committed at height H being in force from H + 2 (height_not_final)")},
                [_param("height", "query", HEIGHT_SCHEMA, "a block height (default: this node's height + 1)",
                        required=False, example=height_example)], operation_id="getValidators"),
            "/api/v1/validators/changes": _get(
                "Every validator set change for a light client trusting only genesis: per block that committed "
                "validators.update transactions, its header, commit certificate and each such transaction with "
                "its Merkle inclusion proof (docs/PROTOCOL.md §15.4)",
                _json("the change proofs, by height", "ValidatorChanges"), operation_id="getValidatorChanges"),
            "/api/v1/txs": {"options": {
                "operationId": "preflightTxs",
                "summary": "CORS preflight: any origin may POST transactions, never with credentials",
                "tags": ["public"],
                "responses": {"204": {"description": "no body; Access-Control-Allow-Origin: *, "
                                                     "Access-Control-Allow-Methods: GET, POST, OPTIONS, "
                                                     "Access-Control-Allow-Headers: Content-Type, "
                                                     "Access-Control-Max-Age: 86400 (no "
                                                     "Access-Control-Allow-Credentials)"}}},
                "post": {
                "operationId": "postTxs",
                "summary": "Submit a batch of signed transactions (CORS: any origin, without credentials — a "
                           "citizen's browser sends the ballot of its own voter-held key here, docs/NODE.md §7)",
                "tags": ["public"],
                "requestBody": {"required": True, "content": {"application/octet-stream": {
                    "schema": ref("TxBatch")}}},
                "responses": {
                    "200": _json("every transaction accepted or rejected with a code (docs/NODE.md §3)", "Admission",
                                 {"tx": _link("getTx", "where the first accepted transaction is",
                                              hash="$response.body#/accepted/0")}),
                    "400": _error("body is not a canonical msgpack array of byte strings (malformed), or is "
                                  "empty (empty)"),
                    "413": _error("body over 4 MiB (too_large) or more than 5000 transactions (too_many_txs)"),
                    "415": _error("Content-Type is not application/octet-stream"),
                    "429": _error("over budget: this client's, the node-wide budget of all untrusted clients (or "
                                  "this client's network's fair share of it), or the trusted clients' "
                                  "(limits.client_tx_rate, node_tx_rate, trusted_tx_rate)", retry_after=True),
                    "503": _error("shedding load: mempool_full, busy (too much being verified), backlog (more "
                                  "waiting than the network commits in limits.backlog_ms), disk_low (free space "
                                  "below limits.disk_min_free_mb), upstream_busy (observer: every validator refuses); "
                                  "or a store fault (data_corrupt, disk_full: the node is stopping)",
                                  retry_after=True),
                    "500": INTERNAL,
                }}},
            "/api/v1/txs/{hash}": _get(
                "Where a transaction is: pending, committed (with inclusion proof), rejected (code, message) or "
                "unknown",
                _json("tx status", "TxStatus", {
                    "block": _link("getBlock", "the block that holds it (committed only)",
                                   height="$response.body#/height")}),
                {"400": _error("hash is not 64 hex digits (bad_hash)"),
                 "404": _error("the committed block is missing from this node's store")},
                [_param("hash", "path", {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                        "a transaction hash: sha256 of the encoded transaction, 64 hex digits (either case)",
                        example=live.tx_hash)], operation_id="getTx"),
            "/api/v1/blocks/raw": _get(
                "Raw blocks with certificates, msgpack [[block, certificate], ...] from `from`: consecutive, at "
                "most 500 blocks, ends at `to`, at this node's height, or before the block that would take the "
                "page past 8 MiB (at least one block is always sent); empty when from is above this node's height "
                "or to < from",
                _msgpack("msgpack array of [block, certificate]", "RawBlockPage"),
                {"400": _error("from missing, or from or to not ASCII digits, or from < 1 (bad_range, bad_height)")},
                [_param("from", "query", {"type": "integer", "minimum": 1, "maximum": 10**18 - 1},
                        "first height", example=1),
                 _param("to", "query", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
                        "last height (default from + 499)", required=False, example=height_example)],
                operation_id="getBlocksRaw"),
            "/api/v1/blocks/{height}": _get(
                "A committed block: {height, hash, header, txs: [hash], commit}",
                _json("block", "Block", {"tx": _link("getTx", "the block's first transaction",
                                                     hash="$response.body#/txs/0"),
                                         "raw": _link("getBlockRaw", "the same block as msgpack",
                                                      height="$response.body#/height")}),
                {"400": _error("height is not ASCII digits (bad_height)"),
                 "404": _error("no block at this height (unknown_block)")}, [height], operation_id="getBlock"),
            "/api/v1/blocks/{height}/raw": _get(
                "One raw block with its certificate, msgpack [block, certificate]",
                _msgpack("msgpack [block, certificate]", "RawBlock"),
                {"400": _error("height is not ASCII digits (bad_height)"),
                 "404": _error("no block at this height (unknown_block)")}, [height], operation_id="getBlockRaw"),
            "/api/v1/campaigns": _get(
                "Every campaign, summarised",
                _json("campaigns in ascending byte order of id", "Campaigns", {
                    "campaign": _link("getCampaign", "the first campaign",
                                      campaign="$response.body#/campaigns/0/campaign_id"),
                    "tally": _link("getTally", "the first campaign's tally",
                                   campaign="$response.body#/campaigns/0/campaign_id"),
                    "ballots": _link("getBallots", "the first campaign's ballots",
                                     campaign="$response.body#/campaigns/0/campaign_id")}),
                operation_id="getCampaigns"),
            "/api/v1/campaigns/{campaign}": _get(
                "A campaign: its specification, status, counts and initiatives",
                _json("campaign", "Campaign", {
                    "initiative": _link("getInitiative", "the campaign's first initiative",
                                        campaign="$response.body#/campaign/campaign_id",
                                        initiative="$response.body#/initiatives/0/initiative_id"),
                    "tally": _link("getTally", "its tally", campaign="$response.body#/campaign/campaign_id")}),
                no_campaign, [campaign], operation_id="getCampaign"),
            "/api/v1/campaigns/{campaign}/tally": _get(
                "The tally: {campaign, status, height, total_ballots, winners, districts, result_hash, "
                "result_status, rule, scope, closed_height, close_reason}",
                _json("tally", "Tally"), no_campaign, [campaign], operation_id="getTally"),
            "/api/v1/campaigns/{campaign}/ballots": _get(
                "Anonymised ballots in commit order, one page: {campaign, height, ballots: [{voter_key, "
                "district_id, choices, height, index, tx_hash}], next}. A page reads at most 2000 blocks or 8 MiB, "
                "so it may hold fewer than limit ballots and still have a next cursor; next is null once the close "
                "(or, for an open campaign, this node's height) is reached",
                _json("ballot page", "BallotPage", {
                    "tx": _link("getTx", "the first ballot's transaction and proof",
                                hash="$response.body#/ballots/0/tx_hash")}),
                {"400": _error("after is not a cursor <height>:<index> (bad_cursor) or limit is not 1..2000 "
                               "(bad_limit)"), **no_campaign},
                [campaign,
                 _param("after", "query", {"type": "string", "pattern": "^[0-9]{1,18}:[0-9]{1,9}$"},
                        "the next cursor of the previous page", required=False),
                 _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 2000, "default": 500},
                        "at most this many ballots", required=False)], operation_id="getBallots"),
            "/api/v1/campaigns/{campaign}/initiatives/{initiative}": _get(
                "An initiative with its vote count and progress reports", _json("initiative", "Initiative"),
                {"404": _error("no such campaign (unknown_campaign) or initiative (unknown_initiative)")},
                [campaign, initiative], operation_id="getInitiative"),
            "/metrics": _get("Prometheus metrics (text format 0.0.4)",
                             {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                             tag="operations", operation_id="getMetrics"),
            **document_paths(error=_error, json_body=_json, internal=INTERNAL, store_fault=STORE_FAULT,
                             example=live.document),
            **cosign_paths(error=_error, json_body=_json, internal=INTERNAL, store_fault=STORE_FAULT,
                           example=live.signing_request),
            "/admin/v1/backup": _get(
                "A consistent snapshot of this node's LevelDB in the backup format (docs/OPERATOR.md \"Backup and "
                "restore\"); needs Authorization: Bearer <the home's admin-token>. `veche node backup --home DIR` "
                "uses it",
                {"description": "the backup file (not msgpack: the framed format of node/ops/backup.py)",
                 "content": {BACKUP_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
                {"401": _error("no or the wrong admin token (unauthorized)")},
                [_param("Authorization", "header", {"type": "string"}, "Bearer <the home's admin-token>",
                        required=False)], tag="admin", operation_id="getBackup"),
            "/healthz": _get("Health: 200 while the node commits (or follows) blocks with enough peers; 503 "
                             "with reasons when its last block is stale, it is catching up, a validator lacks the "
                             "peer links a quorum needs, or an observer reaches no source (docs/NODE.md §7)",
                             _json("healthy", HEALTH_SCHEMA),
                             {"503": {"description": "unhealthy: the same object with status \"unhealthy\" and "
                                                     "its reasons; or, while the node stops on a store fault "
                                                     "(data_corrupt, disk_full), an error",
                                      "headers": {"Retry-After": {"description": "seconds before asking again",
                                                                  "schema": {"type": "string",
                                                                             "pattern": "^[1-9][0-9]*$"}}},
                                      "content": {"application/json": {"schema": {
                                          "oneOf": [HEALTH_SCHEMA, ref("Error")]}}}}},
                             tag="operations", operation_id="getHealth"),
            "/p2p/v1/envelope": {"post": {
                "operationId": "postEnvelope",
                "summary": "Validator-to-validator envelope: a signed 152-byte header naming the sender by its "
                           "validator key, then the payload (docs/PROTOCOL.md §7.2); authenticated before the "
                           "payload is read",
                "tags": ["p2p"],
                "requestBody": {"required": True, "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": {
                    "200": _json("{ok, duplicate, malformed_messages, txs_queued}", "EnvelopeAnswer"),
                    "400": _error("no envelope header, wrong chain, Content-Length not header + payload length, "
                                  "or a payload that is not two arrays of byte strings"),
                    "401": _error("sender is not a validator at a height near this node's (unknown_sender), the "
                                  "header signature does not verify, or the payload does not match its signed "
                                  "length and hash (bad_signature)"),
                    "403": _error("this node is an observer and takes no p2p messages"),
                    "413": _error("payload over 16 MiB"),
                    "503": _error("more than 64 MiB of authenticated payloads are being read at once; or a store "
                                  "fault (data_corrupt, disk_full: the node is stopping)", retry_after=True),
                    "415": _error("Content-Type is not application/msgpack or application/octet-stream"),
                    "500": INTERNAL,
                }}},
        },
        "components": {"schemas": {**components(), **DOCUMENT_SCHEMAS, **COSIGN_SCHEMAS}},
    }
