"""Admission budgets (per client, node-wide, trusted) and the memory of transactions that can never be valid."""

from __future__ import annotations

import asyncio

import pytest

import chain.tx
from chain.crypto import sha256
from node.admission import (AUTO_MAX_RATE, AUTO_MIN_RATE, AdmissionControl, auto_node_rate, client_group,
                            measure_verify_rate, parse_networks)
from node.config import NodeLimits, parse_limits
from node.errors import ConfigError
from node.mempool import MAX_BATCH_TXS, Mempool
from tests.node.chainfix import Chain


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def control(clock: Clock, *, client_rate: float = 1000, node_rate: float = 100,
            trusted: tuple[str, ...] = (), trusted_rate: float | None = None) -> AdmissionControl:
    return AdmissionControl(client_rate=client_rate, client_burst=MAX_BATCH_TXS, node_rate=node_rate,
                            node_burst=MAX_BATCH_TXS, trusted=parse_networks(trusted), trusted_rate=trusted_rate,
                            clock=clock)


# --- node-wide budget --------------------------------------------------------------------------------


def test_node_budget_is_shared_by_every_untrusted_client() -> None:
    clock = Clock()
    gate = control(clock, node_rate=100)
    assert gate.take("10.0.0.1", 3000) is None
    assert gate.take("10.0.0.2", 2000) is None          # another address, the same node-wide bucket
    refusal = gate.take("10.0.0.3", 50)                 # a fresh client with a full bucket of its own
    assert refusal is not None and refusal.scope == "node"
    assert refusal.retry_after == pytest.approx(0.5)
    precheck = gate.precheck("10.0.0.4")
    assert precheck is not None and precheck.scope == "node"  # refused before its body is read
    clock.now = 0.5
    assert gate.take("10.0.0.3", 50) is None


def test_a_refused_batch_charges_no_bucket() -> None:
    clock = Clock()
    gate = control(clock, client_rate=10, node_rate=100)
    assert gate.take("a", MAX_BATCH_TXS - 10) is None   # the node bucket keeps 10
    refusal = gate.take("b", 20)
    assert refusal is not None and refusal.scope == "node"
    assert gate.clients.retry_after("b", MAX_BATCH_TXS) is None  # b's own bucket untouched
    assert gate.take("b", 10) is None


def test_client_budget_binds_before_the_node_budget() -> None:
    clock = Clock()
    gate = control(clock, client_rate=10, node_rate=1000)
    assert gate.take("a", MAX_BATCH_TXS) is None
    clock.now = 0.1                                      # the node bucket refills 100, a's own 1
    refusal = gate.take("a", 5)
    assert refusal is not None and refusal.scope == "client"
    assert refusal.retry_after == pytest.approx(0.4)
    assert gate.take("b", 5) is None


# --- fair share of the node-wide budget -------------------------------------------------------------


def flood(gate: AdmissionControl, clock: Clock, heavy: list[str], light: str | None, seconds: float,
          ) -> tuple[dict[str, int], list[float]]:
    """Every 10 ms each heavy client asks for 100 transactions (10,000/s each), the light one (after the
    heavy ones) for 10 every 100 ms (100/s). Returns admitted per client and the light client's refusals."""
    admitted = {client: 0 for client in [*heavy, *([light] if light else [])]}
    light_refused: list[float] = []
    for tick in range(int(seconds * 100)):
        clock.now = tick / 100
        for client in heavy:
            if gate.precheck(client) is None and gate.take(client, 100) is None:
                admitted[client] += 100
        if light is not None and tick % 10 == 0:
            if gate.precheck(light) is None and gate.take(light, 10) is None:
                admitted[light] += 10
            else:
                light_refused.append(clock.now)
    return admitted, light_refused


def test_a_light_client_keeps_being_admitted_while_heavy_clients_saturate_the_node_budget() -> None:
    clock = Clock()
    gate = control(clock, client_rate=100_000, node_rate=1000)
    heavy = ["10.1.0.1", "10.2.0.1", "10.3.0.1", "10.4.0.1"]
    admitted, light_refused = flood(gate, clock, heavy, "192.168.5.9", seconds=20)
    assert light_refused == []                           # 100/s, below its fair share (1000/5): never refused
    assert admitted["192.168.5.9"] == 2000
    total = sum(admitted.values())
    assert total <= MAX_BATCH_TXS + 1000 * 20             # one bucket: never above the node-wide rate (+ burst)
    assert total >= 1000 * 20 - 500                       # and the heavy clients take what the light one leaves
    assert min(admitted[client] for client in heavy) > 0.5 * (total - 2000) / len(heavy)  # split among them


