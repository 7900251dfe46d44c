"""A gateway wired to fake nodes, plus a scripted citizen, for the gateway's unit tests."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from chain.crypto import SigningKey, write_key_file, write_rsa_key_file
from chain.tx import CampaignClose, ProgressReport, sign_tx
from gateway.app import build_app
from gateway.config import GatewayConfig, load_config
from gateway.site import GATEWAY, Gateway
from genesis.model import Genesis, parse_genesis
from tests.certkey import test_certification_key
from tests.gateway.fakenode import FakeChain, FakeNode

HOUR_MS = 3_600_000
PHONE = "+79123456789"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TX_HASH = re.compile(r'id="tx-hash">([0-9a-f]{64})<')


class FakeClock:
    """Real time plus an adjustable offset (unix milliseconds)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    def advance(self, seconds: float) -> None:
        self.offset_ms += int(seconds * 1000)


def campaign_json(campaign_id: str, title: str, track: str, ballot: dict[str, Any], *, t0: int, voting_start: int,
                  voting_end: int, ballots_per_voter: str = "district", cap: int = 1_000_000,
                  districts: tuple[tuple[str, str], ...] = (("north", "Северный"), ("south", "Южный"))) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id, "title": title, "track": track,
        "districts": [{"district_id": d, "name": n, "budget": 500_000_000} for d, n in districts],
        "ballot": ballot, "rule": {"name": "top-n", "scope": "district", "top_n": 1, "min_votes": 0, "budget": 0},
        "min_cost": 1, "max_cost": 10_000_000_000, "categories": [],
        "submission_start": t0 - HOUR_MS, "submission_end": t0 + 1, "voting_start": voting_start,
        "voting_end": voting_end, "gateway": "gateway", "registration_cap": cap,
        "ballots_per_voter": ballots_per_voter,
    }


def initiative_json(campaign_id: str, initiative_id: str, district_id: str, title: str, cost_rub: int,
                    category: str = "landscaping") -> dict[str, Any]:
    return {"campaign_id": campaign_id, "initiative_id": initiative_id, "district_id": district_id, "title": title,
            "category": category, "cost": cost_rub * 100, "summary": f"Описание проекта «{title}»."}


@dataclass
class Keys:
    validators: list[SigningKey] = field(default_factory=lambda: [SigningKey.generate() for _ in range(4)])
    committee: SigningKey = field(default_factory=SigningKey.generate)
    gateway: SigningKey = field(default_factory=SigningKey.generate)
    other_gateway: SigningKey = field(default_factory=SigningKey.generate)


BALLOT_TYPE_CAMPAIGNS = (   # (campaign id, title, ballot): one campaign per new ballot type, district north
    ("knap", "Бюджет по корзине", {"type": "knapsack", "min_choices": 1, "max_choices": 3, "max_sum_cost": 2_000_000_00}),
    ("cumul", "Бюджет по баллам", {"type": "cumulative", "max_choices": 3, "min_sum_points": 1, "max_sum_points": 10,
                                   "max_points": 6}),
    ("rank", "Бюджет по местам", {"type": "ordinal", "min_choices": 2, "rank_points": [3, 2, 1]}),
)
BALLOT_TYPE_INITIATIVES = (("a", "Сквер", 1_200_000), ("b", "Фонари", 700_000), ("c", "Каток", 500_000),
                           ("d", "Библиотека", 300_000))


def long_initiative(campaign_id: str, initiative_id: str, number: int) -> dict[str, Any]:
    """A project of district north with a long title and a summary of 375 characters (page weight)."""
    initiative = initiative_json(campaign_id, initiative_id, "north",
                                 f"Благоустройство двора на улице номер {number} с освещением и скамейками",
                                 500_000 + number * 1000)
    initiative["summary"] = ("Проект предусматривает благоустройство дворовой территории: ремонт "
                             "покрытия, установку скамеек, освещения и урн, озеленение. ") * 3
    return initiative


