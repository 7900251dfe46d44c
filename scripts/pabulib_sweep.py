"""Run Veche's pabulib parser and winner rules over a whole collection of pabulib files, offline.

    .venv/bin/python scripts/pabulib_sweep.py DIR [--jobs N] [--json] [--limit N]

DIR is any checkout of the public repository pabulib/pabulib_files (or any folder: every ``*.pb``
below it is read). For each file: does ``chain.pabulib`` parse it (and what did it normalise);
do the ballots add up to the file's ``votes`` column (and, for cumulative and ordinal ballots, to
its ``score`` column); and does the file's rule, run by ``chain.rules`` / ``chain.equal_shares*``
on the file's own budget, costs and ballots, select exactly the projects the file marks
``selected = 1`` (2 and 3 mark projects funded outside the rule). Prints a table per vote type
and rule, then every file that departs from its rule with the reason found, and every file the
parser refuses with its error. Rules are mapped as ``veche pabulib import`` maps them
(``node/pabulib/plan.py``); ``unknown`` rules are not compared.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.equal_shares import equal_shares  # noqa: E402
from chain.equal_shares_scored import equal_shares_scored  # noqa: E402
from chain.errors import PabulibError, VecheError  # noqa: E402
from chain.pabulib import Amount, PbFile, compute_scores, compute_vote_counts, read_pb  # noqa: E402
from chain.rules import Candidate, get_tie_break_key, select_winners  # noqa: E402

# the file's rule -> (what we run, how the selection is compared)
RULES = {
    "greedy": "greedy", "greedy-threshold": "greedy", "greedy-exclusive": "greedy",
    "greedy-no-skip": "greedy-no-skip", "greedy-custom": "greedy-no-skip",
    "equalshares": "equal-shares", "equalshares/add1": "equal-shares/add1",
    "equalshares/add1-comparison": "equal-shares/add1",
}
PLACEHOLDER_COST = 99_999_999


@dataclass
class FileResult:
    name: str
    vote_type: str = "?"
    rule: str = "?"
    parsed: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    counts_comparable: bool = False
    counts_equal: bool | None = None
    scores_comparable: bool = False
    scores_equal: bool | None = None
    selection_comparable: bool = False
    selection_reproduced: bool | None = None
    departure: str | None = None
    count_difference: str | None = None
    comment: str | None = None
    seconds: float = 0.0


def scale_of(amounts: Iterable[Amount]) -> int:
    """The least multiplier that makes every amount a whole number (rules take ints)."""
    scale = 1
    for amount in amounts:
        scale = math.lcm(scale, Fraction(amount).denominator)
    return scale


def run_rule(pb: PbFile, rule: str, scores: dict[str, Amount]) -> list[str]:
    """The file's rule on the file's data: ranking by points (votes for approval), exact amounts."""
    money = scale_of([pb.budget, *(p.cost for p in pb.projects)])
    points = scale_of(scores.values())
    threshold = Fraction(pb.get_meta_amount("min_project_score_threshold") or 0)
    candidates = [Candidate(p.project_id, int(p.cost * money), int(scores[p.project_id] * points))
                  for p in pb.projects]
    budget = int(pb.budget * money)
    min_votes = math.ceil(threshold * points)
    if rule in ("greedy", "greedy-no-skip"):
        return select_winners(rule, candidates, budget=budget, min_votes=min_votes)
    costs = {c.initiative_id: c.cost for c in candidates if c.votes >= min_votes}
    if pb.scored:
        if rule != "equal-shares":
            raise VecheError(f"{rule} over {pb.vote_type} ballots is not a Veche rule")
        ballots = [[(c, int(p * points)) for c, p in zip(v.choices, given) if c in costs]
                   for v, given in zip(pb.votes, pb.get_all_ballot_points())]
        return equal_shares_scored(costs, ballots, budget)
    approvals = [[c for c in v.choices if c in costs] for v in pb.votes]
    if rule == "equal-shares":
        return equal_shares(costs, approvals, budget)
    return equal_shares(costs, approvals, budget, completion="add1", budget_increment=money)


def explain_departure(pb: PbFile, rule: str, ours: Sequence[str], scores: dict[str, Amount]) -> str:
    """Why the file's selection is not what its rule gives on its data (the first reason that fits)."""
    official = {p.project_id for p in pb.projects if p.selected_by_rule}
    cost = {p.project_id: p.cost for p in pb.projects}
    chosen = set(ours)
    if pb.rule == "equalshares/add1-comparison":
        return "the rule is a comparison variant (equalshares/add1-comparison), not one that decided the result"
    if sum(cost[p] for p in official) > pb.budget:
        return f"the official selection costs {sum(cost[p] for p in official)}, more than the budget {pb.budget}"
    extra, missing = sorted(chosen - official), sorted(official - chosen)
    tied = [(a, b) for a in extra for b in missing if scores[a] == scores[b]]
    if tied and len(extra) == len(missing):
        a, b = tied[0]
        return (f"a tie at the cut broken the other way: {a} and {b} both have {scores[a]} "
                f"{'points' if pb.scored else 'votes'} (the file selects {b}, cost {cost[b]} vs {cost[a]})")
    placeholder = [p for p in extra + missing if cost[p] >= PLACEHOLDER_COST]
    if placeholder:
        return f"a placeholder cost: project {placeholder[0]} costs {cost[placeholder[0]]}"
    if rule in ("greedy", "greedy-no-skip"):
        return explain_greedy(pb, rule, official, scores, cost)
    return f"the rule gives +{extra} −{missing}"


