"""Benchmark the Method of Equal Shares: 1,000,000 approval ballots over 300 initiatives.

    .venv/bin/python scripts/bench_equal_shares.py [--voters N] [--initiatives M] [--districts D]
                                                   [--mode district|citywide] [--seed S] [--json]
                                                   [--as-stored]

``district`` (default): initiatives are split over D districts; each voter approves 1-5 initiatives
of their own district, drawn with skewed (Zipf-like) popularity, so many ballots repeat but far
from all. ``citywide``: each voter approves 1-5 of all M initiatives uniformly (almost every ballot
is distinct; the worst case for ballot aggregation). Costs are random kopeck amounts; the budget
is a third of the total cost, split in proportion to the districts. Prints the seconds taken by
``equal_shares`` alone (ballot generation is timed separately) and the process's peak RSS.

``--as-stored``: what a node's equal-shares worker and ``veche verify`` do instead of holding a list —
each ballot is made as a stored ballot value (``[tx_hash, choices]``), carried in the node's
length-prefixed chunks and merged as it comes (chain/ballot_groups.py); no list of ballots is ever
held. Prints the seconds of merging + counting and the peak RSS; run it and the default in separate
processes to compare memory. ``citywide`` is the worst case for merging (nearly every ballot distinct).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.ballot_groups import BallotGroups, frames  # noqa: E402
from chain.equal_shares import aggregate_ballots, equal_shares, equal_shares_weighted  # noqa: E402
from chain.records import encode_ballot  # noqa: E402

POPULARITY_SCALE = 720_720  # integer Zipf weights: the r-th initiative of a district weighs 1/r


def generate_costs(rng: random.Random, initiatives: int) -> dict[str, int]:
    """Costs between 100,000 and 15,000,000 roubles, in kopecks, rounded to whole roubles."""
    return {f"i{index:04d}": rng.randint(100_000, 15_000_000) * 100 for index in range(initiatives)}


def generate_district_ballots(
    rng: random.Random, ids: Sequence[str], voters: int, districts: int
) -> list[list[str]]:
    return list(iter_district_ballots(rng, ids, voters, districts))


def iter_district_ballots(
    rng: random.Random, ids: Sequence[str], voters: int, districts: int
) -> Iterator[list[str]]:
    per_district = [list(ids[d::districts]) for d in range(districts)]
    cumulative = [
        list(itertools.accumulate(POPULARITY_SCALE // (rank + 1) for rank in range(len(members))))
        for members in per_district
    ]
    for _ in range(voters):
        district = rng.randrange(districts)
        members, weights = per_district[district], cumulative[district]
        size = min(rng.randint(1, 5), len(members))
        chosen: set[str] = set()
        while len(chosen) < size:
            chosen.add(rng.choices(members, cum_weights=weights)[0])
        yield sorted(chosen)


def generate_citywide_ballots(rng: random.Random, ids: Sequence[str], voters: int) -> list[list[str]]:
    return list(iter_citywide_ballots(rng, ids, voters))


def iter_citywide_ballots(rng: random.Random, ids: Sequence[str], voters: int) -> Iterator[list[str]]:
    for _ in range(voters):
        yield rng.sample(ids, rng.randint(1, 5))


def peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def stored_values(ballots: Iterator[Sequence[str]]) -> Iterator[bytes]:
    for number, ballot in enumerate(ballots):
        yield encode_ballot(hashlib.sha256(number.to_bytes(8, "big")).digest(), tuple(ballot))


def run_as_stored(args: argparse.Namespace, rng: random.Random, costs: dict[str, int], budget: int) -> dict[str, object]:
    """Generate, store-encode, frame and merge one ballot at a time; count the merged ballots."""
    ids = sorted(costs)
    if args.mode == "district":
        generated = iter_district_ballots(rng, ids, args.voters, args.districts)
    else:
        generated = iter_citywide_ballots(rng, ids, args.voters)
    started = time.perf_counter()
    groups = BallotGroups(scored=False)
    for chunk in frames(stored_values(generated)):
        groups.add_frames(chunk)
    ballots = groups.ballots()
    voters = groups.voters
    del groups  # as the worker does: only the merged ballots are counted
    merged = time.perf_counter() - started
    started = time.perf_counter()
    winners = equal_shares_weighted(costs, ballots.items(), budget)
    seconds = time.perf_counter() - started
    return {"mode": args.mode, "as_stored": True, "voters": voters, "initiatives": args.initiatives,
            "distinct_contents": len(ballots), "winners": len(winners), "budget": budget,
            "spent": sum(costs[winner] for winner in winners),
            "winners_sha256": hashlib.sha256("\n".join(winners).encode()).hexdigest()[:16],
            "generate_and_merge_seconds": round(merged, 2), "seconds": round(seconds, 2),
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--voters", type=int, default=1_000_000)
    parser.add_argument("--initiatives", type=int, default=300)
    parser.add_argument("--districts", type=int, default=8)
    parser.add_argument("--mode", choices=("district", "citywide"), default="district")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--as-stored", action="store_true",
                        help="merge ballots as a node's worker reads them (no list held); see the module doc")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    costs = generate_costs(rng, args.initiatives)
    ids = sorted(costs)
    if args.as_stored:
        show(run_as_stored(args, rng, costs, sum(costs.values()) // 3), args)
        return
    started = time.perf_counter()
    if args.mode == "district":
        ballots = generate_district_ballots(rng, ids, args.voters, args.districts)
    else:
        ballots = generate_citywide_ballots(rng, ids, args.voters)
    generated = time.perf_counter() - started
    budget = sum(costs.values()) // 3

    started = time.perf_counter()
    distinct = len(aggregate_ballots(costs, ballots).members)
    aggregated = time.perf_counter() - started

    started = time.perf_counter()
    winners = equal_shares(costs, ballots, budget)
    seconds = time.perf_counter() - started
    spent = sum(costs[winner] for winner in winners)

    result = {
        "mode": args.mode,
        "voters": args.voters,
        "initiatives": args.initiatives,
        "distinct_ballots": distinct,
        "winners": len(winners),
        "budget": budget,
        "spent": spent,
        "winners_sha256": hashlib.sha256("\n".join(winners).encode()).hexdigest()[:16],
        "generate_seconds": round(generated, 2),
        "aggregate_seconds": round(aggregated, 2),
        "seconds": round(seconds, 2),
        "peak_rss_mb": peak_rss_mb(),
    }
    show(result, args)


def show(result: dict[str, object], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:18} {value}")


if __name__ == "__main__":
    main()
