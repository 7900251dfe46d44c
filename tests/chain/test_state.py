"""The state machine: a valid/invalid pair for every rule, atomicity of every rejection, and
generated transaction sequences checked against an independent model."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from chain.crypto import SigningKey
from chain.errors import StorageError, TxRejected, VecheError
from chain.ledger import Ledger
from chain.records import (
    INITIATIVE_APPROVED, INITIATIVE_REJECTED, INITIATIVE_SUBMITTED, STATUS_CLOSED, STATUS_OPEN, Progress,
    ballot_prefix, decode_ballot, progress_prefix,
)
from chain.state import AUTO_CLOSE_REASON, Execution, compute_app_hash
from chain.storage import MemoryStore
from chain.tx import (
    BallotSpec, CampaignClose, InitiativeReview, ProgressReport, RuleSpec, Tx, encode_tx, make_vote,
)
from tests.chain.helpers import (
    CHAIN_ID, GENESIS_HASH, SUBMISSION_END, T0, VOTING_END, VOTING_START, TestChain, campaign_spec,
    initiative_spec, make_params, new_chain, seeded_key,
)

IN_SUBMISSION = T0 + 1_000
IN_VOTING = VOTING_START + 1_000


def execution(chain: TestChain, time_ms: int) -> Execution:
    ex = chain.ledger.state.begin(chain.ledger.height + 1, time_ms)
    ex.begin_block()
    return ex


def effective(ex: Execution) -> dict[str, Any]:
    """Everything an execution would write, without folding pending counters (no mutation)."""
    campaigns = dict(ex.campaigns)
    for campaign_id, pending in ex._new_ballots.items():
        base = ex._campaign(campaign_id)
        assert base is not None
        campaigns[campaign_id] = replace(base, total_ballots=base.total_ballots + pending)
    return {"writes": dict(ex.writes), "campaigns": campaigns, "initiatives": dict(ex.initiatives),
            "tallies": dict(ex.tallies), "results": dict(ex.results), "tx_hashes": set(ex.tx_hashes),
            "events": list(ex.events)}


def expect_reject(ex: Execution, tx: Tx, code: str) -> None:
    before = effective(ex)
    with pytest.raises(TxRejected) as caught:
        ex.apply(tx)
    assert caught.value.code == code, caught.value.message
    assert effective(ex) == before, "a rejected transaction changed the execution"


def accept(ex: Execution, tx: Tx) -> None:
    ex.apply(tx)


@pytest.fixture
def chain() -> TestChain:
    return new_chain()


@pytest.fixture
def voting(chain: TestChain) -> TestChain:
    """The default chain inside the voting window with voters 0..3 registered."""
    chain.open_voting()
    chain.commit_block([chain.register(chain.new_voters(4))])
    return chain


def voter(n: int) -> SigningKey:
    return seeded_key(f"voter-{n}")


# --- genesis ----------------------------------------------------------------------------------------


def test_genesis_data_applies_at_height_zero(chain: TestChain) -> None:
    state = chain.ledger.state
    assert chain.ledger.height == 0 and state.time_ms == T0
    campaign = state.campaigns["c1"]
    assert campaign.status == STATUS_OPEN and campaign.initiative_count == 5 and campaign.created_height == 0
    assert [i.spec.initiative_id for i in state.campaign_initiatives("c1")] == ["a1", "a2", "a3", "b1", "b2"]
    assert all(i.status == INITIATIVE_APPROVED for i in state.campaign_initiatives("c1"))
    store = chain.ledger.store
    writes = {key: value for key, value in store.iterate(b"S/")}
    assert chain.ledger.app_hash == compute_app_hash(GENESIS_HASH, 0, dict(writes))


def test_genesis_initiatives_ignore_submission_windows() -> None:
    params, _ = make_params()
    late = campaign_spec(seeded_key("gateway").public_key, submission_start=T0 - 5_000, submission_end=T0 - 1,
                         voting_start=T0 - 1)
    chain = new_chain(campaign=late)
    assert len(chain.ledger.state.campaign_initiatives("c1")) == 5
    # ... but a signed submission at the same time is refused.
    ex = execution(chain, T0 + 1)
    expect_reject(ex, chain.sign("initiative.submit", initiative_spec("a9", "d1")), "outside_window")
    assert params.chain_id == CHAIN_ID


@pytest.mark.parametrize("bad_body", [
    ("initiative.submit", initiative_spec("x1", "d1", campaign_id="nope")),
    ("initiative.submit", initiative_spec("x1", "d9")),
    ("campaign.create", campaign_spec(b"\x07" * 32)),
    ("vote.cast", None),
])
def test_genesis_data_that_does_not_apply_is_refused(bad_body: tuple[str, Any]) -> None:
    params, keys = make_params()
    params = replace(params, initial_bodies=params.initial_bodies + (bad_body,))
    with pytest.raises(StorageError):
        Ledger(MemoryStore(), params)


# --- campaign.create -----------------------------------------------------------------------------------


def second_campaign(chain: TestChain, **overrides: Any) -> Any:
    values: dict[str, Any] = {"campaign_id": "c2", "gateway": chain.gateway_key.public_key}
    values.update(overrides)
    gateway = values.pop("gateway")
    return campaign_spec(gateway, **values)


def test_create_by_committee(chain: TestChain) -> None:
    ex = execution(chain, IN_SUBMISSION)
    accept(ex, chain.sign("campaign.create", second_campaign(chain)))
    campaign = ex.campaign("c2")
    assert campaign is not None and campaign.status == STATUS_OPEN and campaign.created_height == 1
    assert ex.events == [("campaign.created", "c2")]


@pytest.mark.parametrize("signers, allowed", [
    ([0, 1], True), ([1, 2], True), ([0], False), ([0, 1, 2], False), ("outsider+0", False), ("outsider", False),
    ("district", False),
])
def test_committee_k_of_n_needs_exactly_k_distinct_committee_keys(signers: Any, allowed: bool) -> None:
    chain = new_chain(committee=3, threshold=2)
    keys: list[SigningKey]
    if signers == "outsider+0":
        keys = [seeded_key("outsider"), chain.committee_keys[0]]
    elif signers == "outsider":
        keys = [seeded_key("outsider"), seeded_key("outsider-2")]
    elif signers == "district":
        keys = [chain.operator_keys["d1"], chain.operator_keys["d2"]]
    else:
        keys = [chain.committee_keys[i] for i in signers]
    for kind, body, time_ms in [
        ("campaign.create", second_campaign(chain), IN_SUBMISSION),
        ("initiative.review", InitiativeReview("c1", "a1", False, "too costly"), IN_SUBMISSION),
        ("campaign.close", CampaignClose("c1", "cancelled"), IN_SUBMISSION),
    ]:
        ex = execution(chain, time_ms)
        tx = chain.sign(kind, body, keys)
        if allowed:
            accept(ex, tx)
        else:
            expect_reject(ex, tx, "permission_denied")


def test_create_rejections(chain: TestChain) -> None:
    ex = execution(chain, IN_SUBMISSION)
    expect_reject(ex, chain.sign("campaign.create", second_campaign(chain, campaign_id="c1")), "duplicate")
    expect_reject(ex, chain.sign("campaign.create", second_campaign(chain, gateway=b"\x05" * 32)), "unknown_gateway")
    expect_reject(ex, chain.sign("campaign.create", second_campaign(chain, voting_end=IN_SUBMISSION,
                                                                    voting_start=IN_SUBMISSION - 1,
                                                                    submission_end=IN_SUBMISSION - 1)),
                  "outside_window")
    expect_reject(ex, chain.sign("campaign.create", second_campaign(chain), [chain.gateway_key]), "permission_denied")
    accept(ex, chain.sign("campaign.create", second_campaign(chain, voting_end=IN_SUBMISSION + 1,
                                                             voting_start=IN_SUBMISSION - 1,
                                                             submission_end=IN_SUBMISSION - 1)))
    expect_reject(ex, chain.sign("campaign.create", second_campaign(chain, title="Other")), "duplicate")


# --- initiative.submit -----------------------------------------------------------------------------------


def test_submit_by_own_district_operator_needs_review(chain: TestChain) -> None:
    ex = execution(chain, IN_SUBMISSION)
    accept(ex, chain.sign("initiative.submit", initiative_spec("n1", "d1"), [chain.operator_keys["d1"]]))
    initiative = ex.initiative("c1", "n1")
    assert initiative is not None and initiative.status == INITIATIVE_SUBMITTED
    assert initiative.submitter == chain.operator_keys["d1"].public_key
    accept(ex, chain.sign("initiative.submit", initiative_spec("n2", "d2")))  # committee: approved at once
    assert ex.initiative("c1", "n2").status == INITIATIVE_APPROVED  # type: ignore[union-attr]
    campaign = ex.campaign("c1")
    assert campaign is not None and campaign.initiative_count == 7


def test_submit_rejections(chain: TestChain) -> None:
    ex = execution(chain, IN_SUBMISSION)
    operator = chain.operator_keys["d1"]
    expect_reject(ex, chain.sign("initiative.submit", initiative_spec("n1", "d2"), [operator]), "permission_denied")
    expect_reject(ex, chain.sign("initiative.submit", initiative_spec("n1", "d1"), [chain.gateway_key]),
                  "permission_denied")
    expect_reject(ex, chain.sign("initiative.submit", initiative_spec("n1", "d1"),
                                 [operator, chain.committee_keys[0]]), "permission_denied")
    expect_reject(ex, chain.sign("initiative.submit", initiative_spec("n1", "d3"), [chain.operator_keys["d3"]]),
                  "unknown_district")
    expect_reject(ex, chain.sign("initiative.submit", initiative_spec("a1", "d1")), "duplicate")
    expect_reject(ex, chain.sign("initiative.submit", initiative_spec("n1", "d1", cost=10_000_001)),
                  "cost_out_of_range")
    expect_reject(ex, chain.sign("initiative.submit", initiative_spec("n1", "d1", campaign_id="c9")),
                  "unknown_campaign")
    accept(ex, chain.sign("initiative.submit", initiative_spec("n1", "d1"), [operator]))
    expect_reject(ex, chain.sign("initiative.submit", initiative_spec("n1", "d1", title="again"), [operator]),
                  "duplicate")


def test_submit_category_rules() -> None:
    chain = new_chain(campaign=campaign_spec(seeded_key("gateway").public_key, categories=("parks",)))
    ex = execution(chain, IN_SUBMISSION)
    accept(ex, chain.sign("initiative.submit", initiative_spec("n1", "d1", category="parks")))
    expect_reject(ex, chain.sign("initiative.submit", initiative_spec("n2", "d1", category="roads")),
                  "unknown_category")


@pytest.mark.parametrize("time_ms, ok", [
    (T0 + 2_000 - 1, False), (T0 + 2_000, True), (SUBMISSION_END - 1, True), (SUBMISSION_END, False),
])
def test_submission_window(time_ms: int, ok: bool) -> None:
    chain = new_chain(campaign=campaign_spec(seeded_key("gateway").public_key, submission_start=T0 + 2_000))
    ex = execution(chain, time_ms)
    tx = chain.sign("initiative.submit", initiative_spec("n1", "d1"), [chain.operator_keys["d1"]])
    if ok:
        accept(ex, tx)
    else:
        expect_reject(ex, tx, "outside_window")


def test_submit_to_closed_campaign(chain: TestChain) -> None:
    chain.commit_block([chain.sign("campaign.close", CampaignClose("c1", "cancelled"))], IN_SUBMISSION)
    ex = execution(chain, IN_SUBMISSION + 1_000)
    expect_reject(ex, chain.sign("initiative.submit", initiative_spec("n1", "d1")), "campaign_closed")


# --- initiative.review ------------------------------------------------------------------------------------


def test_review_approves_and_rejects_before_voting(chain: TestChain) -> None:
    operator = chain.operator_keys["d1"]
    chain.commit_block([chain.sign("initiative.submit", initiative_spec("n1", "d1"), [operator])], IN_SUBMISSION)
    ex = execution(chain, IN_SUBMISSION + 1_000)
    accept(ex, chain.sign("initiative.review", InitiativeReview("c1", "n1", True, "")))
    assert ex.initiative("c1", "n1").status == INITIATIVE_APPROVED  # type: ignore[union-attr]
    accept(ex, chain.sign("initiative.review", InitiativeReview("c1", "a1", False, "over budget")))
    rejected = ex.initiative("c1", "a1")
    assert rejected is not None and rejected.status == INITIATIVE_REJECTED and rejected.review_reason == "over budget"
    expect_reject(ex, chain.sign("initiative.review", InitiativeReview("c1", "zz", True, "")), "unknown_initiative")
    expect_reject(ex, chain.sign("initiative.review", InitiativeReview("c1", "n1", True, ""), [operator]),
                  "permission_denied")
    expect_reject(ex, chain.sign("initiative.review", InitiativeReview("c9", "n1", True, "")), "unknown_campaign")


@pytest.mark.parametrize("time_ms, ok", [(VOTING_START - 1, True), (VOTING_START, False), (IN_VOTING, False)])
def test_review_only_before_voting_opens(chain: TestChain, time_ms: int, ok: bool) -> None:
    ex = execution(chain, time_ms)
    tx = chain.sign("initiative.review", InitiativeReview("c1", "a1", False, "late"))
    if ok:
        accept(ex, tx)
    else:
        expect_reject(ex, tx, "outside_window")


# --- voters.register --------------------------------------------------------------------------------------


def test_registration_by_the_campaigns_gateway(chain: TestChain) -> None:
    ex = execution(chain, IN_SUBMISSION)
    accept(ex, chain.register([voter(0), voter(1)]))
    campaign = ex.campaign("c1")
    assert campaign is not None and campaign.registered == 2
    expect_reject(ex, chain.register([voter(2), voter(1)]), "duplicate")
    other = make_vote(CHAIN_ID, voter(0), "c1", "d1", ["a1"])  # keeps the import honest
    assert other.kind == "vote.cast"
    from chain.tx import make_registration
    expect_reject(ex, make_registration(CHAIN_ID, chain.other_gateway_key, "c1", [voter(5).public_key]),
                  "permission_denied")
    expect_reject(ex, make_registration(CHAIN_ID, chain.committee_keys[0], "c1", [voter(5).public_key]),
                  "permission_denied")
    expect_reject(ex, chain.register([voter(5)], campaign_id="c9"), "unknown_campaign")


def test_registration_cap() -> None:
    chain = new_chain(campaign=campaign_spec(seeded_key("gateway").public_key, registration_cap=3))
    ex = execution(chain, IN_SUBMISSION)
    accept(ex, chain.register([voter(0), voter(1)]))
    expect_reject(ex, chain.register([voter(2), voter(3)]), "registration_cap")
    accept(ex, chain.register([voter(2)]))
    expect_reject(ex, chain.register([voter(3)]), "registration_cap")


def test_registration_after_close_is_refused(chain: TestChain) -> None:
    ex = execution(chain, VOTING_END)
    expect_reject(ex, chain.register([voter(0)]), "campaign_closed")


# --- vote.cast -----------------------------------------------------------------------------------------------


def test_valid_votes_are_counted(voting: TestChain) -> None:
    ex = execution(voting, IN_VOTING)
    accept(ex, voting.vote(voter(0), "d1", ["a1", "a2"]))
    accept(ex, voting.vote(voter(1), "d1", ["a2"]))
    accept(ex, voting.vote(voter(1), "d2", ["b1"]))  # one ballot per district
    assert (ex.votes("c1", "a1"), ex.votes("c1", "a2"), ex.votes("c1", "b1"), ex.votes("c1", "a3")) == (1, 2, 1, 0)
    campaign = ex.campaign("c1")
    assert campaign is not None and campaign.total_ballots == 3
    _, choices = decode_ballot(ex.writes[b"S/b/c1/" + voter(0).public_key + b"/d1"] or b"")
    assert choices == ("a1", "a2")


@pytest.mark.parametrize("time_ms, ok", [
    (VOTING_START - 1, False), (VOTING_START, True), (VOTING_END - 1, True), (VOTING_END, False),
    (VOTING_END + 1, False),
])
def test_vote_only_inside_the_voting_window(time_ms: int, ok: bool) -> None:
    chain = new_chain()
    chain.commit_block([chain.register([voter(0)])], VOTING_START - 10)
    ex = execution(chain, time_ms)
    tx = chain.vote(voter(0), "d1", ["a1"])
    if ok:
        accept(ex, tx)
    else:
        expect_reject(ex, tx, "outside_window")


def test_vote_after_committee_close(voting: TestChain) -> None:
    voting.commit_block([voting.sign("campaign.close", CampaignClose("c1", "fraud suspected"))])
    ex = execution(voting, voting.now + 1_000)
    expect_reject(ex, voting.vote(voter(0), "d1", ["a1"]), "outside_window")


def test_ballot_rule_rejections(voting: TestChain) -> None:
    ex = execution(voting, IN_VOTING)
    expect_reject(ex, voting.vote(voter(9), "d1", ["a1"]), "not_registered")
    expect_reject(ex, voting.vote(voter(0), "d3", ["a1"]), "unknown_district")
    expect_reject(ex, voting.vote(voter(0), "d1", ["a1", "a2", "a3"]), "bad_ballot")
    expect_reject(ex, voting.vote(voter(0), "d1", ["b1"]), "invalid_choice")        # foreign district
    expect_reject(ex, voting.vote(voter(0), "d1", ["a1", "b1"]), "invalid_choice")
    expect_reject(ex, voting.vote(voter(0), "d1", ["zz"]), "invalid_choice")        # unknown
    expect_reject(ex, voting.vote(voter(0), "d1", ["a1"], campaign_id="c9"), "unknown_campaign")
    accept(ex, voting.vote(voter(0), "d1", ["a1"]))
    expect_reject(ex, voting.vote(voter(0), "d1", ["a2"]), "double_vote")
    expect_reject(ex, voting.vote(voter(0), "d1", ["a1"]), "replay")


def test_unapproved_and_rejected_initiatives_are_not_on_the_ballot(chain: TestChain) -> None:
    operator = chain.operator_keys["d1"]
    chain.commit_block([
        chain.sign("initiative.submit", initiative_spec("pending", "d1"), [operator]),
        chain.sign("initiative.submit", initiative_spec("refused", "d1"), [operator]),
    ], IN_SUBMISSION)
    chain.commit_block([chain.sign("initiative.review", InitiativeReview("c1", "refused", False, "unsafe"))])
    chain.commit_block([chain.register([voter(0)])], VOTING_START)
    ex = execution(chain, IN_VOTING)
    expect_reject(ex, chain.vote(voter(0), "d1", ["pending"]), "invalid_choice")
    expect_reject(ex, chain.vote(voter(0), "d1", ["refused"]), "invalid_choice")
    accept(ex, chain.vote(voter(0), "d1", ["a1"]))


def test_choose_one_and_approval_minimum() -> None:
    gateway = seeded_key("gateway").public_key
    chain = new_chain(campaign=campaign_spec(gateway, ballot=BallotSpec("choose-1", 1, 1)))
    chain.commit_block([chain.register([voter(0)])], VOTING_START)
    ex = execution(chain, IN_VOTING)
    expect_reject(ex, chain.vote(voter(0), "d1", ["a1", "a2"]), "bad_ballot")
    accept(ex, chain.vote(voter(0), "d1", ["a2"]))
    chain = new_chain(campaign=campaign_spec(gateway, ballot=BallotSpec("approval", 2, 3)))
    chain.commit_block([chain.register([voter(0)])], VOTING_START)
    ex = execution(chain, IN_VOTING)
    expect_reject(ex, chain.vote(voter(0), "d1", ["a1"]), "bad_ballot")
    accept(ex, chain.vote(voter(0), "d1", ["a1", "a2", "a3"]))


def test_one_ballot_per_campaign() -> None:
    chain = new_chain(campaign=campaign_spec(seeded_key("gateway").public_key, ballots_per_voter="campaign"))
    chain.commit_block([chain.register([voter(0)])], VOTING_START)
    ex = execution(chain, IN_VOTING)
    accept(ex, chain.vote(voter(0), "d1", ["a1"]))
    expect_reject(ex, chain.vote(voter(0), "d2", ["b1"]), "double_vote")


def test_registration_is_per_campaign(voting: TestChain) -> None:
    voting.commit_block([voting.sign("campaign.create", second_campaign(voting, voting_start=IN_VOTING,
                                                                         submission_end=IN_VOTING - 1,
                                                                         submission_start=T0))])
    ex = execution(voting, voting.now + 1_000)
    expect_reject(ex, voting.vote(voter(0), "d1", ["a1"], campaign_id="c2"), "not_registered")


def test_replay_of_a_committed_vote(voting: TestChain) -> None:
    tx = voting.vote(voter(0), "d1", ["a1"])
    voting.commit_block([tx])
    expect_reject(execution(voting, voting.now + 1_000), tx, "replay")


def test_wrong_chain_and_bad_signature(voting: TestChain) -> None:
    ex = execution(voting, IN_VOTING)
    expect_reject(ex, make_vote("other-chain", voter(0), "c1", "d1", ["a1"]), "wrong_chain")
    good = voting.vote(voter(0), "d1", ["a1"])
    forged_sig = voter(1).sign(good.signing_bytes())
    from chain.tx import decode_tx
    forged = decode_tx(encode_tx("vote.cast", CHAIN_ID, good.body, [(voter(0).public_key, forged_sig)]))
    expect_reject(ex, forged, "bad_signature")
    accept(ex, good)


# --- campaign.close and the automatic close ---------------------------------------------------------------


def test_committee_close_publishes_the_result(voting: TestChain) -> None:
    voting.commit_block([voting.vote(voter(0), "d1", ["a2"]), voting.vote(voter(1), "d1", ["a2", "a3"])])
    ex = execution(voting, voting.now + 1_000)
    expect_reject(ex, voting.sign("campaign.close", CampaignClose("c1", "done"), [voting.gateway_key]),
                  "permission_denied")
    accept(ex, voting.sign("campaign.close", CampaignClose("c1", "ended early")))
    campaign = ex.campaign("c1")
    assert campaign is not None and campaign.status == STATUS_CLOSED and campaign.close_reason == "ended early"
    assert campaign.total_ballots == 2 and campaign.closed_height == ex.height
    winners, _ = ex.results["c1"]
    assert winners == ("a2", "a3", "b1", "b2")  # top-2 per district; ties by lower cost then id
    expect_reject(ex, voting.sign("campaign.close", CampaignClose("c1", "again")), "campaign_closed")


def test_automatic_close_happens_before_the_blocks_transactions(voting: TestChain) -> None:
    late_vote = voting.vote(voter(0), "d1", ["a1"])
    built = voting.build([late_vote], VOTING_END)
    assert [e.code for _, e in built.rejected] == ["outside_window"]
    assert built.execution.events[0] == ("campaign.closed", "c1")
    voting.commit(built)
    campaign = voting.ledger.state.campaigns["c1"]
    assert campaign.status == STATUS_CLOSED and campaign.close_reason == AUTO_CLOSE_REASON
    assert campaign.closed_time_ms == VOTING_END and "c1" in voting.ledger.state.results


def test_last_moment_vote_counts(voting: TestChain) -> None:
    voting.commit_block([voting.vote(voter(0), "d1", ["a1"])], VOTING_END - 1)
    voting.commit_block([], VOTING_END)
    assert voting.ledger.state.campaigns["c1"].total_ballots == 1


def test_campaigns_close_in_id_byte_order_and_deadlines_are_tracked(chain: TestChain) -> None:
    chain.commit_block([
        chain.sign("campaign.create", second_campaign(chain, campaign_id="B-2", voting_end=VOTING_END - 5)),
        chain.sign("campaign.create", second_campaign(chain, campaign_id="a-1", voting_end=VOTING_END - 7)),
    ], IN_SUBMISSION)
    state = chain.ledger.state
    assert state.next_deadline_ms == VOTING_END - 7
    assert state.open_campaigns_due(VOTING_END - 8) == []
    assert state.open_campaigns_due(VOTING_END) == ["B-2", "a-1", "c1"]
    built = chain.commit_block([], VOTING_END + 1)
    assert [e for e in built.execution.events if e[0] == "campaign.closed"] == [
        ("campaign.closed", "B-2"), ("campaign.closed", "a-1"), ("campaign.closed", "c1")]
    assert state.next_deadline_ms > 2**63 and state.open_campaigns_due(VOTING_END * 2) == []


# --- progress.report ---------------------------------------------------------------------------------------


def test_progress_reports_after_close(voting: TestChain) -> None:
    report = ProgressReport("c1", "a1", "contract", 10, 5_000, "signed", b"")
    ex = execution(voting, IN_VOTING)
    expect_reject(ex, voting.sign("progress.report", report), "campaign_open")
    voting.commit_block([], VOTING_END)
    ex = execution(voting, voting.now + 1_000)
    accept(ex, voting.sign("progress.report", report))
    accept(ex, voting.sign("progress.report", replace(report, stage="works", percent=50),
                           [voting.operator_keys["d1"]]))
    expect_reject(ex, voting.sign("progress.report", report, [voting.operator_keys["d2"]]), "permission_denied")
    expect_reject(ex, voting.sign("progress.report", replace(report, initiative_id="zz")), "unknown_initiative")
    expect_reject(ex, voting.sign("progress.report", replace(report, campaign_id="c9")), "unknown_campaign")
    keys = sorted(key for key in ex.writes if key.startswith(progress_prefix("c1", "a1")))
    assert [key[-4:] for key in keys] == [b"\x00\x00\x00\x00", b"\x00\x00\x00\x01"]
    assert Progress.decode(ex.writes[keys[1]] or b"").report.percent == 50


# --- execution life cycle ----------------------------------------------------------------------------------


def test_finish_is_final(voting: TestChain) -> None:
    ex = execution(voting, IN_VOTING)
    accept(ex, voting.vote(voter(0), "d1", ["a1"]))
    first = ex.finish()
    assert ex.finish() == first
    with pytest.raises(VecheError) as caught:
        ex.apply(voting.vote(voter(1), "d1", ["a1"]))
    assert caught.value.code == "execution_finished"


def test_a_rejection_in_a_busy_block_leaves_everything_else(voting: TestChain) -> None:
    """Atomicity with a non-empty overlay: pending ballots, new keys, tallies, a new initiative."""
    ex = execution(voting, IN_VOTING)
    accept(ex, voting.register([voter(10), voter(11)]))
    accept(ex, voting.vote(voter(10), "d1", ["a1", "a3"]))
    accept(ex, voting.vote(voter(0), "d2", ["b2"]))
    for tx, code in [
        (voting.vote(voter(10), "d1", ["a2"]), "double_vote"),
        (voting.vote(voter(11), "d1", ["a1", "b1"]), "invalid_choice"),
        (voting.register([voter(12), voter(10)]), "duplicate"),
        (voting.vote(voter(12), "d1", ["a1"]), "not_registered"),
        (voting.sign("initiative.submit", initiative_spec("late", "d1")), "outside_window"),
    ]:
        expect_reject(ex, tx, code)
    assert ex.votes("c1", "a1") == 1 and ex.votes("c1", "a3") == 1 and ex.votes("c1", "b2") == 1


# --- generated sequences against an independent model ------------------------------------------------------


CONFIGS = [
    {"ballot": BallotSpec("approval", 1, 2), "ballots_per_voter": "district"},
    {"ballot": BallotSpec("choose-1", 1, 1), "ballots_per_voter": "campaign"},
    {"ballot": BallotSpec("approval", 2, 3), "ballots_per_voter": "campaign"},
]
DISTRICT_OF = {"a1": "d1", "a2": "d1", "a3": "d1", "b1": "d2", "b2": "d2", "p1": "d1", "r1": "d2"}
APPROVED = {"a1", "a2", "a3", "b1", "b2"}
ALL_CHOICES = sorted(DISTRICT_OF) + ["zz"]
CAP = 7


class Model:
    """The rules restated independently of chain/state.py."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.ballot: BallotSpec = config["ballot"]
        self.per_campaign = config["ballots_per_voter"] == "campaign"
        self.registered: set[bytes] = set()
        self.slots: set[tuple[bytes, str]] = set()
        self.tally: Counter[str] = Counter()
        self.ballots = 0
        self.committed: set[bytes] = set()
        self.committed_before: set[bytes] = set()
        self.closed = False

    def begin(self, time_ms: int) -> None:
        if time_ms >= VOTING_END:
            self.closed = True

    def accepts(self, tx: Tx, time_ms: int, in_block: set[bytes]) -> bool:
        if tx.hash in self.committed or tx.hash in in_block:
            return False
        if tx.kind == "voters.register":
            keys = tx.body.voter_keys
            return (not self.closed and not (set(keys) & self.registered)
                    and len(self.registered) + len(keys) <= CAP)
        body = tx.body
        voter_key = tx.signers[0]
        slot = (voter_key, "" if self.per_campaign else body.district_id)
        return (not self.closed and VOTING_START <= time_ms < VOTING_END and voter_key in self.registered
                and body.district_id in ("d1", "d2")
                and self.ballot.min_choices <= len(body.choices) <= self.ballot.max_choices
                and all(c in APPROVED and DISTRICT_OF[c] == body.district_id for c in body.choices)
                and slot not in self.slots)

    def record(self, tx: Tx) -> None:
        self.committed.add(tx.hash)
        if tx.kind == "voters.register":
            self.registered.update(tx.body.voter_keys)
            return
        self.slots.add((tx.signers[0], "" if self.per_campaign else tx.body.district_id))
        self.tally.update(tx.body.choices)
        self.ballots += 1


