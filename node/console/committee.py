"""Committee pages: the review queue, decisions on initiatives, campaigns (create, close, winners).

Every decision becomes a signing request (node/console/requests.py): prepared and signed here,
co-signed in the other members' consoles, submitted once k members signed.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from chain.errors import DecodeError, GenesisError
from chain.tx import CampaignClose, InitiativeReview
from genesis.campaign_json import campaign_from_json
from node.console.forms import ConsoleError, parse_ident, parse_text
from node.console.i18n import N_
from node.console.requests import committee_form, list_requests, prepare_and_share, require_committee
from node.console.web import context, render
from node.console.wizard import draft_of


def now_ms() -> int:
    return int(time.time() * 1000)


async def review_queue(request: web.Request) -> web.Response:
    ctx = context(request)
    require_committee(ctx)
    pending = sum(1 for item in await list_requests(ctx) if item["kind"] == "initiative.review"
                  and item.get("committed_height") is None)
    groups = []
    for summary in await ctx.chain.campaigns():
        if summary["status"] != "open" or now_ms() >= summary["voting_start"]:
            continue
        campaign = await ctx.chain.campaign(summary["campaign_id"])
        waiting = [i for i in campaign["initiatives"] if i["status"] == "submitted"]
        groups.append({"campaign": summary, "initiatives": waiting})
    return render(ctx, "review.html", groups=groups, pending=pending)


async def decide(request: web.Request) -> web.Response:
    ctx, form = await committee_form(request)
    campaign_id = parse_ident(request.match_info["campaign"], "campaign")
    initiative_id = parse_ident(request.match_info["initiative"], "initiative")
    initiative = await ctx.chain.initiative(campaign_id, initiative_id)
    decision = form.get("decision")
    if decision not in ("approve", "reject"):
        raise ConsoleError(N_("Choose approve or reject."))
    reason = parse_text(form.get("reason"), ctx.t(N_("Public reason")), 1000, required=decision == "reject")
    if initiative["status"] != "submitted":
        raise ConsoleError(N_("This initiative was already reviewed."), status=409)
    body = InitiativeReview(campaign_id, initiative_id, decision == "approve", reason)
    return await prepare_and_share(ctx, "initiative.review", body)


async def campaigns_page(request: web.Request) -> web.Response:
    ctx = context(request)
    require_committee(ctx)
    rows: list[dict[str, Any]] = []
    for summary in await ctx.chain.campaigns():
        row: dict[str, Any] = {"campaign": summary, "winners": []}
        if summary["status"] == "closed":
            campaign = await ctx.chain.campaign(summary["campaign_id"])
            titles = {i["initiative_id"]: i["title"] for i in campaign["initiatives"]}
            tally = await ctx.chain.tally(summary["campaign_id"])
            row["winners"] = [{"id": w, "title": titles.get(w, w)} for w in tally.get("winners", [])]
        rows.append(row)
    return render(ctx, "campaigns.html", rows=rows)


async def close_campaign(request: web.Request) -> web.Response:
    ctx, form = await committee_form(request)
    campaign_id = parse_ident(request.match_info["campaign"], "campaign")
    reason = parse_text(form.get("reason"), ctx.t(N_("Public reason")), 1000)
    return await prepare_and_share(ctx, "campaign.close", CampaignClose(campaign_id, reason))


async def create_campaign(request: web.Request) -> web.Response:
    """The wizard's confirmed draft becomes a ``campaign.create`` signing request."""
    ctx, form = await committee_form(request)
    draft = draft_of(ctx, form.get("draft"))
    view = await ctx.chain.refresh(max_age_s=0)
    try:
        body = campaign_from_json(draft.document, view.gateways)
    except (GenesisError, DecodeError) as exc:
        raise ConsoleError(N_("The campaign is not valid: %(detail)s"), detail=exc.message) from exc
    if body != draft.body:
        raise ConsoleError(N_("The gateway's key changed since the preview; preview the campaign again."), status=409)
    return await prepare_and_share(ctx, "campaign.create", body)
