"""Operational views follow the validator set in force (docs/PROTOCOL.md §15): ``/healthz`` counts the
peer links a quorum of the *current* set needs, and the reserved connection pool takes the hosts of
validators added by ``validators.update`` (resolved again when a change commits)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from chain.ledger import Ledger
from chain.tx import ValidatorEntry, ValidatorsUpdate
from genesis.config import Peer
from node.config import NodeLimits
from node.metrics import NodeMetrics
from node.net.guard import ConnectionGuard, GuardLimits
from node.net.peers import reserved_hosts, resolve_reserved
from node.ops import health
from tests.chain.helpers import TestChain, new_chain, seeded_key


def grown_chain() -> TestChain:
    """4 validators, then 3 more added one by one (4 → 5 → 6 → 7: each within a third of the power)."""
    chain = new_chain(validators=4, committee=1, threshold=1)
    chain.commit_block([])
    for number in (4, 5, 6):
        key = seeded_key(f"validator-{number}")
        chain.extra_validator_keys.append(key)
        entry = ValidatorEntry(f"v{number}", "committee", key.public_key, f"https://v{number}.example.org")
        chain.commit_block([chain.sign("validators.update", ValidatorsUpdate("grow", (entry,), ()))])
        chain.commit_block([])
        chain.commit_block([])
    return chain


@dataclass
class FakePeers:
    up: int

    def connected(self) -> int:
        return self.up


@dataclass
class FakeSync:
    target: int = 0
    catching_up: bool = False


@dataclass
class FakeNode:
    ledger: Ledger
    peers: FakePeers
    validator_index: int | None
    genesis: Any
    params: Any
    sync: FakeSync = field(default_factory=FakeSync)
    name: str = "v0"
    role: str = "validator"


def test_health_counts_links_against_the_set_in_force() -> None:
    chain = grown_chain()
    ledger = chain.ledger
    assert ledger.validators_at(ledger.height + 1).size == 7
    genesis = type("G", (), {"consensus": type("C", (), {"heartbeat_ms": 5000})()})()
    now = ledger.last_time_ms
    original = health.wall_clock_ms
    health.wall_clock_ms = lambda: now
    try:
        # 7 validators: quorum 5, so a member needs 4 of its 6 links (the genesis set of 4 would need 2)
        node: Any = FakeNode(ledger, FakePeers(3), 0, genesis, chain.params)
        ok, document = health.node_health(node)
        assert not ok and "3 of 6 peer links up; a quorum needs 4" in document["reasons"]
        node.peers = FakePeers(4)
        ok, document = health.node_health(node)
        assert ok and document["peers_expected"] == 6 and document["warnings"] == ["4 of 6 peer links up"]
        # a validator's node outside the set has no vote of its own: it needs a whole quorum of links
        node = FakeNode(ledger, FakePeers(4), None, genesis, chain.params)
        ok, document = health.node_health(node)
        assert not ok and "4 of 7 peer links up; a quorum needs 5" in document["reasons"]
    finally:
        health.wall_clock_ms = original


def test_reserved_hosts_follow_the_set_history_and_the_guard_takes_new_networks() -> None:
    chain = grown_chain()
    node: Any = type("N", (), {"ledger": chain.ledger,
                               "config": type("C", (), {"peers": [Peer("x", "http://10.1.2.3:26600")]})()})()
    hosts = reserved_hosts(node)
    assert {"v4.example.org", "v5.example.org", "v6.example.org", "10.1.2.3"} <= set(hosts)
    networks = resolve_reserved(["10.1.2.3", "10.1.2.4"], NodeLimits(trusted_clients=("192.0.2.0/24",)))
    assert networks == (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("10.1.2.3/32"),
                        ipaddress.ip_network("10.1.2.4/32"))

    guard = ConnectionGuard(GuardLimits(), NodeMetrics(), fd_limit=100_000,
                            reserved=[ipaddress.ip_network("10.1.2.3/32")])
    assert guard.is_reserved("10.1.2.3") and not guard.is_reserved("10.1.2.4")
    guard.set_reserved(networks)                     # a set change added 10.1.2.4's validator
    assert guard.is_reserved("10.1.2.4") and guard.is_reserved("192.0.2.7")
