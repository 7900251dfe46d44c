"""The SMSC.ru adapter against a local fake speaking SMSC.ru's documented protocol."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import ConfigError, SmsError
from gateway.sms import SmscProvider
from tests.gateway.fakesmsc import FakeSmsc
from tests.gateway.harness import PHONE


def provider(fake: FakeSmsc, **options: object) -> SmscProvider:
    settings: dict[str, object] = {"url": fake.url, "timeout_s": 0.5, "retries": 2, "backoff_s": 0.01}
    settings.update(options)
    secret = str(settings.pop("secret", "smsc-key"))
    return SmscProvider(secret, **settings)  # type: ignore[arg-type]


def test_a_message_goes_out_with_the_documented_fields() -> None:
    async def scenario() -> None:
        async with FakeSmsc() as fake:
            sms = provider(fake)
            try:
                await sms.send(PHONE, "Код 123456")
            finally:
                await sms.close()
            assert fake.received == [{"phones": PHONE, "mes": "Код 123456", "sender": ""}]
            kind, form = fake.requests[0]
            assert kind == "send" and form["apikey"] == "smsc-key" and form["fmt"] == "3"
            assert form["charset"] == "utf-8" and "psw" not in form and "login" not in form
        async with FakeSmsc(apikey=None, login="region", password="pa55") as fake:
            sms = provider(fake, login="region", secret="pa55", sender="Veche34")
            try:
                await sms.send(PHONE, "x")
            finally:
                await sms.close()
            assert fake.received[0]["sender"] == "Veche34"
            assert "apikey" not in fake.requests[0][1]

    asyncio.run(scenario())


@pytest.mark.parametrize("script, reason, requests", [
    ([3], "balance", 1),                         # not enough money: final at once
    ([2], "auth", 1),                            # wrong credentials: final
    ([7], "rejected", 1),                        # bad number format: final
    ([8], "rejected", 1),                        # cannot be delivered: final
    ([4], "blocked", 1),                         # address blocked: retrying would prolong it
    ([9, 9, 9], "rate_limited", 3),              # too many requests: retried, then given up
    (["http500", "http500", "http500"], "http_5xx", 3),
    (["garbage", "garbage", "garbage"], "bad_answer", 3),
    (["slow", "slow", "slow"], "timeout", 3),
])
def test_failures_carry_a_reason_and_retry_only_what_may_pass(script: list[int | str], reason: str,
                                                              requests: int) -> None:
    async def scenario() -> None:
        async with FakeSmsc(script=script, slow_s=1.0) as fake:
            sms = provider(fake)
            try:
                with pytest.raises(SmsError) as caught:
                    await sms.send(PHONE, "x")
            finally:
                await sms.close()
            assert caught.value.reason == reason
            assert len(fake.requests) == requests
            assert PHONE not in caught.value.message and "smsc-key" not in caught.value.message
            if "slow" not in script:     # a provider that answers too late may still deliver: that one counts as failed
                assert fake.received == []

    asyncio.run(scenario())


def test_transient_failures_then_delivery() -> None:
    async def scenario() -> None:
        async with FakeSmsc(script=[9, "http500"]) as fake:
            sms = provider(fake)
            try:
                await sms.send(PHONE, "x")
            finally:
                await sms.close()
            assert len(fake.requests) == 3 and len(fake.received) == 1

    asyncio.run(scenario())


def test_a_stopped_provider_is_a_connection_failure() -> None:
    async def scenario() -> None:
        fake = FakeSmsc()
        await fake.start()
        url = fake.url
        await fake.stop()
        sms = SmscProvider("smsc-key", url=url, retries=1, backoff_s=0.01, timeout_s=0.5)
        try:
            with pytest.raises(SmsError) as caught:
                await sms.send(PHONE, "x")
            assert caught.value.reason == "connection"
            with pytest.raises(SmsError) as checked:
                await sms.check()
            assert checked.value.reason == "connection"
        finally:
            await sms.close()

    asyncio.run(scenario())


def test_health_check_reads_the_balance_and_keeps_the_answer() -> None:
    async def scenario() -> None:
        now = [100.0]
        async with FakeSmsc(balance="0.00") as fake:
            sms = provider(fake, check_interval_s=15.0, clock=lambda: now[0])
            try:
                with pytest.raises(SmsError) as caught:
                    await sms.check()
                assert caught.value.reason == "balance" and "0.00" in caught.value.message
                fake.balance = "500.00"
                with pytest.raises(SmsError):
                    await sms.check()                # kept: SMSC.ru refuses > 10 balance requests a minute
                assert sum(1 for kind, _ in fake.requests if kind == "balance") == 1
                now[0] += 16.0
                await sms.check()
                assert sms.balance == 500.0
                fake.apikey = "rotated"
                now[0] += 16.0
                with pytest.raises(SmsError) as refused:
                    await sms.check()
                assert refused.value.reason == "auth"
            finally:
                await sms.close()

    asyncio.run(scenario())


def test_plain_http_only_on_loopback_and_a_secret_is_needed() -> None:
    with pytest.raises(ConfigError):
        SmscProvider("k", url="http://smsc.example.org")
    with pytest.raises(ConfigError):
        SmscProvider("", url="https://smsc.ru")
