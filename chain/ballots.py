"""What a ballot may hold under its campaign's ballot type: the checks the state machine runs.

Pure functions, each raising ``TxRejected`` whose code names the constraint broken (docs/PROTOCOL.md
§14 lists them in the order they run):

| code | constraint |
|---|---|
| ``bad_ballot`` | a set ballot (choose-1, approval, knapsack) carries no points, a scored one (cumulative, ordinal) carries them; ``min_choices ≤ len(choices) ≤ max_choices`` |
| ``cost_cap`` | knapsack: the chosen initiatives cost at most ``max_sum_cost`` (0: the district's budget) |
| ``points_max`` | cumulative: no initiative gets more than ``max_points`` (when it is not 0) |
| ``points_total`` | cumulative: the points add up to ``min_sum_points`` … ``max_sum_points`` |
| ``rank_points`` | ordinal: the i-th ranked initiative gets exactly ``rank_points[i]`` |
"""

from __future__ import annotations

from collections.abc import Sequence

from chain.errors import TxRejected
from chain.tx import BallotSpec, VoteCast

BAD_BALLOT = "bad_ballot"
COST_CAP = "cost_cap"
POINTS_MAX = "points_max"
POINTS_TOTAL = "points_total"
RANK_POINTS = "rank_points"
BALLOT_CODES = (BAD_BALLOT, COST_CAP, POINTS_MAX, POINTS_TOTAL, RANK_POINTS)


def ballot_rejected(code: str, message: str) -> TxRejected:
    return TxRejected(message, code)


def check_ballot_shape(ballot: BallotSpec, vote: VoteCast) -> None:
    """Points present exactly for scored types, and the number of choices within the campaign's range."""
    if ballot.scored and not vote.points:
        raise ballot_rejected(BAD_BALLOT, f"a {ballot.type} ballot gives points to each choice")
    if not ballot.scored and vote.points:
        raise ballot_rejected(BAD_BALLOT, f"a {ballot.type} ballot carries no points")
    if not ballot.min_choices <= len(vote.choices) <= ballot.max_choices:
        raise ballot_rejected(BAD_BALLOT, f"a ballot needs {ballot.min_choices}..{ballot.max_choices} choices")


def get_cost_cap(ballot: BallotSpec, district_budget: int) -> int:
    """A knapsack ballot's cap in kopecks: ``max_sum_cost``, or the district's budget when it is 0."""
    return ballot.max_sum_cost or district_budget


def check_ballot_limits(ballot: BallotSpec, vote: VoteCast, costs: Sequence[int], district_budget: int) -> None:
    """The type's own limits; ``costs`` are the chosen initiatives' costs (aligned with the choices)."""
    if ballot.type == "knapsack":
        check_knapsack(ballot, sum(costs), district_budget)
    elif ballot.type == "cumulative":
        check_cumulative(ballot, vote.points)
    elif ballot.type == "ordinal":
        check_ordinal(ballot, vote.points)


def check_knapsack(ballot: BallotSpec, total_cost: int, district_budget: int) -> None:
    cap = get_cost_cap(ballot, district_budget)
    if total_cost > cap:
        raise ballot_rejected(COST_CAP, f"the chosen initiatives cost {total_cost} kopecks in total; "
                                        f"this ballot allows at most {cap}")


def check_cumulative(ballot: BallotSpec, points: Sequence[int]) -> None:
    if ballot.max_points and max(points) > ballot.max_points:
        raise ballot_rejected(POINTS_MAX, f"an initiative gets {max(points)} points; "
                                          f"this ballot allows at most {ballot.max_points} for one initiative")
    total = sum(points)
    if not ballot.min_sum_points <= total <= ballot.max_sum_points:
        raise ballot_rejected(POINTS_TOTAL, f"the ballot gives {total} points in total; it must give "
                                            f"{ballot.min_sum_points}..{ballot.max_sum_points}")


def check_ordinal(ballot: BallotSpec, points: Sequence[int]) -> None:
    expected = ballot.rank_points[:len(points)]
    if tuple(points) != expected:
        raise ballot_rejected(RANK_POINTS, f"ranks 1..{len(points)} are worth {list(expected)} points "
                                           f"in this campaign, the ballot gives {list(points)}")


def ballot_points(vote: VoteCast) -> tuple[int, ...]:
    """Points per choice: the ballot's own for a scored ballot, 1 each for a set ballot."""
    return vote.points or (1,) * len(vote.choices)
