"""Equal-shares results are computed off the block-apply path and published with their hash."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import tracemalloc
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest

from chain.crypto import SigningKey
from chain.records import ballot_key
from chain.results import compute_equal_shares_result, tally_document
from chain.storage import LevelStore
from chain.tx import BallotSpec, RuleSpec
from node.results import Results, computed_key
from tests.node.chainfix import NOW, T0, VOTING_END, VOTING_START, make_chain
from tests.transparency.chainkit import ChainBuilder, build_genesis, make_keys


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


async def run_until_settled(results: Results, campaign_id: str, timeout: float = 60.0) -> None:
    """Run the results service until the campaign's result is published or failed."""
    task = asyncio.create_task(results.run())
    deadline = time.monotonic() + timeout
    while campaign_id not in results.computed and campaign_id not in results.failed:
        assert time.monotonic() < deadline, "no result and no failure"
        await asyncio.sleep(0.01)
    task.cancel()


def build_large_campaign(directory: Path, voters: int) -> ChainBuilder:
    """A closed equal-shares campaign of ``voters`` real signed ballots on a real LevelDB."""
    keys = make_keys(4)
    genesis = build_genesis(keys)
    builder = ChainBuilder(LevelStore(directory), genesis, keys)
    builder.add_block([builder.campaign("c1", ballot=BallotSpec("approval", 1, 2),
                                        rule=RuleSpec("equal-shares", "district", 0, 0, 0),
                                        voting_start=VOTING_START, voting_end=VOTING_END)], time_ms=T0 + 1_000)
    builder.add_block([builder.initiative("c1", iid, district, cost)
                       for iid, district, cost in (("n1", "north", 400_000), ("n2", "north", 300_000),
                                                   ("n3", "north", 500_000), ("s1", "south", 200_000))],
                      time_ms=T0 + 2_000)
    choices = (["n1"], ["n2"], ["n1", "n2"], ["n3", "n1"], ["n3"])
    when = VOTING_START
    for start in range(0, voters, 2_000):
        keys_here = [SigningKey.generate() for _ in range(min(2_000, voters - start))]
        txs = [builder.registration("c1", keys_here[at:at + 1_000]) for at in range(0, len(keys_here), 1_000)]
        txs += [builder.vote(key, "c1", "south", ["s1"]) if (start + i) % 7 == 0
                else builder.vote(key, "c1", "north", choices[(start + i) % 5]) for i, key in enumerate(keys_here)]
        when += 1_000
        builder.add_block(txs, time_ms=when)
    builder.add_block([builder.close("c1")], time_ms=when + 1_000)
    return builder


@pytest.fixture(scope="module")
def large_campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainBuilder]:
    builder = build_large_campaign(tmp_path_factory.mktemp("large") / "data", 20_000)
    yield builder
    builder.ledger.store.close()


def test_veche_verify_counts_equal_shares_holding_the_distinct_ballots_only(large_campaign: ChainBuilder) -> None:
    """``veche verify`` recomputes equal shares in its own process from the stored ballots: its
    memory for that follows the distinct ballots (6 here), not the 20,000 ballots (before: 2.7 MB; now
    ≈ 0.3 MB, the decoder's own buffers)."""
    ledger = large_campaign.ledger
    campaign = ledger.state.campaigns["c1"]
    compute_equal_shares_result(ledger.state, ledger.store, campaign)  # imports, caches
    tracemalloc.start()
    try:
        winners, _ = compute_equal_shares_result(ledger.state, ledger.store, campaign)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert winners
    assert peak < 512 * 1024, peak


