"""Ten times a node's measured admission rate of valid, duplicate and forged transactions into one
node, with the node's default limits: its mempool stays bounded, honest votes commit with
p99 <= 2 s, nothing is duplicated or lost.

The rate is measured from a client address the target trusts (``RunConfig.measured_node``), so it
is the node's capacity, not a budget; the flood then comes from untrusted addresses under the
default budgets (500 tx/s per client, a node-wide budget of one eighth of the measured verify rate,
docs/NODE.md §3). From one address the per-client budget stops it; from four, the node-wide one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from veche_chaos.flood import FloodConfig, flood_phase
from veche_chaos.runner import ChaosRun, RunConfig

pytestmark = pytest.mark.slow


@pytest.mark.timeout(360)
@pytest.mark.parametrize("sources", [1, 4])
def test_flood_of_ten_times_the_admission_rate(tmp_path: Path, sources: int) -> None:
    config = RunConfig(directory=tmp_path / "run", plan=[], gateway_rate=1.0, title=f"flood test ({sources})",
                       measured_node="validator-1")
    flood = FloodConfig(target="validator-1", factor=10.0, seconds=20.0, sources=sources)
    summary = asyncio.run(ChaosRun(config, [flood_phase(flood)]).execute())

    report = summary.extra["flood"]
    assert len(set(report["source_addresses"])) == sources
    assert report["measure_address"] not in report["source_addresses"]
    assert report["measured_admission_votes_per_s"] > 100
    assert report["flood"]["offered_rate"] >= 8 * report["measured_admission_votes_per_s"]
    offered = report["flood"]["offered"]
    assert offered["valid"] > 0 and offered["duplicate"] > 0 and offered["forged"] > 0
    assert report["flood"]["http_status"].get(429, 0) > 0  # the budgets refused most of it
    assert report["target_mempool_peak"] <= report["mempool_bounds"][0]
    assert report["honest_latency_during_flood"]["count"] >= 100
    assert report["honest_latency_during_flood"]["p99"] <= 2.0
    assert all(summary.extra["gates"].values()), summary.extra["gates"]
    failed = [check.to_json() for check in summary.checks if not check.ok]
    assert not failed, failed
    assert summary.duplicated == 0 and summary.lost == 0
    assert summary.votes["flood"]["acknowledged"] > 0
    assert summary.ok
