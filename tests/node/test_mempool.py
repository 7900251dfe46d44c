"""Mempool: admission (verify once, reject what can never commit), bounds, budgets, FIFO, recheck."""

from __future__ import annotations

import asyncio

import pytest

import chain.tx
import node.mempool
from chain.crypto import SigningKey
from chain.tx import make_vote
from node.errors import BadRequest, Overloaded, PayloadTooLarge
from node.mempool import ClientBudgets, Mempool, decode_batch, encode_batch
from tests.node.chainfix import NOW, T0, Chain


def admit(pool: Mempool, raws: list[bytes]):  # type: ignore[no-untyped-def]
    return asyncio.run(pool.admit(raws))


def codes(admission) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    return [(r.index, r.code) for r in admission.rejected]


def test_registration_and_its_ballots_in_one_batch_are_admitted(chain_: Chain) -> None:
    pool = chain_.mempool()
    voters = chain_.voters(3)
    batch = [chain_.register(voters).raw] + [chain_.vote(v).raw for v in voters]
    result = admit(pool, batch)
    assert result.rejected == []
    assert len(result.accepted) == 4 and len(pool) == 4


def test_ballot_before_its_registration_is_rejected(chain_: Chain) -> None:
    pool = chain_.mempool()
    voter = chain_.voters(1)
    result = admit(pool, [chain_.vote(voter[0]).raw, chain_.register(voter).raw])
    assert codes(result) == [(0, "not_registered")]
    assert len(pool) == 1


def test_rejects_what_can_never_commit(chain_: Chain) -> None:
    pool = chain_.mempool()
    voters = chain_.voters(2)
    assert admit(pool, [chain_.register(voters).raw, chain_.vote(voters[0]).raw]).rejected == []
    stranger = SigningKey.generate()
    other_chain = make_vote("another-chain", voters[1], "c1", "north", ["n1"])
    forged = bytearray(chain_.vote(voters[1]).raw)
    forged[-5] ^= 0xFF  # inside the signature
    cases = [
        chain_.vote(voters[0], choice="n2").raw,            # second ballot of the same voter
        chain_.vote(stranger).raw,                           # unregistered voter
        chain_.vote(voters[1], campaign_id="nope").raw,      # unknown campaign
        chain_.vote(voters[1], choice="zz").raw,             # unknown initiative
        chain_.vote(voters[1], district="south", choice="n1").raw,  # initiative of another district
        other_chain.raw,                                     # wrong chain
        bytes(forged),                                       # bad signature
        b"\x93garbage",                                      # not a transaction
        chain_.vote(voters[0]).raw,                          # already pending
    ]
    result = admit(pool, cases)
    assert codes(result) == [(0, "double_vote"), (1, "not_registered"), (2, "unknown_campaign"),
                             (3, "invalid_choice"), (4, "invalid_choice"), (5, "wrong_chain"),
                             (6, "bad_signature"), (7, "malformed"), (8, "already_pending")]
    assert all(r.message for r in result.rejected)
    assert len(pool) == 2
    valid = admit(pool, [chain_.vote(voters[1]).raw])
    assert valid.rejected == [] and len(pool) == 3


def test_duplicate_in_one_batch_and_already_committed(chain_: Chain) -> None:
    pool = chain_.mempool()
    voters = chain_.voters(1)
    registration = chain_.register(voters)
    result = admit(pool, [registration.raw, registration.raw])
    assert codes(result) == [(1, "duplicate")]
    chain_.builder.add_block([registration], time_ms=NOW - 1000)
    pool.after_commit([registration.raw], exact=False)
    again = admit(pool, [registration.raw])
    assert codes(again) == [(0, "already_committed")]


def test_closed_campaign_rejects_ballots(chain_: Chain) -> None:
    voters = chain_.voters(1)
    chain_.builder.add_block([chain_.register(voters), chain_.builder.close("c1")], time_ms=NOW - 1000)
    pool = chain_.mempool()
    result = admit(pool, [chain_.vote(voters[0]).raw])
    assert codes(result) == [(0, "outside_window")]


