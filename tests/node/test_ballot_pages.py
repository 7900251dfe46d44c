"""The ballots route reads only the campaign's own ballots (its index), however long the chain around them."""

from __future__ import annotations

from typing import Any

import pytest

from chain.ballot_index import BALLOT_INDEX_FROM_KEY
from chain.ledger import Ledger
from chain.storage import MemoryStore
from node.ballots import Position, read_ballots
from tests.node.chainfix import NOW, T0, VOTING_END, VOTING_START, Chain, make_chain


def two_campaigns(other_blocks: int) -> Chain:
    """c1 gets 3 ballots, then c2 gets ``other_blocks`` blocks of ballots, then c1 gets 2 more."""
    chain = make_chain()
    builder = chain.builder
    builder.add_block([builder.campaign("c2", voting_start=VOTING_START, voting_end=VOTING_END)], time_ms=T0 + 2_500)
    builder.add_block([builder.initiative("c2", "m1", "north", 1000)], time_ms=T0 + 3_000)
    first = chain.voters(3)
    builder.add_block([chain.register(first), *(chain.vote(v) for v in first)], time_ms=NOW)
    for _ in range(other_blocks):
        voters = chain.voters(2)
        builder.add_block([chain.register(voters, "c2"),
                           *(chain.vote(v, "north", "m1", campaign_id="c2") for v in voters)])
    last = chain.voters(2)
    builder.add_block([chain.register(last), *(chain.vote(v, "south", "s1") for v in last)])
    return chain


def count_block_reads(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads: list[int] = []
    original = ledger.raw_block

    def counted(height: int) -> bytes | None:
        reads.append(height)
        return original(height)
    monkeypatch.setattr(ledger, "raw_block", counted)
    return reads


def all_pages(ledger: Ledger, campaign_id: str, limit: int) -> list[dict[str, Any]]:
    campaign = ledger.state.campaigns[campaign_id]
    ballots: list[dict[str, Any]] = []
    after: Position | None = None
    while True:
        page = read_ballots(ledger, campaign, after, limit)
        ballots += page.ballots
        if page.next is None:
            return ballots
        after = page.next


def test_a_campaigns_pages_read_only_the_blocks_holding_its_ballots(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = two_campaigns(other_blocks=30)
    ledger = chain.ledger
    reads = count_block_reads(ledger, monkeypatch)
    ballots = all_pages(ledger, "c1", limit=2)
    assert [(b["district_id"], b["choices"]) for b in ballots] == [("north", ["n1"])] * 3 + [("south", ["s1"])] * 2
    assert len(set(reads)) == 2, f"read blocks {sorted(set(reads))} for ballots in 2 blocks"
    reads.clear()
    others = all_pages(ledger, "c2", limit=500)
    assert len(others) == 60 and len(set(reads)) == 30


def test_a_store_from_before_the_index_still_pages_its_older_campaigns() -> None:
    chain = two_campaigns(other_blocks=3)
    store = chain.ledger.store.base
    assert isinstance(store, MemoryStore)
    indexed = {c: all_pages(chain.ledger, c, limit=3) for c in ("c1", "c2")}
    # the same chain as a node before the index kept it: no index entries, no M/ballot_index_from
    store.write({key: None for key, _ in list(store.iterate(b"V/"))} | {BALLOT_INDEX_FROM_KEY: None})
    old = Ledger(store, chain.genesis.params)
    assert old.ballot_index_from == old.height + 1
    assert {c: all_pages(old, c, limit=3) for c in ("c1", "c2")} == indexed
