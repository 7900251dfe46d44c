"""Method of Equal Shares: hand examples, tie-breaks, pabutools agreement, speed."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.equal_shares import aggregate_ballots, equal_shares
from chain.errors import RuleError
from chain.pabulib import PbFile, compute_vote_counts, read_pb
from tests.paths import SHARED_DATA

DATA = SHARED_DATA


def pabutools_mes(
    costs: Mapping[str, int],
    ballots: Sequence[Sequence[str]],
    budget: int,
    increment: int | None = None,
    lexicographic: bool = False,
) -> list[str]:
    """pabutools' method_of_equal_shares, Cost_Sat, with our tie-break (or its default)."""
    from pabutools.election import ApprovalBallot, ApprovalProfile, Cost_Sat, Instance, Project
    from pabutools.rules import method_of_equal_shares
    from pabutools.tiebreaking import TieBreakingRule, lexico_tie_breaking

    projects = {pid: Project(pid, cost) for pid, cost in costs.items()}
    instance = Instance(projects.values(), budget_limit=budget)
    profile = ApprovalProfile([ApprovalBallot([projects[p] for p in ballot]) for ballot in ballots])
    votes = {pid: sum(pid in ballot for ballot in ballots) for pid in costs}
    tie_break = lexico_tie_breaking if lexicographic else TieBreakingRule(
        lambda inst, prof, proj: (-votes[proj.name], proj.cost, proj.name.encode()))
    result = method_of_equal_shares(
        instance, profile.as_multiprofile(), sat_class=Cost_Sat, tie_breaking=tie_break,
        voter_budget_increment=increment)
    return [project.name for project in result]


# --- hand examples -----------------------------------------------------------------------------

def test_cheapest_per_unit_of_utility_first_then_unaffordable() -> None:
    # 3 voters x 10. z (15, all three) costs 5 each: rho 1/3. Afterwards everyone has 5 left:
    # x (20, v1+v2) and y (10, v3) are no longer affordable.
    ballots = [["x", "z"], ["x", "z"], ["y", "z"]]
    assert equal_shares({"x": 20, "y": 10, "z": 15}, ballots, 30) == ["z"]


def test_cost_utilities_not_cardinality() -> None:
    # 10 voters x 10. A (40, v1-v4): each pays 10, rho = 10/40 = 1/4. B (6, v4+v5): rho = 3/6.
    # Cost utilities take A first (cardinality utilities would take B, then A is unaffordable).
    ballots = [["A"], ["A"], ["A"], ["A", "B"], ["B"], [], [], [], [], []]
    assert equal_shares({"A": 40, "B": 6}, ballots, 100) == ["A", "B"]
    assert pabutools_mes({"A": 40, "B": 6}, ballots, 100) == ["A", "B"]


def test_poor_supporter_pays_everything_rich_ones_share_the_rest() -> None:
    # 6 voters x 10. P (24, v1+v2+v5+v6) goes first: 6 each, rho 1/4; v1 keeps 4. Then Q (24,
    # v1+v3+v4): v1 pays its last 4, v3 and v4 pay 10 each -> exactly 24 (rho 10/24).
    ballots = [["P", "Q"], ["P"], ["Q"], ["Q"], ["P"], ["P"]]
    costs = {"P": 24, "Q": 24}
    assert equal_shares(costs, ballots, 60) == ["P", "Q"]
    assert equal_shares(costs, ballots, 59) == ["P"]  # 59/6 each: v1 keeps 23/6, Q needs more
    assert pabutools_mes(costs, ballots, 60) == ["P", "Q"]
    assert pabutools_mes(costs, ballots, 59) == ["P"]


def test_exactly_affordable_is_affordable() -> None:
    assert equal_shares({"a": 10}, [["a"], ["a"]], 10) == ["a"]
    assert equal_shares({"a": 10}, [["a"], ["a"], []], 14) == []  # 2 x 14/3 < 10


def test_empty_ballots_count_as_voters() -> None:
    assert equal_shares({"a": 6}, [["a"], []], 12) == ["a"]
    assert equal_shares({"a": 6}, [["a"], [], []], 12) == []  # 12/3 = 4 < 6


def test_no_ballots_or_zero_budget() -> None:
    assert equal_shares({"a": 1}, [], 100) == []
    assert equal_shares({"a": 1}, [["a"]] * 5, 0) == []
    assert equal_shares({}, [[], []], 10) == []


