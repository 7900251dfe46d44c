"""Equivocation evidence in the node's LevelDB: stored before it is relayed, reloaded and re-verified
after a restart, bounded (oldest pruned), corrupt entries skipped, an empty data directory empty."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from chain import codec
from chain.block import STEP_PRECOMMIT, STEP_PREVOTE, Validator, ValidatorSet
from chain.crypto import SigningKey, verify
from chain.storage import LevelStore
from consensus.messages import Evidence, encode_evidence, make_evidence, make_vote, verify_evidence
from consensus.outputs import EvidenceFound
from node.driver import Driver
from node.evidence import EVIDENCE_PREFIX, EvidenceRecord, EvidenceStore, encode_record, evidence_key
from node.metrics import NodeMetrics
from tests.node.test_driver import ScriptedEngine

CHAIN_ID = "veche-test"
KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(4)]
VALIDATORS = ValidatorSet(tuple(Validator(f"validator-{i}", key.public_key) for i, key in enumerate(KEYS)))


def equivocation(height: int, signer: int = 3, step: str = STEP_PREVOTE) -> Evidence:
    key = KEYS[signer]
    first = make_vote(CHAIN_ID, step, height, 0, bytes([height % 256]) * 32, signer, key.sign)
    second = make_vote(CHAIN_ID, step, height, 0, None, signer, key.sign)
    return make_evidence(first, second)


def check(evidence: Evidence) -> None:
    verify_evidence(evidence, VALIDATORS, CHAIN_ID, verify)


def stored_keys(store: LevelStore) -> list[bytes]:
    return [key for key, _ in store.iterate(EVIDENCE_PREFIX)]


def test_stored_evidence_is_reloaded_in_order_after_reopening(tmp_path: Path) -> None:
    store = LevelStore(tmp_path / "data")
    records = [EvidenceRecord(equivocation(h), 1_700_000_000_000 + h) for h in (5, 6)]
    records.append(EvidenceRecord(equivocation(6, step=STEP_PRECOMMIT), 1_700_000_000_007))
    evidence_store = EvidenceStore(store)
    for record in records:
        evidence_store.add(record)
    store.close()

    reopened = LevelStore(tmp_path / "data")
    loaded = EvidenceStore(reopened)
    assert loaded.load(check) == records
    assert [r.to_json() for r in loaded.load(check)] == [r.to_json() for r in records]
    loaded.add(EvidenceRecord(equivocation(9), 1))  # continues after the stored sequence
    assert stored_keys(reopened) == [evidence_key(i) for i in range(4)]
    reopened.close()


def test_a_new_or_wiped_data_directory_loads_as_empty(tmp_path: Path) -> None:
    store = LevelStore(tmp_path / "data")
    evidence_store = EvidenceStore(store)
    assert evidence_store.load(check) == [] and evidence_store.skipped == 0 and len(evidence_store) == 0
    store.close()


def test_the_oldest_items_are_pruned_beyond_the_limit(tmp_path: Path) -> None:
    store = LevelStore(tmp_path / "data")
    evidence_store = EvidenceStore(store, limit=3)
    records = [EvidenceRecord(equivocation(h), h) for h in range(1, 6)]
    for record in records:
        evidence_store.add(record)
        assert len(stored_keys(store)) == min(record.seen_ms, 3)
    assert stored_keys(store) == [evidence_key(i) for i in (2, 3, 4)]
    assert EvidenceStore(store, limit=3).load(check) == records[2:]
    store.close()


def test_corrupt_or_forged_entries_are_logged_and_skipped(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    store = LevelStore(tmp_path / "data")
    good = EvidenceRecord(equivocation(4), 10)
    outsider = SigningKey(b"\x77" * 32)
    forged = make_evidence(make_vote(CHAIN_ID, STEP_PREVOTE, 4, 0, b"\x01" * 32, 2, outsider.sign),
                           make_vote(CHAIN_ID, STEP_PREVOTE, 4, 0, None, 2, outsider.sign))
    not_a_conflict = make_evidence(equivocation(5).first, equivocation(5).first)
    store.write({
        evidence_key(0): b"\xc1 not msgpack",
        evidence_key(1): codec.encode([10, b"junk"]),
        evidence_key(2): codec.encode(["ten", encode_evidence(good.evidence)]),
        evidence_key(3): encode_record(EvidenceRecord(forged, 11)),          # bad signatures
        evidence_key(4): encode_record(EvidenceRecord(not_a_conflict, 12)),  # no equivocation
        evidence_key(5): encode_record(good),
        evidence_key(6): encode_record(good),                               # the same slot twice
        EVIDENCE_PREFIX + b"short": encode_record(good),
    })
    evidence_store = EvidenceStore(store, limit=8)
    with caplog.at_level(logging.WARNING, logger="veche.node.evidence"):
        assert evidence_store.load(check) == [good]
    assert evidence_store.skipped == 6
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 6
    # new items go after every stored key, and corrupt entries are pruned like any other as the oldest
    for height in range(20, 28):
        evidence_store.add(EvidenceRecord(equivocation(height), height))
    assert evidence_key(0) not in stored_keys(store) and evidence_key(8) in stored_keys(store)
    assert len(stored_keys(store)) == 8 + 1  # the limit, plus the malformed key it never counts
    store.close()


def test_driver_stores_evidence_before_relaying_it_and_lists_restored_items(tmp_path: Path) -> None:
    store = LevelStore(tmp_path / "data")
    evidence_store = EvidenceStore(store)
    restored = [EvidenceRecord(equivocation(2), 5)]
    evidence_store.add(restored[0])
    evidence_store = EvidenceStore(store)
    assert evidence_store.load(check) == restored
    fresh = equivocation(3)
    engine = ScriptedEngine([[EvidenceFound(fresh)]])
    relayed: list[list[EvidenceRecord]] = []

    def broadcast(data: bytes) -> None:
        assert data == encode_evidence(fresh)
        relayed.append(EvidenceStore(store).load(check))  # what is on disk when it leaves

    driver = Driver(engine, app=None, signing_file=None, broadcast=broadcast,  # type: ignore[arg-type]
                    metrics=NodeMetrics(), on_commit=lambda c: None, on_peer_ahead=lambda h: None,
                    validators_at=lambda height: VALIDATORS, clock_ms=lambda: 99,
                    evidence_store=evidence_store, restored_evidence=restored)
    assert list(driver.evidence) == restored

    async def main() -> None:
        task = asyncio.create_task(driver.run())
        for _ in range(500):
            if relayed:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(main())
    assert relayed == [restored + [EvidenceRecord(fresh, 99)]]
    assert list(driver.evidence) == restored + [EvidenceRecord(fresh, 99)]
    store.close()


def test_one_validator_cannot_push_out_the_evidence_against_another(tmp_path: Path) -> None:
    store = LevelStore(tmp_path / "data")
    evidence_store = EvidenceStore(store, limit=8, per_validator=2)
    against_one = [EvidenceRecord(equivocation(h, signer=1), h) for h in (1, 2)]
    flood = [EvidenceRecord(equivocation(h, signer=3), h) for h in range(10, 30)]
    for record in against_one + flood:
        evidence_store.add(record)
    assert len(stored_keys(store)) == 4
    assert EvidenceStore(store, limit=8, per_validator=2).load(check) == against_one + flood[-2:]
    store.close()


def test_a_flood_of_evidence_through_the_engine_is_stored_and_relayed_a_bounded_number_of_times(
        tmp_path: Path) -> None:
    from consensus.engine import Engine
    from consensus.evidence import EVIDENCE_VALIDATOR_CAP, KEEP_EVIDENCE_PER_VALIDATOR
    from tests.consensus.helpers import TIMEOUTS, ScriptedApp, prevote, validator_set
    from tests.consensus.helpers import KEYS as ENGINE_KEYS

    store = LevelStore(tmp_path / "data")
    metrics = NodeMetrics()
    engine = Engine("veche-test", validator_set(4), 3, ENGINE_KEYS[3].sign, ScriptedApp(), TIMEOUTS)
    relayed: list[bytes] = []
    named = ValidatorSet(tuple(Validator(f"validator-{i}", ENGINE_KEYS[i].public_key) for i in range(4)))
    driver = Driver(engine, app=None, signing_file=None, broadcast=relayed.append,  # type: ignore[arg-type]
                    metrics=metrics, on_commit=lambda c: None, on_peer_ahead=lambda h: None,
                    validators_at=lambda height: named, evidence_store=EvidenceStore(store))
    honest = make_evidence(prevote(1, 0, "A", 1), prevote(1, 0, "B", 1))
    flood = [make_evidence(prevote(1, r, "A", 0), prevote(1, r, "B", 0)) for r in range(300)]
    items = [honest] + flood + flood[:10] + [honest]  # then relayed again by another honest peer
    ignored = len(flood) - KEEP_EVIDENCE_PER_VALIDATOR

    async def main() -> None:
        task = asyncio.create_task(driver.run())
        for index, item in enumerate(items):
            driver.deliver(ENGINE_KEYS[1 + index % 2].public_key, item)
        for _ in range(3000):
            if (metrics.evidence_ignored.value(EVIDENCE_VALIDATOR_CAP) >= ignored
                    and metrics.evidence_ignored.value("duplicate_slot") >= 11):
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(main())
    assert metrics.evidence_ignored.value(EVIDENCE_VALIDATOR_CAP) == ignored
    assert metrics.evidence_ignored.value("duplicate_slot") == 11
    assert len(relayed) == KEEP_EVIDENCE_PER_VALIDATOR + 1
    assert len(stored_keys(store)) == KEEP_EVIDENCE_PER_VALIDATOR + 1 and len(driver.evidence) == len(relayed)
    assert metrics.evidence.value("validator-0") == KEEP_EVIDENCE_PER_VALIDATOR
    assert metrics.evidence.value("validator-1") == 1
    assert not metrics.consensus_rejected.values  # nothing counted against the relaying peers
    store.close()
