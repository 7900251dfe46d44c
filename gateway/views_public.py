"""Public pages: campaigns, receipts and vote checks, results, initiatives, dashboard, transparency."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from chain.documents import sniff_type
from chain.tx import ID_PATTERN
from gateway.chainview import CampaignDetail, CampaignView
from gateway.errors import NodeAnswerError, NodeUnavailable, Refusal
from gateway.documents import is_digest
from gateway.districts import capitalised, filter_districts, group_districts, normalise_query
from gateway.guard import NO_CAMPAIGN
from gateway.i18n import CATEGORY_NAMES, REASON_NAMES, N_, named
from gateway import wording
from gateway.ops.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.receipts import Lookup
from gateway.outcomes import DistrictOutcome, campaign_outcomes
from gateway.site import GATEWAY, Ctx, cached_page, context, read_form, redirect, render, single

log = logging.getLogger("veche.gateway.public")
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
    query = normalise_query(request.query.get("q") if request.query_string else None)
    upcoming = [c for c in mine if c.status == "open" and now < c.voting_start]
    closed = [c for c in campaigns if c.closed or (c.status == "open" and now >= c.voting_end)]
    open_now = [c for c in mine if c.is_voting(now)]
    # the page changes only when a campaign changes state (a filtered page is not kept)
    cache_key = None if query else (tuple(c.campaign_id for c in open_now), tuple(c.campaign_id for c in upcoming),
                                    tuple(c.campaign_id for c in closed), identity is not None and identity.is_card)
    cached = cached_page(ctx, "index.html", cache_key)
    if cached is not None:
        return cached
    voting = []
    for campaign in open_now:
        detail = await gw.chain.detail(campaign.campaign_id)
        projects = sum(1 for i in detail.initiatives if i.status == "approved") if detail is not None else 0
        budget = campaign.rule_budget if campaign.scope == "campaign" else sum(d.budget for d in campaign.districts)
        voting.append({"campaign": campaign, "projects": projects, "budget": budget,
                       "groups": group_districts(filter_districts(campaign.districts, query))})
    return render(ctx, "index.html", voting=voting, query=query, upcoming=upcoming, closed=closed,
                  identity=identity, cache_key=cache_key)


def _tx_hash(text: str) -> bytes:
    if not HASH_PATTERN.fullmatch(text):
        raise Refusal("err_bad_hash", status=400, reason="bad_hash")
    return bytes.fromhex(text)


async def receipt_page(request: web.Request) -> web.StreamResponse:
    """A ballot's receipt: counted (with its choices), pending, rejected or unknown; where a vote
    lands after POST-redirect-GET (``?again=1``: the voter submitted a second ballot for the slot)."""
    ctx = context(request)
    gw = ctx.gw
    tx_hash = _tx_hash(request.match_info["tx_hash"])
    unconfirmed_status = 0
    try:
        lookup = await gw.receipts.lookup(tx_hash)
    except (NodeUnavailable, NodeAnswerError) as exc:
        # the network cannot be asked, or answered with a proof that does not verify: the page
        # says so with the ballot number and "check again" (a ballot this gateway still holds is
        # shown as pending), never as counted and never as a dead end
        log.warning("receipt %s not available: %s", tx_hash.hex()[:16], exc)
        unconfirmed_status = 503 if isinstance(exc, NodeUnavailable) else 502
        lookup = Lookup("unknown")
    titles: list[str] = []
    campaign = None
    district = None
    if lookup.tx is not None and lookup.tx.kind == "vote.cast":
        detail = await gw.chain.detail(lookup.tx.body.campaign_id)
        if detail is not None:
            campaign = detail.campaign
            district = campaign.district(lookup.tx.body.district_id)
            titles = ballot_lines(ctx.lang, detail, lookup.tx.body.choices, lookup.tx.body.points)
    if lookup.status != "committed":
        # the gateway's own final record names the root cause (e.g. the registration cap, where
        # a node only knows that the voter key is not registered)
        rejection = gw.pipeline.rejection(tx_hash)
        if rejection is not None:
            lookup = Lookup("rejected", code=rejection[0], message=rejection[1])
        elif tx_hash in gw.pipeline.trackers and lookup.status in ("pending", "unknown"):
            lookup = Lookup("pending")
    if unconfirmed_status and lookup.status == "unknown":
        lookup = Lookup("unconfirmed")
    ctx.ensure_session()
    status = {"unknown": 404, "unconfirmed": unconfirmed_status}.get(lookup.status, 200)
    again = request.query.get("again") == "1" if request.query_string else False
    return render(ctx, "receipt.html", status=status, tx_hash=tx_hash.hex(), lookup=lookup, titles=titles,
                  campaign=campaign, district=district, again=again, node_url=gw.config.nodes[0],
                  now=gw.clock())


def _title(detail: CampaignDetail, initiative_id: str) -> str:
    initiative = detail.initiative(initiative_id)
    return initiative.title if initiative is not None else initiative_id


def ballot_lines(lang: str, detail: CampaignDetail, choices: Sequence[str], points: Sequence[int]) -> list[str]:
    """A ballot's choices as the citizen reads them: titles, with their points on a scored ballot
    (an ordinal ballot's choices are in rank order)."""
    if not points:
        return [_title(detail, choice) for choice in choices]
    return [wording.points_line(lang, _title(detail, choice), value) for choice, value in zip(choices, points)]


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


@dataclass(frozen=True, slots=True)
class ResultRow:
    outcome: DistrictOutcome
    why: str
    winners: str
    width: int


async def results_index(request: web.Request) -> web.StreamResponse:
    """Every campaign with where its results are: closed ones first, then those still voting."""
    ctx = context(request)
    gw = ctx.gw
    campaigns = sorted(await gw.chain.campaigns(), key=_track_order)
    now = gw.clock()
    return render(ctx, "results_index.html", closed=[c for c in campaigns if c.closed],
                  open=[c for c in campaigns if not c.closed], now=now)


async def _closed_results(ctx: Ctx, campaign_id: str) -> tuple[CampaignDetail, dict[str, Any] | None,
                                                              list[DistrictOutcome]]:
    gw = ctx.gw
    if not ID_PATTERN.fullmatch(campaign_id):
        raise Refusal("err_unknown_campaign", status=404, reason="unknown_campaign")
    detail = await gw.chain.detail(campaign_id)
    if detail is None:
        raise Refusal("err_unknown_campaign", status=404, reason="unknown_campaign")
    tally = await gw.chain.tally(campaign_id) if detail.campaign.closed else None
    outcomes = campaign_outcomes(detail, tally) if tally is not None and tally.get("result_status") != "computing" \
        else []
    return detail, tally, outcomes


async def results(request: web.Request) -> web.StreamResponse:
    """A campaign's results: totals, the rule in plain words, and one line per district (winners,
    money funded against the budget, or why there is no winner), districts with winners first."""
    ctx = context(request)
    detail, tally, outcomes = await _closed_results(ctx, request.match_info["campaign"])
    campaign = detail.campaign
    cache_key = _result_key(tally, outcomes)
    cached = cached_page(ctx, "results.html", cache_key)
    if cached is not None:
        return cached
    rows = [ResultRow(o, wording.no_winner_text(ctx.lang, campaign, o), wording.winners_text(ctx.lang, len(o.winners)),
                      _percent(o.funded, o.budget)) for o in outcomes]
    groups = []
    for group in group_districts(o.district for o in outcomes):
        ids = {d.district_id for d in group.districts}
        group_rows = [r for r in rows if r.outcome.district.district_id in ids]
        group_rows.sort(key=lambda r: (not r.outcome.winners, -r.outcome.funded))
        groups.append((group.key, group_rows))
    budget = campaign.rule_budget if campaign.scope == "campaign" else sum(d.budget for d in campaign.districts)
    return render(ctx, "results.html", campaign=campaign, tally=tally, groups=groups, now=ctx.gw.clock(),
                  winners=sum(len(o.winners) for o in outcomes), funded=sum(o.funded for o in outcomes),
                  budget=budget, with_winners=sum(1 for o in outcomes if o.winners),
                  winner_rule=wording.winner_rule(ctx.lang, campaign), cache_key=cache_key)


async def district_results(request: web.Request) -> web.StreamResponse:
    """One district's result: its full ranking, each project's outcome and why."""
    ctx = context(request)
    detail, tally, outcomes = await _closed_results(ctx, request.match_info["campaign"])
    campaign = detail.campaign
    district_id = request.match_info["district"]
    district = campaign.district(district_id)
    if district is None:
        raise Refusal("err_unknown_district", status=404, reason="unknown_district")
    outcome = next((o for o in outcomes if o.district.district_id == district_id), None)
    top = max((r.points for r in outcome.ranking), default=0) if outcome is not None else 0
    ranking = [{"r": r, "why": wording.why_text(ctx.lang, campaign, r.why), "width": _percent(r.points, top)}
               for r in (outcome.ranking if outcome is not None else ())]
    return render(ctx, "results_district.html", campaign=campaign, district=district, tally=tally, outcome=outcome,
                  ranking=ranking, now=ctx.gw.clock(), winner_rule=wording.winner_rule(ctx.lang, campaign),
                  no_winner=wording.no_winner_text(ctx.lang, campaign, outcome) if outcome is not None else "",
                  cache_key=_result_key(tally, outcomes))


def _result_key(tally: dict[str, Any] | None, outcomes: list[DistrictOutcome]) -> tuple[str, ...] | None:
    """A closed campaign's published result never changes: its pages are kept by its hash."""
    if tally is None or not outcomes or tally.get("result_status") != "final":
        return None
    return ("final", str(tally.get("result_hash", "")))


def _percent(value: int, whole: int) -> int:
    """A bar's length in percent of the longest, at least 1 for any value above zero."""
    if value <= 0 or whole <= 0:
        return 0
    return max(1, min(100, value * 100 // whole))


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
    documents = await gw.documents.listing(initiative.document_hash)
    timeline = [{"report": report, "documents": await gw.documents.listing(report.evidence_hash),
                 "signer": signer_text(ctx, report.reporter)} for report in progress]
    return render(ctx, "initiative.html", campaign=campaign, initiative=initiative, progress=progress,
                  district=district, documents=documents, timeline=timeline)


def signer_text(ctx: Ctx, reporter: str) -> str:
    """Who signed a progress report, from the genesis roles (the key itself when unknown)."""
    params = ctx.gw.params
    try:
        key = bytes.fromhex(reporter)
    except ValueError:
        return reporter[:64]
    if key in params.committee_keys:
        return ctx.t(N_("the committee"))
    districts = [d for d, k in params.district_operators if k == key]
    if districts:
        return ctx.t(N_("the operator of district %(district)s"), district=", ".join(districts))
    return ctx.t(N_("key %(key)s"), key=reporter[:16] + "…")


async def document_file(request: web.Request) -> web.StreamResponse:
    """``GET /documents/{sha256}``: a document the chain names, served only once its bytes match the hash."""
    ctx = context(request)
    digest = request.match_info["sha256"]
    if not is_digest(digest):
        raise Refusal("err_not_found", status=404, reason="not_found")
    data = await ctx.gw.documents.fetch(digest)
    if data is None:
        raise Refusal("err_no_document", status=404, reason="not_found")
    return web.Response(body=data, content_type=sniff_type(data) or "application/octet-stream", headers={
        "Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{digest}"',
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'", "X-Content-Type-Options": "nosniff"})


async def verify_page(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    gw = ctx.gw
    names = {d.district_id: d.name for c in await gw.chain.campaigns() for d in c.districts}
    sets = gw.receipts.sets
    await sets.refresh()                      # rate-limited; the set in force, followed from genesis
    in_force = sets.schedule.latest()
    return render(ctx, "verify.html", node_url=gw.config.nodes[0], chain_id=gw.chain_id,
                  genesis_hash=gw.params.genesis_hash.hex(),
                  validators=[(v.name, _operator_text(ctx, v.operator, names)) for v in in_force.validators],
                  quorum=in_force.quorum)


def _operator_text(ctx: Ctx, operator: str, district_names: dict[str, str]) -> str:
    """A validator's operator in words: the regional committee, a district's administration, or the
    organisation's own name."""
    if operator == "committee":
        return ctx.t(N_("The regional budget committee"))
    if operator.startswith("district:"):
        district_id = operator.removeprefix("district:")
        return ctx.t(N_("District administration: %(district)s"),
                     district=capitalised(district_names.get(district_id, district_id)))
    return operator


async def dashboard(request: web.Request) -> web.StreamResponse:
    """The programme in figures: per campaign its counters and a table by category (projects, with
    a bar in the cell, and funding); the figures by district are on the results pages."""
    ctx = context(request)
    gw = ctx.gw
    blocks: list[dict[str, Any]] = []
    campaigns = sorted(await gw.chain.campaigns(), key=_track_order)
    cache_key = tuple((c.campaign_id, c.status, c.total_ballots, c.registered) for c in campaigns)
    cached = cached_page(ctx, "dashboard.html", cache_key)
    if cached is not None:
        return cached
    for campaign in campaigns:
        detail = await gw.chain.detail(campaign.campaign_id)
        if detail is None:
            continue
        tally = await gw.chain.tally(campaign.campaign_id) if campaign.closed else None
        winners = set(tally.get("winners", [])) if tally else set()
        approved = [i for i in detail.initiatives if i.status == "approved"]
        funding_district: Counter[str] = Counter()
        funding_category: Counter[str] = Counter()
        count_category: Counter[str] = Counter()
        for initiative in detail.initiatives:
            count_category[initiative.category] += 1
            if initiative.initiative_id in winners:
                funding_district[initiative.district_id] += initiative.cost
                funding_category[initiative.category] += initiative.cost
        top_category = max(count_category.values(), default=0)
        categories = [{"name": named(CATEGORY_NAMES, ctx.lang, name), "initiatives": count,
                       "funding": funding_category[name], "width": _percent(count, top_category)}
                      for name, count in count_category.most_common()]
        blocks.append({"campaign": campaign, "submitted": len(detail.initiatives), "approved": len(approved),
                       "winners": len(winners), "funding": sum(funding_district.values()),
                       "categories": categories})
    return render(ctx, "dashboard.html", blocks=blocks, cache_key=cache_key)


async def transparency(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    gw = ctx.gw
    names: dict[tuple[str, str], str] = {}
    titles: dict[str, str] = {}
    campaigns = await gw.chain.campaigns()
    for campaign in campaigns:
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
            "district": names.get((campaign_id, district_id), ctx.t(N_("(no district chosen)")) if district_id == NO_CAMPAIGN
                                  else district_id),
            "reasons": [(named(REASON_NAMES, ctx.lang, reason), count) for reason, count in counter.most_common()],
            "total": sum(counter.values()),
        })
    mine = [c for c in campaigns if c.served_by(gw.gateway_public_hex)]
    return render(ctx, "transparency.html", rows=rows, campaigns=mine)


async def healthz(request: web.Request) -> web.StreamResponse:
    """200 when a node of this chain and the SMS provider answer the health monitor; 503 with reasons."""
    gw = request.app[GATEWAY]
    reasons = gw.health.healthy_reasons()
    document = {"status": "unhealthy" if reasons else "ok", "reasons": reasons, "chain_id": gw.chain_id,
                "pending": len(gw.pipeline.trackers), "sessions": len(gw.sessions), "inflight": gw.inflight,
                **gw.health.to_json()}
    return web.json_response(document, status=503 if reasons else 200)


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus text format (docs/GATEWAY.md "Monitoring")."""
    gw = request.app[GATEWAY]
    return web.Response(body=gw.metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def static_file(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    name = request.match_info["name"]
    body = gw.static_files.get(name)
    if body is None:
        raise web.HTTPNotFound()
    content_type = {"css": "text/css", "js": "text/javascript"}.get(name.rsplit(".", 1)[-1], "application/octet-stream")
    return web.Response(body=body, content_type=content_type, headers={"Cache-Control": "public, max-age=3600"})


async def no_favicon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204, headers={"Cache-Control": "public, max-age=86400"})