def test_unapproved_project_never_selected() -> None:
    assert equal_shares({"a": 1, "b": 1}, [["a"]], 100) == ["a"]


# --- tie-breaks ----------------------------------------------------------------------------------

def test_tie_equal_rho_equal_votes_lower_cost_first() -> None:
    # 4 voters x 10: z (10, v1+v2) and a (20, v3+v4) both have rho 1/2 and 2 votes.
    ballots = [["z"], ["z"], ["a"], ["a"]]
    assert equal_shares({"z": 10, "a": 20}, ballots, 40) == ["z", "a"]
    assert pabutools_mes({"z": 10, "a": 20}, ballots, 40) == ["z", "a"]


def test_tie_equal_rho_votes_and_cost_id_bytes() -> None:
    ballots = [["b"], ["b"], ["a"], ["a"], ["B"], ["B"]]
    assert equal_shares({"b": 10, "a": 10, "B": 10}, ballots, 60) == ["B", "a", "b"]


def test_tie_equal_rho_more_votes_first() -> None:
    # 8 voters x 10. S (40, v1-v4) goes first (rho 1/4) and empties v1. Then a (10, v5+v6) and
    # b (10, v1+v7+v8) both cost 5 per paying supporter (rho 1/2); b has 3 votes, a has 2.
    ballots = [["S", "b"], ["S"], ["S"], ["S"], ["a"], ["a"], ["b"], ["b"]]
    costs = {"S": 40, "a": 10, "b": 10}
    assert equal_shares(costs, ballots, 80) == ["S", "b", "a"]
    assert pabutools_mes(costs, ballots, 80) == ["S", "b", "a"]
    assert pabutools_mes(costs, ballots, 80, lexicographic=True) == ["S", "a", "b"]


# --- invalid input -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "costs, ballots, budget",
    [
        ({"a": 0}, [["a"]], 10),
        ({"a": -5}, [["a"]], 10),
        ({"a": True}, [["a"]], 10),
        ({"": 5}, [], 10),
        ({"a": 5}, [["b"]], 10),
        ({"a": 5}, [["a", "a"]], 10),
        ({"a": 5}, [[1]], 10),
        ({"a": 5}, [["a"]], -1),
        ({"a": 5}, [["a"]], True),
    ],
)
def test_invalid_input(costs: Any, ballots: Any, budget: Any) -> None:
    with pytest.raises(RuleError) as raised:
        equal_shares(costs, ballots, budget)
    assert raised.value.code == "rule_error"


def test_invalid_completion() -> None:
    with pytest.raises(RuleError, match="completion"):
        equal_shares({"a": 5}, [["a"]], 10, completion="add2")
    with pytest.raises(RuleError, match="increment"):
        equal_shares({"a": 5}, [["a"]], 10, completion="add1", budget_increment=0)


def test_valid_completion_pair() -> None:
    # 3 voters x 4: "a" (10, v1+v2) needs 5 each. add1 raises budgets to 5 and picks it.
    ballots = [["a"], ["a"], []]
    assert equal_shares({"a": 10}, ballots, 12) == []
    assert equal_shares({"a": 10}, ballots, 12, completion="add1") == ["a"]
    assert pabutools_mes({"a": 10}, ballots, 12, increment=1) == ["a"]


def test_add1_keeps_last_feasible_outcome() -> None:
    # With bigger budgets MES would buy both (45 > 30): add1 returns the previous outcome.
    ballots = [["x", "z"], ["x", "z"], ["y", "z"]]
    costs = {"x": 20, "y": 10, "z": 15}
    assert equal_shares(costs, ballots, 30, completion="add1") == ["z"]
    assert pabutools_mes(costs, ballots, 30, increment=1) == ["z"]


# --- aggregation -----------------------------------------------------------------------------------

def test_aggregate_merges_identical_sets_in_any_order() -> None:
    groups = aggregate_ballots({"a": 1, "b": 2, "c": 3}, [["a", "b"], ["b", "a"], [], ["c"], ["a", "b"]])
    assert groups.project_ids == ("a", "b", "c")
    assert groups.members == ((0, 1), (2,))
    assert groups.weights == (3, 1)
    assert groups.votes == (3, 3, 1)
    assert groups.voter_count == 5


# --- properties and pabutools ------------------------------------------------------------------

