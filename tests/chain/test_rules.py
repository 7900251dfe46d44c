"""Winner rules: valid/invalid pairs, tie-breaks, properties, pabutools and the official data."""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.errors import RuleError, VecheError
from chain.pabulib import PbFile, compute_vote_counts, read_pb
from chain.rules import (
    RULES,
    Candidate,
    order_candidates,
    select_greedy,
    select_greedy_no_skip,
    select_top_n,
    select_winners,
)

from tests.paths import SHARED_DATA

DATA = SHARED_DATA
DATA_FILES = ("Poland_Wroclaw_2019_local.pb", "Poland_Warszawa_2023_Wesola.pb")


def make(*rows: tuple[str, int, int]) -> list[Candidate]:
    return [Candidate(initiative_id, cost, votes) for initiative_id, cost, votes in rows]


# --- Candidate and the tie-break --------------------------------------------------------------

def test_candidate_valid() -> None:
    candidate = Candidate("park-1", 100, 0)
    assert (candidate.initiative_id, candidate.cost, candidate.votes) == ("park-1", 100, 0)


@pytest.mark.parametrize(
    "initiative_id, cost, votes",
    [("", 1, 0), ("a", 0, 0), ("a", -1, 0), ("a", 1, -1), ("a", True, 0), ("a", 1, False), ("a", 1, 2**0 * 1.0)],
)
def test_candidate_invalid(initiative_id: Any, cost: Any, votes: Any) -> None:
    with pytest.raises(RuleError) as raised:
        Candidate(initiative_id, cost, votes)
    assert raised.value.code == "rule_error"
    assert isinstance(raised.value, VecheError)


def test_candidate_is_frozen_and_slotted() -> None:
    candidate = Candidate("a", 1, 1)
    with pytest.raises(AttributeError):
        candidate.cost = 2  # type: ignore[misc]
    assert not hasattr(candidate, "__dict__")


def test_order_more_votes_first() -> None:
    ordered = order_candidates(make(("a", 10, 1), ("b", 10, 3), ("c", 10, 2)))
    assert [c.initiative_id for c in ordered] == ["b", "c", "a"]


def test_order_tie_on_votes_lower_cost_first() -> None:
    ordered = order_candidates(make(("a", 30, 5), ("b", 10, 5), ("c", 20, 5)))
    assert [c.initiative_id for c in ordered] == ["b", "c", "a"]


def test_order_tie_on_votes_and_cost_id_bytes() -> None:
    ids = ["b", "a", "B", "é", "z", "a1", "ä"]
    ordered = order_candidates(make(*[(i, 10, 5) for i in ids]))
    assert [c.initiative_id for c in ordered] == sorted(ids, key=lambda i: i.encode("utf-8"))
    assert [c.initiative_id for c in ordered] == ["B", "a", "a1", "b", "z", "ä", "é"]


def test_order_rejects_duplicate_ids() -> None:
    with pytest.raises(RuleError, match="duplicate"):
        order_candidates(make(("a", 10, 1), ("a", 20, 2)))


# --- top-n -----------------------------------------------------------------------------------

def test_top_n_count_limit() -> None:
    assert select_top_n(make(("a", 9, 3), ("b", 9, 2), ("c", 9, 1)), 2, 0, None) == ["a", "b"]


def test_top_n_zero_means_no_limit() -> None:
    assert select_top_n(make(("a", 9, 3), ("b", 9, 2), ("c", 9, 1)), 0, 0, None) == ["a", "b", "c"]


def test_top_n_threshold_inclusive() -> None:
    cands = make(("a", 9, 501), ("b", 9, 500), ("c", 9, 499))
    assert select_top_n(cands, 0, 500, None) == ["a", "b"]


def test_top_n_threshold_excludes_all() -> None:
    assert select_top_n(make(("a", 9, 499), ("b", 9, 10)), 3, 500, None) == []


def test_top_n_budget_skips_what_does_not_fit() -> None:
    cands = make(("a", 60, 5), ("b", 50, 4), ("c", 40, 3), ("d", 1, 2))
    assert select_top_n(cands, 0, 0, 100) == ["a", "c"]
    assert select_top_n(cands, 3, 0, 101) == ["a", "c", "d"]


