"""Steps 3 and 4: a district's ballot page and casting the ballot.

The ballot is signed with the voter's own random key for this campaign (made at the first ballot,
kept encrypted in the vault), registered in a batch by the pipeline, stored durably, then sent.
The answer shows the tx hash (``id="tx-hash"``) and says "counted" only once the ballot is in a
certified block whose proof the gateway verified; otherwise it says "pending — check again".
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from chain.crypto import SigningKey
from chain.tx import ID_PATTERN, make_vote
from gateway.chainview import CampaignDetail, CampaignView
from gateway.errors import NodeAnswerError, NodeUnavailable, Refusal
from gateway.guard import subnet_of
from gateway.i18n import rejection_text
from gateway.phone import Identity
from gateway.pipeline import Outcome, Tracker
from gateway.receipts import Lookup
from gateway.site import HONEYPOT_FIELD, Ctx, Gateway, check_form, context, read_form, render
from gateway.vault import VaultEntry, merge_writes, used_card_key

log = logging.getLogger("veche.gateway.vote")

VOTE_FORM = frozenset({"csrf_token", "choice", HONEYPOT_FIELD})


async def load_district(gw: Gateway, campaign_id: str, district_id: str) -> CampaignDetail:
    if not ID_PATTERN.fullmatch(campaign_id):
        raise Refusal("err_unknown_campaign", status=404, reason="unknown_campaign")
    detail = await gw.chain.detail(campaign_id)
    if detail is None:
        raise Refusal("err_unknown_campaign", status=404, reason="unknown_campaign")
    if detail.campaign.district(district_id) is None:
        raise Refusal("err_unknown_district", status=404, reason="unknown_district")
    return detail


def voter_identity(ctx: Ctx, campaign_id: str) -> Identity | None:
    session = ctx.session
    if session is None or session.identity is None:
        return None
    identity = session.identity
    if identity.is_card and identity.card_campaign != campaign_id:
        return None
    return identity


def earlier_ballot(gw: Gateway, identity: Identity, campaign: CampaignView, district_id: str) -> bytes | None:
    """Hash of this voter's standing ballot for the district's slot (a rejected one does not stand).

    A code card casts one ballot per campaign, so for a card any standing ballot counts.
    """
    entry = gw.vault.load(identity, campaign.campaign_id)
    if entry is None:
        return None
    if identity.is_card:
        candidates = list(entry.ballots.values())
    else:
        candidates = [h for h in (entry.ballots.get(campaign.ballot_slot(district_id)),) if h is not None]
    for tx_hash in candidates:
        if gw.pipeline.rejection(tx_hash) is None:
            return tx_hash
    return None


async def ballot_page(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    gw = ctx.gw
    campaign_id, district_id = request.match_info["campaign"], request.match_info["district"]
    detail = await load_district(gw, campaign_id, district_id)
    campaign = detail.campaign
    identity = voter_identity(ctx, campaign_id)
    voted: bytes | None = None
    if identity is not None:
        voted = earlier_ballot(gw, identity, campaign, district_id)
        ctx.ensure_session()
    voting = campaign.is_voting(gw.clock()) and campaign.served_by(gw.gateway_public_hex)
    # while voting is open the ballot is frozen: the page is rendered once per language and login state
    cache_key = (campaign.status, voting, identity is not None) if voting and voted is None else None
    return render(ctx, "ballot.html", campaign=campaign, district=campaign.district(district_id),
                  initiatives=detail.approved_in(district_id), logged_in=identity is not None,
                  voting=voting, voted=voted, cache_key=cache_key,
                  login_link=ctx.u(f"/login?next=/c/{campaign_id}/d/{district_id}"))


def parse_choices(form_choices: list[str], detail: CampaignDetail, district_id: str) -> list[str]:
    campaign = detail.campaign
    if not form_choices:
        raise Refusal("err_no_choice", status=400, reason="no_choice")
    on_ballot = {i.initiative_id for i in detail.approved_in(district_id)}
    for choice in form_choices:
        if choice not in on_ballot:
            raise Refusal("err_bad_choice", status=400, reason="bad_choice", params={"choice": choice[:64]})
    if len(set(form_choices)) != len(form_choices) or not campaign.min_choices <= len(form_choices) <= campaign.max_choices:
        raise Refusal("err_choice_count", status=400, reason="choice_count",
                      params={"min": str(campaign.min_choices), "max": str(campaign.max_choices)})
    return form_choices


def _voter_lock(gw: Gateway, index: bytes) -> asyncio.Lock:
    lock = gw.voter_locks.get(index)
    if lock is None:
        lock = gw.voter_locks[index] = asyncio.Lock()
    return lock


def _release_lock(gw: Gateway, index: bytes) -> None:
    lock = gw.voter_locks.get(index)
    if lock is not None and not lock.locked():
        del gw.voter_locks[index]


async def cast_vote(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    gw = ctx.gw
    campaign_id, district_id = request.match_info["campaign"], request.match_info["district"]
    form = await read_form(ctx, VOTE_FORM)
    check_form(ctx, form)
    gw.limiter.check("ballot_per_ip", ctx.client, "rate_ip")
    gw.limiter.check("ballot_per_subnet", subnet_of(ctx.client), "rate_subnet")
    if ctx.session is not None and ctx.session.identity is not None and ctx.session.identity.is_card \
            and ctx.session.identity.card_campaign != campaign_id:
        raise Refusal("err_card_campaign", status=403, reason="card_campaign")
    identity = voter_identity(ctx, campaign_id)
    if identity is None:
        raise Refusal("err_login_first", status=401, reason="not_logged_in")
    detail = await load_district(gw, campaign_id, district_id)
    campaign = detail.campaign
    if not campaign.is_voting(gw.clock()):
        raise Refusal("err_not_voting", status=409, reason="not_voting")
    if campaign.gateway != gw.gateway_public_hex:
        raise Refusal("err_other_gateway", status=409, reason="other_gateway")
    choices = parse_choices(form.getall("choice", []), detail, district_id)

    index = gw.vault.index(identity, campaign_id)
    try:
        async with _voter_lock(gw, index):
            tracker = await _sign_and_queue(gw, identity, campaign, district_id, choices)
    finally:
        _release_lock(gw, index)
    ctx.ensure_session()
    outcome = await _wait(gw, tracker)
    if outcome is not None and not outcome.committed:
        await _forget_rejected(gw, identity, campaign, tracker)
        return render(ctx, "vote_done.html", status=409, state="rejected", tx_hash=tracker.tx.hash.hex(),
                      reason=rejection_text(ctx.lang, outcome.code, outcome.message), lookup=None, campaign=campaign, district_id=district_id)
    lookup = None
    if outcome is not None:
        try:
            lookup = await gw.receipts.lookup(tracker.tx.hash)
        except (NodeUnavailable, NodeAnswerError) as exc:
            log.warning("receipt for a committed ballot not available yet: %s", exc)
    state = "counted" if lookup is not None and lookup.status == "committed" else "pending"
    return render(ctx, "vote_done.html", status=200 if state == "counted" else 202, state=state,
                  tx_hash=tracker.tx.hash.hex(), reason="", lookup=lookup, campaign=campaign,
                  district_id=district_id, choice_titles=_titles(detail, lookup))


async def _sign_and_queue(gw: Gateway, identity: Identity, campaign: CampaignView, district_id: str,
                          choices: list[str]) -> Tracker:
    if earlier_ballot(gw, identity, campaign, district_id) is not None:
        if identity.is_card:
            raise Refusal("err_card_used", status=409, reason="card_used")
        raise Refusal("err_already_voted", status=409, reason="second_ballot")
    entry = gw.vault.load(identity, campaign.campaign_id)
    if entry is None:
        entry = VaultEntry(SigningKey.generate().seed)
    voter_key = entry.signing_key
    vote = make_vote(gw.chain_id, voter_key, campaign.campaign_id, district_id, choices)
    entry.ballots[campaign.ballot_slot(district_id)] = vote.hash
    writes = gw.vault.entry_writes(identity, campaign.campaign_id, entry)
    if identity.card_id is not None:
        writes = merge_writes(writes, {used_card_key(identity.card_id): campaign.campaign_id.encode()})
    return await gw.pipeline.cast(campaign.campaign_id, vote, voter_key.public_key, writes)


async def _wait(gw: Gateway, tracker: Tracker) -> Outcome | None:
    try:
        return await asyncio.wait_for(asyncio.shield(tracker.future), gw.config.commit_wait_seconds)
    except asyncio.TimeoutError:
        return None


async def _forget_rejected(gw: Gateway, identity: Identity, campaign: CampaignView, tracker: Tracker) -> None:
    """A rejected ballot does not stand: free its slot (and its card) so the voter may try again."""
    index = gw.vault.index(identity, campaign.campaign_id)
    try:
        async with _voter_lock(gw, index):
            entry = gw.vault.load(identity, campaign.campaign_id)
            if entry is None:
                return
            entry.ballots = {slot: h for slot, h in entry.ballots.items() if h != tracker.tx.hash}
            writes = gw.vault.entry_writes(identity, campaign.campaign_id, entry)
            if identity.card_id is not None:
                writes[used_card_key(identity.card_id)] = None
            gw.store.write(writes, sync=True)
    finally:
        _release_lock(gw, index)


def _titles(detail: CampaignDetail, lookup: Lookup | None) -> list[str]:
    if lookup is None or lookup.tx is None or lookup.tx.kind != "vote.cast":
        return []
    titles = []
    for choice in lookup.tx.body.choices:
        initiative = detail.initiative(choice)
        titles.append(initiative.title if initiative is not None else choice)
    return titles
