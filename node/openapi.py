"""The node's OpenAPI 3 document, written by hand: every route and every status code it can return.

``tests/node/test_openapi.py`` drives each route into each documented status and checks that no
route answers with a status its entry does not list. 500 is listed everywhere because a handler
that hits a defect answers 500 (logged) instead of taking the node down.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    if retry_after:
        response["headers"] = {"Retry-After": {"description": "seconds to wait before retrying",
                                               "schema": {"type": "integer"}}}
    return response


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def _msgpack(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


INTERNAL = _error("unexpected defect on this node (logged); the node keeps running")
HEIGHT_PARAM = {"name": "height", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
CAMPAIGN_PARAM = {"name": "campaign", "in": "path", "required": True, "schema": {"type": "string"}}


def _get(summary: str, ok: dict[str, Any], errors: dict[str, dict[str, Any]] | None = None,
         parameters: list[dict[str, Any]] | None = None, tag: str = "public") -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    responses.update(errors or {})
    responses["500"] = INTERNAL
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Veche node API", "version": "1",
                 "description": "Public API of a Veche validator or observer (ARCHITECTURE §6, docs/NODE.md). "
                                "Errors are {\"error\": {\"code\", \"message\"}}."},
        "paths": {
            "/api/v1/status": _get("Node status: chain, role, height, hashes, peers, mempool, catching_up",
                                   _json("status", {"$ref": "#/components/schemas/Status"})),
            "/api/v1/genesis": _get("The genesis document this node runs", _json("genesis document")),
            "/api/v1/openapi.json": _get("This document", _json("OpenAPI 3 document")),
            "/api/v1/evidence": _get("Equivocation evidence this validator has seen",
                                     _json("{evidence: [{validator_index, height, round, step, seen_ms, evidence}]}")),
            "/api/v1/validators": _get(
                "Who may sign what at a height (default: the next block): the validator set in force there "
                "(with quorum and proposer order), the committee keys and threshold, district operator and "
                "gateway keys, the protocol version, and which change put them in force",
                _json("roster", {"$ref": "#/components/schemas/Roster"}),
                {"400": _error("height is not a non-negative integer of ASCII digits"),
                 "404": _error("height is more than 2 above this node's height: the set there is not decided yet "
                               "(a change committed at height H is in force from H + 2)")},
                [{"name": "height", "in": "query", "required": False,
                  "schema": {"type": "integer", "minimum": 0}}]),
            "/api/v1/validators/changes": _get(
                "Every validator set change for a light client trusting only genesis: per block that "
                "committed validators.update transactions, its header, commit certificate and each such "
                "transaction with its Merkle inclusion proof (docs/PROTOCOL.md §14.4)",
                _json("{chain_id, height, changes: [{height, effective_height, header, certificate, txs: [{tx, "
                      "index, tree_size, proof}]}]}")),
            "/api/v1/txs": {"post": {
                "summary": "Submit a batch of signed transactions",
                "tags": ["public"],
                "requestBody": {"required": True, "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary",
                               "description": "msgpack array of encoded transactions (bin), at most 5000 "
                                              "transactions and 4 MiB"}}}},
                "responses": {
                    "200": _json("{accepted: [hash hex], rejected: [{index, code, message}]}",
                                 {"$ref": "#/components/schemas/Admission"}),
                    "400": _error("body is not a msgpack array of byte strings, or is empty"),
                    "413": _error("body over 4 MiB or more than 5000 transactions"),
                    "415": _error("Content-Type is not application/octet-stream"),
                    "429": _error("over budget: this client's, the node-wide budget of all untrusted clients (or "
                                  "this client's network's fair share of it), or the trusted clients' "
                                  "(limits.client_tx_rate, node_tx_rate, trusted_tx_rate)",
                                  retry_after=True),
                    "503": _error("shedding load: mempool full, too much being verified, or more waiting than the "
                                  "network commits in limits.backlog_ms", retry_after=True),
                    "500": INTERNAL,
                }}},
            "/api/v1/txs/{hash}": _get(
                "Where a transaction is: pending, committed (with inclusion proof), rejected (code, message) or "
                "unknown", _json("tx status", {"$ref": "#/components/schemas/TxStatus"}),
                {"400": _error("hash is not 64 hex digits"),
                 "404": _error("the committed block is missing from this node's store")},
                [{"name": "hash", "in": "path", "required": True, "schema": {"type": "string"}}]),
            "/api/v1/blocks/raw": _get(
                "Raw blocks with certificates, msgpack [[block, certificate], ...] (≤ 500 blocks, ≤ 8 MiB; "
                "empty when from is above this node's height)",
                _msgpack("msgpack array of [block, certificate]"),
                {"400": _error("from missing or not an integer, to not an integer, or to < from")},
                [{"name": "from", "in": "query", "required": True, "schema": {"type": "integer", "minimum": 1}},
                 {"name": "to", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}}]),
            "/api/v1/blocks/{height}": _get(
                "A committed block: {height, hash, header, txs: [hash], commit}", _json("block"),
                {"400": _error("height is not an integer"), "404": _error("no block at this height")},
                [HEIGHT_PARAM]),
            "/api/v1/blocks/{height}/raw": _get(
                "One raw block with its certificate, msgpack [block, certificate]",
                _msgpack("msgpack [block, certificate]"),
                {"400": _error("height is not an integer"), "404": _error("no block at this height")},
                [HEIGHT_PARAM]),
            "/api/v1/campaigns": _get("Every campaign, summarised", _json("{height, campaigns: [...]}")),
            "/api/v1/campaigns/{campaign}": _get(
                "A campaign: its specification, status, counts and initiatives", _json("campaign"),
                {"404": _error("no such campaign")}, [CAMPAIGN_PARAM]),
            "/api/v1/campaigns/{campaign}/tally": _get(
                "The tally: {campaign, status, height, total_ballots, winners, districts, result_hash, "
                "result_status}", _json("tally"), {"404": _error("no such campaign")}, [CAMPAIGN_PARAM]),
            "/api/v1/campaigns/{campaign}/ballots": _get(
                "Anonymised ballots in commit order, one page: {campaign, height, ballots: [{voter_key, "
                "district_id, choices, height, index, tx_hash}], next}. A page reads at most 2000 blocks or "
                "8 MiB, so it may hold fewer than limit ballots and still have a next cursor; next is null "
                "once the close (or, for an open campaign, this node's height) is reached",
                _json("ballot page", {"$ref": "#/components/schemas/BallotPage"}),
                {"400": _error("after is not a cursor (<height>:<index>) or limit is not 1..2000"),
                 "404": _error("no such campaign")},
                [CAMPAIGN_PARAM,
                 {"name": "after", "in": "query", "required": False,
                  "schema": {"type": "string", "description": "the next cursor of the previous page"}},
                 {"name": "limit", "in": "query", "required": False,
                  "schema": {"type": "integer", "minimum": 1, "maximum": 2000, "default": 500}}]),
            "/api/v1/campaigns/{campaign}/initiatives/{initiative}": _get(
                "An initiative with its vote count and progress reports", _json("initiative"),
                {"404": _error("no such campaign or initiative")},
                [CAMPAIGN_PARAM, {"name": "initiative", "in": "path", "required": True, "schema": {"type": "string"}}]),
            "/metrics": _get("Prometheus metrics (text format 0.0.4)",
                             {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                             tag="operations"),
            "/admin/v1/backup": _get(
                "A consistent snapshot of this node's LevelDB in the backup format (docs/OPERATOR.md); needs "
                "Authorization: Bearer <the home's admin-token>. `veche node backup --home DIR` uses it",
                _msgpack("backup file"), {"401": _error("no or the wrong admin token")}, tag="operations"),
            "/p2p/v1/envelope": {"post": {
                "summary": "Validator-to-validator envelope [chain_id, sender_key, sequence, payload, signature]",
                "tags": ["p2p"],
                "requestBody": {"required": True, "content": {"application/msgpack": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": {
                    "200": _json("{ok, duplicate, malformed_messages, txs_queued}"),
                    "400": _error("garbage, truncated or non-canonical msgpack, malformed fields, wrong chain id"),
                    "401": _error("sender is not a validator at a height near this node's, or the signature does "
                                  "not verify"),
                    "403": _error("this node is an observer and takes no p2p messages"),
                    "413": _error("envelope over 16 MiB"),
                    "503": _error("more than 64 MiB of envelopes are being read at once", retry_after=True),
                    "415": _error("Content-Type is not application/msgpack or application/octet-stream"),
                    "500": INTERNAL,
                }}},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
            "Status": {"type": "object", "required": [
                "chain_id", "node", "role", "height", "last_block_hash", "app_hash", "peers", "mempool",
                "catching_up", "genesis_hash", "last_block_time_ms", "validator_index"], "properties": {
                "chain_id": {"type": "string"}, "node": {"type": "string"},
                "role": {"type": "string", "enum": ["validator", "observer"]},
                "height": {"type": "integer"}, "last_block_hash": {"type": "string"},
                "app_hash": {"type": "string"},
                "peers": {"type": "integer", "description": "validator: peer links up; observer: sources answering"},
                "mempool": {"type": "integer", "description": "pending transactions"},
                "catching_up": {"type": "boolean"}, "genesis_hash": {"type": "string"},
                "last_block_time_ms": {"type": "integer"},
                "validator_index": {"type": "integer", "nullable": True}}},
            "Roster": {"type": "object", "required": [
                "height", "node_height", "from_height", "committed_height", "changed_by", "validators", "quorum",
                "skip", "committee", "district_operators", "gateways", "protocol_version", "next_change"],
                "properties": {
                "height": {"type": "integer"}, "node_height": {"type": "integer"},
                "from_height": {"type": "integer", "description": "the set has been in force since this height"},
                "committed_height": {"type": "integer", "nullable": True,
                                     "description": "the block that committed it (null: genesis)"},
                "changed_by": {"type": "array", "items": {"type": "object", "properties": {
                    "kind": {"type": "string"}, "tx_hash": {"type": "string"}}}},
                "validators": {"type": "array", "items": {"type": "object", "properties": {
                    "index": {"type": "integer"}, "name": {"type": "string"}, "operator": {"type": "string"},
                    "public_key": {"type": "string"}, "url": {"type": "string"}}}},
                "quorum": {"type": "integer"}, "skip": {"type": "integer"},
                "committee": {"type": "object", "properties": {"threshold": {"type": "integer"}, "members": {
                    "type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "public_key": {"type": "string"}}}}}},
                "district_operators": {"type": "array", "items": {"type": "object"}},
                "gateways": {"type": "array", "items": {"type": "object"}},
                "protocol_version": {"type": "integer"},
                "next_change": {"type": "object", "nullable": True}}},
            "Admission": {"type": "object", "required": ["accepted", "rejected"], "properties": {
                "accepted": {"type": "array", "items": {"type": "string"}},
                "rejected": {"type": "array", "items": {"type": "object", "properties": {
                    "index": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"}}}}}},
            "BallotPage": {"type": "object", "required": ["campaign", "height", "ballots", "next"], "properties": {
                "campaign": {"type": "string"},
                "height": {"type": "integer", "description": "the last block this walk could read"},
                "ballots": {"type": "array", "items": {"type": "object", "required": [
                    "voter_key", "district_id", "choices", "height", "index", "tx_hash"], "properties": {
                    "voter_key": {"type": "string", "description": "the ballot's pseudonymous voter key, hex"},
                    "district_id": {"type": "string"},
                    "choices": {"type": "array", "items": {"type": "string"}},
                    "height": {"type": "integer"}, "index": {"type": "integer"},
                    "tx_hash": {"type": "string", "description": "GET /api/v1/txs/{hash} gives its proof"}}}},
                "next": {"type": "string", "nullable": True}}},
            "TxStatus": {"type": "object", "required": ["status"], "properties": {
                "status": {"type": "string", "enum": ["pending", "committed", "rejected", "unknown"]},
                "height": {"type": "integer", "nullable": True}, "index": {"type": "integer", "nullable": True},
                "proof": {"type": "object", "nullable": True},
                "code": {"type": "string"}, "message": {"type": "string"}}},
        }},
    }
