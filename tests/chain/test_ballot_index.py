"""The per-campaign ballot index (chain/ballot_index.py): written with each block, pointing at each ballot."""

from __future__ import annotations

from chain.ballot_index import (
    BALLOT_INDEX_FROM_KEY, ballot_index_prefix, read_index_key, read_span, vote_campaign,
)
from chain.crypto import SigningKey
from chain.ledger import Ledger
from chain.records import read_u64
from chain.storage import MemoryStore
from chain.tx import BallotSpec, make_vote
from tests.node.chainfix import NOW, T0, make_chain


def test_every_ballot_is_indexed_under_its_campaign_at_its_bytes_in_the_block() -> None:
    chain = make_chain(ballot=BallotSpec("approval", 1, 2))
    builder = chain.builder
    voters = chain.voters(5)
    registration = chain.register(voters)
    ballots = [builder.vote(v, "c1", "north", ["n1", "n2"][: 1 + i % 2]) for i, v in enumerate(voters)]
    block = builder.add_block([registration, *ballots], time_ms=NOW)

    entries = list(chain.ledger.store.iterate(ballot_index_prefix("c1")))
    assert [read_index_key(key) for key, _ in entries] == [(block.height, i) for i in range(1, 6)]
    stored = chain.ledger.raw_block(block.height)
    assert stored is not None
    for (key, value), ballot in zip(entries, ballots):
        offset, length = read_span(value)
        assert stored[offset:offset + length] == ballot.raw
    assert chain.ledger.ballot_index_from == 0
    assert read_u64(chain.ledger.store.get(BALLOT_INDEX_FROM_KEY) or b"") == 0


def test_vote_campaign_reads_the_campaign_id_of_ballots_only() -> None:
    chain = make_chain()
    voter = SigningKey.generate()
    long_id = "c" * 40   # a str8 id, not a fixstr
    assert vote_campaign(make_vote("veche-test", voter, long_id, "north", ["n1"]).raw) == long_id
    assert vote_campaign(make_vote("veche-test", voter, "c1", "north", ["n1"], [3]).raw) == "c1"
    assert vote_campaign(chain.register([voter]).raw) is None
    assert vote_campaign(b"") is None


def test_a_store_from_before_the_index_records_where_its_index_starts() -> None:
    chain = make_chain()
    store = chain.ledger.store.base
    assert isinstance(store, MemoryStore)
    store.write({BALLOT_INDEX_FROM_KEY: None})        # as written by a node before the index existed
    height = chain.ledger.height
    reopened = Ledger(store, chain.genesis.params)
    assert reopened.ballot_index_from == height + 1
    chain.builder.ledger = reopened
    voters = chain.voters(2)
    chain.builder.add_block([chain.register(voters), *(chain.vote(v) for v in voters)], time_ms=T0 + 30_000)
    assert read_u64(store.get(BALLOT_INDEX_FROM_KEY) or b"") == height + 1
    assert Ledger(store, chain.genesis.params).ballot_index_from == height + 1
