"""A gateway with the demo's 38 Volgograd oblast districts, in every state a citizen can meet, for
browser tests: it runs in a background thread's event loop (so Playwright's synchronous API can
drive Chromium from the test's thread) over the harness's in-process fake nodes.

Campaigns:
- ``ib-2027`` adult, choose one per district, voting open (the demo's campaign);
- ``ib-deti-2027`` children, approval of 1–3, one ballot per campaign, open; many districts have
  one project only;
- ``ib-2026`` adult, 38 districts and 300 projects, top 5 with at least 3 votes within each
  district's budget, closed after a few ballots: districts with winners, one where the money ran
  out, one under the threshold and many where nobody voted;
- ``ib-2028`` adult, voting opens tomorrow.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from chain.crypto import SigningKey
from chain.tx import make_registration, make_vote
from genesis.demo import demo_campaigns, demo_initiatives, load_demo_districts, load_templates
from tests.gateway.harness import HOUR_MS, Keys, World, genesis_document, gateway_world

T = TypeVar("T")
CLOSED = "ib-2026"
UPCOMING = "ib-2028"
OPEN = "ib-2027"
CHILDREN = "ib-deti-2027"
CLOSED_INITIATIVES = 300
# votes per project (in ranking order of the project ids) in the closed campaign's districts
CLOSED_VOTES: dict[str, list[int]] = {
    "volgograd": [9, 7, 6, 5, 4, 3, 2, 1],     # five winners; the 6th has 3 votes but the places are taken
    "volzhsky": [6, 5, 1],
    "kamyshin": [2, 1],                         # nobody reached the threshold of 3
    "danilovsky": [5, 4, 3],                    # each costs 3 M ₽, the budget is 5 M ₽: one fits
}
EXPENSIVE_DISTRICT = "danilovsky"


def closed_campaign(t0: int, now: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    districts = load_demo_districts()
    templates = load_templates("adult")
    campaign = {
        "campaign_id": CLOSED, "title": "Инициативное бюджетирование 2026", "track": "adult",
        "districts": [{"district_id": d.district_id, "name": d.name, "budget": d.adult_budget} for d in districts],
        "ballot": {"type": "choose-1", "min_choices": 1, "max_choices": 1},
        "rule": {"name": "top-n", "scope": "district", "top_n": 5, "min_votes": 3, "budget": 0},
        "min_cost": 10_000_000, "max_cost": 500_000_000, "categories": [],
        "submission_start": t0 - HOUR_MS, "submission_end": t0 + 1, "voting_start": t0 + 1,
        "voting_end": now + 2 * HOUR_MS, "gateway": "gateway", "registration_cap": 1_000_000,
        "ballots_per_voter": "district",
    }
    initiatives = []
    for number in range(CLOSED_INITIATIVES):
        district = districts[number % len(districts)]
        template = templates[number % len(templates)]
        where = district.places[number // len(districts) % len(district.places)]
        cost_rub = 3_000_000 if district.district_id == EXPENSIVE_DISTRICT else \
            template.min_rub + (number * 37_000) % (template.max_rub - template.min_rub)
        initiatives.append({
            "campaign_id": CLOSED, "initiative_id": f"{district.district_id}-{number // len(districts) + 1:02d}",
            "district_id": district.district_id, "title": template.title.format(where=where),
            "category": template.category, "cost": cost_rub * 100, "summary": template.summary,
        })
    return campaign, initiatives


def site_document(keys: Keys) -> dict[str, Any]:
    document = genesis_document(keys)
    now = int(time.time() * 1000)
    t0 = document["genesis_time_ms"]
    adult, children = demo_campaigns(t0)
    upcoming = dict(adult, campaign_id=UPCOMING, title="Инициативное бюджетирование 2028",
                    voting_start=now + 24 * HOUR_MS, voting_end=now + 48 * HOUR_MS)
    closed, closed_initiatives = closed_campaign(t0, now)
    demo = demo_initiatives()
    document["campaigns"] = [adult, children, closed, upcoming]
    document["initiatives"] = demo + closed_initiatives + [
        dict(i, campaign_id=UPCOMING) for i in demo if i["campaign_id"] == OPEN and i["district_id"] == "volgograd"]
    return document


def cast_closed_votes(world: World) -> None:
    """The closed campaign's ballots, signed by fresh voter keys the gateway key registers; then close."""
    chain_id = world.genesis.chain_id
    ballots: list[tuple[str, str]] = []
    ids = sorted(i for (c, i) in world.chain.ledger.state.initiatives if c == CLOSED)
    for district_id, counts in CLOSED_VOTES.items():
        own = sorted(i for i in ids if i.startswith(district_id + "-"))
        for initiative_id, count in zip(own, counts):
            ballots += [(district_id, initiative_id)] * count
    keys = [SigningKey.generate() for _ in ballots]
    registration = make_registration(chain_id, world.keys.gateway, CLOSED, [k.public_key for k in keys])
    assert world.chain.submit_signed(registration)["accepted"]
    votes = [make_vote(chain_id, key, CLOSED, district, [choice]) for key, (district, choice) in zip(keys, ballots)]
    answer = world.chain.admit([v.raw for v in votes])
    assert len(answer["accepted"]) == len(votes), answer
    world.close_campaign(CLOSED)


class DemoSite:
    """The world of ``gateway_world`` with ``site_document``, served from a background thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="demo-site", daemon=True)
        self.stack = contextlib.AsyncExitStack()
        self.world: World | None = None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Any, *args: Any) -> Any:
        async def wrapped() -> Any:
            result = function(*args)
            if isinstance(result, Awaitable):
                return await result
            return result

        return self.run(wrapped())

    def start(self) -> "DemoSite":
        self.thread.start()

        async def enter() -> World:
            world = await self.stack.enter_async_context(gateway_world(self.directory, document=site_document))
            cast_closed_votes(world)
            world.gateway.chain.invalidate()
            return world

        self.world = self.run(enter())
        return self

    @property
    def url(self) -> str:
        assert self.world is not None
        return self.world.url

    def last_code(self, phone: str) -> str:
        assert self.world is not None
        return self.world.last_code(phone)

    def close(self) -> None:
        try:
            self.run(self.stack.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
