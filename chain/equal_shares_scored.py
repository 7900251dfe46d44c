"""Method of Equal Shares for scored ballots (cumulative, ordinal): points as cardinal utilities.

Definition (pabutools' ``method_of_equal_shares`` with ``sat_class=Additive_Cardinal_Sat``, no
completion): every voter, an empty ballot included, starts with ``budget / n``. A voter who gives a
project ``u > 0`` points pays ``min(b, rho * u)`` for it, ``b`` being what the voter has left; the
project is affordable at the smallest ``rho`` with ``sum min(b_i, rho * u_i) == cost``. Each round
buys the affordable project with the smallest ``rho`` (ties: more points in total, then lower cost,
then id bytes ascending) and charges its supporters; it stops when no project is affordable.

All arithmetic is exact (``Fraction``). Identical ballots are merged into weighted groups; since two
voters with the same ballot always pay the same, a group keeps one budget. ``rho`` of a project only
grows as budgets shrink, so a heap of lower bounds re-evaluates only projects whose supporters paid.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from chain.equal_shares import ZERO, get_sort_key, validate_budget, validate_costs, validate_weight
from chain.errors import RuleError


@dataclass(frozen=True, slots=True)
class ScoredGroups:
    """Ballots merged by content. Projects are indexes into ``project_ids``."""

    project_ids: tuple[str, ...]
    costs: tuple[int, ...]
    items: tuple[tuple[tuple[int, int], ...], ...]    # per group: (project, points) pairs
    weights: tuple[int, ...]
    supporters: tuple[tuple[tuple[int, int], ...], ...]  # per project: (group, points) pairs
    points: tuple[int, ...]                           # per project: total points (weights included)
    voter_count: int


def equal_shares_scored(costs: Mapping[str, int], ballots: Iterable[Sequence[tuple[str, int]]],
                        budget: int) -> list[str]:
    """Initiative ids chosen by MES with cardinal utilities, in selection order."""
    return equal_shares_scored_weighted(costs, weigh_scored(ballots).items(), budget)


def equal_shares_scored_weighted(costs: Mapping[str, int],
                                 weighted: Iterable[tuple[Sequence[tuple[str, int]], int]], budget: int) -> list[str]:
    """``equal_shares_scored`` of ballots given once each with their number of voters."""
    validate_budget(budget)
    groups = aggregate_scored_weighted(costs, weighted)
    if groups.voter_count == 0:
        return []
    selected = compute_mes_scored(groups, Fraction(budget, groups.voter_count))
    return [groups.project_ids[index] for index in selected]


def weigh_scored(ballots: Iterable[Sequence[tuple[str, int]]]) -> dict[tuple[tuple[str, int], ...], int]:
    """Each distinct scored ballot (as a tuple, in its own order) with the number of voters who cast it."""
    return Counter(tuple(ballot) for ballot in ballots)


def aggregate_scored_ballots(costs: Mapping[str, int],
                             ballots: Iterable[Sequence[tuple[str, int]]]) -> ScoredGroups:
    """Merge identical ballots; reject unknown ids, ids named twice and points that are not ints > 0."""
    return aggregate_scored_weighted(costs, weigh_scored(ballots).items())


def aggregate_scored_weighted(costs: Mapping[str, int],
                              weighted: Iterable[tuple[Sequence[tuple[str, int]], int]]) -> ScoredGroups:
    """``aggregate_scored_ballots`` of (ballot, number of voters) pairs; a ballot may come more than once."""
    validate_costs(costs)
    project_ids = tuple(sorted(costs, key=lambda initiative_id: initiative_id.encode("utf-8")))
    index = {initiative_id: position for position, initiative_id in enumerate(project_ids)}
    merged: dict[tuple[tuple[int, int], ...], int] = {}
    voter_count = 0
    for ballot, weight in weighted:
        validate_weight(weight)
        voter_count += weight
        pairs = tuple(sorted(get_scored_item(index, item) for item in ballot))
        if len({project for project, _ in pairs}) != len(pairs):
            raise RuleError(f"ballot names an initiative twice: {list(ballot)!r}")
        if pairs:
            merged[pairs] = merged.get(pairs, 0) + weight
    ordered = sorted(merged.items())
    supporters: list[list[tuple[int, int]]] = [[] for _ in project_ids]
    points = [0] * len(project_ids)
    for group, (pairs, weight) in enumerate(ordered):
        for project, utility in pairs:
            supporters[project].append((group, utility))
            points[project] += utility * weight
    return ScoredGroups(
        project_ids=project_ids,
        costs=tuple(costs[initiative_id] for initiative_id in project_ids),
        items=tuple(pairs for pairs, _ in ordered),
        weights=tuple(weight for _, weight in ordered),
        supporters=tuple(tuple(entry) for entry in supporters),
        points=tuple(points),
        voter_count=voter_count,
    )


def get_scored_item(index: Mapping[str, int], item: object) -> tuple[int, int]:
    if not isinstance(item, tuple) or len(item) != 2:
        raise RuleError(f"a scored ballot holds (initiative, points) pairs, got {item!r}")
    initiative_id, points = item
    position = index.get(initiative_id) if isinstance(initiative_id, str) else None
    if position is None:
        raise RuleError(f"ballot names unknown initiative {initiative_id!r}")
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise RuleError(f"initiative {initiative_id!r}: points must be an int > 0, got {points!r}")
    return position, points


def get_scored_tie_ranks(groups: ScoredGroups) -> list[int]:
    """Rank of each project under the tie-break: more points, lower cost, id bytes."""
    order = sorted(range(len(groups.project_ids)),
                   key=lambda p: (-groups.points[p], groups.costs[p], groups.project_ids[p].encode("utf-8")))
    ranks = [0] * len(order)
    for rank, project in enumerate(order):
        ranks[project] = rank
    return ranks


def compute_rho_scored(groups: ScoredGroups, budgets: Sequence[Fraction], project: int) -> Fraction | None:
    """Smallest price per point at which the supporters of ``project`` can buy it, or None."""
    cost = groups.costs[project]
    weights = groups.weights
    entries = []
    available = ZERO
    utility_left = 0
    for group, utility in groups.supporters[project]:
        budget = budgets[group]
        if not budget:
            continue
        ratio = budget / utility
        entries.append((get_sort_key(ratio), ratio, budget, utility, weights[group]))
        available += budget * weights[group]
        utility_left += utility * weights[group]
    if available < cost:
        return None
    entries.sort()
    cost_left = Fraction(cost)
    for _, ratio, budget, utility, weight in entries:
        rho = cost_left / utility_left
        if rho <= ratio:
            return rho
        cost_left -= budget * weight
        utility_left -= utility * weight
    return None  # not reached: ``available >= cost`` makes the last group's ratio fit


def compute_mes_scored(groups: ScoredGroups, voter_budget: Fraction) -> list[int]:
    """Project indexes selected by MES with cardinal utilities, in selection order."""
    budgets = [voter_budget] * len(groups.weights)
    ranks = get_scored_tie_ranks(groups)
    alive = [bool(supporters) and voter_budget > 0 for supporters in groups.supporters]
    dirty = [True] * len(alive)
    heap = [(ZERO, ranks[project], project) for project, live in enumerate(alive) if live]
    heapq.heapify(heap)
    selected: list[int] = []
    while heap:
        rho, rank, project = heapq.heappop(heap)
        if not alive[project]:
            continue
        if dirty[project]:
            exact = compute_rho_scored(groups, budgets, project)
            if exact is None:
                alive[project] = False
            else:
                dirty[project] = False
                heapq.heappush(heap, (exact, rank, project))
            continue
        alive[project] = False
        selected.append(project)
        for group, utility in groups.supporters[project]:
            budget = budgets[group]
            if not budget:
                continue
            price = rho * utility
            budgets[group] = budget - price if budget > price else ZERO
            for other, _ in groups.items[group]:
                dirty[other] = True
    return selected
