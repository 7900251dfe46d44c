"""The genesis file: a human-edited JSON document that fixes the chain's identities and rules.

Shape (every key required unless marked optional; docs/GENESIS.md explains each field):
{
  "chain_id": "veche-demo",                         # [A-Za-z0-9._-]{1,64}
  "genesis_time_ms": 1764000000000,
  "description": "...",                             # optional
  "validators": [{"name", "operator" (optional), "public_key" (hex), "url"}],
  "committee": {"threshold": 1, "keys": [{"name" (optional), "public_key"}]},
  "district_operators": [{"district_id", "name" (optional), "public_key"}],     # optional
  "gateways": [{"name", "public_key", "url" (optional)}],                        # optional
  "consensus": {optional overrides of ConsensusSettings fields},
  "campaigns": [campaign JSON],                      # optional: data applied at height 0
  "initiatives": [initiative JSON]                   # optional: approved at height 0
}
The genesis hash is SHA-256 of the document's RFC 8785 (JCS) canonical form. Floats, and integers
beyond ±(2**53 − 1), are refused anywhere in the document, so every JSON implementation reads the
same values and every JCS implementation writes the same bytes (docs/GENESIS.md §1).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import rfc8785

from chain.block import MAX_TXS_PER_BLOCK, Validator, ValidatorSet
from chain.crypto import PUBLIC_KEY_BYTES, is_valid_public_key, sha256
from chain.errors import GenesisError, TxRejected
from chain.params import ChainParams
from chain.state import State
from chain.storage import MemoryStore
from chain.tx import CHAIN_ID_PATTERN, ID_PATTERN, CampaignCreate, InitiativeSubmit
from genesis.campaign_json import campaign_from_json, initiative_from_json

MAX_GENESIS_BYTES = 16 * 1024 * 1024
MAX_OPERATOR_CHARS = 200
TOP_LEVEL_KEYS = frozenset({"chain_id", "genesis_time_ms", "description", "validators", "committee",
                            "district_operators", "gateways", "consensus", "campaigns", "initiatives"})
VALIDATOR_KEYS = frozenset({"name", "operator", "public_key", "url"})
COMMITTEE_KEYS = frozenset({"threshold", "keys"})
COMMITTEE_MEMBER_KEYS = frozenset({"name", "public_key"})
DISTRICT_OPERATOR_KEYS = frozenset({"district_id", "name", "public_key"})
GATEWAY_KEYS = frozenset({"name", "public_key", "url"})


@dataclass(frozen=True, slots=True)
class ConsensusSettings:
    time_precision_ms: int = 500
    heartbeat_ms: int = 5000
    batch_ms: int = 5
    timeout_propose_ms: int = 1000
    timeout_propose_delta_ms: int = 500
    timeout_prevote_ms: int = 500
    timeout_prevote_delta_ms: int = 500
    timeout_precommit_ms: int = 500
    timeout_precommit_delta_ms: int = 500
    max_block_txs: int = 5000


@dataclass(frozen=True, slots=True)
class Genesis:
    document: dict[str, Any]
    hash: bytes
    params: ChainParams
    consensus: ConsensusSettings

    @property
    def chain_id(self) -> str:
        return self.params.chain_id

    def validator_urls(self) -> list[tuple[str, str]]:
        return [(v.name, v.url) for v in self.params.validators.validators]

    def gateway_url(self, name: str | None = None) -> str | None:
        for entry in self.document.get("gateways", []):
            if name is None or entry.get("name") == name:
                return str(entry.get("url", "")).rstrip("/") or None
        return None


# --- canonical form and hash -------------------------------------------------------------------


def canonical_json(document: Any) -> bytes:
    """The RFC 8785 (JSON Canonicalization Scheme) bytes of ``document``."""
    try:
        return rfc8785.dumps(document)
    except rfc8785.CanonicalizationError as exc:
        raise GenesisError(f"the genesis document has no canonical form: {exc}") from exc


def genesis_hash(document: dict[str, Any]) -> bytes:
    return sha256(canonical_json(document))


# --- small field checks ------------------------------------------------------------------------


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise GenesisError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


MAX_JSON_INT = 2**53 - 1  # RFC 7493 (I-JSON) and RFC 8785: integers every JSON reader holds exactly


def _walk_floats(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, float) or (_is_int(value) and abs(value) > MAX_JSON_INT):
        yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_floats(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_floats(item, f"{where}[{index}]")


def validate_no_floats(document: Any) -> None:
    found = next(_walk_floats(document, "genesis"), None)
    _require(found is None, f"{found}: numbers in a genesis file are integers (money in kopecks, "
                            f"time in unix milliseconds) of at most {MAX_JSON_INT} (2^53 - 1); fractions "
                            "are not allowed")


def parse_public_key(value: Any, where: str) -> bytes:
    _require(isinstance(value, str), f"{where}.public_key must be a hex string")
    _require(len(value) == 2 * PUBLIC_KEY_BYTES,
             f"{where}.public_key must be {2 * PUBLIC_KEY_BYTES} hex digits ({PUBLIC_KEY_BYTES} bytes), "
             f"got {len(value)} characters")
    try:
        key = bytes.fromhex(value)
    except ValueError as exc:
        raise GenesisError(f"{where}.public_key is not valid hex") from exc
    _require(is_valid_public_key(key), f"{where}.public_key is not an Ed25519 public key")
    return key


def parse_url(value: Any, where: str) -> str:
    _require(isinstance(value, str), f"{where} must be an http(s) URL")
    parts = urlsplit(value)
    _require(parts.scheme in ("http", "https") and bool(parts.hostname),
             f"{where} must be an http(s) URL with a host, got {value!r}")
    _require(not parts.query and not parts.fragment and parts.username is None,
             f"{where} must be a plain base URL (no query, fragment or user), got {value!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise GenesisError(f"{where} has an invalid port: {value!r}") from exc
    return str(value).rstrip("/")


def parse_ident(value: Any, where: str) -> str:
    _require(isinstance(value, str) and bool(ID_PATTERN.fullmatch(value)),
             f"{where} must match [A-Za-z0-9._-]{{1,64}}, got {value!r}")
    return str(value)


def _entry(item: Any, where: str, known: frozenset[str], required: tuple[str, ...]) -> dict[str, Any]:
    _require(isinstance(item, dict), f"{where} must be a JSON object")
    unknown = sorted(set(item) - known)
    _require(not unknown, f"{where} has unknown keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    missing = [key for key in required if key not in item]
    _require(not missing, f"{where} is missing {', '.join(missing)}")
    return item  # type: ignore[no-any-return]


def _list(document: dict[str, Any], name: str, *, required: bool = True) -> list[Any]:
    _require(name in document or not required, f"genesis is missing {name!r}")
    value = document.get(name, [])
    _require(isinstance(value, list), f"genesis: {name!r} must be a list")
    return value  # type: ignore[no-any-return]


def _optional_text(entry: dict[str, Any], key: str, where: str, limit: int = 200) -> str:
    value = entry.get(key, "")
    _require(isinstance(value, str) and len(value) <= limit, f"{where}.{key} must be text of at most {limit} characters")
    return str(value)


def _distinct(values: list[Any], where: str, what: str) -> None:
    first: dict[Any, int] = {}
    for index, value in enumerate(values):
        if value in first:
            shown = value.hex() if isinstance(value, bytes) else value
            raise GenesisError(f"{where}[{index}].{what} {shown!r} repeats {where}[{first[value]}].{what}; "
                               f"each {what} must be distinct")
        first[value] = index


# --- sections ----------------------------------------------------------------------------------


def parse_validator_operator(value: Any, where: str) -> str:
    _require(isinstance(value, str) and 0 < len(value.strip()) and len(value) <= MAX_OPERATOR_CHARS,
             f"{where}.operator must be 'committee', 'district:<district_id>' or an organisation name "
             f"(text of at most {MAX_OPERATOR_CHARS} characters)")
    if value.startswith("district:"):
        parse_ident(value[len("district:"):], f"{where}.operator district id")
    return str(value)


def parse_validators(document: dict[str, Any]) -> tuple[Validator, ...]:
    items = _list(document, "validators")
    _require(len(items) >= 1, "genesis: validators must list at least one validator")
    validators = []
    for index, item in enumerate(items):
        where = f"validators[{index}]"
        entry = _entry(item, where, VALIDATOR_KEYS, ("name", "public_key", "url"))
        validators.append(Validator(
            name=parse_ident(entry["name"], f"{where}.name"),
            public_key=parse_public_key(entry["public_key"], where),
            operator=parse_validator_operator(entry.get("operator", "committee"), where),
            url=parse_url(entry["url"], f"{where}.url"),
        ))
    _distinct([v.name for v in validators], "validators", "name")
    _distinct([v.public_key for v in validators], "validators", "public_key")
    _distinct([v.url for v in validators], "validators", "url")
    return tuple(validators)


def committee_member_id(name: str, index: int) -> str:
    """How ``keys.rotate`` names a committee member: its ``name`` when that is an id, else ``committee-<i>``."""
    return name if ID_PATTERN.fullmatch(name) else f"committee-{index}"


def parse_committee(document: dict[str, Any]) -> tuple[tuple[bytes, ...], int]:
    _require("committee" in document, "genesis is missing 'committee'")
    committee = _entry(document["committee"], "committee", COMMITTEE_KEYS, ("threshold", "keys"))
    members = committee["keys"]
    _require(isinstance(members, list) and len(members) >= 1, "committee.keys must list at least one key")
    keys = []
    for index, item in enumerate(members):
        where = f"committee.keys[{index}]"
        entry = _entry(item, where, COMMITTEE_MEMBER_KEYS, ("public_key",))
        _optional_text(entry, "name", where)
        keys.append(parse_public_key(entry["public_key"], where))
    _distinct(keys, "committee.keys", "public_key")
    ids = [committee_member_id(str(member.get("name", "")), i) for i, member in enumerate(members)]
    _distinct(ids, "committee.keys", "member id (its name, or committee-<i> without a name)")
    threshold = committee["threshold"]
    _require(_is_int(threshold) and 1 <= threshold <= len(keys),
             f"committee.threshold must be an integer between 1 and {len(keys)} (the number of committee keys), "
             f"got {threshold!r}")
    return tuple(keys), int(threshold)


def parse_committee_members(document: dict[str, Any]) -> tuple[tuple[str, bytes], ...]:
    """(member id, key) in genesis order (``parse_committee`` has checked the section)."""
    members = document["committee"]["keys"]
    return tuple((committee_member_id(str(member.get("name", "")), i), bytes.fromhex(member["public_key"]))
                 for i, member in enumerate(members))


def parse_district_operators(document: dict[str, Any]) -> tuple[tuple[str, bytes], ...]:
    operators = []
    for index, item in enumerate(_list(document, "district_operators", required=False)):
        where = f"district_operators[{index}]"
        entry = _entry(item, where, DISTRICT_OPERATOR_KEYS, ("district_id", "public_key"))
        _optional_text(entry, "name", where)
        operators.append((parse_ident(entry["district_id"], f"{where}.district_id"),
                          parse_public_key(entry["public_key"], where)))
    _distinct(operators, "district_operators", "(district_id, public_key) pair")
    return tuple(operators)


def parse_gateways(document: dict[str, Any]) -> tuple[tuple[str, bytes], ...]:
    gateways = []
    for index, item in enumerate(_list(document, "gateways", required=False)):
        where = f"gateways[{index}]"
        entry = _entry(item, where, GATEWAY_KEYS, ("name", "public_key"))
        if "url" in entry:
            parse_url(entry["url"], f"{where}.url")
        gateways.append((parse_ident(entry["name"], f"{where}.name"), parse_public_key(entry["public_key"], where)))
    _distinct([name for name, _ in gateways], "gateways", "name")
    _distinct([key for _, key in gateways], "gateways", "public_key")
    return tuple(gateways)


def parse_consensus(document: dict[str, Any]) -> ConsensusSettings:
    raw = document.get("consensus", {})
    _require(isinstance(raw, dict), "genesis: consensus must be a JSON object")
    names = [f.name for f in fields(ConsensusSettings)]
    unknown = sorted(set(raw) - set(names))
    _require(not unknown, f"genesis: unknown consensus settings: {', '.join(unknown)} (known: {', '.join(names)})")
    for name, value in raw.items():
        _require(_is_int(value) and 0 < value < 2**63, f"consensus.{name} must be a positive integer, got {value!r}")
    settings = ConsensusSettings(**raw)
    _require(settings.max_block_txs <= MAX_TXS_PER_BLOCK,
             f"consensus.max_block_txs must be at most {MAX_TXS_PER_BLOCK}, got {settings.max_block_txs}")
    return settings


def validate_key_roles(validators: tuple[Validator, ...], committee: tuple[bytes, ...],
                       operators: tuple[tuple[str, bytes], ...], gateways: tuple[tuple[str, bytes], ...]) -> None:
    """Each role needs its own key: one pasted twice is an operator mistake, not a design."""
    owner: dict[bytes, str] = {}
    places = ([(v.public_key, f"validators[{i}]") for i, v in enumerate(validators)]
              + [(key, f"committee.keys[{i}]") for i, key in enumerate(committee)]
              + [(key, f"gateways[{i}]") for i, (_, key) in enumerate(gateways)])
    seen_operator: set[bytes] = set()
    for index, (_, key) in enumerate(operators):
        if key not in seen_operator:  # one operator key may serve several districts
            seen_operator.add(key)
            places.append((key, f"district_operators[{index}]"))
    for key, place in places:
        _require(key not in owner, f"{place}.public_key is also the key of {owner.get(key)}; "
                                   "each role (validator, committee, district operator, gateway) needs its own key")
        owner[key] = place


def parse_campaigns(document: dict[str, Any], gateways: tuple[tuple[str, bytes], ...],
                    genesis_time_ms: int) -> list[CampaignCreate]:
    gateway_keys = dict(gateways)
    known_keys = set(gateway_keys.values())
    campaigns = []
    for index, item in enumerate(_list(document, "campaigns", required=False)):
        where = f"campaigns[{index}]"
        campaign = campaign_from_json(item, gateway_keys, where=where)
        _require(campaign.gateway in known_keys,
                 f"{where}.gateway names no gateway of this genesis file "
                 f"(known: {', '.join(sorted(gateway_keys)) or 'none'})")
        _require(campaign.voting_end > genesis_time_ms,
                 f"{where}.voting_end is not after genesis_time_ms: the campaign would be over before the chain starts")
        campaigns.append(campaign)
    _distinct([c.campaign_id for c in campaigns], "campaigns", "campaign_id")
    return campaigns


def validate_initiative(initiative: InitiativeSubmit, campaign: CampaignCreate, where: str) -> None:
    """Genesis initiatives are approved at height 0; submission windows do not apply to them."""
    districts = {d.district_id for d in campaign.districts}
    _require(initiative.district_id in districts,
             f"{where}.district_id {initiative.district_id!r} is not a district of campaign {campaign.campaign_id!r}")
    _require(campaign.min_cost <= initiative.cost <= campaign.max_cost,
             f"{where}.cost {initiative.cost} is outside campaign {campaign.campaign_id!r}'s range "
             f"{campaign.min_cost}..{campaign.max_cost} (kopecks)")
    _require(not campaign.categories or initiative.category in campaign.categories,
             f"{where}.category {initiative.category!r} is not one of campaign {campaign.campaign_id!r}'s "
             f"categories ({', '.join(campaign.categories)})")


def parse_initiatives(document: dict[str, Any], campaigns: list[CampaignCreate]) -> list[InitiativeSubmit]:
    by_id = {c.campaign_id: c for c in campaigns}
    initiatives = []
    for index, item in enumerate(_list(document, "initiatives", required=False)):
        where = f"initiatives[{index}]"
        initiative = initiative_from_json(item, where=where)
        campaign = by_id.get(initiative.campaign_id)
        if campaign is None:
            raise GenesisError(f"{where}.campaign_id {initiative.campaign_id!r} is not a campaign of this genesis file")
        validate_initiative(initiative, campaign, where)
        initiatives.append(initiative)
    _distinct([(i.campaign_id, i.initiative_id) for i in initiatives], "initiatives", "(campaign_id, initiative_id)")
    return initiatives


def validate_initial_data_applies(params: ChainParams) -> None:
    """Run the genesis data through the state machine, as the ledger will at height 0."""
    execution = State(MemoryStore(), params).begin(0, params.genesis_time_ms)
    kinds = {"campaign.create": "campaigns", "initiative.submit": "initiatives"}
    counters = {"campaign.create": 0, "initiative.submit": 0}
    for kind, body in params.initial_bodies:
        try:
            execution.apply_initial(kind, body)
        except TxRejected as exc:
            raise GenesisError(f"{kinds[kind]}[{counters[kind]}] does not apply at genesis: {exc.message}") from exc
        counters[kind] += 1


# --- the document ------------------------------------------------------------------------------


def parse_genesis(document: Any) -> Genesis:
    """Validate a genesis document; every mistake an operator can make gets a clear GenesisError."""
    _require(isinstance(document, dict), "genesis must be a JSON object")
    unknown = sorted(set(document) - TOP_LEVEL_KEYS)
    _require(not unknown, f"genesis has unknown keys: {', '.join(unknown)} (known: {', '.join(sorted(TOP_LEVEL_KEYS))})")
    validate_no_floats(document)
    chain_id = document.get("chain_id")
    _require(isinstance(chain_id, str) and bool(CHAIN_ID_PATTERN.fullmatch(chain_id)),
             f"genesis: chain_id must match [A-Za-z0-9._-]{{1,64}}, got {chain_id!r}")
    genesis_time = document.get("genesis_time_ms")
    _require(_is_int(genesis_time) and 0 < genesis_time < 2**63,
             "genesis: genesis_time_ms must be a positive integer (unix milliseconds)")
    _require(isinstance(document.get("description", ""), str), "genesis: description must be text")

    validators = parse_validators(document)
    committee_keys, threshold = parse_committee(document)
    operators = parse_district_operators(document)
    gateways = parse_gateways(document)
    validate_key_roles(validators, committee_keys, operators, gateways)
    settings = parse_consensus(document)
    campaigns = parse_campaigns(document, gateways, genesis_time)
    initiatives = parse_initiatives(document, campaigns)

    initial: list[tuple[str, Any]] = [("campaign.create", c) for c in campaigns]
    initial += [("initiative.submit", i) for i in initiatives]
    digest = genesis_hash(document)
    params = ChainParams(
        chain_id=chain_id, genesis_time_ms=genesis_time, validators=ValidatorSet(validators),
        committee_keys=frozenset(committee_keys), committee_threshold=threshold,
        district_operators=operators, gateways=gateways,
        time_precision_ms=settings.time_precision_ms, heartbeat_ms=settings.heartbeat_ms,
        genesis_hash=digest, initial_bodies=tuple(initial),
        committee_names=parse_committee_members(document),
    )
    validate_initial_data_applies(params)
    return Genesis(document=document, hash=digest, params=params, consensus=settings)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise GenesisError(f"the key {key!r} appears twice in one JSON object")
        result[key] = value
    return result


def read_json_document(path: str | os.PathLike[str], what: str = "genesis file") -> Any:
    """Read a JSON file strictly: size-limited, UTF-8, no repeated keys in an object."""
    target = Path(path)
    try:
        if target.stat().st_size > MAX_GENESIS_BYTES:
            raise GenesisError(f"{what} {target} is larger than {MAX_GENESIS_BYTES} bytes")
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise GenesisError(f"{what} {target} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise GenesisError(f"{what} {target} cannot be read: {exc}") from exc
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except GenesisError as exc:
        raise GenesisError(f"{what} {target}: {exc.message}") from exc
    except ValueError as exc:
        raise GenesisError(f"{what} {target} is not valid JSON: {exc}") from exc


def load_genesis(path: str | os.PathLike[str]) -> Genesis:
    return parse_genesis(read_json_document(path))


def render_genesis(document: dict[str, Any]) -> str:
    """The human-readable file form (indented; the hash is over the canonical form, not this text)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_genesis(path: str | os.PathLike[str], document: dict[str, Any]) -> Genesis:
    """Validate ``document`` and write it; return the parsed genesis."""
    genesis = parse_genesis(document)
    Path(path).write_text(render_genesis(document), encoding="utf-8")
    return genesis
