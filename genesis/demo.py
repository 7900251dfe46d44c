"""Demo data for `veche testnet init --demo`: Volgograd oblast's initiative budgeting, two campaigns.

The districts are the oblast's 6 urban okrugs and 32 municipal districts (genesis/data/volgograd.json,
real Russian names, ASCII ids). Two campaigns open for voting when the chain starts:

- ``ib-2027`` «Инициативное бюджетирование 2027»: adult track, choose-1 per district, top-5 per
  district with at least 500 votes within the district's budget;
- ``ib-deti-2027`` «Детское инициативное бюджетирование 2027»: children's track, approval of 1-3,
  greedy within the district's budget, one ballot per campaign.

Initiatives are built deterministically from templates (the same genesis time gives the same data),
so every demo genesis has identical campaigns and initiatives apart from the schedule.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from chain.errors import GenesisError

DEMO_CATEGORIES: tuple[str, ...] = (
    "sports", "culture", "libraries", "housing-utilities", "street-lighting", "landscaping", "water-supply",
    "playgrounds", "local-roads",
)
ADULT_CAMPAIGN_ID = "ib-2027"
CHILDREN_CAMPAIGN_ID = "ib-deti-2027"
DEMO_GATEWAY = "gateway"
KOPECKS_PER_RUBLE = 100
DAY_MS = 24 * 60 * 60 * 1000
SUBMISSION_STARTED_DAYS_BEFORE = 60
SUBMISSION_ENDED_DAYS_BEFORE = 14     # then the committee reviewed the initiatives
VOTING_DAYS = 30
REGISTRATION_CAP = 3_000_000
ADULT_MIN_COST_RUB = 100_000
ADULT_MAX_COST_RUB = 5_000_000
CHILDREN_MIN_COST_RUB = 10_000
CHILDREN_MAX_COST_RUB = 500_000
ADULT_TOP_N = 5
ADULT_MIN_VOTES = 500
CHILDREN_MIN_VOTES = 50
COST_STEP_RUB = 10_000


@dataclass(frozen=True, slots=True)
class DemoDistrict:
    district_id: str
    name: str
    kind: str                       # "urban_okrug" or "municipal_district"
    places: tuple[str, ...]         # "where" phrases (prepositional case) used in initiative titles
    adult_budget: int               # kopecks
    children_budget: int            # kopecks
    adult_initiatives: int
    children_initiatives: int


@dataclass(frozen=True, slots=True)
class Template:
    category: str
    title: str                      # contains "{where}"
    summary: str
    min_rub: int
    max_rub: int
    settlement: str = "any"         # "any", or "rural": only for municipal districts


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    text = resources.files("genesis").joinpath("data/volgograd.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@lru_cache(maxsize=1)
def load_demo_districts() -> tuple[DemoDistrict, ...]:
    districts = []
    for entry in _data()["districts"]:
        districts.append(DemoDistrict(
            district_id=entry["district_id"], name=entry["name"], kind=entry["kind"], places=tuple(entry["places"]),
            adult_budget=entry["adult_budget_rub"] * KOPECKS_PER_RUBLE,
            children_budget=entry["children_budget_rub"] * KOPECKS_PER_RUBLE,
            adult_initiatives=entry["adult_initiatives"], children_initiatives=entry["children_initiatives"],
        ))
    return tuple(districts)


def load_templates(track: str) -> tuple[Template, ...]:
    raw = _data()["templates"].get(track)
    if raw is None:
        raise GenesisError(f"no demo initiative templates for track {track!r}")
    return tuple(Template(**entry) for entry in raw)


def _districts_json(budget_of: str) -> list[dict[str, Any]]:
    return [{"district_id": d.district_id, "name": d.name, "budget": getattr(d, budget_of)}
            for d in load_demo_districts()]


def compute_schedule(genesis_time_ms: int) -> dict[str, int]:
    """Submission and review are over; voting opens at genesis time and lasts 30 days.

    Genesis initiatives are applied at height 0 regardless of the submission window (the state
    machine's rule for genesis data), so the window can honestly lie in the past.
    """
    return {
        "submission_start": max(0, genesis_time_ms - SUBMISSION_STARTED_DAYS_BEFORE * DAY_MS),
        "submission_end": max(0, genesis_time_ms - SUBMISSION_ENDED_DAYS_BEFORE * DAY_MS),
        "voting_start": genesis_time_ms,
        "voting_end": genesis_time_ms + VOTING_DAYS * DAY_MS,
    }


def demo_campaigns(genesis_time_ms: int, gateway: str = DEMO_GATEWAY,
                   certification_key: bytes | None = None) -> list[dict[str, Any]]:
    """The adult and children's campaigns; with ``certification_key`` (the gateway's RSA modulus)
    citizens may hold their own voter keys in both."""
    schedule = compute_schedule(genesis_time_ms)
    adult = {
        "campaign_id": ADULT_CAMPAIGN_ID,
        "title": "Инициативное бюджетирование 2027",
        "track": "adult",
        "districts": _districts_json("adult_budget"),
        "ballot": {"type": "choose-1", "min_choices": 1, "max_choices": 1},
        "rule": {"name": "top-n", "scope": "district", "top_n": ADULT_TOP_N, "min_votes": ADULT_MIN_VOTES,
                 "budget": 0},
        "min_cost": ADULT_MIN_COST_RUB * KOPECKS_PER_RUBLE,
        "max_cost": ADULT_MAX_COST_RUB * KOPECKS_PER_RUBLE,
        "categories": list(DEMO_CATEGORIES),
        **schedule,
        "gateway": gateway,
        "registration_cap": REGISTRATION_CAP,
        "ballots_per_voter": "district",
    }
    children = {
        "campaign_id": CHILDREN_CAMPAIGN_ID,
        "title": "Детское инициативное бюджетирование 2027",
        "track": "children",
        "districts": _districts_json("children_budget"),
        "ballot": {"type": "approval", "min_choices": 1, "max_choices": 3},
        "rule": {"name": "greedy", "scope": "district", "top_n": 0, "min_votes": CHILDREN_MIN_VOTES, "budget": 0},
        "min_cost": CHILDREN_MIN_COST_RUB * KOPECKS_PER_RUBLE,
        "max_cost": CHILDREN_MAX_COST_RUB * KOPECKS_PER_RUBLE,
        "categories": list(DEMO_CATEGORIES),
        **schedule,
        "gateway": gateway,
        "registration_cap": REGISTRATION_CAP,
        "ballots_per_voter": "campaign",
    }
    if certification_key is not None:
        adult["certification_key"] = children["certification_key"] = certification_key.hex()
    return [adult, children]


def _initiatives_of(campaign_id: str, track: str, district: DemoDistrict, count: int) -> list[dict[str, Any]]:
    templates = [t for t in load_templates(track)
                 if t.settlement == "any" or (t.settlement == "rural" and district.kind == "municipal_district")]
    if count > len(templates):
        raise GenesisError(f"demo district {district.district_id}: {count} {track} initiatives wanted, "
                           f"only {len(templates)} templates")
    rng = random.Random(f"veche-demo/{campaign_id}/{district.district_id}")
    chosen = rng.sample(templates, count)
    initiatives = []
    for number, template in enumerate(chosen, start=1):
        where = district.places[(number - 1) % len(district.places)]
        cost_rub = rng.randrange(template.min_rub, template.max_rub + 1, COST_STEP_RUB)
        initiatives.append({
            "campaign_id": campaign_id,
            "initiative_id": f"{district.district_id}-{number:02d}",
            "district_id": district.district_id,
            "title": template.title.format(where=where),
            "category": template.category,
            "cost": cost_rub * KOPECKS_PER_RUBLE,
            "summary": template.summary,
        })
    return initiatives


def demo_initiatives() -> list[dict[str, Any]]:
    initiatives: list[dict[str, Any]] = []
    for district in load_demo_districts():
        initiatives += _initiatives_of(ADULT_CAMPAIGN_ID, "adult", district, district.adult_initiatives)
    for district in load_demo_districts():
        initiatives += _initiatives_of(CHILDREN_CAMPAIGN_ID, "children", district, district.children_initiatives)
    return initiatives


def demo_district_ids() -> tuple[str, ...]:
    return tuple(d.district_id for d in load_demo_districts())