def test_each_signature_is_verified_once(chain_: Chain, verify_calls: list[bytes]) -> None:
    pool = chain_.mempool()
    voters = chain_.voters(4)
    batch = [chain_.register(voters).raw] + [chain_.vote(v).raw for v in voters]
    admit(pool, batch)
    assert len(verify_calls) == 5
    admit(pool, batch)  # gossip of the same transactions: already pending, no signature work
    assert len(verify_calls) == 5
    assert all(pool.is_verified(chain.crypto.sha256(raw)) for raw in batch)


def test_bounded_by_count(chain_: Chain) -> None:
    pool = chain_.mempool(max_txs=4)
    voters = chain_.voters(5)
    result = admit(pool, [chain_.register(voters).raw] + [chain_.vote(v).raw for v in voters])
    assert len(pool) == 4
    assert codes(result) == [(4, "mempool_full"), (5, "mempool_full")]
    with pytest.raises(Overloaded) as refused:
        pool.check_room(100)
    assert refused.value.status == 503 and refused.value.retry_after


def test_bounded_by_bytes(chain_: Chain) -> None:
    voters = chain_.voters(3)
    registration = chain_.register(voters)
    ballots = [chain_.vote(v).raw for v in voters]
    pool = chain_.mempool(max_bytes=len(registration.raw) + 2 * len(ballots[0]))
    result = admit(pool, [registration.raw] + ballots)
    assert len(pool) == 3 and codes(result) == [(3, "mempool_full")]
    assert pool.pending_bytes <= pool.max_bytes
    with pytest.raises(Overloaded):
        pool.check_room(len(ballots[0]))


def test_check_room_counts_bytes_being_verified(chain_: Chain) -> None:
    pool = chain_.mempool()
    pool.inflight_bytes = 8 * 1024 * 1024
    with pytest.raises(Overloaded) as refused:
        pool.check_room(1000)
    assert refused.value.code == "busy"
    pool.inflight_bytes = 0
    pool.check_room(1000)


def test_reap_is_fifo_within_limits(chain_: Chain) -> None:
    pool = chain_.mempool()
    voters = chain_.voters(6)
    batch = [chain_.register(voters).raw] + [chain_.vote(v).raw for v in voters]
    admit(pool, batch)
    assert [tx.raw for tx in pool.reap(3, 1 << 20)] == batch[:3]
    assert [tx.raw for tx in pool.reap(100, len(batch[0]) + len(batch[1]))] == batch[:2]


def test_commit_of_pending_transactions_keeps_the_check_state_without_rebuilding(chain_: Chain) -> None:
    pool = chain_.mempool()
    voters = chain_.voters(4)
    registration = chain_.register(voters)
    ballots = [chain_.vote(v) for v in voters]
    admit(pool, [registration.raw] + [b.raw for b in ballots])
    rebuilds = pool.rebuilds
    block_txs = [registration.raw, ballots[2].raw, ballots[0].raw]  # another order: ballots commute
    exact = pool.absorb(block_txs, block_events=False)
    chain_.builder.add_block([registration, ballots[2], ballots[0]], time_ms=NOW - 1000)
    pool.after_commit(block_txs, exact=exact)
    assert exact and pool.rebuilds == rebuilds
    assert set(pool.pending) == {ballots[1].hash, ballots[3].hash}
    # the check state still knows who voted: a second ballot of a committed voter is refused
    result = admit(pool, [chain_.vote(voters[0], choice="n2").raw, chain_.vote(voters[1], choice="n2").raw])
    assert codes(result) == [(0, "double_vote"), (1, "double_vote")]


