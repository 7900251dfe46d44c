"""Public pages: campaigns, receipts and vote checks, results, initiatives, dashboard, transparency."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from typing import Any

from aiohttp import web

from chain.tx import ID_PATTERN
from gateway.chainview import CampaignDetail, CampaignView
from gateway.charts import Bar, bar_chart
from gateway.errors import Refusal
from gateway.guard import NO_CAMPAIGN
from gateway.i18n import CATEGORY_NAMES, REASON_NAMES, RULE_NAMES, format_money, named
from gateway.site import GATEWAY, context, read_form, redirect, render, single

HASH_PATTERN = re.compile(r"[0-9a-fA-F]{64}")
CHECK_FORM = frozenset({"csrf_token", "tx", "website"})


def _track_order(campaign: CampaignView) -> tuple[int, int, str]:
    return (0 if campaign.track == "adult" else 1, campaign.voting_end, campaign.campaign_id)


async def index(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    gw = ctx.gw
    now = gw.clock()
    campaigns = sorted(await gw.chain.campaigns(), key=_track_order)
    mine = [c for c in campaigns if c.served_by(gw.gateway_public_hex)]
    identity = ctx.session.identity if ctx.session is not None else None
    if identity is not None and identity.card_campaign:
        mine = [c for c in mine if c.campaign_id == identity.card_campaign]
    if ctx.session is not None:
        ctx.ensure_session()
    return render(ctx, "index.html",
                  voting=[c for c in mine if c.is_voting(now)],
                  upcoming=[c for c in mine if c.status == "open" and now < c.voting_start],
                  closed=[c for c in campaigns if c.closed or (c.status == "open" and now >= c.voting_end)],
                  identity=identity)


def _tx_hash(text: str) -> bytes:
    if not HASH_PATTERN.fullmatch(text):
        raise Refusal("err_bad_hash", status=400, reason="bad_hash")
    return bytes.fromhex(text)


async def receipt_page(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    gw = ctx.gw
    tx_hash = _tx_hash(request.match_info["tx_hash"])
    lookup = await gw.receipts.lookup(tx_hash)
    titles: list[str] = []
    campaign = None
    if lookup.tx is not None and lookup.tx.kind == "vote.cast":
        detail = await gw.chain.detail(lookup.tx.body.campaign_id)
        if detail is not None:
            campaign = detail.campaign
            titles = [_title(detail, choice) for choice in lookup.tx.body.choices]
    if lookup.status in ("pending", "unknown"):
        rejection = gw.pipeline.rejection(tx_hash)
        if rejection is not None:
            lookup = type(lookup)("rejected", code=rejection[0], message=rejection[1])
        elif tx_hash in gw.pipeline.trackers:
            lookup = type(lookup)("pending")
    ctx.ensure_session()
    status = 200 if lookup.status == "committed" else (404 if lookup.status == "unknown" else 200)
    return render(ctx, "receipt.html", status=status, tx_hash=tx_hash.hex(), lookup=lookup, titles=titles,
                  campaign=campaign)


def _title(detail: CampaignDetail, initiative_id: str) -> str:
    initiative = detail.initiative(initiative_id)
    return initiative.title if initiative is not None else initiative_id


async def receipt_json(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    tx_hash = _tx_hash(request.match_info["tx_hash"])
    lookup = await ctx.gw.receipts.lookup(tx_hash)
    if lookup.status != "committed" or lookup.receipt is None:
        return web.json_response({"error": {"code": lookup.status, "message":
                                            "a receipt exists only for a committed transaction"}}, status=404)
    return web.Response(text=json.dumps(lookup.receipt, indent=2) + "\n", content_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="receipt-{tx_hash.hex()[:16]}.json"'})


async def check_page(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    ctx.ensure_session()
    return render(ctx, "check.html")


async def check_post(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    form = await read_form(ctx, CHECK_FORM)
    if ctx.session is None:
        raise Refusal("err_no_session", status=403, reason="no_session")
    if form.get("website", ""):
        raise Refusal("err_honeypot", status=400, reason="honeypot")
    ctx.gw.csrf.check(ctx.session.sid, single(form, "csrf_token"), 0)
    tx_hash = _tx_hash(single(form, "tx").strip().lower())
    return redirect(ctx, f"/receipt/{tx_hash.hex()}")


async def results(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    gw = ctx.gw
    campaign_id = request.match_info["campaign"]
    if not ID_PATTERN.fullmatch(campaign_id):
        raise Refusal("err_unknown_campaign", status=404, reason="unknown_campaign")
    detail = await gw.chain.detail(campaign_id)
    if detail is None:
        raise Refusal("err_unknown_campaign", status=404, reason="unknown_campaign")
    campaign = detail.campaign
    sections: list[dict[str, Any]] = []
    tally = None
    if campaign.closed:
        tally = await gw.chain.tally(campaign_id)
    if tally is not None:
        winners = set(tally.get("winners", []))
        for district in campaign.districts:
            counts = tally["districts"].get(district.district_id, {}).get("initiatives", {})
            rows = sorted(((detail.initiative(iid), iid, int(votes)) for iid, votes in counts.items()),
                          key=lambda r: (-r[2], r[0].cost if r[0] is not None else 0, r[1].encode()))
            bars = [Bar(found.title if found is not None else iid, votes, iid in winners)
                    for found, iid, votes in rows]
            sections.append({
                "district": district,
                "rows": [{"title": found.title if found is not None else iid, "iid": iid, "votes": votes,
                          "cost": found.cost if found is not None else 0, "winner": iid in winners}
                         for found, iid, votes in rows],
                "chart": bar_chart(ctx.t("votes_chart", district=district.name), bars),
            })
    return render(ctx, "results.html", campaign=campaign, tally=tally, sections=sections,
                  rule_name=named(RULE_NAMES, ctx.lang, campaign.rule), now=gw.clock())


async def initiative_page(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    gw = ctx.gw
    campaign_id, initiative_id = request.match_info["campaign"], request.match_info["iid"]
    if not ID_PATTERN.fullmatch(campaign_id) or not ID_PATTERN.fullmatch(initiative_id):
        raise Refusal("err_unknown_initiative", status=404, reason="unknown_initiative")
    campaign = await gw.chain.campaign(campaign_id)
    if campaign is None:
        raise Refusal("err_unknown_campaign", status=404, reason="unknown_campaign")
    found = await gw.chain.initiative(campaign_id, initiative_id)
    if found is None:
        raise Refusal("err_unknown_initiative", status=404, reason="unknown_initiative")
    initiative, progress = found
    district = campaign.district(initiative.district_id)
    return render(ctx, "initiative.html", campaign=campaign, initiative=initiative, progress=progress,
                  district=district)


async def verify_page(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    gw = ctx.gw
    return render(ctx, "verify.html", node_url=gw.config.nodes[0], chain_id=gw.chain_id,
                  genesis_hash=gw.params.genesis_hash.hex(),
                  validators=[(v.name, v.operator) for v in gw.params.validators.validators],
                  quorum=gw.params.validators.quorum)


async def dashboard(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    gw = ctx.gw
    blocks: list[dict[str, Any]] = []
    money = lambda value: format_money(value, ctx.lang)  # noqa: E731
    for campaign in sorted(await gw.chain.campaigns(), key=_track_order):
        detail = await gw.chain.detail(campaign.campaign_id)
        if detail is None:
            continue
        tally = await gw.chain.tally(campaign.campaign_id) if campaign.closed else None
        winners = set(tally.get("winners", [])) if tally else set()
        approved = [i for i in detail.initiatives if i.status == "approved"]
        funding_district: Counter[str] = Counter()
        funding_category: Counter[str] = Counter()
        count_category: Counter[str] = Counter()
        votes_district: Counter[str] = Counter()
        for initiative in detail.initiatives:
            count_category[initiative.category] += 1
            if initiative.initiative_id in winners:
                funding_district[initiative.district_id] += initiative.cost
                funding_category[initiative.category] += initiative.cost
        if tally is not None:
            for district_id, entry in tally["districts"].items():
                votes_district[district_id] += sum(int(v) for v in entry.get("initiatives", {}).values())
        names = {d.district_id: d.name for d in campaign.districts}
        charts = [bar_chart(ctx.t("dash_initiatives_category"),
                            [Bar(named(CATEGORY_NAMES, ctx.lang, cat), n) for cat, n in count_category.most_common()])]
        if winners:
            charts.append(bar_chart(ctx.t("dash_funding_district"),
                                    [Bar(names.get(d, d), v, True) for d, v in funding_district.most_common()], money))
            charts.append(bar_chart(ctx.t("dash_funding_category"),
                                    [Bar(named(CATEGORY_NAMES, ctx.lang, c), v, True)
                                     for c, v in funding_category.most_common()], money))
        if votes_district:
            charts.append(bar_chart(ctx.t("dash_votes_district"),
                                    [Bar(names.get(d, d), v) for d, v in votes_district.most_common()]))
        blocks.append({
            "campaign": campaign, "submitted": len(detail.initiatives), "approved": len(approved),
            "winners": len(winners), "funding": sum(funding_district.values()), "charts": charts,
            "districts": [{"district": d, "initiatives": sum(1 for i in detail.initiatives
                                                              if i.district_id == d.district_id),
                           "votes": votes_district.get(d.district_id, 0),
                           "funding": funding_district.get(d.district_id, 0)} for d in campaign.districts],
        })
    return render(ctx, "dashboard.html", blocks=blocks)


async def transparency(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    gw = ctx.gw
    names: dict[tuple[str, str], str] = {}
    titles: dict[str, str] = {}
    for campaign in await gw.chain.campaigns():
        titles[campaign.campaign_id] = campaign.title
        for district in campaign.districts:
            names[(campaign.campaign_id, district.district_id)] = district.name
    rows = []
    grouped: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for key, counter in gw.refusals.by_district().items():
        grouped[key].update(counter)
    for (campaign_id, district_id), counter in sorted(grouped.items()):
        rows.append({
            "campaign": titles.get(campaign_id, "" if campaign_id == NO_CAMPAIGN else campaign_id),
            "district": names.get((campaign_id, district_id), ctx.t("not_chosen") if district_id == NO_CAMPAIGN
                                  else district_id),
            "reasons": [(named(REASON_NAMES, ctx.lang, reason), count) for reason, count in counter.most_common()],
            "total": sum(counter.values()),
        })
    return render(ctx, "transparency.html", rows=rows)


async def healthz(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    return web.json_response({"status": "ok", "chain_id": gw.chain_id, "pending": len(gw.pipeline.trackers),
                              "sessions": len(gw.sessions), "inflight": gw.inflight})


async def static_file(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    name = request.match_info["name"]
    body = gw.static_files.get(name)
    if body is None:
        raise web.HTTPNotFound()
    content_type = "text/css" if name.endswith(".css") else "application/octet-stream"
    return web.Response(body=body, content_type=content_type, headers={"Cache-Control": "public, max-age=3600"})


async def no_favicon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204, headers={"Cache-Control": "public, max-age=86400"})
