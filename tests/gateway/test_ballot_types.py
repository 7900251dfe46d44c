"""Knapsack, cumulative and ranked ballots in the gateway: the pages, the server-side checks that keep
what the citizen chose and send nothing, the ballots on the chain, receipts and results with points."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from chain.tx import decode_tx
from tests.gateway.harness import TX_HASH, Citizen, World, gateway_world, genesis_document

PAGE_LIMIT = 30 * 1024


def with_ballot_types(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The gateway test world plus one campaign per new ballot type (tests/gateway/harness.py)."""
    return gateway_world(tmp_path, document=lambda keys: genesis_document(keys, ballot_types=True))


def ballots_on_chain(world: World, campaign_id: str) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    ledger = world.chain.ledger
    found = []
    for height in range(1, ledger.height + 1):
        block = ledger.block(height)
        assert block is not None
        for raw in block.txs:
            tx = decode_tx(raw)
            if tx.kind == "vote.cast" and tx.body.campaign_id == campaign_id:
                found.append((tx.body.choices, tx.body.points))
    return found


async def post_ballot(citizen: Citizen, campaign_id: str, fields: list[tuple[str, str]]) -> tuple[int, str]:
    status, page = await citizen.get(f"/c/{campaign_id}/d/north")
    assert status == 200, page
    return await citizen.post(f"/c/{campaign_id}/d/north/vote", [("csrf_token", citizen.csrf)] + fields, csrf=False)


def nothing_sent(world: World, campaign_id: str) -> None:
    assert world.chain.ledger.state.campaigns[campaign_id].registered == 0
    assert ballots_on_chain(world, campaign_id) == []
    assert not world.gateway.pipeline.trackers


