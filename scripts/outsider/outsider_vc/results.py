"""§8 / §14.5 results, docs/RULES.md: the counting rules, the Method of Equal Shares, result hashes."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from .codec import enc, sha256

if TYPE_CHECKING:
    from .state import Campaign



@dataclass
class Cand:
    iid: str
    district: str
    cost: int
    votes: int
    points: int

    def key(self) -> tuple[int, int, bytes]:
        return (-self.points, self.cost, self.iid.encode())


def counting_rule(name: str, cands: list[Cand], budget: int, top_n: int, min_votes: int) -> list[str]:
    winners: list[str] = []
    remaining = budget
    for c in sorted(cands, key=Cand.key):
        if c.points < min_votes:
            break
        if name == "top-n":
            if top_n and len(winners) >= top_n:
                break
            if budget > 0:
                if c.cost > remaining:
                    continue
                remaining -= c.cost
            winners.append(c.iid)
        elif c.cost <= remaining:
            remaining -= c.cost
            winners.append(c.iid)
        elif name == "greedy-no-skip":
            break
    return winners


def equal_shares(cands: list[Cand], ballots: list[tuple[list[str], list[int] | None]], budget: int,
                 min_votes: int) -> list[str]:
    """Method of Equal Shares (RULES.md): utilities are costs for set ballots, points for scored ones."""
    by_id = {c.iid: c for c in cands}
    live = {c.iid for c in cands if c.points >= min_votes}
    groups: dict[tuple[tuple[str, int], ...], int] = {}
    for choices, points in ballots:
        utilities = tuple((ch, (points[i] if points is not None else by_id[ch].cost))
                          for i, ch in enumerate(choices) if ch in live)
        groups[utilities] = groups.get(utilities, 0) + 1
    n = len(ballots)
    if n == 0:
        return []
    members = list(groups.items())
    money = [Fraction(budget, n) for _ in members]
    supporters: dict[str, list[tuple[int, int, int]]] = {iid: [] for iid in live}   # (group, weight, utility)
    for g, (utilities, weight) in enumerate(members):
        for ch, u in utilities:
            supporters[ch].append((g, weight, u))
    winners: list[str] = []
    remaining = set(live)
    while True:
        best: tuple[Fraction, tuple[int, int, bytes], str] | None = None
        for iid in remaining:
            cost = by_id[iid].cost
            sup = supporters[iid]
            if sum(w * money[g] for g, w, _ in sup) < cost:
                continue
            rest_cost, rest_util = Fraction(cost), sum(w * u for _, w, u in sup)
            rho: Fraction | None = None
            for ratio, g, w, u in sorted((money[g] / u, g, w, u) for g, w, u in sup):
                if ratio * rest_util >= rest_cost:
                    rho = rest_cost / rest_util
                    break
                rest_cost -= w * money[g]
                rest_util -= w * u
            assert rho is not None
            entry = (rho, by_id[iid].key(), iid)
            if best is None or entry[:2] < best[:2]:
                best = entry
        if best is None:
            return winners
        rho, _, iid = best
        for g, _, u in supporters[iid]:
            money[g] -= min(money[g], rho * u)
        winners.append(iid)
        remaining.discard(iid)


def candidates(c: Campaign) -> list[Cand]:
    out = []
    for iid, rec in c.initiatives.items():
        if rec[1] == "approved":
            votes = c.votes.get(iid, 0)
            out.append(Cand(iid, rec[0][2], rec[0][5], votes, c.points.get(iid, 0) if c.scored else votes))
    return out


def select(c: Campaign) -> list[str]:
    name, scope, top_n, min_votes, rule_budget = c.spec[5]
    cands = candidates(c)
    if scope == "campaign":
        if name == "equal-shares":
            return equal_shares(cands, [(ch, p) for _, ch, p in c.ballots], rule_budget, min_votes)
        return counting_rule(name, cands, rule_budget, top_n, min_votes)
    winners: list[str] = []
    for did, _, budget in c.spec[3]:
        mine = [x for x in cands if x.district == did]
        if name == "equal-shares":
            winners += equal_shares(mine, [(ch, p) for d, ch, p in c.ballots if d == did], budget, min_votes)
        else:
            winners += counting_rule(name, mine, budget, top_n, min_votes)
    return winners


def result_hash(c: Campaign, winners: list[str]) -> bytes:
    cands = {x.iid: x for x in candidates(c)}
    districts = []
    for did, _, _ in c.spec[3]:
        ids = sorted((i for i, x in cands.items() if x.district == did), key=lambda s: s.encode())
        rows = [[i, cands[i].votes, cands[i].points] if c.scored else [i, cands[i].votes] for i in ids]
        districts.append([did, rows, [w for w in winners if cands[w].district == did]])
    return sha256(enc(["veche/result/v1", c.cid, c.status, c.total_ballots, districts, winners]))


def compute_result(c: Campaign) -> tuple[list[str], bytes]:
    winners = select(c) if c.status == "closed" else []
    return winners, result_hash(c, winners)

