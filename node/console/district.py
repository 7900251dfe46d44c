"""District operator pages: new initiatives with documents, their review status, progress reports.

A district operator's key signs ``initiative.submit`` for its own district(s) and ``progress.report``
for its district's initiatives. The console checks everything the chain would (district, window,
cost caps, category) and every file (cap, type) before it signs or sends anything, so bad input is
a message on the page and nothing reaches the network.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from chain.crypto import sha256
from chain.documents import IMAGE_TYPES, PDF
from chain.tx import STAGES, InitiativeSubmit, ProgressReport, sign_tx
from node.client import TxOutcome
from node.console.docs import MAX_OTHER_DOCUMENTS, MAX_PHOTOS, build_manifest, check_file, list_documents
from node.console.forms import (
    ConsoleError, Form, parse_ident, parse_int, parse_rubles, parse_text, read_form,
)
from node.console.i18n import N_
from node.console.web import Ctx, check_csrf, context, render

MAX_TITLE = 300
MAX_SUMMARY = 4000
MAX_NOTE = 2000


def now_ms() -> int:
    return int(time.time() * 1000)


def require_district(ctx: Ctx) -> tuple[str, ...]:
    if not ctx.chain.identity.is_district:
        raise ConsoleError(N_("Only a district operator's key does this."), status=403)
    return ctx.chain.identity.districts


def submission_open(spec: dict[str, Any], at_ms: int) -> bool:
    return bool(spec["submission_start"] <= at_ms < spec["submission_end"] and at_ms < spec["voting_start"])


async def open_campaigns_for(ctx: Ctx, districts: tuple[str, ...]) -> list[dict[str, Any]]:
    """Campaigns accepting initiatives now in one of ``districts``."""
    found = []
    for summary in await ctx.chain.campaigns():
        if summary.get("status") != "open" or not submission_open(summary, now_ms()):
            continue
        if any(d["district_id"] in districts for d in summary.get("districts", [])):
            found.append(summary)
    return found


# --- my initiatives ---------------------------------------------------------------------------------


async def initiatives_page(request: web.Request) -> web.Response:
    ctx = context(request)
    districts = require_district(ctx)
    groups = []
    for summary in await ctx.chain.campaigns():
        if not any(d["district_id"] in districts for d in summary.get("districts", [])):
            continue
        campaign = await ctx.chain.campaign(summary["campaign_id"])
        mine = [i for i in campaign["initiatives"] if i["district_id"] in districts]
        winners: set[str] = set()
        if campaign["status"] == "closed":
            winners = set((await ctx.chain.tally(summary["campaign_id"])).get("winners", []))
        groups.append({"campaign": summary, "initiatives": mine, "winners": winners,
                       "can_submit": summary["status"] == "open" and submission_open(summary, now_ms())})
    return render(ctx, "initiatives.html", groups=groups)


# --- a new initiative --------------------------------------------------------------------------------


async def new_initiative_page(request: web.Request) -> web.Response:
    ctx = context(request)
    districts = require_district(ctx)
    campaign_id = request.query.get("campaign", "")
    if not campaign_id:
        return render(ctx, "initiative_pick.html", campaigns=await open_campaigns_for(ctx, districts))
    return await render_new_form(ctx, campaign_id, {}, None, 200)


async def render_new_form(ctx: Ctx, campaign_id: str, values: dict[str, str], error: str | None,
                          status: int) -> web.Response:
    campaign = await ctx.chain.campaign(parse_ident(campaign_id, "campaign"))
    spec = campaign["campaign"]
    districts = [d for d in spec["districts"] if d["district_id"] in ctx.chain.identity.districts]
    return render(ctx, "initiative_new.html", status=status, spec=spec, districts=districts, values=values,
                  error=error, limit=await ctx.chain.max_document_bytes(), max_photos=MAX_PHOTOS,
                  open_now=campaign["status"] == "open" and submission_open(spec, now_ms()))


async def new_initiative(request: web.Request) -> web.Response:
    ctx = context(request)
    districts = require_district(ctx)
    limit = await ctx.chain.max_document_bytes()
    form = await read_form(request, max_file_bytes=limit)
    check_csrf(ctx, form.get("csrf_token"))
    campaign_id = parse_ident(form.get("campaign_id"), ctx.t(N_("Campaign")))
    values = {name: form.get(name) for name in ("district_id", "initiative_id", "title", "category", "cost", "summary")}
    try:
        tx, files = await prepare_initiative(ctx, form, campaign_id, districts, limit)
    except ConsoleError as error:
        return await render_new_form(ctx, campaign_id, values, ctx.t(error.message, **error.params), error.status)
    await ctx.chain.upload(files)
    outcome = await ctx.chain.submit(tx)
    body: InitiativeSubmit = tx.body
    return outcome_page(ctx, outcome, N_("Initiative submitted: it waits for the committee's review."),
                        f"/initiatives/{body.campaign_id}/{body.initiative_id}")


async def prepare_initiative(ctx: Ctx, form: Form, campaign_id: str, districts: tuple[str, ...],
                             limit: int) -> tuple[Any, list[bytes]]:
    campaign = await ctx.chain.campaign(campaign_id)
    spec = campaign["campaign"]
    district_id = form.get("district_id")
    if district_id not in districts:
        raise ConsoleError(N_("Your key operates %(mine)s; it cannot submit an initiative for district %(other)s. "
                              "Nothing was sent."), status=403, mine=", ".join(districts), other=district_id[:64])
    if district_id not in {d["district_id"] for d in spec["districts"]}:
        raise ConsoleError(N_("District %(district)s is not part of this campaign."), district=district_id)
    if campaign["status"] != "open" or not submission_open(spec, now_ms()):
        raise ConsoleError(N_("This campaign does not accept initiatives now."), status=409)
    title = parse_text(form.get("title"), ctx.t(N_("Title")), MAX_TITLE)
    category = parse_text(form.get("category"), ctx.t(N_("Category")), 64)
    if spec["categories"] and category not in spec["categories"]:
        raise ConsoleError(N_("Category: choose one of the campaign's categories."))
    cost = parse_rubles(form.get("cost"), ctx.t(N_("Cost")))
    if cost < spec["min_cost"] or cost > spec["max_cost"]:
        raise ConsoleError(N_("The cost %(cost)s is outside this campaign's range %(low)s – %(high)s. Nothing was "
                              "sent."), cost=ctx.money(cost), low=ctx.money(spec["min_cost"]),
                           high=ctx.money(spec["max_cost"]))
    summary = parse_text(form.get("summary"), ctx.t(N_("Summary")), MAX_SUMMARY, required=False)
    initiative_id = form.get("initiative_id")
    known = {i["initiative_id"] for i in campaign["initiatives"]}
    if initiative_id:
        parse_ident(initiative_id, ctx.t(N_("Initiative id")))
        if initiative_id in known:
            raise ConsoleError(N_("The campaign already has an initiative %(id)s; choose another id."), status=409,
                               id=initiative_id)
    else:
        initiative_id = f"{district_id[:40]}-{secrets.token_hex(3)}"
    estimates, photos = form.uploads("estimate"), form.uploads("photos")
    if len(estimates) != 1:
        raise ConsoleError(N_("Attach the estimate as one PDF file."))
    if len(photos) > MAX_PHOTOS:
        raise ConsoleError(N_("At most %(count)s photos."), count=MAX_PHOTOS)
    check_file(estimates[0], (PDF,), limit, ctx.lang)
    for photo in photos:
        check_file(photo, IMAGE_TYPES, limit, ctx.lang)
    manifest, encoded, files = build_manifest([(estimates[0], "estimate")] + [(p, "photo") for p in photos])
    body = InitiativeSubmit(campaign_id, initiative_id, district_id, title, category, cost, summary, sha256(encoded))
    tx = sign_tx("initiative.submit", ctx.chain.chain_id, body, [ctx.chain.key])
    return tx, [*files, encoded]


# --- an initiative and its progress ---------------------------------------------------------------


async def initiative_page(request: web.Request, *, error: str | None = None, status: int = 200,
                          values: dict[str, str] | None = None) -> web.Response:
    ctx = context(request)
    campaign_id = parse_ident(request.match_info["campaign"], "campaign")
    initiative_id = parse_ident(request.match_info["initiative"], "initiative")
    campaign = await ctx.chain.campaign(campaign_id)
    initiative = await ctx.chain.initiative(campaign_id, initiative_id)
    spec = campaign["campaign"]
    documents = await list_documents(ctx.chain, initiative.get("document_hash", ""))
    timeline = []
    for report in reversed(initiative.get("progress", [])):
        timeline.append({"report": report, "documents": await list_documents(ctx.chain, report["evidence_hash"])})
    winners: set[str] = set()
    if campaign["status"] == "closed":
        winners = set((await ctx.chain.tally(campaign_id)).get("winners", []))
    identity = ctx.chain.identity
    own = identity.is_district and initiative["district_id"] in identity.districts
    can_report = campaign["status"] == "closed" and initiative["status"] == "approved" and (own or identity.is_committee)
    can_review = identity.is_committee and campaign["status"] == "open" and now_ms() < spec["voting_start"]
    return render(ctx, "initiative.html", status=status, campaign=campaign, spec=spec, initiative=initiative,
                  documents=documents, timeline=timeline, winner=initiative_id in winners, can_report=can_report,
                  can_review=can_review, stages=STAGES, error=error, values=values or {},
                  limit=await ctx.chain.max_document_bytes(), max_photos=MAX_PHOTOS)


async def report_progress(request: web.Request) -> web.Response:
    """A district operator's progress report on its district's initiative (the committee's goes through a
    signing request: node/console/committee.py)."""
    ctx = context(request)
    identity = ctx.chain.identity
    limit = await ctx.chain.max_document_bytes()
    form = await read_form(request, max_file_bytes=limit)
    check_csrf(ctx, form.get("csrf_token"))
    values = {name: form.get(name) for name in ("stage", "percent", "spent", "note")}
    try:
        body, files = await prepare_progress(ctx, form, request.match_info["campaign"], request.match_info["initiative"],
                                             limit)
    except ConsoleError as error:
        return await initiative_page(request, error=ctx.t(error.message, **error.params), status=error.status,
                                     values=values)
    if identity.is_committee:
        from node.console.requests import prepare_and_share

        response: web.Response = await prepare_and_share(ctx, "progress.report", body, files)
        return response
    if not identity.is_district:
        raise ConsoleError(N_("Only a district operator's or the committee's key reports progress."), status=403)
    tx = sign_tx("progress.report", ctx.chain.chain_id, body, [ctx.chain.key])
    await ctx.chain.upload(files)
    outcome = await ctx.chain.submit(tx)
    return outcome_page(ctx, outcome, N_("Progress report recorded."), f"/initiatives/{body.campaign_id}/{body.initiative_id}")


async def prepare_progress(ctx: Ctx, form: Form, campaign_id: str, initiative_id: str,
                           limit: int) -> tuple[ProgressReport, list[bytes]]:
    parse_ident(campaign_id, "campaign")
    parse_ident(initiative_id, "initiative")
    campaign = await ctx.chain.campaign(campaign_id)
    initiative = await ctx.chain.initiative(campaign_id, initiative_id)
    identity = ctx.chain.identity
    if identity.is_district and initiative["district_id"] not in identity.districts:
        raise ConsoleError(N_("Initiative %(initiative)s belongs to district %(other)s; your key operates %(mine)s. "
                              "Nothing was sent."), status=403, initiative=initiative_id,
                           other=initiative["district_id"], mine=", ".join(identity.districts))
    if campaign["status"] != "closed" or initiative["status"] != "approved":
        raise ConsoleError(N_("Progress is reported on approved initiatives once the vote has closed."), status=409)
    stage = form.get("stage")
    if stage not in STAGES:
        raise ConsoleError(N_("Stage: choose one of the list."))
    percent = parse_int(form.get("percent"), ctx.t(N_("Percent done")), 0, 100)
    spent = parse_rubles(form.get("spent"), ctx.t(N_("Spent so far"))) if form.get("spent") else 0
    note = parse_text(form.get("note"), ctx.t(N_("Note")), MAX_NOTE, required=False)
    photos, others = form.uploads("photos"), form.uploads("documents")
    if len(photos) > MAX_PHOTOS or len(others) > MAX_OTHER_DOCUMENTS:
        raise ConsoleError(N_("At most %(count)s photos and %(documents)s documents."), count=MAX_PHOTOS,
                           documents=MAX_OTHER_DOCUMENTS)
    for photo in photos:
        check_file(photo, IMAGE_TYPES, limit, ctx.lang)
    for other in others:
        check_file(other, (PDF,), limit, ctx.lang)
    evidence, files = b"", []
    if photos or others:
        _, encoded, contents = build_manifest([(p, "photo") for p in photos] + [(d, "document") for d in others])
        evidence, files = sha256(encoded), [*contents, encoded]
    return ProgressReport(campaign_id, initiative_id, stage, percent, spent, note, evidence), files


def outcome_page(ctx: Ctx, outcome: TxOutcome, success: str, back: str) -> web.Response:
    status = 200 if outcome.status == "committed" else 409 if outcome.status == "rejected" else 202
    return render(ctx, "outcome.html", status=status, outcome=outcome, success=ctx.t(success), back=back)
