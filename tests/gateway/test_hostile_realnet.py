"""Guessing an SMS code against the real gateway process, spreading the tries over many addresses.

Before: the wrong-code lock-out counted per (phone, client address), so 80 wrong guesses from 40
addresses on one pending code were all answered 400 and the right code then logged in. Now each
issued code takes 5 wrong answers in total, from anywhere, and is burned.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from tests.gateway.realnet import RealNet

pytestmark = pytest.mark.slow
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM_WAIT_S = 1.05
GUESSERS = 40
TRIES_PER_CODE = 5


def source(index: int) -> str:
    return f"127.2.{index}.{10 + index}"


async def form_token(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url + "/login") as response:
        text = await response.text()
    found = CSRF.search(text)
    assert found is not None, text[-400:]
    return found.group(1)


async def guess(url: str, cookies: aiohttp.CookieJar, address: str, code: str) -> tuple[int, str]:
    """One try from its own source address, with the attacker's session cookie and a fresh form."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=cookies) as http:
        token = await form_token(http, url)
        await asyncio.sleep(FORM_WAIT_S)
        async with http.post(url + "/login/code", data={"code": code, "csrf_token": token},
                             allow_redirects=False) as response:
            return response.status, await response.text()


def test_guessing_from_many_addresses_ends_with_the_code_burned(realnet: RealNet) -> None:
    phone = "+79267000011"
    url = realnet.gateway_url

    async def attack() -> tuple[list[tuple[int, str]], int, str]:
        cookies = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=cookies) as http:
            token = await form_token(http, url)
            await asyncio.sleep(FORM_WAIT_S)
            async with http.post(url + "/login", data={"phone": phone, "csrf_token": token}) as response:
                assert response.status == 200, await response.text()
        code = realnet.outbox_code(phone)
        wrong = [f"{(int(code) + k) % 1_000_000:06d}" for k in range(1, GUESSERS + 1)]
        # 40 addresses (one /24 each) guess at once, each one try: far under any per-address limit
        answers = await asyncio.gather(*(guess(url, cookies, source(i), wrong[i]) for i in range(GUESSERS)))
        # the right code, from yet another address, after the attack
        status, page = await guess(url, cookies, source(GUESSERS), code)
        return answers, status, page

    answers, final_status, final_page = asyncio.run(attack())
    statuses = [status for status, _ in answers]
    print(f"\nguessing: {GUESSERS} wrong tries from {GUESSERS} addresses -> {sorted(statuses)}; the right code "
          f"afterwards -> {final_status}")
    # five wrong answers were taken (four 400s and the fifth burning it, 429); every later try found no code
    assert statuses.count(429) == 1 and statuses.count(400) == GUESSERS - 1
    assert sum("Неверный код" in page for _, page in answers) == TRIES_PER_CODE - 1
    assert sum("этот код больше не действует" in page for _, page in answers) == 1
    assert sum("Сначала запросите код" in page for _, page in answers) == GUESSERS - TRIES_PER_CODE
    assert final_status == 400 and "Сначала запросите код" in final_page
    assert final_status != 303
