"""Voter-held keys end to end with real processes: ``veche ballot cast`` logs in by SMS code, gets a
blind token, sends its ballot straight to a node; the receipt verifies; the four token attacks are
refused with typed errors and change nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chain import codec
from chain.crypto import SigningKey
from chain.tx import decode_tx, make_vote
from genesis.demo import ADULT_CAMPAIGN_ID, CHILDREN_CAMPAIGN_ID
from node.voter.device import Device, DeviceError, receipt_from_proof
from tests.certkey import test_certification_key
from tests.gateway.realnet import ROOT, RealNet, get_json
from tests.gateway.test_browser_ballots import DISTRICT, open_campaigns

pytestmark = pytest.mark.slow
HEX64 = set("0123456789abcdef")


def veche(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=str(ROOT), env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def first_district(net: RealNet, campaign_id: str) -> tuple[str, str]:
    campaign = get_json(f"{net.node_urls[0]}/api/v1/campaigns/{campaign_id}")
    initiative = campaign["initiatives"][0]
    return initiative["district_id"], initiative["initiative_id"]


def mode_counts(net: RealNet, campaign_id: str) -> dict[str, int]:
    return dict(get_json(f"{net.node_urls[1]}/api/v1/campaigns/{campaign_id}/tally")["ballots_by_mode"])


def test_veche_ballot_cast_votes_with_a_key_the_gateway_never_sees(realnet: RealNet, tmp_path: Path) -> None:
    district, choice = first_district(realnet, ADULT_CAMPAIGN_ID)
    before = mode_counts(realnet, ADULT_CAMPAIGN_ID)
    result = veche("ballot", "cast", "--gateway", realnet.gateway_url, "--phone", "+79001112233",
                   "--sms-outbox", str(realnet.gateway_home / "sms-outbox.jsonl"), "--campaign", ADULT_CAMPAIGN_ID,
                   "--district", district, "--choice", choice, "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert set(printed) == {"tx_hash", "voter_public_key", "mode", "height"} and printed["mode"] == "voter-held"
    assert len(printed["tx_hash"]) == 64 and set(printed["tx_hash"]) <= HEX64
    assert len(printed["voter_public_key"]) == 64 and set(printed["voter_public_key"]) <= HEX64
    assert isinstance(printed["height"], int) and printed["height"] >= 1
    after = mode_counts(realnet, ADULT_CAMPAIGN_ID)
    assert after["voter-held"] == before["voter-held"] + 1 and after["gateway-held"] == before["gateway-held"]
    found = get_json(f"{realnet.node_urls[2]}/api/v1/txs/{printed['tx_hash']}")
    assert found["status"] == "committed" and found["height"] == printed["height"]
    ballots = get_json(f"{realnet.node_urls[0]}/api/v1/campaigns/{ADULT_CAMPAIGN_ID}/ballots?limit=2000")["ballots"]
    mine = [b for b in ballots if b["tx_hash"] == printed["tx_hash"]]
    assert mine and mine[0]["mode"] == "voter-held" and mine[0]["voter_key"] == printed["voter_public_key"]
    # the receipt the device keeps verifies with only the genesis file, like a gateway-held one
    status = get_json(f"{realnet.node_urls[0]}/api/v1/status")
    tx = decode_tx(bytes.fromhex(found["proof"]["tx"]))
    assert tx.body.token and tx.body.mode == "voter-held"
    receipt = receipt_from_proof(status["chain_id"], status["genesis_hash"], tx, found)
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    checked = veche("receipt", "verify", str(path), "--node", realnet.node_urls[3])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # nothing of the voter's key is in the gateway's files
    key = bytes.fromhex(printed["voter_public_key"])
    for file in realnet.gateway_home.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert key not in data and printed["voter_public_key"].encode() not in data, file


def test_the_four_token_attacks_are_refused_and_change_nothing(realnet: RealNet) -> None:
    district, choice = first_district(realnet, ADULT_CAMPAIGN_ID)
    kids_district, kids_choice = first_district(realnet, CHILDREN_CAMPAIGN_ID)
    outbox = realnet.gateway_home / "sms-outbox.jsonl"

    async def main() -> None:
        async with Device(realnet.gateway_url) as device:
            await device.login("+79001112244", outbox)
            data = await device.ballot_data(ADULT_CAMPAIGN_ID, district)
            voter = SigningKey.generate()
            token = await device.certify(data, voter)
            first = make_vote(data["chain"], voter, ADULT_CAMPAIGN_ID, district, [choice], token=token)
            await device.send(data, first)
            # a second key for the same phone: the gateway refuses a second blind signature
            with pytest.raises(DeviceError) as caught:
                await device.certify(data, SigningKey.generate())
            assert caught.value.code == "second_token"
            kids = await device.ballot_data(CHILDREN_CAMPAIGN_ID, kids_district)
            kids_token = await device.certify(kids, voter)          # one token per campaign is fine
        before = (mode_counts(realnet, ADULT_CAMPAIGN_ID),
                  get_json(f"{realnet.node_urls[0]}/api/v1/campaigns/{ADULT_CAMPAIGN_ID}")["tokens_issued"])
        others = [c for c in get_json(f"{realnet.node_urls[0]}/api/v1/campaigns/{ADULT_CAMPAIGN_ID}")["initiatives"]
                  if c["district_id"] == district and c["initiative_id"] != choice]
        attacks = {
            "token_used": make_vote(data["chain"], voter, ADULT_CAMPAIGN_ID, district, [others[0]["initiative_id"]],
                                    token=token),
            "token_wrong_campaign": make_vote(data["chain"], voter, ADULT_CAMPAIGN_ID, district, [choice],
                                              token=kids_token, token_campaign_id=CHILDREN_CAMPAIGN_ID),
            "bad_token": make_vote(data["chain"], SigningKey.generate(), ADULT_CAMPAIGN_ID, district, [choice],
                                   token=bytes([token[0] ^ 1]) + token[1:]),
        }
        for code, tx in attacks.items():
            answer = await post(realnet.node_urls[1], tx.raw)
            assert answer["accepted"] == [] and answer["rejected"][0]["code"] == code, (code, answer)
        after = (mode_counts(realnet, ADULT_CAMPAIGN_ID),
                 get_json(f"{realnet.node_urls[0]}/api/v1/campaigns/{ADULT_CAMPAIGN_ID}")["tokens_issued"])
        assert after == before
        assert kids_choice

    asyncio.run(main())


async def post(node: str, raw: bytes) -> Any:
    async with aiohttp.ClientSession() as http:
        async with http.post(node + "/api/v1/txs", data=codec.encode([raw]),
                             headers={"Content-Type": "application/octet-stream"}) as response:
            return await response.json()


CLI_BALLOTS = {   # voter-held campaigns of the scored types (issue 19) for veche ballot cast
    "cli-cumul": {"type": "cumulative", "max_choices": 3, "min_sum_points": 1, "max_sum_points": 10, "max_points": 6},
    "cli-rank": {"type": "ordinal", "min_choices": 2, "rank_points": [3, 2, 1]},
}


def test_veche_ballot_cast_gives_points_and_ranks_and_checks_them_before_a_token(realnet: RealNet) -> None:
    """``--choice ID:POINTS`` for a cumulative ballot, ``--choice`` in rank order for an ordinal one; a
    ballot over its campaign's limits is refused with the chain's code before any token is asked (the
    gateway counts none). One phone per cast: the gateway sends a phone one SMS code a minute."""
    open_campaigns(realnet, CLI_BALLOTS, test_certification_key().modulus)
    outbox = str(realnet.gateway_home / "sms-outbox.jsonl")

    def cast(campaign_id: str, *choices: str, phone: str) -> subprocess.CompletedProcess[str]:
        arguments = [item for choice in choices for item in ("--choice", choice)]
        return veche("ballot", "cast", "--gateway", realnet.gateway_url, "--phone", phone, "--sms-outbox",
                     outbox, "--campaign", campaign_id, "--district", DISTRICT, *arguments, "--json")

    def tokens_issued(campaign_id: str) -> int:
        return int(get_json(f"{realnet.node_urls[0]}/api/v1/campaigns/{campaign_id}")["tokens_issued"])

    over = cast("cli-cumul", "cli-cumul-a:6", "cli-cumul-b:5", phone="+79001112251")
    assert over.returncode == 1 and "points_total" in over.stderr, over.stderr
    mixed = cast("cli-cumul", "cli-cumul-a:6", "cli-cumul-b", phone="+79001112251")
    assert mixed.returncode == 2 and "ID:POINTS" in mixed.stderr, mixed.stderr
    assert tokens_issued("cli-cumul") == 0
    for campaign_id, choices, body, phone in (
            ("cli-cumul", ("cli-cumul-a:4", "cli-cumul-b:6"), (("cli-cumul-b", "cli-cumul-a"), (6, 4)), "+79001112252"),
            ("cli-rank", ("cli-rank-c", "cli-rank-a"), (("cli-rank-c", "cli-rank-a"), (3, 2)), "+79001112253")):
        result = cast(campaign_id, *choices, phone=phone)
        assert result.returncode == 0, result.stderr
        printed = json.loads(result.stdout)
        found = get_json(f"{realnet.node_urls[1]}/api/v1/txs/{printed['tx_hash']}")
        tx = decode_tx(bytes.fromhex(found["proof"]["tx"]))
        assert (tx.body.choices, tx.body.points) == body and tx.body.mode == printed["mode"] == "voter-held"
        assert tx.signers[0].hex() == printed["voter_public_key"] and tokens_issued(campaign_id) == 1
    # the ranking needs no ID:POINTS, but a wrong rank's points are the chain's rank_points refusal
    wrong = cast("cli-rank", "cli-rank-a:3", "cli-rank-b:3", phone="+79001112254")
    assert wrong.returncode == 1 and "rank_points" in wrong.stderr, wrong.stderr
