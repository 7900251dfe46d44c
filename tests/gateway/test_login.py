"""Steps 1-2: phone numbers, SMS codes, lock-outs, cooldowns and caps — each rule and each bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.errors import PhoneError
from gateway.phone import mask_phone, normalize_phone
from tests.gateway.harness import PHONE, gateway_world


@pytest.mark.parametrize("typed", ["+7 912 345-67-89", "+7 (912) 345-67-89", "8 912 345-67-89", "89123456789",
                                   "9123456789", "7 912 3456789", "+79123456789", "8(912)345.67.89", " 912 345 67 89 "])
def test_russian_mobile_forms_normalise_to_e164(typed: str) -> None:
    assert normalize_phone(typed) == "+79123456789"


@pytest.mark.parametrize("typed, code", [
    ("", "phone_empty"), ("12345", "phone_malformed"), ("+7 912 345 67 8", "phone_malformed"),
    ("+7 812 345-67-89", "phone_prefix"), ("8 812 345 67 89", "phone_prefix"), ("+1 212 555 0100", "phone_prefix"),
    ("+7 912 abc 67 89", "phone_malformed"), ("+7 (912 345 67 89", "phone_malformed"), ("9" * 41, "phone_malformed"),
    ("+7912345678901234", "phone_malformed"), ("٩١٢٣٤٥٦٧٨٩", "phone_malformed"),
    ("+7 912 345-67-89 ext. 5", "phone_malformed"), ("8 800 FLOWERS", "phone_malformed"), ("+7+9123456789", "phone_malformed"),
    ("+7 (912) (345) 67 89", "phone_malformed"), ("+7 499 123-45-67", "phone_prefix"),
])
def test_bad_phone_numbers_are_refused_with_a_reason(typed: str, code: str) -> None:
    with pytest.raises(PhoneError) as caught:
        normalize_phone(typed)
    assert caught.value.code == code


def test_allowed_regions_and_prefixes_are_configurable() -> None:
    assert normalize_phone("+375 29 123 45 67", ("RU", "BY")) == "+375291234567"
    assert normalize_phone("8 912 345-67-89", ("RU", "BY")) == "+79123456789"   # national forms: the first region
    with pytest.raises(PhoneError) as caught:
        normalize_phone("+375 29 123 45 67")
    assert caught.value.code == "phone_prefix"
    with pytest.raises(PhoneError) as caught:                  # Kazakhstan shares +7: not Russia
        normalize_phone("+7 700 123 4567")
    assert caught.value.code == "phone_prefix"
    assert normalize_phone("+7 700 123 4567", ("RU", "KZ")) == "+77001234567"
    with pytest.raises(PhoneError) as caught:                  # a prefix list narrows the regions further
        normalize_phone("+7 912 345-67-89", ("RU",), ("+7999",))
    assert caught.value.code == "phone_prefix"


@pytest.mark.parametrize("e164, shown", [("+79123456789", "+7\u00a0912\u00a0***-**-89"),
                                          ("+375291234567", "+375\u00a029\u00a01**-**-67")])
def test_masked_phone_shows_only_the_start_and_the_last_two_digits(e164: str, shown: str) -> None:
    assert mask_phone(e164) == shown


def test_bad_phone_gets_a_clear_message_and_sends_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                status, page = await citizen.post("/login", {"phone": "+7 812 000-00-00"})
                assert status == 400 and "Принимаются только российские мобильные номера" in page
                status, page = await citizen.post("/login", {"phone": "позвоните мне"})
                assert status == 400 and "Номер не распознан" in page
                assert world.outbox() == []
                status, page = await citizen.get("/login")
                assert 'name="phone"' in page   # still on step 1, nothing changed
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_wrong_codes_lock_out_only_that_phone_and_client_pair(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"limits": {"sms_resend_seconds": 1}}) as world:
            attacker = world.client("10.0.0.7")
            victim = world.client("10.9.9.9")
            try:
                await attacker.get("/login")
                status, _ = await attacker.post("/login", {"phone": PHONE})
                assert status == 200
                code = world.last_code()
                wrong = f"{(int(code) + 1) % 1_000_000:06d}"
                status, page = await attacker.post("/login/code", {"code": wrong})
                assert status == 400 and "Осталось попыток: 2" in page
                status, page = await attacker.post("/login/code", {"code": wrong})
                assert status == 400 and "Осталось попыток: 1" in page
                status, page = await attacker.post("/login/code", {"code": wrong})
                assert status == 429 and "Слишком много неверных кодов" in page
                assert int(attacker.last_headers["Retry-After"]) > 60
                # the right code no longer helps this client, and it cannot ask for a new one
                status, page = await attacker.post("/login/code", {"code": code})
                assert status == 400 and "Сначала запросите код" in page
                world.clock.advance(2)
                await attacker.get("/login?restart=1")
                status, page = await attacker.post("/login", {"phone": PHONE})
                assert status == 429 and "Слишком много неверных кодов" in page
                # the owner of the phone, from elsewhere, is not locked out
                await victim.login(PHONE)
                status, page = await victim.get("/")
                assert "Вы вошли по номеру телефона" in page
            finally:
                await attacker.close()
                await victim.close()

    asyncio.run(scenario())


def test_expired_code_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                await citizen.post("/login", {"phone": PHONE})
                code = world.last_code()
                world.clock.advance(301)
                status, page = await citizen.post("/login/code", {"code": code})
                assert status == 400 and "Срок действия кода истёк" in page
                status, page = await citizen.get("/")
                assert "Вы вошли" not in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_code_format_and_code_without_request(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                status, page = await citizen.post("/login/code", {"code": "123456"})
                assert status == 400 and "Сначала запросите код" in page
                await citizen.post("/login", {"phone": PHONE})
                status, page = await citizen.post("/login/code", {"code": "12ab56"})
                assert status == 400 and "Код — это 6 цифр" in page
                status, page = await citizen.post("/login/code", {"code": "1234567"})
                assert status == 400 and "Код — это 6 цифр" in page
                code = world.last_code()
                status, page = await citizen.post("/login/code", {"code": code[:3] + " " + code[3:]})
                assert status == 200 and "Вы вошли по номеру телефона" in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_resend_cooldown_and_daily_cap_per_phone(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"limits": {"sms_resend_seconds": 60, "sms_phone_daily": 3,
                                                                 "sms_per_phone": {"count": 100, "seconds": 60}}}) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                assert (await citizen.post("/login", {"phone": PHONE}))[0] == 200
                status, page = await citizen.post("/login", {"phone": PHONE})
                assert status == 429 and "Новый можно запросить через" in page
                assert 1 <= int(citizen.last_headers["Retry-After"]) <= 60
                for _ in range(2):
                    world.clock.advance(61)
                    assert (await citizen.post("/login", {"phone": PHONE}))[0] == 200
                world.clock.advance(61)
                status, page = await citizen.post("/login", {"phone": PHONE})
                assert status == 429 and "слишком много кодов" in page
                assert len(world.outbox()) == 3
                other = "+79001112233"
                assert (await citizen.post("/login", {"phone": other}))[0] == 200   # the cap is per phone
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_sms_rate_limits_per_ip_subnet_and_phone(tmp_path: Path) -> None:
    limits = {"sms_per_ip": {"count": 2, "seconds": 3600}, "sms_per_subnet": {"count": 3, "seconds": 3600},
              "sms_per_phone": {"count": 2, "seconds": 3600}, "sms_resend_seconds": 1}
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"limits": limits}) as world:
            first, neighbour, stranger = world.client("10.5.5.1"), world.client("10.5.5.2"), world.client("10.6.0.1")
            try:
                for citizen in (first, neighbour, stranger):
                    await citizen.get("/login")
                assert (await first.post("/login", {"phone": "+79000000001"}))[0] == 200
                assert (await first.post("/login", {"phone": "+79000000002"}))[0] == 200
                status, page = await first.post("/login", {"phone": "+79000000003"})
                assert status == 429 and "Слишком много запросов" in page and "Retry-After" in first.last_headers
                assert (await neighbour.post("/login", {"phone": "+79000000004"}))[0] == 200
                status, _ = await neighbour.post("/login", {"phone": "+79000000005"})   # the /24 is spent
                assert status == 429
                world.clock.advance(2)
                assert (await stranger.post("/login", {"phone": "+79000000001"}))[0] == 200
                world.clock.advance(2)
                status, _ = await stranger.post("/login", {"phone": "+79000000001"})    # that phone is spent
                assert status == 429
                assert len(world.outbox()) == 4
                _, page = await first.get("/transparency")
                assert "лимит запросов с адреса" in page and "лимит запросов с подсети" in page
                assert "лимит СМС на номер" in page
            finally:
                for citizen in (first, neighbour, stranger):
                    await citizen.close()

    asyncio.run(scenario())


def test_code_check_rate_limit_per_ip(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"limits": {"code_per_ip": {"count": 2, "seconds": 3600}}}) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                await citizen.post("/login", {"phone": PHONE})
                code = world.last_code()
                wrong = f"{(int(code) + 7) % 1_000_000:06d}"
                assert (await citizen.post("/login/code", {"code": wrong}))[0] == 400
                assert (await citizen.post("/login/code", {"code": wrong}))[0] == 400
                status, _ = await citizen.post("/login/code", {"code": code})
                assert status == 429 and "Retry-After" in citizen.last_headers
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_a_flood_of_new_sessions_does_not_push_out_a_citizen_mid_login(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"limits": {"max_sessions": 2000}}) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                await citizen.post("/login", {"phone": PHONE})
                sessions = world.gateway.sessions
                for _ in range(5000):                 # what a bot loading /login in a loop creates
                    sessions.new()
                assert len(sessions) <= 2000 + 1000 + 1
                status, page = await citizen.post("/login/code", {"code": world.last_code()})
                assert status == 200 and "Вы вошли по номеру телефона" in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_a_code_is_burned_after_five_wrong_tries_from_any_addresses(tmp_path: Path) -> None:
    """Attempts per secret: spreading guesses over addresses (each under its own lock-out) buys nothing."""
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            attacker = world.client("10.0.0.1")
            try:
                await attacker.get("/login")
                assert (await attacker.post("/login", {"phone": PHONE}))[0] == 200
                code = world.last_code()
                wrong = [f"{(int(code) + k) % 1_000_000:06d}" for k in range(1, 6)]
                answers = []
                for k, guess in enumerate(wrong):           # one guess from each of five addresses
                    status, page = await attacker.post("/login/code", {"code": guess},
                                                       headers={"X-Test-Client": f"10.0.{k}.9"})
                    answers.append(status)
                assert answers == [400, 400, 400, 400, 429]
                assert "этот код больше не действует" in page
                # the right code, from a fresh address, no longer logs in: the code is burned
                status, page = await attacker.post("/login/code", {"code": code}, headers={"X-Test-Client": "10.9.0.9"})
                assert status == 400 and "Сначала запросите код" in page
                _, page = await attacker.get("/")
                assert "Вы вошли" not in page
                _, page = await attacker.get("/transparency")
                assert "код аннулирован после неверных попыток" in page
            finally:
                await attacker.close()

    asyncio.run(scenario())


def test_tries_left_count_the_code_and_the_address(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"limits": {"code_tries": 10}}) as world:
            citizen = world.client()
            try:
                await citizen.get("/login")
                await citizen.post("/login", {"phone": PHONE})
                code = world.last_code()
                wrong = f"{(int(code) + 3) % 1_000_000:06d}"
                status, page = await citizen.post("/login/code", {"code": wrong})
                assert status == 400 and "Осталось попыток: 4" in page
            finally:
                await citizen.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("target", ["/c/ib-test/d/north%0A", "/c/ib-test/d/north%0Aevil", "//evil.example/c/a/d/b",
                                    "/c/ib-test/d/north/../../x", "https://evil.example/c/a/d/b"])
def test_only_plain_district_paths_are_kept_as_next(tmp_path: Path, target: str) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.get(f"/login?next={target}")
                await citizen.login()
                async with citizen.session.get(world.url + "/login", allow_redirects=False) as response:
                    assert response.status in (302, 303)
                    assert response.headers["Location"] in ("/", world.url + "/"), response.headers["Location"]
            finally:
                await citizen.close()

    asyncio.run(scenario())
