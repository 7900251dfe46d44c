"""OpenAPI entries and schemas of the pending signing requests (node/cosign/api.py, docs/NODE.md §15)."""

from __future__ import annotations

from typing import Any

from node.apidoc.schemas import HASH, KEY, Schema, array, closed, integer, nullable, one_of, ref, string

KINDS = one_of("campaign.create", "campaign.close", "initiative.review", "progress.report", "validators.update",
               "keys.rotate", "protocol.upgrade")
HEX = string(pattern="^([0-9a-f]{2})*$")
SIGNING_REQUEST = closed({
    "format": one_of("veche-signing-request/1"), "chain_id": string(), "genesis_hash": HASH, "kind": KINDS,
    "body": HEX, "signing_hash": HASH, "summary": array(string()), "body_json": {"type": "object"},
    "committee": closed({"threshold": integer(1), "height": integer(),
                         "members": array(closed({"name": string(), "public_key": KEY}))}),
    "signatures": array(closed({"public_key": KEY, "signature": string(pattern="^[0-9a-f]{128}$")}), max_items=16),
    "prepared_at_ms": integer(),
}, {"expires_at_ms": integer()}, description="a signing request (docs/OPERATOR.md \"Signing requests\")")
STORED_REQUEST = closed({"request": ref("SigningRequest"), "received_at_ms": integer(),
                         "committed_height": nullable(integer(1))})
REQUEST_LIST = closed({"requests": array(closed({
    "signing_hash": HASH, "kind": KINDS, "summary": array(string()), "signers": array(KEY),
    "threshold": integer(1), "prepared_at_ms": integer(), "expires_at_ms": integer(),
    "committed_height": nullable(integer(1))}))})
COSIGN_SCHEMAS: dict[str, Schema] = {"SigningRequest": SIGNING_REQUEST, "StoredSigningRequest": STORED_REQUEST,
                                     "SigningRequests": REQUEST_LIST}


def cosign_paths(*, error: Any, json_body: Any, internal: Any, store_fault: Any,
                 example: str | None) -> dict[str, Any]:
    signing_hash: dict[str, Any] = {"name": "signing_hash", "in": "path", "required": True,
                                    "schema": string(pattern="^[0-9a-f]{64}$"),
                                    "description": "sha256 of the request's signing bytes, 64 lowercase hex digits"}
    if example is not None:
        signing_hash["example"] = example
    return {
        "/api/v1/signing-requests": {
            "get": {"operationId": "getSigningRequests", "tags": ["public"],
                    "summary": "Open signing requests of the committee, oldest first",
                    "responses": {"200": json_body("open requests", "SigningRequests"), "503": store_fault,
                                  "500": internal}},
            "post": {
                "operationId": "postSigningRequest", "tags": ["operators"],
                "summary": "Keep a signing request signed by committee members in force, or add its signatures to "
                           "the one kept; passed on to the other nodes",
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref("SigningRequest")}}},
                "responses": {
                    "200": json_body("the request was kept already: its signatures now", "StoredSigningRequest"),
                    "201": json_body("kept (its expiry capped at 7 days)", "StoredSigningRequest"),
                    "400": error("bad_signing_request: not a JSON object"),
                    "403": error("a request this node cannot authenticate: bad_signing_request (its bytes do not hold "
                                 "together: signing_hash not the body's — altered —, a body that does not decode, a "
                                 "signature that does not verify), wrong_chain, bad_kind (not a committee "
                                 "transaction), unsigned, or permission_denied (a signer that is not a committee key "
                                 "in force)"),
                    "410": error("expired: the request's expires_at_ms has passed"),
                    "413": error("too_large: over 256 KiB"),
                    "415": error("not application/json"),
                    "429": error("over_quota: a member with 64 open requests here", retry_after=True),
                    "503": store_fault,
                    "507": error("requests_full: 256 open requests"),
                    "500": internal,
                }},
        },
        "/api/v1/signing-requests/{signing_hash}": {"get": {
            "operationId": "getSigningRequest", "tags": ["public"],
            "summary": "One signing request with every signature this node has", "parameters": [signing_hash],
            "responses": {
                "200": json_body("the request", "StoredSigningRequest"),
                "400": error("bad_hash: not 64 lowercase hex digits"),
                "404": error("unknown_request"),
                "410": error("expired"),
                "503": store_fault, "500": internal,
            }}},
    }
