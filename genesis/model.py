"""The genesis file: a human-edited JSON document that fixes the chain's identities and rules.

Shape (every key required unless marked optional):
{
  "chain_id": "veche-demo",                         # [A-Za-z0-9._-]{1,64}
  "genesis_time_ms": 1764000000000,
  "validators": [{"name", "operator", "public_key" (hex), "url"}],
  "committee": {"threshold": 1, "keys": [{"name", "public_key"}]},
  "district_operators": [{"district_id", "name", "public_key"}],
  "gateways": [{"name", "public_key", "url"}],
  "consensus": {optional overrides of ConsensusSettings fields},
  "campaigns": [campaign JSON],                      # optional: data applied at height 0
  "initiatives": [initiative JSON]                   # optional: approved at height 0
}
The genesis hash is SHA-256 of the canonical JSON form (sorted keys, no spaces, UTF-8).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from chain.block import Validator, ValidatorSet
from chain.crypto import is_valid_public_key, sha256
from chain.errors import GenesisError
from chain.params import ChainParams
from chain.tx import CHAIN_ID_PATTERN, ID_PATTERN
from genesis.campaign_json import campaign_from_json, initiative_from_json


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
                return str(entry.get("url", "")) or None
        return None


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def genesis_hash(document: dict[str, Any]) -> bytes:
    return sha256(canonical_json(document))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise GenesisError(message)


def _key(value: Any, where: str) -> bytes:
    _require(isinstance(value, str), f"{where}: public_key must be a hex string")
    try:
        key = bytes.fromhex(value)
    except ValueError as exc:
        raise GenesisError(f"{where}: public_key is not valid hex") from exc
    _require(len(key) == 32 and is_valid_public_key(key), f"{where}: public_key is not an Ed25519 public key")
    return key


def _list(document: dict[str, Any], name: str, *, required: bool = True) -> list[Any]:
    value = document.get(name, None if required else [])
    _require(isinstance(value, list), f"genesis: {name!r} must be a list")
    return value  # type: ignore[return-value]


def _entry(item: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    _require(isinstance(item, dict), f"{where} must be an object")
    missing = [k for k in keys if k not in item]
    _require(not missing, f"{where} is missing {', '.join(missing)}")
    return item  # type: ignore[no-any-return]


def parse_genesis(document: Any) -> Genesis:
    """Validate a genesis document; every mistake an operator can make gets a clear GenesisError."""
    _require(isinstance(document, dict), "genesis must be a JSON object")
    known = {"chain_id", "genesis_time_ms", "validators", "committee", "district_operators", "gateways",
             "consensus", "campaigns", "initiatives", "description"}
    unknown = sorted(set(document) - known)
    _require(not unknown, f"genesis has unknown keys: {', '.join(unknown)}")
    chain_id = document.get("chain_id")
    _require(isinstance(chain_id, str) and bool(CHAIN_ID_PATTERN.fullmatch(chain_id)),
             "genesis: chain_id must match [A-Za-z0-9._-]{1,64}")
    genesis_time = document.get("genesis_time_ms")
    _require(isinstance(genesis_time, int) and not isinstance(genesis_time, bool) and genesis_time > 0,
             "genesis: genesis_time_ms must be a positive integer (unix milliseconds)")

    validators = []
    for i, item in enumerate(_list(document, "validators")):
        where = f"validators[{i}]"
        entry = _entry(item, where, ("name", "public_key", "url"))
        _require(isinstance(entry["name"], str) and bool(ID_PATTERN.fullmatch(entry["name"])),
                 f"{where}: name must match [A-Za-z0-9._-]{{1,64}}")
        _require(isinstance(entry["url"], str) and entry["url"].startswith(("http://", "https://")),
                 f"{where}: url must be an http(s) URL")
        validators.append(Validator(entry["name"], _key(entry["public_key"], where),
                                    str(entry.get("operator", "committee")), entry["url"].rstrip("/")))
    _require(len(validators) >= 1, "genesis: at least one validator is needed")
    _require(len({v.name for v in validators}) == len(validators), "genesis: validator names must be distinct")
    _require(len({v.public_key for v in validators}) == len(validators),
             "genesis: validator public keys must be distinct")

    committee = document.get("committee")
    _require(isinstance(committee, dict), "genesis: committee must be an object with threshold and keys")
    committee_keys = [_key(_entry(item, f"committee.keys[{i}]", ("public_key",))["public_key"],
                           f"committee.keys[{i}]")
                      for i, item in enumerate(committee.get("keys", []) if isinstance(committee.get("keys"), list) else [])]
    _require(len(committee_keys) >= 1, "genesis: committee.keys must list at least one key")
    _require(len(set(committee_keys)) == len(committee_keys), "genesis: committee keys must be distinct")
    threshold = committee.get("threshold")
    _require(isinstance(threshold, int) and not isinstance(threshold, bool) and 1 <= threshold <= len(committee_keys),
             f"genesis: committee.threshold must be between 1 and {len(committee_keys)}")

    operators = []
    for i, item in enumerate(_list(document, "district_operators", required=False)):
        where = f"district_operators[{i}]"
        entry = _entry(item, where, ("district_id", "public_key"))
        _require(isinstance(entry["district_id"], str) and bool(ID_PATTERN.fullmatch(entry["district_id"])),
                 f"{where}: district_id must match [A-Za-z0-9._-]{{1,64}}")
        operators.append((entry["district_id"], _key(entry["public_key"], where)))

    gateways = []
    for i, item in enumerate(_list(document, "gateways", required=False)):
        where = f"gateways[{i}]"
        entry = _entry(item, where, ("name", "public_key"))
        gateways.append((str(entry["name"]), _key(entry["public_key"], where)))
    _require(len({name for name, _ in gateways}) == len(gateways), "genesis: gateway names must be distinct")

    settings_raw = document.get("consensus", {})
    _require(isinstance(settings_raw, dict), "genesis: consensus must be an object")
    names = {f.name for f in fields(ConsensusSettings)}
    unknown = sorted(set(settings_raw) - names)
    _require(not unknown, f"genesis: unknown consensus settings: {', '.join(unknown)}")
    for name, value in settings_raw.items():
        _require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                 f"genesis: consensus.{name} must be a positive integer")
    settings = ConsensusSettings(**settings_raw)

    gateway_keys = {name: key for name, key in gateways}
    initial: list[tuple[str, Any]] = []
    for i, item in enumerate(_list(document, "campaigns", required=False)):
        initial.append(("campaign.create", campaign_from_json(item, gateway_keys, where=f"campaigns[{i}]")))
    for i, item in enumerate(_list(document, "initiatives", required=False)):
        initial.append(("initiative.submit", initiative_from_json(item, where=f"initiatives[{i}]")))

    digest = genesis_hash(document)
    params = ChainParams(
        chain_id=chain_id, genesis_time_ms=genesis_time, validators=ValidatorSet(tuple(validators)),
        committee_keys=frozenset(committee_keys), committee_threshold=threshold,
        district_operators=tuple(operators), gateways=tuple(gateways),
        time_precision_ms=settings.time_precision_ms, heartbeat_ms=settings.heartbeat_ms,
        genesis_hash=digest, initial_bodies=tuple(initial),
    )
    return Genesis(document=document, hash=digest, params=params, consensus=settings)


def load_genesis(path: str | Path) -> Genesis:
    target = Path(path)
    try:
        document = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise GenesisError(f"genesis file {target} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise GenesisError(f"genesis file {target} is not valid JSON: {exc}") from exc
    return parse_genesis(document)


def write_genesis(path: str | Path, document: dict[str, Any]) -> None:
    parse_genesis(document)
    Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
