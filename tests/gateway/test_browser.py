"""The four citizen steps in real headless Chromium against a real 4-validator testnet and gateway.

Runs the flow three times: a desktop window, a 320 px wide phone screen, and with JavaScript
disabled. Each time: phone number → code from the SMS outbox → district → vote → receipt, then the
ballot is checked on the chain itself and its receipt file verified against the genesis file. With
JavaScript the demo campaign's ballot page lets the browser hold the voter key (docs/GATEWAY.md
"Voter-held keys"): the receipt comes from the browser; without it the gateway signs, as before.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from chain.receipt import verify_receipt
from genesis.model import load_genesis
from tests.gateway.realnet import RealNet, get_json
from tests.gateway.voterheld import vote_with_script

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FORM_WAIT_S = 1.1   # the testnet's form_min_seconds is 1


def check_narrow(page: Page, width: int | None) -> None:
    if width is not None:
        assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url


def submit(page: Page, selector: str) -> None:
    """Wait out the form's minimum time, then click its button and wait for the next page."""
    time.sleep(FORM_WAIT_S)
    with page.expect_navigation():
        page.click(selector)


def citizen_flow(net: RealNet, page: Page, phone: str, width: int | None, javascript: bool = True) -> str:
    gateway = net.gateway_url
    requested: list[str] = []
    statuses: list[tuple[str, int]] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("response", lambda response: statuses.append((response.url, response.status)))
    page.goto(gateway + "/")
    check_narrow(page, width)
    with page.expect_navigation():
        page.click('a[href^="/c/ib-2027/d/"]')
    district_path = page.url.removeprefix(gateway)
    assert re.fullmatch(r"/c/ib-2027/d/[A-Za-z0-9._-]+", district_path)
    check_narrow(page, width)
    # step 1: the phone number, on the ballot page itself
    page.fill("#phone", phone)
    submit(page, 'form[action="/login"] button[type="submit"]')
    assert page.locator("#code").count() == 1, page.content()
    check_narrow(page, width)
    # step 2: the code from the SMS outbox
    page.fill("#code", net.outbox_code(phone))
    submit(page, 'form[action="/login/code"] button[type="submit"]')
    assert page.url == gateway + district_path                               # back on the district's ballot
    check_narrow(page, width)
    # step 3-4: choose and vote; the answer is the receipt page (POST-redirect-GET)
    choice = page.get_attribute('input[name="choice"]', "value")
    assert choice
    if javascript:   # the browser holds the voter key and sends the ballot to a node itself
        ballot = vote_with_script(net, page)
        check_narrow(page, width)
        assert ballot.tx.body.choices == (choice,)
        for url in requested:
            assert url.startswith(gateway + "/") or any(url.startswith(node + "/api/v1/") for node in net.node_urls), url
        assert all(status < 400 for _, status in statuses), statuses
        return ballot.tx_hash
    page.check('input[name="choice"]')
    submit(page, 'form[action$="/vote"] button[type="submit"]')
    tx_hash = page.inner_text("#tx-hash").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", tx_hash)
    assert page.url == f"{gateway}/receipt/{tx_hash}"
    html = page.content()
    assert "Ваш голос учтён" in html or "ждём подтверждения" in html, html   # counted, or honestly pending
    check_narrow(page, width)
    # on a busy machine the commit may take longer than the answer waits: then the citizen
    # presses "check again" (a reload), as the page says
    for _ in range(30):
        if "Ваш голос учтён" in html:
            break
        time.sleep(1)
        page.reload()
        html = page.content()
    assert "Ваш голос учтён" in html and tx_hash in html
    check_narrow(page, width)
    # nothing but the gateway itself was requested, and nothing failed
    for url in requested:
        assert url.startswith(gateway + "/"), url
    assert all(status < 400 for _, status in statuses), statuses
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


def test_four_steps_in_chromium_desktop_phone_width_and_without_javascript(realnet: RealNet, chromium: Browser,
                                                                           tmp_path: Path) -> None:
    def run(name: str, phone: str, max_width: int | None, **options: Any) -> str:
        context = chromium.new_context(**options)
        page = context.new_page()
        try:
            return citizen_flow(realnet, page, phone, max_width, options.get("java_script_enabled", True))
        except BaseException:
            page.screenshot(path=str(tmp_path / f"{name}.png"))     # kept by pytest for a post-mortem
            (tmp_path / f"{name}.html").write_text(page.content(), encoding="utf-8")
            raise
        finally:
            context.close()

    hashes = [
        run("desktop", "+7 912 100-00-01", None, viewport={"width": 1024, "height": 900}),
        run("phone-320", "8 912 100-00-02", 320, viewport={"width": 320, "height": 640}, is_mobile=True,
            has_touch=True),
        run("no-javascript", "9121000003", None, java_script_enabled=False),
    ]
    assert len(set(hashes)) == 3