def genesis_document(keys: Keys, *, cap: int = 1_000_000, extra_initiatives: int = 0,
                     ballot_types: bool = False, certification_key: bytes | None = None) -> dict[str, Any]:
    now = int(time.time() * 1000)
    t0 = now - 10 * 60_000
    open_window = {"t0": t0, "voting_start": t0 + 1, "voting_end": now + 2 * HOUR_MS}
    campaigns = [
        campaign_json("ib-test", "Инициативы 2027", "adult", {"type": "choose-1", "min_choices": 1, "max_choices": 1},
                      cap=cap, **open_window),
        campaign_json("kids-test", "Детские инициативы", "children",
                      {"type": "approval", "min_choices": 1, "max_choices": 2}, ballots_per_voter="campaign",
                      **open_window),
        campaign_json("to-close", "Закрываемая кампания", "adult",
                      {"type": "choose-1", "min_choices": 1, "max_choices": 1}, **open_window),
        campaign_json("later", "Будущая кампания", "adult", {"type": "choose-1", "min_choices": 1, "max_choices": 1},
                      t0=t0, voting_start=now + 24 * HOUR_MS, voting_end=now + 48 * HOUR_MS),
        campaign_json("elsewhere", "Кампания другого шлюза", "adult",
                      {"type": "choose-1", "min_choices": 1, "max_choices": 1}, **open_window),
    ]
    campaigns[-1]["gateway"] = "other-gateway"
    if certification_key is not None:   # citizens may hold their own keys in these two
        for campaign in campaigns[:2]:
            campaign["certification_key"] = certification_key.hex()
    initiatives = [
        initiative_json("ib-test", "n1", "north", "Сквер у школы", 1_500_000),
        initiative_json("ib-test", "n2", "north", "Освещение улицы Мира", 900_000, "street-lighting"),
        initiative_json("ib-test", "n3", "north", "Спортплощадка", 2_000_000, "sports"),
        initiative_json("ib-test", "s1", "south", "Ремонт библиотеки", 1_200_000, "libraries"),
        initiative_json("ib-test", "s2", "south", "Детская площадка", 800_000, "playgrounds"),
        initiative_json("kids-test", "k1", "north", "Школьный технопарк", 300_000, "culture"),
        initiative_json("kids-test", "k2", "north", "Скалодром", 250_000, "sports"),
        initiative_json("kids-test", "k3", "south", "Живой уголок", 100_000, "culture"),
        initiative_json("to-close", "c1", "north", "Фонтан", 1_000_000),
        initiative_json("to-close", "c2", "north", "Парковка", 1_100_000, "local-roads"),
        initiative_json("later", "l1", "north", "Каток", 700_000, "sports"),
        initiative_json("elsewhere", "e1", "north", "Бассейн", 900_000, "sports"),
    ]
    if ballot_types:
        for campaign_id, title, ballot in BALLOT_TYPE_CAMPAIGNS:
            campaigns.append(campaign_json(campaign_id, title, "adult", ballot, **open_window))
            if certification_key is not None:   # and in each ballot type's campaign
                campaigns[-1]["certification_key"] = certification_key.hex()
            initiatives += [initiative_json(campaign_id, f"{campaign_id}-{iid}", "north", name, cost)
                            for iid, name, cost in BALLOT_TYPE_INITIATIVES]
    initiatives += [long_initiative("ib-test", f"x{i:02d}", i) for i in range(extra_initiatives)]
    return {
        "chain_id": "veche-gw-test",
        "genesis_time_ms": t0,
        "validators": [{"name": f"validator-{i}", "operator": "committee", "public_key": k.public_key.hex(),
                        "url": f"http://127.0.0.1:{27000 + i}"} for i, k in enumerate(keys.validators)],
        "committee": {"threshold": 1, "keys": [{"name": "committee-0", "public_key": keys.committee.public_key.hex()}]},
        "district_operators": [],
        "gateways": [{"name": "gateway", "public_key": keys.gateway.public_key.hex(), "url": "http://127.0.0.1:27010"},
                     {"name": "other-gateway", "public_key": keys.other_gateway.public_key.hex(),
                      "url": "http://127.0.0.1:27011"}],
        "campaigns": campaigns,
        "initiatives": initiatives,
    }


def write_gateway_home(home: Path, keys: Keys, genesis_document: dict[str, Any], nodes: list[str],
                       overrides: dict[str, Any] | None = None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "genesis.json").write_text(json.dumps(genesis_document, ensure_ascii=False), encoding="utf-8")
    if not (home / "gateway-key.json").exists():
        write_key_file(home / "gateway-key.json", keys.gateway)
    config = {"name": "gateway", "role": "gateway", "listen_host": "127.0.0.1", "listen_port": 27010,
              "url": "http://127.0.0.1:27010", "genesis_file": "genesis.json", "key_file": "gateway-key.json",
              "data_dir": "data", "nodes": nodes, "sms": {"provider": "outbox"}, "form_min_seconds": 0,
              "trusted_proxy_header": "X-Test-Client", "tls": False, "resubmit_seconds": 0.5,
              "commit_wait_seconds": 5}
    config.update(overrides or {})
    (home / "config.json").write_text(json.dumps(config), encoding="utf-8")


