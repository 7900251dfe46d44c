"""Voter-held keys in real headless Chromium with JavaScript on, against real processes: the four
steps end with a ballot whose voter key never reached the gateway process.

The gateway runs in its test-only wire-logging mode (gateway/wirelog.py). After the vote the test
searches (1) a dump of the gateway process's memory (/proc/PID/mem), (2) every file of the gateway's
home — LevelDB data, logs, the wire log — for the voter's private key, public key and token in raw,
hex and base64 forms, and finds none; and (3) the wire log for a request that carries both the
session cookie and any of them, and finds none. Positive controls show each search can find what is
there (the session cookie in memory and in the wire log, the token request in the wire log). The
browser's requests to the node carried no cookie.

Knapsack, cumulative and ranked ballots take the same path: the page checks them as the server would
(the server never sees them), stops one over its limits before any token is asked, and sends the
corrected one with its points as the chain encodes them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request

from chain.receipt import verify_receipt
from chain.tx import Tx, decode_tx
from gateway.wirelog import read_requests
from genesis.model import load_genesis
from tests.certkey import test_certification_key
from tests.gateway.browser import describe, run_axe
from tests.gateway.realnet import ROOT, RealNet, get_json, make_realnet
from tests.gateway.test_browser_ballots import DISTRICT, NO_VOTE_SENT, open_campaigns
from tests.gateway.voterheld import FORM_WAIT_S, files_under, login, process_memory, submit, vote_with_script

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def wirenet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNet]:
    net = make_realnet(Path(tmp_path_factory.mktemp("wirenet")) / "testnet", validators=1)
    try:
        net.start(gateway_overrides={"test_wire_log_file": "wire.log"})
        yield net
    finally:
        net.stop()


def test_the_voter_key_never_reaches_the_gateway(wirenet: RealNet, chromium: Browser, tmp_path: Path) -> None:
    context = chromium.new_context()
    page = context.new_page()
    to_node: list[tuple[str, dict[str, str]]] = []

    def note(request: Request) -> None:
        if request.url.startswith(wirenet.node_urls[0]):
            to_node.append((request.url, request.all_headers()))

    page.on("request", note)
    try:
        login(wirenet, page, "+7 912 200-00-01")
        ballot = vote_with_script(wirenet, page)
        cookies: list[Any] = context.cookies(wirenet.gateway_url)
        session = next(c["value"] for c in cookies if c["name"] == "veche_session").encode()
    except BaseException:
        page.screenshot(path=str(tmp_path / "voter-held.png"))
        (tmp_path / "voter-held.html").write_text(page.content(), encoding="utf-8")
        raise
    finally:
        context.close()
    needles = ballot.needles()
    # the node got the ballot, without any cookie
    assert any(url.endswith("/api/v1/txs") for url, _ in to_node), to_node
    for url, headers in to_node:
        assert "cookie" not in {name.lower() for name in headers}, (url, headers)
    # (1) the gateway process's memory
    assert wirenet.gateway is not None and wirenet.gateway.process is not None
    memory = process_memory(wirenet.gateway.process.pid)
    assert sum(len(region) for region in memory) > 10_000_000
    assert any(session in region for region in memory)                    # the scan does see the heap
    for name, needle in needles.items():
        assert not any(needle in region for region in memory), f"the gateway's memory holds the {name}"
    # (2) every file of the gateway's home: LevelDB, logs, the wire log
    files = files_under(wirenet.gateway_home)
    assert any(path.name.endswith((".ldb", ".log")) for path, _ in files)
    for path, data in files:
        for name, needle in needles.items():
            assert needle not in data, f"{path} holds the {name}"
    # (3) no request to the gateway carries the session cookie and the key or token
    requests = read_requests(wirenet.gateway_home / "wire.log")
    token_requests = [r for r in requests if r.startswith(b"POST /c/ib-2027/token ")]
    assert len(token_requests) == 1 and session in token_requests[0]      # the log has the cookie-bearing request
    for request in requests:
        carried = [name for name, needle in needles.items() if needle in request]
        assert not (session in request and carried), (request[:200], carried)
        assert not carried, (request[:200], carried)
    # the receipt the browser made verifies with veche receipt verify and only the genesis file
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(ballot.receipt))
    checked = subprocess.run([sys.executable, "-m", "node.cli", "receipt", "verify", str(path), "--node",
                              wirenet.node_urls[0], "--genesis", str(wirenet.layout.genesis_file)],
                             capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_javascript_the_gateway_signs_as_before(wirenet: RealNet, chromium: Browser) -> None:
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        login(wirenet, page, "+7 912 200-00-02")
        assert page.locator('script[src="/static/vote.js"]').count() == 1      # served, but not run
        page.check('input[name="choice"]')
        submit(page, "form#ballot button[type='submit']")
        html = page.content()
        assert "Ваш голос учтён" in html or "ждём подтверждения" in html, html
        assert page.locator("#tx-hash").count() == 1 and page.locator("#vh-done").count() == 0
        assert page.url.startswith(wirenet.gateway_url + "/receipt/")
        assert FORM_WAIT_S > 1
    finally:
        context.close()


VOTER_HELD_BALLOTS = {   # the ballot types of issue 19 in campaigns that take voter-held keys
    "vh-knap": {"type": "knapsack", "min_choices": 1, "max_choices": 3, "max_sum_cost": 2_000_000_00},
    "vh-cumul": {"type": "cumulative", "max_choices": 3, "min_sum_points": 1, "max_sum_points": 10, "max_points": 6},
    "vh-rank": {"type": "ordinal", "min_choices": 2, "rank_points": [3, 2, 1]},
}


def ballot_path(campaign_id: str) -> str:
    return f"/c/{campaign_id}/d/{DISTRICT}"


def login_at(net: RealNet, page: Page, phone: str, path: str) -> None:
    page.goto(net.gateway_url + path)
    page.fill("#phone", phone)
    submit(page, 'form[action="/login"] button[type="submit"]')
    page.fill("#code", net.outbox_code(phone))
    submit(page, 'form[action="/login/code"] button[type="submit"]')
    assert page.url == net.gateway_url + path


def stopped_in_page(page: Page) -> str:
    """Send the form; the page's script stops it: the server's message in the server's box, no navigation."""
    url = page.url
    page.evaluate("() => { const shown = document.getElementById('ballot-problem'); if (shown) shown.remove(); }")
    page.click("form#ballot button[type='submit']")
    page.wait_for_selector("#ballot-problem", timeout=10_000)
    assert page.url == url and page.locator("#vh-status, #vh-done").count() == 0
    return page.inner_text("#ballot-problem").replace("\u00a0", " ")


