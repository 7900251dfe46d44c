"""JSON forms of campaigns and initiatives, shared by the genesis file and the operator CLI.

Campaign JSON (money in kopecks, times in unix milliseconds or ISO 8601 with an offset):
{
  "campaign_id": "volgograd-2027", "title": "...", "track": "adult" | "children",
  "districts": [{"district_id", "name", "budget"}],
  "ballot": {"type": "choose-1" | "approval" | "knapsack" | "cumulative" | "ordinal",
             "min_choices": 1, "max_choices": 1,
             "max_sum_cost": 0,                                   (knapsack; 0 = the district's budget)
             "min_sum_points": 0, "max_sum_points": 10, "max_points": 0,   (cumulative)
             "rank_points": [3, 2, 1]},                           (ordinal; one entry per rank)
  "rule": {"name": "top-n" | "greedy" | "greedy-no-skip" | "equal-shares",
           "scope": "district" | "campaign", "top_n": 0, "min_votes": 0, "budget": 0},
  "min_cost": 1, "max_cost": 100000000, "categories": ["sports", ...],
  "submission_start", "submission_end", "voting_start", "voting_end",
  "gateway": "<gateway name from genesis or hex public key>", "registration_cap": 1000000,
  "ballots_per_voter": "district" | "campaign",
  "certification_key": "<hex RSA modulus>"               (optional: citizens may hold their own keys,
                                                          certified blindly by the gateway; PROTOCOL §16)
  "description": "..."                                   (optional, not part of the transaction)
}
Initiative JSON: {"campaign_id", "initiative_id", "district_id", "title", "category", "cost",
                  "summary" (optional), "document_hash" (optional hex)}

Every mistake raises ``GenesisError`` whose message names the field (``campaigns[0].rule.top_n``).
docs/GENESIS.md describes both forms field by field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from chain.errors import DecodeError, GenesisError
from chain.tx import CampaignCreate, InitiativeSubmit, body_to_json

CAMPAIGN_DEFAULTS: dict[str, Any] = {
    "min_cost": 1,
    "max_cost": 2**62,
    "categories": [],
    "registration_cap": 10_000_000,
    "ballots_per_voter": "district",
}
CAMPAIGN_KEYS = frozenset({
    "campaign_id", "title", "track", "districts", "ballot", "rule", "min_cost", "max_cost", "categories",
    "submission_start", "submission_end", "voting_start", "voting_end", "gateway", "registration_cap",
    "ballots_per_voter", "certification_key", "description",
})
DISTRICT_KEYS = frozenset({"district_id", "name", "budget"})
BALLOT_KEYS = frozenset({"type", "min_choices", "max_choices", "max_sum_cost", "min_sum_points", "max_sum_points",
                         "max_points", "rank_points"})
BALLOT_TYPE_KEYS: dict[str, tuple[tuple[str, Any], ...]] = {
    "knapsack": (("max_sum_cost", 0),),
    "cumulative": (("min_sum_points", 0), ("max_sum_points", None), ("max_points", 0)),
    "ordinal": (("rank_points", None),),
}
RULE_KEYS = frozenset({"name", "scope", "top_n", "min_votes", "budget"})
INITIATIVE_KEYS = frozenset({"campaign_id", "initiative_id", "district_id", "title", "category", "cost",
                             "summary", "document_hash"})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
RFC3339_TIME = re.compile(r"(?P<local>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})"
                          r"(?P<fraction>(?:\.[0-9]{1,3})?)(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})")
RFC3339_LOCAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,3})?")


def parse_time_ms(value: Any, where: str) -> int:
    """Unix milliseconds (a non-negative integer) or an RFC 3339 time with a UTC offset.

    The text form is exactly ``YYYY-MM-DDTHH:MM:SS[.f{1,3}](Z|+HH:MM|-HH:MM)`` (ASCII digits, capital
    ``T`` and ``Z``, no leap second): milliseconds = days since 1970-01-01 × 86,400,000 + the time of day
    − the offset, exactly (docs/GENESIS.md §3).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise GenesisError(f"{where}: a time in unix milliseconds cannot be negative")
        return value
    if isinstance(value, str):
        match = RFC3339_TIME.fullmatch(value)
        if match is None:
            if RFC3339_LOCAL.fullmatch(value):
                raise GenesisError(f"{where}: {value!r} needs a UTC offset, e.g. 2027-05-01T00:00:00+03:00")
            raise GenesisError(f"{where}: {value!r} is not an RFC 3339 time such as 2027-05-01T00:00:00+03:00")
        try:
            moment = datetime.fromisoformat(match.group("local") + (match.group("fraction") or ".").ljust(4, "0")
                                            + ("+00:00" if match.group("offset") == "Z" else match.group("offset")))
        except ValueError as exc:  # a day, hour, minute or offset out of range
            raise GenesisError(f"{where}: {value!r} is not a valid time: {exc}") from exc
        elapsed = moment - _EPOCH  # exact integer arithmetic: no float rounding of milliseconds
        if elapsed < timedelta(0):
            raise GenesisError(f"{where}: {value!r} is before 1970")
        return elapsed // timedelta(milliseconds=1)
    raise GenesisError(f"{where}: expected unix milliseconds or an RFC 3339 time, got {type(value).__name__}")


