"""The ballot form of each ballot type: reading what the citizen chose, and checking it as the chain will.

Form fields (POST /c/{campaign}/d/{district}/vote):
  choose-1, approval, knapsack   ``choice`` (repeated: one per ticked initiative)
  cumulative                     ``points-<initiative id>``: the points for that initiative (empty or 0: none)
  ordinal                        ``rank-1`` … ``rank-<max_choices>``: the initiative on that rank (empty: none)

``read_draft`` keeps what was sent (so a refused ballot is shown again as the citizen left it);
``check_draft`` applies the campaign's limits — the same ones the state machine checks
(``chain/ballots.py``) — and raises ``BallotProblem`` with a message key and its parameters, so
nothing is signed or sent for a ballot the chain would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.chainview import CampaignView, InitiativeView

POINTS_FIELD = re.compile(r"points-([A-Za-z0-9._-]{1,64})")
RANK_FIELD = re.compile(r"rank-([1-9][0-9]?)")
MAX_POINTS_TEXT = 7


def is_ballot_field(name: str) -> bool:
    """Field names a ballot form may carry besides ``choice`` (checked against the ballot later)."""
    return POINTS_FIELD.fullmatch(name) is not None or RANK_FIELD.fullmatch(name) is not None


@dataclass
class BallotDraft:
    """What the citizen chose, as sent: ticked ids, points as typed, the id on each rank."""

    chosen: list[str] = field(default_factory=list)
    points: dict[str, str] = field(default_factory=dict)
    ranks: list[str] = field(default_factory=list)

    def rank_of(self, position: int) -> str:
        return self.ranks[position] if position < len(self.ranks) else ""


class BallotProblem(Exception):
    """A ballot the campaign's limits refuse: ``key`` is a message of gateway/i18n.py."""

    def __init__(self, key: str, **params: str) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def read_draft(form: Mapping[str, str], chosen: Sequence[str], campaign: CampaignView) -> BallotDraft:
    draft = BallotDraft(chosen=list(chosen))
    if campaign.ballot_type == "cumulative":
        for name, value in form.items():
            match = POINTS_FIELD.fullmatch(name)
            if match is not None:
                draft.points[match.group(1)] = value.strip()[:MAX_POINTS_TEXT]
    elif campaign.ballot_type == "ordinal":
        draft.ranks = [form.get(f"rank-{n}", "").strip() for n in range(1, campaign.max_choices + 1)]
    return draft


def check_draft(draft: BallotDraft, campaign: CampaignView, initiatives: Sequence[InitiativeView],
                district_budget: int) -> tuple[list[str], list[int] | None]:
    """(choices, points or None) for ``make_vote``; ``BallotProblem`` naming the first limit broken."""
    on_ballot = {i.initiative_id: i for i in initiatives}
    if campaign.ballot_type == "cumulative":
        return check_cumulative(draft, campaign, on_ballot)
    if campaign.ballot_type == "ordinal":
        return check_ordinal(draft, campaign, on_ballot)
    return check_set(draft, campaign, on_ballot, district_budget), None


def check_count(count: int, campaign: CampaignView) -> None:
    if count == 0:
        raise BallotProblem("err_no_choice")
    if not campaign.min_choices <= count <= campaign.max_choices:
        raise BallotProblem("err_choice_count", min=str(campaign.min_choices), max=str(campaign.max_choices))


def check_known(choice: str, on_ballot: Mapping[str, InitiativeView]) -> None:
    if choice not in on_ballot:
        raise BallotProblem("err_bad_choice", choice=choice[:64])


def check_set(draft: BallotDraft, campaign: CampaignView, on_ballot: Mapping[str, InitiativeView],
              district_budget: int) -> list[str]:
    for choice in draft.chosen:
        check_known(choice, on_ballot)
    if len(set(draft.chosen)) != len(draft.chosen):
        raise BallotProblem("err_choice_count", min=str(campaign.min_choices), max=str(campaign.max_choices))
    check_count(len(draft.chosen), campaign)
    if campaign.ballot_type == "knapsack":
        cap = campaign.cost_cap(district_budget)
        total = sum(on_ballot[c].cost for c in draft.chosen)
        if total > cap:
            raise BallotProblem("err_over_cap", total=str(total), cap=str(cap))
    return list(draft.chosen)