def test_recheck_after_commit_drops_what_no_longer_applies(chain_: Chain) -> None:
    pool = chain_.mempool()
    voters = chain_.voters(2)
    registration = chain_.register(voters)
    chain_.builder.add_block([registration], time_ms=NOW - 2000)
    pool.after_commit([registration.raw], exact=False)
    mine = chain_.vote(voters[0], choice="n1")
    other = chain_.vote(voters[1])
    admit(pool, [mine.raw, other.raw])
    conflicting = chain_.vote(voters[0], choice="n2")  # the same voter's other ballot, submitted elsewhere
    exact = pool.absorb([conflicting.raw], block_events=False)
    chain_.builder.add_block([conflicting], time_ms=NOW - 1000)
    pool.after_commit([conflicting.raw], exact=exact)
    assert not exact
    assert list(pool.pending) == [other.hash]
    found = pool.status(mine.hash)
    assert found is not None and found[:2] == ("rejected", "double_vote") and found[2]
    assert pool.status(other.hash) == ("pending", "", "")
    assert pool.status(b"\x00" * 32) is None


def test_block_with_a_campaign_event_forces_a_rebuild(chain_: Chain) -> None:
    pool = chain_.mempool()
    voters = chain_.voters(1)
    admit(pool, [chain_.register(voters).raw, chain_.vote(voters[0]).raw])
    close = chain_.builder.close("c1")
    exact = pool.absorb([close.raw], block_events=True)
    chain_.builder.add_block([close], time_ms=NOW - 1000)
    pool.after_commit([close.raw], exact=exact)
    assert not exact
    assert len(pool) == 0
    assert {code for code, _ in pool.rejected.values()} == {"campaign_closed", "outside_window"}


def test_observer_expiry(chain_: Chain) -> None:
    pool = chain_.mempool()
    voters = chain_.voters(1)
    admit(pool, [chain_.register(voters).raw])
    assert pool.expire(NOW) == 0
    assert pool.expire(NOW + 1) == 1
    assert len(pool) == 0 and pool.pending_bytes == 0


def test_batch_decoding_valid_and_invalid() -> None:
    assert decode_batch(encode_batch([b"a", b"bc"])) == [b"a", b"bc"]
    for bad in (b"", b"\xc1", encode_batch([]), b"\x92\x01\x02", b"\x91\xa3abc"):
        with pytest.raises(BadRequest):
            decode_batch(bad)
    with pytest.raises(PayloadTooLarge):
        decode_batch(encode_batch([b"x"] * 5001))
    with pytest.raises(PayloadTooLarge):
        decode_batch(b"\x00" * (4 * 1024 * 1024 + 1))


def test_client_budgets_refill_and_are_per_client() -> None:
    now = [1000.0]
    budgets = ClientBudgets(rate=100, burst=10, clock=lambda: now[0])
    assert budgets.burst == 5000  # never below one full batch
    assert budgets.take("a", 5000) is None
    wait = budgets.take("a", 50)
    assert wait == pytest.approx(0.5)
    assert budgets.retry_after("a") == pytest.approx(0.01)
    assert budgets.take("b", 10) is None  # another client has its own bucket
    now[0] += 0.5
    assert budgets.take("a", 50) is None
    assert budgets.retry_after("a") is not None


def test_client_budgets_forget_old_clients() -> None:
    budgets = ClientBudgets(rate=1, burst=1, max_clients=3, clock=lambda: 0.0)
    for client in "abcd":
        budgets.take(client, 5000)
    assert budgets.retry_after("a") is None  # evicted: a fresh bucket
    assert budgets.retry_after("d") is not None


