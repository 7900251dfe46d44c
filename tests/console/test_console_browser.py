"""Formation, review, vote and progress through the operator consoles, in real Chromium, on a real network.

Four validators, an observer and the gateway run as processes; the committee has three keys, two of
which sign each decision; four consoles run as processes, each with its own key and node: two
committee members (on different validators, so their signing requests travel between nodes), the
operator of Volgograd and the operator of Volzhsky. Driven as people would, in headless Chromium:

* a committee member creates the campaign in the wizard (districts and the gateway's certification key
  copied from last year's campaign; a too-short key is refused first), another co-signs it;
* the Volgograd operator — with JavaScript off, at 320 px — submits an initiative with an estimate PDF
  and two photos, and a second one;
* bad input is refused with a message on the page and nothing is sent: a document over the cap, a
  file of the wrong type, a cost over the cap (also shown live with JavaScript on), another district;
* the committee approves one initiative through the nodes and rejects the other through a request
  file passed between consoles; an altered file and an expired request are refused;
* a citizen votes on the gateway with a key of their own (the wizard's certification key at work); the
  committee closes the campaign; the winner's operator reports
  progress with a photo; Volzhsky's operator cannot report on Volgograd's initiative;
* the citizen's initiative page shows the documents (hash-checked) and the signed timeline, and the
  results link it; the observer serves the same documents under the same hashes.

Then every console page visited is checked: ≤ 60 KB with its assets, no sideways scrolling at 320 px,
and usable with JavaScript off.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser, BrowserContext, Page

from chain.crypto import read_key_file, sha256
from chain.documents import decode_manifest
from chain.tx import CampaignClose
from gateway.cli import gateway_group
from genesis.testnet import init_testnet
from node.cosign.request import SigningRequest
from tests.console.consolekit import ConsoleProcess
from tests.docfiles import TINY_JPEG, pdf_bytes, png_bytes
from tests.gateway.realnet import RealNet
from tests.node.netkit import free_base_port, get_json, http_get, http_post, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CAMPAIGN = "gorod-2027"
CAP = 1_500_000                  # limits.document_max_bytes of every node here
VOTING_IN_S = 60                 # the submission window: campaign, initiatives and reviews fit in it
PAGE_LIMIT = 60 * 1024
MSK = timezone(timedelta(hours=3))
PHONE = "+7 912 555-00-01"


@dataclass
class Story:
    net: RealNet
    consoles: dict[str, ConsoleProcess]
    contexts: dict[str, BrowserContext] = field(default_factory=dict)
    pages: dict[str, Page] = field(default_factory=dict)
    visited: dict[str, set[str]] = field(default_factory=dict)   # console → paths seen

    def node(self, name: str) -> str:
        return next(n.api_url for n in self.net.layout.nodes if n.name == name)

    def open(self, chromium: Browser, who: str, *, js: bool = True, width: int = 1280) -> Page:
        context = chromium.new_context(viewport={"width": width, "height": 900}, java_script_enabled=js)
        page = context.new_page()
        console = self.consoles[who]
        page.on("framenavigated", lambda frame: self.visited.setdefault(who, set()).add(
            frame.url.removeprefix(console.url)) if frame.url.startswith(console.url) and frame == page.main_frame
            else None)
        page.goto(console.login_url)
        assert page.url.rstrip("/") == console.url, page.url
        self.contexts[who], self.pages[who] = context, page
        return page


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, chromium: Browser) -> Iterator[Story]:
    root = tmp_path_factory.mktemp("console-story")
    layout = init_testnet(root / "net", validators=4, observers=1, base_port=free_base_port(7), demo=True,
                          committee=3, threshold=2)
    for node in layout.nodes:
        path = node.home / "config.json"
        config = json.loads(path.read_text())
        config["limits"] = {"document_max_bytes": CAP}
        path.write_text(json.dumps(config))
    net = RealNet(layout)
    keys = layout.directory / "keys"
    url = {node.name: node.api_url for node in layout.nodes}
    consoles = {
        "c0": ConsoleProcess(keys / "committee-0.json", [url["validator-0"]], root / "consoles"),
        "c1": ConsoleProcess(keys / "committee-1.json", [url["validator-2"]], root / "consoles"),
        "volgograd": ConsoleProcess(keys / "district-volgograd.json", [url["validator-1"], url["validator-0"]],
                                    root / "consoles"),
        "volzhsky": ConsoleProcess(keys / "district-volzhsky.json", [url["validator-3"]], root / "consoles"),
    }
    told = Story(net, consoles)
    try:
        net.start(gateway_overrides={"form_min_seconds": 0})
        for console in consoles.values():
            console.start()
        yield told
    finally:
        for context in told.contexts.values():
            context.close()
        for console in consoles.values():
            console.stop()
        net.stop()


# --- helpers ------------------------------------------------------------------------------------------


def submit(page: Page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def message(page: Page) -> str:
    return page.locator("#message").inner_text() if page.locator("#message").count() else ""


def local(moment: datetime) -> str:
    return moment.astimezone(MSK).strftime("%Y-%m-%dT%H:%M:%S")


def initiatives(story: Story) -> list[dict[str, object]]:
    return list(get_json(f"{story.node('validator-0')}/api/v1/campaigns/{CAMPAIGN}")["initiatives"])


def provisional_uploads(story: Story) -> int:
    return sum(int(get_json(story.node(n) + "/api/v1/documents")["provisional"]) for n in ("validator-0", "validator-1"))


def open_request(story: Story, who: str, signing_hash: str) -> Page:
    """A member opens a request in the list (it reaches their node through the other nodes)."""
    page = story.pages[who]
    console = story.consoles[who]

    def listed() -> bool:
        page.goto(console.url + "/requests")
        return signing_hash in page.content()
    wait_for(listed, 30, f"request {signing_hash[:12]} in {who}'s list", interval=0.5)
    page.click(f'a[href$="/requests/{signing_hash}"]')
    page.wait_for_load_state()
    return page


def co_sign(story: Story, who: str, signing_hash: str) -> Page:
    page = open_request(story, who, signing_hash)
    assert page.locator("#signing-hash").inner_text() == signing_hash
    submit(page, 'form[action$="/sign"] button')
    assert page.locator("h1").inner_text() == "Готово", page.inner_text("main")
    return page


def prepared_hash(page: Page) -> str:
    found = re.search(r"/requests/([0-9a-f]{64})", page.url)
    assert found, page.url
    return found.group(1)


def new_initiative(page: Page, console: ConsoleProcess, *, title: str, cost: str,
                   estimate: tuple[str, bytes, str], photos: list[tuple[str, bytes, str]]) -> None:
    page.goto(f"{console.url}/initiatives/new?campaign={CAMPAIGN}")
    page.fill("#title", title)
    page.select_option("#category", "parks")
    page.fill("#cost", cost)
    page.fill("#summary", f"{title}: скамейки, освещение, дорожки.")
    page.set_input_files("#estimate", files=[{"name": estimate[0], "mimeType": estimate[2], "buffer": estimate[1]}])
    page.set_input_files("#photos", files=[{"name": n, "mimeType": t, "buffer": b} for n, b, t in photos])
    submit(page, 'form[action="/initiatives/new"] button[type="submit"]')


# --- the story ------------------------------------------------------------------------------------------


def test_formation_review_vote_and_progress_through_the_consoles(story: Story, chromium: Browser) -> None:
    started = time.monotonic()
    net = story.net
    c0 = story.open(chromium, "c0")
    c1 = story.open(chromium, "c1")
    district = story.open(chromium, "volgograd", js=False, width=320)
    live = story.open(chromium, "volzhsky")

    # 1. the campaign, from the wizard: districts and budgets copied from last year's campaign
    now = datetime.now(timezone.utc)
    voting_start = now + timedelta(seconds=VOTING_IN_S)
    c0.goto(story.consoles["c0"].url + "/campaigns/new")
    c0.fill("#campaign_id", CAMPAIGN)
    c0.fill("#title", "Городская кампания 2027")
    c0.select_option("#source", "ib-2027")
    submit(c0, 'button[value="load"]')
    copied = c0.input_value("#districts").splitlines()
    assert len(copied) == 38 and copied[0].startswith("volgograd;")
    # the certification key came along (the field was empty), and the page says so; it is the one the
    # gateway operator prints (`veche gateway certification-key`)
    printed = CliRunner().invoke(gateway_group, ["certification-key", "--home", str(net.layout.directory / "gateway"),
                                                 "--json"])
    assert printed.exit_code == 0, printed.output
    gateway_key = json.loads(printed.stdout)
    assert gateway_key["certification_key"] == get_json(f"{story.node('validator-0')}/api/v1/campaigns/ib-2027")[
        "campaign"]["certification_key"]
    assert c0.input_value("#certification_key") == gateway_key["certification_key"]
    assert "ib-2027" in c0.inner_text("#notice") and "отпечаток" in c0.inner_text("#notice")
    c0.fill("#districts", "\n".join(line for line in copied if line.split(";")[0] in ("volgograd", "volzhsky")))
    c0.fill("#min_cost", "10000")
    c0.fill("#max_cost", "3000000")
    c0.fill("#categories", "parks\nplaygrounds")
    c0.fill("#submission_start", local(now - timedelta(hours=1)))
    c0.fill("#submission_end", local(voting_start))
    c0.fill("#voting_start", local(voting_start))
    c0.fill("#voting_end", local(now + timedelta(hours=2)))
    c0.fill("#certification_key", format((1 << 2047) | 1, "x"))      # a 2048-bit number: refused, nothing made
    submit(c0, 'button[value="preview"]')
    assert "2048 бит" in message(c0) and "от 3072 до 4096" in message(c0) and c0.locator("#signing-hash").count() == 0
    c0.fill("#certification_key", "\n".join(gateway_key["certification_key"][i:i + 64]     # as a mail wraps it
                                             for i in range(0, len(gateway_key["certification_key"]), 64)))
    submit(c0, 'button[value="preview"]')
    assert c0.locator("#voter-held").inner_text().startswith("да")
    assert c0.inner_text("#certification-fingerprint") == gateway_key["sha256"]
    rules = c0.locator("#rules").inner_text()
    assert "выбор одного" in rules and "больше всего голосов" in rules and "10\u00a0000\u00a0₽ – 3\u00a0000\u00a0000\u00a0₽" in rules
    document = json.loads(c0.locator("#campaign-json").inner_text())
    assert document["campaign_id"] == CAMPAIGN and [d["district_id"] for d in document["districts"]] == [
        "volgograd", "volzhsky"]
    assert document["certification_key"] == gateway_key["certification_key"]
    download = story.contexts["c0"].request.get(story.consoles["c0"].url + c0.locator("a[download]").first
                                                .get_attribute("href"))
    assert json.loads(download.body()) == document          # the file `veche campaign create` takes
    submit(c0, 'form[action="/campaigns/new/prepare"] button')
    create_hash = prepared_hash(c0)
    assert "передано через узлы сети" in c0.inner_text("main")
    page = open_request(story, "c1", create_hash)          # the other member, on another validator
    assert f"CREATE CAMPAIGN {CAMPAIGN}" in page.locator("#summary").inner_text()
    assert '"campaign_id": "gorod-2027"' in page.locator("#body-json").inner_text()
    assert page.locator("#signature-count").inner_text() == "1 из 2"
    submit(page, 'form[action$="/sign"] button')
    assert page.locator("h1").inner_text() == "Готово"
    wait_for(lambda: http_get(f"{story.node('validator-1')}/api/v1/campaigns/{CAMPAIGN}")[0] == 200, 30,
             "the campaign on the district operator's node")
    created = get_json(f"{story.node('validator-1')}/api/v1/campaigns/{CAMPAIGN}")
    assert created["campaign"]["certification_key"] == gateway_key["certification_key"] and created["voter_held"]

    # 2. the Volgograd operator (no JavaScript, 320 px) submits two initiatives with documents
    estimate, photo_1, photo_2 = pdf_bytes(40_000, "Смета парка"), png_bytes(8, 6), TINY_JPEG + b"photo 2"
    new_initiative(district, story.consoles["volgograd"], title="Парк у реки", cost="1 250 000",
                   estimate=("смета парка.pdf", estimate, "application/pdf"),
                   photos=[("фото 1.png", photo_1, "image/png"), ("фото 2.jpg", photo_2, "image/jpeg")])
    assert district.locator("h1").inner_text() == "Готово", district.inner_text("main")
    assert "ждёт рассмотрения" in district.inner_text("main")
    new_initiative(district, story.consoles["volgograd"], title="Фонтан на площади", cost="2 000 000",
                   estimate=("смета фонтана.pdf", pdf_bytes(9_000, "Фонтан"), "application/pdf"), photos=[])
    assert district.locator("h1").inner_text() == "Готово"
    wait_for(lambda: len(initiatives(story)) == 2, 30, "both initiatives on validator-0")
    by_title = {str(i["title"]): i for i in initiatives(story)}
    park, fountain = str(by_title["Парк у реки"]["initiative_id"]), str(by_title["Фонтан на площади"]["initiative_id"])
    manifest_hash = str(by_title["Парк у реки"]["document_hash"])
    district.goto(story.consoles["volgograd"].url + "/initiatives")
    assert district.locator(".status-submitted").count() == 2 and "на рассмотрении" in district.inner_text("main")

    # 3. bad input: a clear message on the page, and nothing sent (no initiative, no upload)
    count, uploads = len(initiatives(story)), provisional_uploads(story)
    new_initiative(district, story.consoles["volgograd"], title="Слишком большая смета", cost="100 000",
                   estimate=("огромная.pdf", pdf_bytes(CAP + 100_000), "application/pdf"), photos=[])
    assert "может быть не больше 1,4 МБ" in message(district) and "Ничего не отправлено" in message(district)
    new_initiative(district, story.consoles["volgograd"], title="Не та смета", cost="100 000",
                   estimate=("смета.pdf", png_bytes(), "application/pdf"), photos=[])
    assert "не файл PDF" in message(district)
    new_initiative(district, story.consoles["volgograd"], title="Не те фото", cost="100 000",
                   estimate=("смета.pdf", pdf_bytes(), "application/pdf"),
                   photos=[("фото.png", b"GIF89a" + bytes(100), "image/png")])
    assert "не фотография JPEG, PNG или WebP" in message(district)
    new_initiative(district, story.consoles["volgograd"], title="Дорогой парк", cost="5 000 000",
                   estimate=("смета.pdf", pdf_bytes(), "application/pdf"), photos=[])
    assert "вне пределов кампании" in message(district)
    assert district.input_value("#title") == "Дорогой парк"            # what was typed is kept
    live_page = story.contexts["volzhsky"].new_page()   # JavaScript on: the caps are checked while typing
    live_page.goto(f"{story.consoles['volzhsky'].url}/initiatives/new?campaign={CAMPAIGN}")
    live_page.fill("#cost", "5 000 000")
    assert live_page.locator("#cost-check").inner_text() == "Больше максимума кампании"
    live_page.fill("#cost", "50 000")
    assert live_page.locator("#cost-check").inner_text() == "В пределах кампании"
    live_page.close()
    # Volzhsky's operator tries to submit for Volgograd (a select option rewritten in the page)
    live.goto(f"{story.consoles['volzhsky'].url}/initiatives/new?campaign={CAMPAIGN}")
    live.evaluate("document.querySelector('#district_id option').value = 'volgograd'")
    live.fill("#title", "Чужой район")
    live.fill("#cost", "100 000")
    live.set_input_files("#estimate", files=[{"name": "s.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes()}])
    submit(live, 'form[action="/initiatives/new"] button[type="submit"]')
    assert "не может подать инициативу от района volgograd" in message(live)
    assert len(initiatives(story)) == count and provisional_uploads(story) == uploads

    # 4. review: approve through the nodes, reject through a file passed between the consoles
    c0.goto(story.consoles["c0"].url + "/review")
    assert "Парк у реки" in c0.inner_text("main") and "Фонтан на площади" in c0.inner_text("main")
    c0.click(f'a[href*="/initiatives/{CAMPAIGN}/{park}"]')
    c0.wait_for_load_state()
    assert c0.locator("ul.docs li").count() == 3 and "смета парка.pdf" in c0.inner_text("main")
    submit(c0, f'form[action="/review/{CAMPAIGN}/{park}"] button')
    co_sign(story, "c1", prepared_hash(c0))
    c0.goto(f"{story.consoles['c0'].url}/initiatives/{CAMPAIGN}/{fountain}")
    c0.check("#reject")
    c0.fill("#reason", "вне полномочий муниципалитета")
    submit(c0, f'form[action="/review/{CAMPAIGN}/{fountain}"] button')
    reject_hash = prepared_hash(c0)
    request_file = story.contexts["c0"].request.get(f"{story.consoles['c0'].url}/requests/{reject_hash}.json").body()
    signed = json.loads(request_file)
    altered = dict(signed, body=signed["body"].replace(b"\xd0\xb2\xd0\xbd\xd0\xb5".hex(), b"\xd0\xb2\xd0\xbd\xd0\xb8".hex()))
    assert altered["body"] != signed["body"]
    c1.goto(story.consoles["c1"].url + "/requests")
    c1.set_input_files("#file", files=[{"name": "req.json", "mimeType": "application/json",
                                        "buffer": json.dumps(altered).encode()}])
    submit(c1, 'form[action="/requests/import"] button')
    assert "изменён или повреждён" in message(c1) and "signing_hash does not match the body" in message(c1)
    c1.goto(story.consoles["c1"].url + "/requests")
    c1.set_input_files("#file", files=[{"name": "req.json", "mimeType": "application/json", "buffer": request_file}])
    submit(c1, 'form[action="/requests/import"] button')
    assert "вне полномочий муниципалитета" in c1.locator("#summary").inner_text()
    submit(c1, 'form[action$="/sign"] button')
    assert c1.locator("h1").inner_text() == "Готово"
    # an expired request: refused in the page, nothing signed
    stale = SigningRequest(net.layout.chain_id, net.layout.genesis_hash, "campaign.close",
                           CampaignClose(CAMPAIGN, "stale request"), 2, [], 0, int(time.time() * 1000),
                           expires_at_ms=int(time.time() * 1000) + 1500)
    stale.add_signature(read_key_file(net.layout.directory / "keys" / "committee-2.json"))
    assert http_post(story.node("validator-2") + "/api/v1/signing-requests", json.dumps(stale.to_json()).encode(),
                     "application/json")[0] == 201
    time.sleep(2)
    c1.goto(f"{story.consoles['c1'].url}/requests/{stale.signing_hash.hex()}")
    assert "Срок запроса на подпись истёк" in message(c1) and c1.locator('form[action$="/sign"]').count() == 0
    def reviewed() -> bool:
        district.goto(story.consoles["volgograd"].url + "/initiatives")
        statuses = district.inner_text("main")
        return "допущена" in statuses and "отклонена: вне полномочий муниципалитета" in statuses
    wait_for(reviewed, 30, "both decisions in the district operator's list")
    print(f"formation and review took {time.monotonic() - started:.0f} s of the {VOTING_IN_S} s window")

    # 5. the vote, on the gateway
    wait_for(lambda: datetime.now(timezone.utc) > voting_start + timedelta(seconds=1), VOTING_IN_S + 10,
             "voting to open", interval=0.5)
    citizen = chromium.new_context(viewport={"width": 320, "height": 900})
    vote = citizen.new_page()
    vote.goto(f"{net.gateway_url}/c/{CAMPAIGN}/d/volgograd")
    vote.fill("#phone", PHONE)
    submit(vote, 'form[action="/login"] button[type="submit"]')
    vote.fill("#code", net.outbox_code(PHONE))
    submit(vote, 'form[action="/login/code"] button[type="submit"]')
    assert vote.locator(f'input[name="choice"][value="{park}"]').count() == 1, vote.inner_text("main")
    vote.check(f'input[name="choice"][value="{park}"]')
    # the campaign names the gateway's certification key: the page's script makes the citizen's own key,
    # has it certified blindly and sends the ballot to a node itself
    vote.click('form[action$="/vote"] button[type="submit"]')
    vote.wait_for_selector("#vh-done, #vh-status.err", timeout=90_000)
    assert vote.locator("#vh-done").count() == 1, vote.inner_text("main")
    ballot = get_json(f"{story.node('validator-0')}/api/v1/txs/{vote.inner_text('#tx-hash').strip()}")
    assert ballot["status"] == "committed"
    wait_for(lambda: get_json(f"{story.node('validator-0')}/api/v1/campaigns/{CAMPAIGN}")["ballots_by_mode"] == {
        "gateway-held": 0, "voter-held": 1}, 30, "the voter-held ballot counted on validator-0")

    # 6. the committee closes the campaign; the winner's operator reports progress with a photo
    c0.goto(story.consoles["c0"].url + "/campaigns")
    form = c0.locator(f'form[action="/campaigns/{CAMPAIGN}/close"]')
    form.locator('input[name="reason"]').fill("голосование завершено досрочно по решению комиссии")
    with c0.expect_navigation():
        form.locator("button").click()
    co_sign(story, "c1", prepared_hash(c0))
    wait_for(lambda: get_json(f"{story.node('validator-0')}/api/v1/campaigns/{CAMPAIGN}/tally")["status"] == "closed",
             30, "the close on validator-0")
    tally = get_json(f"{story.node('validator-0')}/api/v1/campaigns/{CAMPAIGN}/tally")
    assert tally["winners"] == [park]
    district.goto(f"{story.consoles['volgograd'].url}/initiatives/{CAMPAIGN}/{park}")
    district.select_option("#stage", "works")
    district.fill("#percent", "30")
    district.fill("#spent", "400 000")
    district.fill("#note", "Начаты работы: дорожки и освещение")
    progress_photo = png_bytes(12, 9, (90, 160, 60))
    district.set_input_files("#photos", files=[{"name": "работы.png", "mimeType": "image/png", "buffer": progress_photo}])
    submit(district, 'form[action$="/progress"] button')
    assert district.locator("h1").inner_text() == "Готово", district.inner_text("main")
    # Volzhsky's operator cannot report on Volgograd's initiative (a form forged in the page)
    live.goto(f"{story.consoles['volzhsky'].url}/initiatives/{CAMPAIGN}/{park}")
    assert live.locator('form[action$="/progress"]').count() == 0
    with live.expect_navigation():
        live.evaluate(f"""() => {{ const f = document.createElement('form'); f.method = 'post';
            f.action = '/initiatives/{CAMPAIGN}/{park}/progress'; f.enctype = 'multipart/form-data';
            for (const [n, v] of [['csrf_token', document.querySelector('input[name=csrf_token]').value],
                                  ['stage', 'done'], ['percent', '100']]) {{
                const i = document.createElement('input'); i.name = n; i.value = v; f.appendChild(i); }}
            document.body.appendChild(f); f.submit(); }}""")
    assert "относится к району volgograd" in message(live)
    progress_url = f"{story.node('validator-0')}/api/v1/campaigns/{CAMPAIGN}/initiatives/{park}"
    wait_for(lambda: len(get_json(progress_url)["progress"]) > 0, 30, "the report on validator-0")
    reports = get_json(progress_url)["progress"]
    assert [r["stage"] for r in reports] == ["works"]
    evidence = str(reports[0]["evidence_hash"])

    # 7. the citizen's initiative page: documents (hash-checked) and the signed timeline; results link it
    link = f'a[href="/c/{CAMPAIGN}/initiatives/{park}"]'

    def results_link_it() -> bool:   # the gateway refreshes a campaign's status every few seconds
        vote.goto(f"{net.gateway_url}/results/{CAMPAIGN}/d/volgograd")
        return vote.locator(link).count() == 1
    wait_for(results_link_it, 30, "the district's results to link the winner", interval=1.0)
    vote.click(link)
    vote.wait_for_load_state()
    text = vote.inner_text("main")
    assert "Документы" in text and "смета парка.pdf" in text and "✓ Список файлов совпадает с хешем" in text
    assert "Подписано: оператор района volgograd" in text and "Начаты работы" in text
    links = [a for a in vote.locator("main a[href^='/documents/']").evaluate_all("l => l.map(a => a.href)")]
    assert len(links) == 4                                # estimate, two photos, the progress photo
    for link in links:
        body = citizen.request.get(link).body()
        assert sha256(body).hex() == link.rsplit("/", 1)[1]
    assert sha256(progress_photo).hex() in " ".join(links)
    citizen.close()

    # 8. the observer serves the same documents under the same hashes
    observer = story.node("observer-0")
    manifest = decode_manifest(get_bytes(observer, manifest_hash))
    wanted = {manifest_hash: None, evidence: None, **{e.sha256.hex(): None for e in manifest.entries}}
    assert {e.sha256.hex() for e in manifest.entries} == {sha256(estimate).hex(), sha256(photo_1).hex(),
                                                          sha256(photo_2).hex()}
    for digest in [*wanted, *(e.sha256.hex() for e in decode_manifest(get_bytes(observer, evidence)).entries)]:
        for node in ("observer-0", "validator-3"):
            assert sha256(get_bytes(story.node(node), digest)).hex() == digest


def get_bytes(base: str, digest: str) -> bytes:
    found: list[bytes] = []

    def served() -> bool:
        status, body = http_get(f"{base}/api/v1/documents/{digest}")
        if status == 200:
            found.append(body)
        return status == 200
    wait_for(served, 30, f"document {digest[:12]} on {base}", interval=0.3)
    return found[-1]


# --- the pages ----------------------------------------------------------------------------------------


def test_console_pages_are_light_narrow_and_work_without_javascript(story: Story, chromium: Browser) -> None:
    """Every console page the story visited: ≤ 60 KB with its assets, no sideways scrolling at 320 px; the
    district operator's whole story above ran with JavaScript off."""
    problems: list[str] = []
    checked = 0
    weights: dict[str, int] = {}
    for who, paths in story.visited.items():
        console = story.consoles[who]
        context = story.contexts[who]
        narrow = context.new_page()
        narrow.set_viewport_size({"width": 320, "height": 800})
        for path in sorted(paths):
            if not path or path.startswith("/login"):
                continue
            response = narrow.goto(console.url + path)
            if response is None or response.status >= 400 or "text/html" not in response.headers.get("content-type", ""):
                continue
            checked += 1
            assets = narrow.evaluate("[...document.querySelectorAll('link[href],script[src],img[src]')]"
                                     ".map(e => e.href || e.src)")
            weight = len(context.request.get(console.url + path).body()) + sum(
                len(context.request.get(asset).body()) for asset in assets)
            weights[f"{who} {path}"] = weight
            if weight > PAGE_LIMIT:
                problems.append(f"{who} {path}: {weight} bytes with its assets")
            scroll, inner = narrow.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                problems.append(f"{who} {path}: {scroll} px wide in a {inner} px window")
        narrow.close()
    heaviest = max(weights, key=weights.__getitem__)
    print(f"{checked} console pages checked; the heaviest with its assets: {heaviest} ({weights[heaviest]} bytes)")
    assert problems == [], "\n".join(problems)
    assert checked >= 12, story.visited
