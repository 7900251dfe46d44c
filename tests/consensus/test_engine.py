"""Engine lifecycle: admission of peer messages, evidence, block cutting, heights, restarts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from chain.block import make_certificate
from consensus import (
    Broadcast,
    Commit,
    EvidenceFound,
    LocalProtocolError,
    Message,
    Output,
    PeerAhead,
    PersistSigningState,
    Evidence,
    Proposal,
    RejectedMessage,
    Send,
    SigningState,
    Vote,
    encode_evidence,
    encode_message,
    make_vote,
)
from consensus.engine import STEP_NEW_HEIGHT, Engine
from consensus.messages import make_evidence
from tests.consensus.helpers import (
    KEYS,
    TIMEOUTS,
    ScriptedApp,
    block_hash,
    feed,
    make_engine,
    own_votes,
    precommit,
    prevote,
    proposal,
    sent,
)


def running(my_index: int | None = 3) -> tuple[Engine, ScriptedApp]:
    engine, app = make_engine(my_index)
    app.pending = True
    engine.start(0)
    return engine, app


def rejections(outputs: Sequence[object]) -> list[str]:
    return [o.error.code for o in outputs if isinstance(o, RejectedMessage)]


def commit_height_1(engine: Engine, now: int = 0) -> list[Output]:
    return list(feed(engine, [proposal(1, 0, "A")] + [precommit(1, 0, "A", i) for i in (0, 1, 2)], now))


# --- admission -----------------------------------------------------------------------------------

def test_wrong_chain_unknown_validator_and_bad_signature_are_rejected_and_counted() -> None:
    engine, _ = running()
    other_chain = make_vote("other", "prevote", 1, 0, None, 0, KEYS[0].sign)
    unknown = make_vote("veche-test", "prevote", 1, 0, None, 7, KEYS[7].sign)
    forged = replace(prevote(1, 0, "A", 0), block_hash=block_hash("B"))
    outputs = feed(engine, [other_chain, unknown, forged], sender=2)
    assert rejections(outputs) == ["wrong_chain", "unknown_validator", "bad_signature"]
    assert engine.rejected == {"wrong_chain": 1, "unknown_validator": 1, "bad_signature": 1}
    rejected = [o for o in outputs if isinstance(o, RejectedMessage)]
    # counted against the authenticated link (validator 2), not the signer a message names
    assert [o.sender_index for o in rejected] == [2, 2, 2]
    assert [o.claimed_index for o in rejected] == [0, None, 0]


def test_a_forged_vote_is_blamed_on_the_link_that_carried_it_not_on_its_claimed_signer() -> None:
    engine, _ = running()
    forged = replace(prevote(1, 0, "A", 1), block_hash=block_hash("B"))  # claims validator 1, bad signature
    outputs = engine.receive(forged, 0, sender=3)
    assert [(o.sender_index, o.claimed_index, o.error.code) for o in outputs
            if isinstance(o, RejectedMessage)] == [(3, 1, "bad_signature")]
    lying = replace(proposal(1, 0, "A"), block=b"block:B")   # validly signed hash, other bytes, relayed by 2
    outputs = engine.receive(lying, 0, sender=2)
    assert [(o.sender_index, o.claimed_index, o.error.code) for o in outputs
            if isinstance(o, RejectedMessage)] == [(2, 1, "invalid_proposal")]
    outputs = engine.receive_data(b"\x93\x01\x02", 0, sender=0)
    assert [(o.sender_index, o.error.code) for o in outputs if isinstance(o, RejectedMessage)] == [(0, "malformed")]


def test_proposal_from_the_wrong_proposer_is_rejected() -> None:
    engine, _ = running()
    assert rejections(engine.receive(proposal(1, 0, "A", proposer=2), 0)) == ["wrong_proposer"]


def test_proposal_whose_bytes_do_not_match_its_hash_is_rejected_and_prevoted_nil() -> None:
    engine, _ = running()
    lying = replace(proposal(1, 0, "A"), block=b"block:B")
    outputs = engine.receive(lying, 0)
    assert rejections(outputs) == ["invalid_proposal"]
    assert [v.block_hash for v in own_votes(outputs, engine, "prevote")] == [None]


def test_garbage_bytes_are_rejected_without_a_sender() -> None:
    engine, _ = running()
    outputs = engine.receive_data(b"\x93\x01\x02", 0)
    assert [(o.sender_index, o.error.code) for o in outputs if isinstance(o, RejectedMessage)] == [(None, "malformed")]


def test_duplicates_and_stale_heights_are_ignored_silently() -> None:
    engine, _ = running()
    vote = prevote(1, 0, None, 0)
    assert feed(engine, [vote]) == []
    assert feed(engine, [vote, vote]) == []
    commit_height_1(engine)
    engine.tick(1)
    assert all(not isinstance(o, RejectedMessage) for o in feed(engine, [prevote(1, 5, None, 1)], now=2))


def test_equivocation_is_reported_once_with_both_signed_messages() -> None:
    engine, _ = running()
    outputs = feed(engine, [prevote(1, 0, "A", 0), prevote(1, 0, None, 0), prevote(1, 0, "B", 0)])
    found = [o.evidence for o in outputs if isinstance(o, EvidenceFound)]
    assert len(found) == 1
    assert {found[0].first.block_hash, found[0].second.block_hash} == {block_hash("A"), None}
    assert engine.evidence == found


def test_two_proposals_from_one_proposer_are_evidence() -> None:
    engine, _ = running()
    outputs = feed(engine, [proposal(1, 0, "A"), proposal(1, 0, "B")])
    assert len([o for o in outputs if isinstance(o, EvidenceFound)]) == 1


def test_a_validator_cannot_pin_unbounded_future_rounds() -> None:
    engine, _ = running()
    feed(engine, [prevote(1, r, None, 0) for r in range(5, 40)])
    tally_rounds = {r for (r, _), votes in engine._state.rounds.items() if votes.total}
    assert tally_rounds <= {5, 6}


# --- heights -------------------------------------------------------------------------------------

def test_commit_returns_before_any_call_for_the_next_height() -> None:
    engine, app = running()
    feed(engine, [proposal(1, 0, "A")] + [precommit(1, 0, "A", i) for i in (0, 1)])
    app.calls.clear()
    outputs = engine.receive(precommit(1, 0, "A", 2), 10)
    assert isinstance(outputs[-1], Commit)
    assert app.calls == [] and engine.height == 2
    assert engine.next_deadline() == 10
    engine.tick(10)
    assert ("has_pending", 0) in app.calls


def test_the_next_block_carries_the_certificate_of_the_last() -> None:
    engine, app = make_engine(2)  # proposer of height 2 round 0
    app.pending = True
    engine.start(0)
    outputs = commit_height_1(engine)
    certificate = [o for o in outputs if isinstance(o, Commit)][0].certificate
    engine.tick(1)
    engine.tick(6)
    assert app.last_commits[-1] == certificate


def test_messages_for_the_next_height_are_buffered_and_replayed() -> None:
    engine, _ = running()
    early = [proposal(2, 0, "B")] + [precommit(2, 0, "B", i) for i in (0, 1, 3)]
    assert feed(engine, early) == []
    commit_height_1(engine)
    outputs = engine.tick(1)
    assert [o.height for o in outputs if isinstance(o, Commit)] == [2]


def test_peer_ahead_after_the_grace_period_or_at_once_two_heights_up() -> None:
    engine, _ = running()
    feed(engine, [prevote(2, 0, None, 0), prevote(2, 0, None, 1)], now=100)
    assert not any(isinstance(o, PeerAhead) for o in engine.tick(100 + 999))
    assert [o for o in engine.tick(100 + 1000) if isinstance(o, PeerAhead)] == [PeerAhead(2)]
    outputs = feed(engine, [prevote(5, 0, None, 0), prevote(6, 0, None, 1)], now=1200)
    assert [o for o in outputs if isinstance(o, PeerAhead)] == [PeerAhead(5)]


def test_skip_to_jumps_heights_and_keeps_the_signing_state() -> None:
    engine, app = running()
    engine.receive(proposal(1, 0, "A"), 0)
    state_before = engine.signing_state
    certificate = make_certificate(9, 0, block_hash("X"), [(i, b"\x00" * 64) for i in range(3)])
    engine.skip_to(10, certificate)
    engine.tick(50)
    assert engine.height == 10 and engine.last_commit == certificate
    assert engine.signing_state == state_before
    with pytest.raises(LocalProtocolError):
        engine.skip_to(12, certificate)


def targeted(outputs: Sequence[object]) -> list[tuple[int, object]]:
    return [(o.to_index, o.message) for o in outputs if isinstance(o, Send)]


def test_a_stale_validator_that_precommitted_the_block_gets_only_the_other_precommits() -> None:
    engine, _ = make_engine(3)
    engine.start(0)
    feed(engine, [proposal(1, 0, "A")] + [precommit(1, 0, "A", i) for i in (0, 1, 2)])
    engine.tick(1)
    outputs = engine.receive(prevote(1, 3, None, 2), 2, sender=2)
    assert sent(outputs) == []                                       # nothing to everyone
    help_ = targeted(outputs)
    assert [to for to, _ in help_] == [2, 2]
    assert [m.block_hash for _, m in help_ if isinstance(m, Proposal)] == []   # 2 precommitted A
    assert sorted(m.validator_index for _, m in help_ if isinstance(m, Vote)) == [0, 1]
    assert targeted(engine.receive(prevote(1, 3, None, 2), 3, sender=2)) == []  # rate limited per peer
    later = targeted(engine.receive(prevote(1, 3, None, 2), 2 + TIMEOUTS.rebroadcast_ms, sender=2))
    # still stuck a rebroadcast later (it may have restarted and lost the proposal): now the block too
    assert [m.block_hash for _, m in later if isinstance(m, Proposal)] == [block_hash("A")]


def test_a_validator_without_the_block_gets_the_proposal_at_once() -> None:
    engine, _ = make_engine(3, n=5)
    engine.start(0)
    messages: list[Message] = [proposal(1, 0, "A", n=5), prevote(1, 0, None, 4)]
    feed(engine, messages + [prevote(1, 0, "A", i) for i in (0, 1, 2)] + [precommit(1, 0, "A", i) for i in (0, 1, 2)])
    engine.tick(1)
    assert engine.height == 2
    outputs = engine.receive(prevote(1, 1, None, 4), 2, sender=4)
    help_ = targeted(outputs)
    assert {to for to, _ in help_} == {4}
    assert [m.block_hash for _, m in help_ if isinstance(m, Proposal)] == [block_hash("A")]
    # another link relaying validator 4's stale vote: help goes to that link, and it voted for A
    relayed = targeted(engine.receive(prevote(1, 1, None, 4), 3, sender=0))
    assert {to for to, _ in relayed} == {0} and not [m for _, m in relayed if isinstance(m, Proposal)]


def test_after_block_sync_a_stale_validator_still_gets_the_certified_precommits() -> None:
    engine, _ = running()
    votes = [precommit(1, 0, "A", i) for i in (0, 1, 2)]
    engine.skip_to(2, make_certificate(1, 0, block_hash("A"), [(v.validator_index, v.signature) for v in votes]))
    engine.tick(10)
    help_ = targeted(engine.receive(prevote(1, 2, None, 1), 11, sender=1))
    # no proposal to give (the block came by sync), but the precommits let a holder of the block commit
    assert help_ == [(1, votes[0]), (1, votes[2])]


def test_gossiped_evidence_is_verified_recorded_once_and_relayed_once() -> None:
    engine, _ = running()
    evidence = make_evidence(prevote(1, 0, "A", 0), prevote(1, 0, None, 0))
    outputs = engine.receive(evidence, 0, sender=1)
    found = [o.evidence for o in outputs if isinstance(o, EvidenceFound)]
    assert found == [evidence] and engine.evidence == [evidence]
    assert rejections(outputs) == []
    assert engine.receive(evidence, 1, sender=2) == []                 # known slot: ignored
    assert [o for o in engine.receive(prevote(1, 0, "B", 0), 2) if isinstance(o, EvidenceFound)] == []


def test_restored_evidence_is_listed_and_not_recorded_or_relayed_again() -> None:
    engine, _ = running()
    evidence = make_evidence(prevote(1, 0, "A", 0), prevote(1, 0, None, 0))
    engine.restore_evidence([evidence, evidence])
    assert engine.evidence == [evidence]
    assert [o for o in engine.receive(evidence, 0, sender=1) if isinstance(o, EvidenceFound)] == []
    other = make_evidence(prevote(1, 0, "A", 1), prevote(1, 0, None, 1))
    assert [o.evidence for o in engine.receive(other, 1, sender=2) if isinstance(o, EvidenceFound)] == [other]


@pytest.mark.parametrize("case", ["same_vote", "forged", "other_chain", "different_slots", "unknown"])
def test_invalid_evidence_is_rejected_against_the_link_and_changes_nothing(case: str) -> None:
    engine, _ = running()
    a = prevote(1, 0, "A", 0)
    evidences = {
        "same_vote": Evidence(a, a),
        "forged": Evidence(a, replace(prevote(1, 0, None, 0), signature=b"\x01" * 64)),
        "other_chain": Evidence(make_vote("other", "prevote", 1, 0, None, 0, KEYS[0].sign),
                                make_vote("other", "prevote", 1, 0, block_hash("A"), 0, KEYS[0].sign)),
        "different_slots": Evidence(a, prevote(1, 1, None, 0)),
        "unknown": Evidence(make_vote("veche-test", "prevote", 1, 0, None, 7, KEYS[7].sign),
                            make_vote("veche-test", "prevote", 1, 0, block_hash("A"), 7, KEYS[7].sign)),
    }
    outputs = engine.receive(evidences[case], 0, sender=2)
    assert [(o.sender_index, o.error.code) for o in outputs if isinstance(o, RejectedMessage)] == [
        (2, "invalid_evidence")]
    assert engine.evidence == [] and not [o for o in outputs if isinstance(o, EvidenceFound)]
    # the real evidence for that slot is still accepted afterwards
    if case == "forged":
        good = make_evidence(a, prevote(1, 0, None, 0))
        assert [o.evidence for o in engine.receive(good, 1, sender=1) if isinstance(o, EvidenceFound)] == [good]


def test_evidence_arrives_as_bytes_too() -> None:
    engine, _ = running()
    evidence = make_evidence(precommit(1, 0, "A", 1), precommit(1, 0, "B", 1))
    outputs = engine.receive_data(encode_evidence(evidence), 0, sender=2)
    assert [o.evidence for o in outputs if isinstance(o, EvidenceFound)] == [evidence]


def test_a_relayed_precommit_contradicting_a_decided_height_is_evidence() -> None:
    engine, _ = running()
    commit_height_1(engine)
    engine.tick(1)
    assert engine.height == 2
    outputs = engine.receive(precommit(1, 0, None, 2), 2, sender=0)   # validator 2 precommitted A to us
    found = [o.evidence for o in outputs if isinstance(o, EvidenceFound)]
    assert len(found) == 1 and found[0].validator_index == 2


def test_a_certificate_with_a_signature_contradicting_a_held_precommit_is_evidence() -> None:
    engine, _ = running()
    feed(engine, [proposal(1, 0, "A")] + [precommit(1, 0, "A", i) for i in (0, 1, 2)] + [precommit(1, 0, None, 3)])
    engine.tick(1)
    twin = precommit(1, 0, "B", 2)                   # validator 2 also signed B in that round
    honest = [precommit(1, 0, "B", i) for i in (0, 1)]
    certificate = make_certificate(1, 0, block_hash("B"),
                                   [(v.validator_index, v.signature) for v in honest + [twin]])
    outputs = engine.observe_certificate(certificate, 5)
    accused = sorted(o.evidence.validator_index for o in outputs if isinstance(o, EvidenceFound))
    assert accused == [0, 1, 2]                      # (all three signed A in our tally as well)
    assert engine.observe_certificate(certificate, 6) == []
    agreeing = make_certificate(1, 0, block_hash("A"), [(i, precommit(1, 0, "A", i).signature) for i in (0, 1, 2)])
    fresh, _ = running()
    commit_height_1(fresh)
    fresh.tick(1)
    assert fresh.observe_certificate(agreeing, 5) == []


# --- block cutting ---------------------------------------------------------------------------------

def test_a_deadline_starts_the_height_without_transactions() -> None:
    engine, app = make_engine(3)
    engine.start(0)
    assert engine.step == STEP_NEW_HEIGHT
    app.deadline = True
    engine.tick(100)
    assert engine.step == "propose"


def test_a_proposal_starts_the_height() -> None:
    engine, _ = make_engine(3)
    engine.start(0)
    outputs = engine.receive(proposal(1, 0, "A"), 30)
    assert [v.block_hash for v in own_votes(outputs, engine, "prevote")] == [block_hash("A")]


def test_idle_engine_polls_the_application() -> None:
    engine, _ = make_engine(3)
    engine.start(0)
    assert engine.next_deadline() == 100


# --- crash safety ----------------------------------------------------------------------------------

def test_persist_comes_before_every_signed_message() -> None:
    engine, _ = running()
    outputs = feed(engine, [proposal(1, 0, "A"), prevote(1, 0, "A", 0), prevote(1, 0, "A", 1)])
    persisted: set[bytes] = set()
    for output in outputs:
        if isinstance(output, PersistSigningState):
            persisted.update(m.signature for m in output.state.last_signed)
        elif isinstance(output, Broadcast) and output.message.signer == 3:
            assert output.message.signature in persisted


def test_restart_resends_the_identical_messages_and_keeps_the_lock() -> None:
    engine, _ = running()
    feed(engine, [proposal(1, 0, "A"), prevote(1, 0, "A", 0), prevote(1, 0, "A", 1)])
    state = SigningState.decode(engine.signing_state.encode())
    assert (state.step, state.locked_round) == ("precommit", 0)

    restarted, app = make_engine(3, signing_state=state)
    outputs = restarted.start(500)
    assert sent(outputs) == list(state.last_signed)
    assert not any(isinstance(o, PersistSigningState) for o in outputs)
    assert (restarted.round, restarted.step, restarted.locked_round) == (0, "precommit", 0)
    # Nothing new is signed for round 0 even when a nil polka arrives; a later round B proposal gets nil.
    outputs = feed(restarted, [prevote(1, 0, None, i) for i in (0, 1, 2)], now=501)
    assert own_votes(outputs, restarted, "precommit") == []
    feed(restarted, [precommit(1, 1, None, 0), precommit(1, 1, None, 1)], now=502)
    outputs = restarted.receive(proposal(1, 1, "B"), 503)
    assert [v.block_hash for v in own_votes(outputs, restarted, "prevote")] == [None]


def locked_then_restarted() -> tuple[Engine, ScriptedApp]:
    """Validator 3 locks on A in round 0 (prevotes of 0, 1 and its own), then restarts: the prevotes of
    round 0 will never be sent again (peers re-send only their current and previous round)."""
    engine, _ = running()
    feed(engine, [proposal(1, 0, "A"), prevote(1, 0, "A", 0), prevote(1, 0, "A", 1)])
    state = SigningState.decode(engine.signing_state.encode())
    assert (state.locked_round, state.locked_block_hash) == (0, block_hash("A"))
    restarted, app = make_engine(3, signing_state=state)
    restarted.start(500)
    return restarted, app


def test_a_restarted_validator_locked_on_a_block_prevotes_its_reproposal() -> None:
    """Seed (4, 6187): two honest validators locked on A in round 0 restarted and forgot the polka that
    justified their lock, so they prevoted nil on every re-proposal of A (pol_round 0, line 28) and the
    third honest validator could not make a quorum alone: no commit for good. The persisted signing
    state now carries the prevotes that justify the lock and the valid value."""
    restarted, _ = locked_then_restarted()
    feed(restarted, [precommit(1, 1, None, 0), precommit(1, 1, None, 1)], now=501)  # on to round 1
    assert restarted.round == 1
    outputs = restarted.receive(proposal(1, 1, "A", pol_round=0), 502)
    assert [v.block_hash for v in own_votes(outputs, restarted, "prevote")] == [block_hash("A")]


def test_a_restarted_proposer_relays_the_whole_polka_of_its_valid_value() -> None:
    """Seed (5, 5034): a restarted proposer re-proposed its valid value A (pol_round 0) with only its
    own prevote of round 0 as justification; an honest validator that had never seen that polka
    prevoted nil on every re-proposal, and the locked ones nil on every other block: no commit for good."""
    restarted, _ = locked_then_restarted()
    outputs = feed(restarted, [precommit(1, 2, None, 0), precommit(1, 2, None, 1)], now=501)  # round 2: ours
    assert [(p.block_hash, p.pol_round) for p in sent(outputs, Proposal)] == [(block_hash("A"), 0)]
    relayed = {m.signer for m in sent(outputs, Vote) if (m.round, m.step) == (0, "prevote")}
    assert relayed == {0, 1, 3}


def test_a_forged_polka_in_the_signing_state_is_rejected_at_restart() -> None:
    engine, _ = running()
    feed(engine, [proposal(1, 0, "A"), prevote(1, 0, "A", 0), prevote(1, 0, "A", 1)])
    state = engine.signing_state
    forged = tuple(replace(v, signature=bytes(64)) if v.validator_index == 0 else v for v in state.polka)
    restarted, _ = make_engine(3, signing_state=replace(state, polka=forged))
    outputs = restarted.start(500)
    assert rejections(outputs) == ["bad_signature"]
    feed(restarted, [precommit(1, 1, None, 0), precommit(1, 1, None, 1)], now=501)
    outputs = restarted.receive(proposal(1, 1, "A", pol_round=0), 502)
    assert own_votes(outputs, restarted, "prevote") == []  # two prevotes of round 0: no polka yet


def test_a_wiped_validator_signs_nothing_below_its_signing_state() -> None:
    state = SigningState(height=5, round=2, step="precommit")
    engine, app = make_engine(1, signing_state=state)  # starts at height 1 after its data was wiped
    app.pending = True
    outputs = engine.start(0)
    outputs += engine.tick(5)
    outputs += feed(engine, [proposal(1, 0, "A", proposer=1)] + [prevote(1, 0, "A", i) for i in (0, 2, 3)])
    assert not any(isinstance(o, PersistSigningState) for o in outputs)
    assert [m for m in sent(outputs) if m.signer == 1] == []


def test_a_wiped_validator_behind_its_own_signing_state_asks_for_block_sync_at_once() -> None:
    """Seed (4, 14071): validators 0 and 1 lose their data while at height 2 (their signing state says
    so) and restart at height 1, where they may not sign: mute, so no one sends them decision help;
    one validator is ahead (fewer than the ⌊n/3⌋+1 ``PeerAhead`` counts) by one height (less than the
    status poll fetches for), the fourth is silent. Their own signing state proves block 1 exists:
    they ask for block sync at once, and again every ``rebroadcast_ms`` while still behind."""
    mine = prevote(2, 0, None, 1)
    state = SigningState(height=2, round=0, step="prevote", last_signed=(mine,))
    engine, _ = make_engine(1, signing_state=state)  # its data wiped: it starts at height 1
    outputs = engine.start(0)
    assert [o for o in outputs if isinstance(o, PeerAhead)] == [PeerAhead(2)]
    assert sent(outputs) == []
    assert not any(isinstance(o, PeerAhead) for o in engine.tick(TIMEOUTS.rebroadcast_ms - 1))
    assert engine.next_deadline() is not None and engine.next_deadline() <= TIMEOUTS.rebroadcast_ms
    assert [o for o in engine.tick(TIMEOUTS.rebroadcast_ms) if isinstance(o, PeerAhead)] == [PeerAhead(2)]
    # block sync brought block 1: back at its mark, it resends what it signed there and asks for nothing
    certificate = make_certificate(1, 0, block_hash("A"), [(i, b"\x00" * 64) for i in range(3)])
    engine.skip_to(2, certificate)
    outputs = engine.tick(TIMEOUTS.rebroadcast_ms + 10)
    assert not any(isinstance(o, PeerAhead) for o in outputs)
    assert sent(outputs) == [mine]
    assert not any(isinstance(o, PeerAhead) for o in engine.tick(3 * TIMEOUTS.rebroadcast_ms))


def test_a_validator_restarted_at_its_signing_state_height_does_not_ask_for_block_sync() -> None:
    state = SigningState(height=1, round=0, step="prevote", last_signed=(prevote(1, 0, None, 1),))
    engine, _ = make_engine(1, signing_state=state)
    outputs = engine.start(0) + engine.tick(TIMEOUTS.rebroadcast_ms) + engine.tick(3 * TIMEOUTS.rebroadcast_ms)
    assert not any(isinstance(o, PeerAhead) for o in outputs)


def test_observer_follows_and_never_signs() -> None:
    engine, app = make_engine(None)
    app.pending = True
    engine.start(0)
    outputs = commit_height_1(engine)
    assert [o.height for o in outputs if isinstance(o, Commit)] == [1]
    assert sent(outputs) == [] and not any(isinstance(o, PersistSigningState) for o in outputs)


def test_configuration_mistakes_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        make_engine(4)
    with pytest.raises(LocalProtocolError):
        Engine("veche-test", make_engine(0)[0].validators, 0, None, ScriptedApp())
    with pytest.raises(LocalProtocolError):
        make_engine(0, start_height=3, last_commit=make_certificate(1, 0, b"\x00" * 32, []))


def test_next_deadline_is_none_before_start() -> None:
    engine, _ = make_engine(3)
    assert engine.next_deadline() is None
    assert isinstance(encode_message(prevote(1, 0, None, 0)), bytes)


def test_a_recovered_floor_signs_nothing_at_or_below_it_and_everything_above() -> None:
    engine, _ = make_engine(3, signing_state=SigningState.recovered(1))
    outputs = engine.start(0)
    outputs += feed(engine, [proposal(1, 0, "A"), prevote(1, 0, "A", 0), prevote(1, 0, "A", 1),
                             prevote(1, 0, "A", 2)], now=1)
    assert [m for m in sent(outputs) if m.signer == 3] == []  # floor 1: no proposal, prevote or precommit
    assert not any(isinstance(o, PersistSigningState) for o in outputs)
    outputs = feed(engine, [precommit(1, 0, "A", i) for i in (0, 1, 2)], now=2)  # others commit height 1
    assert engine.height == 2
    outputs += feed(engine, [proposal(2, 0, "B")], now=3)
    mine = own_votes(outputs, engine, "prevote")
    assert [(v.height, v.block_hash) for v in mine] == [(2, block_hash("B"))]
    persisted = [o.state for o in outputs if isinstance(o, PersistSigningState)]
    assert persisted and all(state.floor == 1 for state in persisted)  # the floor is carried on