def test_top_n_tie_break_at_the_cut() -> None:
    cands = make(("b", 10, 7), ("a", 10, 7), ("c", 5, 7))
    assert select_top_n(cands, 2, 0, None) == ["c", "a"]


@pytest.mark.parametrize("n, min_votes, budget", [(-1, 0, None), (1, -1, None), (1, 0, -1), (True, 0, None)])
def test_top_n_invalid_arguments(n: Any, min_votes: Any, budget: Any) -> None:
    with pytest.raises(RuleError):
        select_top_n(make(("a", 1, 1)), n, min_votes, budget)


# --- greedy ----------------------------------------------------------------------------------

def test_greedy_skips_and_continues() -> None:
    cands = make(("a", 60, 5), ("b", 50, 4), ("c", 40, 3), ("d", 10, 1))
    assert select_greedy(cands, 100) == ["a", "c"]


def test_greedy_exact_fit() -> None:
    assert select_greedy(make(("a", 60, 5), ("b", 40, 4)), 100) == ["a", "b"]
    assert select_greedy(make(("a", 60, 5), ("b", 41, 4)), 100) == ["a"]


def test_greedy_zero_budget() -> None:
    assert select_greedy(make(("a", 1, 5)), 0) == []


def test_greedy_min_votes() -> None:
    assert select_greedy(make(("a", 1, 5), ("b", 1, 4), ("c", 1, 3)), 10, min_votes=4) == ["a", "b"]


def test_greedy_zero_vote_candidates_fill_remaining_budget() -> None:
    assert select_greedy(make(("a", 5, 2), ("b", 3, 0)), 10) == ["a", "b"]
    assert select_greedy(make(("a", 5, 2), ("b", 3, 0)), 10, min_votes=1) == ["a"]


def test_greedy_empty() -> None:
    assert select_greedy([], 100) == []


@pytest.mark.parametrize("budget, min_votes", [(-1, 0), (10, -1), (None, 0), ("10", 0)])
def test_greedy_invalid_arguments(budget: Any, min_votes: Any) -> None:
    with pytest.raises(RuleError):
        select_greedy(make(("a", 1, 1)), budget, min_votes)


# --- greedy without skipping -----------------------------------------------------------------

def test_greedy_no_skip_stops_at_first_misfit() -> None:
    cands = make(("a", 60, 5), ("b", 50, 4), ("c", 40, 3), ("d", 10, 1))
    assert select_greedy_no_skip(cands, 100) == ["a"]


def test_greedy_no_skip_exact_fit_continues() -> None:
    cands = make(("a", 60, 5), ("b", 40, 4), ("c", 1, 1))
    assert select_greedy_no_skip(cands, 100) == ["a", "b"]
    assert select_greedy_no_skip(cands, 101) == ["a", "b", "c"]


def test_greedy_no_skip_zero_budget() -> None:
    assert select_greedy_no_skip(make(("a", 1, 5)), 0) == []


def test_greedy_no_skip_min_votes() -> None:
    assert select_greedy_no_skip(make(("a", 1, 5), ("b", 1, 4)), 10, min_votes=5) == ["a"]


@pytest.mark.parametrize("budget, min_votes", [(-1, 0), (10, -1)])
def test_greedy_no_skip_invalid_arguments(budget: int, min_votes: int) -> None:
    with pytest.raises(RuleError):
        select_greedy_no_skip(make(("a", 1, 1)), budget, min_votes)


# --- select_winners dispatch -----------------------------------------------------------------

def test_select_winners_dispatches_each_rule() -> None:
    cands = make(("a", 60, 3), ("b", 50, 2), ("c", 40, 1))
    ballots = [["a"], ["a"], ["a", "b"], ["b", "c"]]
    assert select_winners("top-n", cands, budget=None, top_n=2) == ["a", "b"]
    assert select_winners("top-n", cands, budget=100, top_n=2) == ["a", "c"]
    assert select_winners("greedy", cands, budget=100) == ["a", "c"]
    assert select_winners("greedy-no-skip", cands, budget=100) == ["a"]
    assert select_winners("equal-shares", cands, budget=100, ballots=ballots) == ["a"]
    assert RULES == ("top-n", "greedy", "greedy-no-skip", "equal-shares")


@pytest.mark.parametrize("rule", ["", "Greedy", "approval", "top_n", None, 1])
def test_select_winners_unknown_rule(rule: Any) -> None:
    with pytest.raises(RuleError, match="unknown winner rule"):
        select_winners(rule, make(("a", 1, 1)), budget=10)