def test_the_ballot_pages_of_each_type(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with with_ballot_types(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                _, css = await citizen.get("/static/site.css")
                status, script = await citizen.get("/static/ballot.js")
                assert status == 200 and citizen.session is not None
                async with citizen.session.get(world.url + "/static/ballot.js") as response:
                    assert response.headers["Content-Type"].startswith("text/javascript")
                pages = {}
                for campaign_id in ("knap", "cumul", "rank"):
                    async with citizen.session.get(f"{world.url}/c/{campaign_id}/d/north") as response:
                        page = await response.text()
                        pages[campaign_id] = page
                        csp = response.headers["Content-Security-Policy"]
                        assert ("script-src 'self'" in csp) == (campaign_id != "rank")
                    size = len(page.encode()) + len(css.encode()) + (len(script.encode()) if campaign_id != "rank" else 0)
                    assert size <= PAGE_LIMIT, (campaign_id, size)
                knap, cumul, rank = pages["knap"], pages["cumul"], pages["rank"]
                assert "Отметьте от 1 до 3 проектов общей стоимостью не больше 2\u00a0000\u00a0000\u00a0₽." in knap
                assert 'data-cost="120000000"' in knap and 'id="ballot-total"' in knap
                assert "Выбрано на 0\u00a0₽ из 2\u00a0000\u00a0000\u00a0₽; осталось 2\u00a0000\u00a0000\u00a0₽." in knap
                assert '<script src="/static/ballot.js" defer></script>' in knap
                assert 'type="number"' in cumul and 'name="points-cumul-a"' in cumul and 'max="6"' in cumul
                assert "Баллов отдано: 0 из 10; осталось 10." in cumul
                assert [m for m in re.findall(r'<select id="(rank-\d)"', rank)] == ["rank-1", "rank-2", "rank-3"]
                assert "1-е место" in rank and "(3 балла)" in rank and "(1 балл)" in rank and "<script" not in rank
                _, english = await citizen.get("/c/knap/d/north?lang=en")
                assert "Chosen: 0\u00a0₽ of 2,000,000\u00a0₽; 2,000,000\u00a0₽ left." in english
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_a_knapsack_ballot_over_the_cap_comes_back_as_chosen_and_nothing_is_sent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with with_ballot_types(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                over = [("choice", "knap-a"), ("choice", "knap-b"), ("choice", "knap-c")]
                status, page = await post_ballot(citizen, "knap", over)
                assert status == 400
                assert "стоят 2\u00a0400\u00a0000\u00a0₽ — больше лимита 2\u00a0000\u00a0000\u00a0₽" in page
                assert "Голос не отправлен" in page and 'role="alert"' in page
                assert re.search(r'name="csrf_token" value="[^"]+"', page)   # the corrected ballot can be sent
                assert all(re.search(f'value="knap-{x}" data-cost="\\d+" checked', page) for x in "abc")
                assert not re.search('value="knap-d" data-cost="\\d+" checked', page)
                assert "на 400\u00a0000\u00a0₽ больше лимита" in page          # the total line, server-side
                nothing_sent(world, "knap")
                status, page = await post_ballot(citizen, "knap", [("choice", "knap-a"), ("choice", "knap-b")])
                assert status == 200 and TX_HASH.search(page), page
                assert ballots_on_chain(world, "knap") == [(("knap-a", "knap-b"), ())]
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_cumulative_points_are_checked_kept_and_cast(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with with_ballot_types(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                cases = [
                    ([("points-cumul-a", "6"), ("points-cumul-b", "5")], "Вы распределили баллов: 11; нужно от 1 до 10"),
                    ([("points-cumul-a", "7")], "можно дать не больше 6 баллов"),
                    ([("points-cumul-a", "два")], "целое число, 0 или больше"),
                    ([("points-cumul-a", "1"), ("points-cumul-b", "1"), ("points-cumul-c", "1"),
                      ("points-cumul-d", "1")], "Нужно выбрать от 1 до 3 проектов"),
                    ([("points-cumul-a", "0"), ("points-cumul-b", "")], "Выберите проект"),
                    ([("points-zz", "3")], "нет в бюллетене"),
                ]
                for fields, text in cases:
                    status, page = await post_ballot(citizen, "cumul", fields)
                    assert status == 400 and text in page, (fields, status)
                    for name, value in fields:
                        if name != "points-zz":
                            assert f'name="{name}" value="{value}"' in page, (name, value)
                nothing_sent(world, "cumul")
                status, page = await post_ballot(citizen, "cumul", [("points-cumul-a", "6"), ("points-cumul-c", "4"),
                                                                    ("points-cumul-b", "0")])
                assert status == 200 and TX_HASH.search(page), page
                assert ballots_on_chain(world, "cumul") == [(("cumul-a", "cumul-c"), (6, 4))]
                assert "Сквер: 6 баллов; Каток: 4 балла" in page                  # the receipt, after the redirect
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_a_ranking_one_rank_per_row(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with with_ballot_types(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                cases = [
                    ([("rank-1", ""), ("rank-2", "rank-b")], "2-е место заполнено, а место выше — нет"),
                    ([("rank-1", "rank-b"), ("rank-2", "rank-b")], "стоит на двух местах"),
                    ([("rank-1", "rank-b")], "Нужно выбрать от 2 до 3 проектов"),
                    ([("rank-1", "rank-zz"), ("rank-2", "rank-b")], "нет в бюллетене"),
                ]
                for fields, text in cases:
                    status, page = await post_ballot(citizen, "rank", fields)
                    assert status == 400 and text in page, (fields, status)
                    for name, value in fields:
                        if value and value != "rank-zz":
                            assert re.search(f'<select id="{name}" name="{name}">.*?<option value="{value}" selected>',
                                             page), (name, value)
                nothing_sent(world, "rank")
                status, page = await post_ballot(citizen, "rank", [("rank-1", "rank-c"), ("rank-2", "rank-a"),
                                                                   ("rank-3", "rank-d")])
                assert status == 200 and TX_HASH.search(page), page
                assert ballots_on_chain(world, "rank") == [(("rank-c", "rank-a", "rank-d"), (3, 2, 1))]
                assert "Каток: 3 балла; Сквер: 2 балла; Библиотека: 1 балл" in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_results_show_points_for_scored_ballots(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with with_ballot_types(tmp_path) as world:
            voters = [world.client(f"10.9.0.{n}") for n in range(1, 4)]
            try:
                for n, (citizen, points) in enumerate(zip(voters, (("6", "1"), ("1", "6"), ("", "3")))):
                    await citizen.login(f"+7912345670{n}")
                    fields = [("points-cumul-a", points[0]), ("points-cumul-b", points[1])]
                    status, page = await post_ballot(citizen, "cumul", fields)
                    assert status == 200, page
                world.close_campaign("cumul")
                world.gateway.chain.invalidate()
                world.gateway.chain.forget("cumul")
                status, page = await voters[0].get("/results/cumul/d/north")
                assert status == 200 and "Все проекты, по числу баллов" in page
                assert '<th scope="col">Баллы</th><th scope="col" class="n">Голоса</th>' in page
                rows = re.findall(r'initiatives/(cumul-[a-d])">[^<]+</a></th>\n<td data-label="Баллы">(\d+)'
                                  r'(?:<svg.*?</svg>)?</td><td class="n" data-label="Голоса">(\d+)</td>', page)
                assert rows[:2] == [("cumul-b", "10", "3"), ("cumul-a", "7", "2")]   # ranked by points, not votes
                assert '<span class="win">победитель</span>' in page
                world.close_campaign("knap")
                world.gateway.chain.invalidate()
                world.gateway.chain.forget("knap")
                _, knapsack = await voters[0].get("/results/knap/d/north")
                assert "Все проекты, по числу голосов" in knapsack and "по числу баллов" not in knapsack
                status, dashboard = await voters[0].get("/dashboard")     # every type on the programme page
                assert status == 200 and all(title in dashboard for title in
                                             ("Бюджет по корзине", "Бюджет по баллам", "Бюджет по местам"))
            finally:
                for citizen in voters:
                    await citizen.close()

    asyncio.run(scenario())
