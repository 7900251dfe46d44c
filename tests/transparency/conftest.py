from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from chain.crypto import SigningKey
from chain.storage import LevelStore
from chain.tx import BallotSpec, RuleSpec, Tx, make_vote
from genesis.model import Genesis, parse_genesis
from tests.transparency.chainkit import ChainBuilder, Keys, genesis_document, make_keys

VOTERS = 700


@dataclass
class BuiltChain:
    """A node home (genesis.json + data/) holding a chain with real traffic."""

    home: Path
    genesis: Genesis
    keys: Keys
    height: int
    votes: int
    vote_heights: list[int]
    voters: list[SigningKey]

    def copy(self, target: Path) -> Path:
        shutil.copytree(self.home, target)
        return target


def build_chain(home: Path) -> BuiltChain:
    """Three campaigns (greedy by district; equal shares over the campaign; equal shares over
    cumulative ballots — points as utilities), 700 ballots each, closes."""
    keys = make_keys()
    document = genesis_document(keys)
    home.mkdir(parents=True)
    (home / "genesis.json").write_text(json.dumps(document), encoding="utf-8")
    genesis = parse_genesis(document)
    store = LevelStore(home / "data")
    builder = ChainBuilder(store, genesis, keys)
    start = builder.ledger.last_time_ms + 5_000
    builder.add_block([
        builder.campaign("parks", voting_start=start, voting_end=start + 60_000),
        builder.campaign("roads", voting_start=start, voting_end=start + 30_000,
                         ballot=BallotSpec("approval", 1, 3), rule=RuleSpec("equal-shares", "campaign", 0, 0, 900),
                         ballots_per_voter="campaign"),
        builder.initiative("parks", "swings", "north", 400), builder.initiative("parks", "benches", "north", 300),
        builder.initiative("parks", "trees", "south", 500),
        builder.initiative("roads", "r1", "north", 500), builder.initiative("roads", "r2", "north", 400),
        builder.initiative("roads", "r3", "south", 300),
        builder.campaign("points", voting_start=start, voting_end=start + 30_000,
                         ballot=BallotSpec("cumulative", 1, 3, min_sum_points=1, max_sum_points=5),
                         rule=RuleSpec("equal-shares", "campaign", 0, 0, 900), ballots_per_voter="campaign"),
        builder.initiative("points", "p1", "north", 500), builder.initiative("points", "p2", "north", 400),
        builder.initiative("points", "p3", "north", 300),
    ])
    voters = [SigningKey.generate() for _ in range(VOTERS)]
    builder.add_block([builder.registration(c, voters[i:i + 500]) for c in ("parks", "roads", "points")
                       for i in range(0, VOTERS, 500)], time_ms=start)
    vote_heights: list[int] = []
    batch: list[Tx] = []
    for i, voter in enumerate(voters):
        if i % 3 == 0:
            batch.append(builder.vote(voter, "parks", "south", ["trees"]))
        else:
            batch.append(builder.vote(voter, "parks", "north", ["swings" if i % 2 else "benches"]))
        batch.append(builder.vote(voter, "roads", "north" if i % 4 else "south",
                                  ["r1", "r2"] if i % 4 else ["r3"]))
        batch.append(make_vote(builder.chain_id, voter, "points", "north", ["p1", "p2", "p3"][: 1 + i % 3],
                               [3, 1, 1][: 1 + i % 3] if i % 2 else [1, 2, 2][: 1 + i % 3]))
        if len(batch) >= 200:
            vote_heights.append(builder.add_block(batch).height)
            batch = []
    if batch:
        vote_heights.append(builder.add_block(batch).height)
    builder.add_block([builder.close("parks", "count finished")])
    builder.add_block([], time_ms=start + 30_000)   # "roads" and "points" close by their deadline (equal shares)
    votes = 3 * VOTERS
    height = builder.ledger.height
    store.close()
    return BuiltChain(home, genesis, keys, height, votes, vote_heights, voters)


@pytest.fixture(scope="session")
def honest_chain(tmp_path_factory: pytest.TempPathFactory) -> BuiltChain:
    return build_chain(tmp_path_factory.mktemp("chain") / "home")
