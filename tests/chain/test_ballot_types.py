"""Knapsack, cumulative and ordinal ballots: wire forms, the state machine's checks, the tally.

Valid/invalid pairs for every constraint, the vectors of docs/PROTOCOL.md §14.6, and a property
test: for random campaigns and ballots of each type a ballot is accepted exactly when it meets its
constraints, and the tally equals a direct count of the accepted ballots.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain import codec
from chain.crypto import SigningKey, sha256
from chain.errors import DecodeError, TxRejected
from chain.records import decode_scored_ballot, encode_ballot, score_key, u64
from chain.results import tally_document
from chain.tx import BallotSpec, CampaignCreate, District, RuleSpec, VoteCast, decode_tx, make_vote, vote_body
from tests.chain.helpers import CHAIN_ID, VOTING_END, TestChain, campaign_spec, new_chain, seeded_key

RFC8032_SEED = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
GATEWAY = seeded_key("gateway").public_key
KNAPSACK = BallotSpec("knapsack", 1, 3, max_sum_cost=350_000)
CUMULATIVE = BallotSpec("cumulative", 1, 3, min_sum_points=2, max_sum_points=10, max_points=6)
ORDINAL = BallotSpec("ordinal", 2, 3, rank_points=(5, 3, 1))


# --- wire forms ----------------------------------------------------------------------------------

def test_the_ballot_type_vectors_printed_in_docs_protocol_md() -> None:
    """docs/PROTOCOL.md §14.6 quotes these bytes."""
    vectors = {
        "94a86b6e61707361636b0105ce075040e0": BallotSpec("knapsack", 1, 5, max_sum_cost=122_700_000),
        "94a86b6e61707361636b014000": BallotSpec("knapsack", 1, 64),
        "96aa63756d756c6174697665010a000a00": BallotSpec("cumulative", 1, 10, max_sum_points=10),
        "96aa63756d756c61746976650205050a04": BallotSpec("cumulative", 2, 5, min_sum_points=5, max_sum_points=10,
                                                         max_points=4),
        "94a76f7264696e616c030393030201": BallotSpec("ordinal", 3, 3, rank_points=(3, 2, 1)),
    }
    for encoded, spec in vectors.items():
        assert codec.encode(spec.to_wire()).hex() == encoded
        assert BallotSpec.from_wire(codec.decode(bytes.fromhex(encoded))) == spec
    key = SigningKey(bytes.fromhex(RFC8032_SEED))
    cumulative = make_vote("veche-test", key, "c1", "d1", ["a1", "a2"], [3, 7])
    assert cumulative.body.to_wire() == ["c1", "d1", ["a2", "a1"], [7, 3]]
    assert cumulative.signing_bytes().hex() == (
        "76656368652f76312f766f74652e6361737476656368652d7465737494a26331a2643192a26132a26131920703")
    assert cumulative.raw.hex() == (
        "94a9766f74652e63617374aa76656368652d7465737494a26331a2643192a26132a261319207039192c420"
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660cc44051a516d3ee8540aec9b8"
        "28e9f8e8c016a1c3e4f34e85d9606ebd4877e0e10f8e1f3082aa90055656231d2f2d50b10152fb164ce1b843"
        "7e5cf2810bb7cc6f3103")
    assert cumulative.hash.hex() == "7d34a2f2df6cb858fedb5a46410eb940c1132b8a8095c370d3a8c7ab806c0833"
    assert encode_ballot(cumulative.hash, cumulative.body.choices, cumulative.body.points).hex() == (
        "93c4207d34a2f2df6cb858fedb5a46410eb940c1132b8a8095c370d3a8c7ab806c083392a26132a26131920703")
    ordinal = make_vote("veche-test", key, "c1", "d1", ["a2", "a1", "a3"], [3, 2, 1])
    assert ordinal.signing_bytes().hex() == (
        "76656368652f76312f766f74652e6361737476656368652d7465737494a26331a2643193a26132a26131a2613393030201")
    assert ordinal.raw.hex() == (
        "94a9766f74652e63617374aa76656368652d7465737494a26331a2643193a26132a26131a26133930302019192"
        "c4203d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660cc44025c388ae7f84b78362"
        "e05d11c71a2502df92bc93a1b81e6ace06b08d782313237a4a04c6f324db359cefaba0ad468672827809aa33f3"
        "e92a08bd51d1bc4d0f0e")
    assert ordinal.hash.hex() == "14d4a4696e8b696fc639d8a5f1f391db814c3094bcbefd4a144e0c6d03eb4d5e"
    assert (score_key("c1", "a2"), u64(7).hex()) == (b"S/s/c1/a2", "0000000000000007")
    document = ["veche/result/v1", "c1", "closed", 2, [["d1", [["a1", 2, 5], ["a2", 1, 7]], ["a2"]]], ["a2"]]
    assert sha256(codec.encode(document)).hex() == "e942447c135a06bf95e870b8fd42788571aeee2885cba3f0f334a9b65385417d"


@pytest.mark.parametrize("spec", [
    BallotSpec("choose-1", 1, 1), BallotSpec("approval", 2, 5), KNAPSACK, BallotSpec("knapsack", 1, 64),
    CUMULATIVE, BallotSpec("cumulative", 1, 64, max_sum_points=1_000_000), ORDINAL,
    BallotSpec("ordinal", 1, 4, rank_points=(2, 2, 1, 1)),
])
def test_ballot_spec_round_trips(spec: BallotSpec) -> None:
    assert BallotSpec.from_wire(spec.to_wire()) == spec
    assert BallotSpec.from_wire(codec.decode(codec.encode(spec.to_wire()))) == spec


@pytest.mark.parametrize("wire, fragment", [
    (["approval", 1, 2, 5], "array of 3 fields"),
    (["knapsack", 1, 2], "array of 4 fields"),
    (["knapsack", 1, 2, -1], "non-negative"),
    (["cumulative", 1, 3, 0, 10], "array of 6 fields"),
    (["cumulative", 1, 3, 0, 0, 0], "max_sum_points >= 1"),
    (["cumulative", 1, 3, 11, 10, 0], "min_sum_points <= max_sum_points"),
    (["cumulative", 1, 3, 0, 10, 11], "max_points <= max_sum_points"),
    (["cumulative", 4, 5, 0, 3, 0], "max_sum_points must be >= min_choices"),
    (["cumulative", 1, 2, 9, 10, 4], "cannot reach min_sum_points"),
    (["cumulative", 1, 2, 0, 1_000_001, 0], "from 0 to 1000000"),
    (["cumulative", 1, 2, 0, True, 0], "from 0 to 1000000"),
    (["ordinal", 1, 3, [3, 2]], "one entry per rank"),
    (["ordinal", 1, 2, [1, 2]], "must not increase"),
    (["ordinal", 1, 2, [2, 0]], "from 1 to 1000000"),
    (["ordinal", 1, 1, []], "1..64 items"),
    (["ordinal", 1, 1, 3], "1..64 items"),
    (["ranked", 1, 1], "must be one of"),
    ([], "must be an array"),
    ("knapsack", "must be an array"),
    (["ordinal", 0, 0, [1]], "min_choices"),
])
def test_ballot_spec_refuses(wire: Any, fragment: str) -> None:
    with pytest.raises(DecodeError) as raised:
        BallotSpec.from_wire(wire)
    assert fragment in raised.value.message


def test_a_ballot_spec_carries_only_its_types_fields() -> None:
    with pytest.raises(DecodeError, match="approval ballot has no max_sum_cost"):
        BallotSpec("approval", 1, 2, max_sum_cost=5).validate()
    with pytest.raises(DecodeError, match="knapsack ballot has no rank_points"):
        BallotSpec("knapsack", 1, 2, rank_points=(1,)).validate()


def test_knapsack_at_the_district_budget_needs_budgets() -> None:
    districts = (District("d1", "One", 1_000), District("d2", "Two", 0))
    with pytest.raises(DecodeError, match="every district's budget > 0"):
        campaign_spec(GATEWAY, districts=districts, ballot=BallotSpec("knapsack", 1, 3))
    campaign_spec(GATEWAY, districts=districts, ballot=BallotSpec("knapsack", 1, 3, max_sum_cost=500))


def test_scored_vote_is_canonical() -> None:
    vote = vote_body("c1", "d1", ["b", "a", "c", "B"], [2, 5, 2, 1])
    assert (vote.choices, vote.points) == (("a", "b", "c", "B"), (5, 2, 2, 1))
    assert VoteCast.from_wire(vote.to_wire()) == vote
    assert vote_body("c1", "d1", ["b", "a"]).to_wire() == ["c1", "d1", ["a", "b"]]


@pytest.mark.parametrize("wire, fragment", [
    (["c1", "d1", ["a", "b"], [1]], "one points entry per choice"),
    (["c1", "d1", ["a", "a"], [2, 1]], "distinct"),
    (["c1", "d1", ["a", "b"], [1, 2]], "points descending"),
    (["c1", "d1", ["b", "a"], [1, 1]], "points descending"),
    (["c1", "d1", ["a"], [0]], "from 1 to 1000000"),
    (["c1", "d1", ["a"], [1_000_001]], "from 1 to 1000000"),
    (["c1", "d1", ["a"], []], "1..64 items"),
    (["c1", "d1", ["a"], [1], [], []], "array of 3 fields"),
    (["c1", "d1", ["a"], [1], []], "[token_campaign_id, token]"),
    (["c1", "d1", ["b", "a"]], "sorted"),
])
def test_vote_refuses(wire: list[Any], fragment: str) -> None:
    with pytest.raises(DecodeError) as raised:
        VoteCast.from_wire(wire)
    assert fragment in raised.value.message


def test_a_scored_ballot_decodes_from_its_envelope_and_stores() -> None:
    tx = make_vote(CHAIN_ID, seeded_key("v"), "c1", "d1", ["x", "y"], [1, 4])
    decoded = decode_tx(tx.raw)
    assert decoded.body == tx.body and decoded.signing_bytes() == tx.signing_bytes()
    assert decode_scored_ballot(encode_ballot(tx.hash, tx.body.choices, tx.body.points)) == \
        (tx.hash, ("y", "x"), (4, 1))


# --- the state machine ----------------------------------------------------------------------------

def voting_chain(ballot: BallotSpec, rule: RuleSpec | None = None, voters: int = 0,
                 budgets: tuple[int, int] = (1_000_000, 1_000_000)) -> tuple[TestChain, list[SigningKey]]:
    """Campaign c1 (d1: a1 100,000, a2 200,000, a3 300,000; d2: b1 100,000, b2 250,000) with this
    ballot, voting open."""
    districts = (District("d1", "District one", budgets[0]), District("d2", "District two", budgets[1]))
    spec = campaign_spec(GATEWAY, ballot=ballot, rule=rule or RuleSpec("greedy", "district", 0, 0, 0),
                         districts=districts)
    chain = new_chain(campaign=spec)
    chain.open_voting()
    keys = chain.new_voters(voters)
    if keys:
        chain.commit_block([chain.register(keys)])
    return chain, keys


def rejection(chain: TestChain, tx: Any) -> str | None:
    """Apply ``tx`` on a scratch execution: its rejection code, or None; the chain is unchanged."""
    execution = chain.ledger.state.begin(chain.ledger.height + 1, chain.now + 1)
    try:
        execution.apply(tx)
    except TxRejected as exc:
        assert not execution.writes and not execution.tallies and not execution.scores  # changed nothing
        return exc.code
    return None


@pytest.mark.parametrize("ballot, choices, points, code", [
    (KNAPSACK, ["a1", "a2"], None, None),                  # 300,000 <= 350,000
    (KNAPSACK, ["a1", "a3"], None, "cost_cap"),            # 400,000
    (KNAPSACK, ["a3"], None, None),
    (BallotSpec("knapsack", 1, 3), ["a1", "a2", "a3"], None, None),    # cap = d1's budget 1,000,000
    (KNAPSACK, ["a1", "a2"], [2, 1], "bad_ballot"),
    (KNAPSACK, ["a1", "b1"], None, "invalid_choice"),
    (CUMULATIVE, ["a1", "a2"], [6, 4], None),
    (CUMULATIVE, ["a1"], [2], None),
    (CUMULATIVE, ["a1", "a2"], [7, 3], "points_max"),
    (CUMULATIVE, ["a1", "a2", "a3"], [6, 4, 1], "points_total"),
    (CUMULATIVE, ["a1"], [1], "points_total"),
    (CUMULATIVE, ["a1", "a2"], None, "bad_ballot"),
    (CUMULATIVE, ["a1", "zz"], [1, 1], "invalid_choice"),
    (ORDINAL, ["a2", "a1"], [5, 3], None),
    (ORDINAL, ["a2", "a1", "a3"], [5, 3, 1], None),
    (ORDINAL, ["a2"], [5], "bad_ballot"),                  # min 2 ranks
    (ORDINAL, ["a2", "a1"], [5, 1], "rank_points"),
    (ORDINAL, ["a2", "a1"], [4, 3], "rank_points"),
    (ORDINAL, ["a2", "a1"], None, "bad_ballot"),
    (BallotSpec("approval", 1, 2), ["a1"], [1], "bad_ballot"),
])
def test_every_constraint_is_checked(ballot: BallotSpec, choices: list[str], points: list[int] | None,
                                     code: str | None) -> None:
    chain, (voter,) = voting_chain(ballot, voters=1)
    before = chain.ledger.app_hash
    tx = make_vote(CHAIN_ID, voter, "c1", "d1", choices, points)
    assert rejection(chain, tx) == code
    built = chain.build([tx])
    assert [error.code for _, error in built.rejected] == ([] if code is None else [code])
    assert chain.ledger.app_hash == before


def test_knapsack_cap_defaults_to_the_ballots_district_budget() -> None:
    districts = (District("d1", "One", 300_000), District("d2", "Two", 1_000_000))
    spec = campaign_spec(GATEWAY, districts=districts, ballot=BallotSpec("knapsack", 1, 3))
    chain = new_chain(campaign=spec)
    chain.open_voting()
    voters = chain.new_voters(3)
    chain.commit_block([chain.register(voters)])
    assert rejection(chain, chain.vote(voters[0], "d1", ["a1", "a2"])) is None        # 300,000: exact fit
    assert rejection(chain, chain.vote(voters[1], "d1", ["a1", "a3"])) == "cost_cap"  # 400,000 > 300,000
    assert rejection(chain, chain.vote(voters[2], "d2", ["b1", "b2"])) is None        # 350,000 <= 1,000,000


def test_scores_are_stored_counted_and_rank_the_greedy_rule() -> None:
    chain, voters = voting_chain(CUMULATIVE, voters=3, budgets=(300_000, 100_000))
    chain.commit_block([
        make_vote(CHAIN_ID, voters[0], "c1", "d1", ["a1", "a2"], [1, 6]),
        make_vote(CHAIN_ID, voters[1], "c1", "d1", ["a1", "a3"], [1, 6]),
        make_vote(CHAIN_ID, voters[2], "c1", "d1", ["a1", "a3"], [1, 1]),
    ])
    state = chain.ledger.state
    assert chain.ledger.store.get(score_key("c1", "a3")) == u64(7)
    document = tally_document(state, state.campaigns["c1"], chain.ledger.height, None)
    assert document["districts"]["d1"]["initiatives"] == {"a1": 3, "a2": 1, "a3": 2}
    assert document["districts"]["d1"]["scores"] == {"a1": 3, "a2": 6, "a3": 7}
    chain.commit_block([], VOTING_END)
    # by points: a3 (7; 300,000 fills d1's budget), not by ballots (a1 has the most)
    assert chain.ledger.state.results["c1"][0] == ("a3", "b1")


def test_set_ballot_scores_equal_votes_and_keep_the_old_bytes() -> None:
    chain, voters = voting_chain(KNAPSACK, voters=2)
    chain.commit_block([chain.vote(voters[0], "d1", ["a1", "a2"]), chain.vote(voters[1], "d1", ["a2"])])
    state = chain.ledger.state
    document = tally_document(state, state.campaigns["c1"], chain.ledger.height, None)
    assert document["districts"]["d1"]["scores"] == document["districts"]["d1"]["initiatives"] == \
        {"a1": 1, "a2": 2, "a3": 0}
    assert not list(chain.ledger.store.iterate(b"S/s/"))


def test_min_votes_is_a_threshold_on_points() -> None:
    chain, voters = voting_chain(CUMULATIVE, RuleSpec("top-n", "district", 0, 5, 0), voters=2)
    chain.commit_block([make_vote(CHAIN_ID, voters[0], "c1", "d1", ["a1", "a2"], [6, 4]),
                        make_vote(CHAIN_ID, voters[1], "c1", "d1", ["a2", "a3"], [2, 2])])
    chain.commit_block([], VOTING_END)
    # a1: 6 points (1 ballot), a2: 6 points (2 ballots), a3: 2 points -> a3 is under 5 points
    assert chain.ledger.state.results["c1"][0] == ("a1", "a2")


def test_state_reloads_scores_from_the_store() -> None:
    from chain.ledger import Ledger

    chain, voters = voting_chain(ORDINAL, voters=1)
    chain.commit_block([make_vote(CHAIN_ID, voters[0], "c1", "d1", ["a3", "a1"], [5, 3])])
    reopened = Ledger(chain.ledger.store, chain.params)
    assert reopened.state.scores == {("c1", "a3"): 5, ("c1", "a1"): 3}
    assert reopened.app_hash == chain.ledger.app_hash


# --- property: accepted exactly when the constraints hold; the tally is a direct count -------------

COSTS = {"a1": 100_000, "a2": 200_000, "a3": 300_000}


def meets(spec: BallotSpec, choices: list[str], points: list[int] | None, district_budget: int) -> bool:
    """The constraints in plain words, written apart from chain/ballots.py."""
    if len(set(choices)) != len(choices) or not all(c in COSTS for c in choices):
        return False
    if not spec.min_choices <= len(choices) <= spec.max_choices:
        return False
    if spec.type in ("cumulative", "ordinal"):
        if points is None:
            return False
        if spec.type == "cumulative":
            if spec.max_points and any(p > spec.max_points for p in points):
                return False
            return spec.min_sum_points <= sum(points) <= spec.max_sum_points
        ranked = sorted(zip(choices, points), key=lambda cp: (-cp[1], cp[0]))
        return [p for _, p in ranked] == list(spec.rank_points[:len(choices)])
    if points is not None:
        return False
    if spec.type == "knapsack":
        return sum(COSTS[c] for c in choices) <= (spec.max_sum_cost or district_budget)
    return True


@st.composite
def ballot_specs(draw: st.DrawFn) -> BallotSpec:
    kind = draw(st.sampled_from(["choose-1", "approval", "knapsack", "cumulative", "ordinal"]))
    if kind == "choose-1":
        return BallotSpec("choose-1", 1, 1)
    low = draw(st.integers(1, 3))
    high = draw(st.integers(low, 3))
    if kind == "approval":
        return BallotSpec("approval", low, high)
    if kind == "knapsack":
        return BallotSpec("knapsack", low, high, max_sum_cost=draw(st.sampled_from([0, 100_000, 300_000, 450_000])))
    if kind == "ordinal":
        ranks = sorted(draw(st.lists(st.integers(1, 5), min_size=high, max_size=high)), reverse=True)
        return BallotSpec("ordinal", low, high, rank_points=tuple(ranks))
    maximum = draw(st.integers(max(1, low), 8))
    per = draw(st.integers(0, maximum))
    reachable = high * (per or maximum)
    minimum = draw(st.integers(0, min(maximum, reachable)))
    return BallotSpec("cumulative", low, high, min_sum_points=minimum, max_sum_points=maximum, max_points=per)


@dataclass
class Drawn:
    choices: list[str]
    points: list[int] | None


@st.composite
def drawn_ballots(draw: st.DrawFn, spec: BallotSpec) -> Drawn:
    pool = ["a1", "a2", "a3", "b1", "zz"] if draw(st.integers(0, 9)) == 0 else ["a1", "a2", "a3"]
    choices = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
    with_points = draw(st.integers(0, 9)) > 0 if spec.scored else draw(st.integers(0, 9)) == 0
    if not with_points:
        return Drawn(choices, None)
    if spec.type == "ordinal" and draw(st.booleans()):
        points = list(spec.rank_points[:len(choices)]) + [1] * (len(choices) - len(spec.rank_points))
    else:
        points = draw(st.lists(st.integers(1, 9), min_size=len(choices), max_size=len(choices)))
    return Drawn(choices, points)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_property_accepted_exactly_when_valid_and_tally_is_a_direct_count(data: st.DataObject) -> None:
    spec = data.draw(ballot_specs())
    drawn = data.draw(st.lists(drawn_ballots(spec), min_size=1, max_size=12))
    chain, voters = voting_chain(spec, voters=len(drawn))
    txs = []
    for voter, ballot in zip(voters, drawn):
        try:
            txs.append((ballot, make_vote(CHAIN_ID, voter, "c1", "d1", ballot.choices, ballot.points)))
        except DecodeError:
            assert len(set(ballot.choices)) != len(ballot.choices)  # never: choices are drawn unique
    built = chain.build([tx for _, tx in txs])
    rejected_hashes = {tx.hash for tx, _ in built.rejected}
    rejected = {index for index, (_, tx) in enumerate(txs) if tx.hash in rejected_hashes}
    accepted = [ballot for index, (ballot, _) in enumerate(txs) if index not in rejected]
    for index, (ballot, _) in enumerate(txs):
        assert (index not in rejected) == meets(spec, ballot.choices, ballot.points, 1_000_000), (spec, ballot)
    chain.commit(built)
    votes: Counter[str] = Counter()
    scores: Counter[str] = Counter()
    for ballot in accepted:
        for position, choice in enumerate(ballot.choices):
            votes[choice] += 1
            scores[choice] += 1 if ballot.points is None else ballot.points[position]
    state = chain.ledger.state
    document = tally_document(state, state.campaigns["c1"], chain.ledger.height, None)
    assert document["total_ballots"] == len(accepted)
    assert document["districts"]["d1"]["initiatives"] == {c: votes[c] for c in COSTS}
    assert document["districts"]["d1"]["scores"] == {c: scores[c] for c in COSTS}


def test_a_campaign_spec_with_each_ballot_type_round_trips() -> None:
    for ballot in (KNAPSACK, CUMULATIVE, ORDINAL):
        spec = campaign_spec(GATEWAY, ballot=ballot)
        assert CampaignCreate.from_wire(codec.decode(codec.encode(spec.to_wire()))) == spec


def test_equal_shares_over_scored_ballots_on_chain() -> None:
    from chain.equal_shares_scored import equal_shares_scored
    from chain.results import compute_equal_shares_result

    chain, voters = voting_chain(CUMULATIVE, RuleSpec("equal-shares", "district", 0, 0, 0), voters=4,
                                 budgets=(400_000, 100_000))
    ballots = [(["a1", "a3"], [6, 4]), (["a3"], [2]), (["a2", "a3"], [5, 5]), (["a1"], [3])]
    chain.commit_block([make_vote(CHAIN_ID, voter, "c1", "d1", choices, points)
                        for voter, (choices, points) in zip(voters, ballots)])
    chain.commit_block([], VOTING_END)
    state = chain.ledger.state
    campaign = state.campaigns["c1"]
    assert "c1" not in state.results  # computed off the apply path
    winners, digest = compute_equal_shares_result(state, chain.ledger.store, campaign)
    expected = equal_shares_scored(COSTS, [list(zip(c, p)) for c, p in ballots], 400_000)
    assert list(winners) == expected and expected
    rows = [["a1", 2, 9], ["a2", 1, 5], ["a3", 3, 11]]
    document = ["veche/result/v1", "c1", "closed", 4, [["d1", rows, expected], ["d2", [["b1", 0, 0], ["b2", 0, 0]], []]],
                expected]
    assert digest == sha256(codec.encode(document))
