"""The short chaos run: a real 4-validator testnet + observer + gateway under load, perturbed.

kill -9 + restart, SIGSTOP for 10 s, a partition (one validator cut off; the majority side must
keep committing, the cut-off side must not), a wipe of a validator's data/ with resync from its
peers (signing state kept), a graceful restart — then every invariant of docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from veche_chaos.runner import ChaosRun, RunConfig

pytestmark = pytest.mark.slow


@pytest.mark.timeout(480)
def test_short_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    config = RunConfig(directory=tmp_path / "run", plan="short", json_out=tmp_path / "summary.json")
    started = time.monotonic()
    summary = asyncio.run(ChaosRun(config).execute())
    elapsed = time.monotonic() - started

    faults = {fault.kind: fault for fault in summary.faults}
    assert {"kill9", "sigstop", "partition", "wipe", "restart"} <= set(faults)
    for fault in summary.faults:
        assert fault.ok, f"{fault.kind} on {fault.target}: {fault.problems}"
        assert fault.recovery_s is not None and fault.recovery_s < 60, fault.to_json()
    partition = faults["partition"]
    assert partition.majority_progress is not None and partition.majority_progress >= 3, partition.to_json()
    assert (partition.minority_progress or 0) <= 1, partition.to_json()
    assert faults["sigstop"].duration_s >= 10
    assert faults["wipe"].detail["signing_state_kept"] is True

    failed = [check.to_json() for check in summary.checks if not check.ok]
    assert not failed, failed
    assert {check.name for check in summary.checks} >= {"agreement", "no_duplicates", "acked_committed",
                                                        "certificates", "no_double_sign", "verify", "processes"}
    assert summary.lost == 0 and summary.duplicated == 0
    assert summary.votes["direct"]["acknowledged"] >= 1000
    assert summary.votes["gateway"]["acknowledged"] >= 20
    assert summary.votes["total"]["acknowledged"] == summary.votes["total"]["acknowledged_committed"]
    assert summary.ok
    written = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert written["ok"] is True and written["lost"] == 0 and len(written["faults"]) == len(summary.faults)
    assert elapsed < 360, f"the short run took {elapsed:.0f} s"


@pytest.mark.timeout(300)
def test_the_proxy_fabric_partitions_at_the_tcp_level_too(tmp_path: Path) -> None:
    """The fallback fabric (no namespaces): a partition through the fault proxy, and a kill -9."""
    config = RunConfig(directory=tmp_path / "run", fabric="proxy", plan=[("partition", "validator-3"),
                                                                        ("kill9", "validator-0")],
                       gateway_rate=0.5, hold_s=8.0, warmup_s=5.0, title="proxy fabric")
    summary = asyncio.run(ChaosRun(config).execute())
    assert summary.fabric["kind"] == "proxy"
    partition = summary.faults[0]
    assert partition.ok and partition.sides == [["validator-3"], ["observer-0", "validator-0", "validator-1",
                                                                  "validator-2"]]
    assert (partition.minority_progress or 0) <= 1 and (partition.majority_progress or 0) >= 3
    failed = [check.to_json() for check in summary.checks if not check.ok]
    assert not failed, failed
    assert summary.ok and summary.lost == 0 and summary.duplicated == 0
