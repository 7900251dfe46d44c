"""Method of Equal Shares over scored ballots (points as cardinal utilities) against pabutools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.equal_shares_scored import equal_shares_scored
from chain.errors import RuleError
from chain.pabulib import read_pb
from chain.rules import Candidate, select_equal_shares_scored
from tests.paths import SHARED_DATA

Ballot = Sequence[tuple[str, int]]


def pabutools_mes_cardinal(costs: Mapping[str, int], ballots: Sequence[Ballot], budget: int) -> list[str]:
    """pabutools' method_of_equal_shares on a cumulative profile, Additive_Cardinal_Sat, our tie-break."""
    from pabutools.election import Additive_Cardinal_Sat, CumulativeBallot, CumulativeProfile, Instance, Project
    from pabutools.rules import method_of_equal_shares
    from pabutools.tiebreaking import TieBreakingRule

    projects = {pid: Project(pid, cost) for pid, cost in costs.items()}
    instance = Instance(projects.values(), budget_limit=budget)
    profile = CumulativeProfile([CumulativeBallot({projects[p]: points for p, points in ballot}) for ballot in ballots])
    totals = {pid: sum(points for ballot in ballots for p, points in ballot if p == pid) for pid in costs}
    tie_break = TieBreakingRule(lambda inst, prof, proj: (-totals[proj.name], proj.cost, proj.name.encode()))
    result = method_of_equal_shares(instance, profile.as_multiprofile(), sat_class=Additive_Cardinal_Sat,
                                    tie_breaking=tie_break)
    return [project.name for project in result]


def test_points_decide_who_pays_what() -> None:
    # 2 voters x 10. A (12): v1 gives 3 points, v2 gives 1 -> rho = 12/4 = 3, v1 would pay 9, v2 3.
    # B (10): v2 gives 1 point -> v2 alone has 10: rho 10. A goes first (rho 3); then v2 has 7 < 10.
    ballots = [[("A", 3)], [("A", 1), ("B", 1)]]
    assert equal_shares_scored({"A": 12, "B": 10}, ballots, 20) == ["A"]
    assert pabutools_mes_cardinal({"A": 12, "B": 10}, ballots, 20) == ["A"]


def test_a_poor_supporter_pays_what_it_has() -> None:
    # 3 voters x 10. A (18, points 1, 1, 4): rho 3 -> the third would pay 12 > 10: pays 10, the two
    # others share 8 (rho 4). Equal-points ballots pay the same.
    ballots = [[("A", 1)], [("A", 1)], [("A", 4)]]
    assert equal_shares_scored({"A": 18}, ballots, 30) == ["A"]
    assert equal_shares_scored({"A": 31}, ballots, 30) == []


def test_empty_ballots_are_voters_and_ties_go_to_more_points() -> None:
    assert equal_shares_scored({"A": 10}, [[("A", 5)], []], 10) == []      # 5 each: A unaffordable
    # equal rho (each supporter pays all it has); B has more points in total
    ballots = [[("A", 1)], [("B", 2)]]
    assert equal_shares_scored({"A": 5, "B": 5}, ballots, 10) == ["B", "A"]
    assert pabutools_mes_cardinal({"A": 5, "B": 5}, ballots, 10) == ["B", "A"]


@pytest.mark.parametrize("ballots, fragment", [
    ([[("Z", 1)]], "unknown initiative"),
    ([[("A", 0)]], "points must be an int > 0"),
    ([[("A", 1), ("A", 2)]], "twice"),
    ([["A"]], "pairs"),
])
def test_invalid_input(ballots: list[list[object]], fragment: str) -> None:
    with pytest.raises(RuleError, match=fragment):
        equal_shares_scored({"A": 5}, ballots, 10)  # type: ignore[arg-type]


def test_rule_checks_points_and_drops_those_under_the_threshold() -> None:
    ballots = [[("A", 3), ("B", 1)], [("B", 2)]]
    with pytest.raises(RuleError, match="points given"):
        select_equal_shares_scored([Candidate("A", 5, 2), Candidate("B", 5, 3)], 10, 0, ballots)
    candidates = [Candidate("A", 5, 3), Candidate("B", 5, 3)]
    assert select_equal_shares_scored(candidates, 10, 4, ballots) == []
    assert select_equal_shares_scored(candidates, 10, 0, ballots) == \
        equal_shares_scored({"A": 5, "B": 5}, ballots, 10)


@st.composite
def instances(draw: st.DrawFn) -> tuple[dict[str, int], list[list[tuple[str, int]]], int]:
    count = draw(st.integers(1, 6))
    ids = [f"p{i}" for i in range(count)]
    costs = {pid: draw(st.integers(1, 40)) for pid in ids}
    ballots = []
    for _ in range(draw(st.integers(1, 14))):
        chosen = draw(st.lists(st.sampled_from(ids), max_size=count, unique=True))
        ballots.append([(pid, draw(st.integers(1, 4))) for pid in chosen])
    return costs, ballots, draw(st.integers(0, 120))


@settings(max_examples=200, deadline=None)
@given(instances())
def test_matches_pabutools_on_generated_profiles(instance: tuple[dict[str, int], list[list[tuple[str, int]]], int]) -> None:
    costs, ballots, budget = instance
    ours = equal_shares_scored(costs, ballots, budget)
    assert ours == pabutools_mes_cardinal(costs, ballots, budget)
    assert sum(costs[p] for p in ours) <= budget


def file_ballots(path: Path) -> tuple[dict[str, int], list[list[tuple[str, int]]], int]:
    pb = read_pb(path)
    ballots = []
    for vote in pb.votes:
        points = dict(vote.extra).get("points")
        values = [int(x) for x in points.split(",")] if points else \
            [(pb.max_length or len(vote.choices)) - rank for rank in range(len(vote.choices))]
        ballots.append(list(zip(vote.choices, values)))
    return {p.project_id: p.cost for p in pb.projects}, ballots, pb.budget


@pytest.mark.parametrize("name", ["Poland_Czestochowa_2024.pb", "Poland_Krakow_2019_Bronowice.pb"])
def test_matches_pabutools_on_real_profiles(name: str) -> None:
    """Częstochowa's cumulative ballots (22,899 voters); Bronowice's rankings with 3/2/1 points."""
    costs, ballots, budget = file_ballots(SHARED_DATA / "ballot-types" / name)
    ours = equal_shares_scored(costs, ballots, budget)
    assert len(ours) >= 5
    assert ours == pabutools_mes_cardinal(costs, ballots, budget)