def build_chain_for(config: dict[str, Any]) -> TestChain:
    gateway = seeded_key("gateway").public_key
    chain = new_chain(campaign=campaign_spec(gateway, registration_cap=CAP, **config))
    operator = chain.operator_keys["d1"]
    chain.commit_block([
        chain.sign("initiative.submit", initiative_spec("p1", "d1"), [operator]),
        chain.sign("initiative.submit", initiative_spec("r1", "d2"), [chain.operator_keys["d2"]]),
    ], IN_SUBMISSION)
    chain.commit_block([chain.sign("initiative.review", InitiativeReview("c1", "r1", False, "no"))])
    return chain


VOTERS = [seeded_key(f"model-voter-{i}") for i in range(8)]
plausible_ballot = st.sampled_from(["d1", "d2"]).flatmap(lambda d: st.tuples(st.just(d), st.lists(
    st.sampled_from(sorted(c for c in APPROVED if DISTRICT_OF[c] == d)), min_size=1, max_size=3, unique=True)))
# The district's own initiatives including the unapproved p1 (d1) and the rejected r1 (d2).
tempting_ballot = st.sampled_from(["d1", "d2"]).flatmap(lambda d: st.tuples(st.just(d), st.lists(
    st.sampled_from(sorted(c for c in DISTRICT_OF if DISTRICT_OF[c] == d)), min_size=1, max_size=3, unique=True)))