def check_cumulative(draft: BallotDraft, campaign: CampaignView,
                     on_ballot: Mapping[str, InitiativeView]) -> tuple[list[str], list[int]]:
    given: dict[str, int] = {}
    for choice, text in draft.points.items():
        check_known(choice, on_ballot)
        if not text:
            continue
        if not text.isascii() or not text.isdigit():
            raise BallotProblem("err_points_number", title=on_ballot[choice].title[:80])
        if int(text):
            given[choice] = int(text)
    check_count(len(given), campaign)
    most = campaign.max_points or campaign.max_sum_points
    for choice, points in given.items():
        if points > most:
            raise BallotProblem("err_points_max", title=on_ballot[choice].title[:80], max=str(most))
    total = sum(given.values())
    if not campaign.min_sum_points <= total <= campaign.max_sum_points:
        raise BallotProblem("err_points_total", total=str(total), min=str(max(1, campaign.min_sum_points)),
                            max=str(campaign.max_sum_points))
    return list(given), list(given.values())


def check_ordinal(draft: BallotDraft, campaign: CampaignView,
                  on_ballot: Mapping[str, InitiativeView]) -> tuple[list[str], list[int]]:
    ranking: list[str] = []
    gap = False
    for position, choice in enumerate(draft.ranks):
        if not choice:
            gap = True
            continue
        check_known(choice, on_ballot)
        if gap:
            raise BallotProblem("err_rank_gap", rank=str(position + 1))
        if choice in ranking:
            raise BallotProblem("err_rank_twice", title=on_ballot[choice].title[:80])
        ranking.append(choice)
    check_count(len(ranking), campaign)
    return ranking, list(campaign.rank_points[:len(ranking)])


def browser_checks(campaign: CampaignView, district_budget: int, text: Callable[..., str],
                   money: Callable[[int], str]) -> dict[str, str]:
    """The checks above as a voter-held ballot page's script runs them (``data-*`` of the ballot form).

    A voter-held ballot goes from the browser straight to a node: the gateway never sees it, so the
    page must stop a ballot over its limits itself (the chain refuses it anyway). ``/static/vote.js``
    reads the form as ``read_draft`` does and checks it in the same order as ``check_draft``, with
    these limits, and shows these messages — each with the part only the browser knows left as
    ``{total}``, ``{title}`` or ``{rank}``. ``text(key, **params)`` is a message of gateway/i18n.py.
    """
    data = {"min": str(campaign.min_choices), "max": str(campaign.max_choices), "e-none": text("err_no_choice"),
            "e-count": text("err_choice_count", min=str(campaign.min_choices), max=str(campaign.max_choices))}
    if campaign.ballot_type == "knapsack":
        cap = campaign.cost_cap(district_budget)
        data.update({"cap": str(cap), "e-cap": text("err_over_cap", total="{total}", cap=money(cap))})
    elif campaign.ballot_type == "cumulative":
        most = campaign.max_points or campaign.max_sum_points
        data.update({"lo": str(campaign.min_sum_points), "hi": str(campaign.max_sum_points), "most": str(most),
                     "e-number": text("err_points_number", title="{title}"),
                     "e-most": text("err_points_max", title="{title}", max=str(most)),
                     "e-total": text("err_points_total", total="{total}", min=str(max(1, campaign.min_sum_points)),
                                     max=str(campaign.max_sum_points))})
    elif campaign.ballot_type == "ordinal":
        data.update({"ranks": " ".join(str(points) for points in campaign.rank_points),
                     "e-gap": text("err_rank_gap", rank="{rank}"), "e-twice": text("err_rank_twice", title="{title}")})
    return data
