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
from chain.tx import make_registration, make_tokens_issued, make_vote
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


def make_batch(plan: BallotPlan, voters: int, seed: int | None = None, tokens: Path | None = None) -> list[bytes]:
    """``[registration, ballot, ballot, ...]`` for ``voters`` fresh voter keys; with ``tokens`` (the
    gateway's certification key file) voter-held ballots instead: ``[tokens.issued, ballot, ...]``, each
    ballot carrying a token (made with the private key directly: the same bytes a blind signature
    unblinds to)."""
    rng = random.Random(seed)
    gateway = SigningKey(plan.gateway_seed)
    keys = [SigningKey(os.urandom(32)) for _ in range(voters)]
    if tokens is not None:
        return _token_batch(plan, gateway, keys, rng, seed or 0, tokens)
    registration = make_registration(plan.chain_id, gateway, plan.campaign_id, [k.public_key for k in keys])
    ballots = []
    for key in keys:
        district, initiatives = plan.districts[rng.randrange(len(plan.districts))]
        ballots.append(make_vote(plan.chain_id, key, plan.campaign_id, district, [rng.choice(initiatives)]).raw)
    return [registration.raw, *ballots]


def _token_batch(plan: BallotPlan, gateway: SigningKey, keys: list[SigningKey], rng: random.Random, seed: int,
                 key_file: Path) -> list[bytes]:
    from chain.blind import emsa_pss_encode, token_message
    from chain.crypto import read_rsa_key_file
    from gateway.certifier import Certifier

    certifier = Certifier(read_rsa_key_file(key_file))
    bits = certifier.key.n.bit_length()
    issued = make_tokens_issued(plan.chain_id, gateway, plan.campaign_id, seed, len(keys))
    ballots = []
    for key in keys:
        encoded = emsa_pss_encode(token_message(plan.chain_id, plan.campaign_id, key.public_key), bits - 1,
                                  os.urandom(48))
        token = certifier.blind_sign(encoded)
        district, initiatives = plan.districts[rng.randrange(len(plan.districts))]
        ballots.append(make_vote(plan.chain_id, key, plan.campaign_id, district, [rng.choice(initiatives)],
                                 token=token).raw)
    return [issued.raw, *ballots]


def make_batches(plan: BallotPlan, total_voters: int, batch_voters: int = 500,
                 processes: int = 1, tokens: Path | None = None) -> list[list[bytes]]:
    sizes = [min(batch_voters, total_voters - start) for start in range(0, total_voters, batch_voters)]
    if processes <= 1 or len(sizes) < 2:
        return [make_batch(plan, size, seed, tokens) for seed, size in enumerate(sizes)]
    with ProcessPoolExecutor(processes) as pool:
        return list(pool.map(make_batch, [plan] * len(sizes), sizes, range(len(sizes)), [tokens] * len(sizes)))


def encode_batch(raws: Sequence[bytes]) -> bytes:
    return codec.encode(list(raws))
