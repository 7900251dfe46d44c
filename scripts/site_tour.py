"""Tour the citizen site of a demo network: page weights of every page, and 320 px screenshots.

    .venv/bin/python scripts/site_tour.py [--screens DIR] [--votes 3000] [--json]

Starts a demo testnet of real processes on loopback (4 validators and the gateway, Volgograd
oblast demo data: 38 districts), casts ``--votes`` ballots through the real signing path (a fresh
key per voter, registered by the gateway key, like ``veche pabulib import --with-votes``) with
one district clearly ahead so that some initiatives pass the campaign's 500-vote threshold and
others do not, votes once as a citizen in Debian's Chromium (phone → SMS code from the outbox →
ballot → receipt), then closes the adult campaign and visits its results.

Prints, for every citizen page: the HTML bytes, the bytes of the assets it loads (the style
sheet), their sum, and the page height at 320 px. With ``--screens DIR`` it saves 320 px
full-page screenshots of the home, ballot, receipt and results pages there.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.crypto import SigningKey, read_key_file  # noqa: E402
from chain.tx import CampaignClose, make_registration, make_vote, sign_tx  # noqa: E402
from tests.gateway.browser import launch_chromium  # noqa: E402
from tests.gateway.realnet import RealNet, get_json, make_realnet  # noqa: E402

ADULT = "ib-2027"
CHILDREN = "ib-deti-2027"
PHONE = "+7 912 555-01-02"
FORM_WAIT_S = 1.1


def post_txs(url: str, raws: list[bytes]) -> dict[str, Any]:
    request = urllib.request.Request(url + "/api/v1/txs", data=msgpack.packb(raws),
                                     headers={"Content-Type": "application/octet-stream"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
    if answer.get("rejected"):
        raise RuntimeError(f"rejected: {answer['rejected'][:3]}")
    return answer


def wait_committed(url: str, tx_hash: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while get_json(f"{url}/api/v1/txs/{tx_hash}")["status"] != "committed":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{tx_hash} not committed")
        time.sleep(0.2)


def ballots_plan(campaign: dict[str, Any], total: int, *, approval: bool) -> list[tuple[str, tuple[str, ...]]]:
    """Votes for a campaign: the first district gets half of them, mostly for two initiatives; the
    others share the rest evenly, so most of them stay under the threshold."""
    by_district: dict[str, list[str]] = {}
    for item in campaign["initiatives"]:
        by_district.setdefault(item["district_id"], []).append(item["initiative_id"])
    districts = [d["district_id"] for d in campaign["campaign"]["districts"] if d["district_id"] in by_district]
    plan: list[tuple[str, tuple[str, ...]]] = []
    first = districts[0]
    for i in range(total // 2):
        ids = by_district[first]
        choice = ids[0] if i % 3 else ids[min(1, len(ids) - 1)]
        plan.append((first, (choice,) if not approval else tuple(sorted({choice, ids[-1]}))))
    rest = districts[1:]
    for i in range(total - len(plan)):
        district = rest[i % len(rest)]
        ids = by_district[district]
        plan.append((district, (ids[(i // len(rest)) % len(ids)],)))
    return plan


def cast(net: RealNet, campaign_id: str, total: int, approval: bool) -> None:
    node = net.node_urls[0]
    chain_id = get_json(node + "/api/v1/status")["chain_id"]
    campaign = get_json(f"{node}/api/v1/campaigns/{campaign_id}", timeout=10)
    gateway_key = read_key_file(net.layout.gateway.key_file)
    plan = ballots_plan(campaign, total, approval=approval)
    for start in range(0, len(plan), 500):
        chunk = plan[start:start + 500]
        keys = [SigningKey.generate() for _ in chunk]
        registration = make_registration(chain_id, gateway_key, campaign_id, [k.public_key for k in keys])
        post_txs(node, [registration.raw])
        wait_committed(node, registration.hash.hex())
        votes = [make_vote(chain_id, key, campaign_id, district, choices) for key, (district, choices)
                 in zip(keys, chunk)]
        post_txs(node, [v.raw for v in votes])
        wait_committed(node, votes[-1].hash.hex())


def close_campaign(net: RealNet, campaign_id: str) -> None:
    node = net.node_urls[0]
    chain_id = get_json(node + "/api/v1/status")["chain_id"]
    keys = [read_key_file(p) for p in net.layout.committee_key_files]
    tx = sign_tx("campaign.close", chain_id, CampaignClose(campaign_id, "голосование завершено"), keys)
    post_txs(node, [tx.raw])
    wait_committed(node, tx.hash.hex())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screens", type=Path, default=None)
    parser.add_argument("--votes", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.screens:
        args.screens.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="veche-tour-") as tmp:
        net = make_realnet(Path(tmp) / "testnet")
        net.start()
        try:
            cast(net, ADULT, args.votes, approval=False)
            cast(net, CHILDREN, max(200, args.votes // 10), approval=True)
            rows = tour(net, args.screens)
        finally:
            net.stop()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    print(f"{'page':<44} {'HTML B':>8} {'assets B':>9} {'total B':>8} {'320px tall':>10}")
    for row in rows:
        print(f"{row['page']:<44} {row['html']:>8} {row['assets']:>9} {row['total']:>8} {row['height']:>10}")


def tour(net: RealNet, screens: Path | None) -> list[dict[str, Any]]:
    gateway = net.gateway_url
    rows: list[dict[str, Any]] = []
    playwright, browser = launch_chromium()
    try:
        context = browser.new_context(viewport={"width": 320, "height": 640})
        page = context.new_page()
        last: dict[str, Any] = {}
        assets_js = ("[...document.querySelectorAll('link[href][rel=stylesheet],script[src],img[src]')]"
                     ".map(e => e.href || e.src)")

        def visit(name: str, shot: str | None = None) -> None:
            response = last["response"]
            html_bytes = len(response.body()) if response is not None else 0
            assets = sum(len(context.request.get(url).body()) for url in page.evaluate(assets_js))
            height = page.evaluate("document.documentElement.scrollHeight")
            rows.append({"page": name, "html": html_bytes, "assets": assets, "total": html_bytes + assets,
                         "height": height})
            if screens is not None and shot is not None:
                page.screenshot(path=str(screens / f"{shot}.png"), full_page=True)

        def go(path: str, name: str, shot: str | None = None) -> None:
            last["response"] = page.goto(gateway + path)
            visit(name, shot)

        def submit(selector: str) -> None:
            time.sleep(FORM_WAIT_S)
            with page.expect_navigation() as navigation:
                page.click(selector)
            last["response"] = navigation.value

        go("/", "home", "home-320")
        go("/login", "login (phone)")
        go(f"/c/{ADULT}/d/volgograd", "ballot, logged out", "ballot-logged-out-320")
        # a citizen logs in and votes
        page.goto(gateway + f"/login?next=/c/{ADULT}/d/volgograd")
        page.fill("#phone", PHONE)
        submit('form[action="/login"] button[type="submit"]')
        visit("login (code)", "code-320")
        page.fill("#code", net.outbox_code(PHONE))
        submit('form[action="/login/code"] button[type="submit"]')
        visit("ballot, logged in", "ballot-320")
        page.check('input[name="choice"]')
        submit('form[action$="/vote"] button[type="submit"]')
        tx_hash = page.inner_text("#tx-hash").strip()
        visit("vote answer")
        deadline = time.monotonic() + 60
        while True:
            go(f"/receipt/{tx_hash}", "receipt", "receipt-320")
            if "учтён" in page.content() or time.monotonic() > deadline:
                break
            time.sleep(1)
            rows.pop()
        go(f"/c/{ADULT}/d/volgograd", "ballot, already voted")
        go(f"/c/{CHILDREN}/d/volgograd", "children's ballot, logged in")
        go(f"/c/{ADULT}/initiatives/volgograd-01", "initiative")
        go("/check", "check")
        go("/verify", "verify")
        go("/dashboard", "dashboard (voting open)")
        go("/transparency", "transparency")
        go(f"/results/{ADULT}", "results (voting open)")
        close_campaign(net, ADULT)
        deadline = time.monotonic() + 30
        while "closed" not in json.dumps(get_json(f"{net.node_urls[0]}/api/v1/campaigns/{ADULT}/tally")):
            if time.monotonic() > deadline:
                raise RuntimeError("close not seen")
            time.sleep(0.3)
        time.sleep(2.5)                                   # the gateway refreshes campaign statuses every 2 s
        go(f"/results/{ADULT}", "results (closed, 38 districts)", "results-320")
        if page.locator('a[href*="/results/ib-2027/d/"]').count():
            go(f"/results/{ADULT}/d/volgograd", "district results (closed)", "district-results-320")
            go(f"/results/{ADULT}/d/frolovsky", "district results, no winner")
        go(f"/c/{ADULT}/d/volgograd", "ballot, closed", "ballot-closed-320")
        go("/dashboard", "dashboard (closed)")
        context.close()
    finally:
        browser.close()
        playwright.stop()
    for row in rows:
        row["page"] = re.sub(r"\s+", " ", row["page"])
    return rows


if __name__ == "__main__":
    main()
