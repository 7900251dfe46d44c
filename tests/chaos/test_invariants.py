"""The invariant checker and the report catch what they must, on real chains built in memory."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from chain.block import Block, CommitCertificate, make_certificate, vote_signing_bytes
from chain.crypto import SigningKey
from chain.storage import MemoryStore
from tests.transparency.chainkit import ChainBuilder, Keys, build_genesis, genesis_document, make_keys
from veche_chaos.invariants import InvariantChecker, NodeChain, double_signed, signed_precommits
from veche_chaos.perturb import FaultRecord
from veche_chaos.report import classify, vote_accounting
from veche_chaos.tracking import DIRECT, GATEWAY, VOTE, Tracker


@dataclass
class FakeCluster:
    """What the checker's pure checks read from a cluster."""

    genesis_document: dict[str, Any]
    nodes: list[str] = field(default_factory=lambda: ["validator-0", "validator-1", "validator-2"])

    def url(self, name: str) -> str:
        return f"http://{name}.invalid"


@dataclass
class FakeWatcher:
    duplicates: list[dict[str, Any]] = field(default_factory=list)


def _chain(keys: Keys, votes_at_3: int) -> tuple[list[Block], list[CommitCertificate]]:
    genesis = build_genesis(keys)
    builder = ChainBuilder(MemoryStore(), genesis, keys)
    builder.add_block([builder.campaign("c1")])  # voting opens 10 s after genesis
    builder.add_block([builder.initiative("c1", "i1", "north", 100)], time_ms=genesis.params.genesis_time_ms + 5000)
    voters = [SigningKey.generate() for _ in range(votes_at_3)]
    txs = [builder.registration("c1", voters)] + [builder.vote(v, "c1", "north", ["i1"]) for v in voters]
    builder.add_block(txs, time_ms=genesis.params.genesis_time_ms + 20_000)
    ledger = builder.ledger
    blocks = [ledger.block(h) for h in range(1, ledger.height + 1)]
    certificates = [ledger.certificate(h) for h in range(1, ledger.height + 1)]
    return [b for b in blocks if b is not None], [c for c in certificates if c is not None]


def _checker(keys: Keys) -> InvariantChecker:
    cluster = FakeCluster(genesis_document(keys))
    return InvariantChecker(cluster, Tracker(), FakeWatcher())  # type: ignore[arg-type]


def test_agreement_names_the_first_divergent_height() -> None:
    keys = make_keys()
    blocks, certificates = _chain(keys, 3)
    other_blocks, other_certificates = _chain(keys, 4)
    checker = _checker(keys)
    checker.chains = {"validator-0": NodeChain("validator-0", blocks, certificates),
                      "validator-1": NodeChain("validator-1", blocks[:2], certificates[:2]),
                      "validator-2": NodeChain("validator-2", blocks, certificates)}
    status = {"height": 3, "app_hash": "aa"}
    assert checker.check_agreement({n: status for n in checker.cluster.nodes}).ok
    # same genesis and first two blocks (deterministic signatures), another block 3
    checker.chains["validator-2"] = NodeChain("validator-2", other_blocks, other_certificates)
    result = checker.check_agreement({n: status for n in checker.cluster.nodes})
    assert not result.ok
    assert [d["height"] for d in result.detail["divergent"]] == [3]


def test_agreement_sees_status_app_hash_split_and_unreachable_nodes() -> None:
    keys = make_keys()
    blocks, certificates = _chain(keys, 2)
    checker = _checker(keys)
    checker.chains = {n: NodeChain(n, blocks, certificates) for n in ("validator-0", "validator-1")}
    result = checker.check_agreement({"validator-0": {"height": 3, "app_hash": "aa"},
                                      "validator-1": {"height": 3, "app_hash": "bb"}, "validator-2": None})
    assert not result.ok
    assert result.detail["unreachable"] == ["validator-2"]
    assert result.detail["status_app_hash_split"] == {3: ["aa", "bb"]}