any_ballot = st.tuples(st.sampled_from(["d1", "d2", "d3"]),
                       st.lists(st.sampled_from(ALL_CHOICES), min_size=1, max_size=4, unique=True))
voter_index = st.one_of(st.integers(0, 3), st.integers(0, 7))
vote_action = st.tuples(st.just("vote"), voter_index, st.one_of(plausible_ballot, plausible_ballot, tempting_ballot, any_ballot))
action = st.one_of(
    st.tuples(st.just("register"), st.lists(st.integers(4, 7), min_size=1, max_size=2, unique=True)),
    vote_action, vote_action, vote_action,
    st.tuples(st.just("replay"), st.integers(0, 1000)),
)
# A step is a time increment or a jump to a window boundary (``-1``: voting_start,
# ``-2``: voting_end - 1, ``-3``: voting_end); a jump into the past becomes +1 ms.
block_plan = st.tuples(st.sampled_from([1, 500, 4_000, 1, 500, 20_000, 45_000, -1, -2, -3]),
                       st.lists(action, max_size=10))
JUMPS = {-1: VOTING_START, -2: VOTING_END - 1, -3: VOTING_END}


def next_time(now: int, step: int) -> int:
    if step > 0:
        return now + step
    return max(JUMPS[step], now + 1)


@given(st.sampled_from(range(len(CONFIGS))), st.sampled_from([VOTING_START - 3_000, VOTING_START - 3_000, VOTING_START, VOTING_END - 9_000]),
       st.lists(block_plan, min_size=1, max_size=7))
