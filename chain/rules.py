"""Winner rules: pure, deterministic functions from candidates (and ballots) to winners.

Money is an integer number of minor units (kopecks, grosze); there are no floats anywhere.
Every rule breaks ties the same way (ARCHITECTURE §3): more votes first, then lower cost, then
initiative id in ascending order of its UTF-8 bytes. Every function returns initiative ids in the
order in which the rule selected them. See docs/RULES.md for the rules in plain words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from chain.equal_shares import equal_shares_weighted, weigh
from chain.equal_shares_scored import equal_shares_scored_weighted, weigh_scored
from chain.errors import RuleError

RULE_TOP_N = "top-n"
RULE_GREEDY = "greedy"
RULE_GREEDY_NO_SKIP = "greedy-no-skip"
RULE_EQUAL_SHARES = "equal-shares"
RULES: tuple[str, ...] = (RULE_TOP_N, RULE_GREEDY, RULE_GREEDY_NO_SKIP, RULE_EQUAL_SHARES)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One initiative competing for a budget: its id, cost in minor units and vote count."""

    initiative_id: str
    cost: int
    votes: int

    def __post_init__(self) -> None:
        if not isinstance(self.initiative_id, str) or not self.initiative_id:
            raise RuleError(f"initiative id must be a non-empty string, got {self.initiative_id!r}")
        if isinstance(self.cost, bool) or not isinstance(self.cost, int) or self.cost <= 0:
            raise RuleError(f"initiative {self.initiative_id!r}: cost must be an int > 0, got {self.cost!r}")
        if isinstance(self.votes, bool) or not isinstance(self.votes, int) or self.votes < 0:
            raise RuleError(f"initiative {self.initiative_id!r}: votes must be an int >= 0, got {self.votes!r}")


def get_tie_break_key(candidate: Candidate) -> tuple[int, int, bytes]:
    """Sort key shared by every rule: more votes, then lower cost, then id bytes ascending."""
    return (-candidate.votes, candidate.cost, candidate.initiative_id.encode("utf-8"))


def order_candidates(cands: Iterable[Candidate]) -> list[Candidate]:
    """Candidates in rule order; duplicate initiative ids are rejected."""
    candidates = list(cands)
    validate_unique_ids(candidates)
    return sorted(candidates, key=get_tie_break_key)


def validate_unique_ids(candidates: Sequence[Candidate]) -> None:
    seen: set[str] = set()
    for candidate in candidates:
        if not isinstance(candidate, Candidate):
            raise RuleError(f"expected a Candidate, got {type(candidate).__name__}")
        if candidate.initiative_id in seen:
            raise RuleError(f"duplicate initiative id {candidate.initiative_id!r}")
        seen.add(candidate.initiative_id)