def test_the_node_streams_a_campaigns_ballots_to_its_worker_and_holds_none_of_them(
        large_campaign: ChainBuilder) -> None:
    """A node computing equal shares reads the campaign's stored ballots and sends them on in chunks
    of bounded size: its own memory during the computation does not grow with the ballots (before,
    it held every ballot and pickled them all to its worker: ≈ 1.9 MB here, and ≈ 160 MB more at
    its peak for the 1.2 M ballots of the big chain's largest equal-shares campaign)."""
    ledger = large_campaign.ledger
    campaign = ledger.state.campaigns["c1"]
    expected = compute_equal_shares_result(ledger.state, ledger.store, campaign)
    assert expected[0]  # the count has winners: it did read the ballots
    results = Results(ledger)
    results.chunk_bytes = 16 * 1024
    asyncio.run(results._compute("c1"))  # a first computation: starts and imports what spawning needs
    assert results.computed["c1"] == expected
    del results.computed["c1"]
    tracemalloc.start()
    try:
        asyncio.run(results._compute("c1"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    results.close()
    assert results.computed["c1"] == expected and results.failed == {}
    assert peak < 512 * 1024, peak   # ≈ 0.27 MB here, whatever the number of ballots
    assert 0 < results.largest_chunk < 16 * 1024 + 256


def test_a_worker_that_dies_is_a_failed_result_not_a_stopped_node(tmp_path: Path) -> None:
    """The worker is killed while the node streams to it (as by the kernel's OOM killer): the
    campaign's result is marked failed with the worker's exit, the node's results service goes on."""
    builder = build_large_campaign(tmp_path / "data", 2_000)
    ledger = builder.ledger
    try:
        results = Results(ledger)
        results.chunk_bytes = 1024
        original = results._stream_to_worker

        def kill_after_start(*args: Any) -> Any:
            import threading

            def killer() -> None:
                for _ in range(500):
                    worker = results._worker
                    if worker is not None and worker.pid is not None:
                        os.kill(worker.pid, signal.SIGKILL)
                        return
                    time.sleep(0.01)

            threading.Thread(target=killer, daemon=True).start()
            return original(*args)

        results._stream_to_worker = kill_after_start  # type: ignore[method-assign, assignment]
        asyncio.run(run_until_settled(results, "c1"))
        results.close()
        assert "c1" not in results.computed
        assert "worker stopped without a result" in results.failed["c1"], results.failed
        assert f"exit code {-signal.SIGKILL}" in results.failed["c1"]
    finally:
        ledger.store.close()


def test_a_corrupt_stored_ballot_fails_the_result_with_the_workers_reason(large_campaign: ChainBuilder) -> None:
    """The worker meets a corrupt stored ballot in the first chunk and stops reading while the node is
    still sending (1.4 MB of ballots, more than the pipe holds): the result is failed with the
    worker's reason, not with a broken pipe."""
    ledger = large_campaign.ledger
    corrupt = ballot_key("c1", b"\x00" * 32, "north")  # the campaign's first key
    ledger.store.write({corrupt: b"\xc1 not a ballot", computed_key("c1"): None}, sync=True)
    try:
        results = Results(ledger)
        results.chunk_bytes = 512
        asyncio.run(run_until_settled(results, "c1"))
        results.close()
    finally:
        ledger.store.write({corrupt: None}, sync=True)
    assert "c1" not in results.computed
    assert results.failed["c1"].startswith("StorageError: ") and "stored ballot is corrupt" in results.failed["c1"], \
        results.failed


def test_closing_the_node_stops_a_running_computation_and_leaves_the_store(large_campaign: ChainBuilder) -> None:
    """A node that stops while it streams ballots to its worker: ``close()`` kills the worker and
    returns once the reading thread has left the store (the node closes its store next); nothing is
    published or marked failed — the next start computes it."""
    ledger = large_campaign.ledger
    ledger.store.write({computed_key("c1"): None}, sync=True)
    results = Results(ledger)
    results.chunk_bytes = 256
    took: list[float] = []

    async def main() -> None:
        task = asyncio.create_task(results.run())
        deadline = time.monotonic() + 30
        while results._worker is None:
            assert time.monotonic() < deadline, "the computation did not start"
            await asyncio.sleep(0.005)
        worker = results._worker
        started = time.monotonic()
        await asyncio.to_thread(results.close)
        took.append(time.monotonic() - started)
        assert not worker.is_alive()
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(main())
    assert took[0] < 5, took
    assert "c1" not in results.computed and "c1" not in results.failed
    assert ledger.store.get(computed_key("c1")) is None
    assert sum(1 for _ in ledger.store.iterate(b"S/b/c1/")) == 20_000  # the store still serves reads
