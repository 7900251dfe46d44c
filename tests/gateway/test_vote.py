"""Steps 3-4: the ballot rules, second ballots, registration batching, and never claiming an uncommitted vote."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chain.tx import decode_tx
from tests.gateway.harness import PHONE, TX_HASH, World, gateway_world


def registrations(world: World) -> list[int]:
    """Number of voter keys in each voters.register tx on the chain, in order."""
    found = []
    ledger = world.chain.ledger
    for height in range(1, ledger.height + 1):
        block = ledger.block(height)
        assert block is not None
        for raw in block.txs:
            tx = decode_tx(raw)
            if tx.kind == "voters.register":
                found.append(len(tx.body.voter_keys))
    return found


def test_ballot_rules_give_clear_messages_and_change_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                status, page = await citizen.get("/c/no-such/d/north")
                assert status == 404 and "Такой кампании нет" in page
                status, page = await citizen.get("/c/ib-test/d/east")
                assert status == 404 and "нет такого района" in page
                status, page = await citizen.get("/c/bad%20id/d/north")
                assert status == 404
                status, page = await citizen.get("/c/ib-test/d/north")
                assert status == 200 and "Как проголосовать" in page and 'name="choice"' not in page
                assert 'action="/login"' in page and 'name="phone"' in page
                _, page = await citizen.get("/")
                assert "/c/ib-test/d/north" in page and "/c/elsewhere/" not in page
                await citizen.get("/login")
                status, page = await citizen.post("/c/ib-test/d/north/vote", {"choice": "n1"})
                assert status == 401 and "Сначала войдите" in page
                await citizen.login()
                await citizen.get("/c/ib-test/d/north")
                cases = [
                    ("/c/ib-test/d/north/vote", [], 400, "Выберите проект"),
                    ("/c/ib-test/d/north/vote", [("choice", "s1")], 400, "нет в бюллетене этого района"),
                    ("/c/ib-test/d/north/vote", [("choice", "zz")], 400, "нет в бюллетене этого района"),
                    ("/c/ib-test/d/north/vote", [("choice", "n1"), ("choice", "n2")], 400, "от 1 до 1"),
                    ("/c/ib-test/d/north/vote", [("choice", "")], 400, "нет в бюллетене"),
                    ("/c/ib-test/d/north/vote", [("choice", "k1")], 400, "нет в бюллетене"),
                    ("/c/ib-test/d/east/vote", [("choice", "n1")], 404, "нет такого района"),
                    ("/c/nope/d/north/vote", [("choice", "n1")], 404, "Такой кампании нет"),
                    ("/c/kids-test/d/north/vote", [("choice", "k1"), ("choice", "k2"), ("choice", "k1")], 400,
                     "от 1 до 2"),
                    ("/c/later/d/north/vote", [("choice", "l1")], 409, "не идёт"),
                    ("/c/elsewhere/d/north/vote", [("choice", "e1")], 409, "через другой сайт"),
                    ("/c/ib-test/d/north/vote", [("choice", "n1"), ("bogus", "1")], 400, "unexpected field"),
                ]
                for path, fields, expected, text in cases:
                    await citizen.get("/c/ib-test/d/north")       # a fresh form each time: tokens are single-use
                    status, page = await citizen.post(path, [("csrf_token", citizen.csrf)] + fields, csrf=False)
                    assert status == expected and text in page, (path, fields, status)
                assert world.chain.ledger.state.campaigns["ib-test"].registered == 0
                assert world.gateway.store.get(b"V/") is None and not list(world.gateway.store.iterate(b"V/"))
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_second_ballot_is_refused_other_district_uses_the_same_key(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                status, page = await citizen.vote("ib-test", "north", ["n1"])
                assert status == 200
                first = TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                status, page = await citizen.get("/c/ib-test/d/north")
                assert "Вы уже проголосовали в этом районе" in page and first in page
                # a second ballot (another choice, or the same form sent again) lands on the first one's
                # receipt, with a note: never an error page
                status, page = await citizen.post("/c/ib-test/d/north/vote", [("csrf_token", citizen.csrf),
                                                                              ("choice", "n2")], csrf=False)
                assert status == 200 and "Повторный бюллетень не принимается" in page
                assert TX_HASH.search(page).group(1) == first  # type: ignore[union-attr]
                # logging in again does not help
                await citizen.post("/logout", {})
                world.clock.advance(61)
                await citizen.login()
                status, page = await citizen.post("/c/ib-test/d/north/vote", [("csrf_token", citizen.csrf),
                                                                              ("choice", "n3")], csrf=False)
                assert status == 200 and TX_HASH.search(page).group(1) == first  # type: ignore[union-attr]
                # ballots are per district in this campaign: the south ballot counts, with the same key
                status, page = await citizen.vote("ib-test", "south", ["s2"])
                assert status == 200, page
                campaign = world.chain.ledger.state.campaigns["ib-test"]
                assert (campaign.registered, campaign.total_ballots) == (1, 2)
                # one ballot per campaign in the children's track
                status, page = await citizen.vote("kids-test", "north", ["k1", "k2"])
                assert status == 200
                kids = TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                status, page = await citizen.post("/c/kids-test/d/south/vote", [("csrf_token", citizen.csrf),
                                                                                ("choice", "k3")], csrf=False)
                assert status == 200 and TX_HASH.search(page).group(1) == kids  # type: ignore[union-attr]
                assert world.chain.ledger.state.votes("kids-test", "k3") == 0
                _, page = await citizen.get("/transparency")
                assert "повторный бюллетень" in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_concurrent_first_ballots_share_one_registration(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"registration_batch_ms": 150}) as world:
            citizens = [world.client(f"10.20.{i}.1") for i in range(12)]
            try:
                for i, citizen in enumerate(citizens):
                    await citizen.login(f"+7900000{i:04d}")
                    await citizen.get("/c/ib-test/d/north")
                results = await asyncio.gather(*(
                    c.post("/c/ib-test/d/north/vote", [("csrf_token", c.csrf), ("choice", "n3")], csrf=False)
                    for c in citizens))
                assert all(status == 200 for status, _ in results)
                assert registrations(world) == [12]
                assert world.chain.ledger.state.votes("ib-test", "n3") == 12
            finally:
                for citizen in citizens:
                    await citizen.close()

    asyncio.run(scenario())


def test_double_submit_of_one_ballot_makes_one_vote(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                await citizen.get("/c/ib-test/d/north")
                form = [("csrf_token", citizen.csrf), ("choice", "n1")]
                results = await asyncio.gather(*(citizen.post("/c/ib-test/d/north/vote", form, csrf=False)
                                                 for _ in range(3)))
                assert [status for status, _ in results] == [200, 200, 200]     # each lands on the receipt
                assert len({TX_HASH.search(page).group(1) for _, page in results}) == 1  # type: ignore[union-attr]
                assert world.chain.ledger.state.votes("ib-test", "n1") == 1
                assert registrations(world) == [1]
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_uncommitted_ballot_shows_pending_then_the_receipt(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"commit_wait_seconds": 0.3}) as world:
            citizen = world.client()
            try:
                await citizen.login()
                world.chain.hold = True
                status, page = await citizen.vote("ib-test", "north", ["n2"])
                assert status == 200 and "ждём подтверждения" in page and "Ваш голос учтён" not in page
                tx_hash = TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                status, page = await citizen.get(f"/receipt/{tx_hash}")
                assert "Ваш голос учтён" not in page and "Проверить ещё раз" in page
                async with citizen.session.get(f"{world.url}/receipt/{tx_hash}.json") as response:
                    assert response.status == 404
                world.chain.release()
                for _ in range(50):                       # the citizen presses "check again"
                    status, page = await citizen.get(f"/receipt/{tx_hash}")
                    if "Ваш голос учтён" in page:
                        break
                    await asyncio.sleep(0.1)
                assert status == 200 and "Ваш голос учтён" in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_registration_cap_rejection_is_shown_and_frees_the_slot(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, cap=1) as world:
            first, second = world.client("10.1.1.1"), world.client("10.2.2.2")
            try:
                await first.login("+79000000001")
                assert (await first.vote("ib-test", "north", ["n1"]))[0] == 200
                await second.login("+79000000002")
                status, page = await second.vote("ib-test", "north", ["n1"])
                assert status == 200 and "Бюллетень не принят" in page and "исчерпан лимит регистраций" in page, page[page.find("<main"):]
                assert "можете проголосовать ещё раз" in page
                status, page = await second.get("/c/ib-test/d/north")
                assert 'name="choice"' in page           # the rejected ballot does not stand
                assert world.chain.ledger.state.campaigns["ib-test"].total_ballots == 1

            finally:
                await first.close()
                await second.close()

    asyncio.run(scenario())


def test_the_same_ballot_cast_again_after_a_rejection_stands(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                world.chain.refuse_code = "outside_window"
                status, page = await citizen.vote("ib-test", "north", ["n2"])
                assert status == 200 and "Бюллетень не принят" in page
                first = TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                world.chain.refuse_code = None
                status, page = await citizen.vote("ib-test", "north", ["n2"])
                assert status == 200 and TX_HASH.search(page).group(1) == first   # deterministic: same tx
                _, page = await citizen.get("/c/ib-test/d/north")
                assert "Вы уже проголосовали в этом районе" in page and 'name="choice"' not in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_check_my_vote_form_and_bad_hashes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                _, page = await citizen.vote("ib-test", "south", ["s1"])
                tx_hash = TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                await citizen.get("/check")
                status, page = await citizen.post("/check", {"tx": tx_hash.upper()})
                assert status == 200 and "Ремонт библиотеки" in page and tx_hash in page
                status, page = await citizen.post("/check", {"tx": "0" * 64})
                assert status == 404 and "не известен" in page
                status, page = await citizen.post("/check", {"tx": "xyz"})
                assert status == 400 and "64 шестнадцатеричных" in page
                status, page = await citizen.get("/receipt/" + "g" * 64)
                assert status == 400
                async with citizen.session.get(world.url + "/receipt/" + "0" * 64 + ".json") as response:
                    assert response.status == 404
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_ballot_rate_limit_per_ip(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"limits": {"ballot_per_ip": {"count": 1, "seconds": 3600}}}) as world:
            citizen = world.client()
            try:
                await citizen.login(PHONE)
                assert (await citizen.vote("ib-test", "north", ["n1"]))[0] == 200
                status, page = await citizen.vote("ib-test", "south", ["s1"])
                assert status == 429 and "Retry-After" in citizen.last_headers
            finally:
                await citizen.close()

    asyncio.run(scenario())
