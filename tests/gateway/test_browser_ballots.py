"""Knapsack, cumulative and ranked ballots in real headless Chromium, with JavaScript on and off.

On the session's real testnet (4 validators and the gateway as processes) the committee opens three
campaigns, one per ballot type. A citizen logs in and, for each type, first sends a ballot that
breaks its limit — over the cost cap, too many points, a rank left empty above a filled one — and
gets the ballot back with a clear message, the choices as they were, and nothing sent to the chain;
then corrects it and casts it. With JavaScript on (on a 320 px phone screen, no sideways scrolling,
under the pages' own content security policy) the running total and the points left follow the
choices live; without it the server's check does the same job. axe-core then finds no WCAG 2.1 A/AA
problem on the three ballot pages, blank and refused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from chain import codec
from chain.crypto import read_key_file
from chain.tx import sign_tx
from genesis.campaign_json import campaign_from_json, initiative_from_json
from genesis.model import load_genesis
from tests.gateway.browser import describe, run_axe
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
NO_VOTE_SENT = "Голос не отправлен"


def open_campaigns(net: RealNet, ballots: dict[str, dict[str, Any]] = BALLOTS,
                   certification_key: bytes | None = None) -> None:
    """The committee creates one campaign per ballot type, voting from a few seconds on (with
    ``certification_key``, campaigns that take voter-held keys)."""
    genesis = load_genesis(net.layout.genesis_file)
    committee = [read_key_file(path) for path in net.layout.committee_key_files][: genesis.params.committee_threshold]
    gateway = read_key_file(net.layout.gateway.key_file).public_key.hex()
    now = int(time.time() * 1000)
    voting_start = now + 8_000
    txs = []
    for campaign_id, ballot in ballots.items():
        document: dict[str, Any] = {
            "campaign_id": campaign_id, "title": f"Голосование {campaign_id}", "track": "adult",
            "districts": [{"district_id": DISTRICT, "name": "Центр", "budget": 5_000_000_00}], "ballot": ballot,
            "rule": {"name": "greedy", "scope": "district"}, "submission_start": now - 60_000,
            "submission_end": voting_start, "voting_start": voting_start, "voting_end": now + 3_600_000,
            "gateway": gateway}
        if certification_key is not None:
            document["certification_key"] = certification_key.hex()
        spec = campaign_from_json(document, {})
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


def counted(net: RealNet, campaign_id: str, count: int) -> list[tuple[list[str], list[int]]]:
    for _ in range(120):
        found = chain_ballots(net, campaign_id)
        if len(found) >= count:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{campaign_id}: {count} ballots expected on the chain")


def text(page: Page, selector: str | None = None) -> str:
    """What the citizen reads (no-break spaces as spaces)."""
    raw = page.inner_text(selector or "main")
    return raw.replace("\u00a0", " ")


def submit(page: Page) -> None:
    time.sleep(FORM_WAIT_S)
    with page.expect_navigation():
        page.click('form[action$="/vote"] button[type="submit"]')


def login(net: RealNet, page: Page, phone: str) -> None:
    """The phone form is on the ballot page itself; the code brings the citizen back to it."""
    page.goto(f"{net.gateway_url}/c/bt-knap/d/{DISTRICT}")
    page.fill("#phone", phone)
    time.sleep(FORM_WAIT_S)
    with page.expect_navigation():
        page.click('form[action="/login"] button[type="submit"]')
    page.fill("#code", net.outbox_code(phone))
    time.sleep(FORM_WAIT_S)
    with page.expect_navigation():
        page.click('form[action="/login/code"] button[type="submit"]')
    assert page.url == f"{net.gateway_url}/c/bt-knap/d/{DISTRICT}"


def knapsack(net: RealNet, page: Page, javascript: bool, voted: int) -> str:
    for iid in "abc":                                               # 2,400,000 ₽: over the 2,000,000 ₽ cap
        page.check(f"#ch-bt-knap-{iid}")
    live = text(page, "#ballot-total")
    if javascript:
        assert "на 400 000 ₽ больше лимита 2 000 000 ₽" in live, live
    else:
        assert "Выбрано на 0 ₽ из 2 000 000 ₽" in live, live        # no script: the server checks
    submit(page)
    assert "стоят 2 400 000 ₽ — больше лимита 2 000 000 ₽" in text(page) and NO_VOTE_SENT in text(page)
    assert [page.is_checked(f"#ch-bt-knap-{iid}") for iid in "abcd"] == [True, True, True, False]  # kept
    assert "на 400 000 ₽ больше лимита" in text(page, "#ballot-total")   # the server's total, too
    assert len(chain_ballots(net, "bt-knap")) == voted                # nothing was sent
    page.uncheck("#ch-bt-knap-c")                                     # 1,900,000 ₽
    if javascript:
        assert "осталось 100 000 ₽" in text(page, "#ballot-total")
    submit(page)
    assert (["bt-knap-a", "bt-knap-b"], []) in counted(net, "bt-knap", voted + 1)
    return page.inner_text("#tx-hash").strip()


def cumulative(net: RealNet, page: Page, javascript: bool, voted: int) -> str:
    page.goto(f"{net.gateway_url}/c/bt-cumul/d/{DISTRICT}")
    page.fill("#pt-bt-cumul-a", "6")
    page.fill("#pt-bt-cumul-b", "5")
    if javascript:
        assert "Баллов отдано: 11 — на 1 больше" in text(page, "#ballot-total")
    submit(page)
    assert "Вы распределили баллов: 11; нужно от 1 до 10" in text(page) and NO_VOTE_SENT in text(page)
    assert (page.input_value("#pt-bt-cumul-a"), page.input_value("#pt-bt-cumul-b")) == ("6", "5")
    assert len(chain_ballots(net, "bt-cumul")) == voted
    page.fill("#pt-bt-cumul-b", "4")
    if javascript:
        assert "Баллов отдано: 10 из 10; осталось 0." in text(page, "#ballot-total")
    submit(page)
    assert "Сквер у реки: 6 баллов; Фонари на набережной: 4 балла" in text(page)
    assert (["bt-cumul-a", "bt-cumul-b"], [6, 4]) in counted(net, "bt-cumul", voted + 1)
    return page.inner_text("#tx-hash").strip()


def ranking(net: RealNet, page: Page, voted: int) -> str:
    page.goto(f"{net.gateway_url}/c/bt-rank/d/{DISTRICT}")
    page.select_option("#rank-2", "bt-rank-c")                      # rank 2: c; rank 1 left empty
    submit(page)
    assert "2-е место заполнено, а место выше — нет" in text(page) and NO_VOTE_SENT in text(page)
    assert (page.input_value("#rank-1"), page.input_value("#rank-2")) == ("", "bt-rank-c")
    assert len(chain_ballots(net, "bt-rank")) == voted
    page.select_option("#rank-1", "bt-rank-b")                      # rank 1: b
    submit(page)
    assert "Фонари на набережной: 3 балла; Каток: 2 балла" in text(page)
    assert (["bt-rank-b", "bt-rank-c"], [3, 2]) in counted(net, "bt-rank", voted + 1)
    return page.inner_text("#tx-hash").strip()


def test_each_ballot_type_in_chromium_with_and_without_javascript(realnet: RealNet, chromium: Browser, axe: str,
                                                                  tmp_path: Path) -> None:
    open_campaigns(realnet)

    def run(name: str, phone: str, voted: int, **options: Any) -> list[str]:
        context = chromium.new_context(**options)
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        javascript = options.get("java_script_enabled", True)
        width = options["viewport"]["width"]
        try:
            login(realnet, page, phone)
            hashes = [knapsack(realnet, page, javascript, voted)]
            hashes.append(cumulative(realnet, page, javascript, voted))
            hashes.append(ranking(realnet, page, voted))
            for url in requested:                                       # only the gateway's own pages and assets
                assert url.startswith(realnet.gateway_url + "/"), url
            if javascript:                                              # ... and its one script, under its CSP
                assert f"{realnet.gateway_url}/static/ballot.js" in requested
                for campaign_id in BALLOTS:
                    page.goto(f"{realnet.gateway_url}/c/{campaign_id}/d/{DISTRICT}")
                    assert page.evaluate("document.documentElement.scrollWidth") <= width, campaign_id
            return hashes
        except BaseException:
            page.screenshot(path=str(tmp_path / f"{name}.png"))
            (tmp_path / f"{name}.html").write_text(page.content(), encoding="utf-8")
            raise
        finally:
            context.close()

    first = run("javascript-320px", "+7 912 200-00-01", 0, viewport={"width": 320, "height": 640}, is_mobile=True,
                has_touch=True)
    second = run("no-javascript", "+7 912 200-00-02", 1, viewport={"width": 1024, "height": 900},
                 java_script_enabled=False)
    assert len(set(first + second)) == 6
    for campaign_id in BALLOTS:
        assert get_json(f"{realnet.node_urls[2]}/api/v1/campaigns/{campaign_id}/tally")["total_ballots"] == 2

    # axe-core on each ballot page, blank and refused (a third citizen who sends nothing valid)
    context = chromium.new_context(viewport={"width": 320, "height": 800}, bypass_csp=True)
    page = context.new_page()
    try:
        login(realnet, page, "+7 912 200-00-03")
        problems: list[str] = []
        refusals = {"bt-knap": lambda: [page.check(f"#ch-bt-knap-{iid}") for iid in "abc"],
                    "bt-cumul": lambda: [page.fill("#pt-bt-cumul-a", "6"), page.fill("#pt-bt-cumul-b", "5")],
                    "bt-rank": lambda: page.select_option("#rank-3", "bt-rank-a")}
        for campaign_id, refuse in refusals.items():
            page.goto(f"{realnet.gateway_url}/c/{campaign_id}/d/{DISTRICT}")
            for state in ("blank", "refused"):
                if state == "refused":
                    refuse()
                    submit(page)
                    assert NO_VOTE_SENT in text(page), campaign_id
                found = run_axe(page, axe)
                problems += [f"{campaign_id} {state}: {line}" for line in
                             describe(found["violations"]) + describe(found["incomplete"])]
        assert not problems, "\n".join(problems)
    finally:
        context.close()
