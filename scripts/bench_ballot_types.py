#!/usr/bin/env python3
"""Admission and apply cost of one ballot on one node, per ballot type (approval, knapsack,
cumulative, ordinal, choose-1).

Single process, LevelDB in a temporary directory. Setup (not timed): a one-validator chain with one
campaign per ballot type (2 districts, 10 approved initiatives each; approval 1..3 choices,
knapsack 1..2 within a 500,000-kopeck cap; cumulative 1..3 initiatives and 1..10 points;
ordinal exactly 3 ranks worth 3/2/1), N fresh voter keys registered per campaign and N signed
ballots per type (each from a new key). Timed with ``time.process_time`` in rounds that alternate
the types (so a load spike on a shared box hits them alike):

  admission: strict decode + Ed25519 verify + apply to a check state (the mempool path)
  apply:     build_block of the admitted ballots (no re-verify) + synced commit (the proposer)

Usage: .venv/bin/python scripts/bench_ballot_types.py [--votes 6000] [--rounds 3] [--block-size 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.block import STEP_PRECOMMIT, CommitCertificate, Validator, ValidatorSet, make_certificate, vote_signing_bytes  # noqa: E402,E501
from chain.crypto import SigningKey  # noqa: E402
from chain.ledger import Ledger  # noqa: E402
from chain.params import ChainParams  # noqa: E402
from chain.storage import LevelStore  # noqa: E402
from chain.tx import (  # noqa: E402
    BallotSpec, CampaignCreate, District, InitiativeSubmit, RuleSpec, Tx, decode_tx, make_registration, make_vote,
)

CHAIN_ID = "veche-bench"
T0 = 1_800_000_000_000
DISTRICTS = ("north", "south")
BALLOTS = {
    "choose-1": BallotSpec("choose-1", 1, 1),
    "approval": BallotSpec("approval", 1, 3),
    "knapsack": BallotSpec("knapsack", 1, 3, max_sum_cost=500_000),
    "cumulative": BallotSpec("cumulative", 1, 3, min_sum_points=1, max_sum_points=10),
    "ordinal": BallotSpec("ordinal", 3, 3, rank_points=(3, 2, 1)),
}


def key(label: str) -> SigningKey:
    return SigningKey(hashlib.sha256(b"veche-bench/" + label.encode()).digest())


VALIDATOR, COMMITTEE, GATEWAY = key("validator"), key("committee"), key("gateway")


def initiatives(kind: str, district: str) -> list[str]:
    return [f"{kind}-{district}-{n}" for n in range(5)]


def make_params() -> ChainParams:
    bodies: list[tuple[str, object]] = []
    for kind, ballot in BALLOTS.items():
        bodies.append(("campaign.create", CampaignCreate(
            kind, f"Benchmark {kind}", "adult", tuple(District(d, d.title(), 10**9) for d in DISTRICTS), ballot,
            RuleSpec("greedy", "district", 0, 0, 0), 1, 10**12, (), T0, T0 + 1, T0 + 1, T0 + 10**10,
            GATEWAY.public_key, 10**8, "district")))
        for district in DISTRICTS:
            bodies += [("initiative.submit", InitiativeSubmit(kind, i, district, f"Initiative {i}", "parks",
                                                              100_000 * (n + 1), "", b""))
                       for n, i in enumerate(initiatives(kind, district))]
    return ChainParams(
        chain_id=CHAIN_ID, genesis_time_ms=T0, validators=ValidatorSet((Validator("v0", VALIDATOR.public_key),)),
        committee_keys=frozenset([COMMITTEE.public_key]), committee_threshold=1, district_operators=(),
        gateways=(("gw", GATEWAY.public_key),), genesis_hash=hashlib.sha256(b"bench").digest(),
        initial_bodies=tuple(bodies))


def make_ballot(rng: random.Random, kind: str, voter: SigningKey) -> bytes:
    district = rng.choice(DISTRICTS)
    pool = initiatives(kind, district)
    if kind == "choose-1":
        return make_vote(CHAIN_ID, voter, kind, district, [rng.choice(pool)]).raw
    if kind == "approval":
        return make_vote(CHAIN_ID, voter, kind, district, rng.sample(pool, rng.randint(1, 3))).raw
    if kind == "knapsack":   # costs 100,000 .. 500,000 kopecks: a set within the 500,000 cap
        choices = rng.choice([[pool[0]], [pool[1]], [pool[4]], [pool[0], pool[1]], [pool[0], pool[2]],
                              [pool[0], pool[3]], [pool[1], pool[2]]])
        return make_vote(CHAIN_ID, voter, kind, district, choices).raw
    if kind == "cumulative":
        chosen = rng.sample(pool, rng.randint(1, 3))
        return make_vote(CHAIN_ID, voter, kind, district, chosen, [rng.randint(1, 3) for _ in chosen]).raw
    ranking = rng.sample(pool, 3)
    return make_vote(CHAIN_ID, voter, kind, district, ranking, [3, 2, 1]).raw


class Node:
    def __init__(self, path: Path, params: ChainParams) -> None:
        self.store = LevelStore(path)
        self.ledger = Ledger(self.store, params)
        self.last_commit: CommitCertificate | None = None
        self.clock = T0 + 10

    def propose(self, txs: Sequence[Tx]) -> None:
        self.clock += 1_000
        built = self.ledger.build_block(txs, time_ms=self.clock, round_=0, last_commit=self.last_commit,
                                        checked=lambda _h: True)
        if built.rejected or built.deferred:
            raise SystemExit(f"benchmark setup error: {[(e.code, e.message) for _, e in built.rejected[:3]]}")
        message = vote_signing_bytes(CHAIN_ID, STEP_PRECOMMIT, built.block.height, 0, built.block.hash())
        certificate = make_certificate(built.block.height, 0, built.block.hash(), [(0, VALIDATOR.sign(message))])
        self.ledger.commit(built.block, certificate, built.execution, certificate_checked=True)
        self.last_commit = certificate

    def admit(self, raws: Sequence[bytes]) -> list[Tx]:
        check = self.ledger.state.begin(self.ledger.height + 1, self.clock + 1_000)
        check.begin_block()
        admitted = []
        for raw in raws:
            tx = decode_tx(raw)
            check.apply(tx)
            admitted.append(tx)
        return admitted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=6_000, help="ballots per type")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block-size", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work_dir = Path(tempfile.mkdtemp(prefix="veche-bench-types-"))
    try:
        node = Node(work_dir / "node", make_params())
        print(f"setup: {args.votes} voters and ballots per type ...", flush=True)
        ballots: dict[str, list[bytes]] = {}
        for kind in BALLOTS:
            voters = [SigningKey(os.urandom(32)) for _ in range(args.votes)]
            for start in range(0, args.votes, 1000):
                node.propose([make_registration(CHAIN_ID, GATEWAY, kind, [v.public_key for v in voters[start:start + 1000]])])
            ballots[kind] = [make_ballot(rng, kind, voter) for voter in voters]
        size = {kind: sum(map(len, raws)) / len(raws) for kind, raws in ballots.items()}
        per_round = args.votes // args.rounds
        admit_cpu = dict.fromkeys(BALLOTS, 0.0)
        apply_cpu = dict.fromkeys(BALLOTS, 0.0)
        counted = dict.fromkeys(BALLOTS, 0)
        for round_ in range(args.rounds):
            for kind in BALLOTS:
                raws = ballots[kind][round_ * per_round:(round_ + 1) * per_round]
                for start in range(0, len(raws), args.block_size):
                    chunk = raws[start:start + args.block_size]
                    cpu = time.process_time()
                    admitted = node.admit(chunk)
                    admit_cpu[kind] += time.process_time() - cpu
                    cpu = time.process_time()
                    node.propose(admitted)
                    apply_cpu[kind] += time.process_time() - cpu
                    counted[kind] += len(chunk)
        node.store.close()
        print(f"\n{args.rounds} rounds alternating the types, {args.block_size} ballots per block, LevelDB with "
              "synced commits\n")
        print(f"{'ballot type':<12} {'bytes':>6} {'ballots':>8} {'admission CPU-µs':>17} {'apply CPU-µs':>13} "
              f"{'admitted/s':>11}")
        for kind in BALLOTS:
            admission = 1e6 * admit_cpu[kind] / counted[kind]
            print(f"{kind:<12} {size[kind]:>6.0f} {counted[kind]:>8} {admission:>17.1f} "
                  f"{1e6 * apply_cpu[kind] / counted[kind]:>13.1f} {1e6 / admission:>11,.0f}")
        return 0
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
