"""``/api/v1/signing-requests``: the routes of the nodes' pending signing requests (docs/NODE.md §15).

``POST /api/v1/signing-requests`` (a signing request, JSON, signed by at least one committee member
in force) keeps it or adds its signatures; ``GET /api/v1/signing-requests`` lists the open ones;
``GET /api/v1/signing-requests/{signing_hash}`` gives one (410 once it expired).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aiohttp import web

from node.cosign.store import MAX_BODY_BYTES, RequestStore
from node.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

HEX64 = re.compile(r"[0-9a-f]{64}")
StoreOf = Callable[[web.Request], RequestStore]


def add_request_routes(app: web.Application, store_of: StoreOf) -> None:
    async def list_requests(request: web.Request) -> web.Response:
        return web.json_response({"requests": [entry.summary() for entry in store_of(request).listing()]})

    async def get_request(request: web.Request) -> web.Response:
        value = request.match_info["signing_hash"]
        if not HEX64.fullmatch(value):
            raise BadRequest("a signing hash is 64 lowercase hex digits", "bad_hash")
        return web.json_response(store_of(request).get(bytes.fromhex(value)).to_json())

    async def post_request(request: web.Request) -> web.Response:
        store = store_of(request)
        if request.content_type != "application/json":
            raise UnsupportedMediaType("a signing request is sent as application/json")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"a signing request is at most {MAX_BODY_BYTES} bytes", "too_large")
        body = bytearray()
        async for chunk in request.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise PayloadTooLarge(f"a signing request is at most {MAX_BODY_BYTES} bytes", "too_large")
        entry, outcome = store.put(store.parse(bytes(body)))
        return web.json_response(entry.to_json(), status=201 if outcome == "new" else 200)

    app.router.add_get("/api/v1/signing-requests", list_requests)
    app.router.add_post("/api/v1/signing-requests", post_request)
    app.router.add_get("/api/v1/signing-requests/{signing_hash}", get_request)
