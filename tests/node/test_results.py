"""Equal-shares results are computed off the block-apply path and published with their hash."""

from __future__ import annotations

import asyncio

from chain.results import compute_equal_shares_result, tally_document
from chain.tx import BallotSpec
from node.results import Results
from tests.node.chainfix import NOW, make_chain


def test_equal_shares_result_is_computed_in_a_worker_and_matches_the_chain_rule() -> None:
    chain = make_chain(rule="equal-shares", ballot=BallotSpec("approval", 1, 2))
    voters = chain.voters(12)
    ballots = [chain.builder.vote(v, "c1", "north", ["n1"] if i % 3 else ["n1", "n2"])
               for i, v in enumerate(voters[:9])]
    ballots += [chain.builder.vote(v, "c1", "south", ["s1"]) for v in voters[9:]]
    chain.builder.add_block([chain.register(voters)] + ballots, time_ms=NOW - 2000)
    results = Results(chain.ledger)
    campaign = chain.ledger.state.campaigns["c1"]
    assert results.result(campaign) is None  # open: nothing published
    chain.builder.add_block([chain.builder.close("c1")], time_ms=NOW - 1000)
    closed = chain.ledger.state.campaigns["c1"]
    assert closed.status == "closed" and results.result(closed) is None  # still computing

    async def main() -> None:
        task = asyncio.create_task(results.run())
        for _ in range(3000):
            if "c1" in results.computed or "c1" in results.failed:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        results.close()

    asyncio.run(main())
    assert results.failed == {}
    expected = compute_equal_shares_result(chain.ledger.state, chain.ledger.store, closed)
    assert results.result(closed) == expected
    document = tally_document(chain.ledger.state, closed, chain.ledger.height, results.result(closed))
    assert document["result_status"] == "final" and document["result_hash"] == expected[1].hex()
    assert set(document["winners"]) == set(expected[0])

    # after a restart the node publishes what it computed at once: nothing is read or computed again
    restarted = Results(chain.ledger)
    restarted.reconcile()
    assert restarted.result(closed) == expected and restarted._queue == []


def test_counting_rules_are_published_from_state() -> None:
    chain = make_chain(rule="greedy")
    voters = chain.voters(2)
    chain.builder.add_block([chain.register(voters), chain.vote(voters[0]), chain.vote(voters[1], "south", "s1"),
                             chain.builder.close("c1")], time_ms=NOW - 1000)
    campaign = chain.ledger.state.campaigns["c1"]
    results = Results(chain.ledger)
    results.reconcile()
    assert results.result(campaign) == chain.ledger.state.results["c1"]
    assert results._queue == []  # nothing to compute off-path for a counting rule
