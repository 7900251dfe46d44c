"""Results that explain themselves: each district's ranking, what it funded, and why a project lost.

The winners are the network's (the tally's ``winners``); this module only explains them. It walks
the ranking the way the campaign's rule does (``chain.rules.order_candidates``: more votes — points,
for cumulative and ordinal ballots — first, then lower cost, then id) and names, for every project that did not win, the first reason the rule
met: too few votes for the threshold, the places already taken (top-n), or not enough of the budget
left. Equal shares spreads the budget over voters, not down a ranking: its losers are only "not
chosen by the method". Pure functions over the gateway's views; nothing here talks to a node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chain.rules import Candidate, order_candidates
from gateway.chainview import CampaignDetail, CampaignView, DistrictView, InitiativeView

WON = "won"
BELOW_THRESHOLD = "below_threshold"
PLACES_TAKEN = "places_taken"
NO_BUDGET_LEFT = "no_budget_left"
NOT_CHOSEN = "not_chosen"
# why a district has no winner
NO_PROJECTS = "no_projects"
NO_VOTES = "no_votes"


@dataclass(frozen=True, slots=True)
class Ranked:
    place: int
    initiative_id: str
    title: str
    votes: int
    cost: int
    won: bool
    why: str
    points: int = 0          # what the rule ranks by: the points of cumulative and ordinal ballots, else the votes


@dataclass(frozen=True, slots=True)
class DistrictOutcome:
    district: DistrictView
    ranking: tuple[Ranked, ...]
    funded: int
    budget: int              # the district's budget (0: the rule's budget is the campaign's)
    ballots_cast: int        # votes in the district (an approval ballot counts once per project)
    no_winner_why: str | None

    @property
    def winners(self) -> list[Ranked]:
        return [r for r in self.ranking if r.won]

    @property
    def top_votes(self) -> int:
        """The most votes (points, for scored ballots: what a threshold is on)."""
        return max((r.points for r in self.ranking), default=0)

    @property
    def share_funded(self) -> float:
        return self.funded / self.budget if self.budget else 0.0


def _votes_of(tally: Mapping[str, object], district_id: str, key: str = "initiatives") -> dict[str, int]:
    """The tally's ``initiatives`` (votes) or ``scores`` (points) of one district."""
    districts = tally.get("districts")
    entry = districts.get(district_id) if isinstance(districts, dict) else None
    counts = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(counts, dict):
        return {}
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}


def _walk(campaign: CampaignView, candidates: Sequence[Candidate], winners: set[str], budget: int) -> dict[str, str]:
    """The reason of each candidate, walking the ranking as the campaign's counting rule does."""
    reasons: dict[str, str] = {}
    if campaign.rule == "equal-shares":
        for candidate in candidates:
            won = candidate.initiative_id in winners
            reasons[candidate.initiative_id] = WON if won else (
                BELOW_THRESHOLD if candidate.votes < campaign.min_votes else NOT_CHOSEN)
        return reasons
    limited = campaign.rule != "top-n" or budget > 0
    remaining = budget
    chosen = 0
    stopped = False
    for candidate in order_candidates(candidates):
        iid = candidate.initiative_id
        if iid in winners:
            reasons[iid] = WON
            remaining -= candidate.cost
            chosen += 1
        elif candidate.votes < campaign.min_votes:
            reasons[iid] = BELOW_THRESHOLD
        elif campaign.rule == "top-n" and campaign.top_n and chosen >= campaign.top_n:
            reasons[iid] = PLACES_TAKEN
        elif stopped or (limited and candidate.cost > remaining):
            reasons[iid] = NO_BUDGET_LEFT
            stopped = stopped or campaign.rule == "greedy-no-skip"
        else:
            reasons[iid] = NOT_CHOSEN
    return reasons


def _candidates(detail: CampaignDetail, tally: Mapping[str, object],
                district: DistrictView) -> tuple[list[Candidate], dict[str, InitiativeView]]:
    """The district's candidates, each with what the rule ranks by (points for scored ballots)."""
    votes = _votes_of(tally, district.district_id, "scores" if detail.campaign.scored else "initiatives")
    on_ballot = {i.initiative_id: i for i in detail.approved_in(district.district_id)}
    for iid in votes:
        found = detail.initiative(iid)
        if iid not in on_ballot and found is not None:
            on_ballot[iid] = found
    return [Candidate(iid, max(1, i.cost), votes.get(iid, 0)) for iid, i in on_ballot.items()], on_ballot


def _no_winner_why(ranking: Sequence[Ranked]) -> str | None:
    if any(r.won for r in ranking):
        return None
    if not ranking:
        return NO_PROJECTS
    if all(r.votes == 0 for r in ranking):
        return NO_VOTES
    if all(r.why == BELOW_THRESHOLD for r in ranking):
        return BELOW_THRESHOLD
    if any(r.why == NO_BUDGET_LEFT for r in ranking):
        return NO_BUDGET_LEFT
    return NOT_CHOSEN


def campaign_outcomes(detail: CampaignDetail, tally: Mapping[str, object]) -> list[DistrictOutcome]:
    """Every district's outcome, in the campaign's district order."""
    campaign = detail.campaign
    raw_winners = tally.get("winners")
    winners = {str(w) for w in raw_winners} if isinstance(raw_winners, list) else set()
    per_district = [(district, *_candidates(detail, tally, district)) for district in campaign.districts]
    district_scope = campaign.scope == "district"
    reasons: dict[str, str] = {}
    if district_scope:
        for district, candidates, _ in per_district:
            reasons.update(_walk(campaign, candidates, winners, district.budget))
    else:
        reasons = _walk(campaign, [c for _, cands, _ in per_district for c in cands], winners, campaign.rule_budget)
    outcomes = []
    for district, candidates, initiatives in per_district:
        votes = _votes_of(tally, district.district_id) if campaign.scored else {c.initiative_id: c.votes
                                                                                for c in candidates}
        ranking = tuple(
            Ranked(place, c.initiative_id, initiatives[c.initiative_id].title, votes.get(c.initiative_id, 0),
                   initiatives[c.initiative_id].cost, c.initiative_id in winners, reasons[c.initiative_id], c.votes)
            for place, c in enumerate(order_candidates(candidates), start=1))
        outcomes.append(DistrictOutcome(district, ranking, sum(r.cost for r in ranking if r.won),
                                        district.budget if district_scope else 0,
                                        sum(r.votes for r in ranking), _no_winner_why(ranking)))
    return outcomes
