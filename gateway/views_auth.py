"""Steps 1 and 2: phone number → SMS code (or a code card), and logging out."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.auth import card_id, card_identity, normalize_card
from gateway.errors import PhoneError, Refusal, SmsError
from gateway.guard import subnet_of
from gateway.i18n import N_
from gateway.phone import Identity, mask_phone, normalize_phone
from gateway.site import CAMPAIGN_PATH, HONEYPOT_FIELD, Ctx, check_form, context, read_form, redirect, render, single
from gateway.vault import used_card_key

log = logging.getLogger("veche.gateway.auth")

PHONE_FORM = frozenset({"csrf_token", "phone", HONEYPOT_FIELD})
CODE_FORM = frozenset({"csrf_token", "code", HONEYPOT_FIELD})
CARD_FORM = frozenset({"csrf_token", "card", HONEYPOT_FIELD})
LOGOUT_FORM = frozenset({"csrf_token"})


def _safe_next(value: str | None) -> str | None:
    if value and CAMPAIGN_PATH.fullmatch(value):   # fullmatch: "$" would also match before a final "\n"
        return value
    return None


def login_page(ctx: Ctx, *, status: int = 200) -> web.Response:
    session = ctx.ensure_session()
    limits = ctx.gw.config.limits
    minutes = max(1, limits.code_ttl_seconds // 60)
    challenge = session.challenge
    if challenge is None:
        return render(ctx, "login.html", status=status, stage="phone", minutes=minutes,
                      cache_key=("phone", minutes))
    sent_ms = challenge.expires_ms - limits.code_ttl_seconds * 1000
    resend_ms = sent_ms + limits.sms_resend_seconds * 1000
    wait_s = max(0, (resend_ms - ctx.gw.clock() + 999) // 1000)
    return render(ctx, "login.html", status=status, stage="code", minutes=minutes, sent_to=session.sent_to,
                  resend_ms=resend_ms, wait_s=wait_s)


async def get_login(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    session = ctx.ensure_session()
    wanted = _safe_next(request.query.get("next"))
    if wanted:
        session.next_path = wanted
    if request.query.get("restart") == "1":
        session.challenge = None
    if session.identity is not None:
        return redirect(ctx, session.next_path or "/")
    return login_page(ctx)


async def post_login(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    form = await read_form(ctx, PHONE_FORM)
    session = check_form(ctx, form)
    gw = ctx.gw
    gw.limiter.check("sms_per_ip", ctx.client, "rate_ip")
    gw.limiter.check("sms_per_subnet", _subnet(ctx), "rate_subnet")
    try:
        e164 = normalize_phone(single(form, "phone"), gw.config.sms.allowed_regions, gw.config.sms.allowed_prefixes)
    except PhoneError as exc:
        raise Refusal(f"err_{exc.code}", status=400, reason=exc.code) from None
    tag = gw.codes.tag(e164)
    gw.limiter.check("sms_per_phone", tag.hex(), "rate_phone")
    code = gw.codes.issue(session, e164, ctx.client)
    session.sent_to = mask_phone(e164)
    gw.sessions.activate(session)
    try:
        await gw.sms.send(e164, ctx.t(N_("Veche: your voting code is %(code)s. Do not share it."), code=code))
    except SmsError as exc:
        gw.codes.undo_issue(session)
        log.error("SMS not sent: %s", exc.message)
        raise Refusal("err_sms_failed", status=502, reason="sms_failed", retry_after=30) from None
    return login_page(ctx)


async def post_code(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    form = await read_form(ctx, CODE_FORM)
    session = check_form(ctx, form)
    gw = ctx.gw
    gw.limiter.check("code_per_ip", ctx.client, "rate_ip")
    gw.limiter.check("code_per_subnet", _subnet(ctx), "rate_subnet")
    identity = gw.codes.verify(session, single(form, "code"), ctx.client)
    fresh = gw.sessions.rotate(session)
    fresh.identity = identity
    ctx.session, ctx.set_session_cookie = fresh, True
    return redirect(ctx, fresh.next_path or "/")


async def post_card(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    form = await read_form(ctx, CARD_FORM)
    session = check_form(ctx, form)
    gw = ctx.gw
    gw.limiter.check("card_per_ip", ctx.client, "rate_ip")
    gw.limiter.check("card_per_subnet", _subnet(ctx), "rate_subnet")
    gw.card_guard.check()
    code = normalize_card(single(form, "card"))
    if code is None:
        raise Refusal("err_card_format", status=400, reason="card_malformed")
    identifier = card_id(gw.secret, code)
    campaign_id = gw.cards.campaign_of(identifier)
    if campaign_id is None:
        gw.card_guard.wrong()
        raise Refusal("err_card_unknown", status=400, reason="card_unknown")
    identity = card_identity(gw.secret, code, campaign_id)
    if gw.store.get(used_card_key(identifier)) is not None and _card_has_standing_ballot(ctx, identity, campaign_id):
        raise Refusal("err_card_used", status=409, reason="card_used")
    campaign = await gw.chain.campaign(campaign_id)
    if campaign is None or not campaign.is_voting(gw.clock()):
        raise Refusal("err_not_voting", status=409, reason="not_voting")
    fresh = gw.sessions.rotate(session)
    fresh.identity = identity
    fresh.challenge = None
    if fresh.next_path and not fresh.next_path.startswith(f"/c/{campaign_id}/"):
        fresh.next_path = None
    ctx.session, ctx.set_session_cookie = fresh, True
    return redirect(ctx, fresh.next_path or "/")


async def post_logout(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    form = await read_form(ctx, LOGOUT_FORM)
    session = ctx.session
    if session is None:
        return redirect(ctx, "/")
    token = single(form, "csrf_token")
    ctx.gw.csrf.check(session.sid, token, 0)
    ctx.gw.sessions.drop(session)
    ctx.session = None
    response = redirect(ctx, "/")
    response.del_cookie("veche_session", path="/")
    return response


def _card_has_standing_ballot(ctx: Ctx, identity: Identity, campaign_id: str) -> bool:
    entry = ctx.gw.vault.load(identity, campaign_id)
    if entry is None:          # the campaign closed and its vault was destroyed: the card stays used
        return True
    return any(ctx.gw.pipeline.rejection(tx_hash) is None for tx_hash in entry.ballots.values())


def _subnet(ctx: Ctx) -> str:
    return subnet_of(ctx.client)