def explain_greedy(pb: PbFile, rule: str, official: set[str], scores: dict[str, Amount],
                   cost: dict[str, Amount]) -> str:
    """Walk the ranking: the first project where the file's selection leaves the greedy path."""
    ranking = sorted(pb.projects, key=lambda p: (-scores[p.project_id], p.cost, p.project_id.encode()))
    left = Fraction(pb.budget)
    stopped: str | None = None
    for project in ranking:
        pid = project.project_id
        fits = cost[pid] <= left and stopped is None
        if pid in official and not fits:
            if stopped is not None and cost[stopped] >= PLACEHOLDER_COST:
                return (f"a placeholder cost: the rule stops at project {stopped} (cost {cost[stopped]}, a withdrawn "
                        f"project), the file skips it and selects {pid}")
            why = f"after the rule stopped at project {stopped}, which did not fit" if stopped is not None else \
                f"though only {left} of the budget was left"
            return f"project {pid} (cost {cost[pid]}) is selected {why}"
        if pid not in official and fits:
            if pb.rule == "greedy-exclusive":
                return f"project {pid} fits but is left out: it excludes a selected project (greedy-exclusive)"
            return f"project {pid} fits the budget left ({left} ≥ {cost[pid]}) but is not selected"
        if pid in official:
            left -= cost[pid]
        elif rule == "greedy-no-skip" and cost[pid] > left and stopped is None:
            stopped = pid
    return "the selection differs from the greedy path in its ordering"


def explain_counts(pb: PbFile, counts: dict[str, int], scores: dict[str, Amount]) -> str:
    """Why the ballots do not add up to the file's votes or score column (the first reason that fits)."""
    reasons = []
    if any(p.votes != counts[p.project_id] for p in pb.projects):
        repeats = Counter(choice for vote in pb.votes for choice in vote.repeated)
        namings = sum(repeats.values())
        if repeats and all(p.votes == counts[p.project_id] + repeats[p.project_id] for p in pb.projects):
            reasons.append(f"the votes column counts a project each time a vote names it ({namings} repeated "
                           "namings); Veche counts a project once per vote")
        else:
            wrong = [p.project_id for p in pb.projects if p.votes != counts[p.project_id]]
            reasons.append(f"the votes column differs for {len(wrong)} projects (first {wrong[0]})")
    if pb.scored and any(p.score is not None and p.score != scores[p.project_id] for p in pb.projects):
        own_length: Counter[str] = Counter()
        for vote in pb.votes:
            for rank, choice in enumerate(vote.choices):
                own_length[choice] += len(vote.choices) - rank
        if pb.vote_type == "ordinal" and all(p.score == own_length[p.project_id] for p in pb.projects):
            reasons.append("the score column counts each ranking from its own length down to 1, not from "
                           f"max_length ({pb.max_length or 'absent'}) as the format's default")
        elif any(vote.repeated for vote in pb.votes):
            reasons.append("the score column also counts the repeated namings")
        else:
            wrong = [p.project_id for p in pb.projects if p.score != scores[p.project_id]]
            reasons.append(f"the score column differs for {len(wrong)} projects (first {wrong[0]})")
    return "; ".join(reasons)


