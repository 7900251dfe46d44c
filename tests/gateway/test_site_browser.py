"""Every citizen page in real Chromium, as citizens meet it: 320 px and 1280 px, Russian and English.

On each page and ballot state: no sideways scrolling (``scrollWidth <= innerWidth``), no text cut
by an SVG, the state's own texts, nothing requested from elsewhere, every page with its assets
≤ 30 KB, and 0 violations of WCAG 2.1 A/AA by axe-core (loaded into the page). Then the tasks
citizens come for, scripted as clicks at 320 px and counted in page loads from the home page; the
refresh and second submit after a vote; and voting with the keyboard alone. axe's "incomplete"
findings (what it cannot decide by itself) fail the test too: there are none today.

The site is ``tests/gateway/demo_site.py``: the demo's 38 districts, an open, a closed (300
projects) and an upcoming campaign, served by one gateway shared by the whole module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.gateway.browser import describe, run_axe
from tests.gateway.demo_site import CHILDREN, CLOSED, OPEN, UPCOMING, DemoSite

pytestmark = [pytest.mark.browser]
PAGE_LIMIT = 30 * 1024
WIDTHS = (320, 1280)
PHONE = "+7 912 300-00-01"
CODE_STEP_PHONES = {(320, "ru"): "+7 912 301-00-01", (320, "en"): "+7 912 301-00-02",
                    (1280, "ru"): "+7 912 301-00-03", (1280, "en"): "+7 912 301-00-04"}

# page name → (path, Russian text, English text); "{receipt}" is the voter's ballot
PAGES: dict[str, tuple[str, str, str]] = {
    "home": ("/", "Выберите свой район", "Choose your district"),
    "home, filtered": ("/?q=камыш", "Камышинский", "Камышинский"),
    "login": ("/login?restart=1", "Номер мобильного телефона", "Mobile phone number"),
    "login, code step": ("{code}", "Мы отправили СМС с кодом на номер +7", "We sent an SMS with a code to +7"),
    "ballot, logged out": (f"/c/{OPEN}/d/volzhsky", "Как проголосовать", "How to vote here"),
    "ballot, logged in": (f"/c/{OPEN}/d/volzhsky", "Выберите один проект.", "Choose one project."),
    "ballot, already voted": (f"/c/{OPEN}/d/volgograd", "Вы уже проголосовали в этом районе",
                              "You have already voted in this district"),
    "ballot, one project": (f"/c/{CHILDREN}/d/bykovsky", "В бюллетене один проект",
                            "There is one project on this ballot"),
    "ballot, children": (f"/c/{CHILDREN}/d/volgograd", "Отметьте от 1 до 3 проектов", "Tick from 1 to 3 projects"),
    "ballot, closed": (f"/c/{CLOSED}/d/volgograd", "Голосование завершено", "Voting is over"),
    "ballot, upcoming": (f"/c/{UPCOMING}/d/volgograd", "Голосование начнётся", "Voting opens"),
    "receipt": ("{receipt}", "Ваш голос учтён", "Your vote is counted"),
    "results index": ("/results", "Инициативное бюджетирование 2026", "Инициативное бюджетирование 2026"),
    "results": (f"/results/{CLOSED}", "5 победителей", "5 winners"),
    "results, still voting": (f"/results/{OPEN}", "Голосование ещё идёт", "Voting is still open"),
    "district results": (f"/results/{CLOSED}/d/volgograd", "все 5 мест победителей уже заняты",
                         "all 5 winners' places were taken"),
    "district results, no winner": (f"/results/{CLOSED}/d/kamyshin", "Ни один проект не набрал 3 голоса",
                                    "No project reached 3 votes"),
    "district results, money ran out": (f"/results/{CLOSED}/d/danilovsky", "не хватило денег в бюджете",
                                        "not enough money left in the budget"),
    "initiative": (f"/c/{OPEN}/initiatives/volgograd-01", "К проектам района", "Back to the district’s projects"),
    "check": ("/check", "Номер бюллетеня", "Ballot number"),
    "verify": ("/verify", "Для специалистов", "For specialists"),
    "dashboard": ("/dashboard", "Программа в цифрах", "The programme in figures"),
    "transparency": ("/transparency", "Отклонённые попытки", "Blocked attempts"),
    "error": ("/c/no-such/d/volgograd", "Такой кампании нет", "There is no such campaign"),
}
LOGGED_IN = {"ballot, logged in", "ballot, already voted", "ballot, one project", "ballot, children"}
SVG_TEXT_CUT = """() => [...document.querySelectorAll('svg text')].filter(t => {
  const s = t.closest('svg').getBoundingClientRect(), r = t.getBoundingClientRect();
  return r.left < s.left - 0.5 || r.right > s.right + 0.5 || r.top < s.top - 0.5 || r.bottom > s.bottom + 0.5;
}).map(t => t.textContent)"""
STATIC = Path(__file__).resolve().parents[2] / "gateway" / "static"


def selectors(css: str) -> list[str]:
    """Every selector of a style sheet of ours (no nesting but ``@media``, no commas inside a
    selector), without pseudo-classes and pseudo-elements, so ``querySelector`` finds what it styles."""
    found = []
    for rule in css.split("}"):
        head = rule.split("{")[-2] if rule.count("{") else ""
        for selector in head.split(","):
            bare = re.sub(r"::?[a-z-]+(\([^)]*\))?", "", selector).strip().rstrip(">+~ ")
            if bare:
                found.append(bare)
    return found


# style sheets other than site.css (every page links that one) → their selectors
EXTRA_STYLE_SHEETS = {f"/static/{path.name}": selectors(path.read_text(encoding="utf-8"))
                      for path in sorted(STATIC.glob("*.css")) if path.name != "site.css"}
# the rules a page uses from a style sheet it does not link (its content would go unstyled)
UNLINKED_RULES = """sheets => Object.entries(sheets).flatMap(([href, sels]) =>
  document.querySelector(`link[rel=stylesheet][href="${href}"]`) ? [] :
  sels.filter(s => document.querySelector(s)).map(s => href + ' ' + s))"""
CLIPPED = """() => [...document.querySelectorAll('main *')].filter(e => {
  if (e.closest('.sr, .hp')) return false;     // visually hidden on purpose (screen readers, bots)
  const style = getComputedStyle(e);
  return e.scrollWidth > e.clientWidth + 1 && style.overflowX !== 'visible' && e.clientWidth > 0;
}).map(e => e.tagName + '.' + e.className)"""


@dataclass
class Citizen:
    context: BrowserContext
    page: Page
    receipt: str = ""
    requested: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    demo = DemoSite(tmp_path_factory.mktemp("demo-site")).start()
    try:
        yield demo
    finally:
        demo.close()


def new_citizen(chromium: Browser, site: DemoSite, width: int = 320, **options: Any) -> Citizen:
    context = chromium.new_context(viewport={"width": width, "height": 800}, bypass_csp=True, **options)
    citizen = Citizen(context, context.new_page())
    citizen.page.on("request", lambda request: citizen.requested.append(request.url))
    return citizen


def submit(page: Page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def log_in(site: DemoSite, page: Page, phone: str) -> None:
    """From a logged-out ballot page: the phone form on it, then the code from the SMS outbox."""
    page.fill("#phone", phone)
    submit(page, 'form[action="/login"] button[type="submit"]')
    page.fill("#code", site.last_code(phone.replace(" ", "").replace("-", "")))
    submit(page, 'form[action="/login/code"] button[type="submit"]')


@pytest.fixture(scope="module")
def voter(chromium: Browser, site: DemoSite) -> Iterator[Citizen]:
    """A citizen who logged in and voted in Volgograd (adult campaign)."""
    citizen = new_citizen(chromium, site)
    page = citizen.page
    page.goto(f"{site.url}/c/{OPEN}/d/volgograd")
    log_in(site, page, PHONE)
    page.check('input[name="choice"] >> nth=0')
    submit(page, 'form[action$="/vote"] button[type="submit"]')
    citizen.receipt = page.url.removeprefix(site.url)
    assert re.fullmatch(r"/receipt/[0-9a-f]{64}", citizen.receipt), page.url
    try:
        yield citizen
    finally:
        citizen.context.close()


@pytest.fixture(scope="module")
def visitor(chromium: Browser, site: DemoSite) -> Iterator[Citizen]:
    citizen = new_citizen(chromium, site)
    try:
        yield citizen
    finally:
        citizen.context.close()


def page_weight(citizen: Citizen, url: str) -> int:
    """Bytes of the page's HTML and of every asset it links (fetched with the page's cookies)."""
    total = len(citizen.context.request.get(url).body())
    assets = citizen.page.evaluate("[...document.querySelectorAll('link[href],script[src],img[src]')]"
                                   ".map(e => e.href || e.src)")
    return total + sum(len(citizen.context.request.get(asset).body()) for asset in assets)


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_reads_and_passes_axe(site: DemoSite, voter: Citizen, visitor: Citizen, axe: str,
                                              lang: str, width: int) -> None:
    problems: list[str] = []
    for name, (path, ru_text, en_text) in PAGES.items():
        citizen = voter if name in LOGGED_IN or name == "receipt" else visitor
        page = citizen.page
        page.set_viewport_size({"width": width, "height": 800})
        target = path.replace("{receipt}", voter.receipt).replace("{code}", "/login")
        url = site.url + target + ("&" if "?" in target else "?") + f"lang={lang}"
        citizen.requested.clear()
        if path == "{code}":                        # the code step: a phone number sent from the login page
            page.goto(site.url + f"/login?restart=1&lang={lang}")
            page.fill("#phone", CODE_STEP_PHONES[(width, lang)])
            submit(page, 'form[action="/login"] button[type="submit"]')
        else:
            page.goto(url)
        where = f"{name} [{lang}, {width} px]"
        text = page.inner_text("body")
        wanted = ru_text if lang == "ru" else en_text
        if wanted not in text:
            problems.append(f"{where}: no {wanted!r}")
        if page.evaluate("document.documentElement.lang") != lang:
            problems.append(f"{where}: <html lang> is not {lang}")
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if scroll > inner:
            problems.append(f"{where}: {scroll} px wide in a {inner} px window")
        cut = page.evaluate(SVG_TEXT_CUT)
        if cut:
            problems.append(f"{where}: text cut by an SVG: {cut}")
        unstyled = page.evaluate(UNLINKED_RULES, EXTRA_STYLE_SHEETS)
        if unstyled:
            problems.append(f"{where}: uses rules of a style sheet it does not link: {unstyled}")
        if "<" in page.title():
            problems.append(f"{where}: markup in the title {page.title()!r}")
        clipped = page.evaluate(CLIPPED)
        if clipped:
            problems.append(f"{where}: content clipped in {clipped}")
        outside = [u for u in citizen.requested if not u.startswith(site.url + "/")]
        if outside:
            problems.append(f"{where}: requests elsewhere: {outside}")
        if width == WIDTHS[0] and lang == "ru":
            weight = page_weight(citizen, url)
            if weight > PAGE_LIMIT:
                problems.append(f"{where}: {weight} bytes with its assets")
        found = run_axe(page, axe)
        problems += [f"{where}: axe: {line}" for line in describe(found["violations"])]
        # what axe cannot decide (e.g. text over an image or an SVG) must be checked by hand and
        # documented in docs/GATEWAY.md before it is accepted here; today there is none
        problems += [f"{where}: axe could not decide: {line}" for line in describe(found["incomplete"])]
    assert problems == [], "\n".join(problems)


# --- tasks, as clicks at 320 px, counted in page loads from the home page ---------------------------


class LoadCounter:
    def __init__(self, page: Page) -> None:
        self.loads = 0
        page.on("load", self._count)

    def _count(self, _page: Page) -> None:
        self.loads += 1


def start_at_home(chromium: Browser, site: DemoSite) -> tuple[Citizen, LoadCounter]:
    citizen = new_citizen(chromium, site, 320, is_mobile=True, has_touch=True)
    citizen.page.goto(site.url + "/")
    return citizen, LoadCounter(citizen.page)


def click(page: Page, text: str, *, exact: bool = False, within: str = "body") -> None:
    """Click a link or button by its visible text, as a person would; wait if it loads a page."""
    target = page.locator(within).get_by_role("link", name=text, exact=exact).or_(
        page.locator(within).get_by_role("button", name=text, exact=exact)).first
    before = page.url
    target.click()
    page.wait_for_load_state()
    if page.url != before:
        page.wait_for_load_state("load")


def test_task_vote_in_my_district(chromium: Browser, site: DemoSite) -> None:
    citizen, counter = start_at_home(chromium, site)
    page = citizen.page
    try:
        click(page, "Выбрать район", within=".card.adult")           # to the list on the same page
        page.get_by_text("Муниципальные районы и округа").first.click()  # open the group
        click(page, "Иловлинский муниципальный район")
        assert page.get_by_role("heading", name="Иловлинский муниципальный район").is_visible()
        page.get_by_label("Номер мобильного телефона").fill("+7 912 300-00-02")
        click(page, "Получить код и проголосовать")
        assert "+7\u00a0912\u00a0***-**-02" in page.inner_text("main")       # where the code went
        page.get_by_label("Код из СМС (6 цифр)").fill(site.last_code("+79123000002"))
        click(page, "Подтвердить")
        page.locator('input[name="choice"]').first.check()
        click(page, "Проголосовать")
        assert "Ваш голос учтён" in page.inner_text("main")
        assert counter.loads <= 4, counter.loads
    finally:
        citizen.context.close()


def test_task_did_my_initiative_win_and_why_not(chromium: Browser, site: DemoSite) -> None:
    citizen, counter = start_at_home(chromium, site)
    page = citizen.page
    try:
        click(page, "Итоги", exact=True, within="nav")
        click(page, "Инициативное бюджетирование 2026")
        click(page, "Городской округ город-герой Волгоград")
        row = page.get_by_role("row").filter(has_text="Зона отдыха у пруда")
        assert "все 5 мест победителей уже заняты" in row.inner_text()
        row = page.get_by_role("row").filter(has_text="Универсальная спортивная площадка")
        assert "победитель" in row.inner_text()
        assert counter.loads <= 4, counter.loads
    finally:
        citizen.context.close()


def test_task_check_my_vote(chromium: Browser, site: DemoSite, voter: Citizen) -> None:
    citizen, counter = start_at_home(chromium, site)
    page = citizen.page
    try:
        click(page, "Проверить голос", within="nav")
        page.get_by_label("Номер бюллетеня").fill(voter.receipt.removeprefix("/receipt/"))
        click(page, "Проверить", exact=True, within="main")
        assert "Ваш голос учтён" in page.inner_text("main")
        assert counter.loads <= 4, counter.loads
    finally:
        citizen.context.close()


def test_task_how_much_did_my_district_get(chromium: Browser, site: DemoSite) -> None:
    citizen, counter = start_at_home(chromium, site)
    page = citizen.page
    try:
        click(page, "Итоги", exact=True, within="nav")
        click(page, "Инициативное бюджетирование 2026")
        row = page.get_by_role("row").filter(has_text="Даниловский муниципальный район")
        assert "3\u00a0000\u00a0000\u00a0₽ из 5\u00a0000\u00a0000\u00a0₽" in row.inner_text()
        assert counter.loads <= 4, counter.loads
    finally:
        citizen.context.close()


# --- after a vote -----------------------------------------------------------------------------------


def test_refresh_and_second_submit_after_a_vote_show_the_receipt(chromium: Browser, site: DemoSite) -> None:
    citizen = new_citizen(chromium, site, 320)
    page = citizen.page
    statuses: list[int] = []
    page.on("response", lambda response: statuses.append(response.status))
    try:
        page.goto(f"{site.url}/c/{OPEN}/d/kamyshin")
        log_in(site, page, "+7 912 300-00-03")
        page.check('input[name="choice"] >> nth=1')
        submit(page, 'form[action$="/vote"] button[type="submit"]')
        receipt = page.url
        tx_hash = page.inner_text("#tx-hash")
        assert "Ваш голос учтён" in page.inner_text("main")
        page.reload()                                             # refresh: the same receipt, no re-send
        assert page.url == receipt and page.inner_text("#tx-hash") == tx_hash
        page.go_back()                                            # back to the form, and send it again
        page.wait_for_load_state()
        if page.locator('form[action$="/vote"]').count():
            page.check('input[name="choice"] >> nth=2')
            submit(page, 'form[action$="/vote"] button[type="submit"]')
        else:                                                     # the browser re-fetched the page
            assert "Вы уже проголосовали в этом районе" in page.inner_text("main")
            page.goto(f"{site.url}/c/{OPEN}/d/kamyshin")
            click(page, "Ваша квитанция")
        assert page.inner_text("#tx-hash") == tx_hash
        assert all(status < 400 for status in statuses), statuses
    finally:
        citizen.context.close()


def test_a_resent_vote_form_lands_on_the_standing_ballot(chromium: Browser, site: DemoSite) -> None:
    """The form of a ballot page opened before voting, submitted again after the vote (a second tab)."""
    citizen = new_citizen(chromium, site, 1280)
    page = citizen.page
    try:
        page.goto(f"{site.url}/c/{OPEN}/d/mikhaylovka")
        log_in(site, page, "+7 912 300-00-04")
        second_tab = citizen.context.new_page()
        second_tab.goto(f"{site.url}/c/{OPEN}/d/mikhaylovka")
        page.check('input[name="choice"] >> nth=0')
        submit(page, 'form[action$="/vote"] button[type="submit"]')
        first = page.inner_text("#tx-hash")
        second_tab.check('input[name="choice"] >> nth=1')
        submit(second_tab, 'form[action$="/vote"] button[type="submit"]')
        assert second_tab.inner_text("#tx-hash") == first
        assert "Повторный бюллетень не принимается" in second_tab.inner_text("main")
    finally:
        citizen.context.close()


# --- the keyboard alone ------------------------------------------------------------------------------


def tab_to(page: Page, matches: Callable[[dict[str, Any]], bool], limit: int = 120) -> dict[str, Any]:
    """Press Tab until the focused element matches; return what is focused."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused: dict[str, Any] = page.evaluate(
            "() => { const e = document.activeElement; return {tag: e.tagName, id: e.id, type: e.type || '',"
            " text: (e.innerText || e.value || '').trim(), href: e.getAttribute('href') || '',"
            " visible: e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0} }")
        if matches(focused):
            assert focused["visible"], focused
            return focused
    raise AssertionError("never reached with Tab")


