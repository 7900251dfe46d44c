"""The chaos runner's machine faults on a real 4-validator testnet under load: a deleted signing
state (refused, then recovered with a floor), a corrupted LevelDB table (never served, exit 5,
``veche node resync``) and a filled disk (503 ``disk_low``, consensus goes on, intake resumes) —
then every invariant, including ``equivocations`` = 0."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from veche_chaos.runner import ChaosRun, RunConfig

pytestmark = pytest.mark.slow


@pytest.mark.timeout(420)
def test_machine_faults_keep_every_invariant_and_no_validator_equivocates(tmp_path: Path) -> None:
    config = RunConfig(directory=tmp_path / "run", observers=0, gateway_rate=0.5, warmup_s=5.0, hold_s=7.0,
                       down_s=1.0, settle_s=2.0, drain_s=45.0, verify_workers=1, title="machine faults",
                       plan=[("delete-signing-state", "validator-1"), ("corrupt-table", "validator-2"),
                             ("fill-disk", "validator-3")])
    summary = asyncio.run(ChaosRun(config).execute())
    faults = {fault.kind: fault for fault in summary.faults}
    for fault in summary.faults:
        assert fault.ok, f"{fault.kind} on {fault.target}: {fault.problems} {fault.detail}"
    assert faults["delete-signing-state"].detail["refused_exit_code"] == 6
    assert faults["delete-signing-state"].detail["recovered_floor"] >= 3
    corrupt = faults["corrupt-table"].detail
    assert corrupt["exit_code"] == 5 and corrupt["corrupt_served"] == 0 and corrupt["resync_exit_code"] == 0
    filled = faults["fill-disk"].detail
    assert filled["intake_while_low"] == "disk_low" and filled["blocks_committed_while_low"] >= 1
    assert filled["intake_after_freeing"] == "400"  # an empty batch: taken, and refused for being empty
    checks = {check.name: check for check in summary.checks}
    assert checks["equivocations"].ok and checks["equivocations"].detail["equivocations"] == 0
    failed = [check.to_json() for check in summary.checks if not check.ok]
    assert not failed, failed
    assert summary.lost == 0 and summary.duplicated == 0 and summary.ok