@settings(max_examples=150, deadline=None)
def test_generated_sequences_follow_the_rules(config_index: int, start: int,
                                              plan: list[tuple[int, list[Any]]]) -> None:
    config = CONFIGS[config_index]
    chain = build_chain_for(config)
    mirror = Ledger(MemoryStore(), chain.params)   # a validator re-checking every block
    for block, certificate in chain.blocks:
        mirror.commit(block, certificate, mirror.check_block(block))
    model = Model(config)
    history: list[Tx] = [chain.register(VOTERS[:4])]
    model.record(history[0])
    chain.commit_block(history, start)
    mirror.commit(chain.blocks[-1][0], chain.blocks[-1][1], mirror.check_block(chain.blocks[-1][0]))
    accepted_votes = 0
    for step, actions in plan:
        time_ms = next_time(chain.now, step)
        txs: list[Tx] = []
        for item in actions:
            if item[0] == "register":
                txs.append(chain.register([VOTERS[i] for i in item[1]]))
            elif item[0] == "vote":
                district_id, choices = item[2]
                txs.append(chain.vote(VOTERS[item[1]], district_id, sorted(choices)))
            elif history:
                txs.append(history[item[1] % len(history)])
        model.begin(time_ms)
        model.committed_before = set(model.committed)
        expected: list[bytes] = []
        accepted_at: set[int] = set()   # positions in ``txs``: the same tx may come twice, failing first
        in_block: set[bytes] = set()
        for position, tx in enumerate(txs):
            if model.accepts(tx, time_ms, in_block):
                expected.append(tx.raw)
                accepted_at.add(position)
                in_block.add(tx.hash)
                model.record(tx)
        built = chain.build(txs, time_ms)
        assert list(built.block.txs) == expected
        applied: set[bytes] = set()
        rejected = iter(built.rejected)
        for position, tx in enumerate(txs):
            if position in accepted_at:
                applied.add(tx.hash)
                continue
            rejected_tx, error = next(rejected)
            assert rejected_tx is tx
            is_replay = tx.hash in applied or tx.hash in model.committed_before
            assert (error.code == "replay") == is_replay, (error.code, is_replay)
        accepted_votes += sum(1 for tx in txs if tx.kind == "vote.cast" and tx.raw in expected)
        for _, error in built.rejected:
            event(f"rejected: {error.code}")
        assert len(built.rejected) == len(txs) - len(expected)
        chain.commit(built)
        block, certificate = chain.blocks[-1]
        mirror.commit(block, certificate, mirror.check_block(block))
        assert mirror.app_hash == chain.ledger.app_hash
        history.extend(txs)
        check_invariants(chain, model)
    event(f"accepted votes: {min(accepted_votes, 3)}{'+' if accepted_votes >= 3 else ''}")