def test_voting_with_the_keyboard_alone(chromium: Browser, site: DemoSite) -> None:
    citizen = new_citizen(chromium, site, 1280)
    page = citizen.page
    phone = "+7 912 300-00-05"
    try:
        page.goto(site.url + "/")
        tab_to(page, lambda e: e["text"] == "Выбрать район")
        page.keyboard.press("Enter")                                   # jumps to the district list
        tab_to(page, lambda e: e["tag"] == "SUMMARY" and "Муниципальные" in e["text"])
        page.keyboard.press("Enter")                                   # opens the group
        tab_to(page, lambda e: e["href"].endswith("/d/kalachevsky"))
        with page.expect_navigation():
            page.keyboard.press("Enter")
        tab_to(page, lambda e: e["id"] == "phone")
        page.keyboard.type(phone)
        with page.expect_navigation():
            page.keyboard.press("Enter")                                # submits the phone form
        tab_to(page, lambda e: e["id"] == "code")
        page.keyboard.type(site.last_code("+79123000005"))
        with page.expect_navigation():
            page.keyboard.press("Enter")
        focused = tab_to(page, lambda e: e["type"] == "radio")
        page.keyboard.press("ArrowDown")                                # moves and selects within the group
        page.keyboard.press("Space")
        chosen = page.evaluate("document.activeElement.value")
        tab_to(page, lambda e: e["tag"] == "BUTTON" and e["text"] == "Проголосовать")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "Ваш голос учтён" in page.inner_text("main"), focused
        assert chosen and chosen.startswith("kalachevsky-")
    finally:
        citizen.context.close()


def test_home_page_district_filter_works_without_javascript(chromium: Browser, site: DemoSite) -> None:
    citizen = new_citizen(chromium, site, 320, java_script_enabled=False)
    page = citizen.page
    try:
        page.goto(site.url + "/")
        assert page.locator(f'a[href^="/c/{OPEN}/d/"]').count() == 38
        page.get_by_label("Найдите свой район").fill("урюп")
        click(page, "Найти")
        links = page.locator(f'a[href^="/c/{OPEN}/d/"]')
        assert sorted(links.all_inner_texts()) == ["Городской округ город Урюпинск", "Урюпинский муниципальный район"]
        assert page.get_by_role("link", name="Показать все районы").is_visible()
    finally:
        citizen.context.close()
