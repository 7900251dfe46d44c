"""``/api/v1/documents``: the content-addressed document store's routes (docs/NODE.md §14).

``GET /api/v1/documents/{sha256}`` serves a document a committed transaction names (64 lowercase
hex digits, nothing else); ``POST /api/v1/documents`` takes an upload signed by a committee or
district operator key — authenticated from its headers before the body is read::

    X-Veche-Document:  <sha256 of the body, 64 lowercase hex>
    X-Veche-Key:       <uploader's public key, 64 lowercase hex>
    X-Veche-Signature: <Ed25519 over b"veche/v1/document.upload" + chain_id + encode([sha256]), 128 hex>
    Content-Type:      the type the file's first bytes give (application/pdf, image/jpeg, image/png,
                       image/webp, application/vnd.veche.manifest)

``GET /api/v1/documents`` summarises the store and its limits.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aiohttp import web

from node.documents.service import DocumentService, Unauthenticated
from node.errors import BadRequest, PayloadTooLarge

HEX64 = re.compile(r"[0-9a-f]{64}")
HEX128 = re.compile(r"[0-9a-f]{128}")
ServiceOf = Callable[[web.Request], DocumentService]
SERVED_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Content-Disposition": "inline",
}


def parse_digest(value: str, what: str = "a document hash") -> bytes:
    """Exactly 64 lowercase hex digits (the form every Veche tool prints)."""
    if not HEX64.fullmatch(value):
        raise BadRequest(f"{what} is 64 lowercase hex digits, got {value[:80]!r}", "bad_hash")
    return bytes.fromhex(value)


def add_document_routes(app: web.Application, service_of: ServiceOf) -> None:
    async def get_summary(request: web.Request) -> web.Response:
        return web.json_response(service_of(request).summary())

    async def get_document(request: web.Request) -> web.Response:
        digest = parse_digest(request.match_info["sha256"])
        data, kind = await service_of(request).read(digest)
        return web.Response(body=data, content_type=kind,
                            headers={**SERVED_HEADERS, "ETag": f'"{digest.hex()}"'})

    async def post_document(request: web.Request) -> web.Response:
        service = service_of(request)
        headers = request.headers
        if not all(name in headers for name in ("X-Veche-Document", "X-Veche-Key", "X-Veche-Signature")):
            raise Unauthenticated("an upload carries X-Veche-Document, X-Veche-Key and X-Veche-Signature "
                                  "(docs/NODE.md §14)")
        digest = parse_digest(headers["X-Veche-Document"], "X-Veche-Document")
        key_hex, signature_hex = headers["X-Veche-Key"], headers["X-Veche-Signature"]
        if not HEX64.fullmatch(key_hex) or not HEX128.fullmatch(signature_hex):
            raise BadRequest("X-Veche-Key is 64 and X-Veche-Signature 128 lowercase hex digits", "bad_header")
        public_key = bytes.fromhex(key_hex)
        service.authorize(digest, public_key, bytes.fromhex(signature_hex))
        length = request.content_length
        limit = service.limits.max_document_bytes
        if length is not None:
            service.check_room(length, digest, public_key)
        chunks, size = [], 0
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"a document is at most {limit} bytes", "too_large")
            chunks.append(chunk)
        data = b"".join(chunks)
        service.check_room(len(data), digest, public_key)
        held, new = await service.upload(digest, data, request.content_type, public_key)
        return web.json_response({"sha256": digest.hex(), "size": held.size, "type": held.type,
                                  "status": "provisional" if held.provisional else "committed",
                                  "expires_at_ms": service.expires_at_ms(held)}, status=201 if new else 200)

    app.router.add_get("/api/v1/documents", get_summary)
    app.router.add_post("/api/v1/documents", post_document)
    app.router.add_get("/api/v1/documents/{sha256}", get_document)
