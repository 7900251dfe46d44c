"""The campaign wizard: a form → the campaign JSON of docs/GENESIS.md §3 → a preview of the frozen rules.

The wizard writes exactly the JSON that ``veche campaign create FILE.json`` takes (it can be
downloaded, so the CLI path stays), and reads it back with ``genesis.campaign_json.campaign_from_json``
— the same code the CLI uses — so every check and default is the CLI's. Districts and budgets come
from an earlier campaign on the chain, a CSV file, or the text box (``district_id;name;budget in
rubles``). The gateway's certification key (optional, docs/PROTOCOL.md §16: citizens may then vote
with their own key) is pasted as the gateway operator gives it (``veche gateway certification-key``)
and checked here before anything is signed; copying an earlier campaign copies its key too, with a
notice, and the preview shows the key's SHA-256 fingerprint to compare with the gateway operator.
Nothing is signed until the preview is confirmed: then one committee member's console prepares a
signing request (node/console/requests.py).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from chain.crypto import sha256
from chain.errors import GenesisError
from chain.tx import BALLOT_TYPES, BALLOTS_PER_VOTER, RULES, SCOPES, TRACKS, CampaignCreate, body_to_json
from genesis.campaign_json import campaign_from_json
from node.console.forms import (
    ConsoleError, districts_to_csv, is_private_key_text, local_time_to_rfc3339, parse_certification_key,
    parse_districts, parse_ident, parse_int, parse_offset, parse_rubles, parse_text, read_form,
)
from node.console.i18n import N_
from node.console.web import Ctx, check_csrf, context, render

FIELDS = ("campaign_id", "title", "track", "description", "source", "districts", "ballot_type", "min_choices",
          "max_choices", "max_sum_cost", "min_sum_points", "max_sum_points", "max_points", "rank_points", "rule",
          "scope", "top_n", "min_votes", "budget", "min_cost", "max_cost", "categories", "submission_start",
          "submission_end", "voting_start", "voting_end", "utc_offset", "gateway", "registration_cap",
          "ballots_per_voter", "certification_key")
MAX_DRAFTS = 50
CSV_LIMIT = 256 * 1024


@dataclass(slots=True)
class Draft:
    values: dict[str, str]
    document: dict[str, Any]
    body: CampaignCreate


def require_committee(ctx: Ctx) -> None:
    if not ctx.chain.identity.is_committee:
        raise ConsoleError(N_("Only a committee member's key does this."), status=403)


def default_values(ctx: Ctx) -> dict[str, str]:
    offset = ctx.console.display_offset_minutes
    sign = "+" if offset >= 0 else "-"
    gateways = sorted(ctx.chain.view.gateways)
    return {"track": "adult", "ballot_type": "choose-1", "min_choices": "1", "max_choices": "1", "rule": "top-n",
            "scope": "district", "top_n": "0", "min_votes": "0", "min_cost": "1", "max_cost": "10000000",
            "utc_offset": f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}", "registration_cap": "1000000",
            "ballots_per_voter": "district", "gateway": gateways[0] if gateways else ""}


async def wizard_page(request: web.Request) -> web.Response:
    ctx = context(request)
    require_committee(ctx)
    values = default_values(ctx)
    draft = ctx.console.drafts.get(request.query.get("draft", ""))
    if isinstance(draft, Draft):
        values = dict(draft.values)
    return await render_form(ctx, values, None, 200)


async def render_form(ctx: Ctx, values: dict[str, str], error: str | None, status: int,
                      notice: str | None = None) -> web.Response:
    campaigns = await ctx.chain.campaigns()
    return render(ctx, "wizard.html", status=status, values=values, error=error, notice=notice, campaigns=campaigns,
                  gateways=sorted(ctx.chain.view.gateways), tracks=TRACKS,
                  ballot_types=BALLOT_TYPES, rules=RULES, scopes=SCOPES, per_voter=BALLOTS_PER_VOTER)


async def wizard_post(request: web.Request) -> web.Response:
    ctx = context(request)
    require_committee(ctx)
    form = await read_form(request, max_file_bytes=CSV_LIMIT, max_files=1)
    check_csrf(ctx, form.get("csrf_token"))
    values = {name: form.get(name) for name in FIELDS}
    try:
        uploaded = form.uploads("districts_file")
        if uploaded:
            if uploaded[0].over_limit:
                raise ConsoleError(N_("The districts file is too large."), status=413)
            try:
                values["districts"] = uploaded[0].data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ConsoleError(N_("The districts file must be UTF-8 text.")) from None
            parse_districts(values["districts"])
        if form.get("action") == "load":
            notice = await copy_from_campaign(ctx, values)
            return await render_form(ctx, values, None, 200, notice)
        document = campaign_document(values)
        try:
            body = campaign_from_json(document, (await ctx.chain.refresh()).gateways)
        except GenesisError as exc:
            raise ConsoleError(N_("The campaign is not valid: %(detail)s"), detail=exc.message) from exc
    except ConsoleError as error:
        if is_private_key_text(values.get("certification_key", "")):
            values["certification_key"] = ""        # never echo a pasted private key back into a page
        return await render_form(ctx, values, ctx.t(error.message, **error.params), error.status)
    draft_id = secrets.token_urlsafe(9)
    drafts = ctx.console.drafts
    drafts[draft_id] = Draft(values, document, body)
    while len(drafts) > MAX_DRAFTS:
        drafts.pop(next(iter(drafts)))
    return render_preview(ctx, draft_id, drafts[draft_id])


def render_preview(ctx: Ctx, draft_id: str, draft: Draft) -> web.Response:
    from chain import codec
    from chain.crypto import DOMAIN

    body = draft.body
    signing = DOMAIN + b"campaign.create" + ctx.chain.chain_id.encode() + codec.encode(body.to_wire())
    certification = body.certification_key
    return render(ctx, "wizard_preview.html", draft_id=draft_id, body=body, document=draft.document,
                  certification_bits=len(certification) * 8,
                  certification_fingerprint=sha256(certification).hex() if certification else "",
                  campaign_json=json.dumps(draft.document, indent=2, ensure_ascii=False),
                  body_json=json.dumps(body_to_json(body), indent=2, ensure_ascii=False),
                  signing_hash=sha256(signing).hex(),
                  gateway_name=next((n for n, k in ctx.chain.view.gateways.items() if k == body.gateway),
                                    body.gateway.hex()))


async def copy_from_campaign(ctx: Ctx, values: dict[str, str]) -> str | None:
    """Districts and budgets from an earlier campaign; its categories and its certification key too where
    the form has none yet. The key is the gateway's long-lived one (a gateway key rotation leaves it), so
    a committee repeating last year's campaign expects it — but it decides how citizens vote, so the
    page says it was copied (the answer: that notice, or ``None``)."""
    source = values.get("source", "")
    if not source:
        raise ConsoleError(N_("Choose the campaign to copy the districts from."))
    campaign = await ctx.chain.campaign(parse_ident(source, ctx.t(N_("Campaign"))))
    spec = campaign["campaign"]
    values["districts"] = districts_to_csv(spec["districts"])
    if not values.get("categories"):
        values["categories"] = "\n".join(spec.get("categories", []))
    if spec.get("certification_key") and not values.get("certification_key"):
        values["certification_key"] = str(spec["certification_key"])
        return ctx.t(N_("The certification key of %(campaign)s was copied too: citizens may vote with their own "
                        "key. Compare its fingerprint on the next page with the gateway operator's, or empty the "
                        "field."), campaign=source)
    return None


def campaign_document(values: dict[str, str]) -> dict[str, Any]:
    """The campaign JSON (docs/GENESIS.md §3) the form describes."""
    offset = parse_offset(values.get("utc_offset", "+03:00"))
    kind = values.get("ballot_type", "")
    if kind not in BALLOT_TYPES:
        raise ConsoleError(N_("Ballot: choose a ballot type."))
    ballot: dict[str, Any] = {"type": kind, "min_choices": parse_int(values.get("min_choices", ""),
                                                                      "min_choices", 1, 64)}
    if kind == "ordinal":
        ranks = [p.strip() for p in values.get("rank_points", "").replace(";", ",").split(",") if p.strip()]
        ballot["rank_points"] = [parse_int(p, "rank_points", 1, 1_000_000) for p in ranks]
    elif kind != "choose-1":
        ballot["max_choices"] = parse_int(values.get("max_choices", ""), "max_choices", 1, 64)
    if kind == "choose-1":
        ballot["max_choices"] = 1
    if kind == "knapsack":
        ballot["max_sum_cost"] = parse_rubles(values.get("max_sum_cost") or "0", "max_sum_cost")
    if kind == "cumulative":
        ballot["max_sum_points"] = parse_int(values.get("max_sum_points", ""), "max_sum_points", 1, 1_000_000)
        ballot["min_sum_points"] = parse_int(values.get("min_sum_points") or "0", "min_sum_points", 0, 1_000_000)
        ballot["max_points"] = parse_int(values.get("max_points") or "0", "max_points", 0, 1_000_000)
    rule_name = values.get("rule", "")
    if rule_name not in RULES:
        raise ConsoleError(N_("Winner rule: choose one of the list."))
    rule: dict[str, Any] = {"name": rule_name, "scope": values.get("scope", "district"),
                            "min_votes": parse_int(values.get("min_votes") or "0", "min_votes", 0, 10**12)}
    if rule_name == "top-n":
        rule["top_n"] = parse_int(values.get("top_n") or "0", "top_n", 0, 100_000)
    if rule["scope"] == "campaign":
        rule["budget"] = parse_rubles(values.get("budget") or "0", "budget")
    categories = [c.strip() for c in values.get("categories", "").replace(",", "\n").splitlines() if c.strip()]
    document: dict[str, Any] = {
        "campaign_id": parse_ident(values.get("campaign_id", ""), "campaign_id"),
        "title": parse_text(values.get("title", ""), "title", 200),
        "track": values.get("track", ""),
        "districts": parse_districts(values.get("districts", "")),
        "ballot": ballot, "rule": rule,
        "min_cost": parse_rubles(values.get("min_cost", ""), "min_cost"),
        "max_cost": parse_rubles(values.get("max_cost", ""), "max_cost"),
        "categories": categories,
        "submission_start": local_time_to_rfc3339(values.get("submission_start", ""), offset, "submission_start"),
        "submission_end": local_time_to_rfc3339(values.get("submission_end", ""), offset, "submission_end"),
        "voting_start": local_time_to_rfc3339(values.get("voting_start", ""), offset, "voting_start"),
        "voting_end": local_time_to_rfc3339(values.get("voting_end", ""), offset, "voting_end"),
        "gateway": values.get("gateway", ""),
        "registration_cap": parse_int(values.get("registration_cap", ""), "registration_cap", 1, 10**12),
        "ballots_per_voter": values.get("ballots_per_voter", ""),
    }
    certification_key = parse_certification_key(values.get("certification_key", ""))
    if certification_key:
        document["certification_key"] = certification_key.hex()
    description = values.get("description", "")
    if description:
        document["description"] = parse_text(description, "description", 4000)
    return document


async def draft_json(request: web.Request) -> web.Response:
    """``GET /campaigns/drafts/{id}.json``: the campaign JSON, for ``veche campaign create FILE.json``."""
    ctx = context(request)
    require_committee(ctx)
    draft = ctx.console.drafts.get(request.match_info["draft"])
    if not isinstance(draft, Draft):
        raise ConsoleError(N_("This draft is no longer kept by the console; fill in the form again."), status=404)
    text = campaign_json_text(draft.document)
    return web.Response(text=text, content_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="{draft.document["campaign_id"]}.json"'})


def campaign_json_text(document: dict[str, Any]) -> str:
    """The downloadable campaign JSON file, as ``veche campaign create FILE.json`` reads it."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def draft_of(ctx: Ctx, draft_id: str) -> Draft:
    draft = ctx.console.drafts.get(draft_id)
    if not isinstance(draft, Draft):
        raise ConsoleError(N_("This draft is no longer kept by the console; fill in the form again."), status=404)
    return draft

