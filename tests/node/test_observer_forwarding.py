"""Real processes: an observer keeps votes committing promptly while one validator is frozen (SIGSTOP),
and ballots sent right after their registration (separate requests) commit without waiting for a re-forward.

A SIGSTOPped validator accepts TCP connections (the kernel does) but never answers. Before the
forwarder chose targets by health with short timeouts, every batch the observer sent it waited
15 s, and everything submitted behind it waited too.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.node.netkit import LocalNet, wait_for
from tests.node.votes import demo_plan, make_batch

pytestmark = pytest.mark.slow

BATCHES = 8
VOTERS_PER_BATCH = 10
# Commit latency allowed for each batch submitted to the observer: one forwarding timeout (3 s),
# rounds whose proposer is the frozen validator (propose timeout), and a loaded CI box. The old
# forwarder needed at least 15 s for a batch sent to the frozen validator.
DEADLINE_S = 13.0


@pytest.fixture
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    network = LocalNet(tmp_path_factory.mktemp("frozen") / "net", validators=4, observers=1)
    try:
        network.start_all()
        yield network
    finally:
        for name in network.names:
            if network.alive(name):
                os.kill(network.pid(name), signal.SIGCONT)
        network.close()


def test_votes_through_the_observer_commit_promptly_while_a_validator_is_frozen(net: LocalNet) -> None:
    plan = demo_plan(net.directory)
    batches = [make_batch(plan, VOTERS_PER_BATCH, seed) for seed in range(BATCHES)]
    wait_for(lambda: net.status("observer-0")["peers"] == 4, 60, "the observer to see every validator")
    os.kill(net.pid("validator-1"), signal.SIGSTOP)
    submitted: dict[str, float] = {}
    committed: dict[str, float] = {}
    for batch in batches:
        result = net.submit("observer-0", batch)
        assert result["rejected"] == [] and len(result["accepted"]) == len(batch)
        submitted[result["accepted"][-1]] = time.monotonic()  # a batch's ballots go out together
        time.sleep(0.3)

    def all_committed() -> bool:
        for tx_hash in submitted:
            if tx_hash not in committed and net.tx_status("observer-0", tx_hash) == "committed":
                committed[tx_hash] = time.monotonic()
        return len(committed) == len(submitted)

    wait_for(all_committed, 90, "every batch submitted to the observer to commit", interval=0.1)
    latencies = sorted(committed[h] - submitted[h] for h in submitted)
    assert latencies[-1] < DEADLINE_S, f"commit latencies through the observer: {latencies}"
    assert net.alive("observer-0")


ROUNDS = 6
# Commit latency allowed for ballots sent to the observer in a request of their own right after their
# registration's: a block or two and a loaded CI box. A ballot that overtook its registration and
# waited for the re-forward took 5-7.5 s.
ORDERED_DEADLINE_S = 4.5


def test_ballots_submitted_after_their_registration_in_separate_requests_commit_promptly(net: LocalNet) -> None:
    plan = demo_plan(net.directory)
    wait_for(lambda: net.status("observer-0")["peers"] == 4, 60, "the observer to see every validator")
    latencies: list[float] = []
    for seed in range(ROUNDS):
        registration, *ballots = make_batch(plan, VOTERS_PER_BATCH, 100 + seed)
        assert net.submit("observer-0", [registration])["rejected"] == []
        result = net.submit("observer-0", ballots)  # the next request, as a voter's client would send it
        assert result["rejected"] == [] and len(result["accepted"]) == len(ballots)
        submitted = time.monotonic()
        last = result["accepted"][-1]  # a batch's ballots go out together
        wait_for(lambda: net.tx_status("observer-0", last) == "committed", 90,
                 f"round {seed}'s ballots submitted to the observer to commit", interval=0.05)
        latencies.append(time.monotonic() - submitted)
    assert max(latencies) < ORDERED_DEADLINE_S, f"commit latencies of ballots through the observer: {latencies}"
