"""Voter-held keys at the gateway: blind tokens (one per campaign and citizen, counted on the chain
before they are given), the exclusion of the two key modes, and the cookie-less relay."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chain import codec
from chain.blind import blind, finalize, token_message, verify_token
from chain.crypto import SigningKey
from chain.tx import make_vote
from gateway.app import destroy_closed_campaigns
from gateway.vault import token_prefix
from node.voter.device import Device, DeviceError
from tests.certkey import test_certification_key
from tests.gateway.fakenode import wait_for
from tests.gateway.harness import PHONE, Citizen, World, gateway_world

CERT = test_certification_key()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def ask_token(citizen: Citizen, campaign: str, blinded: bytes) -> tuple[int, dict[str, Any]]:
    await citizen.get(f"/c/{campaign}/d/north")
    async with citizen.session.post(f"{citizen.world.url}/c/{campaign}/token",
                                    data={"csrf_token": citizen.csrf, "blinded": blinded.hex()}) as response:
        return response.status, await response.json()


def device(world: World) -> Device:
    return Device(world.url, nodes=[node.url for node in world.nodes])


def test_a_device_gets_a_token_counted_on_the_chain_and_votes_with_its_own_key(tmp_path: Path) -> None:
    async def main() -> None:
        async with gateway_world(tmp_path, certified=True) as world:
            async with device(world) as phone:
                cast = await phone.cast(PHONE, world.config.outbox_path, "ib-test", "north", ["n1"])
            state = world.chain.ledger.state
            campaign = state.campaigns["ib-test"]
            assert (campaign.tokens_issued, campaign.voter_held_ballots, campaign.registered) == (1, 1, 0)
            assert cast.tx.body.token and state.votes("ib-test", "n1") == 1
            verify_token(CERT.modulus, world.genesis.chain_id, "ib-test", cast.voter_key.public_key, cast.tx.body.token)
            records = list(world.gateway.store.iterate(token_prefix("ib-test")))
            assert len(records) == 1
            dump = b"".join(k + v for k, v in world.gateway.store.iterate(b""))
            for secret in (cast.voter_key.public_key, cast.voter_key.seed, cast.tx.body.token, cast.tx.hash):
                assert secret not in dump and secret.hex().encode() not in dump
    run(main())


def test_one_token_per_citizen_and_a_retry_gets_the_same_answer(tmp_path: Path) -> None:
    async def main() -> None:
        async with gateway_world(tmp_path, certified=True) as world:
            citizen = world.client()
            await citizen.login()
            message = token_message(world.genesis.chain_id, "ib-test", SigningKey.generate().public_key)
            blinded = blind(CERT.modulus, message)
            status, answer = await ask_token(citizen, "ib-test", blinded.blinded_msg)
            assert status == 200
            token = finalize(CERT.modulus, message, bytes.fromhex(answer["blind_sig"]), blinded.inverse)
            assert len(token) == 384
            assert await ask_token(citizen, "ib-test", blinded.blinded_msg) == (200, answer)   # a retry
            status, refused = await ask_token(citizen, "ib-test", blind(CERT.modulus, message).blinded_msg)
            assert (status, refused["error"]["code"]) == (409, "second_token")
            again = world.client("10.9.9.9")          # the same phone from another browser
            world.clock.advance(61)                   # past the SMS resend cooldown
            await again.login()
            status, refused = await ask_token(again, "ib-test", blind(CERT.modulus, message).blinded_msg)
            assert (status, refused["error"]["code"]) == (409, "second_token")
            assert world.chain.ledger.state.campaigns["ib-test"].tokens_issued == 1
            other = world.client("10.7.7.7")          # another citizen
            await other.login("+79120000001")
            status, _ = await ask_token(other, "ib-test", blind(CERT.modulus, message).blinded_msg)
            assert status == 200 and world.chain.ledger.state.campaigns["ib-test"].tokens_issued == 2
            for each in (citizen, again, other):
                await each.close()
    run(main())


def test_a_citizen_holds_one_key_per_campaign_in_one_mode(tmp_path: Path) -> None:
    async def main() -> None:
        async with gateway_world(tmp_path, certified=True) as world:
            citizen = world.client()
            await citizen.login()
            status, _ = await citizen.vote("ib-test", "north", ["n1"])        # JavaScript off: gateway-held
            assert status == 200
            status, refused = await ask_token(citizen, "ib-test", blind(CERT.modulus, b"m").blinded_msg)
            assert (status, refused["error"]["code"]) == (409, "gateway_key_exists")
            second = world.client("10.4.4.4")
            await second.login("+79120000002")
            status, _ = await ask_token(second, "ib-test", blind(CERT.modulus, b"m").blinded_msg)
            assert status == 200
            status, text = await second.vote("ib-test", "south", ["s1"])     # the form after a token
            assert status == 409 and "уже заверен" in text
            assert world.chain.ledger.state.campaigns["ib-test"].registered == 1
            for each in (citizen, second):
                await each.close()
    run(main())


def test_token_requests_that_are_refused(tmp_path: Path) -> None:
    async def main() -> None:
        async with gateway_world(tmp_path, certified=True) as world:
            citizen = world.client()
            await citizen.get("/login")                 # a session and a form token, but no login
            blinded = blind(CERT.modulus, b"m").blinded_msg
            async with citizen.session.post(f"{world.url}/c/ib-test/token",
                                            data={"csrf_token": citizen.csrf, "blinded": blinded.hex()}) as response:
                assert response.status == 401 and (await response.json())["error"]["code"] == "not_logged_in"
            await citizen.login()
            async with citizen.session.post(f"{world.url}/c/ib-test/token",
                                            data={"csrf_token": "forged", "blinded": blinded.hex()}) as response:
                assert response.status == 403
            for bad in ("zz" * 384, blinded.hex()[:-2], "ff" * 384):
                await citizen.get("/c/ib-test/d/north")
                async with citizen.session.post(f"{world.url}/c/ib-test/token",
                                                data={"csrf_token": citizen.csrf, "blinded": bad}) as response:
                    assert response.status == 400, bad[:8]
                    assert (await response.json())["error"]["code"] == "bad_token_request"
            for campaign, code in (("to-close", "no_voter_held"), ("elsewhere", "other_gateway"),
                                   ("later", "not_voting"), ("nothing", "unknown_campaign")):
                status, answer = await ask_token(citizen, campaign, blinded)
                assert answer["error"]["code"] == code, campaign
            assert world.chain.ledger.state.campaigns["ib-test"].tokens_issued == 0
            await citizen.close()
    run(main())


def test_a_gateway_without_a_certification_key_offers_no_tokens(tmp_path: Path) -> None:
    async def main() -> None:
        async with gateway_world(tmp_path) as world:
            async with device(world) as phone:
                with pytest.raises(DeviceError) as caught:
                    await phone.cast(PHONE, world.config.outbox_path, "ib-test", "north", ["n1"])
            assert caught.value.code == "no_voter_held"
    run(main())


def test_token_records_go_when_the_campaign_closes(tmp_path: Path) -> None:
    async def main() -> None:
        async with gateway_world(tmp_path, certified=True) as world:
            async with device(world) as phone:
                await phone.cast(PHONE, world.config.outbox_path, "kids-test", "north", ["k1"])
            gw = world.gateway
            assert list(gw.store.iterate(token_prefix("kids-test")))
            world.close_campaign("kids-test")
            gw.chain.invalidate()
            assert await destroy_closed_campaigns(gw) == ["kids-test"]
            assert not list(gw.store.iterate(token_prefix("kids-test")))
    run(main())


def test_the_relay_takes_voter_held_ballots_without_cookies_and_sends_them_later(tmp_path: Path) -> None:
    relay = {"relay": {"enabled": True, "min_delay_seconds": 0.2, "max_delay_seconds": 0.6, "tick_seconds": 0.1}}

    async def main() -> None:
        async with gateway_world(tmp_path, certified=True, overrides=relay) as world:
            async with device(world) as phone:
                await phone.login(PHONE, world.config.outbox_path)
                data = await phone.ballot_data("ib-test", "north")
                assert data["relay"] == "/relay/v1/txs"
                voter = SigningKey.generate()
                token = await phone.certify(data, voter)
            ballot = make_vote(world.genesis.chain_id, voter, "ib-test", "north", ["n2"], token=token)
            citizen = world.client()
            await citizen.login("+79120000003")
            body = codec.encode([ballot.raw])
            octet = {"Content-Type": "application/octet-stream"}
            async with citizen.session.post(f"{world.url}/relay/v1/txs", data=body, headers=octet) as response:
                assert response.status == 400 and (await response.json())["error"]["code"] == "cookie_not_allowed"
            plain = make_vote(world.genesis.chain_id, SigningKey.generate(), "ib-test", "north", ["n2"])
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as bare:
                async with bare.post(f"{world.url}/relay/v1/txs", data=codec.encode([plain.raw]),
                                     headers=octet) as response:
                    assert response.status == 400
                    assert (await response.json())["error"]["code"] == "not_a_voter_held_ballot"
                async with bare.post(f"{world.url}/relay/v1/txs", data=body, headers=octet) as response:
                    assert response.status == 202
                    answer = await response.json()
                    assert answer["accepted"] == [ballot.hash.hex()] and answer["send_within_seconds"] <= 1
            assert world.chain.ledger.tx_location(ballot.hash) is None        # held, not sent yet
            await wait_for(lambda: world.chain.ledger.tx_location(ballot.hash) is not None, timeout=10)
            assert world.chain.ledger.state.campaigns["ib-test"].voter_held_ballots == 1
            dump = b"".join(k + v for k, v in world.gateway.store.iterate(b""))
            assert voter.public_key not in dump and ballot.hash not in dump
            await citizen.close()
    run(main())


def test_results_and_transparency_pages_show_ballots_per_key_mode(tmp_path: Path) -> None:
    async def main() -> None:
        async with gateway_world(tmp_path, certified=True) as world:
            async with device(world) as phone:
                await phone.cast(PHONE, world.config.outbox_path, "ib-test", "north", ["n1"])
            citizen = world.client()
            await citizen.login("+79120000005")
            assert (await citizen.vote("ib-test", "north", ["n2"]))[0] == 200
            world.gateway.chain.invalidate()
            _, html = await citizen.get("/results/ib-test")
            assert "С ключами сайта: 1; с личными ключами избирателей: 1" in html, html[-2500:]
            _, html = await citizen.get("/transparency?lang=en")
            table = html[html.index('id="key-modes"'):]
            row = table[table.index("Инициативы 2027"):].split("</tr>")[0]
            assert [int(n) for n in re.findall(r'<td class="n"[^>]*>(\d+)</td>', row)] == [1, 1, 1, 1]
            await citizen.close()
    run(main())