@pytest.mark.parametrize("rule", ["greedy", "greedy-no-skip", "equal-shares"])
def test_select_winners_top_n_only_for_top_n(rule: str) -> None:
    with pytest.raises(RuleError, match="top_n"):
        select_winners(rule, make(("a", 1, 1)), budget=10, top_n=1, ballots=[["a"]])


@pytest.mark.parametrize("rule", ["greedy", "greedy-no-skip", "equal-shares"])
def test_select_winners_budget_required(rule: str) -> None:
    with pytest.raises(RuleError, match="budget"):
        select_winners(rule, make(("a", 1, 1)), budget=None, ballots=[["a"]])


def test_select_winners_equal_shares_needs_ballots() -> None:
    with pytest.raises(RuleError, match="ballots"):
        select_winners("equal-shares", make(("a", 1, 1)), budget=10)


def test_select_winners_equal_shares_votes_must_match_ballots() -> None:
    with pytest.raises(RuleError, match="ballots approve"):
        select_winners("equal-shares", make(("a", 1, 2)), budget=10, ballots=[["a"]])


def test_select_winners_equal_shares_unknown_initiative() -> None:
    with pytest.raises(RuleError, match="unknown initiative"):
        select_winners("equal-shares", make(("a", 1, 1)), budget=10, ballots=[["a", "x"]])


def test_select_winners_equal_shares_min_votes_keeps_voter_shares() -> None:
    # Four voters; "b" is under the threshold of 2 and dropped, but every ballot (also the empty
    # one and the one left empty by the drop) keeps its share of the budget: with 39, each voter
    # has 9.75 and "a" (cost 20, two supporters) is not affordable.
    cands = make(("a", 20, 2), ("b", 5, 1))
    ballots = [["a"], ["a"], ["b"], []]
    assert select_winners("equal-shares", cands, budget=40, ballots=ballots) == ["a", "b"]
    assert select_winners("equal-shares", cands, budget=40, min_votes=2, ballots=ballots) == ["a"]
    assert select_winners("equal-shares", cands, budget=39, min_votes=2, ballots=ballots) == []


def test_select_winners_ignores_ballots_for_counting_rules() -> None:
    assert select_winners("greedy", make(("a", 1, 7)), budget=1, ballots=[["zzz"]]) == ["a"]


# --- properties --------------------------------------------------------------------------------

@st.composite
def candidate_lists(draw: st.DrawFn) -> list[Candidate]:
    ids = draw(st.lists(st.text("abcXé", min_size=1, max_size=3), unique=True, max_size=12))
    return [Candidate(i, draw(st.integers(1, 60)), draw(st.integers(0, 8))) for i in ids]


budgets = st.integers(0, 250)


def total_cost(cands: Sequence[Candidate], winners: Sequence[str]) -> int:
    cost = {c.initiative_id: c.cost for c in cands}
    return sum(cost[w] for w in winners)


@settings(max_examples=300, deadline=None)
@given(candidate_lists(), budgets, st.integers(0, 8), st.integers(0, 5))
def test_property_budgeted_rules_stay_within_budget(
    cands: list[Candidate], budget: int, min_votes: int, n: int
) -> None:
    for winners in (
        select_greedy(cands, budget, min_votes),
        select_greedy_no_skip(cands, budget, min_votes),
        select_top_n(cands, n, min_votes, budget),
    ):
        assert total_cost(cands, winners) <= budget
        assert len(set(winners)) == len(winners)
        votes = {c.initiative_id: c.votes for c in cands}
        assert all(votes[w] >= min_votes for w in winners)


@settings(max_examples=300, deadline=None)
@given(candidate_lists(), budgets, st.integers(0, 8))
def test_property_no_skip_is_a_prefix_of_greedy(cands: list[Candidate], budget: int, min_votes: int) -> None:
    greedy = select_greedy(cands, budget, min_votes)
    no_skip = select_greedy_no_skip(cands, budget, min_votes)
    assert greedy[: len(no_skip)] == no_skip
    assert set(no_skip) <= set(greedy)


