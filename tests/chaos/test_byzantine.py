"""One validator of four equivocates (proposals and votes) and gossips garbage: the network keeps
committing, every honest validator holds verified evidence against it, and no honest validator is
accused or double-signs. With ``split`` each peer receives only one of the two signed versions, so
no honest validator sees the equivocation directly: one proves it from relayed precommits or a
commit certificate, and evidence gossip brings the proof to the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from veche_chaos.runner import ChaosRun, RunConfig
from veche_chaos.scenarios import DEFAULT_BYZANTINE_BEHAVIOURS, byzantine_phase

pytestmark = pytest.mark.slow

SPLIT_BEHAVIOURS = DEFAULT_BYZANTINE_BEHAVIOURS  # scripts/chaos --byzantine checks the split case by default


@pytest.mark.timeout(300)
def test_one_equivocating_validator_in_four(tmp_path: Path) -> None:
    assert "split" in SPLIT_BEHAVIOURS.split(",")
    config = RunConfig(directory=tmp_path / "run", plan=[], gateway_rate=1.0,
                       byzantine={"validator-3": SPLIT_BEHAVIOURS}, title="byzantine test")
    summary = asyncio.run(ChaosRun(config, [byzantine_phase]).execute())

    assert summary.extra["gates"], "the Byzantine phase set no gates"
    assert all(summary.extra["gates"].values()), summary.extra["gates"]
    evidence = summary.extra["notes"]["evidence on honest validators"]
    assert set(evidence) == {"validator-0", "validator-1", "validator-2"}
    for seen in evidence.values():
        assert 3 in seen["evidence_api"]
        assert seen["metric"].get("validator-3", 0) >= 1
    checks = {check.name: check for check in summary.checks}
    double_sign = checks["no_double_sign"]
    assert double_sign.ok, double_sign.summary
    accused = {item["validator"] for items in double_sign.detail["evidence_items"].values() for item in items}
    assert accused == {"validator-3"}
    assert not double_sign.detail["invalid_evidence"]
    failed = [check.to_json() for check in summary.checks if not check.ok]
    assert not failed, failed
    assert summary.lost == 0 and summary.duplicated == 0
    assert summary.votes["total"]["acknowledged"] >= 500
    assert summary.ok
