"""Unit tests of the machine-fault plumbing: the recovered floor, exit-code classification, the disk
watermark and LevelDB error typing (the multi-process proofs are in test_machine_faults.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from chain.errors import StorageError, StoreCorrupt, StoreFull, StoreLocked
from chain.storage import MemoryStore, classify_store_error
from consensus.errors import SigningStateError
from node.errors import ConfigError, FatalError, Overloaded
from node.exitcodes import (
    EXIT_CONFIG, EXIT_DATA_CORRUPT, EXIT_DISK_FULL, EXIT_FAILURE, EXIT_LISTEN, EXIT_SIGNING_STATE, EXIT_STORE_IN_USE,
)
from node.ops.disk import DiskWatch
from node.ops.faults import ListenError, exit_code
from node.ops.recovery import SAFETY_MARGIN, RecoveryRefused, recover_floor
from node.signing_state import DiskFullError, SigningStateMissing
from tests.transparency.chainkit import ChainBuilder, Keys, build_genesis, make_keys


def builder_of(keys: Keys, blocks: int) -> ChainBuilder:
    builder = ChainBuilder(MemoryStore(), build_genesis(keys), keys)
    for _ in range(blocks):
        builder.add_block([])
    return builder


def peer(builder: ChainBuilder, *, claimed_height: int | None = None) -> Callable[[str], bytes | None]:
    ledger = builder.ledger

    def fetch(url: str) -> bytes | None:
        path = url.split("//", 1)[1].split("/", 1)[1]
        if path == "api/v1/status":
            height = ledger.height if claimed_height is None else claimed_height
            return json.dumps({"chain_id": builder.chain_id, "height": height}).encode()
        if path.startswith("api/v1/blocks/"):
            return ledger.raw_block_with_certificate(ledger.height)
        if path == "api/v1/evidence":
            return b'{"evidence": []}'
        raise OSError("no such route")
    return fetch


def test_the_floor_is_the_highest_proven_height_plus_one_plus_the_margin() -> None:
    keys = make_keys()
    mine = builder_of(keys, 5)  # certificates are signed by validators 0, 1 and 2
    ahead = builder_of(keys, 9)
    recovery = recover_floor(my_index=1, chain_id=mine.chain_id, validators=mine.ledger.params.validators,
                             ledger=mine.ledger, evidence=[], sources=[("validator-0", "http://peer-0")],
                             fetch=peer(ahead))
    assert (recovery.own_tip, recovery.tip, recovery.own_signature) == (5, 9, 9)
    assert recovery.floor == 9 + 1 + SAFETY_MARGIN
    assert recovery.state().floor == recovery.floor and recovery.state().height == 0


def test_a_peer_cannot_lie_the_floor_up_and_an_unreachable_peer_is_skipped() -> None:
    keys = make_keys()
    mine = builder_of(keys, 5)
    liar = builder_of(keys, 6)

    def down(url: str) -> bytes | None:
        raise OSError("connection refused")

    recovery = recover_floor(my_index=3, chain_id=mine.chain_id, validators=mine.ledger.params.validators,
                             ledger=mine.ledger, evidence=[],
                             sources=[("liar", "http://liar"), ("down", "http://down")],
                             fetch=lambda url: (peer(liar, claimed_height=10_000) if "liar" in url else down)(url))
    assert recovery.tip == 5 and recovery.own_signature == 0  # validator 3 signed none of these certificates
    assert recovery.floor == 5 + 1 + SAFETY_MARGIN
    assert all(view.error is not None for view in recovery.peers)


def test_nothing_to_derive_a_floor_from_is_refused() -> None:
    keys = make_keys()
    empty = builder_of(keys, 0)
    with pytest.raises(RecoveryRefused) as refused:
        recover_floor(my_index=0, chain_id=empty.chain_id, validators=empty.ledger.params.validators,
                      ledger=empty.ledger, evidence=[], sources=[("p", "http://p")],
                      fetch=lambda url: (_ for _ in ()).throw(OSError("down")))
    assert isinstance(refused.value, SigningStateError)
    assert "Machine faults: lost or damaged signing state" in refused.value.message


def test_every_failure_class_has_its_exit_code() -> None:
    corrupt = FatalError("cannot store block 7")
    corrupt.__cause__ = StoreCorrupt("Corruption: block checksum mismatch")
    assert exit_code(ExceptionGroup("tasks failed", [corrupt])) == EXIT_DATA_CORRUPT
    assert exit_code(ExceptionGroup("tasks failed", [DiskFullError(28, "no space")])) == EXIT_DISK_FULL
    assert exit_code(StoreFull("IO error: No space left on device")) == EXIT_DISK_FULL
    assert exit_code(StoreLocked("IO error: lock")) == EXIT_STORE_IN_USE
    assert exit_code(SigningStateMissing("no signing state")) == EXIT_SIGNING_STATE
    assert exit_code(ConfigError("bad limits")) == EXIT_CONFIG
    assert exit_code(ListenError("port taken")) == EXIT_LISTEN
    assert exit_code(RuntimeError("defect")) == EXIT_FAILURE
    assert exit_code(None) == EXIT_FAILURE


def test_leveldb_errors_are_typed() -> None:
    assert isinstance(classify_store_error(OSError(b"IO error: lock /d/LOCK: Resource temporarily unavailable"),
                                           "open"), StoreLocked)
    assert isinstance(classify_store_error(OSError(b"IO error: /d/000005.log: No space left on device"), "write"),
                      StoreFull)
    assert isinstance(classify_store_error(ValueError(b"Corruption: block checksum mismatch: /d/000007.ldb"),
                                           "read"), StoreCorrupt)
    other = classify_store_error(OSError(b"IO error: /d/CURRENT: Permission denied"), "open")
    assert type(other) is StorageError


def test_the_watermark_refuses_intake_and_logs_each_transition_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="veche.node.disk")
    free = [100 << 20]
    now = [0.0]
    watch = DiskWatch(Path("/"), 50 << 20, measure=lambda path: free[0], clock=lambda: now[0])
    watch.check_room()
    free[0] = 10 << 20
    now[0] += 1
    with pytest.raises(Overloaded) as refused:
        watch.check_room()
    assert refused.value.code == "disk_low" and refused.value.status == 503 and refused.value.retry_after
    now[0] += 1
    with pytest.raises(Overloaded):
        watch.check_room()
    free[0] = 60 << 20
    now[0] += 1
    watch.check_room()
    assert watch.transitions == 2
    lines = [r.getMessage() for r in caplog.records if "disk_min_free_mb" in r.getMessage()]
    assert len(lines) == 2 and "below" in lines[0] and "above" in lines[1]
