"""Benchmark the Method of Equal Shares: 1,000,000 approval ballots over 300 initiatives.

    .venv/bin/python scripts/bench_equal_shares.py [--voters N] [--initiatives M] [--districts D]
                                                   [--mode district|citywide] [--seed S] [--json]

``district`` (default): initiatives are split over D districts; each voter approves 1-5 initiatives
of their own district, drawn with skewed (Zipf-like) popularity, so many ballots repeat but far
from all. ``citywide``: each voter approves 1-5 of all M initiatives uniformly (almost every ballot
is distinct; the worst case for ballot aggregation). Costs are random kopeck amounts; the budget
is a third of the total cost, split in proportion to the districts. Prints the seconds taken by
``equal_shares`` alone (ballot generation is timed separately).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.equal_shares import aggregate_ballots, equal_shares  # noqa: E402

POPULARITY_SCALE = 720_720  # integer Zipf weights: the r-th initiative of a district weighs 1/r


def generate_costs(rng: random.Random, initiatives: int) -> dict[str, int]:
    """Costs between 100,000 and 15,000,000 roubles, in kopecks, rounded to whole roubles."""
    return {f"i{index:04d}": rng.randint(100_000, 15_000_000) * 100 for index in range(initiatives)}


def generate_district_ballots(
    rng: random.Random, ids: Sequence[str], voters: int, districts: int
) -> list[list[str]]:
    per_district = [list(ids[d::districts]) for d in range(districts)]
    cumulative = [
        list(itertools.accumulate(POPULARITY_SCALE // (rank + 1) for rank in range(len(members))))
        for members in per_district
    ]
    ballots: list[list[str]] = []
    for _ in range(voters):
        district = rng.randrange(districts)
        members, weights = per_district[district], cumulative[district]
        size = min(rng.randint(1, 5), len(members))
        chosen: set[str] = set()
        while len(chosen) < size:
            chosen.add(rng.choices(members, cum_weights=weights)[0])
        ballots.append(sorted(chosen))
    return ballots


def generate_citywide_ballots(rng: random.Random, ids: Sequence[str], voters: int) -> list[list[str]]:
    return [rng.sample(ids, rng.randint(1, 5)) for _ in range(voters)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--voters", type=int, default=1_000_000)
    parser.add_argument("--initiatives", type=int, default=300)
    parser.add_argument("--districts", type=int, default=8)
    parser.add_argument("--mode", choices=("district", "citywide"), default="district")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    costs = generate_costs(rng, args.initiatives)
    ids = sorted(costs)
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
        "generate_seconds": round(generated, 2),
        "aggregate_seconds": round(aggregated, 2),
        "seconds": round(seconds, 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:18} {value}")


if __name__ == "__main__":
    main()