def check_invariants(chain: TestChain, model: Model) -> None:
    state = chain.ledger.state
    ballots = [decode_ballot(value) for _, value in chain.ledger.store.iterate(ballot_prefix("c1"))]
    counted: Counter[str] = Counter(choice for _, choices in ballots for choice in choices)
    assert {i: n for (c, i), n in state.tallies.items() if c == "c1" and n} == dict(counted) == dict(model.tally)
    assert state.campaigns["c1"].total_ballots == len(ballots) == model.ballots
    assert state.campaigns["c1"].registered == len(model.registered) <= CAP
    ballot_keys = [key for key, _ in chain.ledger.store.iterate(ballot_prefix("c1"))]
    voters_seen = Counter(key[len(b"S/b/c1/"):len(b"S/b/c1/") + 32] for key in ballot_keys)
    limit = 1 if model.per_campaign else 2
    assert all(n <= limit for n in voters_seen.values())
    for tx_hash, choices in ballots:
        location = chain.ledger.tx_location(tx_hash)
        assert location is not None
        block = chain.ledger.block(location.height)
        assert block is not None and VOTING_START <= block.header.time_ms < VOTING_END
        assert all(c in APPROVED for c in choices)
        assert model.ballot.min_choices <= len(choices) <= model.ballot.max_choices
    assert chain.ledger.state.campaigns["c1"].status == (STATUS_CLOSED if model.closed else STATUS_OPEN)