def test_a_light_client_in_the_flooders_network_shares_their_fate() -> None:
    """Fair share is per network (/24): a light client inside the flooders' network is one of them (first
    come, first served, as every untrusted client was before); the same client in another network is not."""
    clock = Clock()
    gate = control(clock, client_rate=100_000, node_rate=1000)
    heavy = [f"10.1.0.{host}" for host in range(1, 5)]  # four addresses of one /24: one group
    admitted, refused = flood(gate, clock, heavy, "10.1.0.200", seconds=5)
    assert len(refused) > 25                             # the light client in the flooders' /24 shares their fate
    clock2 = Clock()
    gate2 = control(clock2, client_rate=100_000, node_rate=1000)
    _, refused2 = flood(gate2, clock2, heavy, "10.7.0.200", seconds=5)
    assert refused2 == []


def test_a_client_over_its_share_cannot_spend_the_reserve_but_a_full_bucket_it_can() -> None:
    clock = Clock()
    gate = control(clock, client_rate=100_000, node_rate=1000)
    assert gate.take("10.9.9.9", 1) is None              # another group is active
    assert gate.take("10.1.0.1", 3000) is None           # under its share (500) before: may take a lot
    refusal = gate.take("10.1.0.1", 1000)                # over its share, 2000 left, reserve 1250
    assert refusal is not None and refusal.scope == "share" and "fair share" in refusal.message()
    assert refusal.retry_after == pytest.approx((1000 + 1250 - 1999) / 1000)
    assert gate.take("10.9.9.10", 1500) is None          # the other group, under its share, may
    clock.now = 5.0                                       # the bucket is full again, the window passed
    assert gate.take("10.1.0.1", MAX_BATCH_TXS) is None   # a full batch always passes, in time


def test_client_groups_are_ipv4_slash_24_and_ipv6_slash_56() -> None:
    assert client_group("203.0.113.77") == client_group("203.0.113.1") == "203.0.113.0/24"
    assert client_group("203.0.114.77") != client_group("203.0.113.77")
    assert client_group("::ffff:203.0.113.5") == "203.0.113.0/24"
    assert client_group("2001:db8:1:ff::1") == client_group("2001:db8:1:0::2") == "2001:db8:1::/56"
    assert client_group("2001:db8:1:100::1") != client_group("2001:db8:1::1")
    assert client_group("unknown") == "unknown"


def test_the_memory_of_client_groups_is_bounded() -> None:
    clock = Clock()
    gate = control(clock, client_rate=100_000, node_rate=1000)
    gate.share.max_groups = 50
    for number in range(500):
        gate.take(f"10.{number // 256}.{number % 256}.1", 1)
    assert len(gate.share._groups) == 50  # noqa: SLF001


def test_trusted_clients_are_not_starved_by_untrusted_ones() -> None:
    clock = Clock()
    gate = control(clock, node_rate=100, trusted=("192.168.7.0/24", "::1"), trusted_rate=200)
    for number in range(1, 6):
        gate.take(f"10.0.0.{number}", 1000)
    assert gate.precheck("10.0.0.9") is not None        # the shared bucket is empty
    assert gate.precheck("192.168.7.20") is None
    assert gate.take("192.168.7.20", MAX_BATCH_TXS) is None
    assert gate.take("::1", 1) is not None               # trusted clients share their own bucket ...
    refusal = gate.take("192.168.7.21", 100)
    assert refusal is not None and refusal.scope == "trusted"
    assert refusal.retry_after == pytest.approx(0.5)     # ... refilled at trusted_tx_rate
    assert gate.is_trusted("::ffff:192.168.7.9")        # an IPv4 client on a dual-stack socket
    assert not gate.is_trusted("192.168.8.1") and not gate.is_trusted("not an address")


def test_trusted_rate_defaults_to_the_node_rate() -> None:
    gate = control(Clock(), node_rate=321, trusted=("127.0.0.1",))
    assert gate.trusted.rate == 321 and gate.node_rate == 321


def test_auto_node_rate_is_a_share_of_the_measured_verify_rate() -> None:
    rate = measure_verify_rate(samples=50)
    assert rate > 100  # Ed25519 verifications per CPU-second; thousands on any machine this runs on
    assert auto_node_rate(8000) == 1000
    assert auto_node_rate(10) == AUTO_MIN_RATE and auto_node_rate(10**9) == AUTO_MAX_RATE


# --- limits --------------------------------------------------------------------------------------------


