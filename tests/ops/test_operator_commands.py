"""``veche campaign|initiative|progress`` against the in-process fake network."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner, Result

from chain.crypto import SigningKey, write_key_file
from chain.records import INITIATIVE_APPROVED, INITIATIVE_REJECTED, STATUS_CLOSED
from chain.records import progress_prefix
from node.cli_ops import campaign_group, initiative_group, progress_group
from tests.transparency.fakenode import ThreadedTestnet


@click.group()
def cli() -> None:
    pass


cli.add_command(campaign_group)
cli.add_command(initiative_group)
cli.add_command(progress_group)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def node_url(testnet: ThreadedTestnet, index: int = 0) -> str:
    return f"http://127.0.0.1:{testnet.testnet.nodes[index].port}"


def committee_key(testnet: ThreadedTestnet) -> str:
    return str(testnet.directory / "keys" / "committee-0.json")


def campaign_json(campaign_id: str, *, voting_in_ms: int = 3_000) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "campaign_id": campaign_id, "title": "Parks 2027", "track": "adult",
        "districts": [{"district_id": "north", "name": "North", "budget": 500_000_00}],
        "ballot": {"type": "choose-1"}, "rule": {"name": "greedy", "scope": "district"},
        "submission_start": now - 60_000, "submission_end": now + voting_in_ms,
        "voting_start": now + voting_in_ms, "voting_end": now + 3_600_000, "gateway": "gateway",
    }


def write_json(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_full_operator_flow(fake_testnet: ThreadedTestnet, tmp_path: Path) -> None:
    url, key = node_url(fake_testnet), committee_key(fake_testnet)
    ledger = fake_testnet.network.ledger
    result = invoke("campaign", "create", write_json(tmp_path / "c.json", campaign_json("parks")),
                    "--key", key, "--node", url)
    assert result.exit_code == 0, result.output + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("tx ") and len(lines[0]) == 3 + 64
    assert lines[1].startswith("committed at height ")
    assert "parks" in ledger.state.campaigns

    for initiative_id in ("swings", "benches"):
        document = {"campaign_id": "parks", "initiative_id": initiative_id, "district_id": "north",
                    "title": f"New {initiative_id}", "category": "parks", "cost": 100_000_00}
        result = invoke("initiative", "submit", write_json(tmp_path / f"{initiative_id}.json", document),
                        "--key", key, "--node", url)
        assert result.exit_code == 0, result.stderr
    result = invoke("initiative", "review", "parks", "benches", "--reject", "duplicate of a city project",
                    "--key", key, "--node", url)
    assert result.exit_code == 0, result.stderr
    benches = ledger.state.initiatives[("parks", "benches")]
    assert benches.status == INITIATIVE_REJECTED and benches.review_reason == "duplicate of a city project"
    result = invoke("initiative", "review", "parks", "swings", "--approve", "--key", key, "--node", url)
    assert result.exit_code == 0, result.stderr
    assert ledger.state.initiatives[("parks", "swings")].status == INITIATIVE_APPROVED

    result = invoke("progress", "report", "parks", "swings", "--stage", "contract", "--percent", "10",
                    "--key", key, "--node", url)
    assert result.exit_code == 1
    assert "campaign_open" in result.stderr

    result = invoke("campaign", "close", "parks", "--reason", "budget frozen", "--key", key, "--node", url)
    assert result.exit_code == 0, result.stderr
    campaign = ledger.state.campaigns["parks"]
    assert campaign.status == STATUS_CLOSED and campaign.close_reason == "budget frozen"

    evidence = tmp_path / "contract.pdf"
    evidence.write_bytes(b"%PDF-1.4 signed contract")
    result = invoke("progress", "report", "parks", "swings", "--stage", "contract", "--percent", "10",
                    "--spent", "1500000", "--note", "contract signed", "--evidence", str(evidence),
                    "--key", key, "--node", url)
    assert result.exit_code == 0, result.stderr
    digest = hashlib.sha256(evidence.read_bytes()).hexdigest()
    assert f"evidence sha256 {digest}" in result.stdout
    stored = list(ledger.store.iterate(progress_prefix("parks", "swings")))
    assert len(stored) == 1
    from chain.records import Progress
    report = Progress.decode(stored[0][1]).report
    assert (report.stage, report.percent, report.spent, report.note, report.evidence_hash.hex()) == (
        "contract", 10, 1_500_000, "contract signed", digest)


def test_rerun_of_a_committed_command_reports_the_commit(fake_testnet: ThreadedTestnet, tmp_path: Path) -> None:
    url, key = node_url(fake_testnet), committee_key(fake_testnet)
    file = write_json(tmp_path / "c.json", campaign_json("again"))
    first = invoke("campaign", "create", file, "--key", key, "--node", url)
    second = invoke("campaign", "create", file, "--key", key, "--node", url)
    assert first.exit_code == 0 and second.exit_code == 0, second.stderr
    assert first.stdout == second.stdout


def test_fails_over_to_the_next_node(fake_testnet: ThreadedTestnet, tmp_path: Path) -> None:
    fake_testnet.run(lambda: fake_testnet.testnet.stop_node("validator-0"))
    result = invoke("campaign", "create", write_json(tmp_path / "c.json", campaign_json("failover")),
                    "--key", committee_key(fake_testnet), "--node", node_url(fake_testnet, 0),
                    "--node", node_url(fake_testnet, 2))
    assert result.exit_code == 0, result.stderr
    assert "failover" in fake_testnet.network.ledger.state.campaigns


def test_unreachable_node_exits_3(fake_testnet: ThreadedTestnet, tmp_path: Path) -> None:
    fake_testnet.run(lambda: fake_testnet.testnet.stop_node("validator-0"))
    result = invoke("campaign", "close", "x", "--reason", "r", "--key", committee_key(fake_testnet),
                    "--node", node_url(fake_testnet, 0))
    assert result.exit_code == 3, result.stderr
    assert "node unreachable" in result.stderr and node_url(fake_testnet, 0) in result.stderr


def test_bad_inputs_exit_2_with_a_clear_message(fake_testnet: ThreadedTestnet, tmp_path: Path) -> None:
    url, key = node_url(fake_testnet), committee_key(fake_testnet)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    result = invoke("campaign", "create", str(broken), "--key", key, "--node", url)
    assert result.exit_code == 2 and "not valid JSON" in result.stderr

    result = invoke("campaign", "create", str(tmp_path / "missing.json"), "--key", key, "--node", url)
    assert result.exit_code == 2 and "does not exist" in result.stderr

    bad_campaign = campaign_json("bad")
    bad_campaign["gateway"] = "nobody"
    result = invoke("campaign", "create", write_json(tmp_path / "bad.json", bad_campaign), "--key", key,
                    "--node", url)
    assert result.exit_code == 2 and "gateway name from the genesis file" in result.stderr

    result = invoke("campaign", "close", "x", "--reason", "r", "--key", str(tmp_path / "nokey.json"),
                    "--node", url)
    assert result.exit_code == 2 and "does not exist" in result.stderr

    stranger = tmp_path / "stranger.json"
    write_key_file(stranger, SigningKey.generate())
    result = invoke("campaign", "close", "x", "--reason", "r", "--key", str(stranger), "--node", url)
    assert result.exit_code == 2 and "not a committee key" in result.stderr

    result = invoke("initiative", "review", "c", "i", "--approve", "--reject", "no", "--key", key, "--node", url)
    assert result.exit_code == 2 and "exactly one of --approve or --reject" in result.stderr

    result = invoke("initiative", "review", "c", "i", "--reject", "  ", "--key", key, "--node", url)
    assert result.exit_code == 2 and "public reason" in result.stderr

    result = invoke("campaign", "close", "x", "--reason", "r", "--key", key, "--node", "ftp://example")
    assert result.exit_code == 2 and "http:// or https://" in result.stderr


def test_rejection_exits_1_with_the_nodes_code(fake_testnet: ThreadedTestnet, tmp_path: Path) -> None:
    url, key = node_url(fake_testnet), committee_key(fake_testnet)
    document = {"campaign_id": "nowhere", "initiative_id": "i1", "district_id": "north", "title": "t",
                "category": "c", "cost": 5}
    result = invoke("initiative", "submit", write_json(tmp_path / "i.json", document), "--key", key, "--node", url)
    assert result.exit_code == 1
    assert "rejected: unknown_campaign: campaign 'nowhere' does not exist" in result.stderr
