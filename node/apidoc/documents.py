"""OpenAPI entries and schemas of the document store routes (node/documents/api.py, docs/NODE.md §14)."""

from __future__ import annotations

from typing import Any

from node.apidoc.schemas import HASH, Schema, closed, integer, nullable, one_of, string

DOCUMENT_TYPES_SCHEMA = one_of("application/pdf", "image/jpeg", "image/png", "image/webp",
                               "application/vnd.veche.manifest")
DOCUMENT_SUMMARY = closed({
    "documents": integer(description="documents held that a committed transaction names"),
    "provisional": integer(description="uploads held that no committed transaction names yet"),
    "bytes": integer(description="bytes held, both kinds"),
    "provisional_bytes": integer(),
    "named": integer(description="documents the chain names (directly, or listed by a named manifest held here)"),
    "missing": integer(description="named documents this node does not hold yet (it fetches them from other nodes)"),
    "types": {"type": "array", "items": one_of("application/pdf", "image/jpeg", "image/png", "image/webp")},
    "limits": closed({"max_document_bytes": integer(1), "max_total_bytes": integer(1),
                      "max_provisional_bytes": integer(1), "max_provisional_per_key": integer(1),
                      "provisional_ttl_ms": integer(1)}),
})
DOCUMENT_STORED = closed({
    "sha256": HASH, "size": integer(1), "type": DOCUMENT_TYPES_SCHEMA,
    "status": one_of("provisional", "committed"),
    "expires_at_ms": nullable(integer(description="unix ms when a provisional upload is deleted unless a "
                                                  "transaction naming it commits; null once named")),
})
DOCUMENT_SCHEMAS: dict[str, Schema] = {"DocumentSummary": DOCUMENT_SUMMARY, "DocumentStored": DOCUMENT_STORED}


def document_paths(*, error: Any, json_body: Any, internal: Any, store_fault: Any,
                   example: str | None) -> dict[str, Any]:
    """The three routes; ``error``/``json_body`` are node/openapi.py's response builders."""
    digest = {"name": "sha256", "in": "path", "required": True, "schema": string(pattern="^[0-9a-f]{64}$"),
              "description": "the document's SHA-256: exactly 64 lowercase hex digits"}
    if example is not None:
        digest["example"] = example
    binary = {"schema": {"type": "string", "format": "binary"}}
    header = {"schema": {"type": "string"}}
    upload_headers = [
        {"name": "X-Veche-Document", "in": "header", "required": True, "schema": string(pattern="^[0-9a-f]{64}$"),
         "description": "SHA-256 of the body"},
        {"name": "X-Veche-Key", "in": "header", "required": True, "schema": string(pattern="^[0-9a-f]{64}$"),
         "description": "the uploader's committee or district operator key"},
        {"name": "X-Veche-Signature", "in": "header", "required": True, "schema": string(pattern="^[0-9a-f]{128}$"),
         "description": "Ed25519 over b\"veche/v1/document.upload\" + chain_id + encode([sha256]) "
                        "(docs/PROTOCOL.md §17.3)"},
    ]
    return {
        "/api/v1/documents": {
            "get": {"operationId": "getDocuments", "tags": ["public"],
                    "summary": "The document store: counts, bytes and limits",
                    "responses": {"200": json_body("summary", "DocumentSummary"), "503": store_fault, "500": internal}},
            "post": {
                "operationId": "postDocument", "tags": ["operators"],
                "summary": "Upload a document (PDF, JPEG, PNG, WebP or a document manifest), signed by a committee "
                           "or district operator key; kept provisionally until a committed transaction names it",
                "parameters": upload_headers,
                "requestBody": {"required": True, "content": {
                    kind: binary for kind in ("application/pdf", "image/jpeg", "image/png", "image/webp",
                                              "application/vnd.veche.manifest")}},
                "responses": {
                    "200": json_body("already held: nothing new stored", "DocumentStored"),
                    "201": json_body("stored: provisional until a committed transaction names it, or committed",
                                     "DocumentStored"),
                    "400": error("bad_hash, bad_header (malformed X-Veche-* header), empty, hash_mismatch (the body "
                                 "is not the hash named), bad_manifest, manifest_mismatch (a named manifest lists "
                                 "another type or size for this hash)"),
                    "401": error("unauthenticated: the X-Veche-Document, X-Veche-Key and X-Veche-Signature headers "
                                 "are required"),
                    "403": error("bad_signature (does not verify for this hash on this chain) or permission_denied "
                                 "(not a committee or district operator key)"),
                    "413": error("too_large: over limits.document_max_bytes"),
                    "415": error("unsupported_type: the first bytes are not PDF, JPEG, PNG, WebP or a manifest, or "
                                 "Content-Type differs from the type they give"),
                    "429": error("over_quota: this key's provisional uploads reach "
                                 "limits.documents_provisional_key_mb", retry_after=True),
                    "503": error("disk_low (free space under limits.disk_min_free_mb), or a store fault",
                                 retry_after=True),
                    "507": error("documents_full: the store is at limits.documents_max_total_mb, or provisional "
                                 "uploads at limits.documents_provisional_mb"),
                    "500": internal,
                }},
        },
        "/api/v1/documents/{sha256}": {"get": {
            "operationId": "getDocument", "tags": ["public"],
            "summary": "A document a committed transaction names (directly or through a named manifest), byte for "
                       "byte; its SHA-256 is the path",
            "parameters": [digest],
            "responses": {
                "200": {"description": "the document; Content-Type from its first bytes",
                        "headers": {"ETag": header, "Cache-Control": header},
                        "content": {kind: binary for kind in ("application/pdf", "image/jpeg", "image/png",
                                                              "image/webp", "application/vnd.veche.manifest")}},
                "400": error("bad_hash: not 64 lowercase hex digits"),
                "404": error("unknown_document (no committed transaction names it: refused even if an upload is "
                             "held provisionally) or not_replicated (named, not held by this node yet: ask another "
                             "node)"),
                "503": store_fault, "500": internal,
            }}},
    }

