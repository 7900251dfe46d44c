"""Knapsack, cumulative and ranked ballots in real headless Chromium, with JavaScript on and off.

On the session's real testnet (4 validators and the gateway as processes) the committee opens three
campaigns, one per ballot type. A citizen logs in and, for each type, first sends a ballot that
breaks its limit — over the cost cap, too many points, a rank left empty above a filled one — and
gets the ballot back with a clear message, the choices as they were, and nothing sent to the chain;
then corrects it and casts it. With JavaScript on, the running total and the points left follow the
choices live; without it (on a 320 px phone screen, no sideways scrolling), the server's check
does the same job.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from chain import codec
from chain.crypto import read_key_file
from chain.tx import sign_tx
from genesis.campaign_json import campaign_from_json, initiative_from_json
from genesis.model import load_genesis
from tests.gateway.cdp import Browser, Page
from tests.gateway.realnet import RealNet, get_json
from tests.node.netkit import http_post

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FORM_WAIT_S = 1.1   # the testnet's form_min_seconds is 1
DISTRICT = "centre"
BALLOTS = {
    "bt-knap": {"type": "knapsack", "min_choices": 1, "max_choices": 3, "max_sum_cost": 2_000_000_00},
    "bt-cumul": {"type": "cumulative", "max_choices": 3, "min_sum_points": 1, "max_sum_points": 10, "max_points": 6},
    "bt-rank": {"type": "ordinal", "min_choices": 2, "rank_points": [3, 2, 1]},
}
PROJECTS = (("a", "Сквер у реки", 1_200_000), ("b", "Фонари на набережной", 700_000), ("c", "Каток", 500_000),
            ("d", "Книги для библиотеки", 300_000))


def open_campaigns(net: RealNet) -> None:
    """The committee creates one campaign per ballot type, voting from a few seconds on."""
    genesis = load_genesis(net.layout.genesis_file)
    committee = [read_key_file(path) for path in net.layout.committee_key_files][: genesis.params.committee_threshold]
    gateway = read_key_file(net.layout.gateway.key_file).public_key.hex()
    now = int(time.time() * 1000)
    voting_start = now + 8_000
    txs = []
    for campaign_id, ballot in BALLOTS.items():
        spec = campaign_from_json({
            "campaign_id": campaign_id, "title": f"Голосование {campaign_id}", "track": "adult",
            "districts": [{"district_id": DISTRICT, "name": "Центр", "budget": 5_000_000_00}], "ballot": ballot,
            "rule": {"name": "greedy", "scope": "district"}, "submission_start": now - 60_000,
            "submission_end": voting_start, "voting_start": voting_start, "voting_end": now + 3_600_000,
            "gateway": gateway}, {})
        txs.append(sign_tx("campaign.create", genesis.chain_id, spec, committee))
        for iid, title, rubles in PROJECTS:
            body = initiative_from_json({"campaign_id": campaign_id, "initiative_id": f"{campaign_id}-{iid}",
                                         "district_id": DISTRICT, "title": title, "category": "parks",
                                         "cost": rubles * 100})
            txs.append(sign_tx("initiative.submit", genesis.chain_id, body, committee))
    status, body, _ = http_post(net.node_urls[0] + "/api/v1/txs", codec.encode([tx.raw for tx in txs]))
    answer = json.loads(body)
    assert status == 200 and not answer["rejected"], answer
    deadline = time.monotonic() + 60
    while not all(get_json(f"{net.node_urls[0]}/api/v1/txs/{tx.hash.hex()}")["status"] == "committed" for tx in txs):
        assert time.monotonic() < deadline, "the campaigns did not commit"
        time.sleep(0.3)
    while time.time() * 1000 < voting_start + 500:
        time.sleep(0.2)


def chain_ballots(net: RealNet, campaign_id: str) -> list[tuple[list[str], list[int]]]:
    page = get_json(f"{net.node_urls[1]}/api/v1/campaigns/{campaign_id}/ballots")
    return [(b["choices"], b.get("points", [])) for b in page["ballots"]]


async def shown(page: Page, selector: str | None = None) -> str:
    """The page's (or an element's) markup with entities decoded (&nbsp; → U+00A0)."""
    return html.unescape(await page.text_of(selector) if selector else await page.html())


async def submit(page: Page) -> None:
    await asyncio.sleep(FORM_WAIT_S)
    await page.click_and_wait('form[action$="/vote"] button[type="submit"]')


async def login(net: RealNet, page: Page, phone: str) -> None:
    await page.goto(f"{net.gateway_url}/login?next=/c/bt-knap/d/{DISTRICT}")
    await page.type("#phone", phone)
    await asyncio.sleep(FORM_WAIT_S)
    await page.click_and_wait('form[action="/login"] button[type="submit"]')
    await page.type("#code", net.outbox_code(phone))
    await asyncio.sleep(FORM_WAIT_S)
    await page.click_and_wait('form[action="/login/code"] button[type="submit"]')
    assert await page.url() == f"{net.gateway_url}/c/bt-knap/d/{DISTRICT}"


async def wait_counted(net: RealNet, campaign_id: str, count: int) -> list[tuple[list[str], list[int]]]:
    for _ in range(60):
        found = chain_ballots(net, campaign_id)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"{campaign_id}: {count} ballots expected on the chain")


async def knapsack(net: RealNet, page: Page, javascript: bool, voted: int) -> list[str]:
    for iid in "abc":                                               # 2,400,000 ₽: over the 2,000,000 ₽ cap
        await page.click(f"#ch-bt-knap-{iid}")
    live = await shown(page, "#ballot-total")
    if javascript:
        assert "на 400\u00a0000\u00a0₽ больше лимита 2\u00a0000\u00a0000\u00a0₽" in live, live
    else:
        assert "Выбрано на 0\u00a0₽" in live, live                 # no script: the server will check
    await submit(page)
    text = await shown(page)
    assert "стоят 2\u00a0400\u00a0000\u00a0₽ — больше лимита" in text and "Голос не отправлен" in text, text
    for iid in "abc":                                               # the choices are kept
        assert await page.attribute(f"#ch-bt-knap-{iid}", "checked") is not None
    assert await page.attribute("#ch-bt-knap-d", "checked") is None
    assert len(chain_ballots(net, "bt-knap")) == voted             # nothing was sent
    await page.click("#ch-bt-knap-c")                              # untick: 1,900,000 ₽
    if javascript:
        assert "осталось 100\u00a0000\u00a0₽" in await shown(page, "#ballot-total")
    await submit(page)
    tx_hash = await page.text_of("#tx-hash")
    assert (["bt-knap-a", "bt-knap-b"], []) in await wait_counted(net, "bt-knap", voted + 1)
    return [tx_hash]


async def cumulative(net: RealNet, page: Page, javascript: bool, voted: int) -> list[str]:
    await page.goto(f"{net.gateway_url}/c/bt-cumul/d/{DISTRICT}")
    await page.fill("#pt-bt-cumul-a", "6")
    await page.fill("#pt-bt-cumul-b", "5")
    if javascript:
        assert "Баллов отдано: 11 — на 1 больше" in await shown(page, "#ballot-total")
    await submit(page)
    text = await shown(page)
    assert "Вы распределили баллов: 11; нужно от 1 до 10" in text and "Голос не отправлен" in text, text
    assert await page.attribute("#pt-bt-cumul-a", "value") == "6"
    assert await page.attribute("#pt-bt-cumul-b", "value") == "5"
    assert len(chain_ballots(net, "bt-cumul")) == voted
    await page.fill("#pt-bt-cumul-b", "4")
    if javascript:
        assert "Баллов отдано: 10 из 10; осталось 0." in await shown(page, "#ballot-total")
    await submit(page)
    assert "Сквер у реки: баллов — 6" in await shown(page)
    assert (["bt-cumul-a", "bt-cumul-b"], [6, 4]) in await wait_counted(net, "bt-cumul", voted + 1)
    return [await page.text_of("#tx-hash")]


async def ranking(net: RealNet, page: Page, voted: int) -> list[str]:
    await page.goto(f"{net.gateway_url}/c/bt-rank/d/{DISTRICT}")
    await page.choose("#rank-2", 3)                                 # rank 2: c; rank 1 left empty
    await submit(page)
    text = await shown(page)
    assert "2-е место заполнено, а место выше — нет" in text and "Голос не отправлен" in text, text
    assert re.search(r'<select id="rank-2"[^>]*>(<option[^>]*>[^<]*</option>)*?<option value="bt-rank-c" selected', text)
    assert len(chain_ballots(net, "bt-rank")) == voted
    await page.choose("#rank-1", 2)                                 # rank 1: b
    await submit(page)
    text = await shown(page)
    assert text.index("Фонари на набережной: баллов — 3") < text.index("Каток: баллов — 2"), text
    assert (["bt-rank-b", "bt-rank-c"], [3, 2]) in await wait_counted(net, "bt-rank", voted + 1)
    return [await page.text_of("#tx-hash")]


def test_each_ballot_type_in_chromium_with_and_without_javascript(realnet: RealNet, tmp_path: Path) -> None:
    open_campaigns(realnet)

    async def run(browser: Browser, name: str, phone: str, voted: int, **options: Any) -> list[str]:
        page = await browser.new_page(**options)
        javascript = options.get("javascript", True)
        try:
            await login(realnet, page, phone)
            widths = [await page.content_width()]
            hashes = await knapsack(realnet, page, javascript, voted)
            await page.goto(f"{realnet.gateway_url}/c/bt-cumul/d/{DISTRICT}")
            widths.append(await page.content_width())
            hashes += await cumulative(realnet, page, javascript, voted)
            await page.goto(f"{realnet.gateway_url}/c/bt-rank/d/{DISTRICT}")
            widths.append(await page.content_width())
            hashes += await ranking(realnet, page, voted)
            assert max(widths) <= options.get("width", 1024), widths     # no sideways scrolling
            for url in page.requested_urls():                       # only the gateway's own pages and assets
                assert url.startswith(realnet.gateway_url + "/"), url
            scripts = [url for url in page.requested_urls() if url.endswith(".js")]
            assert all(url.endswith("/static/ballot.js") for url in scripts) and (scripts or not javascript)
            return hashes
        except BaseException:
            await page.screenshot(tmp_path / f"{name}.png")
            (tmp_path / f"{name}.html").write_text(await page.html(), encoding="utf-8")
            raise

    async def scenario() -> None:
        browser = await Browser.launch()
        try:
            first = await run(browser, "javascript", "+7 912 200-00-01", 0)
            second = await run(browser, "no-javascript-320px", "+7 912 200-00-02", 1, javascript=False, width=320,
                               height=640, mobile=True)
            assert len(set(first + second)) == 6
        finally:
            await browser.close()

    asyncio.run(scenario())
    for campaign_id in BALLOTS:
        assert get_json(f"{realnet.node_urls[2]}/api/v1/campaigns/{campaign_id}/tally")["total_ballots"] == 2
