"""One valid/invalid pair per rule of Algorithm 1 (line numbers of the paper).

The engine under test is validator 3 of four (quorum 3, skip threshold 2). At height 1 the
proposer of round r is validator (1 + r) mod 4: round 0 → 1, round 1 → 2, round 2 → 3, round 3 → 0.
"""

from __future__ import annotations

from chain.block import verify_certificate
from consensus import Commit, Engine, Proposal, Vote
from consensus.engine import STEP_NEW_HEIGHT
from tests.consensus.helpers import (
    CHAIN_ID,
    ScriptedApp,
    block_hash,
    feed,
    make_engine,
    own_votes,
    precommit,
    prevote,
    proposal,
    sent,
    validator_set,
)


def running(app: ScriptedApp | None = None, my_index: int = 3) -> tuple[Engine, ScriptedApp]:
    """An engine that started round 0 of height 1 at time 0 (transactions are pending)."""
    engine, app = make_engine(my_index, app=app)
    app.pending = True
    engine.start(0)
    assert engine.round == 0 and engine.step == "propose"
    return engine, app


def locked_on_a_in_round_0() -> tuple[Engine, ScriptedApp]:
    engine, app = running()
    feed(engine, [proposal(1, 0, "A"), prevote(1, 0, "A", 0), prevote(1, 0, "A", 1)])
    assert engine.locked_round == 0
    return engine, app


def skip_to_round(engine: Engine, round_: int, now: int = 0) -> None:
    """Two validators (the skip threshold) send precommit nil from ``round_``."""
    feed(engine, [precommit(1, round_, None, 0), precommit(1, round_, None, 1)], now)
    assert engine.round == round_


# --- line 22: a fresh proposal ------------------------------------------------------------------

def test_line22_valid_proposal_is_prevoted() -> None:
    engine, _ = running()
    outputs = engine.receive(proposal(1, 0, "A"), 0)
    assert [v.block_hash for v in own_votes(outputs, engine, "prevote")] == [block_hash("A")]


def test_line22_invalid_proposal_is_prevoted_nil() -> None:
    engine, _ = running(ScriptedApp(invalid={"A"}))
    outputs = engine.receive(proposal(1, 0, "A"), 0)
    assert [v.block_hash for v in own_votes(outputs, engine, "prevote")] == [None]


def test_line22_locked_validator_prevotes_its_locked_block() -> None:
    engine, _ = locked_on_a_in_round_0()
    skip_to_round(engine, 1)
    outputs = engine.receive(proposal(1, 1, "A"), 0)
    assert [v.block_hash for v in own_votes(outputs, engine, "prevote")] == [block_hash("A")]


def test_line22_locked_validator_prevotes_nil_for_another_block() -> None:
    engine, _ = locked_on_a_in_round_0()
    skip_to_round(engine, 1)
    outputs = engine.receive(proposal(1, 1, "B"), 0)
    assert [v.block_hash for v in own_votes(outputs, engine, "prevote")] == [None]


# --- line 28: a re-proposal with a proof-of-lock round -------------------------------------------

def test_line28_reproposal_backed_by_a_polka_is_prevoted() -> None:
    engine, _ = running()
    feed(engine, [prevote(1, 0, "A", i) for i in (0, 1, 2)])  # a polka we saw while still proposing
    skip_to_round(engine, 1)
    outputs = engine.receive(proposal(1, 1, "A", pol_round=0), 0)
    assert [v.block_hash for v in own_votes(outputs, engine, "prevote")] == [block_hash("A")]


def test_line28_reproposal_without_its_polka_waits_then_prevotes_nil() -> None:
    engine, _ = running()
    feed(engine, [prevote(1, 0, "A", i) for i in (0, 1)])  # only two: no polka
    skip_to_round(engine, 1)
    assert own_votes(engine.receive(proposal(1, 1, "A", pol_round=0), 0), engine, "prevote") == []
    outputs = engine.tick(TIMEOUT_PROPOSE_ROUND_1)
    assert [v.block_hash for v in own_votes(outputs, engine, "prevote")] == [None]


TIMEOUT_PROPOSE_ROUND_1 = 1000 + 500


def test_line28_a_later_polka_unlocks() -> None:
    engine, _ = locked_on_a_in_round_0()
    feed(engine, [prevote(1, 1, "B", i) for i in (0, 1, 2)])  # polka for B in round 1
    skip_to_round(engine, 3)
    outputs = engine.receive(proposal(1, 3, "B", pol_round=1), 0)
    assert [v.block_hash for v in own_votes(outputs, engine, "prevote")] == [block_hash("B")]


def test_line28_an_older_polka_does_not_unlock() -> None:
    engine, _ = running()
    feed(engine, [prevote(1, 0, "B", i) for i in (0, 1, 2)])  # polka for B in round 0, we did not lock
    skip_to_round(engine, 1)
    feed(engine, [proposal(1, 1, "A")] + [prevote(1, 1, "A", i) for i in (0, 1)])
    assert engine.locked_round == 1  # locked on A in round 1
    skip_to_round(engine, 3)
    outputs = engine.receive(proposal(1, 3, "B", pol_round=0), 0)
    assert [v.block_hash for v in own_votes(outputs, engine, "prevote")] == [None]


