"""``veche gateway unlock``: an operator clears one citizen's lock-out in the running gateway, through
the loopback admin route with the admin token; audited in the log without the phone number."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.gateway.harness import PHONE, World, gateway_world



async def lock_out(world: World, address: str) -> None:
    citizen = world.client(address)
    try:
        await citizen.get("/login")
        status, _ = await citizen.post("/login", {"phone": PHONE})
        assert status == 200
        code = world.last_code()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        statuses = [(await citizen.post("/login/code", {"code": wrong}))[0] for _ in range(3)]
        assert statuses[-1] == 429
        await citizen.get("/login?restart=1")
        status, page = await citizen.post("/login", {"phone": PHONE})
        assert status == 429, page                     # still locked out from this address
    finally:
        await citizen.close()


async def admin(world: World, body: dict[str, object], token: str | None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token is not None else {})}
    async with aiohttp.ClientSession() as session:
        async with session.post(world.url + "/admin/unlock", json=body, headers=sent) as response:
            return response.status, await response.json()


def test_unlock_route_needs_loopback_without_proxy_headers_and_the_token(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, overrides={"limits": {"sms_resend_seconds": 1}}) as world:
            await lock_out(world, "10.5.5.5")
            token = world.gateway.admin_token
            assert (world.home / "admin-token").read_text().strip() == token
            assert oct((world.home / "admin-token").stat().st_mode & 0o777) == "0o600"
            assert (await admin(world, {"phone": PHONE}, None))[0] == 404
            assert (await admin(world, {"phone": PHONE}, "0" * 64))[0] == 404
            # through a proxy (which also connects from 127.0.0.1): refused even with the token
            assert (await admin(world, {"phone": PHONE}, token, {"X-Real-IP": "203.0.113.9"}))[0] == 404
            assert (await admin(world, {"phone": PHONE}, token, {"X-Test-Client": "127.0.0.1"}))[0] == 404
            status, answer = await admin(world, {"phone": "12345"}, token)
            assert status == 400
            with caplog.at_level(logging.WARNING, logger="veche.gateway.admin"):
                status, answer = await admin(world, {"phone": "8 912 345-67-89"}, token)
            assert status == 200 and answer["lockouts_cleared"] == 1 and answer["sms_limits_cleared"] is False
            audit = [r.getMessage() for r in caplog.records if r.name == "veche.gateway.admin"]
            assert any(f"phone ref {answer['phone_ref']}: 1 lock-out" in line for line in audit), audit
            assert not any("9123456789" in line for line in audit)
            await asyncio.sleep(1.1)                        # the resend cooldown
            citizen = world.client("10.5.5.5")
            try:
                await citizen.login()                       # in again, from the same address
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_unlock_command_reaches_the_running_gateway(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            await lock_out(world, "10.6.6.6")
            config = json.loads((world.home / "config.json").read_text())
            config["listen_port"] = int(world.url.rsplit(":", 1)[1])   # where this in-process gateway listens
            (world.home / "config.json").write_text(json.dumps(config))

            async def command(*args: str) -> tuple[int, str, str]:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "node.cli", "gateway", "unlock", "--home", str(world.home), *args,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                out, err = await process.communicate()
                assert process.returncode is not None
                return process.returncode, out.decode(), err.decode()

            code, out, err = await command("--phone", "not a phone")
            assert code == 2 and "error" in err
            code, out, err = await command("--phone", PHONE, "--sms-limits")
            assert code == 0, err
            assert "1 lock-out/wrong-code entry cleared; SMS cooldown and daily count reset" in out
            citizen = world.client("10.6.6.6")
            try:
                await citizen.login()       # no cooldown wait: --sms-limits reset it
            finally:
                await citizen.close()
            code, out, err = await command("--phone", PHONE)
            assert code == 0 and "0 lock-out/wrong-code entries cleared" in out
        code, out, err = await command("--phone", PHONE)          # the gateway has stopped
        assert code == 3 and "no gateway answers" in err

    asyncio.run(scenario())