def validate_amount(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RuleError(f"{name} must be an int >= 0, got {value!r}")


def select_top_n(
    cands: Iterable[Candidate], n: int, min_votes: int, budget: int | None
) -> list[str]:
    """The n most voted candidates with at least ``min_votes`` votes.

    ``n == 0`` means no count limit. With a ``budget``, a candidate that no longer fits is skipped
    (the next one may still fit) and does not use up one of the n places.
    """
    validate_amount("n", n)
    validate_amount("min_votes", min_votes)
    if budget is not None:
        validate_amount("budget", budget)
    winners: list[str] = []
    spent = 0
    for candidate in order_candidates(cands):
        if candidate.votes < min_votes or (n and len(winners) == n):
            break
        if budget is not None and spent + candidate.cost > budget:
            continue
        winners.append(candidate.initiative_id)
        spent += candidate.cost
    return winners


def select_greedy(cands: Iterable[Candidate], budget: int, min_votes: int = 0) -> list[str]:
    """Most voted first; a candidate that no longer fits the budget is skipped."""
    validate_amount("budget", budget)
    validate_amount("min_votes", min_votes)
    winners: list[str] = []
    remaining = budget
    for candidate in order_candidates(cands):
        if candidate.votes < min_votes:
            break
        if candidate.cost <= remaining:
            winners.append(candidate.initiative_id)
            remaining -= candidate.cost
    return winners


def select_greedy_no_skip(
    cands: Iterable[Candidate], budget: int, min_votes: int = 0
) -> list[str]:
    """Most voted first; selection stops at the first candidate that does not fit."""
    validate_amount("budget", budget)
    validate_amount("min_votes", min_votes)
    winners: list[str] = []
    remaining = budget
    for candidate in order_candidates(cands):
        if candidate.votes < min_votes or candidate.cost > remaining:
            break
        winners.append(candidate.initiative_id)
        remaining -= candidate.cost
    return winners


def select_equal_shares(
    cands: Iterable[Candidate],
    budget: int,
    min_votes: int,
    ballots: Sequence[Sequence[str]] | None,
) -> list[str]:
    """Method of Equal Shares over the candidates with at least ``min_votes`` votes.

    Each candidate's ``votes`` must equal the number of ballots approving it (the tie-break uses
    it). Approvals of candidates under the threshold are dropped; their voters keep their share.
    """
    if ballots is None:
        validate_amount("budget", budget)
        validate_amount("min_votes", min_votes)
        raise RuleError("equal-shares needs the ballots")
    return select_equal_shares_weighted(cands, budget, min_votes, weigh(ballots))


def select_equal_shares_weighted(
    cands: Iterable[Candidate],
    budget: int,
    min_votes: int,
    ballots: Mapping[tuple[str, ...], int],
) -> list[str]:
    """``select_equal_shares`` of each distinct ballot with the number of voters who cast it."""
    validate_amount("budget", budget)
    validate_amount("min_votes", min_votes)
    candidates = order_candidates(cands)
    counts = count_approvals(candidates, ballots)
    for candidate in candidates:
        if counts[candidate.initiative_id] != candidate.votes:
            raise RuleError(
                f"initiative {candidate.initiative_id!r}: {candidate.votes} votes given but "
                f"{counts[candidate.initiative_id]} ballots approve it"
            )
    eligible = {c.initiative_id: c.cost for c in candidates if c.votes >= min_votes}
    if len(eligible) == len(candidates):
        return equal_shares_weighted(eligible, ballots.items(), budget)
    kept: dict[tuple[str, ...], int] = {}
    for ballot, weight in ballots.items():
        key = tuple(iid for iid in ballot if iid in eligible)
        kept[key] = kept.get(key, 0) + weight
    return equal_shares_weighted(eligible, kept.items(), budget)


def select_equal_shares_scored(
    cands: Iterable[Candidate],
    budget: int,
    min_votes: int,
    ballots: Sequence[Sequence[tuple[str, int]]],
) -> list[str]:
    """Method of Equal Shares over scored ballots (cumulative, ordinal), points as utilities.

    Each candidate's ``votes`` must equal the points the ballots give it (the ranking quantity and
    tie-break). Points for candidates under ``min_votes`` are dropped; their voters keep their share.
    """
    return select_equal_shares_scored_weighted(cands, budget, min_votes, weigh_scored(ballots))


def select_equal_shares_scored_weighted(
    cands: Iterable[Candidate],
    budget: int,
    min_votes: int,
    ballots: Mapping[tuple[tuple[str, int], ...], int],
) -> list[str]:
    """``select_equal_shares_scored`` of each distinct ballot with the number of voters who cast it."""
    validate_amount("budget", budget)
    validate_amount("min_votes", min_votes)
    candidates = order_candidates(cands)
    totals = {candidate.initiative_id: 0 for candidate in candidates}
    for ballot, weight in ballots.items():
        for initiative_id, points in ballot:
            if initiative_id not in totals:
                raise RuleError(f"ballot gives points to unknown initiative {initiative_id!r}")
            totals[initiative_id] += points * weight
    for candidate in candidates:
        if totals[candidate.initiative_id] != candidate.votes:
            raise RuleError(f"initiative {candidate.initiative_id!r}: {candidate.votes} points given but the "
                            f"ballots give it {totals[candidate.initiative_id]}")
    eligible = {c.initiative_id: c.cost for c in candidates if c.votes >= min_votes}
    kept: dict[tuple[tuple[str, int], ...], int] = {}
    for ballot, weight in ballots.items():
        key = tuple((iid, points) for iid, points in ballot if iid in eligible)
        kept[key] = kept.get(key, 0) + weight
    return equal_shares_scored_weighted(eligible, kept.items(), budget)


def count_approvals(candidates: Sequence[Candidate],
                    ballots: Mapping[tuple[str, ...], int]) -> dict[str, int]:
    """Voters approving each candidate (``ballots``: each distinct ballot with its number of
    voters); an id that is no candidate is a RuleError."""
    counts = {candidate.initiative_id: 0 for candidate in candidates}
    for ballot, weight in ballots.items():
        for initiative_id in ballot:
            if initiative_id not in counts:
                raise RuleError(f"ballot approves unknown initiative {initiative_id!r}")
            counts[initiative_id] += weight
    return counts


RuleFunction = Callable[
    [Sequence[Candidate], int | None, int, int, Sequence[Sequence[str]] | None], list[str]
]


def run_top_n(
    cands: Sequence[Candidate], budget: int | None, top_n: int, min_votes: int,
    ballots: Sequence[Sequence[str]] | None,
) -> list[str]:
    return select_top_n(cands, top_n, min_votes, budget)


def run_greedy(
    cands: Sequence[Candidate], budget: int | None, top_n: int, min_votes: int,
    ballots: Sequence[Sequence[str]] | None,
) -> list[str]:
    return select_greedy(cands, require_budget(budget), min_votes)


def run_greedy_no_skip(
    cands: Sequence[Candidate], budget: int | None, top_n: int, min_votes: int,
    ballots: Sequence[Sequence[str]] | None,
) -> list[str]:
    return select_greedy_no_skip(cands, require_budget(budget), min_votes)


def run_equal_shares(
    cands: Sequence[Candidate], budget: int | None, top_n: int, min_votes: int,
    ballots: Sequence[Sequence[str]] | None,
) -> list[str]:
    return select_equal_shares(cands, require_budget(budget), min_votes, ballots)


def require_budget(budget: int | None) -> int:
    if budget is None:
        raise RuleError("this rule needs a budget")
    return budget


RULE_TABLE: Mapping[str, RuleFunction] = {
    RULE_TOP_N: run_top_n,
    RULE_GREEDY: run_greedy,
    RULE_GREEDY_NO_SKIP: run_greedy_no_skip,
    RULE_EQUAL_SHARES: run_equal_shares,
}


def select_winners(
    rule: str,
    cands: Iterable[Candidate],
    *,
    budget: int | None,
    top_n: int = 0,
    min_votes: int = 0,
    ballots: Sequence[Sequence[str]] | None = None,
) -> list[str]:
    """Winners of ``rule`` in selection order.

    ``top_n`` is only meaningful for ``top-n`` (any other rule with ``top_n != 0`` is a
    RuleError, so a misconfigured campaign fails loudly). ``budget=None`` is allowed only for
    ``top-n`` (no budget limit). ``ballots`` is read only by ``equal-shares``.
    """
    run = RULE_TABLE.get(rule) if isinstance(rule, str) else None
    if run is None:
        raise RuleError(f"unknown winner rule {rule!r}; expected one of {', '.join(RULES)}")
    validate_amount("top_n", top_n)
    if top_n and rule != RULE_TOP_N:
        raise RuleError(f"top_n is only valid with the top-n rule, not {rule!r}")
    return run(list(cands), budget, top_n, min_votes, ballots)
