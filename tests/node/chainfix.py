"""A small in-memory chain for node unit tests: one campaign ``c1`` open for voting, two districts.

Built with ``tests.transparency.chainkit`` (real ``Ledger`` blocks with quorum certificates).
Time: the chain's genesis is ``T0``; ``c1`` votes from ``VOTING_START``; tests run the mempool
with a clock at ``NOW`` (inside the voting window).
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.crypto import SigningKey
from chain.storage import MemoryStore
from chain.tx import BallotSpec, RuleSpec, Tx
from genesis.model import Genesis
from node.mempool import Mempool
from tests.transparency.chainkit import GENESIS_TIME_MS, ChainBuilder, Keys, build_genesis, make_keys

T0 = GENESIS_TIME_MS
VOTING_START = T0 + 5_000
VOTING_END = T0 + 10**9
NOW = T0 + 20_000
INITIATIVES = {"north": ("n1", "n2"), "south": ("s1",)}


@dataclass
class Chain:
    keys: Keys
    genesis: Genesis
    builder: ChainBuilder

    @property
    def ledger(self):  # type: ignore[no-untyped-def]
        return self.builder.ledger

    def mempool(self, **options: int) -> Mempool:
        settings = {"max_txs": 10_000, "max_bytes": 16 * 1024 * 1024}
        settings.update(options)
        return Mempool(self.ledger, clock_ms=lambda: NOW, **settings)

    def voters(self, count: int) -> list[SigningKey]:
        return [SigningKey.generate() for _ in range(count)]

    def register(self, voters: list[SigningKey], campaign_id: str = "c1") -> Tx:
        return self.builder.registration(campaign_id, voters)

    def vote(self, voter: SigningKey, district: str = "north", choice: str = "n1", campaign_id: str = "c1") -> Tx:
        return self.builder.vote(voter, campaign_id, district, [choice])


def make_chain(*, validators: int = 4, rule: str = "greedy", ballot: BallotSpec | None = None) -> Chain:
    keys = make_keys(validators)
    genesis = build_genesis(keys)
    builder = ChainBuilder(MemoryStore(), genesis, keys)
    campaign = builder.campaign("c1", districts=(("north", 10**9), ("south", 10**9)),
                                ballot=ballot or BallotSpec("choose-1", 1, 1),
                                rule=RuleSpec(rule, "district", 0, 0, 0),
                                voting_start=VOTING_START, voting_end=VOTING_END)
    builder.add_block([campaign], time_ms=T0 + 1_000)
    initiatives = [builder.initiative("c1", iid, district, 1000)
                   for district, ids in INITIATIVES.items() for iid in ids]
    builder.add_block(initiatives, time_ms=T0 + 2_000)
    return Chain(keys, genesis, builder)
