"""Public pages: languages, accessibility basics, no external requests, charts, sizes, headers, cookies."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gateway.site import TEMPLATES, compact_script
from tests.gateway.harness import TX_HASH, gateway_world

PAGES = ["/", "/?q=Север", "/login", "/c/ib-test/d/north", "/c/kids-test/d/south", "/c/ib-test/initiatives/n1",
         "/results", "/results/ib-test", "/results/to-close", "/results/to-close/d/north", "/results/later",
         "/dashboard", "/transparency", "/verify", "/check"]
BALLOT_LIMIT = 30 * 1024
LONG_PROJECTS = 20          # added to the north district's 3 (tests/gateway/harness.py)


class LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        for name, value in attrs:
            if name in ("href", "src", "action", "srcset", "poster", "data") and value is not None:
                self.urls.append(value)


def parse(html: str) -> LinkCollector:
    collector = LinkCollector()
    collector.feed(html)
    return collector


def test_pages_render_in_both_languages_with_only_local_links(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            world.close_campaign("to-close")
            world.gateway.chain.invalidate()
            citizen = world.client()
            try:
                for lang in ("ru", "en"):
                    for path in PAGES:
                        status, html = await citizen.get(path + ("?lang=en" if lang == "en" else ""))
                        assert status == 200, (path, status)
                        assert f'<html lang="{lang}">' in html
                        assert '<a class="skip" href="#main">' in html and '<main id="main"' in html
                        assert '<link rel="stylesheet" href="/static/site.css">' in html
                        page = parse(html)
                        for url in page.urls:
                            assert url.startswith(("/", "#")), (path, url)
                        for tag, attrs in page.tags:
                            assert tag not in ("script", "iframe", "img", "object", "embed"), (path, tag)
                            if tag == "input" and attrs.get("type") not in ("hidden", "submit"):
                                assert attrs.get("id") and f'for="{attrs["id"]}"' in html, (path, attrs)
                            if tag == "form":       # every form posts, but the district filter
                                assert attrs.get("method") == "post" or attrs.get("action") == "/", (path, attrs)
                        forms = html.count('<form method="post"')
                        assert html.count('name="csrf_token"') == forms, path
                        if lang == "en":
                            main = html.split("<main", 1)[1].split("</main>")[0]
                            assert "Голосование" not in main and "голос" not in main, path
                # the language choice sticks in a cookie and in the links
                _, html = await citizen.get("/?lang=en")
                assert 'href="/dashboard?lang=en"' in html
                _, html = await citizen.get("/dashboard")
                assert '<html lang="en">' in html
                _, html = await citizen.get("/?lang=ru")
                assert '<html lang="ru">' in html
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_results_explain_themselves_initiative_timeline_dashboard_and_transparency(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                _, html = await citizen.get("/results/to-close")
                assert "Голосование ещё идёт, итоги появятся после" in html and "<svg" not in html
                _, html = await citizen.get("/results/later")
                assert "Голосование начнётся" in html
                await citizen.login()
                await citizen.vote("to-close", "north", ["c2"])
                world.close_campaign("to-close")
                world.report_progress("to-close", "c2", "contract", 10)
                world.report_progress("to-close", "c2", "works", 70)
                world.gateway.chain.invalidate()
                status, html = await citizen.get("/results/to-close")
                # the summary: totals, the rule in words, each district's winners and money, or why none
                assert status == 200 and "Побеждает проект, набравший больше всего голосов" in html
                assert '<a href="/results/to-close/d/north">Северный</a>' in html and "1 победитель" in html
                assert "1\u00a0100\u00a0000\u00a0₽ из 5\u00a0000\u00a0000\u00a0₽" in html
                assert "Победителя нет. В бюллетене не было проектов." in html
                assert "<text" not in html and html.index("Для специалистов") < html.index("Хеш результата")
                # one page per district: the full ranking and why each project won or lost
                status, html = await citizen.get("/results/to-close/d/north")
                assert status == 200 and html.index("Парковка") < html.index("Фонтан")
                assert "победитель" in html and "единственное место победителя уже занято" in html
                assert "1 проект-победитель: 1\u00a0100\u00a0000\u00a0₽ из бюджета района 5\u00a0000\u00a0000\u00a0₽" in html
                status, html = await citizen.get("/results/to-close/d/east")
                assert status == 404
                # the closed ballot page shows the district's result instead of a form
                _, html = await citizen.get("/c/to-close/d/north")
                assert "Голосование завершено" in html and "Парковка" in html and 'name="choice"' not in html
                assert 'href="/results/to-close/d/north"' in html
                _, html = await citizen.get("/c/to-close/initiatives/c2")
                assert "Ход реализации" in html and "<b>контракт</b>, 10%" in html and "<b>работы</b>, 70%" in html
                _, html = await citizen.get("/c/to-close/initiatives/nope")
                assert "Такого проекта нет" in html
                _, html = await citizen.get("/dashboard")
                assert "Итоги по районам" in html and "По категориям" in html and "1\u00a0100\u00a0000\u00a0₽" in html
                await citizen.get("/login?restart=1")
                await citizen.post("/login", {"phone": "+79161112233", "website": "bot"})
                _, html = await citizen.get("/transparency")
                assert "заполнено скрытое поле (бот)" in html
            finally:
                await citizen.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("certified", [False, True], ids=["gateway-held", "with-the-voter-held-script"])
def test_ballot_page_with_its_css_stays_under_30_kb(tmp_path: Path, certified: bool) -> None:
    """23 projects with long titles and summaries (the demo's largest district has 6): the page, its
    style sheet and — with a certification key, on the logged-in ballot — its script (voter-held keys)
    together stay within 30 KB as served, uncompressed (docs/BENCHMARKS.md "Ballot page weight")."""
    extra = LONG_PROJECTS

    async def scenario() -> None:
        async with gateway_world(tmp_path, extra_initiatives=extra, certified=certified) as world:
            citizen = world.client()
            try:
                await citizen.login()
                status, html = await citizen.get("/c/ib-test/d/north")
                assert status == 200 and html.count('name="choice"') == extra + 3
                assets = [u for u in parse(html).urls if u.startswith("/static/")]
                total = len(html.encode())
                for asset in assets:
                    async with citizen.session.get(world.url + asset) as response:
                        assert response.status == 200
                        total += len(await response.read())
                assert assets == ["/static/site.css"] + (["/static/vote.js"] if certified else [])
                assert total <= BALLOT_LIMIT, total
                print(f"ballot page with {extra + 3} long initiatives and its assets: {total} bytes")
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_a_long_summary_is_cut_on_the_ballot_and_whole_one_tap_away(tmp_path: Path) -> None:
    """The ballot shows the start of a long summary (≤ 160 characters, cut at a word, "…"); the
    project's "Details" link, described by its title, leads to the whole text."""
    async def scenario() -> None:
        async with gateway_world(tmp_path, extra_initiatives=1) as world:
            whole = next(i["summary"] for i in world.genesis.document["initiatives"] if i["initiative_id"] == "x00")
            citizen = world.client()
            try:
                await citizen.login()
                _, html = await citizen.get("/c/ib-test/d/north")
                item = html.split('id="ch-x00"', 1)[1].split("</div>", 1)[0]
                shown = re.findall(r"<p>([^<]*)</p>", item)[-1]
                assert len(whole) > 300 and len(shown) <= 160 and shown.endswith("…")
                assert whole.startswith(shown[:-1]) and whole[len(shown) - 1] == " "
                assert '<a href="/c/ib-test/initiatives/x00" aria-describedby="lb-x00">Подробнее</a>' in item
                assert '<label for="ch-x00" id="lb-x00">' in item
                _, html = await citizen.get("/c/ib-test/initiatives/x00")
                assert f"<p>{whole}</p>" in html
                _, html = await citizen.get("/c/ib-test/d/north")          # a short summary stays whole
                assert "<p>Описание проекта «Сквер у школы».</p>" in html
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_security_headers_and_cookie_flags(tmp_path: Path) -> None:
    async def scenario() -> None:
        for tls in (False, True):
            async with gateway_world(tmp_path / str(tls), overrides={"tls": tls}) as world:
                citizen = world.client()
                try:
                    async with citizen.session.get(world.url + "/login") as response:
                        headers = response.headers
                        cookie = response.headers.getall("Set-Cookie")[0]
                    assert "default-src 'none'" in headers["Content-Security-Policy"]
                    assert "script-src" not in headers["Content-Security-Policy"]
                    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
                    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
                    assert ("Secure" in cookie) is tls
                    async with citizen.session.get(world.url + "/healthz") as response:
                        assert (await response.json())["status"] == "ok"
                finally:
                    await citizen.close()

    asyncio.run(scenario())


def test_session_is_rotated_at_login(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                before = {c.key: c.value for c in citizen.session.cookie_jar}["veche_session"]
                await citizen.post("/login", {"phone": "+79161112233"})
                await citizen.post("/login/code", {"code": world.last_code("+79161112233")})
                after = {c.key: c.value for c in citizen.session.cookie_jar}["veche_session"]
                assert before != after
                assert world.gateway.sessions.get(before) is None
                _, html = await citizen.vote("ib-test", "south", ["s1"])
                assert TX_HASH.search(html)
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_scripts_are_served_without_comments_and_spare_spaces() -> None:
    source = b'// a comment line\n(function () {\n  var s = "a  b // not a comment", t = \'x y\';\n  return s + t;\n})();\n'
    assert compact_script(source) == b'(function(){var s="a  b // not a comment",t=\'x y\';return s+t;})();\n'
    for name, most in (("vote.js", 7500), ("ballot.js", 1000)):
        served = compact_script((TEMPLATES.parent / "static" / name).read_bytes())
        assert b"\n//" not in served and len(served) < most, (name, len(served))
