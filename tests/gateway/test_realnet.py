"""End to end with real processes: the gateway's files and logs hold no phone number, and a ballot
still commits when the gateway's first node is killed."""

from __future__ import annotations

import asyncio
import re
import signal
import time

import aiohttp
import pytest

from tests.gateway.realnet import Process, RealNet, get_json

pytestmark = pytest.mark.slow
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM_WAIT_S = 1.05


async def http_vote(net: RealNet, phone: str) -> str:
    """A citizen without a browser: login by SMS code and a vote in the first district of ib-2027."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        base = net.gateway_url

        async def page(method: str, path: str, data: object = None) -> str:
            async with http.request(method, base + path, data=data) as response:
                text = await response.text()
                assert response.status in (200, 202), (path, response.status, text[-600:])
                return text

        home = await page("GET", "/")
        district = re.search(r'href="(/c/ib-2027/d/[^"?]+)"', home).group(1)  # type: ignore[union-attr]
        text = await page("GET", "/login?next=" + district)
        await asyncio.sleep(FORM_WAIT_S)
        text = await page("POST", "/login", {"phone": phone, "csrf_token": CSRF.search(text).group(1)})  # type: ignore[union-attr]
        await asyncio.sleep(FORM_WAIT_S)
        text = await page("POST", "/login/code", {"code": net.outbox_code(phone),
                                                  "csrf_token": CSRF.search(text).group(1)})  # type: ignore[union-attr]
        choice = re.search(r'name="choice" value="([^"]+)"', text).group(1)  # type: ignore[union-attr]
        await asyncio.sleep(FORM_WAIT_S)
        text = await page("POST", district + "/vote", {"choice": choice,
                                                       "csrf_token": CSRF.search(text).group(1)})  # type: ignore[union-attr]
        tx_hash = re.search(r'id="tx-hash">([0-9a-f]{64})<', text).group(1)  # type: ignore[union-attr]
        for _ in range(30):      # counted at once, or "pending — check again" on a busy machine
            if "Ваш голос учтён" in text:
                return tx_hash
            await asyncio.sleep(1)
            async with http.get(f"{base}/receipt/{tx_hash}") as response:
                text = await response.text()
        raise AssertionError(f"ballot {tx_hash} not counted after 30 s")


def test_real_gateway_keeps_no_phone_number_in_its_files_or_logs(realnet: RealNet) -> None:
    phone = "+79267654321"
    tx_hash = asyncio.run(http_vote(realnet, phone))
    assert get_json(f"{realnet.node_urls[0]}/api/v1/txs/{tx_hash}")["status"] == "committed"
    forms = ["79267654321", "9267654321", "926765", "765-43-21", "926 765", "7654321"]
    home = realnet.gateway_home
    files = [p for p in (home / "data").rglob("*") if p.is_file()]
    files += [home / "gateway.log", home / "process.log"]
    assert (home / "gateway.log").stat().st_size > 0
    for path in files:
        raw = path.read_bytes()
        for form in forms:
            assert form.encode() not in raw and form.encode("utf-16-le") not in raw, (path, form)


def test_a_ballot_commits_when_the_gateways_first_node_is_killed(realnet: RealNet) -> None:
    victim = realnet.validators[0]
    assert victim.process is not None
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    try:
        started = time.monotonic()
        tx_hash = asyncio.run(http_vote(realnet, "+79267000001"))
        assert time.monotonic() - started < 30
        assert get_json(f"{realnet.node_urls[1]}/api/v1/txs/{tx_hash}")["status"] == "committed"
    finally:
        victim.stop()
        restarted = Process(victim.name, victim.command, victim.log_path)
        restarted.start()
        realnet.validators[0] = restarted