def cast_in_page(net: RealNet, page: Page) -> Tx:
    """Send the form; the page's script certifies its key, sends the ballot to the node and shows the receipt."""
    time.sleep(FORM_WAIT_S)
    page.click("form#ballot button[type='submit']")
    page.wait_for_selector("#vh-done, #vh-status.err", timeout=90_000)
    if page.locator("#vh-status.err").count():
        raise AssertionError(page.inner_text("#vh-status"))
    assert page.locator("#ballot-problem").count() == 0
    tx_hash = page.inner_text("#tx-hash").strip()
    found = get_json(f"{net.node_urls[0]}/api/v1/txs/{tx_hash}")
    assert found["status"] == "committed"
    href = page.get_attribute("#receipt-download", "href") or ""
    receipt = json.loads(urllib.parse.unquote(href.split(",", 1)[1]))
    assert verify_receipt(receipt, load_genesis(net.layout.genesis_file).params).tx.hash.hex() == tx_hash
    tx = decode_tx(bytes.fromhex(found["proof"]["tx"]))
    assert tx.body.mode == "voter-held" and tx.hash.hex() == tx_hash
    return tx


def ballots_of(net: RealNet, campaign_id: str) -> int:
    return int(get_json(f"{net.node_urls[0]}/api/v1/campaigns/{campaign_id}/tally")["total_ballots"])


