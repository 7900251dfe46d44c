"""k of n from separate machines, and the gateway contractor changing mid-campaign (real processes).

A 2-of-3 committee whose members each keep their key in their own home: one prepares a signing
request, each member signs it with ``veche sign`` in a process of its own (never two keys in one
process), ``veche submit`` says who is missing until two signed, then sends it. The transaction is a
``keys.rotate`` of the gateway key in the middle of an open campaign: ballots registered with the
old key before and with the new key after both count, the registration cap and counts carry on, the
old key gets ``revoked_key``, and a gateway process started with the new key serves the campaign.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.crypto import SigningKey, write_key_file
from genesis.model import parse_genesis, render_genesis
from tests.node.netkit import ROOT, LocalNet, free_base_port, get_json, http_get, wait_for
from tests.node.votes import BallotPlan, demo_plan, make_batch
from tests.ops.lifecycle import veche, wait_height

pytestmark = pytest.mark.slow

MEMBERS = ("alice", "boris", "vera")


def use_committee(net: LocalNet, members: dict[str, SigningKey], threshold: int) -> None:
    """Rewrite every copy of genesis.json (before the first start) with this committee."""
    path = net.directory / "genesis.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["committee"] = {"threshold": threshold, "keys": [{"name": name, "public_key": key.public_key.hex()}
                                                              for name, key in members.items()]}
    text = render_genesis(document)
    parse_genesis(document)
    for copy in [path] + [home / "genesis.json" for home in net.homes.values()] + \
            [net.layout.gateway.home / "genesis.json"]:
        copy.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def committee_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalNet, dict[str, Path]]]:
    root = tmp_path_factory.mktemp("committee")
    network = LocalNet(root / "net", validators=1, observers=0)
    keys = {name: SigningKey.generate() for name in MEMBERS}
    homes = {}
    for name, key in keys.items():          # each member's own machine: a folder with only its key
        homes[name] = root / name
        homes[name].mkdir()
        write_key_file(homes[name] / "committee-key.json", key)
    use_committee(network, keys, threshold=2)
    try:
        network.start_all()
        yield network, homes
    finally:
        network.close()


def submit_ok(net: LocalNet, raws: list[bytes]) -> list[str]:
    answer = net.submit("validator-0", raws)
    assert answer["rejected"] == [], answer["rejected"]
    return list(answer["accepted"])


def wait_committed(net: LocalNet, hashes: list[str]) -> None:
    wait_for(lambda: all(net.tx_status("validator-0", h) == "committed" for h in hashes), 60, "commit")


def test_k_of_n_signing_and_a_gateway_key_rotated_mid_campaign(
        committee_net: tuple[LocalNet, dict[str, Path]], tmp_path: Path) -> None:
    net, homes = committee_net
    node = net.urls["validator-0"]
    plan = demo_plan(net.directory)
    before = submit_ok(net, make_batch(plan, 5, seed=1))
    wait_committed(net, before)

    # one key alone cannot act for the committee
    lonely = veche("keys", "rotate", "gateway", "gateway", "--new-public-key", "00" * 32,
                   "--key", str(homes["alice"] / "committee-key.json"), "--node", node)
    assert lonely.returncode == 2 and "needs exactly 2 committee keys" in lonely.stderr, lonely.stderr

    new_gateway = SigningKey.generate()
    request = tmp_path / "rotate-gateway.json"
    prepared = veche("keys", "rotate", "gateway", "gateway", "--new-public-key", new_gateway.public_key.hex(),
                     "--reason", "the new contractor from 1 March", "--prepare", str(request), "--node", node)
    assert prepared.returncode == 0, prepared.stderr
    assert "ROTATE the key of gateway gateway" in prepared.stdout and "signing hash" in prepared.stdout
    document = json.loads(request.read_text())
    assert document["format"] == "veche-signing-request/1" and document["signatures"] == []
    assert document["committee"]["threshold"] == 2 and document["kind"] == "keys.rotate"

    signed = veche("sign", str(request), "--key", str(homes["alice"] / "committee-key.json"), "--yes")
    assert signed.returncode == 0 and "1 of 2 signatures" in signed.stdout, signed.stdout + signed.stderr
    assert "revoked" in signed.stdout                               # the summary shown before signing
    early = veche("submit", str(request), "--node", node)
    assert early.returncode == 2 and "missing: 1 more of boris, vera" in early.stderr, early.stderr
    again = veche("sign", str(request), "--key", str(homes["alice"] / "committee-key.json"), "--yes")
    assert again.returncode == 2 and "already signed" in again.stderr
    tampered = json.loads(request.read_text())
    tampered["body"] = tampered["body"][:-2] + ("00" if tampered["body"][-2:] != "00" else "01")
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    refused = veche("sign", str(tmp_path / "tampered.json"), "--key", str(homes["boris"] / "committee-key.json"),
                    "--yes")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert veche("sign", str(request), "--key", str(homes["boris"] / "committee-key.json"), "--yes").returncode == 0
    sent = veche("submit", str(request), "--node", node)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    effective = int(sent.stdout.strip().splitlines()[-1].split("height ")[1])

    wait_height(net, ["validator-0"], effective)
    old_late = make_batch(plan, 3, seed=2)
    answer = net.submit("validator-0", old_late)
    assert answer["accepted"] == [] and answer["rejected"][0]["code"] == "revoked_key", answer
    assert "revoked at height" in answer["rejected"][0]["message"]
    new_plan = BallotPlan(plan.chain_id, plan.campaign_id, plan.districts, new_gateway.seed)
    after = submit_ok(net, make_batch(new_plan, 5, seed=3))
    wait_committed(net, after)
    campaign = get_json(f"{node}/api/v1/campaigns/{plan.campaign_id}")
    assert campaign["registered"] == 10 and campaign["total_ballots"] == 10
    assert campaign["gateway_key"] == new_gateway.public_key.hex() != campaign["campaign"]["gateway"]
    roster = get_json(f"{node}/api/v1/validators")
    assert roster["gateways"] == [{"name": "gateway", "public_key": new_gateway.public_key.hex()}]

    # the new contractor's gateway starts with its key (not in genesis.json) and serves the campaign
    home = tmp_path / "gateway-new"
    shutil.copytree(net.layout.gateway.home, home, ignore=shutil.ignore_patterns("data", "*.log", "*.jsonl"))
    (home / "gateway-key.json").unlink()
    write_key_file(home / "gateway-key.json", new_gateway)
    config = json.loads((home / "config.json").read_text())
    port = free_base_port(1)
    config.update(listen_port=port, url=f"http://127.0.0.1:{port}")
    (home / "config.json").write_text(json.dumps(config))
    log = open(home / "process.log", "wb")  # noqa: SIM115 - closed below
    gateway = subprocess.Popen([sys.executable, "-m", "node.cli", "gateway", "start", "--home", str(home)], cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/healthz", 1.0)[0] == 200 or gateway.poll() is not None,
                 60, "the new gateway")
        assert gateway.poll() is None, (home / "process.log").read_text()[-2000:]
        status, page = http_get(f"http://127.0.0.1:{port}/?lang=en")
        assert status == 200 and plan.campaign_id.encode() in page
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        log.close()
