#!/usr/bin/env python3
"""Benchmark ``veche verify --home``: full replay with every signature checked.

Builds a chain directly with ``Ledger`` + ``LevelStore`` in a temporary node home (real signed
transactions, real commit certificates; keys and ballots made in a process pool), then runs what
``veche verify --home`` runs (``node.verify.verify_home``) in this process, and prints votes per
second and CPU time per vote (the replay plus its signature-checking pool).

    .venv/bin/python scripts/bench_verify.py [--votes 200000] [--block-txs 2000] [--keep DIR] [--set-changes N]

``--set-changes N`` spreads N ``validators.update`` transactions evenly over the ballot blocks, each
replacing one validator by a fresh key (the next blocks are certified by the new set), so the replay
follows N validator set changes (docs/PROTOCOL.md §15).

Target (ARCHITECTURE §7): ≥ 7,000 votes/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chain.crypto import SigningKey  # noqa: E402
from chain.storage import LevelStore  # noqa: E402
from chain.tx import (  # noqa: E402
    MAX_VOTER_KEYS_PER_REGISTRATION, BallotSpec, RuleSpec, Tx, ValidatorEntry, ValidatorsUpdate, decode_tx,
)
from genesis.model import parse_genesis  # noqa: E402
from node.pabulib_io import make_voter_chunk  # noqa: E402
from node.verify import verify_home  # noqa: E402
from tests.transparency.chainkit import ChainBuilder, genesis_document, make_keys  # noqa: E402

VALIDATORS = 7   # one change moves 1 of 7 (the one-third rule); the replay certifies each block with its set

COUNTING, SHARES = "city", "shares"


def ballots_for(votes: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """(campaign, district, choices): three quarters choose-1 over 40 initiatives, a quarter approval."""
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for i in range(votes):
        if i % 4:
            district = "north" if i % 2 else "south"
            out.append((COUNTING, district, (f"{district[0]}{(i * 7919) % 20}",)))
        else:
            first, second = (i * 31) % 20, (i * 17 + 5) % 20
            choices = tuple(sorted({f"e{first}", f"e{second}"}))
            out.append((SHARES, "north", choices))
    return out


def set_change(builder: ChainBuilder, number: int) -> Tx:
    """validators.update: validator-<number> leaves, a fresh key joins (its key added to the builder's)."""
    fresh = SigningKey.generate()
    builder.keys.validators.append(fresh)
    entry = ValidatorEntry(f"replacement-{number}", "committee", fresh.public_key, f"https://replacement-{number}.example")
    return builder.committee_tx("validators.update", ValidatorsUpdate(f"bench: change {number}", (entry,),
                                                                       (f"validator-{number}",)))


def build(home: Path, votes: int, block_txs: int, set_changes: int = 0) -> tuple[int, float]:
    keys = make_keys(validators=VALIDATORS)
    document = genesis_document(keys, chain_id="veche-bench")
    (home / "genesis.json").write_text(json.dumps(document), encoding="utf-8")
    genesis = parse_genesis(document)
    store = LevelStore(home / "data")
    builder = ChainBuilder(store, genesis, keys)
    start = builder.ledger.last_time_ms + 10_000
    setup = [builder.campaign(COUNTING, voting_start=start, voting_end=start + 10**9,
                              rule=RuleSpec("greedy-no-skip", "campaign", 0, 0, 5_000_000), ballots_per_voter="campaign"),
             builder.campaign(SHARES, voting_start=start, voting_end=start + 10**9, ballot=BallotSpec("approval", 1, 3),
                              rule=RuleSpec("equal-shares", "campaign", 0, 0, 3_000_000), ballots_per_voter="campaign")]
    setup += [builder.initiative(COUNTING, f"{d[0]}{n}", d, 100_000 + 10_000 * n) for d in ("north", "south")
              for n in range(20)]
    setup += [builder.initiative(SHARES, f"e{n}", "north", 200_000 + 20_000 * n) for n in range(20)]
    builder.add_block(setup)
    ballots = ballots_for(votes)
    chunk = MAX_VOTER_KEYS_PER_REGISTRATION
    started = time.perf_counter()
    groups: dict[str, list[tuple[str, tuple[str, ...], None]]] = {COUNTING: [], SHARES: []}
    for campaign, district, choices in ballots:
        groups[campaign].append((district, choices, None))  # set ballots: no points
    jobs = [(campaign, part[i:i + chunk]) for campaign, part in groups.items() for i in range(0, len(part), chunk)]
    with ProcessPoolExecutor() as pool:
        made = list(pool.map(make_voter_chunk, ["veche-bench"] * len(jobs), [c for c, _ in jobs], [b for _, b in jobs]))
    registrations = [builder.registration_of(campaign, public_keys) for (campaign, _), (public_keys, _) in zip(jobs, made)]
    time_ms = start
    for i in range(0, len(registrations), 20):
        time_ms += 1000
        builder.add_block(registrations[i:i + 20], time_ms=time_ms)
    raws = [raw for _, votes_made in made for _, raw in votes_made]
    starts = list(range(0, len(raws), block_txs))
    change_at = {starts[(k + 1) * len(starts) // (set_changes + 1)]: k for k in range(set_changes)} if set_changes else {}
    for i in starts:
        txs = [decode_tx(raw) for raw in raws[i:i + block_txs]]
        if i in change_at:
            builder.add_block([set_change(builder, change_at[i])])
        builder.add_block(txs, checked=lambda tx_hash: True)
    builder.add_block([builder.close(COUNTING, "benchmark"), builder.close(SHARES, "benchmark")])
    height = builder.ledger.height
    store.close()
    return height, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=200_000)
    parser.add_argument("--block-txs", type=int, default=2000)
    parser.add_argument("--keep", type=Path, help="build the chain here and keep it (reused if it exists)")
    parser.add_argument("--set-changes", type=int, default=0, help="validator set changes spread over the chain")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="veche-bench-verify-"))
    home = args.keep or scratch / "home"
    try:
        load_before = os.getloadavg()[0]
        if not (home / "data").exists():
            home.mkdir(parents=True, exist_ok=True)
            height, seconds = build(home, args.votes, args.block_txs, args.set_changes)
            print(f"built {args.votes} votes in {height} blocks with {args.set_changes} validator set changes in "
                  f"{seconds:.1f} s (home {home})")
        before = resource.getrusage(resource.RUSAGE_SELF)
        report = verify_home(home)   # what `veche verify --home` runs, in this process to count its CPU
        after = resource.getrusage(resource.RUSAGE_SELF)
        if not report.ok:
            raise SystemExit(f"verify failed: {report.error} (height {report.first_bad_height})")
        main_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        cpu = main_cpu + report.pool_cpu_seconds
        votes = report.votes
        print(f"veche verify --home: {votes} votes, {report.txs} txs, {report.blocks} blocks, "
              f"{args.set_changes} validator set changes, "
              f"{os.cpu_count()} cores, load average before {load_before:.1f}")
        print(f"  {report.seconds:.2f} s -> {report.votes_per_second:,.0f} votes/s")
        print(f"  CPU {cpu:.2f} s = {cpu / votes * 1e6:.0f} CPU-us per vote (replay {main_cpu / votes * 1e6:.0f} + "
              f"signature pool {report.pool_cpu_seconds / votes * 1e6:.0f})")
        print("  campaigns: " + ", ".join(f"{cid} {c.status} {c.total_ballots} ballots matches={c.matches}"
                                         for cid, c in report.campaigns.items()))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
