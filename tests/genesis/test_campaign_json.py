"""Campaign and initiative JSON forms: round trips, times, and clear errors."""

from __future__ import annotations

import pytest

from chain.errors import GenesisError
from genesis.campaign_json import (
    campaign_from_json, campaign_to_json, initiative_from_json, initiative_to_json, parse_time_ms,
)
from tests.genesis.factory import GATEWAY_KEY, campaign, initiative

GATEWAYS = {"gw": GATEWAY_KEY.public_key}


def test_campaign_round_trip() -> None:
    body = campaign_from_json(campaign(), GATEWAYS)
    assert body.gateway == GATEWAY_KEY.public_key
    assert [d.district_id for d in body.districts] == ["north", "south"]
    again = campaign_from_json(campaign_to_json(body), {})
    assert again == body


def test_initiative_round_trip() -> None:
    document = initiative()
    document["document_hash"] = "ab" * 32
    body = initiative_from_json(document)
    assert body.document_hash == bytes.fromhex("ab" * 32)
    assert initiative_from_json(initiative_to_json(body)) == body


def test_campaign_defaults() -> None:
    document = campaign()
    for optional in ("min_cost", "max_cost", "categories", "registration_cap", "ballots_per_voter"):
        del document[optional]
    body = campaign_from_json(document, GATEWAYS)
    assert (body.min_cost, body.categories, body.ballots_per_voter) == (1, (), "district")


def test_iso_times_are_exact_milliseconds() -> None:
    assert parse_time_ms("2027-05-01T00:00:00.123+03:00", "t") == 1_809_118_800_123
    assert parse_time_ms("2027-05-01T00:00:00.123+03:00", "t") == parse_time_ms("2027-04-30T21:00:00.123+00:00", "t")
    assert parse_time_ms(5, "t") == 5
    assert parse_time_ms("2027-04-30T21:00:00Z", "t") == 1_809_118_800_000
    assert parse_time_ms("2027-04-30T21:00:00.1Z", "t") == 1_809_118_800_100  # .1 is 100 ms
    assert parse_time_ms("1970-01-01T03:00:00.001+03:00", "t") == 1
    assert parse_time_ms("2024-02-29T23:59:59.999-01:30", "t") == 1_709_256_599_999


@pytest.mark.parametrize(("value", "message"), [
    ("2027-05-01T00:00:00", "needs a UTC offset"),
    ("1 May 2027", "is not an RFC 3339 time"),
    # one text form only (docs/GENESIS.md §3): what else Python's fromisoformat reads is refused
    ("2027-05-01 00:00:00+03:00", "is not an RFC 3339 time"),
    ("2027-05-01T00:00:00+0300", "is not an RFC 3339 time"),
    ("2027-05-01T00:00:00.1234Z", "is not an RFC 3339 time"),
    ("2027-05-01t00:00:00z", "is not an RFC 3339 time"),
    ("2027-W18-6T00:00:00Z", "is not an RFC 3339 time"),
    ("\uff12027-05-01T00:00:00Z", "is not an RFC 3339 time"),
    ("2027-02-29T00:00:00Z", "is not a valid time"),
    ("2027-05-01T00:00:60Z", "is not a valid time"),
    (-1, "cannot be negative"),
    (1.5, "expected unix milliseconds"),
    (True, "expected unix milliseconds"),
    ("1969-12-31T23:59:59+00:00", "before 1970"),
])
def test_bad_times(value: object, message: str) -> None:
    with pytest.raises(GenesisError, match=message):
        parse_time_ms(value, "campaign.voting_end")


def test_gateway_by_hex_or_name() -> None:
    document = campaign()
    document["gateway"] = GATEWAY_KEY.public_key.hex()
    assert campaign_from_json(document, {}).gateway == GATEWAY_KEY.public_key
    document["gateway"] = "gateway"
    with pytest.raises(GenesisError, match=r"campaign.gateway: 'gateway' is neither a gateway name .*\(gw\)"):
        campaign_from_json(document, GATEWAYS)