def test_backlog_beyond_what_the_network_commits_is_shed(chain_: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    import node.mempool as module

    monkeypatch.setattr(module, "BACKLOG_FLOOR_TXS", 3)
    pool = chain_.mempool()
    assert pool.commit_rate() == 0 and pool.backlog_limit() == 3
    voters = chain_.voters(3)
    admit(pool, [chain_.register(voters).raw] + [chain_.vote(v).raw for v in voters[:2]])
    with pytest.raises(Overloaded) as refused:
        pool.check_room(100)
    assert refused.value.code == "backlog" and refused.value.retry_after
    pool.note_committed(5000)  # the network commits 5000 txs/s: one second of backlog is 5000
    assert pool.commit_rate() == 5000 and pool.backlog_limit() == 5000
    pool.check_room(100)


def test_large_batches_are_admitted_in_order_across_slices(chain_: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    import node.mempool as module

    monkeypatch.setattr(module, "ADMIT_SLICE", 3)
    pool = chain_.mempool()
    voters = chain_.voters(5)
    registration = chain_.register(voters)
    batch = [registration.raw] + [chain_.vote(v).raw for v in voters] + [registration.raw, b"\x01"]
    result = admit(pool, batch)
    assert codes(result) == [(6, "duplicate"), (7, "malformed")]
    assert [bytes.fromhex(h.hex()) for h in result.accepted] == [chain.crypto.sha256(raw) for raw in batch[:6]]
    assert [tx.raw for tx in pool.reap(100, 1 << 20)] == batch[:6]


def test_verified_hashes_leave_when_their_transactions_commit(chain_: Chain, verify_calls: list[bytes]) -> None:
    """Soak memory: a committed ballot's hash is not kept in ``verified`` (it grew ~200 bytes per ballot)."""
    pool = chain_.mempool()
    heights = 30
    for height in range(heights):
        voters = chain_.voters(4)
        registration = chain_.register(voters)
        ballots = [chain_.vote(v) for v in voters]
        admit(pool, [registration.raw] + [b.raw for b in ballots])
        waiting = chain_.vote(chain_.voters(1)[0])  # never registered: rejected, its hash stays verified
        admit(pool, [waiting.raw])
        block = [registration, *ballots]
        exact = pool.absorb([tx.raw for tx in block], block_events=False)
        chain_.builder.add_block(block, time_ms=T0 + 6_000 + height * 10)
        pool.after_commit([tx.raw for tx in block], exact=exact)
        assert len(pool) == 0
        assert len(pool.verified) <= height + 1  # only the never-committed ones, not 5 per height
    calls = len(verify_calls)
    result = admit(pool, [registration.raw, ballots[0].raw])  # gossip of committed ones: refused, not re-verified
    assert codes(result) == [(0, "already_committed"), (1, "already_committed")]
    assert len(verify_calls) == calls


def test_verified_hashes_of_transactions_that_never_commit_are_capped(chain_: Chain,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node.mempool, "VERIFIED_MEMORY", 50)
    pool = chain_.mempool()
    for round_ in range(10):
        pool.mark_verified(bytes([round_, index]) * 16 for index in range(20))
        assert len(pool.verified) <= 50
    assert bytes([9, 19]) * 16 in pool.verified and bytes([0, 0]) * 16 not in pool.verified  # oldest out first


@pytest.mark.parametrize("ballot, choices, points, code", [
    (chain.tx.BallotSpec("knapsack", 1, 2, max_sum_cost=1500), ["n1", "n2"], None, "cost_cap"),
    (chain.tx.BallotSpec("cumulative", 1, 2, max_sum_points=5), ["n1", "n2"], [4, 2], "points_total"),
    (chain.tx.BallotSpec("cumulative", 1, 2, max_sum_points=5, max_points=3), ["n1"], [4], "points_max"),
    (chain.tx.BallotSpec("ordinal", 1, 2, rank_points=(2, 1)), ["n1", "n2"], [2, 2], "rank_points"),
    (chain.tx.BallotSpec("ordinal", 1, 2, rank_points=(2, 1)), ["n1", "n2"], None, "bad_ballot"),
])
def test_a_ballot_over_its_campaigns_limits_is_refused_at_admission(
        ballot: chain.tx.BallotSpec, choices: list[str], points: list[int] | None, code: str) -> None:
    from tests.node.chainfix import make_chain

    fixture = make_chain(ballot=ballot)
    pool = fixture.mempool()
    voters = fixture.voters(2)
    assert admit(pool, [fixture.register(voters).raw]).rejected == []
    over = make_vote(fixture.genesis.chain_id, voters[0], "c1", "north", choices, points)
    result = admit(pool, [over.raw])
    assert codes(result) == [(0, code)] and len(pool) == 1
    fits = make_vote(fixture.genesis.chain_id, voters[1], "c1", "north", ["n1"],
                     None if points is None and ballot.type == "knapsack" else list(ballot.rank_points[:1]) or [1])
    assert admit(pool, [fits.raw]).rejected == [] and len(pool) == 2
def test_token_records_and_voter_held_ballots_commit_without_a_rebuild() -> None:
    """tokens.issued only raises a counter: like registrations, it commutes with ballots, so a block of
    them keeps the check state exact (a rebuild per block would re-apply the whole pending set)."""
    from tests.chain.test_voter_held import CERT, certified_chain, held_vote, issue, tokens

    chain = certified_chain()
    pool = Mempool(chain.ledger, clock_ms=lambda: chain.now + 1000, max_txs=1000, max_bytes=1 << 24)
    voters = [SigningKey.generate() for _ in range(3)]
    record = tokens(chain, 3)
    ballots = [held_vote(voter, issue(CERT, "c1", voter)) for voter in voters]
    assert admit(pool, [record.raw] + [ballot.raw for ballot in ballots]).rejected == []
    rebuilds = pool.rebuilds
    block = [record, ballots[1], ballots[0]]
    exact = pool.absorb([tx.raw for tx in block], block_events=False)
    chain.commit_block(block)
    pool.after_commit([tx.raw for tx in block], exact=exact)
    assert exact and pool.rebuilds == rebuilds
    assert set(pool.pending) == {ballots[2].hash}
    # the check state still counts: a fourth voter-held key finds no token left
    fourth = SigningKey.generate()
    assert codes(admit(pool, [held_vote(fourth, issue(CERT, "c1", fourth)).raw])) == [(0, "tokens_exhausted")]


def test_a_token_is_verified_once_per_node_per_ballot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The RSA check of a voter-held ballot's token (≈ 50 µs) is paid once per node: at admission, or
    in the proposal check for a ballot first seen there — never again in the proposal, the commit or
    the ballot's later gossip."""
    import chain.blind
    import chain.state
    from chain.block import Block
    from node.chain_app import ChainApp
    from tests.chain.test_voter_held import CERT, certified_chain, held_vote, issue, tokens

    checked: list[bytes] = []
    real = chain.blind.verify_token

    def counting(modulus: bytes, chain_id: str, campaign_id: str, voter_key: bytes, token: bytes) -> None:
        checked.append(voter_key)
        real(modulus, chain_id, campaign_id, voter_key, token)

    monkeypatch.setattr(chain.blind, "verify_token", counting)
    monkeypatch.setattr(chain.state, "verify_token", counting)
    test_chain = certified_chain()
    test_chain.commit_block([tokens(test_chain, 3)])
    now = test_chain.now + 1000
    pool = Mempool(test_chain.ledger, clock_ms=lambda: now, max_txs=1000, max_bytes=1 << 24)
    app = ChainApp(test_chain.ledger, pool, max_block_txs=100, wall_clock_ms=lambda: now)
    voters = [SigningKey.generate() for _ in range(3)]
    ballots = [held_vote(voter, issue(CERT, "c1", voter)) for voter in voters]

    assert admit(pool, [ballot.raw for ballot in ballots[:2]]).rejected == []   # from a client or gossip
    assert checked == [voters[0].public_key, voters[1].public_key]
    built = test_chain.build(ballots, time_ms=now)          # another validator's proposal, with a ballot unseen here
    checked.clear()
    height = test_chain.ledger.height + 1
    encoded = built.block.encode()
    block_hash = app.check_block(height, encoded, now)
    assert block_hash == built.block.hash()
    assert checked == [voters[2].public_key]                 # only the ballot this node had not seen
    assert admit(pool, [ballots[2].raw]).rejected == []      # its gossip arrives after the proposal: no re-check
    assert checked == [voters[2].public_key]
    assert app.commit(height, encoded, block_hash, test_chain.certify(Block.decode(encoded))) is not None
    assert codes(admit(pool, [ballot.raw for ballot in ballots])) == [(0, "already_committed"), (1, "already_committed"),
                                                                       (2, "already_committed")]
    assert checked == [voters[2].public_key]