@settings(max_examples=300, deadline=None)
@given(candidate_lists(), budgets, st.integers(0, 8))
def test_property_greedy_is_exhaustive(cands: list[Candidate], budget: int, min_votes: int) -> None:
    winners = select_greedy(cands, budget, min_votes)
    left = budget - total_cost(cands, winners)
    assert all(c.cost > left for c in cands if c.initiative_id not in winners and c.votes >= min_votes)


@settings(max_examples=200, deadline=None)
@given(candidate_lists(), budgets, st.integers(0, 4), st.randoms(use_true_random=False))
def test_property_deterministic_under_shuffle(
    cands: list[Candidate], budget: int, n: int, rng: random.Random
) -> None:
    shuffled = list(cands)
    rng.shuffle(shuffled)
    assert select_greedy(shuffled, budget) == select_greedy(cands, budget)
    assert select_greedy_no_skip(shuffled, budget) == select_greedy_no_skip(cands, budget)
    assert select_top_n(shuffled, n, 0, budget) == select_top_n(cands, n, 0, budget)
    assert order_candidates(shuffled) == order_candidates(cands)


@settings(max_examples=200, deadline=None)
@given(candidate_lists(), st.integers(0, 5), st.integers(0, 8))
def test_property_top_n_without_budget_is_a_prefix_of_the_order(
    cands: list[Candidate], n: int, min_votes: int
) -> None:
    winners = select_top_n(cands, n, min_votes, None)
    eligible = [c.initiative_id for c in order_candidates(cands) if c.votes >= min_votes]
    assert winners == (eligible[:n] if n else eligible)


# --- against pabutools -------------------------------------------------------------------------

def pabutools_greedy(costs: dict[str, int], ballots: Sequence[Sequence[str]], budget: int) -> list[str]:
    """pabutools' greedy_utilitarian_welfare with Cost_Sat and our tie-break."""
    from pabutools.election import ApprovalBallot, ApprovalProfile, Cost_Sat, Instance, Project
    from pabutools.rules import greedy_utilitarian_welfare
    from pabutools.tiebreaking import TieBreakingRule

    projects = {pid: Project(pid, cost) for pid, cost in costs.items()}
    instance = Instance(projects.values(), budget_limit=budget)
    profile = ApprovalProfile([ApprovalBallot([projects[p] for p in ballot]) for ballot in ballots])
    votes = {pid: sum(pid in ballot for ballot in ballots) for pid in costs}
    tie_break = TieBreakingRule(lambda inst, prof, proj: (-votes[proj.name], proj.cost, proj.name.encode()))
    result = greedy_utilitarian_welfare(instance, profile, sat_class=Cost_Sat, tie_breaking=tie_break)
    return [project.name for project in result]


@st.composite
def approval_instances(draw: st.DrawFn) -> tuple[dict[str, int], list[list[str]], int]:
    ids = [f"p{index}" for index in range(draw(st.integers(1, 8)))]
    costs = {i: draw(st.sampled_from([1, 2, 3, 5, 8, 13, 20])) for i in ids}
    ballots = draw(st.lists(st.lists(st.sampled_from(ids), unique=True), max_size=12))
    return costs, ballots, draw(st.integers(0, 60))


def to_candidates(costs: dict[str, int], ballots: Sequence[Sequence[str]]) -> list[Candidate]:
    return [Candidate(i, cost, sum(i in b for b in ballots)) for i, cost in costs.items()]


@settings(max_examples=150, deadline=None)
@given(approval_instances())
def test_greedy_matches_pabutools(instance: tuple[dict[str, int], list[list[str]], int]) -> None:
    costs, ballots, budget = instance
    assert select_greedy(to_candidates(costs, ballots), budget) == pabutools_greedy(costs, ballots, budget)


@settings(max_examples=150, deadline=None)
@given(approval_instances())
def test_greedy_no_skip_matches_pabutools_prefix(instance: tuple[dict[str, int], list[list[str]], int]) -> None:
    """pabutools has no no-skip greedy: it is pabutools' greedy up to the first skipped project."""
    costs, ballots, budget = instance
    cands = to_candidates(costs, ballots)
    order = [c.initiative_id for c in order_candidates(cands)]
    reference = pabutools_greedy(costs, ballots, budget)
    prefix = 0
    while prefix < len(reference) and reference[prefix] == order[prefix]:
        prefix += 1
    assert select_greedy_no_skip(cands, budget) == reference[:prefix]


