"""Signed ballots for node tests and the network benchmarks (real signing path: chain.tx builders).

A ``BallotPlan`` names an open choose-1 or approval campaign of a genesis file and, per district,
the initiatives a ballot may pick. ``make_batches`` creates fresh voter keys, one registration per
batch signed by the campaign's gateway key (``DIR/gateway/gateway-key.json``), then one ballot per
voter — registration first, so a whole batch can go in one POST.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from chain import codec
from chain.crypto import SigningKey, read_key_file
from chain.tx import make_registration, make_vote
from genesis.model import Genesis, load_genesis


@dataclass(frozen=True)
class BallotPlan:
    chain_id: str
    campaign_id: str
    districts: tuple[tuple[str, tuple[str, ...]], ...]  # (district, initiative ids)
    gateway_seed: bytes


def demo_plan(directory: Path, campaign_id: str | None = None) -> BallotPlan:
    """The plan for a testnet made with ``init_testnet(..., demo=True)``: its adult campaign by default."""
    genesis: Genesis = load_genesis(directory / "genesis.json")
    gateway = read_key_file(directory / "gateway" / "gateway-key.json")
    campaigns = genesis.document.get("campaigns", [])
    chosen = next(c for c in campaigns if campaign_id is None or c["campaign_id"] == campaign_id)
    by_district: dict[str, list[str]] = {}
    for initiative in genesis.document.get("initiatives", []):
        if initiative["campaign_id"] == chosen["campaign_id"]:
            by_district.setdefault(initiative["district_id"], []).append(initiative["initiative_id"])
    districts = tuple((d, tuple(ids)) for d, ids in sorted(by_district.items()) if ids)
    return BallotPlan(genesis.chain_id, chosen["campaign_id"], districts, gateway.seed)


def make_batch(plan: BallotPlan, voters: int, seed: int | None = None) -> list[bytes]:
    """``[registration, ballot, ballot, ...]`` for ``voters`` fresh voter keys."""
    rng = random.Random(seed)
    gateway = SigningKey(plan.gateway_seed)
    keys = [SigningKey(os.urandom(32)) for _ in range(voters)]
    registration = make_registration(plan.chain_id, gateway, plan.campaign_id, [k.public_key for k in keys])
    ballots = []
    for key in keys:
        district, initiatives = plan.districts[rng.randrange(len(plan.districts))]
        ballots.append(make_vote(plan.chain_id, key, plan.campaign_id, district, [rng.choice(initiatives)]).raw)
    return [registration.raw, *ballots]


def make_batches(plan: BallotPlan, total_voters: int, batch_voters: int = 500,
                 processes: int = 1) -> list[list[bytes]]:
    sizes = [min(batch_voters, total_voters - start) for start in range(0, total_voters, batch_voters)]
    if processes <= 1 or len(sizes) < 2:
        return [make_batch(plan, size, seed) for seed, size in enumerate(sizes)]
    with ProcessPoolExecutor(processes) as pool:
        return list(pool.map(make_batch, [plan] * len(sizes), sizes, range(len(sizes))))


def encode_batch(raws: Sequence[bytes]) -> bytes:
    return codec.encode(list(raws))
