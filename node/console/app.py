"""The console's aiohttp application: routes and the resources it owns (docs/OPERATOR.md "The operator console")."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from node.console import committee, district, requests, wizard
from node.console.chain import ConsoleChain
from node.console.i18n import N_
from node.console.docs import serve_document
from node.console.web import (
    CONSOLE, Console, context, errors, load_static, login, make_jinja, render, security_headers, static,
)

MAX_REQUEST_BYTES = 100 * 1024 * 1024


async def home(request: web.Request) -> web.Response:
    ctx = context(request)
    chain = ctx.chain
    status = await chain.status()
    campaigns = await chain.campaigns()
    identity = chain.identity
    now = int(time.time() * 1000)
    mine: list[dict[str, Any]] = []
    if identity.is_district:
        mine = [c for c in campaigns if any(d["district_id"] in identity.districts for d in c.get("districts", []))]
    elif identity.role == "gateway":
        gateway_key = identity.public_key.hex()
        for summary in campaigns:
            campaign = await chain.campaign(summary["campaign_id"])
            if campaign["campaign"]["gateway"] == gateway_key:
                mine.append({**summary, "registration_cap": campaign["campaign"]["registration_cap"]})
    else:
        mine = campaigns
    return render(ctx, "home.html", status_info=status, campaigns=mine, now=now)


async def logout(request: web.Request) -> web.Response:
    ctx = context(request)
    from node.console.forms import read_form
    from node.console.web import check_csrf

    form = await read_form(request, max_file_bytes=0)
    check_csrf(ctx, form.get("csrf_token"))
    ctx.console.session_id = None
    return render(ctx, "error.html", status=200, message=ctx.t(N_("You are logged out. Restart the console to log in "
                                                                  "again.")), signed_in=False)


def create_app(chain: ConsoleChain, *, login_token: str, allowed_hosts: frozenset[str],
               display_offset_minutes: int = 180, default_lang: str = "ru",
               request_ttl_hours: int = 72) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=MAX_REQUEST_BYTES)
    app[CONSOLE] = Console(chain=chain, jinja=make_jinja(), login_token=login_token, allowed_hosts=allowed_hosts,
                           display_offset_minutes=display_offset_minutes, default_lang=default_lang,
                           request_ttl_hours=request_ttl_hours, static_files=load_static())
    router = app.router
    router.add_get("/login", login)
    router.add_post("/logout", logout)
    router.add_get("/static/{name}", static)
    router.add_get("/", home)
    router.add_get("/documents/{sha256}", serve_document)
    router.add_get("/initiatives", district.initiatives_page)
    router.add_get("/initiatives/new", district.new_initiative_page)
    router.add_post("/initiatives/new", district.new_initiative)
    router.add_get("/initiatives/{campaign}/{initiative}", district.initiative_page)
    router.add_post("/initiatives/{campaign}/{initiative}/progress", district.report_progress)
    router.add_get("/review", committee.review_queue)
    router.add_post("/review/{campaign}/{initiative}", committee.decide)
    router.add_get("/campaigns", committee.campaigns_page)
    router.add_get("/campaigns/new", wizard.wizard_page)
    router.add_post("/campaigns/new", wizard.wizard_post)
    router.add_post("/campaigns/new/prepare", committee.create_campaign)
    router.add_get("/campaigns/drafts/{draft}.json", wizard.draft_json)
    router.add_post("/campaigns/{campaign}/close", committee.close_campaign)
    router.add_get("/requests", requests.requests_page)
    router.add_post("/requests/import", requests.import_file)
    router.add_get("/requests/{signing_hash}.json", requests.download)
    router.add_get("/requests/{signing_hash}", requests.request_page)
    router.add_post("/requests/{signing_hash}/sign", requests.sign_request)
    router.add_post("/requests/{signing_hash}/submit", requests.submit_page)
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(_close_client)
    return app


async def _close_client(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[CONSOLE].chain.client.close()
