"""Method of Equal Shares (MES) for approval ballots with cost utilities, in exact fractions.

Definition (as pabutools' ``method_of_equal_shares`` with ``sat_class=Cost_Sat``, no completion):
every voter (an empty ballot is a voter too) starts with ``budget / n``. A project of cost ``c``
approved by voters with budgets ``b_i`` can be bought at per-voter price ``q`` (each supporter
pays ``min(b_i, q)``) when ``sum_i min(b_i, q) == c``; its ratio is ``rho = q / c`` (price per
unit of the supporter's utility, the utility of a project being its cost). Each round buys the
project with the smallest ``rho`` and charges its supporters; ties go to more approvals, then
lower cost, then id bytes ascending. It stops when no project is affordable.

Speed: identical ballots are merged first, and voters who have paid for the same projects so far
share one budget *class*, so a round costs time per (project, class), never per voter. Ratios only
grow as budgets shrink, so a lazy heap re-evaluates only projects whose supporters just paid.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from chain.errors import RuleError

COMPLETION_ADD1 = "add1"
ZERO = Fraction(0)
SORT_KEY_BITS = 40


@dataclass(frozen=True, slots=True)
class VoterGroups:
    """Ballots merged by approval set. Projects are indexes into ``project_ids``."""

    project_ids: tuple[str, ...]
    costs: tuple[int, ...]
    members: tuple[tuple[int, ...], ...]
    weights: tuple[int, ...]
    groups_of: tuple[tuple[int, ...], ...]
    votes: tuple[int, ...]
    voter_count: int


def equal_shares(
    costs: Mapping[str, int],
    ballots: Iterable[Sequence[str]],
    budget: int,
    *,
    completion: str | None = None,
    budget_increment: int = 1,
) -> list[str]:
    """Initiative ids chosen by MES, in selection order.

    ``completion="add1"`` is pabutools' iterated variant (``voter_budget_increment``): raise every
    voter's starting budget by ``budget_increment`` money units and rerun, until the outcome is
    exhaustive (no approved, unselected project fits the real budget) or would exceed the real
    budget, in which case the last feasible outcome is kept.
    """
    return equal_shares_weighted(costs, weigh(ballots).items(), budget, completion=completion,
                                 budget_increment=budget_increment)


def equal_shares_weighted(
    costs: Mapping[str, int],
    weighted: Iterable[tuple[Sequence[str], int]],
    budget: int,
    *,
    completion: str | None = None,
    budget_increment: int = 1,
) -> list[str]:
    """``equal_shares`` of ballots given once each with their number of voters (``weight``)."""
    validate_budget(budget)
    groups = aggregate_weighted(costs, weighted)
    if groups.voter_count == 0:
        return []
    voter_budget = Fraction(budget, groups.voter_count)
    if completion is None:
        selected = compute_mes(groups, voter_budget)
    elif completion == COMPLETION_ADD1:
        validate_increment(budget_increment)
        selected = compute_mes_add1(groups, voter_budget, budget, budget_increment)
    else:
        raise RuleError(f"unknown equal-shares completion {completion!r}; expected None or 'add1'")
    return [groups.project_ids[index] for index in selected]


def weigh(ballots: Iterable[Sequence[str]]) -> dict[tuple[str, ...], int]:
    """Each distinct ballot (as a tuple, in its own order) with the number of voters who cast it."""
    return Counter(map(tuple, ballots))


def validate_budget(budget: object) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise RuleError(f"budget must be an int >= 0, got {budget!r}")


def validate_increment(increment: object) -> None:
    if isinstance(increment, bool) or not isinstance(increment, int) or increment <= 0:
        raise RuleError(f"budget_increment must be an int > 0, got {increment!r}")


def validate_costs(costs: Mapping[str, int]) -> None:
    for initiative_id, cost in costs.items():
        if not isinstance(initiative_id, str) or not initiative_id:
            raise RuleError(f"initiative id must be a non-empty string, got {initiative_id!r}")
        if isinstance(cost, bool) or not isinstance(cost, int) or cost <= 0:
            raise RuleError(f"initiative {initiative_id!r}: cost must be an int > 0, got {cost!r}")


def aggregate_ballots(costs: Mapping[str, int], ballots: Iterable[Sequence[str]]) -> VoterGroups:
    """Merge identical approval sets; reject unknown ids and ids repeated within a ballot."""
    return aggregate_weighted(costs, weigh(ballots).items())


def aggregate_weighted(costs: Mapping[str, int], weighted: Iterable[tuple[Sequence[str], int]]) -> VoterGroups:
    """``aggregate_ballots`` of (ballot, number of voters) pairs; a ballot may come more than once."""
    validate_costs(costs)
    project_ids = tuple(sorted(costs, key=lambda initiative_id: initiative_id.encode("utf-8")))
    index = {initiative_id: position for position, initiative_id in enumerate(project_ids)}
    merged: dict[tuple[int, ...], int] = {}
    voter_count = 0
    for ballot, weight in weighted:
        validate_weight(weight)
        voter_count += weight
        member = tuple(sorted(get_project_index(index, initiative_id) for initiative_id in ballot))
        if len(set(member)) != len(member):
            raise RuleError(f"ballot approves an initiative twice: {list(ballot)!r}")
        if member:
            merged[member] = merged.get(member, 0) + weight
    ordered = sorted(merged.items())
    members = tuple(member for member, _ in ordered)
    weights = tuple(weight for _, weight in ordered)
    groups_of: list[list[int]] = [[] for _ in project_ids]
    votes = [0] * len(project_ids)
    for group, member in enumerate(members):
        for project in member:
            groups_of[project].append(group)
            votes[project] += weights[group]
    return VoterGroups(
        project_ids=project_ids,
        costs=tuple(costs[initiative_id] for initiative_id in project_ids),
        members=members,
        weights=weights,
        groups_of=tuple(tuple(groups) for groups in groups_of),
        votes=tuple(votes),
        voter_count=voter_count,
    )


def validate_weight(weight: object) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int) or weight <= 0:
        raise RuleError(f"a ballot's number of voters must be an int > 0, got {weight!r}")


def get_project_index(index: Mapping[str, int], initiative_id: object) -> int:
    position = index.get(initiative_id) if isinstance(initiative_id, str) else None
    if position is None:
        raise RuleError(f"ballot approves unknown initiative {initiative_id!r}")
    return position


def get_tie_ranks(groups: VoterGroups) -> list[int]:
    """Rank of each project under the common tie-break (more votes, lower cost, id bytes)."""
    order = sorted(
        range(len(groups.project_ids)),
        key=lambda p: (-groups.votes[p], groups.costs[p], groups.project_ids[p].encode("utf-8")),
    )
    ranks = [0] * len(order)
    for rank, project in enumerate(order):
        ranks[project] = rank
    return ranks


class MesRun:
    """Mutable working state of one MES run; only ``compute_mes`` creates and drives it."""

    __slots__ = ("groups", "class_budget", "class_key", "group_class", "support", "alive", "dirty")

    def __init__(self, groups: VoterGroups, voter_budget: Fraction) -> None:
        self.groups = groups
        self.class_budget: list[Fraction] = [voter_budget]
        self.class_key: list[int] = [get_sort_key(voter_budget)]
        self.group_class: list[int] = [0] * len(groups.members)
        positive = voter_budget > 0
        self.support: list[dict[int, int]] = [
            {0: votes} if votes and positive else {} for votes in groups.votes
        ]
        self.alive: list[bool] = [bool(support) for support in self.support]
        self.dirty: list[bool] = [True] * len(groups.votes)

    def compute_rho(self, project: int) -> Fraction | None:
        """Smallest price per unit of utility at which the supporters can buy ``project``."""
        support = self.support[project]
        cost = self.groups.costs[project]
        remaining_weight = sum(support.values())
        remaining_cost = Fraction(cost)
        keys, budgets = self.class_key, self.class_budget
        poorest_first = sorted((keys[cls], budgets[cls], weight) for cls, weight in support.items())
        for _, budget, weight in poorest_first:
            if remaining_cost <= budget * remaining_weight:
                return remaining_cost / (remaining_weight * cost)
            remaining_cost -= budget * weight
            remaining_weight -= weight
        return None

    def charge(self, project: int, rho: Fraction) -> None:
        """Supporters of ``project`` pay ``min(budget, rho * cost)``; move them to new classes."""
        price = rho * self.groups.costs[project]
        new_class_of: dict[int, int] = {}
        weights, members = self.groups.weights, self.groups.members
        support, alive, dirty = self.support, self.alive, self.dirty
        for group in self.groups.groups_of[project]:
            old = self.group_class[group]
            old_budget = self.class_budget[old]
            if not old_budget:
                continue
            new = new_class_of.get(old)
            if new is None:
                new = len(self.class_budget)
                new_budget = old_budget - price if old_budget > price else ZERO
                self.class_budget.append(new_budget)
                self.class_key.append(get_sort_key(new_budget))
                new_class_of[old] = new
            self.group_class[group] = new
            keeps_budget = bool(self.class_budget[new])
            weight = weights[group]
            for other in members[group]:
                if not alive[other]:
                    continue
                other_support = support[other]
                left = other_support[old] - weight
                if left:
                    other_support[old] = left
                else:
                    del other_support[old]
                if keeps_budget:
                    other_support[new] = other_support.get(new, 0) + weight
                dirty[other] = True


def get_sort_key(budget: Fraction) -> int:
    """Integer approximation, monotone in ``budget``, for sorting without comparing Fractions.

    Sorting on ``(key, budget)`` stays exact: the Fractions are compared only when keys are equal.
    """
    return (budget.numerator << SORT_KEY_BITS) // budget.denominator


def compute_mes(groups: VoterGroups, voter_budget: Fraction) -> list[int]:
    """Project indexes selected by plain MES (no completion), in selection order."""
    run = MesRun(groups, voter_budget)
    ranks = get_tie_ranks(groups)
    heap: list[tuple[Fraction, int, int]] = []
    for project, alive in enumerate(run.alive):
        if alive:
            heap.append((ZERO, ranks[project], project))
    heapq.heapify(heap)
    selected: list[int] = []
    while heap:
        rho, rank, project = heapq.heappop(heap)
        if run.dirty[project]:
            exact = run.compute_rho(project)
            if exact is None:
                run.alive[project] = False
            else:
                run.dirty[project] = False
                heapq.heappush(heap, (exact, rank, project))
            continue
        # Clean: ``rho`` is exact, and every other entry is a lower bound at least (rho, rank).
        run.alive[project] = False
        selected.append(project)
        run.charge(project, rho)
    return selected


def compute_mes_add1(
    groups: VoterGroups, voter_budget: Fraction, budget: int, increment: int
) -> list[int]:
    """pabutools' iterated MES: raise the per-voter budget until exhaustive or infeasible."""
    approved = [project for project, votes in enumerate(groups.votes) if votes]
    previous: list[int] = []
    while True:
        outcome = compute_mes(groups, voter_budget)
        spent = sum(groups.costs[project] for project in outcome)
        if spent > budget:
            return previous
        chosen = set(outcome)
        if all(
            project in chosen or spent + groups.costs[project] > budget for project in approved
        ):
            return outcome
        previous = outcome
        voter_budget += increment
