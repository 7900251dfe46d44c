"""The ledger: building, checking and committing blocks on MemoryStore and LevelDB, restarts,
one-batch commits and crash safety (a real ``kill -9`` in the middle of committing)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chain import block as block_module
from chain import codec
from chain.crypto import sha256
from chain.block import (
    MAX_BLOCK_BYTES, ZERO_HASH, Block, CommitCertificate, make_certificate, make_header, verify_certificate,
)
from chain.errors import BlockInvalid, CertificateError, StorageError, TxRejected
from chain.ledger import Ledger, decode_block_with_certificate
from chain.records import Progress, progress_prefix
from chain.state import TX_INDEX_PREFIX
from chain.storage import KeyValueStore, LevelStore, MemoryStore, StagedStore
from chain.tx import CampaignClose, ProgressReport, Tx, make_registration
from tests.chain.helpers import (
    CHAIN_ID, T0, VOTING_END, VOTING_START, TestChain, campaign_spec, make_params, new_chain, reopen, seeded_key,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["memory", "leveldb"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], KeyValueStore]]:
    opened: list[KeyValueStore] = []

    def make(name: str = "data") -> KeyValueStore:
        store: KeyValueStore = MemoryStore() if request.param == "memory" else LevelStore(tmp_path / name)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def vote_block(chain: TestChain, voters: int = 3) -> list[Tx]:
    keys = chain.new_voters(voters)
    txs: list[Tx] = [chain.register(keys)]
    txs += [chain.vote(key, "d1" if n % 2 else "d2", ["a1"] if n % 2 else ["b2"]) for n, key in enumerate(keys)]
    return txs


def grow(chain: TestChain, blocks: int = 3) -> None:
    chain.open_voting()
    for _ in range(blocks):
        chain.commit_block(vote_block(chain))


# --- build, check, commit ---------------------------------------------------------------------------------


def test_proposer_and_validator_agree(store_factory: Callable[[str], KeyValueStore]) -> None:
    proposer = new_chain(store_factory("proposer"))
    validator = Ledger(store_factory("validator"), proposer.params)
    assert validator.app_hash == proposer.ledger.app_hash
    proposer.open_voting()
    for _ in range(3):
        proposer.commit_block(vote_block(proposer))
    for block, certificate in proposer.blocks:
        execution = validator.check_block(block, now_ms=block.header.time_ms)
        validator.commit(block, certificate, execution)
        assert validator.app_hash == block.header.app_hash
    assert (validator.height, validator.last_block_hash, validator.last_time_ms) == (
        proposer.ledger.height, proposer.ledger.last_block_hash, proposer.ledger.last_time_ms)
    assert validator.state.tallies == proposer.ledger.state.tallies
    second = proposer.ledger.block(2)
    assert second is not None and validator.block(2) == second
    for index, raw in enumerate(second.txs):
        location = validator.tx_location(sha256(raw))
        assert location is not None and (location.height, location.index) == (2, index)
    assert validator.height_of(second.hash()) == 2
    assert validator.height_of(b"\x00" * 32) is None and validator.tx_location(b"\x00" * 32) is None


def test_reopen_gives_the_same_ledger(store_factory: Callable[[str], KeyValueStore], tmp_path: Path) -> None:
    store = store_factory("data")
    chain = new_chain(store)
    grow(chain)
    chain.commit_block([], VOTING_END)  # closes c1 and publishes its result
    before = (chain.ledger.height, chain.ledger.app_hash, chain.ledger.last_block_hash, chain.ledger.last_time_ms,
              dict(chain.ledger.state.tallies), dict(chain.ledger.state.campaigns), dict(chain.ledger.state.results),
              dict(chain.ledger.state.initiatives))
    if isinstance(store, LevelStore):
        store.close()
        store = LevelStore(tmp_path / "data")
    again = reopen(chain, store)
    after = (again.ledger.height, again.ledger.app_hash, again.ledger.last_block_hash, again.ledger.last_time_ms,
             dict(again.ledger.state.tallies), dict(again.ledger.state.campaigns), dict(again.ledger.state.results),
             dict(again.ledger.state.initiatives))
    assert after == before
    again.commit_block([again.sign("progress.report", ProgressReport("c1", "a1", "contract", 5, 0, "", b""))])
    assert again.ledger.height == before[0] + 1
    if isinstance(store, LevelStore):
        store.close()


def test_progress_report_numbers_continue_after_a_reopen(store_factory: Callable[[str], KeyValueStore],
                                                        tmp_path: Path) -> None:
    """Each report of an initiative gets the next number (its key's last four bytes), counted over
    the committed reports — also those of the same block, and across a restart of the node."""
    store = store_factory("data")
    chain = new_chain(store)
    grow(chain, 1)
    chain.commit_block([], VOTING_END)

    def report(initiative_id: str, percent: int) -> Tx:
        return chain.sign("progress.report", ProgressReport("c1", initiative_id, "works", percent, 0, "", b""))

    chain.commit_block([report("a1", 10), report("b2", 10), report("a1", 20)])
    if isinstance(store, LevelStore):
        store.close()
        store = LevelStore(tmp_path / "data")
    chain = reopen(chain, store)
    assert chain.ledger.state.progress_counts == {("c1", "a1"): 2, ("c1", "b2"): 1}
    chain.commit_block([report("b2", 50), report("a1", 30)])
    numbers = {initiative_id: [key[-4:] for key, _ in store.iterate(progress_prefix("c1", initiative_id))]
               for initiative_id in ("a1", "b2")}
    assert numbers == {"a1": [b"\x00\x00\x00\x00", b"\x00\x00\x00\x01", b"\x00\x00\x00\x02"],
                       "b2": [b"\x00\x00\x00\x00", b"\x00\x00\x00\x01"]}
    assert [Progress.decode(value).report.percent for _, value in store.iterate(progress_prefix("c1", "a1"))] == [
        10, 20, 30]
    if isinstance(store, LevelStore):
        store.close()


def test_raw_block_with_certificate_round_trip(store_factory: Callable[[str], KeyValueStore]) -> None:
    chain = new_chain(store_factory("data"))
    grow(chain, 2)
    raw = chain.ledger.raw_block_with_certificate(2)
    assert raw is not None
    block, certificate = chain.blocks[1]
    assert raw == codec.encode([block.to_wire(), certificate.to_wire()])
    assert decode_block_with_certificate(raw) == (block, certificate)
    assert chain.ledger.raw_block_with_certificate(99) is None
    assert chain.ledger.certificate(2) == certificate and chain.ledger.block(99) is None


def test_synced_blocks_need_a_valid_certificate(store_factory: Callable[[str], KeyValueStore]) -> None:
    source = new_chain()
    grow(source, 2)
    follower = Ledger(store_factory("follower"), source.params)
    block, certificate = source.blocks[0]
    weak = make_certificate(certificate.height, certificate.round, certificate.block_hash, certificate.signatures[:0])
    with pytest.raises(CertificateError):
        follower.apply_synced(block, weak)
    for block, certificate in source.blocks:
        follower.apply_synced(block, certificate, check_signatures=True)
    assert follower.app_hash == source.ledger.app_hash


def synced_report_scans(ballot_blocks: int) -> list[int]:
    """Staged keys looked at by each of three ``progress.report`` blocks when a follower syncs
    ``ballot_blocks`` blocks of ballots, the close and the reports as one held range."""
    source = new_chain()
    grow(source, ballot_blocks)
    source.commit_block([], VOTING_END)
    for percent in (10, 20, 30):
        source.commit_block([source.sign("progress.report", ProgressReport("c1", "a1", "contract", percent, 0, "", b""))])
    store = StagedStore(MemoryStore())
    follower = Ledger(store, source.params)
    scans = []
    with follower.committing():
        for block, certificate in source.blocks:
            before = store.scanned
            follower.apply_synced(block, certificate)
            if any(raw.startswith(b"\x94\xafprogress.report") for raw in block.txs):
                scans.append(store.scanned - before)
    assert follower.app_hash == source.ledger.app_hash and store.flushes == 1
    return scans


def test_a_synced_progress_report_does_not_scan_the_fetched_range() -> None:
    """Block sync holds a fetched range in memory; each report needs its initiative's number of
    earlier reports. Ten times the ballots in the range must not make a report look at more staged
    keys (it scanned them all: 44 % of an observer's catch-up CPU on a 100 k-ballot chain)."""
    few, many = synced_report_scans(2), synced_report_scans(20)
    assert len(few) == len(many) == 3
    assert few == many and max(many) <= 2   # at most the range's earlier reports


# --- block checks (each a valid/invalid pair with the block the proposer built) ---------------------------


@pytest.fixture
def pair() -> tuple[TestChain, Ledger]:
    """A proposer chain at height 2 with a valid block 3 pending, and a validator at height 2."""
    chain = new_chain(validators=4)
    grow(chain, 1)
    validator = Ledger(MemoryStore(), chain.params)
    for block, certificate in chain.blocks:
        validator.commit(block, certificate, validator.check_block(block))
    return chain, validator


def rebuilt(block: Block, **header_changes: Any) -> Block:
    return replace(block, header=replace(block.header, **header_changes))


def test_check_block_accepts_the_proposers_block(pair: tuple[TestChain, Ledger]) -> None:
    chain, validator = pair
    built = chain.build(vote_block(chain))
    execution = validator.check_block(built.block, now_ms=built.block.header.time_ms)
    assert execution.finish()[1] == built.block.header.app_hash


@pytest.mark.parametrize("change, message", [
    ({"chain_id": "other"}, "chain"),
    ({"height": 4}, "height"),
    ({"previous_hash": b"\x01" * 32}, "extend"),
    ({"proposer": 0}, "proposer"),
    ({"round": 1}, "proposer"),
    ({"app_hash": b"\x02" * 32}, "app hash"),
    ({"tx_root": b"\x03" * 32}, "tx root"),
    ({"last_commit_hash": ZERO_HASH}, "last commit hash"),
])
def test_check_block_rejects_bad_headers(pair: tuple[TestChain, Ledger], change: dict[str, Any],
                                         message: str) -> None:
    chain, validator = pair
    built = chain.build(vote_block(chain))
    with pytest.raises(BlockInvalid, match=message):
        validator.check_block(rebuilt(built.block, **change))


def test_block_time_rules(pair: tuple[TestChain, Ledger]) -> None:
    chain, validator = pair
    previous = validator.last_time_ms
    precision = chain.params.time_precision_ms
    built = chain.build([], previous + 1)
    validator.check_block(built.block, now_ms=previous + 1 - precision)   # exactly at the limit: fine
    with pytest.raises(BlockInvalid, match="ahead"):
        validator.check_block(built.block, now_ms=previous - precision)
    same_time = rebuilt(built.block, time_ms=previous)
    with pytest.raises(BlockInvalid, match="not after"):
        validator.check_block(same_time)
    # The proposer never goes backwards either: a requested earlier time becomes previous + 1.
    assert chain.build([], previous - 5_000).block.header.time_ms == previous + 1


def test_check_block_rejects_bad_last_commit(pair: tuple[TestChain, Ledger]) -> None:
    chain, validator = pair
    built = chain.build([])
    block = built.block
    assert block.last_commit is not None
    for weak in (
        replace(block.last_commit, signatures=block.last_commit.signatures[:2]),      # below quorum (3 of 4)
        replace(block.last_commit, signatures=block.last_commit.signatures[:2] + ((3, b"\x00" * 64),)),
        replace(block.last_commit, round=block.last_commit.round + 1),
    ):
        forged = replace(block, last_commit=weak, header=replace(block.header, last_commit_hash=weak.hash()))
        with pytest.raises(BlockInvalid):
            validator.check_block(forged)


def test_check_block_rejects_failing_duplicate_and_malformed_txs(pair: tuple[TestChain, Ledger]) -> None:
    chain, validator = pair
    good = chain.build(vote_block(chain))
    txs = good.block.txs

    def with_txs(raw_txs: tuple[bytes, ...]) -> Block:
        header = make_header(chain_id=CHAIN_ID, height=good.block.height, round_=0, time_ms=good.block.header.time_ms,
                             previous_hash=good.block.header.previous_hash, txs=raw_txs,
                             app_hash=good.block.header.app_hash, proposer=good.block.header.proposer,
                             last_commit=good.block.last_commit)
        return Block(header, raw_txs, good.block.last_commit)

    with pytest.raises(BlockInvalid, match="twice"):
        validator.check_block(with_txs(txs + txs[-1:]))
    with pytest.raises(BlockInvalid, match="malformed"):
        validator.check_block(with_txs(txs + (b"\x91\x01",)))
    with pytest.raises(BlockInvalid, match="does not apply"):
        validator.check_block(with_txs(txs[1:]))  # votes before their registration
    stranger = make_registration(CHAIN_ID, seeded_key("stranger"), "c1", [seeded_key("x").public_key])
    with pytest.raises(BlockInvalid, match="does not apply"):
        validator.check_block(with_txs(txs + (stranger.raw,)))


def test_build_block_leaves_out_failing_and_overflowing_txs() -> None:
    chain = new_chain()
    chain.open_voting()
    keys = chain.new_voters(5)
    registration = chain.register(keys)
    votes = [chain.vote(k, "d1", ["a1"]) for k in keys]
    built = chain.ledger.build_block([votes[0], registration] + votes[1:], time_ms=chain.now + 10, round_=0,
                                     last_commit=chain.last_commit, max_txs=3)
    assert [e.code for _, e in built.rejected] == ["not_registered"]
    assert list(built.block.txs) == [registration.raw, votes[1].raw, votes[2].raw]
    assert built.deferred == votes[3:]


def test_build_block_respects_the_byte_limit() -> None:
    chain = new_chain(campaign=None, with_campaign=False)
    params = chain.params
    assert params.initial_bodies == ()
    big = [make_registration(CHAIN_ID, chain.gateway_key, f"c{n}", [i.to_bytes(32, "big") for i in range(1000)])
           for n in range(300)]
    built = chain.ledger.build_block(big, time_ms=T0 + 1, round_=0, last_commit=None)
    # Every registration fails (no campaign), so none takes room; they are rejected, not deferred.
    assert len(built.rejected) == 300 and not built.deferred
    chain = new_chain(campaign=None, initial=[("campaign.create", _big_campaign(n)) for n in range(300)])
    small = make_registration(CHAIN_ID, chain.gateway_key, "c0", [b"\xff" * 32])
    built = chain.ledger.build_block(big + [small], time_ms=T0 + 1, round_=0, last_commit=None)
    assert built.block.txs and not built.rejected
    assert len(built.block.encode()) <= MAX_BLOCK_BYTES
    assert len(built.block.encode()) + len(built.deferred[0].raw) > MAX_BLOCK_BYTES
    # Once a transaction does not fit, it and everything after it wait, even what would still fit.
    assert built.deferred == (big + [small])[len(built.block.txs):]
    assert len(built.block.encode()) + len(small.raw) + 3 < MAX_BLOCK_BYTES
    built.block.check_structure()


def _big_campaign(n: int) -> Any:
    return campaign_spec(seeded_key("gateway").public_key, campaign_id=f"c{n}", registration_cap=10**6)


# --- commit guards ----------------------------------------------------------------------------------------------


def test_commit_refuses_what_does_not_belong_together(pair: tuple[TestChain, Ledger]) -> None:
    chain, validator = pair
    built = chain.build(vote_block(chain))
    certificate = chain.certify(built.block)
    other = chain.build([])
    with pytest.raises(StorageError, match="certificate"):
        chain.ledger.commit(built.block, chain.certify(other.block), built.execution)
    with pytest.raises(StorageError, match="not this block"):
        chain.ledger.commit(built.block, certificate, other.execution)
    with pytest.raises(CertificateError):
        chain.ledger.commit(built.block, replace(certificate, signatures=certificate.signatures[:1]), built.execution)
    forged = replace(certificate, signatures=tuple((i, b"\x00" * 64) for i, _ in certificate.signatures))
    with pytest.raises(CertificateError):
        chain.ledger.commit(built.block, forged, built.execution)
    with pytest.raises(StorageError, match="out of order"):
        validator.commit(built.block, certificate, built.execution)  # an execution of another ledger
    assert chain.ledger.height == 2
    chain.ledger.commit(built.block, certificate, built.execution)
    with pytest.raises(StorageError, match="out of order"):
        chain.ledger.commit(built.block, certificate, built.execution)


def test_ledger_refuses_a_store_of_another_genesis(tmp_path: Path) -> None:
    store = LevelStore(tmp_path / "data")
    new_chain(store)
    params, _ = make_params(genesis_hash=b"\x09" * 32)
    with pytest.raises(StorageError, match="different genesis"):
        Ledger(store, params)
    store.close()
    foreign = MemoryStore()
    foreign.write({b"M/height": (5).to_bytes(8, "big")})
    with pytest.raises(StorageError, match="without a genesis"):
        Ledger(foreign, make_params()[0])


# --- one batch per commit; crashes ---------------------------------------------------------------------------------


class RecordingStore:
    """Forwards to ``inner`` and records every write; ``crash`` makes writes fail (power cut)."""

    def __init__(self, inner: KeyValueStore) -> None:
        self.inner = inner
        self.batches: list[tuple[dict[bytes, bytes | None], bool]] = []
        self.crash = False

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def write(self, changes: Mapping[bytes, bytes | None], *, sync: bool = True) -> None:
        self.batches.append((dict(changes), sync))
        if self.crash:
            raise OSError("simulated crash before the batch reached the disk")
        self.inner.write(changes, sync=sync)

    def iterate(self, prefix: bytes, *, start: bytes | None = None,
                reverse: bool = False, bulk: bool = False) -> Iterator[tuple[bytes, bytes]]:
        return self.inner.iterate(prefix, start=start, reverse=reverse, bulk=bulk)

    def close(self) -> None:
        self.inner.close()


def test_a_commit_is_one_synced_batch_with_everything(tmp_path: Path) -> None:
    recording = RecordingStore(LevelStore(tmp_path / "data"))
    chain = new_chain(recording)
    grow(chain, 1)
    recording.batches.clear()
    built = chain.commit_block(vote_block(chain))
    assert len(recording.batches) == 1
    batch, sync = recording.batches[0]
    assert sync
    prefixes = {key[:2] for key in batch}
    assert {b"B/", b"C/", b"H/", b"T/", b"S/", b"M/"} <= prefixes
    assert sum(1 for key in batch if key.startswith(TX_INDEX_PREFIX)) == len(built.block.txs)
    recording.close()


def test_a_crash_before_the_batch_leaves_the_previous_state(tmp_path: Path) -> None:
    recording = RecordingStore(LevelStore(tmp_path / "data"))
    chain = new_chain(recording)
    grow(chain, 2)
    height, app_hash, tallies = chain.ledger.height, chain.ledger.app_hash, dict(chain.ledger.state.tallies)
    built = chain.build(vote_block(chain))
    certificate = chain.certify(built.block)
    recording.crash = True
    with pytest.raises(OSError):
        chain.ledger.commit(built.block, certificate, built.execution)
    assert (chain.ledger.height, chain.ledger.app_hash, chain.ledger.state.tallies) == (height, app_hash, tallies)
    lost_batch, _ = recording.batches[-1]
    recording.close()
    # After the "reboot" the store holds exactly the previous block.
    store = LevelStore(tmp_path / "data")
    again = Ledger(store, chain.params)
    assert (again.height, again.app_hash, again.state.tallies) == (height, app_hash, tallies)
    assert again.block(height + 1) is None
    # Had the batch reached the disk, it alone would carry the ledger to the next block.
    store.write(lost_batch)
    store.close()
    store = LevelStore(tmp_path / "data")
    after = Ledger(store, chain.params)
    assert after.height == height + 1 and after.app_hash == built.block.header.app_hash
    assert after.certificate(height + 1) == certificate
    store.close()


CHILD = """
import sys
from chain.storage import LevelStore
from tests.chain.helpers import new_chain
chain = new_chain(LevelStore(sys.argv[1]))
chain.voter_count = 1000 * chain.ledger.height
chain.open_voting()
print("ready", flush=True)
while chain.ledger.height < 5000:
    voters = chain.new_voters(20)
    txs = [chain.register(voters)] + [chain.vote(v, "d1", ["a1", "a2"]) for v in voters]
    chain.commit_block(txs, chain.now + 1)
    print(chain.ledger.height, flush=True)
"""


def run_and_kill(path: Path, blocks: int, extra_delay_s: float) -> None:
    """Start a child that commits blocks into ``path``; SIGKILL it after ``blocks`` more commits."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    try:
        lines = 0
        deadline = time.monotonic() + 60
        while lines < blocks + 1 and time.monotonic() < deadline:
            if not child.stdout.readline():
                break
            lines += 1
        assert lines == blocks + 1, "the committing child did not start"
        time.sleep(extra_delay_s)  # land the kill at some arbitrary point of a later commit
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_kill_9_while_committing_leaves_a_consistent_ledger(tmp_path: Path) -> None:
    path = tmp_path / "data"
    for blocks, delay in ((6, 0.0), (3, 0.013), (3, 0.029)):  # restart twice on the killed directory
        run_and_kill(path, blocks, delay)
    store = LevelStore(path)
    params = make_params()[0]
    ledger = Ledger(store, params)
    height = ledger.height
    assert height >= 12
    assert ledger.block(height + 1) is None and ledger.certificate(height + 1) is None
    replica = Ledger(MemoryStore(), params)
    for h in range(1, height + 1):
        block, certificate = ledger.block(h), ledger.certificate(h)
        assert block is not None and certificate is not None
        verify_certificate(certificate, params.validators, CHAIN_ID, height=h, block_hash=block.hash())
        for index, raw in enumerate(block.txs):
            location = ledger.tx_location(sha256(raw))
            assert location is not None and (location.height, location.index) == (h, index)
        replica.apply_synced(block, certificate, check_signatures=True)
    assert replica.app_hash == ledger.app_hash and replica.state.tallies == ledger.state.tallies
    last = ledger.block(height)
    assert last is not None and last.header.app_hash == ledger.app_hash
    assert ledger.last_time_ms == last.header.time_ms
    # ... and the ledger carries on from where it stopped.
    chain = TestChain(params, ledger, [seeded_key("validator-0")], [], {}, seeded_key("gateway"),
                      seeded_key("gateway-2"), last_commit=ledger.certificate(height), voter_count=10**6)
    voters = chain.new_voters(3)
    chain.commit_block([chain.register(voters)] + [chain.vote(v, "d2", ["b1"]) for v in voters])
    assert ledger.height == height + 1
    store.close()


def test_close_in_a_block_then_votes_fail(pair: tuple[TestChain, Ledger]) -> None:
    chain, _ = pair
    voters = chain.new_voters(1)
    chain.commit_block([chain.register(voters)])
    built = chain.build([chain.sign("campaign.close", CampaignClose("c1", "stop")), chain.vote(voters[0], "d1", ["a1"])])
    assert [e.code for _, e in built.rejected] == ["outside_window"]
    assert isinstance(built.rejected[0][1], TxRejected)
    assert VOTING_START <= built.block.header.time_ms < VOTING_END
    assert CommitCertificate.decode(chain.commit(built).encode()).height == built.block.height


def test_build_block_needs_the_previous_blocks_commit(pair: tuple[TestChain, Ledger]) -> None:
    chain, _ = pair
    with pytest.raises(BlockInvalid, match="last commit"):
        chain.ledger.build_block([], time_ms=chain.now + 1, round_=0, last_commit=None)
    stale = chain.blocks[0][1]
    with pytest.raises(BlockInvalid, match="last commit"):
        chain.ledger.build_block([], time_ms=chain.now + 1, round_=0, last_commit=stale)
    fresh = new_chain()
    with pytest.raises(BlockInvalid, match="last commit"):
        fresh.ledger.build_block([], time_ms=T0 + 1, round_=0, last_commit=stale)
    assert chain.ledger.build_block([], time_ms=chain.now + 1, round_=0, last_commit=chain.last_commit).block.height == 3


def test_last_commit_signatures_already_verified_are_not_verified_again_but_still_counted() -> None:
    from tests.transparency.chainkit import ChainBuilder, build_genesis, certify, make_keys

    keys = make_keys(4)
    genesis = build_genesis(keys)
    source = ChainBuilder(MemoryStore(), genesis, keys)
    source.add_block([])
    stored_certificate = source.last_certificate
    source.add_block([])  # its last commit repeats block 1's certificate (signers 0, 1, 2)
    follower = Ledger(MemoryStore(), genesis.params)
    block_1, block_2 = source.ledger.block(1), source.ledger.block(2)
    assert block_1 is not None and block_2 is not None and stored_certificate is not None
    follower.apply_synced(block_1, stored_certificate)

    calls: list[bytes] = []
    original = block_module.verify

    def counting(public_key: bytes, signature: bytes, message: bytes, **kwargs: Any) -> None:
        calls.append(signature)
        original(public_key, signature, message, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(block_module, "verify", counting)
        follower.check_block(block_2)
        assert calls == []  # the three precommits were verified when block 1's certificate was stored
        known = frozenset(stored_certificate.signatures)
        params = genesis.params
        other = certify(genesis, keys, block_1, signers=[1, 2, 3])  # one signature not seen before
        verify_certificate(other, params.validators, params.chain_id, height=1, verified=known)
        assert len(calls) == 1
        forged = replace(other, signatures=other.signatures[:2] + ((3, bytes(64)),))
        with pytest.raises(CertificateError):
            verify_certificate(forged, params.validators, params.chain_id, height=1, verified=known)
        short = replace(stored_certificate, signatures=stored_certificate.signatures[:2])
        with pytest.raises(CertificateError):  # known signatures, but no quorum
            verify_certificate(short, params.validators, params.chain_id, height=1, verified=known)