def test_voter_held_ballots_of_every_type_are_checked_in_the_page(wirenet: RealNet, chromium: Browser, axe: str,
                                                                    tmp_path: Path) -> None:
    """Knapsack, cumulative and ranked ballots with voter-held keys in Chromium with JavaScript on, at 320 px
    under the page's own CSP. The gateway never sees these ballots, so the page checks them: one over its
    limits is stopped with the server's message in the server's box, every choice kept, no token asked
    and nothing sent; the corrected one leaves the browser signed by the browser's key, its points in
    the chain's canonical order. axe-core then finds nothing on such a page, blank and refused."""
    open_campaigns(wirenet, VOTER_HELD_BALLOTS, test_certification_key().modulus)
    context = chromium.new_context(viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True)
    page = context.new_page()
    tokens: list[str] = []
    page.on("request", lambda request: tokens.append(request.url) if request.url.endswith("/token") else None)
    try:
        login_at(wirenet, page, "+7 912 200-00-07", ballot_path("vh-cumul"))
        assert page.locator('script[src="/static/vote.js"]').count() == 1
        # cumulative: 11 points of at most 10; then 4 and 6, sent as [b, a] [6, 4]
        page.fill("#pt-vh-cumul-a", "5")
        page.fill("#pt-vh-cumul-b", "6")
        problem = stopped_in_page(page)
        assert "Вы распределили баллов: 11; нужно от 1 до 10" in problem and NO_VOTE_SENT in problem, problem
        assert (page.input_value("#pt-vh-cumul-a"), page.input_value("#pt-vh-cumul-b")) == ("5", "6")
        page.fill("#pt-vh-cumul-a", "7")     # over the 6 per project: the field's max, the browser's own check
        assert page.evaluate("document.getElementById('pt-vh-cumul-a').validity.rangeOverflow")
        assert tokens == [] and ballots_of(wirenet, "vh-cumul") == 0
        page.fill("#pt-vh-cumul-a", "4")
        tx = cast_in_page(wirenet, page)
        assert (tx.body.choices, tx.body.points) == (("vh-cumul-b", "vh-cumul-a"), (6, 4))
        assert len(tokens) == 1 and ballots_of(wirenet, "vh-cumul") == 1
        # ordinal: a rank left empty above a filled one, a project on two ranks; then c, a worth 3, 2
        page.goto(wirenet.gateway_url + ballot_path("vh-rank"))
        page.select_option("#rank-2", "vh-rank-c")
        assert "2-е место заполнено, а место выше — нет" in stopped_in_page(page)
        page.select_option("#rank-1", "vh-rank-c")
        assert "Проект «Каток» стоит на двух местах" in stopped_in_page(page)
        assert page.input_value("#rank-2") == "vh-rank-c" and len(tokens) == 1
        page.select_option("#rank-2", "vh-rank-a")
        tx = cast_in_page(wirenet, page)
        assert (tx.body.choices, tx.body.points) == (("vh-rank-c", "vh-rank-a"), (3, 2))
        # knapsack: 2,400,000 ₽ over the 2,000,000 ₽ cap, money written as the server writes it
        page.goto(wirenet.gateway_url + ballot_path("vh-knap"))
        for iid in "abc":
            page.check(f"#ch-vh-knap-{iid}")
        assert "стоят 2 400 000 ₽ — больше лимита 2 000 000 ₽" in stopped_in_page(page)
        assert [page.is_checked(f"#ch-vh-knap-{iid}") for iid in "abcd"] == [True, True, True, False]
        page.uncheck("#ch-vh-knap-c")
        tx = cast_in_page(wirenet, page)
        assert (tx.body.choices, tx.body.points) == (("vh-knap-a", "vh-knap-b"), ())
        assert len(tokens) == 3 and [ballots_of(wirenet, c) for c in VOTER_HELD_BALLOTS] == [1, 1, 1]
    except BaseException:
        page.screenshot(path=str(tmp_path / "voter-held-types.png"))
        (tmp_path / "voter-held-types.html").write_text(page.content(), encoding="utf-8")
        raise
    finally:
        context.close()

    # axe-core on a voter-held ballot page of each type, blank and with the page's own refusal
    context = chromium.new_context(viewport={"width": 320, "height": 800}, bypass_csp=True)
    page = context.new_page()
    try:
        login_at(wirenet, page, "+7 912 200-00-08", ballot_path("vh-cumul"))
        refusals = {"vh-knap": lambda: [page.check(f"#ch-vh-knap-{iid}") for iid in "abc"],
                    "vh-cumul": lambda: [page.fill("#pt-vh-cumul-a", "6"), page.fill("#pt-vh-cumul-b", "5")],
                    "vh-rank": lambda: page.select_option("#rank-3", "vh-rank-a")}
        found: list[str] = []
        for campaign_id, refuse in refusals.items():
            page.goto(wirenet.gateway_url + ballot_path(campaign_id))
            for state in ("blank", "refused"):
                if state == "refused":
                    refuse()
                    assert NO_VOTE_SENT in stopped_in_page(page)
                result = run_axe(page, axe)
                found += [f"{campaign_id} {state}: {line}" for line in
                          describe(result["violations"]) + describe(result["incomplete"])]
        assert not found, "\n".join(found)
    finally:
        context.close()
