"""Campaign results: winners under the campaign's rule, the public tally and its hash.

Counting rules (top-n, greedy, greedy-no-skip) need only the vote counts kept in state, so
their result is computed inside the block that closes the campaign. Equal shares needs every
ballot; it is computed off the block-apply path from the stored ballots
(``compute_equal_shares_result``) and is deterministic, so every node and ``veche verify``
reproduce the same hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from chain import codec
from chain.crypto import sha256
from chain.records import (
    INITIATIVE_APPROVED, STATUS_CLOSED, Campaign, Initiative, ballot_prefix, decode_ballot,
)
from chain.rules import Candidate, select_top_n, select_winners
from chain.storage import KeyValueStore

RESULT_DOMAIN = "veche/result/v1"


class TallyView(Protocol):
    def votes(self, campaign_id: str, initiative_id: str) -> int: ...

    def campaign_initiatives(self, campaign_id: str) -> list[Initiative]: ...


def approved(initiatives: Iterable[Initiative]) -> list[Initiative]:
    return [i for i in initiatives if i.status == INITIATIVE_APPROVED]


def _select(campaign: Campaign, candidates: Sequence[Candidate], budget: int,
            ballots: Sequence[Sequence[str]] | None) -> list[str]:
    rule = campaign.spec.rule
    if not candidates:
        return []
    if rule.name == "top-n":
        return select_top_n(candidates, rule.top_n, rule.min_votes, budget if budget > 0 else None)
    if rule.name == "equal-shares":
        # chain/rules.py drops approvals of candidates under min_votes but keeps every ballot (and
        # its voter's share of the budget), as docs/RULES.md states.
        return select_winners("equal-shares", candidates, budget=budget, min_votes=rule.min_votes,
                              ballots=[list(ballot) for ballot in ballots or ()])
    return select_winners(rule.name, candidates, budget=budget, top_n=rule.top_n, min_votes=rule.min_votes)


def compute_winners(campaign: Campaign, initiatives: Sequence[Initiative], votes: dict[str, int],
                    ballots: Sequence[Sequence[str]] | None = None) -> tuple[list[str], dict[str, list[str]]]:
    """Return (all winners, winners per district) under the campaign's rule and scope."""
    spec = campaign.spec
    pool = approved(initiatives)
    candidates = {i.spec.initiative_id: Candidate(i.spec.initiative_id, i.spec.cost, votes.get(i.spec.initiative_id, 0))
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
        local_ballots = None
        if ballots is not None:
            local_ids = {c.initiative_id for c in local}
            local_ballots = [b for b in ballots if b and b[0] in local_ids]
        chosen = _select(campaign, local, district.budget, local_ballots)
        per_district[district.district_id] = chosen
        winners.extend(chosen)
    return winners, per_district


def result_hash(campaign: Campaign, votes: dict[str, int], district_of: dict[str, str],
                winners: Sequence[str], per_district: dict[str, list[str]]) -> bytes:
    districts = []
    for district in campaign.spec.districts:
        counts = sorted(([iid, votes.get(iid, 0)] for iid, d in district_of.items() if d == district.district_id),
                        key=lambda pair: str(pair[0]).encode())
        districts.append([district.district_id, counts, list(per_district.get(district.district_id, []))])
    document = [RESULT_DOMAIN, campaign.campaign_id, campaign.status, campaign.total_ballots, districts, list(winners)]
    return sha256(codec.encode(document))


def _counts(view: TallyView, campaign: Campaign) -> tuple[list[Initiative], dict[str, int], dict[str, str]]:
    initiatives = view.campaign_initiatives(campaign.campaign_id)
    pool = approved(initiatives)
    votes = {i.spec.initiative_id: view.votes(campaign.campaign_id, i.spec.initiative_id) for i in pool}
    district_of = {i.spec.initiative_id: i.spec.district_id for i in pool}
    return initiatives, votes, district_of


def compute_counting_result(view: TallyView, campaign: Campaign) -> tuple[tuple[str, ...], bytes]:
    initiatives, votes, district_of = _counts(view, campaign)
    winners, per_district = compute_winners(campaign, initiatives, votes)
    return tuple(winners), result_hash(campaign, votes, district_of, winners, per_district)


def read_ballots(store: KeyValueStore, campaign_id: str) -> list[tuple[str, ...]]:
    """Every committed ballot's choices for a campaign (order: by voter key)."""
    return [decode_ballot(value)[1] for _, value in store.iterate(ballot_prefix(campaign_id))]


def compute_equal_shares_result(view: TallyView, store: KeyValueStore,
                                campaign: Campaign) -> tuple[tuple[str, ...], bytes]:
    initiatives, votes, district_of = _counts(view, campaign)
    ballots = read_ballots(store, campaign.campaign_id)
    winners, per_district = compute_winners(campaign, initiatives, votes, ballots)
    return tuple(winners), result_hash(campaign, votes, district_of, winners, per_district)


def tally_document(view: TallyView, campaign: Campaign, height: int,
                   result: tuple[tuple[str, ...], bytes] | None) -> dict[str, Any]:
    """The public tally (``GET /api/v1/campaigns/{id}/tally``).

    ``result`` is the published (winners, hash) of a closed campaign, or None while open or
    while equal shares is still being computed (then ``result_status`` says so).
    """
    initiatives, votes, district_of = _counts(view, campaign)
    closed = campaign.status == STATUS_CLOSED
    winners: list[str] = list(result[0]) if (closed and result is not None) else []
    per_district = {d.district_id: [w for w in winners if district_of.get(w) == d.district_id]
                    for d in campaign.spec.districts}
    if closed and result is not None:
        digest = result[1]
        result_status = "final"
    else:
        digest = result_hash(campaign, votes, district_of, [], {})
        result_status = "computing" if closed else "provisional"
    districts = {
        d.district_id: {
            "initiatives": {iid: votes[iid] for iid in sorted(votes, key=str.encode) if district_of[iid] == d.district_id},
            "winners": per_district[d.district_id],
        }
        for d in campaign.spec.districts
    }
    return {
        "campaign": campaign.campaign_id,
        "status": campaign.status,
        "height": height,
        "total_ballots": campaign.total_ballots,
        "winners": winners,
        "districts": districts,
        "result_hash": digest.hex(),
        "result_status": result_status,
        "rule": campaign.spec.rule.name,
        "scope": campaign.spec.rule.scope,
        "closed_height": campaign.closed_height if closed else None,
        "close_reason": campaign.close_reason if closed else None,
    }
