"""The http SMS provider against a fake provider on loopback, and config validation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.config import load_config
from gateway.errors import ConfigError, SmsError
from gateway.sms import HttpProvider
from tests.gateway.harness import PHONE, Keys, gateway_world, genesis_document, write_gateway_home


class FakeProvider:
    """Answers with the scripted statuses in order (then 200); 'slow' sleeps past the client timeout."""

    def __init__(self, script: list[int | str]) -> None:
        self.script = list(script)
        self.received: list[tuple[dict[str, Any], str | None]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.json(), request.headers.get("X-Api-Key")))
        step = self.script.pop(0) if self.script else 200
        if step == "slow":
            await asyncio.sleep(0.8)          # past the client's 0.5 s timeout
            step = 200
        return web.json_response({"ok": step == 200}, status=int(step))

    async def __aenter__(self) -> "FakeProvider":
        app = web.Application()
        app.router.add_post("/send", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/send"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def test_http_provider_retries_with_backoff_then_delivers() -> None:
    async def scenario() -> None:
        async with FakeProvider([503, 500, "slow"]) as fake:
            provider = HttpProvider(fake.url, "secret-key", timeout_s=0.5, retries=3, backoff_s=0.01)
            try:
                await provider.send(PHONE, "code 123456")
            finally:
                await provider.close()
            assert len(fake.received) == 4
            body, key = fake.received[-1]
            assert body == {"to": PHONE, "text": "code 123456", "sender": "Veche"} and key == "secret-key"

    asyncio.run(scenario())


def test_http_provider_does_not_retry_a_client_error_and_gives_up_after_retries() -> None:
    async def scenario() -> None:
        async with FakeProvider([400]) as fake:
            provider = HttpProvider(fake.url, "k", retries=3, backoff_s=0.01)
            with pytest.raises(SmsError):
                await provider.send(PHONE, "x")
            await provider.close()
            assert len(fake.received) == 1
        async with FakeProvider([503, 503, 503]) as fake:
            provider = HttpProvider(fake.url, "k", retries=2, backoff_s=0.01)
            with pytest.raises(SmsError):
                await provider.send(PHONE, "x")
            await provider.close()
            assert len(fake.received) == 3

    asyncio.run(scenario())


def test_http_provider_needs_https_off_loopback() -> None:
    with pytest.raises(ConfigError):
        HttpProvider("http://sms.example.org/send", "k")
    with pytest.raises(ConfigError):
        HttpProvider("https://sms.example.org/send", "")


def test_gateway_logs_in_through_the_http_provider(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeProvider([502]) as fake:
            (tmp_path / "gateway").mkdir()
            (tmp_path / "gateway" / "sms-api-key").write_text("topsecret\n")
            sms = {"provider": "http", "url": fake.url, "api_key_file": "sms-api-key", "api_key_header": "X-Api-Key",
                   "sender": "VolgaVote", "retries": 0}
            async with gateway_world(tmp_path, overrides={"sms": sms}) as world:
                citizen = world.client()
                try:
                    await citizen.get("/login")
                    status, page = await citizen.post("/login", {"phone": PHONE})
                    assert status == 502 and "Не удалось отправить СМС" in page
                    status, page = await citizen.post("/login", {"phone": PHONE})   # no cooldown after a failure
                    assert status == 200 and 'name="code"' in page
                    body, key = fake.received[-1]
                    assert key == "topsecret" and body["sender"] == "VolgaVote" and body["to"] == PHONE
                    code = body["text"].split("голосования ")[1][:6]
                    status, page = await citizen.post("/login/code", {"code": code})
                    assert status == 200 and "Вы вошли по номеру телефона" in page
                    assert world.outbox() == []
                finally:
                    await citizen.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("overrides, message", [
    ({"sms": {"provider": "carrier-pigeon"}}, "sms.provider"),
    ({"sms": {"provider": "http"}}, "sms.url"),
    ({"sms": {"provider": "outbox", "allowed_prefixes": ["79"]}}, "allowed_prefixes"),
    ({"sms": {"provider": "outbox", "allowed_regions": ["XX"]}}, "allowed_regions"),
    ({"sms": {"provider": "outbox", "allowed_regions": []}}, "allowed_regions"),
    ({"sms": {"provider": "outbox", "colour": "red"}}, "unknown keys in sms"),
    ({"limits": {"sms_per_ip": 5}}, "limits.sms_per_ip"),
    ({"limits": {"sms_per_ip": {"count": 0, "seconds": 1}}}, "limits.sms_per_ip.count"),
    ({"limits": {"code_tries": -1}}, "limits.code_tries"),
    ({"limits": {"typo": 1}}, "unknown keys in limits"),
    ({"default_lang": "de"}, "default_lang"),
    ({"commit_wait_seconds": "soon"}, "commit_wait_seconds"),
    ({"display_utc_offset_minutes": 5000}, "display_utc_offset_minutes"),
    ({"tls": "yes"}, "tls"),
    ({"surprise": True}, "unknown keys"),
    ({"nodes": []}, "nodes"),
])
def test_config_mistakes_name_the_key(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    keys = Keys()
    write_gateway_home(tmp_path, keys, genesis_document(keys), ["http://127.0.0.1:1"], overrides)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert message in caught.value.message


def test_config_defaults(tmp_path: Path) -> None:
    keys = Keys()
    write_gateway_home(tmp_path, keys, genesis_document(keys), ["http://127.0.0.1:1/"], {})
    raw = json.loads((tmp_path / "config.json").read_text())
    for key in ("form_min_seconds", "trusted_proxy_header", "resubmit_seconds", "commit_wait_seconds"):
        raw.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(raw))
    config = load_config(tmp_path)
    assert config.nodes == ("http://127.0.0.1:1",)
    assert config.form_min_seconds == 1.0 and config.trusted_proxy_header is None and config.commit_wait_seconds == 10
    assert config.sms.provider == "outbox" and config.outbox_path == tmp_path.resolve() / "sms-outbox.jsonl"
    assert config.limits.code_tries == 3 and config.limits.code_ttl_seconds == 300
    assert config.secret_file == tmp_path.resolve() / "gateway-secret.key"


def test_http_provider_leaves_a_shared_session_open() -> None:
    async def scenario() -> None:
        session = aiohttp.ClientSession()
        provider = HttpProvider("https://sms.example.org/send", "k", session=session)
        await provider.close()
        assert not session.closed
        await session.close()

    asyncio.run(scenario())