def test_limits_defaults_and_new_keys() -> None:
    limits = parse_limits({})
    assert limits == NodeLimits()
    assert limits.client_tx_rate == 500 and limits.node_tx_rate == 0 and limits.trusted_clients == ()
    parsed = parse_limits({"node_tx_rate": 800, "node_tx_burst": 6000, "trusted_tx_rate": 2000,
                           "trusted_clients": ["10.0.0.7", "10.1.0.0/16", "::1"]})
    assert parsed.node_tx_rate == 800 and parsed.trusted_clients == ("10.0.0.7", "10.1.0.0/16", "::1")


@pytest.mark.parametrize(("raw", "fragment"), [
    ({"trusted_clients": "10.0.0.7"}, "must be a list"),
    ({"trusted_clients": [7]}, "must be a list"),
    ({"trusted_clients": ["gateway.example"]}, "'gateway.example' is not an IP address or network"),
    ({"trusted_clients": ["10.0.0.0/33"]}, "is not an IP address or network"),
    ({"trusted_clients": [f"10.0.{i // 256}.{i % 256}" for i in range(300)]}, "at most 256"),
    ({"node_tx_rate": -1}, "limits.node_tx_rate must be a non-negative integer"),
    ({"node_tx_burst": 0}, "limits.node_tx_burst must be a positive integer"),
    ({"trusted_tx_rate": 1.5}, "limits.trusted_tx_rate must be a non-negative integer"),
])
def test_bad_limits_are_refused_with_the_key_named(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_limits(raw)
    assert fragment in caught.value.message


# --- memory of invalid transactions ----------------------------------------------------------------


def forge(raw: bytes) -> bytes:
    forged = bytearray(raw)
    forged[-5] ^= 0xFF  # inside the signature
    return bytes(forged)


def rejections(pool: Mempool, raws: list[bytes]) -> list[tuple[int, str]]:
    admission = asyncio.run(pool.admit(raws))
    return [(r.index, r.code) for r in admission.rejected]


def test_a_resent_forgery_is_refused_without_a_signature_check(chain_: Chain, verify_calls: list[bytes]) -> None:
    pool = chain_.mempool()
    voters = chain_.voters(3)
    assert rejections(pool, [chain_.register(voters).raw]) == []
    forged = [forge(chain_.vote(voter).raw) for voter in voters]
    verify_calls.clear()
    assert rejections(pool, forged) == [(0, "bad_signature"), (1, "bad_signature"), (2, "bad_signature")]
    assert len(verify_calls) == 3
    assert rejections(pool, forged[::-1]) == [(0, "bad_signature"), (1, "bad_signature"), (2, "bad_signature")]
    assert len(verify_calls) == 3 and pool.invalid_hits == 3
    assert pool.status(sha256(forged[0])) == ("rejected", "bad_signature", "signature does not verify")
    # the honest ballots of the same voters are unaffected
    assert rejections(pool, [chain_.vote(voter).raw for voter in voters]) == []
    assert len(pool) == 4


def test_wrong_chain_and_undecodable_are_remembered_too(chain_: Chain, verify_calls: list[bytes]) -> None:
    pool = chain_.mempool()
    voter = chain_.voters(1)[0]
    other = chain.tx.make_vote("another-chain", voter, "c1", "north", ["n1"]).raw
    assert rejections(pool, [other, b"\x93garbage"]) == [(0, "wrong_chain"), (1, "malformed")]
    assert rejections(pool, [other, b"\x93garbage"]) == [(0, "wrong_chain"), (1, "malformed")]
    assert pool.invalid_hits == 2 and verify_calls == []


def test_state_rejections_are_not_remembered_as_invalid(chain_: Chain) -> None:
    pool = chain_.mempool()
    voter = chain_.voters(1)
    ballot = chain_.vote(voter[0]).raw
    assert rejections(pool, [ballot]) == [(0, "not_registered")]  # may become valid: not remembered
    assert rejections(pool, [chain_.register(voter).raw, ballot]) == []
    assert pool.invalid_hits == 0 and len(pool) == 2


def test_the_memory_of_invalid_hashes_is_bounded(chain_: Chain, verify_calls: list[bytes]) -> None:
    pool = chain_.mempool(invalid_memory=2)
    voters = chain_.voters(3)
    forged = [forge(chain_.vote(voter).raw) for voter in voters]
    for raw in forged:
        rejections(pool, [raw])
    assert len(pool.invalid) == 2
    verify_calls.clear()
    rejections(pool, [forged[0]])      # the oldest was forgotten: checked again
    assert len(verify_calls) == 1
    rejections(pool, [forged[2]])      # still remembered (and refreshed)
    assert len(verify_calls) == 1 and len(pool.invalid) == 2