# --- line 34: a quorum of any prevotes starts the prevote timeout --------------------------------

def test_line34_mixed_prevote_quorum_leads_to_precommit_nil_after_timeout() -> None:
    engine, _ = running()
    feed(engine, [proposal(1, 0, "A"), prevote(1, 0, None, 0), prevote(1, 0, "B", 1)], now=100)
    assert engine.next_deadline() == 100 + 500
    assert own_votes(engine.tick(599), engine, "precommit") == []
    assert [v.block_hash for v in own_votes(engine.tick(600), engine, "precommit")] == [None]


def test_line34_without_a_quorum_there_is_no_prevote_timeout() -> None:
    engine, _ = running()
    feed(engine, [proposal(1, 0, "A"), prevote(1, 0, None, 0)], now=100)
    assert own_votes(engine.tick(10_000), engine, "precommit") == []
    assert engine.step == "prevote"


# --- line 36: a polka for this round's proposal ---------------------------------------------------

def test_line36_polka_for_the_proposal_locks_and_precommits() -> None:
    engine, _ = running()
    outputs = feed(engine, [proposal(1, 0, "A"), prevote(1, 0, "A", 0), prevote(1, 0, "A", 1)])
    assert [v.block_hash for v in own_votes(outputs, engine, "precommit")] == [block_hash("A")]
    assert (engine.locked_round, engine.valid_round) == (0, 0)


def test_line36_polka_without_the_proposal_does_nothing() -> None:
    engine, _ = running()
    outputs = feed(engine, [prevote(1, 0, "A", i) for i in (0, 1, 2)])
    assert own_votes(outputs, engine, "precommit") == [] and engine.locked_round == -1


def test_line36_polka_for_an_invalid_block_does_not_lock() -> None:
    engine, _ = running(ScriptedApp(invalid={"A"}))
    outputs = feed(engine, [proposal(1, 0, "A"), prevote(1, 0, "A", 0), prevote(1, 0, "A", 1)])
    assert own_votes(outputs, engine, "precommit") == [] and engine.locked_round == -1


def test_line36_polka_after_precommit_nil_only_sets_the_valid_value() -> None:
    engine, _ = running()
    feed(engine, [prevote(1, 0, None, 0), prevote(1, 0, None, 1)])
    engine.tick(1000)  # propose timeout: prevote nil → nil polka → precommit nil
    assert engine.step == "precommit"
    feed(engine, [proposal(1, 0, "A"), prevote(1, 0, "A", 2)])
    feed(engine, [prevote(1, 0, "A", i) for i in (0, 1)])  # conflicting votes count per block
    assert (engine.locked_round, engine.valid_round) == (-1, 0)


# --- line 44: a nil polka --------------------------------------------------------------------------

def test_line44_nil_polka_precommits_nil() -> None:
    engine, _ = running()
    outputs = feed(engine, [proposal(1, 0, "A")] + [prevote(1, 0, None, i) for i in (0, 1)])
    assert [v.block_hash for v in own_votes(outputs, engine, "precommit")] == []  # 2 nil + our A: no polka
    outputs = engine.receive(prevote(1, 0, None, 2), 0)
    assert [v.block_hash for v in own_votes(outputs, engine, "precommit")] == [None]


def test_line44_two_nil_prevotes_are_not_a_polka() -> None:
    engine, _ = running(ScriptedApp(invalid={"A"}))
    outputs = feed(engine, [proposal(1, 0, "A"), prevote(1, 0, "A", 0), prevote(1, 0, None, 1)])
    assert own_votes(outputs, engine, "precommit") == []


# --- line 47: a quorum of any precommits starts the precommit timeout ------------------------------

def test_line47_precommit_quorum_moves_to_the_next_round_after_timeout() -> None:
    engine, _ = running()
    feed(engine, [precommit(1, 0, None, 0), precommit(1, 0, "B", 1), precommit(1, 0, None, 2)], now=10)
    assert engine.round == 0
    engine.tick(10 + 499)
    assert engine.round == 0
    engine.tick(10 + 500)
    assert (engine.round, engine.step) == (1, "propose")


def test_line47_two_precommits_do_not_start_the_timeout() -> None:
    engine, _ = running()
    feed(engine, [precommit(1, 0, "B", 1), precommit(1, 0, None, 2)])  # skip needs round > 0
    engine.tick(900)
    assert engine.round == 0


# --- line 49: a decision ---------------------------------------------------------------------------