# --- the official data -------------------------------------------------------------------------

@lru_cache(maxsize=None)
def load(name: str) -> PbFile:
    return read_pb(DATA / name)


def official_candidates(pb: PbFile, scale: int = 100) -> list[Candidate]:
    """Candidates in kopeck-like minor units (x100), with votes counted from the ballots."""
    counts = compute_vote_counts(pb)
    return [Candidate(p.project_id, p.cost * scale, counts[p.project_id]) for p in pb.projects]


def official_selection(pb: PbFile) -> set[str]:
    return {p.project_id for p in pb.projects if p.selected}


@pytest.mark.parametrize("name", DATA_FILES)
def test_official_rule_reproduces_selected(name: str) -> None:
    pb = load(name)
    winners = select_winners(pb.rule, official_candidates(pb), budget=pb.budget * 100)
    assert set(winners) == official_selection(pb)
    assert len(winners) == len(set(winners))


def test_wroclaw_facts() -> None:
    pb = load("Poland_Wroclaw_2019_local.pb")
    assert (pb.rule, pb.vote_type, pb.budget, pb.min_length, pb.max_length) == (
        "greedy-no-skip", "choose-1", 9_000_000, 1, 1)
    winners = select_greedy_no_skip(official_candidates(pb, scale=1), pb.budget)
    # The 12 most voted projects cost 750,000 each: they fill the 9,000,000 budget exactly, so
    # greedy with skipping gives the same set; the stated rule is consistent with the data.
    assert len(winners) == 12 and sum(p.cost for p in pb.projects if p.selected) == pb.budget
    assert select_greedy(official_candidates(pb, scale=1), pb.budget) == winners


def test_wroclaw_per_district_selection_would_differ() -> None:
    """Selecting per district (with any district budget) cannot give the official 12 winners:
    several districts' most voted projects are not selected."""
    pb = load("Poland_Wroclaw_2019_local.pb")
    first_in_district: dict[str, str] = {}
    for candidate in order_candidates(official_candidates(pb)):
        district = next(v.district for v in pb.votes if v.choices == (candidate.initiative_id,))
        first_in_district.setdefault(district or "", candidate.initiative_id)
    assert not set(first_in_district.values()) <= official_selection(pb)


def test_wesola_greedy_skips() -> None:
    pb = load("Poland_Warszawa_2023_Wesola.pb")
    assert (pb.rule, pb.vote_type, pb.min_length, pb.max_length) == ("greedy", "approval", 1, 15)
    cands = official_candidates(pb)
    greedy = select_greedy(cands, pb.budget * 100)
    no_skip = select_greedy_no_skip(cands, pb.budget * 100)
    assert set(greedy) == official_selection(pb)
    assert len(no_skip) < len(greedy)  # the data tells the two rules apart: skipping is needed
    assert set(no_skip) != official_selection(pb)


@lru_cache(maxsize=None)
def pabutools_official(name: str) -> tuple[list[str], set[str]]:
    from pabutools.election import Cost_Sat, parse_pabulib
    from pabutools.rules import greedy_utilitarian_welfare

    instance, profile = parse_pabulib(str(DATA / name))
    selected = {p.name for p in instance if instance.project_meta[p].get("selected") == "1"}
    result = greedy_utilitarian_welfare(instance, profile.as_multiprofile(), sat_class=Cost_Sat)
    return [p.name for p in result], selected


@pytest.mark.parametrize("name", DATA_FILES)
def test_official_greedy_matches_pabutools(name: str) -> None:
    reference, selected = pabutools_official(name)
    pb = load(name)
    assert select_greedy(official_candidates(pb, scale=1), pb.budget) == reference
    assert set(reference) == selected


def test_wesola_cardinality_greedy_does_not_reproduce() -> None:
    """Cost_Sat (density = votes) is pabulib's greedy; Cardinality_Sat (votes / cost) is not."""
    from pabutools.election import Cardinality_Sat, parse_pabulib
    from pabutools.rules import greedy_utilitarian_welfare

    instance, profile = parse_pabulib(str(DATA / "Poland_Warszawa_2023_Wesola.pb"))
    result = greedy_utilitarian_welfare(instance, profile, sat_class=Cardinality_Sat)
    assert {p.name for p in result} != official_selection(load("Poland_Warszawa_2023_Wesola.pb"))
