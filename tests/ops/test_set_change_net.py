"""A dead validator replaced under load, on real node processes with real LevelDB (issue 14's scenario).

4 validators and an observer under a continuous stream of ballots. validator-3 is killed (-9) for
good; the committee adds validator-4 — a fresh home with a new key — and removes validator-3 with
``veche validators update``; voting goes on; then validator-0 is killed as well and the network still
commits (with validator-3 still in the set, two of four down would halt it). No acknowledged ballot
is lost or counted twice; a fresh observer syncs from genesis and ``veche verify`` passes across the
change; a receipt from before and one from after the change verify with only genesis.json. Ballots sent
to the new machine before its key is in the set are forwarded to the validators and commit. Before
all that, the refused changes (too few committee signatures, too much power, a duplicate key) change
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.crypto import SigningKey, read_key_file
from chain.tx import ValidatorEntry, ValidatorsUpdate, sign_tx
from tests.node.netkit import LocalNet, get_json, wait_for
from tests.node.votes import demo_plan, make_batch
from tests.ops.lifecycle import BallotStream, add_home, committed_ballots, receipt_file, veche, wait_height

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    network = LocalNet(tmp_path_factory.mktemp("set-change") / "net", validators=4, observers=1)
    try:
        network.start_all()
        yield network
    finally:
        network.close()


def update_file(directory: Path, name: str, document: dict[str, object]) -> str:
    path = directory / name
    path.write_text(json.dumps(document))
    return str(path)


def test_refused_changes_change_nothing(net: LocalNet, tmp_path: Path) -> None:
    node = net.urls["validator-1"]
    committee = str(net.directory / "keys" / "committee-0.json")
    before = get_json(f"{node}/api/v1/validators")
    stranger = SigningKey.generate().public_key.hex()
    entry = {"name": "validator-9", "operator": "committee", "public_key": stranger, "url": "http://127.0.0.1:1"}
    cases: dict[str, dict[str, object]] = {
        "too_much_power": {"reason": "swap half", "remove": ["validator-2", "validator-3"],
                           "add": [entry, {**entry, "name": "validator-8", "url": "http://127.0.0.1:2",
                                           "public_key": SigningKey.generate().public_key.hex()}]},
        "duplicate_key": {"reason": "reuse", "add": [{**entry, "public_key": before["validators"][1]["public_key"]}]},
        "too_few_validators": {"reason": "shrink", "remove": ["validator-3"]},
        "unknown_validator": {"reason": "typo", "remove": ["validator-33"]},
    }
    for code, document in cases.items():
        result = veche("validators", "update", update_file(tmp_path, f"{code}.json", document), "--key", committee,
                       "--node", node)
        assert result.returncode == 1, (code, result.stdout, result.stderr)
        assert f"rejected: {code}:" in result.stderr, (code, result.stderr)
    # signed by a key that is not the committee's (fewer than k committee signatures): the CLI refuses
    # locally, and the chain refuses it too when it arrives anyway
    outsider = tmp_path / "outsider.json"
    assert veche("keys", "generate", "--out", str(outsider)).returncode == 0
    result = veche("validators", "update", update_file(tmp_path, "ok.json", cases["too_few_validators"]),
                   "--key", str(outsider), "--node", node)
    assert result.returncode == 2 and "is not a committee key" in result.stderr
    forged = sign_tx("validators.update", net.layout.chain_id, ValidatorsUpdate("forged", (
        ValidatorEntry("validator-9", "committee", bytes.fromhex(stranger), "http://127.0.0.1:1"),), ()),
        [read_key_file(outsider)])
    answer = net.submit("validator-1", [forged.raw])
    assert answer["accepted"] == [] and answer["rejected"][0]["code"] == "permission_denied", answer
    after = get_json(f"{node}/api/v1/validators")
    assert after["validators"] == before["validators"] and after["next_change"] is None
    assert get_json(f"{node}/api/v1/validators/changes")["changes"] == []


def test_a_dead_validator_is_replaced_and_the_network_survives_another_loss(net: LocalNet, tmp_path: Path) -> None:
    plan = demo_plan(net.directory)
    stream = BallotStream(net, plan, ["validator-1", "validator-2", "observer-0", "validator-0"]).start()
    try:
        wait_for(lambda: len(stream.acknowledged) >= 200, 90, "ballots before the change")
        early = stream.acknowledged[5]
        net.kill("validator-3")                               # its server is gone for good
        key = add_home(net, "validator-4")
        assert key is not None
        net.start("validator-4")
        net.wait_up("validator-4")
        # not in the set yet, its peers take no gossip from it: what a client sends it is forwarded
        wait_height(net, ["validator-4"], net.height("validator-1"))
        spare_batch = make_batch(plan, 5, seed=90_001)
        sent_to_spare = net.submit("validator-4", spare_batch)
        assert sent_to_spare["rejected"] == [] and len(sent_to_spare["accepted"]) == 6, sent_to_spare
        wait_for(lambda: all(net.tx_status("validator-1", h) == "committed" for h in sent_to_spare["accepted"]), 60,
                 "ballots sent to the spare before it is a validator")
        change = update_file(tmp_path, "replace.json", {
            "reason": "validator-3's server was lost; the committee's new machine replaces it",
            "add": [{"name": "validator-4", "operator": "committee", "public_key": key.public_key.hex(),
                     "url": net.urls["validator-4"]}],
            "remove": ["validator-3"]})
        result = veche("validators", "update", change, "--key", str(net.directory / "keys" / "committee-0.json"),
                       "--node", net.urls["validator-1"], "--node", net.urls["validator-2"])
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        committed_at = int(lines[1].split("height ")[1].split()[0])
        effective = int(lines[2].split("height ")[1])
        assert effective == committed_at + 2, result.stdout
        survivors = ["validator-0", "validator-1", "validator-2", "validator-4", "observer-0"]
        wait_height(net, survivors, effective + 3)
        roster = get_json(f"{net.urls['validator-1']}/api/v1/validators")
        assert [v["name"] for v in roster["validators"]] == ["validator-0", "validator-1", "validator-2", "validator-4"]
        assert net.status("validator-4")["validator_index"] == 3
        middle = len(stream.acknowledged)
        net.kill("validator-0")                               # a second loss: 3 of 4 remain in the new set
        top = net.height("validator-1")
        wait_height(net, ["validator-1", "validator-2", "validator-4"], top + 5, timeout=180)
        wait_for(lambda: len(stream.acknowledged) >= middle + 100, 120, "ballots after the second loss")
        # with validator-0 down every certificate needs validator-4 (index 3 of the new set): it signs
        for height in range(top + 3, top + 6):
            signers = {index for index, _ in get_json(f"{net.urls['validator-1']}/api/v1/blocks/{height}")
                       ["commit"]["signatures"]}
            assert signers == {1, 2, 3}, (height, signers)
    finally:
        stream.stop()
    acknowledged = stream.acknowledged
    late = acknowledged[-1]
    committed = stream.drain("validator-1", plan.campaign_id)
    assert len(committed) == len(set(committed)), "a ballot was committed twice"
    tally = get_json(f"{net.urls['validator-1']}/api/v1/campaigns/{plan.campaign_id}/tally")
    assert tally["total_ballots"] == len(committed)
    lost = set(acknowledged) - set(committed)
    assert not lost, f"{len(lost)} acknowledged ballots lost"

    # a fresh observer syncs from genesis across the change, and `veche verify` replays everything
    add_home(net, "observer-9", role="observer")
    net.start("observer-9")
    net.wait_up("observer-9")
    wait_height(net, ["observer-9"], net.height("validator-1"), timeout=180)
    report = veche("verify", "--node", net.urls["observer-9"], "--json", timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr
    verdict = json.loads(report.stdout)
    assert verdict["ok"] and verdict["height"] > effective and verdict["votes"] >= len(committed)

    # receipts from before and after the change, checked with only genesis.json (a light client)
    genesis = str(net.directory / "genesis.json")
    before_height = receipt_file(net, "observer-9", early, tmp_path / "early.json")
    after_height = receipt_file(net, "observer-9", late, tmp_path / "late.json")
    assert before_height < effective <= after_height
    for path in ("early.json", "late.json"):
        checked = veche("receipt", "verify", str(tmp_path / path), "--node", net.urls["observer-9"],
                        "--genesis", genesis)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "followed 1 set change(s)" in checked.stdout and "receipt valid" in checked.stdout
