"""Backups of a running validator, and a scheduled protocol upgrade (real processes, real LevelDB).

One 4-validator network for the module; validator-3 runs software limited to protocol version 1
(``VECHE_MAX_PROTOCOL_VERSION=1``, a test-only setting).

* Backup-wipe-restore under load: ``veche node backup`` of validator-1 while ballots flow; later
  validator-1 is killed, its ``data/`` wiped (its signing state kept), ``veche node restore`` puts the
  backup back (and refuses to put the backup's older signing state over the newer one), the node
  restarts, catches up, and nobody ever holds evidence of it signing twice; no acknowledged ballot is
  lost or duplicated. Restores into a non-empty ``data/`` or from a damaged file change nothing.
* Scheduled upgrade: ``veche upgrade schedule 2 --height H``; validator-3 stops before H with exit
  code 8 and its message, the others cross H under version 2, validator-3 restarted with the same
  software stops again at once, and once "upgraded" (started without the limit) catches up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.records import read_u64
from chain.state import HEIGHT_KEY
from chain.storage import LevelStore
from tests.node.netkit import LocalNet, get_json, wait_for
from tests.node.votes import demo_plan
from tests.ops.lifecycle import BallotStream, veche, wait_height

pytestmark = pytest.mark.slow

LIMITED = {"VECHE_MAX_PROTOCOL_VERSION": "1"}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    network = LocalNet(tmp_path_factory.mktemp("lifecycle") / "net", validators=4, observers=0)
    try:
        for name in network.names:
            network.start(name, LIMITED if name == "validator-3" else None)
        for name in network.names:
            network.wait_up(name)
        yield network
    finally:
        network.close()


def evidence_against(net: LocalNet, names: list[str]) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for name in names:
        found.extend(get_json(f"{net.urls[name]}/api/v1/evidence")["evidence"])
    return found


def test_backup_of_a_running_validator_wipe_restore_no_double_sign(net: LocalNet, tmp_path: Path) -> None:
    plan = demo_plan(net.directory)
    home = net.homes["validator-1"]
    stream = BallotStream(net, plan, ["validator-0", "validator-2", "validator-1"]).start()
    try:
        wait_for(lambda: len(stream.acknowledged) >= 150, 90, "ballots before the backup")
        backup = tmp_path / "validator-1.backup"
        made = veche("node", "backup", "--home", str(home), "--out", str(backup))
        assert made.returncode == 0, made.stdout + made.stderr
        assert "taken while the node ran" in made.stdout
        backup_height = int(made.stdout.split("height ")[1].split(",")[0])
        wait_height(net, ["validator-0"], backup_height + 5)      # the network moves on past the backup
        net.kill("validator-1")
        damaged = tmp_path / "damaged.backup"
        data = bytearray(backup.read_bytes())
        data[len(data) // 2] ^= 0x01
        damaged.write_bytes(bytes(data))
        refused = veche("node", "restore", str(backup), "--home", str(home))
        assert refused.returncode == 1 and "is not empty" in refused.stderr, refused.stderr  # data/ still there
        net.wipe_data("validator-1")
        broken = veche("node", "restore", str(damaged), "--home", str(home))
        assert broken.returncode == 1 and not (home / "data").exists(), broken.stderr
        restored = veche("node", "restore", str(backup), "--home", str(home))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert f"to height {backup_height}" in restored.stdout
        assert "refusing to restore the signing state over a newer one" in restored.stdout
        net.start("validator-1")
        net.wait_up("validator-1")
        wait_for(lambda: net.height("validator-1") >= net.height("validator-0") - 1, 120, "validator-1 to catch up")
        top = net.height("validator-0")
        wait_height(net, ["validator-1"], top + 3)
        middle = len(stream.acknowledged)
        wait_for(lambda: len(stream.acknowledged) >= middle + 60, 90, "ballots after the restore")
    finally:
        stream.stop()
    committed = stream.drain("validator-0", plan.campaign_id)
    assert len(committed) == len(set(committed))
    assert not set(stream.acknowledged) - set(committed), "acknowledged ballots lost"
    assert evidence_against(net, ["validator-0", "validator-1", "validator-2", "validator-3"]) == []
    for name in net.validators:
        assert "EQUIVOCATION" not in (net.homes[name] / "process.log").read_text(errors="replace")


def test_a_scheduled_upgrade_stops_the_old_node_before_its_height(net: LocalNet) -> None:
    node = net.urls["validator-0"]
    height = net.height("validator-0") + 8
    scheduled = veche("upgrade", "schedule", "2", "--height", str(height), "--reason", "release 2.0",
                      "--key", str(net.directory / "keys" / "committee-0.json"), "--node", node)
    assert scheduled.returncode == 0, scheduled.stdout + scheduled.stderr
    status = net.status("validator-0")
    assert status["protocol_upgrade"] == {"version": 2, "height": height} and status["protocol_version"] == 1
    process = net.processes["validator-3"]
    assert process.wait(timeout=180) == 8
    log = (net.homes["validator-3"] / "process.log").read_text(errors="replace")
    assert "PROTOCOL UPGRADE: version 2 is scheduled from height" in log
    assert f"STOPS BEFORE HEIGHT {height}: protocol version 2 is in force from height {height}" in log
    store = LevelStore(net.homes["validator-3"] / "data")
    try:
        stored = store.get(HEIGHT_KEY)
        assert stored is not None and read_u64(stored) == height - 1
    finally:
        store.close()
    wait_height(net, ["validator-0", "validator-1", "validator-2"], height + 3)
    assert net.status("validator-1")["protocol_version"] == 2
    # the same old software stops again at once
    net.start("validator-3", LIMITED)
    assert net.processes["validator-3"].wait(timeout=120) == 8
    # upgraded: it catches up across the upgrade height
    net.start("validator-3")
    net.wait_up("validator-3")
    wait_height(net, ["validator-3"], net.height("validator-0"), timeout=120)
    report = veche("verify", "--node", net.urls["validator-3"], "--json", timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr
    assert json.loads(report.stdout)["height"] > height