def test_duplicates_catches_a_transaction_committed_twice() -> None:
    keys = make_keys()
    blocks, certificates = _chain(keys, 3)
    checker = _checker(keys)
    checker.chains = {"validator-0": NodeChain("validator-0", blocks, certificates)}
    assert checker.check_duplicates().ok
    replayed = blocks[2].txs[1]
    forged = replace(blocks[1], txs=blocks[1].txs + (replayed,))
    checker.chains = {"validator-0": NodeChain("validator-0", [blocks[0], forged, blocks[2]], certificates)}
    result = checker.check_duplicates()
    assert not result.ok
    assert len(result.detail["repeated"]) == 1
    assert len(result.detail["double_ballots"]) == 1


def test_certificates_must_verify() -> None:
    keys = make_keys()
    blocks, certificates = _chain(keys, 1)
    checker = _checker(keys)
    checker.chains = {"validator-0": NodeChain("validator-0", blocks, certificates)}
    assert checker.check_certificates().ok
    bad = certificates[1]
    tampered = CommitCertificate(bad.height, bad.round, bad.block_hash,
                                 ((bad.signatures[0][0], bytes(64)),) + bad.signatures[1:])
    checker.chains = {"validator-0": NodeChain("validator-0", blocks, [certificates[0], tampered, certificates[2]])}
    assert not checker.check_certificates().ok


def test_double_signed_precommits_are_found() -> None:
    keys = make_keys()
    genesis = build_genesis(keys)
    block_a, block_b = bytes([1]) * 32, bytes([2]) * 32

    def certificate(block_hash: bytes, signers: list[int], round_: int = 0) -> CommitCertificate:
        message = vote_signing_bytes(genesis.chain_id, "precommit", 5, round_, block_hash)
        return make_certificate(5, round_, block_hash, [(i, keys.validators[i].sign(message)) for i in signers])

    honest = signed_precommits([certificate(block_a, [0, 1, 2]), certificate(block_a, [1, 2, 3]),
                                certificate(block_b, [0, 1, 2], round_=1)])
    assert double_signed(honest) == {}
    forked = signed_precommits([certificate(block_a, [0, 1, 2]), certificate(block_b, [0, 2, 3])])
    assert set(double_signed(forked)) == {(0, 5, 0), (2, 5, 0)}


def test_vote_accounting_lost_and_early_commits() -> None:
    tracker = Tracker()
    acked, unacked, lost, early = (bytes([n]) * 32 for n in range(4))
    for tx_hash in (acked, unacked, lost):
        tracker.offer(tx_hash, kind=VOTE, source=DIRECT, raw=b"x", now=100.0)
    tracker.ack(acked, 100.2)
    tracker.ack(lost, 100.2)
    tracker.committed(acked, 7, 0, 100.9)
    tracker.committed(early, 8, 3, 101.0)          # seen in a block before the gateway page named it
    tracker.offer(early, kind=VOTE, source=GATEWAY, now=100.5)
    tracker.ack(early, 101.2)
    table = vote_accounting(tracker)
    assert table[DIRECT] == {"offered": 3, "acknowledged": 2, "committed": 1, "acknowledged_committed": 1,
                             "lost": 1, "committed_without_ack": 0}
    assert table[GATEWAY]["lost"] == 0 and tracker.records[early].height == 8
    assert abs((tracker.records[acked].latency or 0) - 0.9) < 1e-9


def test_latency_classes_follow_fault_windows() -> None:
    tracker = Tracker()
    fault = FaultRecord("kill9", "validator-1", started=100.0, ended=103.0, recovered=105.0)
    for moment in (99.0, 101.0, 104.0, 111.0):
        tracker.offer(bytes([int(moment)]) * 32, kind=VOTE, source=DIRECT, raw=b"x", now=moment)
    classes = [classify(record, [fault]) for record in tracker.votes()]
    assert classes == ["calm", "during_faults", "after_faults", "calm"]
