"""The gateway's operator side: /metrics (prometheus-client's parser reads it), /healthz that fails
when no node or the SMS provider answers, SMS failures counted by reason through a real provider
protocol (the fake SMSC.ru), node fail-overs counted."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.ops.metrics import CONTENT_TYPE
from tests.gateway.fakesmsc import FakeSmsc
from tests.gateway.harness import PHONE, World, gateway_world
from tests.paths import REPO_ROOT

Sample = tuple[str, tuple[tuple[str, str], ...]]


async def scrape(world: World) -> tuple[dict[Sample, float], set[str]]:
    citizen = world.client()
    try:
        async with citizen.session.get(world.url + "/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == CONTENT_TYPE
            text = await response.text()
    finally:
        await citizen.close()
    values: dict[Sample, float] = {}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name + ("_total" if family.type == "counter" else ""))
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
            names.add(sample.name)
    return values, names


async def health(world: World) -> tuple[int, dict[str, Any]]:
    citizen = world.client()
    try:
        async with citizen.session.get(world.url + "/healthz") as response:
            return response.status, await response.json()
    finally:
        await citizen.close()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def documented_gateway_metrics() -> set[str]:
    text = (REPO_ROOT / "docs" / "GATEWAY.md").read_text(encoding="utf-8")
    section = text.split("## Monitoring", 1)[1].split("\n## ", 1)[0]
    return {name for line in section.splitlines() if line.startswith("| `veche_")
            for name in re.findall(r"`(veche_[a-z0-9_]+)", line.split("|")[1])}


def smsc_overrides(fake: FakeSmsc) -> dict[str, Any]:
    return {"sms": {"provider": "smsc", "url": fake.url, "api_key_file": "smsc-key", "retries": 1,
                    "timeout_seconds": 0.5, "check_interval_seconds": 0},
            "health_interval_seconds": 0.5}


def test_sms_through_smsc_counted_and_healthz_follows_the_provider(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeSmsc() as fake:
            (tmp_path / "gateway").mkdir()
            (tmp_path / "gateway" / "smsc-key").write_text("smsc-key\n")
            async with gateway_world(tmp_path, overrides=smsc_overrides(fake)) as world:
                await eventually(lambda: _status_is(world, 200), "the gateway to be healthy")
                citizen = world.client()
                try:
                    await citizen.get("/login")
                    status, page = await citizen.post("/login", {"phone": PHONE})
                    assert status == 200 and 'name="code"' in page
                    assert fake.received[-1]["phones"] == PHONE
                    code = re.findall(r"\b(\d{6})\b", fake.received[-1]["mes"])[0]
                    status, page = await citizen.post("/login/code", {"code": code})
                    assert status == 200
                    fake.script = [3]                                   # the account ran out of money
                    other = world.client("10.9.9.9")
                    try:
                        await other.get("/login")
                        status, page = await other.post("/login", {"phone": "+79123450000"})
                        assert status == 502
                    finally:
                        await other.close()
                finally:
                    await citizen.close()
                values, _ = await scrape(world)
                assert values[("veche_gateway_sms_sent_total", (("provider", "smsc"),))] == 1
                assert values[("veche_gateway_sms_failed_total", (("provider", "smsc"), ("reason", "balance")))] == 1
                assert values[("veche_gateway_sms_provider_up", ())] == 1

                port = int(fake.url.rsplit(":", 1)[1])
                await fake.stop()                                       # the provider goes away
                await eventually(lambda: _status_is(world, 503), "/healthz to notice the SMS provider is gone")
                status, document = await health(world)
                assert document["status"] == "unhealthy" and document["sms"]["up"] is False
                assert any("SMS provider smsc unavailable: connection" in reason for reason in document["reasons"])
                assert all(node["up"] for node in document["nodes"].values())
                values, _ = await scrape(world)
                assert values[("veche_gateway_sms_provider_up", ())] == 0 and values[("veche_gateway_healthy", ())] == 0

                await fake.start(port=port)                             # back
                await eventually(lambda: _status_is(world, 200), "/healthz to recover")
                fake.balance = "0.00"
                await eventually(lambda: _status_is(world, 503), "/healthz to notice the empty balance")
                status, document = await health(world)
                assert any("balance" in reason for reason in document["reasons"])

    asyncio.run(scenario())


async def _status_is(world: World, wanted: int) -> bool:
    status, _ = await health(world)
    return status == wanted


def test_healthz_fails_without_nodes_and_failovers_are_counted(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path, nodes=2, overrides={"health_interval_seconds": 0.5,
                                                               "node_timeout_seconds": 1}) as world:
            await eventually(lambda: _status_is(world, 200), "the gateway to be healthy")
            first, second = world.nodes
            await first.stop()
            citizen = world.client()
            try:
                for _ in range(3):
                    status, _ = await citizen.get("/")
                    assert status == 200                            # served through the second node
            finally:
                await citizen.close()
            values, _ = await scrape(world)
            assert values.get(("veche_gateway_node_failovers_total", (("node", first.url),)), 0) >= 1
            await eventually(lambda: _status_is(world, 200), "one node is enough")
            await second.stop()
            await eventually(lambda: _status_is(world, 503), "/healthz to notice no node answers")
            status, document = await health(world)
            assert any(reason.startswith("no node reachable") for reason in document["reasons"])
            values, _ = await scrape(world)
            assert values[("veche_gateway_node_up", (("node", first.url),))] == 0
            await second.start()
            await eventually(lambda: _status_is(world, 200), "/healthz to recover with one node")

    asyncio.run(scenario())


def test_metrics_parse_and_carry_every_documented_name(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login()
                status, page = await citizen.vote("ib-test", "north", ["n1"])
                assert status == 200, page
            finally:
                await citizen.close()
            values, names = await scrape(world)
            documented = documented_gateway_metrics()
            assert documented and not documented - names, f"documented but not exposed: {documented - names}"
            assert values[("veche_gateway_sms_sent_total", (("provider", "outbox"),))] == 1
            assert values[("veche_gateway_ballots_total", (("outcome", "committed"),))] == 1
            assert values[("veche_gateway_unconfirmed_ballots", ())] == 0
            assert values[("veche_gateway_sessions", ())] >= 1
            assert not any(name.endswith("_created") for name in names)

    asyncio.run(scenario())
