"""node/byzantine.py does what it says, and nothing unless asked (fast, no network)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from chain.block import Block
from chain.storage import MemoryStore
from consensus.messages import Proposal, Vote, decode_message, encode_message, is_conflict, make_proposal, make_vote
from node import byzantine
from tests.transparency.chainkit import ChainBuilder, build_genesis, make_keys


@dataclass
class FakeLink:
    messages: list[bytes] = field(default_factory=list)
    txs: list[bytes] = field(default_factory=list)

    def push_message(self, data: bytes) -> None:
        self.messages.append(data)

    def push_txs(self, raws: list[bytes]) -> None:
        self.txs.extend(raws)


@dataclass
class FakePeers:
    links: list[FakeLink]
    broadcasts: list[bytes] = field(default_factory=list)

    def broadcast(self, data: bytes) -> None:
        self.broadcasts.append(data)
        for link in self.links:
            link.push_message(data)


@dataclass
class FakeEngine:
    validators: Any
    last_commit: Any = None
    my_index: int | None = 3


@dataclass
class FakeApp:
    ledger: Any


def _setup(behaviours: str) -> tuple[byzantine.ByzantineBroadcast, FakePeers, Any, Any]:
    keys = make_keys()
    genesis = build_genesis(keys)
    builder = ChainBuilder(MemoryStore(), genesis, keys)
    peers = FakePeers([FakeLink(), FakeLink(), FakeLink()])
    hook = byzantine.ByzantineBroadcast(byzantine.parse_behaviours(behaviours), genesis.chain_id,
                                        keys.validators[3], FakeEngine(genesis.params.validators),  # type: ignore[arg-type]
                                        FakeApp(builder.ledger), peers, seed=1)  # type: ignore[arg-type]
    return hook, peers, genesis, keys


def test_off_unless_the_environment_names_behaviours(monkeypatch: pytest.MonkeyPatch) -> None:
    peers = FakePeers([FakeLink()])
    monkeypatch.delenv(byzantine.ENV_VAR, raising=False)
    hook = byzantine.broadcast_hook("c", None, None, None, peers)  # type: ignore[arg-type]
    assert hook == peers.broadcast
    monkeypatch.setenv(byzantine.ENV_VAR, "equivocate-votes,nonsense")
    with pytest.raises(ValueError, match="nonsense"):
        byzantine.broadcast_hook("c", None, None, None, peers)  # type: ignore[arg-type]


def test_vote_equivocation_gives_every_peer_both_versions_in_alternating_order() -> None:
    hook, peers, genesis, keys = _setup("equivocate-votes")
    vote = make_vote(genesis.chain_id, "prevote", 5, 0, b"\x11" * 32, 3, keys.validators[3].sign)
    hook(encode_message(vote))
    hook(encode_message(vote))          # a re-send reuses the same twin
    firsts = []
    for link in peers.links:
        decoded = [decode_message(m) for m in link.messages]
        assert len(decoded) == 4 and decoded[0:2] == decoded[2:4]
        assert isinstance(decoded[0], Vote) and is_conflict(decoded[0], decoded[1])
        firsts.append(decoded[0].block_hash)
    assert firsts == [b"\x11" * 32, None, b"\x11" * 32]
    assert peers.broadcasts == []


def test_split_sends_one_version_per_peer_and_withholding_sends_nothing() -> None:
    hook, peers, genesis, keys = _setup("equivocate-votes,split,withhold-precommits")
    nil_vote = make_vote(genesis.chain_id, "prevote", 5, 1, None, 3, keys.validators[3].sign)
    hook(encode_message(nil_vote))
    versions = [decode_message(link.messages[0]) for link in peers.links]
    assert all(len(link.messages) == 1 for link in peers.links)
    assert versions[0].block_hash is None and versions[1].block_hash is not None
    precommit = make_vote(genesis.chain_id, "precommit", 5, 1, None, 3, keys.validators[3].sign)
    hook(encode_message(precommit))
    assert all(len(link.messages) == 1 for link in peers.links)
    assert hook.counts == {"equivocated-prevote": 1, "withheld-precommit": 1}


def test_proposal_twin_is_another_valid_block_of_the_same_height() -> None:
    hook, peers, genesis, keys = _setup("equivocate-proposals")
    builder_ledger = hook.app.ledger
    built = builder_ledger.build_block([], time_ms=genesis.params.genesis_time_ms + 1000, round_=0, last_commit=None)
    proposal = make_proposal(genesis.chain_id, 1, 0, -1, built.block.hash(), built.block.encode(), 3,
                             keys.validators[3].sign)
    hook(encode_message(proposal))
    first, second = (decode_message(m) for m in peers.links[0].messages)
    assert isinstance(first, Proposal) and isinstance(second, Proposal)
    assert is_conflict(first, second) and first.block_hash != second.block_hash
    twin = second if second.block_hash != proposal.block_hash else first
    # raises BlockInvalid unless honest validators would accept it
    builder_ledger.check_block(Block.decode(twin.block), now_ms=genesis.params.genesis_time_ms + 5000)


def test_garbage_reaches_every_link_at_most_twice_a_second() -> None:
    hook, peers, genesis, keys = _setup("garbage")
    vote = make_vote(genesis.chain_id, "prevote", 5, 0, None, 3, keys.validators[3].sign)
    hook(encode_message(vote))
    hook(encode_message(vote))
    for link in peers.links:
        assert len(link.txs) == 3
        assert len(link.messages) >= 2 + 4          # the two honest sends plus one round of junk
    assert hook.counts == {"garbage": 1}
