"""JSON forms of campaigns and initiatives, shared by the genesis file and the operator CLI.

Campaign JSON (money in kopecks, times in unix milliseconds or ISO 8601 with an offset):
{
  "campaign_id": "volgograd-2027", "title": "...", "track": "adult" | "children",
  "districts": [{"district_id", "name", "budget"}],
  "ballot": {"type": "choose-1" | "approval", "min_choices": 1, "max_choices": 1},
  "rule": {"name": "top-n" | "greedy" | "greedy-no-skip" | "equal-shares",
           "scope": "district" | "campaign", "top_n": 0, "min_votes": 0, "budget": 0},
  "min_cost": 1, "max_cost": 100000000, "categories": ["sports", ...],
  "submission_start", "submission_end", "voting_start", "voting_end",
  "gateway": "<gateway name from genesis or hex public key>", "registration_cap": 1000000,
  "ballots_per_voter": "district" | "campaign"
}
Initiative JSON: {"campaign_id", "initiative_id", "district_id", "title", "category", "cost",
                  "summary" (optional), "document_hash" (optional hex)}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chain.errors import DecodeError, GenesisError
from chain.tx import BallotSpec, CampaignCreate, District, InitiativeSubmit, RuleSpec, body_to_json

CAMPAIGN_DEFAULTS: dict[str, Any] = {
    "min_cost": 1,
    "max_cost": 2**62,
    "categories": [],
    "registration_cap": 10_000_000,
    "ballots_per_voter": "district",
}


def parse_time_ms(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise GenesisError(f"{where}: {value!r} is not an ISO 8601 time") from exc
        if moment.tzinfo is None:
            raise GenesisError(f"{where}: {value!r} needs a UTC offset, e.g. +03:00")
        return int(moment.timestamp() * 1000)
    raise GenesisError(f"{where}: expected unix milliseconds or an ISO 8601 time")


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GenesisError(f"{where} must be a JSON object")
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
    if isinstance(value, str):
        try:
            key = bytes.fromhex(value)
        except ValueError:
            key = b""
        if len(key) == 32:
            return key
    names = ", ".join(sorted(gateways)) or "none"
    raise GenesisError(f"{where}: gateway must be a gateway name from the genesis file ({names}) or a hex key")


def campaign_from_json(value: Any, gateways: Mapping[str, bytes], *, where: str = "campaign") -> CampaignCreate:
    document = _obj(value, where)
    known = {"campaign_id", "title", "track", "districts", "ballot", "rule", "min_cost", "max_cost", "categories",
             "submission_start", "submission_end", "voting_start", "voting_end", "gateway", "registration_cap",
             "ballots_per_voter", "description"}
    unknown = sorted(set(document) - known)
    if unknown:
        raise GenesisError(f"{where} has unknown keys: {', '.join(unknown)}")
    districts_raw = _get(document, "districts", where)
    if not isinstance(districts_raw, list):
        raise GenesisError(f"{where}.districts must be a list")
    ballot = _obj(_get(document, "ballot", where), f"{where}.ballot")
    rule = _obj(_get(document, "rule", where), f"{where}.rule")
    wire = [
        _get(document, "campaign_id", where),
        _get(document, "title", where),
        _get(document, "track", where),
        [[_get(_obj(d, f"{where}.districts[{i}]"), "district_id", f"{where}.districts[{i}]"),
          _get(d, "name", f"{where}.districts[{i}]"), d.get("budget", 0)] for i, d in enumerate(districts_raw)],
        [_get(ballot, "type", f"{where}.ballot"), ballot.get("min_choices", 1), ballot.get("max_choices", 1)],
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
    try:
        campaign: CampaignCreate = CampaignCreate.from_wire(wire, where)
    except DecodeError as exc:
        raise GenesisError(exc.message) from exc
    return campaign


def initiative_from_json(value: Any, *, where: str = "initiative") -> InitiativeSubmit:
    document = _obj(value, where)
    known = {"campaign_id", "initiative_id", "district_id", "title", "category", "cost", "summary", "document_hash"}
    unknown = sorted(set(document) - known)
    if unknown:
        raise GenesisError(f"{where} has unknown keys: {', '.join(unknown)}")
    document_hash = document.get("document_hash", "")
    try:
        hash_bytes = bytes.fromhex(document_hash) if isinstance(document_hash, str) else document_hash
    except ValueError as exc:
        raise GenesisError(f"{where}.document_hash is not hex") from exc
    wire = [_get(document, k, where) for k in ("campaign_id", "initiative_id", "district_id", "title", "category",
                                                "cost")]
    wire += [document.get("summary", ""), hash_bytes]
    try:
        initiative: InitiativeSubmit = InitiativeSubmit.from_wire(wire, where)
    except DecodeError as exc:
        raise GenesisError(exc.message) from exc
    return initiative


def campaign_to_json(campaign: CampaignCreate) -> dict[str, Any]:
    return body_to_json(campaign)  # type: ignore[no-any-return]


def initiative_to_json(initiative: InitiativeSubmit) -> dict[str, Any]:
    return body_to_json(initiative)  # type: ignore[no-any-return]