def test_campaign_errors_name_the_field() -> None:
    document = campaign()
    document["ballot"] = {"type": "approval", "min_choices": 2, "max_choices": 1}
    with pytest.raises(GenesisError, match="ballot needs 1 <= min_choices <= max_choices"):
        campaign_from_json(document, GATEWAYS, where="c.json")
    document = campaign()
    document["districts"] = "north"
    with pytest.raises(GenesisError, match=r"c.json.districts must be a list"):
        campaign_from_json(document, GATEWAYS, where="c.json")
    document = campaign()
    document["districts"][1]["district_id"] = "north"
    with pytest.raises(GenesisError, match="district ids must be distinct"):
        campaign_from_json(document, GATEWAYS)
    with pytest.raises(GenesisError, match="campaign must be a JSON object"):
        campaign_from_json(["x"], GATEWAYS)


def test_initiative_errors_name_the_field() -> None:
    document = initiative()
    del document["title"]
    with pytest.raises(GenesisError, match="i.json is missing 'title'"):
        initiative_from_json(document, where="i.json")
    document = initiative()
    document["document_hash"] = 5
    with pytest.raises(GenesisError, match="document_hash must be a hex string"):
        initiative_from_json(document)
    document = initiative()
    document["document_hash"] = "ab" * 16
    with pytest.raises(GenesisError, match="document_hash must be 32 bytes"):
        initiative_from_json(document)


@pytest.mark.parametrize("ballot", [
    {"type": "knapsack", "min_choices": 1, "max_choices": 10, "max_sum_cost": 50_000_000},
    {"type": "knapsack", "max_choices": 5},
    {"type": "cumulative", "max_choices": 10, "max_sum_points": 10},
    {"type": "cumulative", "min_choices": 2, "max_choices": 5, "min_sum_points": 5, "max_sum_points": 10,
     "max_points": 4},
    {"type": "ordinal", "min_choices": 3, "rank_points": [3, 2, 1]},
])
def test_ballot_types_round_trip(ballot: dict[str, object]) -> None:
    document = campaign()
    document["ballot"] = ballot
    body = campaign_from_json(document, GATEWAYS)
    assert body.ballot.type == ballot["type"]
    assert campaign_from_json(campaign_to_json(body), {}) == body
    shown = campaign_to_json(body)["ballot"]
    assert set(ballot) <= set(shown) <= set(ballot) | {"min_choices", "max_choices", "min_sum_points", "max_points",
                                                       "max_sum_cost"}


def test_ordinal_max_choices_defaults_to_its_ranks() -> None:
    document = campaign()
    document["ballot"] = {"type": "ordinal", "rank_points": [5, 3, 1]}
    body = campaign_from_json(document, GATEWAYS)
    assert (body.ballot.min_choices, body.ballot.max_choices, body.ballot.rank_points) == (1, 3, (5, 3, 1))
    assert campaign_to_json(body)["ballot"] == {"type": "ordinal", "min_choices": 1, "max_choices": 3,
                                                 "rank_points": [5, 3, 1]}


@pytest.mark.parametrize(("ballot", "message"), [
    ({"type": "approval", "max_choices": 2, "max_sum_cost": 5}, "a approval ballot has no max_sum_cost"),
    ({"type": "cumulative", "max_choices": 3}, "missing 'max_sum_points'"),
    ({"type": "ordinal"}, "missing 'rank_points'"),
    ({"type": "ordinal", "max_choices": 2, "rank_points": [3, 2, 1]}, "one entry per rank"),
    ({"type": "cumulative", "max_sum_points": 10, "max_points": 11}, "max_points <= max_sum_points"),
    ({"type": "knapsack", "rank_points": [1]}, "has no rank_points"),
    ({"type": "ranked"}, "must be one of"),
])
def test_ballot_type_errors_name_the_field(ballot: dict[str, object], message: str) -> None:
    document = campaign()
    document["ballot"] = ballot
    with pytest.raises(GenesisError, match=message) as raised:
        campaign_from_json(document, GATEWAYS)
    assert raised.value.message.startswith("campaign")
