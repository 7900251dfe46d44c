"""CLI: `veche status`, `veche tally` against a real in-process node; `testnet start` process runner;
node limits parsing."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli_network import NetworkRunner, format_tally, status_command, tally_command
from node.config import NodeLimits, parse_limits
from node.errors import ConfigError
from genesis.testnet import load_testnet
from tests.node.apphost import ThreadedNode, make_testnet
from tests.node.netkit import get_json, http_post
from tests.node.votes import demo_plan, encode_batch, make_batch


def test_status_and_tally_commands(tmp_path: Path) -> None:
    layout = make_testnet(tmp_path / "net")
    home = layout.nodes[0].home
    url = layout.nodes[0].api_url
    plan = demo_plan(layout.directory)
    with ThreadedNode(home) as running:
        status, body, _ = http_post(url + "/api/v1/txs", encode_batch(make_batch(plan, 6, seed=2)))
        assert status == 200
        last = json.loads(body)["accepted"][-1]
        deadline = time.monotonic() + 30
        while get_json(f"{url}/api/v1/txs/{last}")["status"] != "committed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        runner = CliRunner()
        as_json = runner.invoke(status_command, ["--node", url, "--json"])
        assert as_json.exit_code == 0, as_json.output
        document = json.loads(as_json.output)
        assert document["node"] == "validator-0" and document["height"] >= 1
        human = runner.invoke(status_command, ["--node", url])
        assert human.exit_code == 0 and "validator-0 (validator #0)" in human.output
        assert re.search(r"^height\s+\d+$", human.output, re.MULTILINE)
        assert re.search(r"^peers up\s+0$", human.output, re.MULTILINE)
        tally = runner.invoke(tally_command, ["--node", url, "--campaign", plan.campaign_id, "--json"])
        assert tally.exit_code == 0
        tally_document = json.loads(tally.output)
        assert tally_document["total_ballots"] == 6
        table = runner.invoke(tally_command, ["--node", url, "--campaign", plan.campaign_id])
        assert table.exit_code == 0 and f"campaign {plan.campaign_id}: open" in table.output
        voted = [d for d, v in tally_document["districts"].items() if sum(v["initiatives"].values())]
        assert all(f"\n{d}  (" in table.output for d in voted)
        missing = runner.invoke(tally_command, ["--node", url, "--campaign", "nope"])
        assert missing.exit_code != 0 and "unknown_campaign" in missing.output
        assert running.node is not None
    down = CliRunner().invoke(status_command, ["--node", "http://127.0.0.1:9"])
    assert down.exit_code != 0 and "status" in down.output


def test_format_tally_marks_winners_by_district() -> None:
    text = format_tally({
        "campaign": "c1", "status": "closed", "height": 9, "total_ballots": 5, "rule": "top-n", "scope": "district",
        "result_status": "final", "result_hash": "ab", "winners": ["n1"],
        "districts": {"north": {"initiatives": {"n1": 3, "n2": 1}, "winners": ["n1"]},
                      "south": {"initiatives": {"s1": 1}, "winners": []}},
    })
    lines = text.splitlines()
    assert lines[0].startswith("campaign c1: closed at height 9, 5 ballots")
    assert "north  (4 votes)" in lines and "south  (1 vote)" in lines
    assert any(line.strip().startswith("n1") and line.endswith("winner") for line in lines)
    assert not any(line.strip().startswith("n2") and "winner" in line for line in lines)
    assert lines[-1] == "winners: n1"
    one = format_tally({"campaign": "c2", "status": "open", "height": 3, "total_ballots": 1, "districts": {}})
    assert one.startswith("campaign c2: open at height 3, 1 ballot, ")


def test_testnet_runner_starts_reports_and_stops(tmp_path: Path) -> None:
    layout = make_testnet(tmp_path / "net", validators=1, observers=1)
    runner = NetworkRunner(load_testnet(layout.directory), with_gateway=False)
    assert [child.name for child in runner.children] == ["validator-0", "observer-0"]
    runner.start()
    try:
        assert runner.wait_ready(60) == []
        assert get_json(layout.nodes[1].api_url + "/api/v1/status")["role"] == "observer"
        victim = runner.children[1]
        assert victim.process is not None
        victim.process.kill()
        victim.process.wait()
        runner.report_exit(victim)
        assert victim.reported
    finally:
        runner.stop()
    assert all(child.process is not None and child.process.poll() is not None for child in runner.children)
    assert (layout.nodes[0].home / "node.log").read_text().count("stopping") == 1


def test_node_limits_valid_and_invalid() -> None:
    assert parse_limits({}) == NodeLimits()
    assert parse_limits({"client_tx_rate": 10, "verify_threads": 2}).verify_threads == 2
    for bad in ({"client_tx_rate": 0}, {"verify_threads": -1}, {"verify_threads": 65}, {"nope": 1},
                {"sync_poll_ms": "fast"}, {"client_tx_burst": True}):
        with pytest.raises(ConfigError):
            parse_limits(bad)