@st.composite
def instances(draw: st.DrawFn) -> tuple[dict[str, int], list[list[str]], int]:
    ids = [f"p{index}" for index in range(draw(st.integers(1, 7)))]
    costs = {i: draw(st.sampled_from([1, 2, 3, 4, 6, 10, draw(st.integers(1, 40))])) for i in ids}
    ballots = draw(st.lists(st.lists(st.sampled_from(ids), unique=True), max_size=14))
    return costs, ballots, draw(st.integers(0, 80))


@settings(max_examples=250, deadline=None)
@given(instances())
def test_matches_pabutools(instance: tuple[dict[str, int], list[list[str]], int]) -> None:
    costs, ballots, budget = instance
    assert equal_shares(costs, ballots, budget) == pabutools_mes(costs, ballots, budget)


@settings(max_examples=120, deadline=None)
@given(instances(), st.sampled_from([1, 3]))
def test_add1_matches_pabutools(instance: tuple[dict[str, int], list[list[str]], int], step: int) -> None:
    costs, ballots, budget = instance
    ours = equal_shares(costs, ballots, budget, completion="add1", budget_increment=step)
    assert ours == pabutools_mes(costs, ballots, budget, increment=step)


@settings(max_examples=200, deadline=None)
@given(instances(), st.randoms(use_true_random=False))
def test_property_budget_and_determinism(
    instance: tuple[dict[str, int], list[list[str]], int], rng: random.Random
) -> None:
    costs, ballots, budget = instance
    winners = equal_shares(costs, ballots, budget)
    assert sum(costs[w] for w in winners) <= budget
    assert len(set(winners)) == len(winners)
    shuffled_costs = dict(rng.sample(sorted(costs.items()), len(costs)))
    shuffled_ballots = [rng.sample(b, len(b)) for b in rng.sample(ballots, len(ballots))]
    assert equal_shares(shuffled_costs, shuffled_ballots, budget) == winners
    completed = equal_shares(costs, ballots, budget, completion="add1")
    assert sum(costs[w] for w in completed) <= budget


# --- the official data ---------------------------------------------------------------------------

@lru_cache(maxsize=None)
def load(name: str) -> PbFile:
    return read_pb(DATA / name)


@pytest.mark.parametrize("name", ["Poland_Warszawa_2023_Wesola.pb", "Poland_Wroclaw_2019_local.pb"])
def test_official_files_match_pabutools(name: str) -> None:
    pb = load(name)
    costs = {p.project_id: p.cost for p in pb.projects}
    ballots = [v.choices for v in pb.votes]
    ours = equal_shares(costs, ballots, pb.budget)
    assert ours == pabutools_mes(costs, ballots, pb.budget)
    # Money in minor units gives the same outcome.
    assert equal_shares({k: c * 100 for k, c in costs.items()}, ballots, pb.budget * 100) == ours


def test_wesola_mes_differs_from_official_greedy() -> None:
    pb = load("Poland_Warszawa_2023_Wesola.pb")
    ours = equal_shares({p.project_id: p.cost for p in pb.projects}, [v.choices for v in pb.votes], pb.budget)
    official = {p.project_id for p in pb.projects if p.selected}
    assert set(ours) != official and len(ours) == 17


def test_wesola_add1_matches_pabutools() -> None:
    pb = load("Poland_Warszawa_2023_Wesola.pb")
    costs = {p.project_id: p.cost for p in pb.projects}
    ballots = [v.choices for v in pb.votes]
    ours = equal_shares(costs, ballots, pb.budget, completion="add1", budget_increment=50)
    assert ours == pabutools_mes(costs, ballots, pb.budget, increment=50)
    assert sum(costs[w] for w in ours) <= pb.budget
    assert compute_vote_counts(pb)  # the file is approval data, not choose-1


# --- speed ---------------------------------------------------------------------------------------

def test_speed_200k_ballots_300_initiatives() -> None:
    rng = random.Random(7)
    ids = [f"i{index:03d}" for index in range(300)]
    costs = {i: rng.randint(1_000, 150_000) * 10_000 for i in ids}
    districts = [ids[d::8] for d in range(8)]
    ballots = [rng.sample(districts[rng.randrange(8)], rng.randint(1, 5)) for _ in range(200_000)]
    budget = sum(costs.values()) // 3
    started = time.perf_counter()
    winners = equal_shares(costs, ballots, budget)
    seconds = time.perf_counter() - started
    assert winners and sum(costs[w] for w in winners) <= budget
    assert seconds < 15, f"equal shares took {seconds:.1f} s"
