"""What the gateway shows about campaigns and initiatives, read from the nodes' public API.

The node answers JSON (``GET /api/v1/campaigns``, ``/campaigns/{id}``, ``/tally``,
``/initiatives/{iid}``); this module turns it into small frozen views and caches them. Everything
that decides a vote is frozen once voting opens, so a campaign's districts and initiatives are
cached until it closes; its status and counters are refreshed every ``status_ttl_s``. Concurrent
requests for the same missing entry share one node call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from chain.tx import ID_PATTERN
from gateway.errors import NodeAnswerError
from gateway.nodes import NodePool

log = logging.getLogger("veche.gateway.chainview")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DistrictView:
    district_id: str
    name: str
    budget: int


@dataclass(frozen=True, slots=True)
class InitiativeView:
    campaign_id: str
    initiative_id: str
    district_id: str
    title: str
    category: str
    cost: int
    summary: str
    status: str
    review_reason: str
    document_hash: str


@dataclass(frozen=True, slots=True)
class ProgressView:
    stage: str
    percent: int
    spent: int
    note: str
    time_ms: int | None
    height: int | None
    evidence_hash: str
    reporter: str = ""


@dataclass(frozen=True, slots=True)
class CampaignView:
    campaign_id: str
    title: str
    track: str
    districts: tuple[DistrictView, ...]
    ballot_type: str
    min_choices: int
    max_choices: int
    rule: str
    scope: str
    rule_budget: int
    top_n: int
    min_votes: int
    categories: tuple[str, ...]
    submission_start: int
    submission_end: int
    voting_start: int
    voting_end: int
    gateway: str
    registration_cap: int
    ballots_per_voter: str
    status: str
    registered: int
    total_ballots: int
    close_reason: str
    gateway_key: str = ""
    """The key the campaign's gateway registers voters with now (after keys.rotate it differs from
    ``gateway``, the key the campaign was created with); empty from nodes that do not say."""
    # ballot limits of the types that have them (docs/PROTOCOL.md §14): knapsack cap (0 = the
    # district's budget), cumulative points, ordinal rank points
    max_sum_cost: int = 0
    min_sum_points: int = 0
    max_sum_points: int = 0
    max_points: int = 0
    rank_points: tuple[int, ...] = ()
    # voter-held keys (docs/PROTOCOL.md §16): the campaign's certification key (hex RSA modulus; it
    # does not rotate with the gateway's Ed25519 key), tokens the gateway counted, their ballots
    certification_key: str = ""
    tokens_issued: int = 0
    voter_held_ballots: int = 0

    @property
    def scored(self) -> bool:
        """Cumulative and ordinal ballots give points; the others name a set of initiatives."""
        return self.ballot_type in ("cumulative", "ordinal")

    def cost_cap(self, district_budget: int) -> int:
        """A knapsack ballot's cap in kopecks."""
        return self.max_sum_cost or district_budget

    @property
    def voter_held(self) -> bool:
        return bool(self.certification_key)

    @property
    def gateway_held_ballots(self) -> int:
        return self.total_ballots - self.voter_held_ballots

    def served_by(self, public_hex: str) -> bool:
        """True when the gateway holding ``public_hex`` serves this campaign (now)."""
        return (self.gateway_key or self.gateway) == public_hex

    def district(self, district_id: str) -> DistrictView | None:
        for district in self.districts:
            if district.district_id == district_id:
                return district
        return None

    def is_voting(self, now_ms: int) -> bool:
        return self.status == "open" and self.voting_start <= now_ms < self.voting_end

    @property
    def closed(self) -> bool:
        return self.status == "closed"

    def ballot_slot(self, district_id: str) -> str:
        return district_id if self.ballots_per_voter == "district" else ""


