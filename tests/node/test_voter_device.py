"""``veche ballot cast``'s device builds and checks a voter-held ballot of every type before it asks for a
token (node/voter/device.py ``checked_ballot``, node/voter/cli.py ``parse_choices``)."""

from __future__ import annotations

from typing import Any

import click
import pytest

from node.voter.cli import parse_choices
from node.voter.device import DeviceError, checked_ballot

INITIATIVES = [{"initiative_id": iid, "district_id": district, "status": status, "cost": cost}
               for iid, district, status, cost in (("a", "d1", "approved", 120_000_000), ("b", "d1", "approved", 70_000_000),
                                                   ("c", "d1", "approved", 50_000_000), ("x", "d1", "rejected", 1),
                                                   ("s", "d2", "approved", 1))]


def campaign(ballot: dict[str, Any]) -> dict[str, Any]:
    """A node's GET /api/v1/campaigns/{id} answer, the parts the device reads."""
    return {"campaign": {"campaign_id": "c1", "ballot": ballot,
                         "districts": [{"district_id": "d1", "name": "One", "budget": 190_000_000},
                                       {"district_id": "d2", "name": "Two", "budget": 0}]},
            "initiatives": INITIATIVES}


APPROVAL = campaign({"type": "approval", "min_choices": 1, "max_choices": 2})
KNAPSACK = campaign({"type": "knapsack", "min_choices": 1, "max_choices": 3, "max_sum_cost": 0})
CUMULATIVE = campaign({"type": "cumulative", "min_choices": 1, "max_choices": 3, "min_sum_points": 1,
                       "max_sum_points": 10, "max_points": 6})
ORDINAL = campaign({"type": "ordinal", "min_choices": 2, "max_choices": 3, "rank_points": [3, 2, 1]})


def test_each_type_is_encoded_as_the_chain_takes_it() -> None:
    assert checked_ballot(APPROVAL, "d1", ["b", "a"], None).to_wire() == ["c1", "d1", ["a", "b"]]
    assert checked_ballot(KNAPSACK, "d1", ["a", "b"], None).choices == ("a", "b")       # 190,000,000 = the budget
    cumulative = checked_ballot(CUMULATIVE, "d1", ["a", "b"], [4, 6])
    assert (cumulative.choices, cumulative.points) == (("b", "a"), (6, 4))
    ranked = checked_ballot(ORDINAL, "d1", ["c", "a"], None)                            # the ranking, first first
    assert (ranked.choices, ranked.points) == (("c", "a"), (3, 2))


@pytest.mark.parametrize("document, district, choices, points, code", [
    (APPROVAL, "d1", ["a", "b", "c"], None, "bad_ballot"),
    (APPROVAL, "d1", ["a"], [1], "bad_ballot"),
    (APPROVAL, "d1", ["x"], None, "invalid_choice"),         # not approved
    (APPROVAL, "d1", ["s"], None, "invalid_choice"),         # another district's
    (KNAPSACK, "d1", ["a", "b", "c"], None, "cost_cap"),      # over the district's budget
    (CUMULATIVE, "d1", ["a", "b"], [6, 5], "points_total"),
    (CUMULATIVE, "d1", ["a"], [7], "points_max"),
    (CUMULATIVE, "d1", ["a", "b"], None, "bad_ballot"),
    (CUMULATIVE, "d1", ["a", "a"], [1, 2], "bad_ballot"),     # the same project twice
    (ORDINAL, "d1", ["a"], None, "bad_ballot"),               # fewer ranks than the campaign asks
    (ORDINAL, "d1", ["a", "b"], [3, 3], "rank_points"),
])
def test_a_ballot_the_chain_would_refuse_is_refused_with_its_code(document: dict[str, Any], district: str,
                                                                  choices: list[str], points: list[int] | None,
                                                                  code: str) -> None:
    with pytest.raises(DeviceError) as caught:
        checked_ballot(document, district, choices, points)
    assert caught.value.code == code


def test_choices_with_and_without_points() -> None:
    assert parse_choices(("a", "b")) == (["a", "b"], None)
    assert parse_choices(("a:4", "b:6")) == (["a", "b"], [4, 6])
    for values in (("a:4", "b"), ("a:four",), ("a:-1",), ("a:",)):
        with pytest.raises(click.BadParameter):
            parse_choices(values)


def test_the_receipt_from_a_nodes_tx_answer_is_the_chains_receipt_and_verifies() -> None:
    """``receipt_from_proof`` (the browser's download button, here in Python) makes the receipt file that
    ``chain.receipt`` builds and ``veche receipt verify`` accepts, from the node's ``GET /api/v1/txs/{hash}``."""
    from chain.merkle import inclusion_proof
    from chain.receipt import build_receipt, verify_receipt
    from node.voter.device import receipt_from_proof
    from tests.chain.helpers import new_chain

    chain = new_chain(validators=4)
    chain.open_voting()
    voters = chain.new_voters(3)
    votes = [chain.vote(v, "d1", ["a1"]) for v in voters]
    chain.commit_block([chain.register(voters)] + votes)
    tx = votes[1]
    location = chain.ledger.tx_location(tx.hash)
    assert location is not None
    block, certificate = chain.ledger.block(location.height), chain.ledger.certificate(location.height)
    assert block is not None and certificate is not None
    path = inclusion_proof(block.txs, location.index)
    found = {"status": "committed", "height": location.height, "index": location.index,   # as node/api.py answers
             "proof": {"tree_size": len(block.txs), "path": [step.hex() for step in path], "tx": tx.raw.hex(),
                       "block_hash": block.hash().hex(), "header": block.header.encode().hex(),
                       "certificate": certificate.encode().hex()}}
    receipt = receipt_from_proof(chain.params.chain_id, chain.params.genesis_hash.hex(), tx, found)
    assert receipt == build_receipt(chain.params, tx.raw, location.height, location.index, len(block.txs), path,
                                    block.header, certificate)
    assert verify_receipt(receipt, chain.params).tx == tx
