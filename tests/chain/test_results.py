"""Results: winners under each counting rule and scope, the tie-break, the result hash (checked
against an independent restatement of its definition) and the public tally document."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, cast

import msgpack
import pytest

from chain.records import INITIATIVE_APPROVED
from chain.results import (
    RESULT_DOMAIN, compute_counting_result, compute_equal_shares_result, read_ballot_groups, tally_document,
)
from chain.rules import Candidate, select_winners
from chain.tx import BallotSpec, InitiativeReview, RuleSpec
from tests.chain.helpers import VOTING_END, VOTING_START, TestChain, campaign_spec, new_chain, seeded_key

GATEWAY = seeded_key("gateway").public_key

# d1: x costs 300, c 50, B and a 100 each; d2: y 100, z 200.
INITIATIVES = (("x", "d1", 300), ("c", "d1", 50), ("B", "d1", 100), ("a", "d1", 100), ("y", "d2", 100),
               ("z", "d2", 200))
# x: 3 votes; c, B, a: 2 each; y: 2; z: 1.
BALLOTS = [("d1", ["x", "c"]), ("d1", ["x", "B"]), ("d1", ["x", "a"]), ("d1", ["B", "a"]), ("d1", ["c"]),
           ("d2", ["y", "z"]), ("d2", ["y"])]


def run_campaign(rule: RuleSpec, ballots: Sequence[tuple[str, list[str]]] = BALLOTS, *, close: bool = True,
                 **overrides: Any) -> TestChain:
    spec = campaign_spec(GATEWAY, rule=rule, ballot=BallotSpec("approval", 1, 3), **overrides)
    chain = new_chain(campaign=spec, initiatives=INITIATIVES)
    voters = chain.new_voters(len(ballots))
    chain.commit_block([chain.register(voters)], VOTING_START)
    chain.commit_block([chain.vote(v, district, choices) for v, (district, choices) in zip(voters, ballots)])
    if close:
        chain.commit_block([], VOTING_END)
    return chain


def winners(chain: TestChain) -> tuple[str, ...]:
    return chain.ledger.state.results["c1"][0]


@pytest.mark.parametrize("rule, expected", [
    (RuleSpec("top-n", "district", 1, 0, 0), ("x", "y")),
    (RuleSpec("top-n", "district", 2, 0, 0), ("x", "c", "y", "z")),
    (RuleSpec("top-n", "district", 3, 0, 0), ("x", "c", "B", "y", "z")),     # "B" < "a" in byte order
    (RuleSpec("top-n", "district", 0, 2, 0), ("x", "c", "B", "a", "y")),     # no count limit, min 2 votes
    (RuleSpec("top-n", "campaign", 3, 0, 0), ("x", "c", "B")),               # 2 votes: c is cheapest, then B
    (RuleSpec("top-n", "campaign", 5, 0, 0), ("x", "c", "B", "a", "y")),     # ... then a, then y (by bytes)
    (RuleSpec("top-n", "campaign", 0, 3, 0), ("x",)),
    (RuleSpec("greedy", "district", 0, 0, 0), ("x", "c", "B", "a", "y", "z")),  # district budgets 1,000,000
    (RuleSpec("greedy", "campaign", 0, 0, 450), ("x", "c", "B")),
    (RuleSpec("greedy", "campaign", 0, 0, 250), ("c", "B", "a")),           # x does not fit and is skipped
    (RuleSpec("greedy-no-skip", "campaign", 0, 0, 450), ("x", "c", "B")),
    (RuleSpec("greedy-no-skip", "campaign", 0, 0, 250), ()),                # ... or stops everything
    (RuleSpec("greedy-no-skip", "campaign", 0, 0, 400), ("x", "c")),
    (RuleSpec("greedy", "campaign", 0, 0, 400), ("x", "c")),
])
def test_counting_rules_and_the_tie_break(rule: RuleSpec, expected: tuple[str, ...]) -> None:
    assert winners(run_campaign(rule)) == expected


def test_greedy_skips_while_no_skip_stops() -> None:
    ballots = [("d1", ["x"]), ("d1", ["x", "B"]), ("d1", ["x", "B", "c"])]  # x 3, B 2, c 1
    skip = run_campaign(RuleSpec("greedy", "campaign", 0, 0, 350), ballots)
    stop = run_campaign(RuleSpec("greedy-no-skip", "campaign", 0, 0, 350), ballots)
    assert winners(skip) == ("x", "c") and winners(stop) == ("x",)


def reference_result_hash(campaign_id: str, status: str, total: int,
                          districts: list[tuple[str, list[tuple[str, int]], list[str]]], all_winners: list[str]) -> bytes:
    """docs/PROTOCOL.md §9, restated with msgpack directly."""
    document = [RESULT_DOMAIN, campaign_id, status, total,
                [[d, [[i, n] for i, n in sorted(counts, key=lambda p: p[0].encode())], w] for d, counts, w in districts],
                all_winners]
    return hashlib.sha256(msgpack.packb(document, use_bin_type=True)).digest()


def test_result_hash_matches_its_definition() -> None:
    chain = run_campaign(RuleSpec("top-n", "campaign", 3, 0, 0))
    _, digest = chain.ledger.state.results["c1"]
    expected = reference_result_hash(
        "c1", "closed", 7,
        [("d1", [("x", 3), ("c", 2), ("B", 2), ("a", 2)], ["x", "c", "B"]), ("d2", [("y", 2), ("z", 1)], [])],
        ["x", "c", "B"])
    assert digest == expected


def test_rejected_initiatives_are_not_in_the_result() -> None:
    spec = campaign_spec(GATEWAY, rule=RuleSpec("top-n", "district", 5, 0, 0))
    chain = new_chain(campaign=spec, initiatives=INITIATIVES)
    chain.commit_block([chain.sign("initiative.review", InitiativeReview("c1", "z", False, "unsafe"))])
    voters = chain.new_voters(1)
    chain.commit_block([chain.register(voters)], VOTING_START)
    chain.commit_block([chain.vote(voters[0], "d2", ["y"])])
    chain.commit_block([], VOTING_END)
    assert winners(chain) == ("c", "B", "a", "x", "y")  # no votes in d1: cheapest first; z is out
    document = tally_document(chain.ledger.state, chain.ledger.state.campaigns["c1"], chain.ledger.height,
                              chain.ledger.state.results["c1"])
    assert document["districts"]["d2"]["initiatives"] == {"y": 1}


def test_tally_document_open_and_closed() -> None:
    chain = run_campaign(RuleSpec("top-n", "district", 2, 0, 0), close=False)
    state = chain.ledger.state
    open_doc = tally_document(state, state.campaigns["c1"], chain.ledger.height, None)
    assert open_doc["status"] == "open" and open_doc["result_status"] == "provisional"
    assert open_doc["winners"] == [] and open_doc["total_ballots"] == 7
    assert open_doc["districts"]["d1"] == {"initiatives": {"B": 2, "a": 2, "c": 2, "x": 3},
                                           "scores": {"B": 2, "a": 2, "c": 2, "x": 3}, "winners": []}
    assert open_doc["result_hash"] == reference_result_hash(
        "c1", "open", 7, [("d1", [("x", 3), ("c", 2), ("B", 2), ("a", 2)], []), ("d2", [("y", 2), ("z", 1)], [])],
        []).hex()
    chain.commit_block([], VOTING_END)
    state = chain.ledger.state
    closed_doc = tally_document(state, state.campaigns["c1"], chain.ledger.height, state.results["c1"])
    assert closed_doc["status"] == "closed" and closed_doc["result_status"] == "final"
    assert closed_doc["winners"] == ["x", "c", "y", "z"]
    assert closed_doc["districts"]["d2"]["winners"] == ["y", "z"]
    assert closed_doc["result_hash"] == state.results["c1"][1].hex()
    assert closed_doc["close_reason"] == "voting window ended"


def test_counting_result_can_be_recomputed_from_committed_state() -> None:
    chain = run_campaign(RuleSpec("greedy", "campaign", 0, 0, 450))
    state = chain.ledger.state
    assert compute_counting_result(state, state.campaigns["c1"]) == state.results["c1"]


def test_equal_shares_is_computed_off_the_apply_path() -> None:
    chain = run_campaign(RuleSpec("equal-shares", "campaign", 0, 0, 450))
    state = chain.ledger.state
    campaign = state.campaigns["c1"]
    assert "c1" not in state.results  # not computed while the block applied
    document = tally_document(state, campaign, chain.ledger.height, None)
    assert document["result_status"] == "computing" and document["winners"] == []
    first = compute_equal_shares_result(state, chain.ledger.store, campaign)
    assert compute_equal_shares_result(state, chain.ledger.store, campaign) == first
    groups = read_ballot_groups(chain.ledger.store, chain.ledger.state.campaigns["c1"])
    ballots = [cast(tuple[str, ...], ballot) for ballot, weight in groups.ballots().items() for _ in range(weight)]
    assert sorted(ballots) == sorted(tuple(sorted(choices, key=str.encode)) for _, choices in BALLOTS)
    candidates = [Candidate(i.spec.initiative_id, i.spec.cost, state.votes("c1", i.spec.initiative_id))
                  for i in state.campaign_initiatives("c1") if i.status == INITIATIVE_APPROVED]
    assert list(first[0]) == select_winners("equal-shares", candidates, budget=450, ballots=ballots)
    final = tally_document(state, campaign, chain.ledger.height, first)
    assert final["result_status"] == "final" and final["winners"] == list(first[0])


def test_equal_shares_keeps_the_share_of_a_voter_whose_choice_is_under_min_votes() -> None:
    """Three voters, budget 300: p (cost 250) has 2 approvals, q (200) has 1 and misses min_votes 2.
    q's voter keeps a third of the budget, so p's supporters hold 200 < 250 and nothing wins; were
    that ballot dropped, p's supporters would hold 300 and p would win."""
    spec = campaign_spec(GATEWAY, rule=RuleSpec("equal-shares", "campaign", 0, 2, 300),
                         ballot=BallotSpec("approval", 1, 2))
    chain = new_chain(campaign=spec, initiatives=(("p", "d1", 250), ("q", "d1", 200)))
    voters = chain.new_voters(3)
    chain.commit_block([chain.register(voters)], VOTING_START)
    chain.commit_block([chain.vote(voters[0], "d1", ["p"]), chain.vote(voters[1], "d1", ["p"]),
                        chain.vote(voters[2], "d1", ["q"])])
    chain.commit_block([], VOTING_END)
    state = chain.ledger.state
    result = compute_equal_shares_result(state, chain.ledger.store, state.campaigns["c1"])
    assert result[0] == ()
    assert select_winners("equal-shares", [Candidate("p", 250, 2)], budget=300, ballots=[["p"], ["p"]]) == ["p"]