@dataclass
class World:
    home: Path
    keys: Keys
    genesis: Genesis
    chain: FakeChain
    nodes: list[FakeNode]
    config: GatewayConfig
    clock: FakeClock
    url: str = ""
    runner: web.AppRunner | None = None

    @property
    def gateway(self) -> Gateway:
        assert self.runner is not None
        return self.runner.app[GATEWAY]

    def close_campaign(self, campaign_id: str) -> None:
        tx = sign_tx("campaign.close", self.genesis.chain_id, CampaignClose(campaign_id, "test close"),
                     [self.keys.committee])
        assert self.chain.submit_signed(tx)["accepted"], "close was rejected"

    def report_progress(self, campaign_id: str, initiative_id: str, stage: str, percent: int) -> None:
        tx = sign_tx("progress.report", self.genesis.chain_id,
                     ProgressReport(campaign_id, initiative_id, stage, percent, 50_000_00, "работы идут", b""),
                     [self.keys.committee])
        assert self.chain.submit_signed(tx)["accepted"], "progress report was rejected"

    def outbox(self) -> list[dict[str, str]]:
        path = self.config.outbox_path
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    def last_code(self, phone: str = PHONE) -> str:
        for message in reversed(self.outbox()):
            if message["to"] == phone:
                found = re.search(r"\b(\d{6})\b", message["text"])
                assert found, message
                return found.group(1)
        raise AssertionError(f"no SMS to {phone}")

    def client(self, address: str = "10.1.2.3") -> "Citizen":
        return Citizen(self, address)


class Citizen:
    """One browser: its own cookie jar and client address (sent in the trusted proxy header)."""

    def __init__(self, world: World, address: str) -> None:
        self.world = world
        self.address = address
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                             headers={"X-Test-Client": address})
        self.csrf = ""
        self.csrf_used = False       # form tokens are single-use
        self.form_path: str | None = None

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str]:
        async with self.session.get(self.world.url + path, **kwargs) as response:
            text = await response.text()
            if self._remember(text):
                self.form_path = path
            return response.status, text

    async def post(self, path: str, data: Any, *, csrf: bool = True, **kwargs: Any) -> tuple[int, str]:
        if csrf and isinstance(data, dict) and "csrf_token" not in data:
            if self.csrf_used and self.form_path is not None:
                await self.get(self.form_path)   # as a person would: back to the form (pages are no-store)
            data = {**data, "csrf_token": self.csrf}
            self.csrf_used = True
        async with self.session.post(self.world.url + path, data=data, **kwargs) as response:
            text = await response.text()
            self._remember(text)
            self.last_headers = response.headers
            return response.status, text

    def _remember(self, text: str) -> bool:
        found = CSRF.search(text)
        if found and found.group(1) != self.csrf:
            self.csrf = found.group(1)
            self.csrf_used = False
        return found is not None

    async def login(self, phone: str = PHONE) -> None:
        status, _ = await self.get("/login")
        assert status == 200
        status, text = await self.post("/login", {"phone": phone})
        assert status == 200, text
        status, text = await self.post("/login/code", {"code": self.world.last_code(phone)})
        assert status == 200, text

    async def vote(self, campaign: str, district: str, choices: list[str]) -> tuple[int, str]:
        status, text = await self.get(f"/c/{campaign}/d/{district}")
        assert status == 200, text
        return await self.post(f"/c/{campaign}/d/{district}/vote", [("csrf_token", self.csrf)] +
                               [("choice", c) for c in choices])


@contextlib.asynccontextmanager
async def gateway_world(tmp_path: Path, *, nodes: int = 1, overrides: dict[str, Any] | None = None,
                        cap: int = 1_000_000, extra_initiatives: int = 0,
                        document: Callable[[Keys], dict[str, Any]] | None = None,
                        certified: bool = False, ballot_types: bool = False) -> AsyncIterator[World]:
    """``certified``: the gateway has a certification key that ib-test and kids-test name (and, with
    ``ballot_types``, the knapsack, cumulative and ordinal campaigns)."""
    keys = Keys()
    cert = test_certification_key() if certified else None
    genesis_json = document(keys) if document is not None else \
        genesis_document(keys, cap=cap, extra_initiatives=extra_initiatives, ballot_types=ballot_types,
                         certification_key=cert.modulus if cert is not None else None)
    genesis = parse_genesis(genesis_json)
    chain = FakeChain(genesis, keys.validators)
    servers = [FakeNode(chain) for _ in range(nodes)]
    for server in servers:
        await server.start()
    home = tmp_path / "gateway"
    write_gateway_home(home, keys, genesis_json, [s.url for s in servers], overrides)
    if cert is not None:
        write_rsa_key_file(home / "certification-key.json", cert)
    config = load_config(home)
    clock = FakeClock()
    world = World(home, keys, genesis, chain, servers, config, clock)
    try:
        await start_gateway(world)
        yield world
    finally:
        await stop_gateway(world)
        for server in servers:
            await server.stop()


async def start_gateway(world: World) -> None:
    app = build_app(world.config, clock=world.clock)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    world.runner = runner
    world.url = f"http://127.0.0.1:{port}"


async def stop_gateway(world: World) -> None:
    if world.runner is not None:
        await world.runner.cleanup()
        world.runner = None
