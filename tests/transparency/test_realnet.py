"""The operator and transparency tools against a real network: 4 validators + 1 observer processes.

One network for the module (``tests/node/netkit.LocalNet``: ``python -m node --home`` per home).
It carries the pabulib imports of every file in /work/shared/data with all their ballots — the
Wrocław file (80,643 ballots) is the load test — and then ``veche verify`` replays it all.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from chain.block import BlockHeader, CommitCertificate
from chain import codec
from chain.receipt import build_receipt
from genesis.model import load_genesis
from node.cli_ops import campaign_group, initiative_group, progress_group
from node.cli_transparency import receipt_group, verify_command
from node.client import SyncNodeClient
from tests.node.netkit import LocalNet
from tests.transparency.test_pabulib import FILES, check_import_and_export
from tests.transparency.test_verify import flip_byte

pytestmark = pytest.mark.slow


@click.group()
def cli() -> None:
    pass


for group in (campaign_group, initiative_group, progress_group, receipt_group):
    cli.add_command(group)
cli.add_command(verify_command)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    for attempt in range(3):   # another test may grab one of the free ports between check and bind
        network = LocalNet(tmp_path_factory.mktemp("realnet") / "testnet", demo=False)
        try:
            network.start_all()
            break
        except AssertionError:
            network.close()
            if attempt == 2:
                raise
    try:
        yield network
    finally:
        network.close()


@pytest.fixture(scope="module")
def imports(net: LocalNet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every pabulib file imported with votes and closed (each checked against its file on the way)."""
    done: dict[str, dict[str, Any]] = {}
    observer = net.urls["observer-0"]
    for source in FILES:
        started = time.monotonic()
        cpu_before = {name: net.cpu_seconds(name) for name in net.names}
        summary = check_import_and_export(net.directory, observer, source, tmp_path_factory.mktemp(source.stem))
        votes = summary["votes_committed"]
        cpu = {name: net.cpu_seconds(name) - cpu_before[name] for name in net.names}
        print(f"\n{source.name} on 4 validators + 1 observer: {votes} ballots, import {summary['seconds']:.1f} s, "
              f"with export and pabutools recount {time.monotonic() - started:.1f} s; node CPU-us per ballot (import + export) "
              + ", ".join(f"{name} {seconds / votes * 1e6:.0f}" for name, seconds in cpu.items()))
        done[source.name] = summary
    return done


def test_pabulib_imports_reproduce_official_results(imports: dict[str, dict[str, Any]]) -> None:
    assert sorted(imports) == sorted(f.name for f in FILES)
    for summary in imports.values():
        assert summary["votes_committed"] == summary["votes_submitted"] > 0


def test_verify_replays_the_real_chain(net: LocalNet, imports: dict[str, dict[str, Any]]) -> None:
    result = invoke("verify", "--node", net.urls["observer-0"], "--node", net.urls["validator-1"], "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, (report, result.stderr)
    expected_votes = sum(s["votes_committed"] for s in imports.values())
    assert report["votes"] >= expected_votes
    for summary in imports.values():
        check = report["campaigns"][summary["campaign_id"]]
        assert check["status"] == "closed" and check["matches"] is True
    print(f"\nveche verify --node: {report['votes']} votes in {report['seconds']} s "
          f"({report['votes_per_second']:,.0f} votes/s) while the network runs")


def write_json(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_operator_commands_and_a_receipt(net: LocalNet, tmp_path: Path) -> None:
    url = net.urls["validator-0"]
    key = str(net.layout.committee_key_files[0])
    now = int(time.time() * 1000)
    campaign = {"campaign_id": "ops", "title": "Ops", "track": "adult",
                "districts": [{"district_id": "north", "name": "North", "budget": 1_000_000}],
                "ballot": {"type": "choose-1"}, "rule": {"name": "greedy", "scope": "district"},
                "submission_start": now - 60_000, "submission_end": now + 3_600_000,
                "voting_start": now + 3_600_000, "voting_end": now + 7_200_000, "gateway": "gateway"}
    result = invoke("campaign", "create", write_json(tmp_path / "c.json", campaign), "--key", key,
                    "--node", "http://127.0.0.1:1", "--node", url)
    assert result.exit_code == 0, result.stderr
    create_hash = result.stdout.split()[1]
    initiative = {"campaign_id": "ops", "initiative_id": "lights", "district_id": "north", "title": "Street lights",
                  "category": "safety", "cost": 400_000}
    assert invoke("initiative", "submit", write_json(tmp_path / "i.json", initiative), "--key", key,
                  "--node", url).exit_code == 0
    assert invoke("initiative", "review", "ops", "lights", "--approve", "--key", key, "--node", url).exit_code == 0
    early = invoke("progress", "report", "ops", "lights", "--stage", "works", "--percent", "5", "--key", key,
                   "--node", url)
    assert early.exit_code == 1 and "campaign_open" in early.stderr
    assert invoke("campaign", "close", "ops", "--reason", "test over", "--key", key, "--node", url).exit_code == 0
    done = invoke("progress", "report", "ops", "lights", "--stage", "done", "--percent", "100",
                  "--spent", "390000", "--key", key, "--node", url)
    assert done.exit_code == 0, done.stderr
    reports = SyncNodeClient(url).call(lambda c: c.initiative("ops", "lights"))["progress"]
    assert len(reports) == 1

    # a receipt for the campaign.create, from the node's proof, checked like a light client
    found = SyncNodeClient(url).tx(create_hash)
    proof = found["proof"]
    genesis = load_genesis(net.layout.genesis_file)
    receipt = build_receipt(genesis.params, bytes.fromhex(proof["tx"]), found["height"], found["index"],
                            proof["tree_size"], [bytes.fromhex(p) for p in proof["path"]],
                            BlockHeader.from_wire(codec.decode(bytes.fromhex(proof["header"]))),
                            CommitCertificate.decode(bytes.fromhex(proof["certificate"])))
    checked = invoke("receipt", "verify", write_json(tmp_path / "r.json", receipt), "--node", net.urls["observer-0"])
    assert checked.exit_code == 0, checked.stderr
    assert "receipt valid: campaign.create transaction" in checked.stdout
    receipt["index"] = (receipt["index"] + 1) % max(2, receipt["tree_size"])
    bad = invoke("receipt", "verify", write_json(tmp_path / "bad.json", receipt), "--node", url)
    assert bad.exit_code == 1 and "receipt INVALID" in bad.stderr


def test_verify_home_of_a_stopped_validator_and_of_a_damaged_copy(net: LocalNet, imports: dict[str, dict[str, Any]],
                                                                  tmp_path: Path) -> None:
    name = "validator-3"
    home = net.homes[name]
    locked = invoke("verify", "--home", str(home))
    assert locked.exit_code == 2 and "stop the node first" in locked.stderr
    net.stop(name)
    try:
        copy = tmp_path / "copy"
        shutil.copytree(home, copy)
    finally:
        net.start(name)
    result = invoke("verify", "--home", str(copy), "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report
    wroclaw = next(s for f, s in imports.items() if "Wroclaw" in f)
    assert report["campaigns"][wroclaw["campaign_id"]]["matches"] is True
    observer = SyncNodeClient(net.urls["observer-0"])
    busy = [h for h in range(1, report["height"] + 1) if observer.block(h)["txs"]]
    target = busy[len(busy) // 2]
    flip_byte(copy, target)
    damaged = invoke("verify", "--home", str(copy), "--json")
    assert damaged.exit_code == 1
    assert json.loads(damaged.stdout)["first_bad_height"] == target
