#!/usr/bin/env python3
"""How many votes one node admits and applies per core (ARCHITECTURE §7: target ≥ 3,000/s).

Single process on LevelDB in a temporary directory. Setup (not timed): a one-validator chain
with one campaign (2 districts, 10 approved initiatives, approval ballots 1..3), N fresh voter
keys registered by the gateway in batches of 1,000, and N signed ballots (one per voter, each
with a new key, 1–3 choices). Then, timed with ``time.process_time`` (CPU of this process,
LevelDB's background threads included):

  (a)  admission: decode + strict checks + Ed25519 verify + apply to a check state (mempool path)
  (b1) proposer:  build_block from admitted txs (no signature re-check) + synced commit
  (b2) validator: check_block of the raw block (decode again, no signature re-check) + synced commit
  (c1) proposer node, one pass:  (a) then (b1) per block
  (c2) validator node, one pass: (a) then (b2) per block

Usage: .venv/bin/python scripts/bench_admit_apply.py [--votes 20000] [--block-size 2000]
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.block import (  # noqa: E402
    STEP_PRECOMMIT, Block, CommitCertificate, Validator, ValidatorSet, make_certificate, vote_signing_bytes,
)
from chain.crypto import SigningKey, verify  # noqa: E402
from chain.ledger import Ledger  # noqa: E402
from chain.params import ChainParams  # noqa: E402
from chain.storage import LevelStore  # noqa: E402
from chain.tx import (  # noqa: E402
    BallotSpec, CampaignCreate, District, InitiativeSubmit, RuleSpec, Tx, decode_tx, make_registration, make_vote,
)

CHAIN_ID = "veche-bench"
T0 = 1_800_000_000_000
DISTRICTS = ("north", "south")
INITIATIVES = {d: [f"{d}-{n}" for n in range(5)] for d in DISTRICTS}


def key(label: str) -> SigningKey:
    return SigningKey(hashlib.sha256(b"veche-bench/" + label.encode()).digest())


VALIDATOR, COMMITTEE, GATEWAY = key("validator"), key("committee"), key("gateway")


def make_params() -> ChainParams:
    campaign = CampaignCreate(
        "bench", "Benchmark campaign", "adult",
        tuple(District(d, d.title(), 10**9) for d in DISTRICTS), BallotSpec("approval", 1, 3),
        RuleSpec("top-n", "district", 3, 0, 0), 1, 10**12, (), T0, T0 + 1, T0 + 1, T0 + 10**10,
        GATEWAY.public_key, 10**8, "district")
    bodies: list[tuple[str, object]] = [("campaign.create", campaign)]
    for district, ids in INITIATIVES.items():
        bodies += [("initiative.submit", InitiativeSubmit("bench", i, district, f"Initiative {i}", "parks",
                                                          100_000 * (n + 1), "", b""))
                   for n, i in enumerate(ids)]
    return ChainParams(
        chain_id=CHAIN_ID, genesis_time_ms=T0, validators=ValidatorSet((Validator("v0", VALIDATOR.public_key),)),
        committee_keys=frozenset([COMMITTEE.public_key]), committee_threshold=1, district_operators=(),
        gateways=(("gw", GATEWAY.public_key),), genesis_hash=hashlib.sha256(b"bench").digest(),
        initial_bodies=tuple(bodies))


class Node:
    """A ledger on LevelDB plus the last commit certificate (we are the only validator)."""

    def __init__(self, path: Path, params: ChainParams) -> None:
        self.store = LevelStore(path)
        self.ledger = Ledger(self.store, params)
        self.last_commit: CommitCertificate | None = None
        self.clock = T0 + 10

    def certify(self, block: Block) -> CommitCertificate:
        message = vote_signing_bytes(CHAIN_ID, STEP_PRECOMMIT, block.height, 0, block.hash())
        return make_certificate(block.height, 0, block.hash(), [(0, VALIDATOR.sign(message))])

    def next_time(self) -> int:
        self.clock += 1_000
        return self.clock

    def propose(self, txs: Sequence[Tx], checked: Callable[[bytes], bool]) -> tuple[Block, CommitCertificate]:
        built = self.ledger.build_block(txs, time_ms=self.next_time(), round_=0, last_commit=self.last_commit,
                                        checked=checked)
        if built.rejected or built.deferred:
            raise SystemExit(f"benchmark setup error: {len(built.rejected)} rejected, {len(built.deferred)} deferred")
        certificate = self.certify(built.block)
        self.ledger.commit(built.block, certificate, built.execution, certificate_checked=True)
        self.last_commit = certificate
        return built.block, certificate

    def accept(self, block: Block, certificate: CommitCertificate, checked: Callable[[bytes], bool]) -> None:
        execution = self.ledger.check_block(block, checked=checked)
        self.ledger.commit(block, certificate, execution, certificate_checked=True)
        self.last_commit = certificate

    def close(self) -> None:
        self.store.close()


@dataclass
class Row:
    name: str
    votes: int
    cpu_s: float
    wall_s: float

    def line(self) -> str:
        rate = self.votes / self.cpu_s if self.cpu_s else float("inf")
        return (f"{self.name:<52} {self.votes:>7} {self.cpu_s:>8.2f} {self.wall_s:>8.2f} {rate:>10,.0f} "
                f"{1e6 * self.cpu_s / self.votes:>12.1f}")


def timed(name: str, votes: int, work: Callable[[], None]) -> Row:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return Row(name, votes, time.process_time() - cpu, time.perf_counter() - wall)


def admit(node: Node, raws: Sequence[bytes]) -> list[Tx]:
    """The mempool path: strict decode, signature check, apply to a check state."""
    check = node.ledger.state.begin(node.ledger.height + 1, node.clock + 1_000)
    check.begin_block()
    admitted = []
    for raw in raws:
        tx = decode_tx(raw)
        check.apply(tx)  # verifies the signature (signatures_checked=False)
        admitted.append(tx)
    return admitted


def verify_rate(samples: int = 2_000) -> tuple[float, float]:
    keys = [SigningKey(os.urandom(32)) for _ in range(samples)]
    items = [(k.public_key, k.sign(b"m%d" % i), b"m%d" % i) for i, k in enumerate(keys)]
    start = time.process_time()
    for public_key, signature, message in items:
        verify(public_key, signature, message)
    fresh = samples / (time.process_time() - start)
    start = time.process_time()
    for _ in range(samples):
        verify(items[0][0], items[0][1], items[0][2], cache_key=True)
    cached = samples / (time.process_time() - start)
    return fresh, cached


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=20_000)
    parser.add_argument("--block-size", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    votes, block_size = args.votes, args.block_size
    rng = random.Random(args.seed)
    params = make_params()
    work_dir = Path(tempfile.mkdtemp(prefix="veche-bench-"))
    try:
        print(f"setup: {votes} voter keys, registrations, signed ballots ...", flush=True)
        voters = [SigningKey(os.urandom(32)) for _ in range(votes)]
        registrations = [make_registration(CHAIN_ID, GATEWAY, "bench", [v.public_key for v in voters[i:i + 1000]])
                         for i in range(0, votes, 1000)]
        ballots: list[bytes] = []
        for voter in voters:
            district = rng.choice(DISTRICTS)
            choices = rng.sample(INITIATIVES[district], rng.randint(1, 3))
            ballots.append(make_vote(CHAIN_ID, voter, "bench", district, choices).raw)
        average = sum(len(b) for b in ballots) / len(ballots)
        blocks = [ballots[i:i + block_size] for i in range(0, votes, block_size)]

        def fresh_node(name: str) -> Node:
            node = Node(work_dir / name, params)
            for start in range(0, len(registrations), 20):
                node.propose(registrations[start:start + 20], lambda _h: False)
            return node

        rows: list[Row] = []
        # (a) admission, and (b1) the proposer applying what it admitted.
        proposer = fresh_node("proposer")
        admitted_blocks: list[list[Tx]] = []
        rows.append(timed("(a)  admission: decode + verify + check state", votes,
                          lambda: admitted_blocks.extend(admit(proposer, raws) for raws in blocks)))
        committed: list[tuple[Block, CommitCertificate]] = []
        rows.append(timed("(b1) proposer: build_block + commit (no re-verify)", votes,
                          lambda: committed.extend(proposer.propose(txs, lambda _h: True) for txs in admitted_blocks)))
        # (b2) a validator re-executes the raw blocks.
        validator = fresh_node("validator")

        def validator_apply() -> None:
            for block, certificate in committed[-len(blocks):]:
                validator.accept(block, certificate, lambda _h: True)

        rows.append(timed("(b2) validator: check_block + commit (no re-verify)", votes, validator_apply))
        assert validator.ledger.app_hash == proposer.ledger.app_hash

        # (c) one pass per node: admit a block's worth, then apply it.
        proposer_2 = fresh_node("proposer-2")

        def proposer_pass() -> None:
            for raws in blocks:
                proposer_2.propose(admit(proposer_2, raws), lambda _h: True)

        rows.append(timed("(c1) proposer node: (a) + (b1), one pass", votes, proposer_pass))
        validator_2 = fresh_node("validator-2")

        def validator_pass() -> None:
            for raws, (block, certificate) in zip(blocks, committed[-len(blocks):]):
                admit(validator_2, raws)
                validator_2.accept(block, certificate, lambda _h: True)

        rows.append(timed("(c2) validator node: (a) + (b2), one pass", votes, validator_pass))
        assert proposer_2.ledger.app_hash == validator_2.ledger.app_hash == proposer.ledger.app_hash
        tally = sum(proposer.ledger.state.tallies.values())
        for node in (proposer, validator, proposer_2, validator_2):
            node.close()

        fresh, cached = verify_rate()
        print(f"\nEd25519 verify on this machine: {fresh:,.0f}/s with the key loaded from bytes, "
              f"{cached:,.0f}/s with a cached key")
        print(f"{votes} ballots of {average:.0f} bytes on average, {block_size} per block, LevelDB with synced "
              f"commits; {tally} choices counted\n")
        print(f"{'phase':<52} {'votes':>7} {'CPU s':>8} {'wall s':>8} {'votes/s':>10} {'CPU-µs/vote':>12}")
        for row in rows:
            print(row.line())
        return 0
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
