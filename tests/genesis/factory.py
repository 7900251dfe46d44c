"""A small valid genesis document for validation tests (deterministic keys, two districts)."""

from __future__ import annotations

import copy
from typing import Any

from chain.crypto import SigningKey

GENESIS_TIME_MS = 1_780_000_000_000
DAY_MS = 86_400_000


def key(number: int) -> SigningKey:
    """A deterministic key: tests stay reproducible and need no randomness."""
    return SigningKey(bytes([number]) * 32)


VALIDATOR_KEYS = [key(i) for i in range(1, 5)]
COMMITTEE_KEYS = [key(10), key(11)]
OPERATOR_KEYS = {"north": key(20), "south": key(21)}
GATEWAY_KEY = key(30)


def campaign(campaign_id: str = "ib-2027") -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "title": "Инициативное бюджетирование 2027",
        "track": "adult",
        "districts": [{"district_id": "north", "name": "Северный район", "budget": 1_000_000_00},
                      {"district_id": "south", "name": "Южный район", "budget": 2_000_000_00}],
        "ballot": {"type": "choose-1", "min_choices": 1, "max_choices": 1},
        "rule": {"name": "top-n", "scope": "district", "top_n": 2, "min_votes": 10, "budget": 0},
        "min_cost": 10_000_00,
        "max_cost": 500_000_00,
        "categories": ["sports", "playgrounds"],
        "submission_start": GENESIS_TIME_MS - 30 * DAY_MS,
        "submission_end": GENESIS_TIME_MS - DAY_MS,
        "voting_start": GENESIS_TIME_MS,
        "voting_end": GENESIS_TIME_MS + 30 * DAY_MS,
        "gateway": "gw",
        "registration_cap": 1000,
        "ballots_per_voter": "district",
    }


def initiative(initiative_id: str = "north-01", district_id: str = "north", cost: int = 100_000_00,
               campaign_id: str = "ib-2027") -> dict[str, Any]:
    return {"campaign_id": campaign_id, "initiative_id": initiative_id, "district_id": district_id,
            "title": "Детская площадка", "category": "playgrounds", "cost": cost, "summary": "Качели и горка."}


BASE: dict[str, Any] = {
    "chain_id": "veche-unit",
    "genesis_time_ms": GENESIS_TIME_MS,
    "validators": [{"name": f"validator-{i}", "operator": "committee", "public_key": k.public_key.hex(),
                    "url": f"http://127.0.0.1:{26600 + i}"} for i, k in enumerate(VALIDATOR_KEYS)],
    "committee": {"threshold": 1, "keys": [{"name": f"member-{i}", "public_key": k.public_key.hex()}
                                           for i, k in enumerate(COMMITTEE_KEYS)]},
    "district_operators": [{"district_id": d, "name": d, "public_key": k.public_key.hex()}
                           for d, k in OPERATOR_KEYS.items()],
    "gateways": [{"name": "gw", "public_key": GATEWAY_KEY.public_key.hex(), "url": "http://127.0.0.1:26610"}],
    "consensus": {"heartbeat_ms": 5000},
    "campaigns": [campaign()],
    "initiatives": [initiative(), initiative("south-01", "south")],
}


def valid_document() -> dict[str, Any]:
    """A fresh deep copy of the base document; tests mutate it freely."""
    return copy.deepcopy(BASE)