@dataclass(frozen=True, slots=True)
class CampaignDetail:
    campaign: CampaignView
    initiatives: tuple[InitiativeView, ...]

    def approved_in(self, district_id: str) -> list[InitiativeView]:
        return [i for i in self.initiatives if i.district_id == district_id and i.status == "approved"]

    def initiative(self, initiative_id: str) -> InitiativeView | None:
        for initiative in self.initiatives:
            if initiative.initiative_id == initiative_id:
                return initiative
        return None


# --- parsing -------------------------------------------------------------------------------------


def _field(doc: dict[str, Any], name: str, kind: type[T], default: Any = ...) -> T:
    value = doc.get(name, default)
    if value is ...:
        raise NodeAnswerError(f"node answer lacks {name!r}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        if default is not ... and value is None:
            return default  # type: ignore[no-any-return]
        raise NodeAnswerError(f"node answer: {name!r} must be an integer")
    if kind is str and value is None and default is not ...:
        return default  # type: ignore[no-any-return]
    if not isinstance(value, kind):
        raise NodeAnswerError(f"node answer: {name!r} has the wrong type")
    return value


def _flatten(doc: Any) -> dict[str, Any]:
    """A record as one flat object: the body fields and the state fields side by side."""
    if not isinstance(doc, dict):
        raise NodeAnswerError("node answer: expected a JSON object")
    flat = dict(doc)
    for nested in ("campaign",):
        inner = doc.get(nested)
        if isinstance(inner, dict):
            for key, value in inner.items():
                flat.setdefault(key, value)
    return flat


def _object_or_empty(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The nested object ``doc[name]``, or an empty one when it is absent or not an object."""
    value = doc.get(name)
    return value if isinstance(value, dict) else {}


def parse_campaign(doc: Any) -> CampaignView:
    flat = _flatten(doc)
    ballot = _object_or_empty(flat, "ballot")
    rule = _object_or_empty(flat, "rule")
    districts_raw = _field(flat, "districts", list)
    districts = []
    for item in districts_raw:
        if not isinstance(item, dict):
            raise NodeAnswerError("node answer: a district must be an object")
        districts.append(DistrictView(_field(item, "district_id", str), _field(item, "name", str),
                                      _field(item, "budget", int, 0)))
    campaign_id = _field(flat, "campaign_id", str)
    if not ID_PATTERN.fullmatch(campaign_id):
        raise NodeAnswerError("node answer: malformed campaign id")
    return CampaignView(
        campaign_id=campaign_id,
        title=_field(flat, "title", str),
        track=_field(flat, "track", str, "adult"),
        districts=tuple(districts),
        ballot_type=_field(ballot, "type", str, "choose-1"),
        min_choices=_field(ballot, "min_choices", int, 1),
        max_choices=_field(ballot, "max_choices", int, 1),
        rule=_field(rule, "name", str, "top-n"),
        scope=_field(rule, "scope", str, "district"),
        rule_budget=_field(rule, "budget", int, 0),
        top_n=_field(rule, "top_n", int, 0),
        min_votes=_field(rule, "min_votes", int, 0),
        categories=tuple(str(c) for c in flat.get("categories", []) or []),
        submission_start=_field(flat, "submission_start", int, 0),
        submission_end=_field(flat, "submission_end", int, 0),
        voting_start=_field(flat, "voting_start", int),
        voting_end=_field(flat, "voting_end", int),
        gateway=_field(flat, "gateway", str, ""),
        registration_cap=_field(flat, "registration_cap", int, 0),
        ballots_per_voter=_field(flat, "ballots_per_voter", str, "district"),
        status=_field(flat, "status", str),
        registered=_field(flat, "registered", int, 0),
        total_ballots=_field(flat, "total_ballots", int, 0),
        close_reason=_field(flat, "close_reason", str, ""),
        gateway_key=_field(flat, "gateway_key", str, ""),
        max_sum_cost=_field(ballot, "max_sum_cost", int, 0),
        min_sum_points=_field(ballot, "min_sum_points", int, 0),
        max_sum_points=_field(ballot, "max_sum_points", int, 0),
        max_points=_field(ballot, "max_points", int, 0),
        rank_points=_int_list(ballot, "rank_points"),
        certification_key=_field(flat, "certification_key", str, ""),
        tokens_issued=_field(flat, "tokens_issued", int, 0),
        voter_held_ballots=_field(_object_or_empty(flat, "ballots_by_mode"), "voter-held", int, 0),
    )


def _int_list(doc: dict[str, Any], name: str) -> tuple[int, ...]:
    value = doc.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise NodeAnswerError(f"node answer: {name!r} must be a list of integers")
    return tuple(value)


def parse_initiative(doc: Any) -> InitiativeView:
    flat = _flatten(doc)
    return InitiativeView(
        campaign_id=_field(flat, "campaign_id", str),
        initiative_id=_field(flat, "initiative_id", str),
        district_id=_field(flat, "district_id", str),
        title=_field(flat, "title", str),
        category=_field(flat, "category", str, ""),
        cost=_field(flat, "cost", int),
        summary=_field(flat, "summary", str, ""),
        status=_field(flat, "status", str, "approved"),
        review_reason=_field(flat, "review_reason", str, ""),
        document_hash=_field(flat, "document_hash", str, ""),
    )


def parse_progress(doc: Any) -> ProgressView:
    flat = _flatten(doc)
    return ProgressView(
        stage=_field(flat, "stage", str),
        percent=_field(flat, "percent", int, 0),
        spent=_field(flat, "spent", int, 0),
        note=_field(flat, "note", str, ""),
        time_ms=_field(flat, "time_ms", int, None) if flat.get("time_ms") is not None else None,
        height=_field(flat, "height", int, None) if flat.get("height") is not None else None,
        evidence_hash=_field(flat, "evidence_hash", str, ""),
        reporter=_field(flat, "reporter", str, ""),
    )


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """One entry of ``GET /api/v1/campaigns``: status and counters, refreshed often."""

    campaign_id: str
    status: str
    registered: int
    total_ballots: int
    tokens_issued: int = 0
    voter_held_ballots: int = 0
    gateway_key: str = ""


def parse_summaries(doc: Any) -> list[CampaignSummary]:
    items = doc.get("campaigns") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise NodeAnswerError("node answer: expected {\"campaigns\": [...]}")
    found = []
    for item in items:
        if not isinstance(item, dict):
            raise NodeAnswerError("node answer: a campaign summary must be an object")
        campaign_id = _field(item, "campaign_id", str)
        if not ID_PATTERN.fullmatch(campaign_id):
            raise NodeAnswerError("node answer: malformed campaign id")
        found.append(CampaignSummary(campaign_id, _field(item, "status", str), _field(item, "registered", int, 0),
                                     _field(item, "total_ballots", int, 0), _field(item, "tokens_issued", int, 0),
                                     _field(_object_or_empty(item, "ballots_by_mode"), "voter-held", int, 0),
                                     _field(item, "gateway_key", str, "")))
    return found


# --- cache -----------------------------------------------------------------------------------------


class ChainView:
    """Cached campaign data for the pages. ``clock`` returns unix milliseconds.

    A campaign's spec never changes after ``campaign.create``, so it is fetched once
    (``/campaigns/{id}``); status and counters come from the campaign list, refreshed every
    ``status_ttl_s``; the initiative list is cached once voting has opened (it is frozen then) and
    refetched once more when the campaign closes (for the close reason).
    """

    def __init__(self, pool: NodePool, clock: Callable[[], int], *, status_ttl_s: float = 2.0) -> None:
        self.pool = pool
        self.clock = clock
        self.status_ttl_s = status_ttl_s
        self._summaries: dict[str, CampaignSummary] | None = None
        self._summaries_at = 0.0
        self._details: dict[str, CampaignDetail] = {}
        self._tallies: dict[str, tuple[float, dict[str, Any]]] = {}
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    async def _single_flight(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._inflight[key]

    async def summaries(self) -> dict[str, CampaignSummary]:
        if self._summaries is not None and time.monotonic() - self._summaries_at < self.status_ttl_s:
            return self._summaries

        async def load() -> dict[str, CampaignSummary]:
            found = {s.campaign_id: s for s in parse_summaries(await self.pool.get_ok("/campaigns"))}
            self._summaries, self._summaries_at = found, time.monotonic()
            return found

        return await self._single_flight("campaigns", load)

    async def _fetch_detail(self, campaign_id: str) -> CampaignDetail | None:
        async def load() -> CampaignDetail | None:
            status, doc = await self.pool.get(f"/campaigns/{campaign_id}", ok_statuses=(200, 404))
            if status == 404:
                return None
            initiatives_raw = doc.get("initiatives") if isinstance(doc, dict) else None
            if not isinstance(initiatives_raw, list):
                raise NodeAnswerError("node answer: campaign lacks its initiative list")
            detail = CampaignDetail(parse_campaign(doc), tuple(parse_initiative(i) for i in initiatives_raw))
            self._details[campaign_id] = detail
            return detail

        return await self._single_flight("detail/" + campaign_id, load)

    async def detail(self, campaign_id: str) -> CampaignDetail | None:
        """The campaign (spec, current status and counters) with its initiatives, or None."""
        summary = (await self.summaries()).get(campaign_id)
        if summary is None:
            return None
        cached = self._details.get(campaign_id)
        if (cached is None or cached.campaign.status != summary.status
                or (cached.campaign.status == "open" and self.clock() < cached.campaign.voting_start)):
            cached = await self._fetch_detail(campaign_id)
            if cached is None:
                return None
        campaign = replace(cached.campaign, status=summary.status, registered=summary.registered,
                           total_ballots=summary.total_ballots, tokens_issued=summary.tokens_issued,
                           voter_held_ballots=summary.voter_held_ballots,
                           gateway_key=summary.gateway_key or cached.campaign.gateway_key)
        return CampaignDetail(campaign, cached.initiatives)

    async def campaign(self, campaign_id: str) -> CampaignView | None:
        detail = await self.detail(campaign_id)
        return None if detail is None else detail.campaign

    async def campaigns(self) -> list[CampaignView]:
        found = []
        for campaign_id in await self.summaries():
            campaign = await self.campaign(campaign_id)
            if campaign is not None:
                found.append(campaign)
        return found

    async def tally(self, campaign_id: str) -> dict[str, Any] | None:
        cached = self._tallies.get(campaign_id)
        if cached is not None and time.monotonic() - cached[0] < self.status_ttl_s:
            return cached[1]

        async def load() -> dict[str, Any] | None:
            status, doc = await self.pool.get(f"/campaigns/{campaign_id}/tally", ok_statuses=(200, 404))
            if status == 404:
                return None
            if not isinstance(doc, dict) or not isinstance(doc.get("districts"), dict):
                raise NodeAnswerError("node answer: malformed tally")
            self._tallies[campaign_id] = (time.monotonic(), doc)
            return doc

        return await self._single_flight("tally/" + campaign_id, load)

    async def initiative(self, campaign_id: str, initiative_id: str) -> tuple[InitiativeView, list[ProgressView]] | None:
        status, doc = await self.pool.get(f"/campaigns/{campaign_id}/initiatives/{initiative_id}",
                                          ok_statuses=(200, 404))
        if status == 404:
            return None
        initiative = parse_initiative(doc)
        reports_raw = doc.get("progress", []) if isinstance(doc, dict) else []
        if not isinstance(reports_raw, list):
            raise NodeAnswerError("node answer: progress must be a list")
        return initiative, [parse_progress(item) for item in reports_raw]

    def invalidate(self) -> None:
        """Forget the cached statuses (the next page asks a node again)."""
        self._summaries = None
        self._tallies.clear()

    def forget(self, campaign_id: str) -> None:
        self._details.pop(campaign_id, None)
        self._tallies.pop(campaign_id, None)