def test_campaign_record_encoding_is_the_canonical_encoding_of_the_whole_record() -> None:
    from dataclasses import replace as replace_record

    from chain import codec
    from chain.records import Campaign
    from chain.storage import MemoryStore
    from tests.transparency.chainkit import ChainBuilder, build_genesis, make_keys

    keys = make_keys(4)
    builder = ChainBuilder(MemoryStore(), build_genesis(keys), keys)
    builder.add_block([builder.campaign("c-1"), builder.campaign("c-2", districts=(("north", 5),))])
    for campaign in builder.ledger.state.campaigns.values():
        for record in (campaign, replace_record(campaign, total_ballots=campaign.total_ballots + 7, registered=3),
                       campaign.closed(9, 10_000, "закрыто")):
            whole = codec.encode([record.spec.to_wire(), record.status, record.created_height, record.closed_height,
                                  record.closed_time_ms, record.close_reason, record.registered,
                                  record.total_ballots, record.initiative_count])
            assert record.encode() == whole
            assert Campaign.decode(whole) == record


def test_a_committed_block_overlay_is_freed_without_the_cycle_collector(voting: TestChain) -> None:
    """A block's overlay (every write of its ballots) goes when its last reference does: a long replay
    or a busy node does not keep a trail of applied blocks until the next full ``gc`` pass."""
    import gc
    import weakref

    voters = voting.new_voters(3)
    gc.collect()
    gc.disable()
    try:
        built = voting.commit_block([voting.register(voters)] + [voting.vote(v, "d1", ["a1"]) for v in voters])
        overlay = weakref.ref(built.execution)
        del built
        assert overlay() is None
    finally:
        gc.enable()
