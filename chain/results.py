"""Campaign results: winners under the campaign's rule, the public tally and its hash.

Counting rules (top-n, greedy, greedy-no-skip) need only the vote counts kept in state, so
their result is computed inside the block that closes the campaign. Equal shares needs every
ballot; it is computed off the block-apply path from the stored ballots
(``compute_equal_shares_result``) and is deterministic, so every node and ``veche verify``
reproduce the same hash. It counts each distinct ballot once with its number of voters
(chain/ballot_groups.py), so its memory follows the distinct ballots, not the ballots.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from chain import codec
from chain.crypto import sha256
from chain.ballot_groups import Ballot, BallotGroups
from chain.records import INITIATIVE_APPROVED, STATUS_CLOSED, Campaign, Initiative, ballot_prefix
from chain.rules import (
    Candidate, select_equal_shares_scored_weighted, select_equal_shares_weighted, select_top_n, select_winners,
)
from chain.storage import KeyValueStore
from chain.tx import GATEWAY_HELD, VOTER_HELD

RESULT_DOMAIN = "veche/result/v1"

SetBallot = tuple[str, ...]                     # the initiatives a set ballot names
ScoredBallot = tuple[tuple[str, int], ...]      # (initiative, points) of a cumulative or ordinal ballot
Ballots = Mapping[Ballot, int]                  # each distinct ballot with the number of voters who cast it


class TallyView(Protocol):
    def votes(self, campaign_id: str, initiative_id: str) -> int: ...

    def points(self, campaign_id: str, initiative_id: str) -> int: ...

    def campaign_initiatives(self, campaign_id: str) -> list[Initiative]: ...


@dataclass(frozen=True, slots=True)
class Counts:
    """A campaign's approved initiatives with their ballots (``votes``), points (``scores``;
    equal to ``votes`` for set ballots) and district."""

    votes: dict[str, int]
    scores: dict[str, int]
    district_of: dict[str, str]

    @classmethod
    def of(cls, view: TallyView, campaign: Campaign, initiatives: Iterable[Initiative]) -> "Counts":
        campaign_id = campaign.campaign_id
        pool = approved(initiatives)
        votes = {i.spec.initiative_id: view.votes(campaign_id, i.spec.initiative_id) for i in pool}
        if campaign.spec.ballot.scored:
            scores = {i.spec.initiative_id: view.points(campaign_id, i.spec.initiative_id) for i in pool}
        else:
            scores = dict(votes)
        return cls(votes, scores, {i.spec.initiative_id: i.spec.district_id for i in pool})


def approved(initiatives: Iterable[Initiative]) -> list[Initiative]:
    return [i for i in initiatives if i.status == INITIATIVE_APPROVED]


def _select(campaign: Campaign, candidates: Sequence[Candidate], budget: int, ballots: Ballots | None) -> list[str]:
    """Winners among ``candidates``, whose ``votes`` is what the rule ranks by: points."""
    rule = campaign.spec.rule
    if not candidates:
        return []
    if rule.name == "top-n":
        return select_top_n(candidates, rule.top_n, rule.min_votes, budget if budget > 0 else None)
    if rule.name == "equal-shares":
        # chain/rules.py drops approvals of candidates under min_votes but keeps every ballot (and
        # its voter's share of the budget), as docs/RULES.md states.
        if campaign.spec.ballot.scored:
            scored = cast(Mapping[ScoredBallot, int], ballots or {})
            return select_equal_shares_scored_weighted(candidates, budget, rule.min_votes, scored)
        plain = cast(Mapping[SetBallot, int], ballots or {})
        return select_equal_shares_weighted(candidates, budget, rule.min_votes, plain)
    return select_winners(rule.name, candidates, budget=budget, top_n=rule.top_n, min_votes=rule.min_votes)


def first_initiative(ballot: Ballot) -> str:
    """The initiative a non-empty ballot names first (which district's count it belongs to)."""
    item = ballot[0]
    return item if isinstance(item, str) else item[0]


def compute_winners(campaign: Campaign, initiatives: Sequence[Initiative], counts: Counts,
                    ballots: Ballots | None = None) -> tuple[list[str], dict[str, list[str]]]:
    """Return (all winners, winners per district) under the campaign's rule and scope.

    Every rule ranks by points (``counts.scores``: the number of ballots for set ballots).
    ``ballots`` (equal shares only): each distinct ballot with its number of voters.
    """
    spec = campaign.spec
    pool = approved(initiatives)
    candidates = {i.spec.initiative_id: Candidate(i.spec.initiative_id, i.spec.cost,
                                                  counts.scores.get(i.spec.initiative_id, 0))
                  for i in pool}
    district_of = {i.spec.initiative_id: i.spec.district_id for i in pool}
    per_district: dict[str, list[str]] = {d.district_id: [] for d in spec.districts}
    winners: list[str] = []
    if spec.rule.scope == "campaign":
        winners = _select(campaign, list(candidates.values()), spec.rule.budget, ballots)
        for winner in winners:
            per_district[district_of[winner]].append(winner)
        return winners, per_district
    for district in spec.districts:
        local = [c for iid, c in candidates.items() if district_of[iid] == district.district_id]
        local_ballots: dict[Ballot, int] | None = None
        if ballots is not None:
            local_ids = {c.initiative_id for c in local}
            local_ballots = {b: w for b, w in ballots.items() if b and first_initiative(b) in local_ids}
        chosen = _select(campaign, local, district.budget, local_ballots)
        per_district[district.district_id] = chosen
        winners.extend(chosen)
    return winners, per_district


def result_hash(campaign: Campaign, counts: Counts, winners: Sequence[str],
                per_district: dict[str, list[str]]) -> bytes:
    """See docs/PROTOCOL.md §8: a scored campaign lists ``[id, votes, points]``, others ``[id, votes]``."""
    scored = campaign.spec.ballot.scored
    districts = []
    for district in campaign.spec.districts:
        ids = sorted((iid for iid, d in counts.district_of.items() if d == district.district_id), key=str.encode)
        rows: list[list[Any]] = [[iid, counts.votes.get(iid, 0), counts.scores.get(iid, 0)] if scored
                                 else [iid, counts.votes.get(iid, 0)] for iid in ids]
        districts.append([district.district_id, rows, list(per_district.get(district.district_id, []))])
    document = [RESULT_DOMAIN, campaign.campaign_id, campaign.status, campaign.total_ballots, districts, list(winners)]
    return sha256(codec.encode(document))


def _counts(view: TallyView, campaign: Campaign) -> tuple[list[Initiative], Counts]:
    initiatives = view.campaign_initiatives(campaign.campaign_id)
    return initiatives, Counts.of(view, campaign, initiatives)


def compute_counting_result(view: TallyView, campaign: Campaign) -> tuple[tuple[str, ...], bytes]:
    initiatives, counts = _counts(view, campaign)
    winners, per_district = compute_winners(campaign, initiatives, counts)
    return tuple(winners), result_hash(campaign, counts, winners, per_district)


def read_ballot_groups(store: KeyValueStore, campaign: Campaign) -> BallotGroups:
    """Every committed ballot of a campaign, merged by content as it is read (memory: the distinct
    ballots); ``.ballots()`` gives each distinct ballot with its number of voters."""
    groups = BallotGroups(campaign.spec.ballot.scored)
    add = groups.add
    for _, value in store.iterate(ballot_prefix(campaign.campaign_id), bulk=True):
        add(value)
    return groups


def compute_result(campaign: Campaign, initiatives: Sequence[Initiative], counts: Counts,
                   ballots: Ballots | None) -> tuple[tuple[str, ...], bytes]:
    winners, per_district = compute_winners(campaign, initiatives, counts, ballots)
    return tuple(winners), result_hash(campaign, counts, winners, per_district)


def compute_equal_shares_result(view: TallyView, store: KeyValueStore,
                                campaign: Campaign) -> tuple[tuple[str, ...], bytes]:
    initiatives, counts = _counts(view, campaign)
    return compute_result(campaign, initiatives, counts, read_ballot_groups(store, campaign).ballots())


def tally_document(view: TallyView, campaign: Campaign, height: int,
                   result: tuple[tuple[str, ...], bytes] | None) -> dict[str, Any]:
    """The public tally (``GET /api/v1/campaigns/{id}/tally``).

    ``result`` is the published (winners, hash) of a closed campaign, or None while open or
    while equal shares is still being computed (then ``result_status`` says so). Each district
    lists ``initiatives`` (ballots naming each) and ``scores`` (its points; the same numbers
    for choose-1, approval and knapsack ballots).
    """
    _, counts = _counts(view, campaign)
    district_of = counts.district_of
    closed = campaign.status == STATUS_CLOSED
    winners: list[str] = list(result[0]) if (closed and result is not None) else []
    per_district = {d.district_id: [w for w in winners if district_of.get(w) == d.district_id]
                    for d in campaign.spec.districts}
    if closed and result is not None:
        digest = result[1]
        result_status = "final"
    else:
        digest = result_hash(campaign, counts, [], {})
        result_status = "computing" if closed else "provisional"
    ordered = sorted(counts.votes, key=str.encode)
    districts = {
        d.district_id: {
            "initiatives": {iid: counts.votes[iid] for iid in ordered if district_of[iid] == d.district_id},
            "scores": {iid: counts.scores[iid] for iid in ordered if district_of[iid] == d.district_id},
            "winners": per_district[d.district_id],
        }
        for d in campaign.spec.districts
    }
    return {
        "campaign": campaign.campaign_id,
        "status": campaign.status,
        "height": height,
        "total_ballots": campaign.total_ballots,
        "ballots_by_mode": {GATEWAY_HELD: campaign.gateway_held_ballots, VOTER_HELD: campaign.voter_held_ballots},
        "winners": winners,
        "districts": districts,
        "result_hash": digest.hex(),
        "result_status": result_status,
        "rule": campaign.spec.rule.name,
        "scope": campaign.spec.rule.scope,
        "closed_height": campaign.closed_height if closed else None,
        "close_reason": campaign.close_reason if closed else None,
    }
