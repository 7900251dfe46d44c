"""Steps 3 and 4: a district's ballot page and casting the ballot.

The ballot is signed with the voter's own random key for this campaign (made at the first ballot,
kept encrypted in the vault), registered in a batch by the pipeline, stored durably, then sent.
The answer shows the tx hash (``id="tx-hash"``) and says "counted" only once the ballot is in a
certified block whose proof the gateway verified; otherwise it says "pending — check again".
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from aiohttp import web

from chain.crypto import SigningKey
from chain.tx import ID_PATTERN, make_vote
from gateway.ballot_forms import (
    BallotDraft, BallotProblem, browser_checks, check_draft, is_ballot_field, read_draft,
)
from gateway.chainview import CampaignDetail, CampaignView
from gateway.errors import Refusal
from gateway.i18n import error_text, format_money
from gateway.guard import subnet_of
from gateway.phone import Identity
from gateway.pipeline import Outcome, Tracker
from gateway import wording
from gateway.outcomes import DistrictOutcome, campaign_outcomes
from gateway.site import (
    HONEYPOT_FIELD, SECURITY_HEADERS, Ctx, Gateway, check_form, context, read_form, redirect, render,
)
from gateway.vault import VaultEntry, merge_writes, used_card_key

log = logging.getLogger("veche.gateway.vote")

VOTE_FORM = frozenset({"csrf_token", "choice", HONEYPOT_FIELD})
MONEY_PROBLEMS = frozenset({"err_over_cap"})   # their parameters are kopecks
LIVE_TOTALS = frozenset({"knapsack", "cumulative"})   # ballot pages with /static/ballot.js
BALLOT_SCRIPT_CSP = SECURITY_HEADERS["Content-Security-Policy"].replace("default-src 'none';",
                                                                       "default-src 'none'; script-src 'self';")


def is_vote_field(name: str) -> bool:
    return name in VOTE_FORM or is_ballot_field(name)


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
    """A district's ballot in the state the citizen finds it: logged out (what happens, the phone
    form), logged in (the choices and rules), already voted (the receipt), voting not open yet, or
    closed (the district's result)."""
    ctx = context(request)
    gw = ctx.gw
    campaign_id, district_id = request.match_info["campaign"], request.match_info["district"]
    detail = await load_district(gw, campaign_id, district_id)
    campaign = detail.campaign
    district = campaign.district(district_id)
    identity = voter_identity(ctx, campaign_id)
    now = gw.clock()
    voted: bytes | None = None
    if identity is not None:
        voted = earlier_ballot(gw, identity, campaign, district_id)
    ours = campaign.served_by(gw.gateway_public_hex)
    voting = campaign.is_voting(now) and ours
    if campaign.closed or (campaign.status == "open" and now >= campaign.voting_end):
        state = "closed"
    elif not campaign.is_voting(now):
        state = "upcoming"
    elif not ours:
        state = "elsewhere"
    elif voted is not None:
        state = "voted"
    elif identity is None:
        state = "logged_out"
    else:
        state = "ballot"
    session = ctx.ensure_session() if state in ("logged_out", "ballot", "voted") or ctx.session else None
    if state == "logged_out" and session is not None:
        session.next_path = request.path            # the phone form on this page comes back here
    outcome = None
    if state == "closed" and campaign.closed:
        tally = await gw.chain.tally(campaign_id)
        if tally is not None and tally.get("result_status") != "computing":
            outcome = next(o for o in campaign_outcomes(detail, tally) if o.district.district_id == district_id)
    # while voting is open the ballot is frozen: the page is rendered once per language and state
    cache_key = (campaign.status, state) if state in ("logged_out", "ballot") else None
    return render_ballot(ctx, detail, district_id, state=state, voting=voting, voted=voted, outcome=outcome,
                         cache_key=cache_key)


def render_ballot(ctx: Ctx, detail: CampaignDetail, district_id: str, *, state: str, voting: bool,
                  voted: bytes | None, outcome: DistrictOutcome | None = None, cache_key: tuple[object, ...] | None = None,
                  draft: BallotDraft | None = None, problem: str | None = None, status: int = 200) -> web.Response:
    """The ballot page; with ``draft`` and ``problem`` a refused ballot, as the citizen left it."""
    campaign = detail.campaign
    district = campaign.district(district_id)
    budget = district.budget if district is not None else 0
    initiatives = detail.approved_in(district_id)
    voter_held = voter_held_data(ctx.gw, campaign, district_id) if state == "ballot" else None
    headers = None
    if voter_held is not None:
        # the page checks a voter-held ballot itself: the gateway never sees it
        voter_held.update(browser_checks(campaign, budget, lambda key, **params: error_text(ctx.lang, key, **params),
                                         lambda kopecks: format_money(kopecks, ctx.lang)))
        # the page's scripts (same origin) may talk to the gateway and to the genesis file's nodes
        headers = {"Content-Security-Policy": voter_held_policy(ctx.gw)}
    elif state == "ballot" and campaign.ballot_type in LIVE_TOTALS:
        headers = {"Content-Security-Policy": BALLOT_SCRIPT_CSP}
    return render(ctx, "ballot.html", status=status, headers=headers, campaign=campaign, district=district,
                  initiatives=initiatives, state=state, voting=voting, voted=voted, outcome=outcome,
                  cache_key=cache_key, draft=draft or BallotDraft(), problem=problem, voter_held=voter_held,
                  cost_cap=campaign.cost_cap(budget),
                  instruction=wording.ballot_instruction(ctx.lang, campaign, len(initiatives), budget),
                  ballots_rule=wording.ballots_rule(ctx.lang, campaign),
                  winner_rule=wording.winner_rule(ctx.lang, campaign),
                  no_winner=wording.no_winner_text(ctx.lang, campaign, outcome) if outcome is not None else "",
                  card_link=ctx.u(f"/login?next=/c/{campaign.campaign_id}/d/{district_id}"))


def voter_held_policy(gw: Gateway) -> str:
    origins = sorted({"{0.scheme}://{0.netloc}".format(urlsplit(url)) for url in node_urls(gw)})
    return SECURITY_HEADERS["Content-Security-Policy"].replace(
        "default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self' " + " ".join(origins) + ";")


def node_urls(gw: Gateway) -> list[str]:
    """The public API base URLs of the validators, from the genesis file (where browsers send ballots)."""
    urls = []
    for entry in gw.genesis_document.get("validators", []):
        url = entry.get("url") if isinstance(entry, dict) else None
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            urls.append(url.rstrip("/"))
    return urls


def voter_held_data(gw: Gateway, campaign: CampaignView, district_id: str) -> dict[str, str] | None:
    """What the ballot page's script needs to let the citizen hold their own key (``data-*`` attributes
    of the ballot form); None when this campaign or gateway offers no voter-held keys."""
    if gw.tokens is None or campaign.certification_key != gw.tokens.modulus.hex():
        return None
    data = {"chain": gw.chain_id, "campaign": campaign.campaign_id, "district": district_id,
            "genesis-hash": gw.params.genesis_hash.hex(), "token-url": f"/c/{campaign.campaign_id}/token",
            "nodes": " ".join(node_urls(gw))}
    if gw.relay is not None:
        data["relay"] = "/relay/v1/txs"
    return data


def _voter_lock(gw: Gateway, index: bytes) -> asyncio.Lock:
    lock = gw.voter_locks.get(index)
    if lock is None:
        lock = gw.voter_locks[index] = asyncio.Lock()
    return lock


def _release_lock(gw: Gateway, index: bytes) -> None:
    lock = gw.voter_locks.get(index)
    if lock is not None and not lock.locked():
        del gw.voter_locks[index]


class AlreadyVoted(Exception):
    """The voter's slot already holds a standing ballot (``tx_hash``)."""

    def __init__(self, tx_hash: bytes, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.tx_hash = tx_hash
        self.refusal = refusal


async def cast_vote(request: web.Request) -> web.StreamResponse:
    """Store, sign and send the ballot, wait up to ``commit_wait_seconds`` for its commit, then
    redirect (303) to its receipt page: POST-redirect-GET, so a refresh never re-sends the form,
    and a second submit of the same district's ballot lands on the standing ballot's receipt."""
    ctx = context(request)
    gw = ctx.gw
    campaign_id, district_id = request.match_info["campaign"], request.match_info["district"]
    form = await read_form(ctx, is_vote_field)
    check_form(ctx, form, single_use=False)
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
    try:
        _refuse_second_ballot(gw, identity, campaign, district_id)
        if not campaign.is_voting(gw.clock()):
            raise Refusal("err_not_voting", status=409, reason="not_voting")
        if not campaign.served_by(gw.gateway_public_hex):
            raise Refusal("err_other_gateway", status=409, reason="other_gateway")
        draft = read_draft(form, form.getall("choice", []), campaign)
        district = campaign.district(district_id)
        try:
            choices, points = check_draft(draft, campaign, detail.approved_in(district_id),
                                          district.budget if district is not None else 0)
        except BallotProblem as problem:
            return refused_ballot(ctx, detail, district_id, draft, problem)
        index = gw.vault.index(identity, campaign_id)
        try:
            async with _voter_lock(gw, index):
                tracker = await _sign_and_queue(gw, identity, campaign, district_id, choices, points)
        finally:
            _release_lock(gw, index)
    except AlreadyVoted as already:
        gw.refusals.refuse(already.refusal, ctx.where(), ctx.client)
        ctx.ensure_session()
        return redirect(ctx, f"/receipt/{already.tx_hash.hex()}?again=1")
    ctx.ensure_session()
    outcome = await _wait(gw, tracker)
    if outcome is not None and not outcome.committed:
        await _forget_rejected(gw, identity, campaign, tracker)
    gw.metrics.ballots.labels("pending" if outcome is None else "committed" if outcome.committed else "rejected").inc()
    return redirect(ctx, f"/receipt/{tracker.tx.hash.hex()}")


def refused_ballot(ctx: Ctx, detail: CampaignDetail, district_id: str, draft: BallotDraft,
                   problem: BallotProblem) -> web.Response:
    """A ballot over its campaign's limits: nothing is signed or sent; the page comes back (400)
    with the reason and every choice as the citizen left it, and a fresh form token."""
    log.info("ballot refused before signing: %s (campaign %s, district %s)", problem.key,
             detail.campaign.campaign_id, district_id)
    ctx.ensure_session()
    money = problem.key in MONEY_PROBLEMS
    params = {k: format_money(int(v), ctx.lang) if money else v for k, v in problem.params.items()}
    return render_ballot(ctx, detail, district_id, state="ballot", voting=True, voted=None, draft=draft,
                         problem=error_text(ctx.lang, problem.key, **params), status=400)


def _refuse_second_ballot(gw: Gateway, identity: Identity, campaign: CampaignView, district_id: str) -> None:
    standing = earlier_ballot(gw, identity, campaign, district_id)
    if standing is not None:
        refusal = Refusal("err_card_used", status=409, reason="card_used") if identity.is_card else \
            Refusal("err_already_voted", status=409, reason="second_ballot")
        raise AlreadyVoted(standing, refusal)


async def _sign_and_queue(gw: Gateway, identity: Identity, campaign: CampaignView, district_id: str,
                          choices: list[str], points: list[int] | None = None) -> Tracker:
    _refuse_second_ballot(gw, identity, campaign, district_id)
    if gw.tokens is not None and gw.tokens.has_token(campaign.campaign_id, gw.vault.index(identity,
                                                                                        campaign.campaign_id)):
        # this citizen holds a voter key of their own for the campaign: one key per (campaign, citizen)
        raise Refusal("err_token_issued", status=409, reason="second_ballot")
    entry = gw.vault.load(identity, campaign.campaign_id)
    if entry is None:
        entry = VaultEntry(SigningKey.generate().seed)
    voter_key = entry.signing_key
    vote = make_vote(gw.chain_id, voter_key, campaign.campaign_id, district_id, choices, points)
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
