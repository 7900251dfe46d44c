#!/usr/bin/env python3
"""Benchmark: time from a campaign's close to its published result, at 1,000,000 ballots.

Builds the state of a campaign with 300 initiatives in 8 districts and N ballots (default
1,000,000) in a LevelDB store, block by block through ``State``/``Execution`` exactly as the
ledger applies them, but without signatures (transaction objects are made directly; signature
checks are measured by scripts/bench_verify.py). Ballots: each voter approves 1-5 initiatives of
one district with Zipf-like popularity (the generator of scripts/bench_equal_shares.py).

Then it times
  * counting rules (greedy here): the closing block — ``begin_block`` closes the campaign at its
    deadline and computes winners and result hash from the vote counts, ``finish`` hashes the
    changes, the batch is written with sync — plus building the public tally document;
  * equal shares over the same ballots (the campaign's rule swapped for equal-shares, district
    scope): ``chain.results.compute_equal_shares_result``, which reads every ballot from the store,
    runs the Method of Equal Shares per district and hashes the result (off the block-apply path).

    .venv/bin/python scripts/bench_results.py [--votes 1000000] [--initiatives 300] [--districts 8]

Targets (ARCHITECTURE §7): counting ≤ 1 s, equal shares ≤ 60 s.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_equal_shares import generate_costs, generate_district_ballots  # noqa: E402

from chain.crypto import SigningKey  # noqa: E402
from chain.params import ChainParams  # noqa: E402
from chain.block import Validator, ValidatorSet  # noqa: E402
from chain.records import STATUS_CLOSED  # noqa: E402
from chain.results import compute_equal_shares_result, tally_document  # noqa: E402
from chain.state import State  # noqa: E402
from chain.storage import LevelStore  # noqa: E402
from chain.tx import (  # noqa: E402
    BallotSpec, CampaignCreate, District, InitiativeSubmit, RuleSpec, Tx, VoteCast, VotersRegister,
)

CHAIN_ID = "veche-bench-results"
CAMPAIGN = "city"
NO_SIGNATURE = b"\x00" * 64
BLOCK_TXS = 5000
REGISTRATION_BATCH = 1024


class Hashes:
    """Distinct 32-byte tx hashes (the state machine only needs them unique)."""

    def __init__(self) -> None:
        self.counter = 0

    def next(self) -> bytes:
        self.counter += 1
        return self.counter.to_bytes(32, "big")


def unsigned(kind: str, body: object, signer: bytes, hashes: Hashes) -> Tx:
    return Tx(kind, CHAIN_ID, body, ((signer, NO_SIGNATURE),), b"", hashes.next())


def make_params(committee: bytes, gateway: bytes) -> ChainParams:
    validator = Validator("validator-0", SigningKey.generate().public_key)
    return ChainParams(chain_id=CHAIN_ID, genesis_time_ms=1_000_000, validators=ValidatorSet((validator,)),
                       committee_keys=frozenset({committee}), committee_threshold=1, district_operators=(),
                       gateways=(("gateway", gateway),))


class StateBuilder:
    def __init__(self, store: LevelStore, params: ChainParams) -> None:
        self.store = store
        self.state = State(store, params)
        self.height = 0
        self.time_ms = params.genesis_time_ms

    def block(self, txs: list[Tx], *, time_ms: int | None = None, sync: bool = False) -> float:
        """Apply one block; return the seconds it took (apply, hash, write, adopt)."""
        started = time.perf_counter()
        self.height += 1
        self.time_ms = time_ms if time_ms is not None else self.time_ms + 1000
        execution = self.state.begin(self.height, self.time_ms)
        execution.begin_block()
        for tx in txs:
            execution.apply(tx, signatures_checked=True)
        writes, _ = execution.finish()
        self.store.write(writes, sync=sync)
        self.state.apply_changes(execution)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--initiatives", type=int, default=300)
    parser.add_argument("--districts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    costs = generate_costs(rng, args.initiatives)
    ids = sorted(costs)
    district_ids = [f"d{d}" for d in range(args.districts)]
    district_of = {iid: district_ids[index % args.districts] for index, iid in enumerate(ids)}
    budgets = {d: sum(c for iid, c in costs.items() if district_of[iid] == d) // 3 for d in district_ids}
    started = time.perf_counter()
    ballots = generate_district_ballots(rng, ids, args.votes, args.districts)
    print(f"generated {len(ballots):,} ballots over {args.initiatives} initiatives in "
          f"{time.perf_counter() - started:.1f} s")

    scratch = Path(tempfile.mkdtemp(prefix="veche-bench-results-"))
    store = LevelStore(scratch / "data")
    try:
        committee, gateway = os.urandom(32), os.urandom(32)
        hashes = Hashes()
        builder = StateBuilder(store, make_params(committee, gateway))
        voting_start = builder.time_ms + 10_000
        voting_end = voting_start + 10**9
        spec = CampaignCreate(
            CAMPAIGN, "Benchmark city", "adult", tuple(District(d, d, budgets[d]) for d in district_ids),
            BallotSpec("approval", 1, 5), RuleSpec("greedy", "district", 0, 0, 0), 1, 2**62, (), builder.time_ms,
            voting_start, voting_start, voting_end, gateway, args.votes, "campaign")
        setup = [unsigned("campaign.create", spec, committee, hashes)]
        setup += [unsigned("initiative.submit", InitiativeSubmit(CAMPAIGN, iid, district_of[iid], f"Initiative {iid}",
                                                                 "parks", costs[iid], "", b""), committee, hashes)
                  for iid in ids]
        builder.block(setup)

        started = time.perf_counter()
        voters = [os.urandom(32) for _ in range(len(ballots))]
        pending: list[Tx] = []
        time_ms = voting_start
        for start in range(0, len(voters), REGISTRATION_BATCH):
            pending.append(unsigned("voters.register",
                                    VotersRegister(CAMPAIGN, tuple(voters[start:start + REGISTRATION_BATCH])),
                                    gateway, hashes))
        for start in range(0, len(pending), 50):
            time_ms += 1000
            builder.block(pending[start:start + 50], time_ms=time_ms)
        for start in range(0, len(ballots), BLOCK_TXS):
            txs = [unsigned("vote.cast", VoteCast(CAMPAIGN, district_of[ballot[0]], tuple(ballot)), voter, hashes)
                   for voter, ballot in zip(voters[start:start + BLOCK_TXS], ballots[start:start + BLOCK_TXS])]
            builder.block(txs)
        campaign = builder.state.campaigns[CAMPAIGN]
        print(f"applied {campaign.total_ballots:,} ballots in {builder.height} blocks in "
              f"{time.perf_counter() - started:.1f} s (state in LevelDB at {scratch})")

        # --- counting rule: the block at the deadline closes the campaign and decides it ---------
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        close_seconds = builder.block([], time_ms=voting_end, sync=True)
        closed = builder.state.campaigns[CAMPAIGN]
        if closed.status != STATUS_CLOSED or CAMPAIGN not in builder.state.results:
            raise SystemExit("the campaign did not close at its deadline")
        started = time.perf_counter()
        document = tally_document(builder.state, closed, builder.height, builder.state.results[CAMPAIGN])
        tally_seconds = time.perf_counter() - started
        print(f"counting rule (greedy, {args.districts} districts): closing block {close_seconds * 1000:.0f} ms "
              f"+ tally document {tally_seconds * 1000:.0f} ms = {(close_seconds + tally_seconds) * 1000:.0f} ms "
              f"for {closed.total_ballots:,} ballots; {len(document['winners'])} winners (target <= 1000 ms)")

        # --- equal shares over the same ballots, off the apply path --------------------------------
        shares = replace(closed, spec=replace(closed.spec, rule=RuleSpec("equal-shares", "district", 0, 0, 0)))
        started = time.perf_counter()
        winners, digest = compute_equal_shares_result(builder.state, store, shares)
        es_seconds = time.perf_counter() - started
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"equal shares ({args.initiatives} initiatives, {args.districts} districts): {es_seconds:.1f} s for "
              f"{closed.total_ballots:,} ballots read from the store; {len(winners)} winners, result "
              f"{digest.hex()[:16]}… (target <= 60 s)")
        print(f"peak RSS {rss / 1024:.0f} MB (before the close {rss_before / 1024:.0f} MB)")
    finally:
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