def _obj(value: Any, where: str, known: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GenesisError(f"{where} must be a JSON object")
    unknown = sorted(set(value) - known)
    if unknown:
        raise GenesisError(f"{where} has unknown keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return value


def _get(document: Mapping[str, Any], key: str, where: str) -> Any:
    if key in document:
        return document[key]
    if key in CAMPAIGN_DEFAULTS:
        return CAMPAIGN_DEFAULTS[key]
    raise GenesisError(f"{where} is missing {key!r}")


def _gateway_key(value: Any, gateways: Mapping[str, bytes], where: str) -> bytes:
    if isinstance(value, str) and value in gateways:
        return gateways[value]
    if isinstance(value, str) and len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    names = ", ".join(sorted(gateways)) or "none"
    raise GenesisError(f"{where}: {value!r} is neither a gateway name from the genesis file ({names}) "
                       "nor a 64-digit hex public key")


def _decoded(where: str, exc: DecodeError) -> GenesisError:
    message = exc.message if exc.message.startswith(where) else f"{where}: {exc.message}"
    return GenesisError(message)


def ballot_wire(ballot: dict[str, Any], where: str) -> list[Any]:
    """``[type, min_choices, max_choices, ...]``: the fields of the type (``chain.tx.BallotSpec``)."""
    kind = _get(ballot, "type", where)
    layout = BALLOT_TYPE_KEYS.get(kind, ()) if isinstance(kind, str) else ()
    foreign = sorted(set(ballot) - {"type", "min_choices", "max_choices"} - {key for key, _ in layout})
    if foreign:
        raise GenesisError(f"{where}: a {kind} ballot has no {', '.join(foreign)}")
    ranks = ballot.get("rank_points")
    default_max = len(ranks) if kind == "ordinal" and isinstance(ranks, list) and ranks else 1
    wire = [kind, ballot.get("min_choices", 1), ballot.get("max_choices", default_max)]
    for key, default in layout:
        if key not in ballot and default is None:
            raise GenesisError(f"{where} is missing {key!r} (a {kind} ballot needs it)")
        value = ballot.get(key, default)
        wire.append(list(value) if isinstance(value, tuple) else value)
    return wire


def campaign_from_json(value: Any, gateways: Mapping[str, bytes], *, where: str = "campaign") -> CampaignCreate:
    """Build a ``CampaignCreate`` body from its JSON form; ``gateways`` maps gateway names to keys."""
    document = _obj(value, where, CAMPAIGN_KEYS)
    districts_raw = _get(document, "districts", where)
    if not isinstance(districts_raw, list):
        raise GenesisError(f"{where}.districts must be a list")
    districts = []
    for i, item in enumerate(districts_raw):
        spot = f"{where}.districts[{i}]"
        district = _obj(item, spot, DISTRICT_KEYS)
        districts.append([_get(district, "district_id", spot), _get(district, "name", spot),
                          district.get("budget", 0)])
    ballot = _obj(_get(document, "ballot", where), f"{where}.ballot", BALLOT_KEYS)
    rule = _obj(_get(document, "rule", where), f"{where}.rule", RULE_KEYS)
    wire = [
        _get(document, "campaign_id", where),
        _get(document, "title", where),
        _get(document, "track", where),
        districts,
        ballot_wire(ballot, f"{where}.ballot"),
        [_get(rule, "name", f"{where}.rule"), rule.get("scope", "district"), rule.get("top_n", 0),
         rule.get("min_votes", 0), rule.get("budget", 0)],
        _get(document, "min_cost", where),
        _get(document, "max_cost", where),
        _get(document, "categories", where),
        parse_time_ms(_get(document, "submission_start", where), f"{where}.submission_start"),
        parse_time_ms(_get(document, "submission_end", where), f"{where}.submission_end"),
        parse_time_ms(_get(document, "voting_start", where), f"{where}.voting_start"),
        parse_time_ms(_get(document, "voting_end", where), f"{where}.voting_end"),
        _gateway_key(_get(document, "gateway", where), gateways, f"{where}.gateway"),
        _get(document, "registration_cap", where),
        _get(document, "ballots_per_voter", where),
    ]
    if "certification_key" in document:
        key = document["certification_key"]
        try:
            wire.append(bytes.fromhex(key) if isinstance(key, str) else key)
        except ValueError as exc:
            raise GenesisError(f"{where}.certification_key must be the hex of an RSA modulus") from exc
    if "description" in document and not isinstance(document["description"], str):
        raise GenesisError(f"{where}.description must be text")
    try:
        campaign: CampaignCreate = CampaignCreate.from_wire(wire, where)
    except DecodeError as exc:
        raise _decoded(where, exc) from exc
    return campaign


def initiative_from_json(value: Any, *, where: str = "initiative") -> InitiativeSubmit:
    """Build an ``InitiativeSubmit`` body from its JSON form."""
    document = _obj(value, where, INITIATIVE_KEYS)
    document_hash = document.get("document_hash", "")
    if not isinstance(document_hash, str):
        raise GenesisError(f"{where}.document_hash must be a hex string (64 digits) or empty")
    try:
        hash_bytes = bytes.fromhex(document_hash)
    except ValueError as exc:
        raise GenesisError(f"{where}.document_hash is not hex") from exc
    wire = [_get(document, k, where) for k in ("campaign_id", "initiative_id", "district_id", "title", "category",
                                                "cost")]
    wire += [document.get("summary", ""), hash_bytes]
    try:
        initiative: InitiativeSubmit = InitiativeSubmit.from_wire(wire, where)
    except DecodeError as exc:
        raise _decoded(where, exc) from exc
    return initiative


def campaign_to_json(campaign: CampaignCreate) -> dict[str, Any]:
    """The JSON form of a campaign body; ``campaign_from_json`` reads it back (gateway as hex)."""
    return body_to_json(campaign)  # type: ignore[no-any-return]


def initiative_to_json(initiative: InitiativeSubmit) -> dict[str, Any]:
    """The JSON form of an initiative body; ``initiative_from_json`` reads it back."""
    return body_to_json(initiative)  # type: ignore[no-any-return]