def test_line49_quorum_of_precommits_with_the_block_commits() -> None:
    engine, app = running()
    outputs = feed(engine, [proposal(1, 0, "A")] + [precommit(1, 0, "A", i) for i in (0, 1, 2)])
    commits = [o for o in outputs if isinstance(o, Commit)]
    assert len(commits) == 1 and commits[0].block_hash == block_hash("A") and commits[0].height == 1
    verify_certificate(commits[0].certificate, validator_set(), CHAIN_ID, height=1, block_hash=block_hash("A"))
    assert engine.height == 2


def test_line49_one_precommit_short_of_quorum_does_not_commit() -> None:
    engine, _ = running()
    outputs = feed(engine, [proposal(1, 0, "A")] + [precommit(1, 0, "A", i) for i in (0, 1)])
    assert not any(isinstance(o, Commit) for o in outputs) and engine.height == 1


def test_line49_precommits_for_a_block_we_do_not_have_do_not_commit() -> None:
    engine, _ = running()
    outputs = feed(engine, [proposal(1, 0, "A")] + [precommit(1, 0, "B", i) for i in (0, 1, 2)])
    assert not any(isinstance(o, Commit) for o in outputs)


def test_line49_precommits_from_an_earlier_round_commit() -> None:
    engine, _ = running()
    feed(engine, [proposal(1, 0, "A")])
    skip_to_round(engine, 2)
    outputs = feed(engine, [precommit(1, 0, "A", i) for i in (0, 1, 2)])
    assert [o.block_hash for o in outputs if isinstance(o, Commit)] == [block_hash("A")]


def test_line49_block_invalid_for_our_clock_is_committed_once_it_checks() -> None:
    app = ScriptedApp(invalid={"A"})
    engine, _ = running(app)
    outputs = feed(engine, [proposal(1, 0, "A")] + [precommit(1, 0, "A", i) for i in (0, 1, 2)], now=5)
    assert not any(isinstance(o, Commit) for o in outputs)
    deadline = engine.next_deadline()
    assert deadline is not None and deadline <= 5 + 50
    app.invalid.clear()  # our clock caught up with the block time
    assert any(isinstance(o, Commit) for o in engine.tick(deadline))


# --- line 55: skipping to a higher round -----------------------------------------------------------

def test_line55_skip_threshold_of_a_higher_round_starts_it() -> None:
    engine, _ = running()
    feed(engine, [prevote(1, 3, None, 0), precommit(1, 3, None, 1)])
    assert (engine.round, engine.step) == (3, "propose")


def test_line55_fewer_than_the_skip_threshold_do_not() -> None:
    engine, _ = running()
    feed(engine, [prevote(1, 2, None, 0), precommit(1, 2, None, 0)])
    assert engine.round == 0


# --- lines 57-65: timeouts -------------------------------------------------------------------------

def test_propose_timeout_grows_with_the_round() -> None:
    engine, _ = running()
    assert engine.next_deadline() == 1000
    assert own_votes(engine.tick(999), engine, "prevote") == []
    assert [v.block_hash for v in own_votes(engine.tick(1000), engine, "prevote")] == [None]
    skip_to_round(engine, 1, now=2000)
    assert engine.next_deadline() == 2000 + 1500


def test_a_timeout_of_an_old_round_is_ignored() -> None:
    engine, _ = running()
    skip_to_round(engine, 1, now=10)
    assert own_votes(engine.tick(1000), engine, "prevote") == []  # round 0's propose timeout
    assert engine.step == "propose"


# --- the proposer ------------------------------------------------------------------------------------

def test_proposer_waits_for_the_batch_then_proposes_and_prevotes() -> None:
    engine, app = make_engine(1)  # proposer of height 1 round 0
    app.pending = True
    assert sent(engine.start(0)) == []
    assert engine.next_deadline() == 5
    outputs = engine.tick(5)
    proposals = sent(outputs, Proposal)
    assert len(proposals) == 1 and proposals[0].block_hash == block_hash("A") and proposals[0].pol_round == -1
    assert [v.block_hash for v in own_votes(outputs, engine, "prevote")] == [block_hash("A")]


def test_proposer_reproposes_its_valid_value_with_the_polka() -> None:
    engine, app = make_engine(3)
    app.pending = True
    engine.start(0)
    feed(engine, [proposal(1, 0, "A"), prevote(1, 0, "A", 0), prevote(1, 0, "A", 1)])  # lock on A, round 0
    app.next_tag = "Z"
    outputs = feed(engine, [precommit(1, 2, None, 0), precommit(1, 2, None, 1)])  # skip to round 2: ours
    proposals = sent(outputs, Proposal)
    assert [(p.block_hash, p.pol_round) for p in proposals] == [(block_hash("A"), 0)]
    relayed = {v.validator_index for v in sent(outputs, Vote) if v.round == 0 and v.step == "prevote"}
    assert relayed == {0, 1, 3}
    assert ("create_block", 1) not in app.calls


def test_new_height_waits_without_transactions() -> None:
    engine, app = make_engine(3)
    engine.start(0)
    engine.tick(4999)
    assert engine.step == STEP_NEW_HEIGHT
    engine.tick(5000)  # heartbeat
    assert engine.step == "propose"
