"""Form guards: CSRF tokens, honeypot, minimum time on a form, size and time limits, garbage input."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.gateway.harness import PHONE, gateway_world


def test_forged_missing_and_foreign_csrf_tokens_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen, other = world.client(), world.client("10.4.4.4")
            try:
                await citizen.get("/login")
                await other.get("/login")
                issued, nonce, mac = citizen.csrf.split(".")
                forged = issued + "." + nonce + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
                for token in (forged, "", "123", "abc.def", "1.2.3", other.csrf, citizen.csrf + "x",
                              f"{int(issued) + 1}.{nonce}.{mac}", f"{issued}.{nonce}x.{mac}", f"¹{issued}.{nonce}.{mac}",
                              f"٣{issued[1:]}.{nonce}.{mac}"):
                    status, page = await citizen.post("/login", {"phone": PHONE, "csrf_token": token})
                    assert status == 403, token
                    assert "Форма устарела или открыта в другом окне" in page
                status, _ = await citizen.post("/login", [("phone", PHONE), ("csrf_token", citizen.csrf),
                                                          ("csrf_token", citizen.csrf)], csrf=False)
                assert status == 403
                assert world.outbox() == []
                _, page = await citizen.get("/transparency")
                assert "поддельная или устаревшая форма" in page
            finally:
                await citizen.close()
                await other.close()

    asyncio.run(scenario())


def test_post_without_a_session_asks_to_reload(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                status, page = await citizen.post("/login", {"phone": PHONE, "csrf_token": "1.x"})
                assert status == 403 and "cookies" in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_honeypot_is_refused_and_counted_for_the_district(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            bot = world.client()
            try:
                await bot.get("/login?next=/c/ib-test/d/south")
                status, page = await bot.post("/login", {"phone": PHONE, "website": "http://spam.example"})
                assert status == 400 and "похож на автоматический" in page
                assert world.outbox() == []
                _, page = await bot.get("/transparency")
                assert "Южный" in page and "заполнено скрытое поле (бот)" in page
            finally:
                await bot.close()

    asyncio.run(scenario())


def test_forms_sent_faster_than_the_minimum_time_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"form_min_seconds": 1}) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                token = citizen.csrf
                status, page = await citizen.post("/login", {"phone": PHONE, "csrf_token": token})
                assert status == 429 and "слишком быстро" in page
                assert citizen.last_headers["Retry-After"] == "1"
                world.clock.advance(1.2)
                status, _ = await citizen.post("/login", {"phone": PHONE, "csrf_token": token})
                assert status == 200
                # the token is single-use: the time on the form is paid for every POST, not once
                status, page = await citizen.post("/login", {"phone": PHONE, "csrf_token": token})
                assert status == 403 and "Эта форма уже отправлена" in page
                _, page = await citizen.get("/transparency")
                assert "повторная отправка формы" in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_stale_form_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"limits": {"session_ttl_seconds": 86400}}) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                world.clock.advance(5 * 3600)
                status, page = await citizen.post("/login", {"phone": PHONE})
                assert status == 403 and "Форма устарела. Обновите страницу." in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_oversized_garbage_and_wrong_type_bodies(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"limits": {"max_body_bytes": 4096}}) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                status, page = await citizen.post("/login", {"phone": PHONE, "junk": "x" * 10_000})
                assert status == 413 and "слишком большой" in page
                status, page = await citizen.post("/login", {"phone": PHONE, "admin": "1"})
                assert status == 400 and "unexpected field" in page
                status, page = await citizen.post("/login", {"phone": "1" * 2001})
                assert status == 400 and "Форма заполнена неправильно" in page
                status, page = await citizen.post("/login", b'{"phone": "+79123456789"}', csrf=False,
                                                  headers={"Content-Type": "application/json"})
                assert status == 415 and "Неподдерживаемый тип" in page
                status, page = await citizen.post("/login", b"phone=%ff%fe&csrf_token=" + citizen.csrf.encode(),
                                                  csrf=False,
                                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
                assert status == 400
                status, page = await citizen.post("/login", {"phone": "+7912\x0034"})
                assert status == 400
                assert world.outbox() == []
                status, page = await citizen.get("/no/such/page")
                assert status == 404 and "Страница не найдена" in page
                async with citizen.session.delete(world.url + "/login") as response:
                    assert response.status == 405
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_a_client_that_sends_its_body_too_slowly_is_cut_off(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"limits": {"body_read_seconds": 1}}) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                cookie = "; ".join(f"{c.key}={c.value}" for c in citizen.session.cookie_jar)
                host, port = world.url.removeprefix("http://").split(":")
                reader, writer = await asyncio.open_connection(host, int(port))
                body = f"phone=%2B79123456789&csrf_token={citizen.csrf}".encode()
                writer.write(f"POST /login HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n"
                             f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
                             "\r\n".encode() + body[:10])
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(65536), 10)
                writer.close()
                assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
                assert world.outbox() == []
            finally:
                await citizen.close()

    asyncio.run(scenario())
