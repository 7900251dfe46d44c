"""The operator's admin route: ``POST /admin/unlock`` behind ``veche gateway unlock``.

Rate-limit and lock-out counters live in the running gateway's memory, so the command has to reach
the running process. It does so on the gateway's own listening port, from the same machine:

* the TCP peer must be a loopback address, and the request must carry none of the proxy headers
  (``X-Forwarded-For``, ``X-Real-IP``, the configured ``trusted_proxy_header``): a request that came
  through nginx — which also connects from 127.0.0.1 — is refused, and the shipped nginx site
  answers ``/admin/`` with 404 before it gets here;
* it must carry ``Authorization: Bearer <token>`` with the token of ``admin_token_file``
  (``<home>/admin-token``, 32 random bytes in hex, created 0600 at the first start; readable only by
  the gateway's user and root).

Anything else gets a plain 404, as if there were no such route. Each unlock is logged at WARNING
with a short keyed hash of the phone (never the number), what was cleared, and is answered with the
same reference, so the audit trail and the operator's terminal can be matched.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from pathlib import Path

from aiohttp import web

from gateway.auth import load_or_create_secret
from gateway.errors import PhoneError
from gateway.phone import normalize_phone
from gateway.site import GATEWAY

log = logging.getLogger("veche.gateway.admin")

UNLOCK_PATH = "/admin/unlock"
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")
MAX_BODY_BYTES = 1024


def load_or_create_token(path: Path) -> str:
    """The admin token (32 random bytes, hex); made like the gateway secret: 0600, never overwritten."""
    return load_or_create_secret(path).hex()


def _from_this_machine(request: web.Request, proxy_header: str | None) -> bool:
    try:
        loopback = ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False
    headers = PROXY_HEADERS + ((proxy_header,) if proxy_header else ())
    return loopback and not any(name in request.headers for name in headers)


def not_found() -> web.Response:
    return web.json_response({"error": {"code": "not_found", "message": "no such page"}}, status=404)


async def unlock(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    if not _from_this_machine(request, gw.config.trusted_proxy_header):
        return not_found()
    supplied = request.headers.get("Authorization", "")
    expected = f"Bearer {gw.admin_token}"
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        log.warning("admin request with a wrong or missing token refused (peer %s)", request.remote)
        return not_found()
    try:
        body = json.loads(await request.content.read(MAX_BODY_BYTES + 1) or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("phone"), str) \
            or not isinstance(body.get("sms_limits", False), bool):
        return web.json_response({"error": {"code": "bad_request",
                                            "message": "send {\"phone\": \"+79…\", \"sms_limits\": false}"}},
                                 status=400)
    try:
        e164 = normalize_phone(body["phone"], gw.config.sms.allowed_regions, gw.config.sms.allowed_prefixes)
    except PhoneError as exc:
        return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=400)
    tag = gw.codes.tag(e164)
    sms_limits = bool(body.get("sms_limits", False))
    cleared = gw.codes.clear_phone(tag, sms_limits=sms_limits)
    if sms_limits:
        gw.limiter.forget("sms_per_phone", tag.hex())
    reference = tag.hex()[:12]
    log.warning("operator unlock of phone ref %s: %d lock-out/wrong-code entr%s cleared%s", reference, cleared,
                "y" if cleared == 1 else "ies", "; SMS cooldown, daily count and per-phone rate reset"
                if sms_limits else "")
    return web.json_response({"phone_ref": reference, "lockouts_cleared": cleared, "sms_limits_cleared": sms_limits})
