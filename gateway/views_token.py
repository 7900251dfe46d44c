"""Voter-held keys: the blind token for a logged-in citizen, and the cookie-less ballot relay.

``POST /c/{campaign}/token`` (session cookie + ``csrf_token``, field ``blinded``: the RFC 9474 blinded
message, hex) answers JSON ``{"blind_sig": hex}`` once the token is counted on the chain
(``gateway.tokens``), or ``{"error": {"code", "message"}}`` with the status of the refusal:
401 not logged in, 403 CSRF, 404 the gateway certifies no keys, 409 voting closed / the campaign
takes no voter-held keys / a token was already issued for this citizen / the citizen already voted
with a gateway-held key / the network refused the count, 400 malformed, 429 rate limits, 503 overload.

``POST /relay/v1/txs`` (no cookie, no session): see ``gateway.relay``.
"""

from __future__ import annotations

import logging

from aiohttp import web

from chain import codec
from chain.errors import DecodeError
from chain.tx import ID_PATTERN
from gateway.errors import Refusal
from gateway.guard import subnet_of
from gateway.i18n import error_text
from gateway.relay import RelayRefused
from gateway.site import (
    COUNTED_REASONS, GATEWAY, SESSION_COOKIE, Ctx, check_form, context, read_cookies, read_form,
)
from gateway.views_vote import _release_lock, _voter_lock, voter_identity

log = logging.getLogger("veche.gateway.token")

TOKEN_FORM = frozenset({"csrf_token", "blinded"})


def json_refusal(ctx: Ctx, refusal: Refusal) -> web.Response:
    gw = ctx.gw
    if refusal.reason in COUNTED_REASONS:
        gw.refusals.refuse(refusal, ctx.where(), ctx.client)
    headers = {"Cache-Control": "no-store"}
    if refusal.retry_after is not None:
        headers["Retry-After"] = str(refusal.retry_after)
    try:
        message = error_text(ctx.lang, refusal.message, **refusal.params)
    except (KeyError, IndexError):
        message = refusal.message
    return web.json_response({"error": {"code": refusal.reason, "message": message}}, status=refusal.status,
                             headers=headers)


async def issue_token(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    try:
        blind_sig = await _issue(ctx, request.match_info["campaign"])
    except Refusal as refusal:
        return json_refusal(ctx, refusal)
    return web.json_response({"blind_sig": blind_sig.hex()}, headers={"Cache-Control": "no-store"})


async def _issue(ctx: Ctx, campaign_id: str) -> bytes:
    gw = ctx.gw
    if gw.tokens is None:
        raise Refusal("err_no_voter_held", status=404, reason="no_voter_held")
    form = await read_form(ctx, TOKEN_FORM)
    check_form(ctx, form, single_use=False)   # idempotent like the ballot: the same request gets the same answer
    gw.limiter.check("ballot_per_ip", ctx.client, "rate_ip")
    gw.limiter.check("ballot_per_subnet", subnet_of(ctx.client), "rate_subnet")
    identity = voter_identity(ctx, campaign_id)
    if identity is None:
        raise Refusal("err_login_first", status=401, reason="not_logged_in")
    if not ID_PATTERN.fullmatch(campaign_id):
        raise Refusal("err_unknown_campaign", status=404, reason="unknown_campaign")
    detail = await gw.chain.detail(campaign_id)
    if detail is None:
        raise Refusal("err_unknown_campaign", status=404, reason="unknown_campaign")
    campaign = detail.campaign
    if not campaign.is_voting(gw.clock()):
        raise Refusal("err_not_voting", status=409, reason="not_voting")
    if not campaign.served_by(gw.gateway_public_hex):
        raise Refusal("err_other_gateway", status=409, reason="other_gateway")
    if campaign.certification_key != gw.tokens.modulus.hex():
        raise Refusal("err_no_voter_held", status=409, reason="no_voter_held")
    text = form.get("blinded", "")
    if len(text) != 2 * len(gw.tokens.modulus) or not all(c in "0123456789abcdef" for c in text):
        raise Refusal("err_bad_token_request", status=400, reason="bad_token_request")
    index = gw.vault.index(identity, campaign_id)
    try:
        async with _voter_lock(gw, index):
            if gw.vault.load(identity, campaign_id) is not None:
                raise Refusal("err_gateway_key_exists", status=409, reason="gateway_key_exists")
            return await gw.tokens.issue(campaign_id, index, bytes.fromhex(text))
    finally:
        _release_lock(gw, index)


async def relay_txs(request: web.Request) -> web.StreamResponse:
    """Hold ballots of voter-held keys for a random delay, then send them (``gateway.relay``)."""
    gw = request.app[GATEWAY]
    headers = {"Cache-Control": "no-store"}
    try:
        if gw.relay is None:
            raise RelayRefused(404, "no_relay", "this gateway runs no ballot relay; send ballots to a node")
        if SESSION_COOKIE in read_cookies(request):
            raise RelayRefused(400, "cookie_not_allowed", "the relay takes no cookies: send ballots without "
                                                           "credentials")
        if request.content_type != "application/octet-stream":
            raise RelayRefused(415, "wrong_type", "send a msgpack array of encoded ballots as "
                                                  "application/octet-stream")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise RelayRefused(413, "too_large", "the request is too large") from None
        try:
            batch = codec.decode(body, max_bytes=gw.config.limits.max_body_bytes)
        except DecodeError as exc:
            raise RelayRefused(400, exc.code, exc.message) from None
        if not isinstance(batch, list) or not all(isinstance(raw, bytes) for raw in batch):
            raise RelayRefused(400, "malformed", "the body is a msgpack array of encoded transactions")
        txs = gw.relay.accept(batch)
    except RelayRefused as refused:
        return web.json_response({"error": {"code": refused.code, "message": refused.message}},
                                 status=refused.status, headers=headers)
    return web.json_response({"accepted": [tx.hash.hex() for tx in txs],
                              "send_within_seconds": gw.config.relay.max_delay_seconds + gw.config.relay.tick_seconds},
                             status=202, headers=headers)
