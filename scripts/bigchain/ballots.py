"""Signed registrations and ballots for the big chain (runs in the worker processes).

Each voter has a fresh Ed25519 key; the campaign's gateway registers the keys (``voters.register``,
at most 1,024 per transaction) and each voter signs one ballot (``vote.cast``) through the real
builders of ``chain.tx``. The choices follow the campaign's ballot type: choose-1, approval of
1..3, knapsack within the district budget, cumulative points. Districts are picked by weight,
initiatives by a Zipf-like popularity.
"""

from __future__ import annotations

import bisect
import itertools
import os
import random
from collections.abc import Sequence

from chain.crypto import SigningKey
from chain.tx import MAX_VOTER_KEYS_PER_REGISTRATION, make_registration, make_vote

from bigchain.plan import BallotShape

_cumulative: dict[str, tuple[list[float], list[list[float]]]] = {}


def _weights(shape: BallotShape) -> tuple[list[float], list[list[float]]]:
    """Cumulative district weights and, per district, cumulative initiative popularity (cached)."""
    cached = _cumulative.get(shape.campaign_id)
    if cached is None:
        districts = list(itertools.accumulate(row[1] for row in shape.districts))
        initiatives = [list(itertools.accumulate(row[3])) for row in shape.districts]
        cached = (districts, initiatives)
        _cumulative[shape.campaign_id] = cached
    return cached


def _pick(cumulative: Sequence[float], rng: random.Random) -> int:
    return min(len(cumulative) - 1, bisect.bisect_right(cumulative, rng.random() * cumulative[-1]))


def choose(shape: BallotShape, rng: random.Random) -> tuple[str, list[str], list[int] | None]:
    """(district, choices, points or None) of one ballot."""
    districts, initiatives = _weights(shape)
    row_index = _pick(districts, rng)
    district_id, _, ids, _, costs = shape.districts[row_index]
    wanted = rng.randint(shape.min_choices, min(shape.max_choices, len(ids)))
    picked: list[int] = []
    tries = 0
    while len(picked) < wanted and tries < 50:
        tries += 1
        index = _pick(initiatives[row_index], rng)
        if index not in picked:
            picked.append(index)
    if shape.type == "knapsack":
        cap = shape.max_sum_cost or shape.budgets[row_index]
        kept: list[int] = []
        total = 0
        for index in picked:
            if total + costs[index] <= cap:
                kept.append(index)
                total += costs[index]
        if not kept:
            kept = [min(range(len(ids)), key=lambda i: costs[i])]
        picked = kept
    choices = [ids[i] for i in picked]
    if shape.type != "cumulative":
        return district_id, choices, None
    # cumulative: every choice gets 1..max_points, the total stays within max_sum_points
    limit = shape.max_points or shape.max_sum_points
    points = [1] * len(choices)
    spare = rng.randint(0, shape.max_sum_points - len(choices))
    for _ in range(spare):
        slot = rng.randrange(len(choices))
        if points[slot] < limit:
            points[slot] += 1
    return district_id, choices, points


def make_part(chain_id: str, gateway_seed: bytes, shape: BallotShape, count: int, seed: int) -> list[bytes]:
    """``count`` fresh voters of one campaign: their registrations first, then their ballots."""
    rng = random.Random(seed)
    gateway = SigningKey(gateway_seed)
    keys = [SigningKey(os.urandom(32)) for _ in range(count)]
    raws: list[bytes] = []
    for start in range(0, count, MAX_VOTER_KEYS_PER_REGISTRATION):
        chunk = keys[start:start + MAX_VOTER_KEYS_PER_REGISTRATION]
        raws.append(make_registration(chain_id, gateway, shape.campaign_id, [k.public_key for k in chunk]).raw)
    for key in keys:
        district_id, choices, points = choose(shape, rng)
        raws.append(make_vote(chain_id, key, shape.campaign_id, district_id, choices, points).raw)
    return raws


def make_block_parts(chain_id: str, gateway_seed: bytes, parts: list[tuple[BallotShape, int]],
                     seed: int) -> list[bytes]:
    """One block's transactions: a part per campaign (registrations before that campaign's ballots)."""
    out: list[bytes] = []
    for number, (shape, count) in enumerate(parts):
        out.extend(make_part(chain_id, gateway_seed, shape, count, seed * 16 + number))
    return out
