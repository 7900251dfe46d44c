"""The four citizen steps in real headless Chromium against a real 4-validator testnet and gateway.

Runs the flow three times: a desktop window, a 320 px wide phone screen, and with JavaScript
disabled. Each time: phone number → code from the SMS outbox → district → vote → receipt, then the
ballot is checked on the chain itself and its receipt file verified against the genesis file. With
JavaScript the demo campaign's ballot page lets the browser hold the voter key (docs/GATEWAY.md
"Voter-held keys"): the receipt comes from the browser; without it the gateway signs, as before.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from chain.receipt import verify_receipt
from genesis.model import load_genesis
from tests.gateway.cdp import Browser, Page
from tests.gateway.realnet import RealNet, get_json
from tests.gateway.voterheld import vote_with_script

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FORM_WAIT_S = 1.1   # the testnet's form_min_seconds is 1


async def check_narrow(page: Page, width: int | None) -> None:
    if width is not None:
        assert await page.content_width() <= width, await page.url()


async def citizen_flow(net: RealNet, page: Page, phone: str, width: int | None, javascript: bool = True) -> str:
    gateway = net.gateway_url
    await page.goto(gateway + "/")
    await check_narrow(page, width)
    await page.click_and_wait('a[href^="/c/ib-2027/d/"]')
    district_path = (await page.url()).removeprefix(gateway)
    assert re.fullmatch(r"/c/ib-2027/d/[A-Za-z0-9._-]+", district_path)
    await check_narrow(page, width)
    await page.click_and_wait("a.button")                                   # "log in to vote"
    assert (await page.url()).startswith(gateway + "/login")
    # step 1: phone number
    await page.type("#phone", phone)
    await asyncio.sleep(FORM_WAIT_S)
    await page.click_and_wait('form[action="/login"] button[type="submit"]')
    assert await page.exists("#code"), await page.html()
    await check_narrow(page, width)
    # step 2: the code from the SMS outbox
    await page.type("#code", net.outbox_code(phone))
    await asyncio.sleep(FORM_WAIT_S)
    await page.click_and_wait('form[action="/login/code"] button[type="submit"]')
    assert (await page.url()) == gateway + district_path                     # back on the district's ballot
    await check_narrow(page, width)
    # step 3-4: choose and vote
    choice = await page.attribute('input[name="choice"]', "value")
    assert choice
    if javascript:   # the browser holds the voter key and sends the ballot to a node itself
        ballot = await vote_with_script(net, page)
        await check_narrow(page, width)
        assert ballot.tx.body.choices == (choice,)
        for url in page.requested_urls():
            assert url.startswith(gateway + "/") or any(url.startswith(node + "/api/v1/") for node in net.node_urls), url
        assert all(status < 400 for _, status in page.statuses()), page.statuses()
        return ballot.tx_hash
    await page.click('input[name="choice"]')
    await asyncio.sleep(FORM_WAIT_S)
    await page.click_and_wait('form[action$="/vote"] button[type="submit"]')
    html = await page.html()
    tx_hash = await page.text_of("#tx-hash")
    assert re.fullmatch(r"[0-9a-f]{64}", tx_hash)
    assert "Ваш голос учтён" in html or "ждём подтверждения" in html, html   # counted, or honestly pending
    await check_narrow(page, width)
    # the receipt page; on a busy machine the commit may take longer than the answer waits:
    # then the citizen presses "check again", as the page says
    await page.click_and_wait(f'a[href="/receipt/{tx_hash}"]')
    for _ in range(30):
        html = await page.html()
        if "Ваш голос учтён" in html:
            break
        await asyncio.sleep(1)
        await page.click_and_wait(f'a[href="/receipt/{tx_hash}"]')
    assert "Ваш голос учтён" in html and tx_hash in html
    await check_narrow(page, width)
    # nothing but the gateway itself was requested, and nothing failed
    for url in page.requested_urls():
        assert url.startswith(gateway + "/"), url
    assert all(status < 400 for _, status in page.statuses()), page.statuses()
    # the vote is counted on the chain, and the receipt file verifies against the genesis file
    found = get_json(f"{net.node_urls[1]}/api/v1/txs/{tx_hash}")
    assert found["status"] == "committed"
    district = district_path.rsplit("/", 1)[1]
    tally = get_json(f"{net.node_urls[2]}/api/v1/campaigns/ib-2027/tally")
    assert tally["districts"][district]["initiatives"][choice] >= 1
    with urllib.request.urlopen(f"{gateway}/receipt/{tx_hash}.json", timeout=10) as response:
        receipt = json.loads(response.read())
    checked = verify_receipt(receipt, load_genesis(net.layout.genesis_file).params)
    assert checked.tx.body.choices == (choice,)
    return tx_hash


def test_four_steps_in_chromium_desktop_phone_width_and_without_javascript(realnet: RealNet,
                                                                           tmp_path: Path) -> None:
    async def run(browser: Browser, name: str, phone: str, max_width: int | None, **options: Any) -> str:
        page = await browser.new_page(**options)
        try:
            return await citizen_flow(realnet, page, phone, max_width, options.get("javascript", True))
        except BaseException:
            await page.screenshot(tmp_path / f"{name}.png")     # kept by pytest for a post-mortem
            (tmp_path / f"{name}.html").write_text(await page.html(), encoding="utf-8")
            raise

    async def scenario() -> None:
        browser = await Browser.launch()
        try:
            hashes = [
                await run(browser, "desktop", "+7 912 100-00-01", None),
                await run(browser, "phone-320", "8 912 100-00-02", 320, width=320, height=640, mobile=True),
                await run(browser, "no-javascript", "9121000003", None, javascript=False),
            ]
            assert len(set(hashes)) == 3
        finally:
            await browser.close()

    asyncio.run(scenario())
