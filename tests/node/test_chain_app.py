"""ChainApp: the consensus Application over ledger and mempool; commits and synced blocks."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from chain.block import Block
from chain.errors import CertificateError
from chain.storage import MemoryStore
from chain.crypto import sha256
from node.chain_app import ChainApp
from node.errors import FatalError
from node.mempool import Mempool
from tests.node.chainfix import NOW, Chain, make_chain
from tests.transparency.chainkit import ChainBuilder, certify


def follower(chain: Chain) -> tuple[ChainApp, Mempool]:
    """A second node's ChainApp on its own store, synced to ``chain``'s height."""
    builder = ChainBuilder(MemoryStore(), chain.genesis, chain.keys)
    for height in range(1, chain.ledger.height + 1):
        block, certificate = chain.ledger.block(height), chain.ledger.certificate(height)
        assert block is not None and certificate is not None
        builder.ledger.apply_synced(block, certificate)
    pool = Mempool(builder.ledger, max_txs=1000, max_bytes=1 << 24, clock_ms=lambda: NOW)
    return ChainApp(builder.ledger, pool, max_block_txs=100, wall_clock_ms=lambda: NOW), pool


def proposer(chain: Chain, max_block_txs: int = 100) -> tuple[ChainApp, Mempool]:
    pool = chain.mempool()
    return ChainApp(chain.ledger, pool, max_block_txs=max_block_txs, wall_clock_ms=lambda: NOW), pool


def test_proposal_built_from_the_mempool_checks_and_commits_everywhere() -> None:
    chain = make_chain()
    app, pool = proposer(chain, max_block_txs=3)
    other, other_pool = follower(chain)
    voters = chain.voters(4)
    batch = [chain.register(voters).raw] + [chain.vote(v).raw for v in voters]
    asyncio.run(pool.admit(batch))
    height = chain.ledger.height + 1
    block_hash, encoded = app.create_block(height, 0, NOW, chain.ledger.certificate(height - 1))
    block = Block.decode(encoded)
    assert list(block.txs) == batch[:3]  # FIFO, at most max_block_txs
    assert other.check_block(height, encoded, NOW) == block_hash
    # every signature of a proposal that checked is remembered: gossip of these txs costs no re-check
    assert all(other_pool.is_verified(sha256(raw)) for raw in block.txs)
    assert not other_pool.is_verified(sha256(batch[4]))
    certificate = certify(chain.genesis, chain.keys, block)
    committed = app.commit(height, encoded, block_hash, certificate)
    assert committed is not None and committed.height == height
    assert other.commit(height, encoded, block_hash, certificate) is not None
    assert chain.ledger.app_hash == other.ledger.app_hash
    assert [tx.raw for tx in pool.pending.values()] == batch[3:]


def test_invalid_proposals_get_no_vote() -> None:
    chain = make_chain()
    app, pool = proposer(chain)
    other, _ = follower(chain)
    voters = chain.voters(1)
    asyncio.run(pool.admit([chain.register(voters).raw]))
    height = chain.ledger.height + 1
    _, encoded = app.create_block(height, 0, NOW, chain.ledger.certificate(height - 1))
    block = Block.decode(encoded)
    forged = replace(block, header=replace(block.header, app_hash=b"\x01" * 32)).encode()
    assert other.check_block(height, forged, NOW) is None
    assert other.check_block(height + 1, encoded, NOW) is None          # wrong height
    assert other.check_block(height, b"\x93not a block", NOW) is None   # garbage
    ahead = replace(block, header=replace(block.header, time_ms=NOW + 5_000)).encode()
    assert other.check_block(height, ahead, NOW) is None                # ahead of our clock: wait
    assert other.check_block(height, encoded, NOW) == block.hash()


def test_a_block_with_a_bad_signature_is_invalid_unless_checked_before() -> None:
    chain = make_chain()
    other, _ = follower(chain)
    voters = chain.voters(1)
    registration = chain.register(voters)
    value = bytearray(registration.raw)
    value[-3] ^= 0x01
    height = chain.ledger.height + 1
    built = chain.ledger.build_block([registration], time_ms=NOW, round_=0,
                                     last_commit=chain.ledger.certificate(height - 1))
    bad = replace(built.block, txs=(bytes(value),))
    assert other.check_block(height, bad.encode(), NOW) is None


def test_commit_after_block_sync_got_there_first() -> None:
    chain = make_chain()
    app, pool = proposer(chain)
    other, _ = follower(chain)
    height = chain.ledger.height + 1
    block_hash, encoded = app.create_block(height, 0, NOW, chain.ledger.certificate(height - 1))
    block = Block.decode(encoded)
    certificate = certify(chain.genesis, chain.keys, block)
    other.apply_synced(block, certificate)
    assert other.commit(height, encoded, block_hash, certificate) is None
    with pytest.raises(FatalError):
        other.commit(height, encoded, b"\x07" * 32, certificate)


def test_synced_block_needs_a_quorum_certificate() -> None:
    chain = make_chain()
    app, _ = proposer(chain)
    other, _ = follower(chain)
    height = chain.ledger.height + 1
    _, encoded = app.create_block(height, 0, NOW, chain.ledger.certificate(height - 1))
    block = Block.decode(encoded)
    weak = certify(chain.genesis, chain.keys, block, signers=[0, 1])  # 2 of 4: below the quorum of 3
    with pytest.raises(CertificateError):
        other.apply_synced(block, weak)
    assert other.ledger.height == height - 1


def test_deadline_and_pending() -> None:
    chain = make_chain()
    app, pool = proposer(chain)
    assert not app.has_pending() and not app.deadline_due(NOW)
    assert app.deadline_due(10**15)
    asyncio.run(pool.admit([chain.register(chain.voters(1)).raw]))
    assert app.has_pending()


def test_transactions_are_proposed_after_the_grace_period() -> None:
    chain = make_chain()
    pool = chain.mempool()
    clock = [NOW + 50]
    app = ChainApp(chain.ledger, pool, max_block_txs=100, proposal_grace_ms=100, wall_clock_ms=lambda: clock[0])
    voters = chain.voters(2)
    asyncio.run(pool.admit([chain.register(voters).raw, chain.vote(voters[0]).raw]))  # admitted at NOW
    assert not app.has_pending()  # 50 ms old: the other validators may not have it yet
    height = chain.ledger.height + 1
    _, encoded = app.create_block(height, 0, NOW + 50, chain.ledger.certificate(height - 1))
    assert Block.decode(encoded).txs == ()  # a heartbeat block would leave them for the next one
    clock[0] = NOW + 100
    assert app.has_pending()
    app._fresh_height()  # noqa: SLF001 - same height, new proposal
    _, encoded = app.create_block(height, 1, NOW + 100, chain.ledger.certificate(height - 1))
    assert len(Block.decode(encoded).txs) == 2