def check_file(path: Path) -> FileResult:
    started = time.perf_counter()
    result = FileResult(path.name)
    try:
        pb = read_pb(path)
    except PabulibError as exc:
        result.error = exc.message
        result.seconds = time.perf_counter() - started
        return result
    result.parsed = True
    result.notes = list(pb.notes)
    result.vote_type, result.rule = pb.vote_type, pb.rule
    result.comment = pb.meta_get("comment")
    try:
        counts = compute_vote_counts(pb)
        scores = compute_scores(pb)
        if all(p.votes is not None for p in pb.projects):
            result.counts_comparable = True
            result.counts_equal = all(p.votes == counts[p.project_id] for p in pb.projects)
        if pb.scored and all(p.score is not None for p in pb.projects):
            result.scores_comparable = True
            result.scores_equal = all(p.score == scores[p.project_id] for p in pb.projects)
        if result.counts_equal is False or result.scores_equal is False:
            result.count_difference = explain_counts(pb, counts, scores)
        rule = RULES.get(pb.rule)
        if rule is not None and pb.projects and all(p.selected is not None for p in pb.projects):
            result.selection_comparable = True
            ours = run_rule(pb, rule, scores)
            result.selection_reproduced = set(ours) == {p.project_id for p in pb.projects if p.selected_by_rule}
            if not result.selection_reproduced:
                result.departure = explain_departure(pb, rule, ours, scores)
    except VecheError as exc:
        result.departure = f"could not run: {exc.message}"
        result.selection_reproduced = False
    result.seconds = time.perf_counter() - started
    return result


def summarise(results: Sequence[FileResult]) -> dict[tuple[str, str], Counter[str]]:
    table: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for result in results:
        row = table[(result.vote_type, result.rule)] if result.parsed else table[("(refused)", "")]
        row["files"] += 1
        row["parsed"] += result.parsed
        row["counts comparable"] += result.counts_comparable
        row["counts equal"] += bool(result.counts_equal)
        row["scores comparable"] += result.scores_comparable
        row["scores equal"] += bool(result.scores_equal)
        row["selection comparable"] += result.selection_comparable
        row["selection reproduced"] += bool(result.selection_reproduced)
        row["normalised"] += bool(result.notes)
    return table


COLUMNS = ("files", "parsed", "normalised", "counts comparable", "counts equal", "scores comparable", "scores equal",
           "selection comparable", "selection reproduced")


def print_report(results: Sequence[FileResult], seconds: float) -> None:
    table = summarise(results)
    print("| vote type | rule | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    total: Counter[str] = Counter()
    for (vote_type, rule), row in sorted(table.items()):
        total.update(row)
        print(f"| {vote_type} | {rule} | " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    print("| **all** | | " + " | ".join(f"**{total[c]}**" for c in COLUMNS) + " |")
    departures = [r for r in results if r.selection_reproduced is False]
    print(f"\nFiles whose selection departs from their stated rule ({len(departures)}):")
    for result in sorted(departures, key=lambda r: r.name):
        comment = f" — the file's comment: “{shorten(result.comment)}”" if result.comment else ""
        print(f"- {result.name} ({result.vote_type}, {result.rule}): {result.departure}{comment}")
    unequal = [r for r in results if r.counts_equal is False or r.scores_equal is False]
    print(f"\nFiles whose ballots do not add up to their votes/score columns ({len(unequal)}):")
    for result in sorted(unequal, key=lambda r: r.name):
        print(f"- {result.name} ({result.vote_type}, {result.rule}): {result.count_difference}")
    refused = [r for r in results if not r.parsed]
    print(f"\nFiles the parser refuses ({len(refused)}):")
    for result in sorted(refused, key=lambda r: r.name):
        print(f"- {result.name}: {result.error}")
    kinds: dict[str, list[str]] = defaultdict(list)
    for result in results:
        for note in result.notes:
            kinds[note.split(":")[0]].append(result.name)
    print("\nWhat the parser normalised:")
    for kind, names in sorted(kinds.items(), key=lambda item: -len(item[1])):
        print(f"- {kind}: {len(names)} files ({', '.join(names)})")
    print(f"\n{len(results)} files in {seconds:.0f} s")


def shorten(text: str | None, limit: int = 220) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="a checkout of pabulib/pabulib_files (or any folder of .pb files)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--limit", type=int, default=0, help="only the first N files (by name)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file instead of the report")
    args = parser.parse_args(argv)
    paths = sorted(args.directory.rglob("*.pb"), key=lambda p: p.name)
    if args.limit:
        paths = paths[:args.limit]
    if not paths:
        print(f"no .pb files under {args.directory}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    biggest_first = sorted(paths, key=lambda p: -p.stat().st_size)   # keep both workers busy to the end
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(check_file, biggest_first, chunksize=1))
    results.sort(key=lambda r: r.name)
    if args.json:
        for result in results:
            print(json.dumps(asdict(result), ensure_ascii=False))
    else:
        print_report(results, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
