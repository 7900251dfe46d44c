"""`veche testnet init`: a genesis file, keys and one home folder per process, all on one machine.

Layout (docs/INTERNALS.md, docs/GENESIS.md):
  DIR/genesis.json
  DIR/keys/committee-<i>.json                   testnet committee: one key, threshold 1 (--committee N --threshold K)
  DIR/keys/district-<district_id>.json          demo district operators (with --demo)
  DIR/validator-<i>/{config.json, genesis.json, node-key.json, signing-state.bin (never signed)}
  DIR/observer-<j>/{config.json, genesis.json}
  DIR/gateway/{config.json, genesis.json, gateway-key.json, certification-key.json (--demo)}
Ports: validator i → base_port + i; observer j → base_port + n + j; gateway → base_port + n + m.

``init_testnet`` is the function behind the CLI; ``load_testnet`` reads an existing DIR back into
the same ``TestnetLayout`` (for ``veche testnet start``, ``veche demo`` and test fixtures).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chain.crypto import RsaPrivateNumbers, SigningKey, generate_rsa_key, write_key_file, write_rsa_key_file
from chain.errors import GenesisError
from chain.numbers import parse_decimal
from chain.tx import CHAIN_ID_PATTERN
from consensus.signing_state import SigningState, encode_file
from genesis import demo as demo_data_module
from genesis.config import (
    CONFIG_FILE, DEFAULT_GATEWAY_KEY_FILE, DEFAULT_MEMPOOL_MAX_BYTES, DEFAULT_MEMPOOL_MAX_TXS,
    DEFAULT_VALIDATOR_KEY_FILE, ROLE_GATEWAY, ROLE_OBSERVER, ROLE_VALIDATOR, SIGNING_STATE_FILE, load_gateway_config,
    load_node_config,
)
from genesis.model import ConsensusSettings, load_genesis, parse_genesis, render_genesis

GENESIS_FILE = "genesis.json"
KEYS_DIR = "keys"
GATEWAY_NAME = "gateway"
CERTIFICATION_KEY_FILE = "certification-key.json"
MAX_VALIDATORS = 100
MAX_OBSERVERS = 100
DEMO_VALIDATOR_OPERATORS = ("committee", "district:volgograd", "district:volzhsky",
                            "Общественная палата Волгоградской области")
_HOST_PATTERN = re.compile(r"[A-Za-z0-9.\-:\[\]]{1,253}")


@dataclass(frozen=True, slots=True)
class NodeHome:
    name: str                 # the home folder's name: validator-0, observer-0
    role: str                 # "validator" or "observer"
    home: Path
    api_url: str              # base URL without a trailing slash
    port: int
    key_file: Path | None     # None for observers


@dataclass(frozen=True, slots=True)
class GatewayHome:
    name: str
    home: Path
    url: str                  # base URL without a trailing slash
    port: int
    key_file: Path


@dataclass(frozen=True, slots=True)
class TestnetLayout:
    directory: Path
    chain_id: str
    genesis_file: Path
    genesis_hash: bytes
    nodes: tuple[NodeHome, ...]
    gateway: GatewayHome
    committee_key_files: tuple[Path, ...]
    district_key_files: Mapping[str, Path] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def validators(self) -> tuple[NodeHome, ...]:
        return tuple(node for node in self.nodes if node.role == ROLE_VALIDATOR)

    @property
    def observers(self) -> tuple[NodeHome, ...]:
        return tuple(node for node in self.nodes if node.role == ROLE_OBSERVER)

    def to_json(self) -> dict[str, Any]:
        """The `veche testnet init --json` object (ARCHITECTURE §6)."""
        return {
            "chain_id": self.chain_id,
            "nodes": [{"name": n.name, "role": n.role, "home": str(n.home), "api_url": n.api_url} for n in self.nodes],
            "gateway": {"home": str(self.gateway.home), "url": self.gateway.url},
        }


# --- argument checks ---------------------------------------------------------------------------


def validate_counts(validators: int, observers: int, base_port: int) -> None:
    if not isinstance(validators, int) or not 1 <= validators <= MAX_VALIDATORS:
        raise GenesisError(f"--validators must be between 1 and {MAX_VALIDATORS}, got {validators!r}")
    if not isinstance(observers, int) or not 0 <= observers <= MAX_OBSERVERS:
        raise GenesisError(f"--observers must be between 0 and {MAX_OBSERVERS}, got {observers!r}")
    last_port = base_port + validators + observers  # the gateway's
    if not isinstance(base_port, int) or base_port < 1 or last_port > 65535:
        raise GenesisError(f"--base-port {base_port!r}: ports {base_port}..{last_port} must lie within 1..65535")


def validate_host(host: str) -> str:
    if not isinstance(host, str) or not _HOST_PATTERN.fullmatch(host):
        raise GenesisError(f"--host must be a host name or IP address, got {host!r}")
    return host.strip("[]")


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_chain_id(demo_data: bool) -> str:
    return f"veche-{'demo' if demo_data else 'testnet'}-{secrets.token_hex(3)}"


def compute_ports(base_port: int, validators: int, observers: int) -> tuple[list[int], list[int], int]:
    """(validator ports, observer ports, gateway port)."""
    validator_ports = [base_port + i for i in range(validators)]
    observer_ports = [base_port + validators + j for j in range(observers)]
    return validator_ports, observer_ports, base_port + validators + observers


# --- documents ---------------------------------------------------------------------------------


def build_genesis_document(*, chain_id: str, genesis_time_ms: int, validator_keys: list[SigningKey],
                           validator_urls: list[str], committee_keys: list[SigningKey], gateway_key: SigningKey,
                           gateway_url: str, district_keys: Mapping[str, SigningKey], demo_data: bool,
                           committee_threshold: int = 1, certification_key: bytes | None = None) -> dict[str, Any]:
    operators = DEMO_VALIDATOR_OPERATORS if demo_data else ("committee",)
    district_names = {d.district_id: d.name for d in demo_data_module.load_demo_districts()}
    document: dict[str, Any] = {
        "chain_id": chain_id,
        "genesis_time_ms": genesis_time_ms,
        "description": ("Veche demo network: initiative budgeting of Volgograd oblast" if demo_data
                        else "Veche test network"),
        "validators": [
            {"name": f"validator-{i}", "operator": operators[i % len(operators)], "public_key": key.public_key.hex(),
             "url": url}
            for i, (key, url) in enumerate(zip(validator_keys, validator_urls))
        ],
        "committee": {"threshold": committee_threshold,
                      "keys": [{"name": f"committee-{i}", "public_key": key.public_key.hex()}
                               for i, key in enumerate(committee_keys)]},
        "district_operators": [
            {"district_id": district_id, "name": district_names.get(district_id, district_id),
             "public_key": key.public_key.hex()}
            for district_id, key in district_keys.items()
        ],
        "gateways": [{"name": GATEWAY_NAME, "public_key": gateway_key.public_key.hex(), "url": gateway_url}],
        "consensus": asdict(ConsensusSettings()),
    }
    if demo_data:
        document["campaigns"] = demo_data_module.demo_campaigns(genesis_time_ms, GATEWAY_NAME, certification_key)
        document["initiatives"] = demo_data_module.demo_initiatives()
    return document


def node_config(*, name: str, role: str, host: str, port: int, peers: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "name": name, "role": role, "listen_host": host, "listen_port": port, "api_url": base_url(host, port),
        "genesis_file": GENESIS_FILE, "key_file": DEFAULT_VALIDATOR_KEY_FILE if role == ROLE_VALIDATOR else None,
        "signing_state_file": SIGNING_STATE_FILE, "data_dir": "data",
        "peers": [{"name": peer, "url": url} for peer, url in peers],
        "log_level": "info", "mempool_max_txs": DEFAULT_MEMPOOL_MAX_TXS, "mempool_max_bytes": DEFAULT_MEMPOOL_MAX_BYTES,
    }


def gateway_config(*, host: str, port: int, nodes: list[str]) -> dict[str, Any]:
    return {
        "name": GATEWAY_NAME, "role": ROLE_GATEWAY, "listen_host": host, "listen_port": port,
        "url": base_url(host, port), "genesis_file": GENESIS_FILE, "key_file": DEFAULT_GATEWAY_KEY_FILE,
        "data_dir": "data", "nodes": nodes, "sms": {"provider": "outbox"}, "form_min_seconds": 1,
        "trusted_proxy_header": None, "tls": False,
    }


# --- writing -----------------------------------------------------------------------------------


def _write_new(path: Path, text: str) -> None:
    """Create ``path`` exclusively: two inits racing for one folder cannot both win."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError as exc:
        raise GenesisError(f"{path} already exists; choose a new folder for the testnet", "testnet_exists") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def write_initial_signing_state(path: Path) -> None:
    """A new validator key's signing state: it has signed nothing (exclusive create, mode 0600, synced).

    A validator refuses to start without its signing state (docs/NODE.md §6): the file is born
    with the key, so a missing file always means a lost one.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise GenesisError(f"{path} already exists; a signing state is never overwritten", "exists") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(encode_file(SigningState.initial()))
        handle.flush()
        os.fsync(handle.fileno())


def _write_json(path: Path, document: dict[str, Any]) -> None:
    _write_new(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _check_free(directory: Path, targets: list[Path]) -> None:
    if directory.exists() and not directory.is_dir():
        raise GenesisError(f"{directory} exists and is not a folder", "testnet_exists")
    if (directory / GENESIS_FILE).exists():
        raise GenesisError(f"{directory} already holds a {GENESIS_FILE}: it is an initialised testnet. "
                           "Choose a new folder, or delete this one to start over", "testnet_exists")
    taken = [str(path) for path in targets if path.exists()]
    if taken:
        raise GenesisError(f"{directory} already holds {', '.join(taken)}; choose a new folder", "testnet_exists")


def init_testnet(directory: str | os.PathLike[str], validators: int = 4, observers: int = 1, base_port: int = 26600,
                 demo: bool = False, host: str = "127.0.0.1", chain_id: str | None = None,
                 now_ms: int | None = None, committee: int = 1, threshold: int = 1,
                 certification_key: RsaPrivateNumbers | None = None) -> TestnetLayout:
    """Write a complete local testnet into ``directory`` (which must not hold a genesis.json yet).

    ``committee`` keys (``keys/committee-<i>.json``), of which ``threshold`` sign each committee transaction.
    With ``demo`` the gateway gets an RSA certification key (``certification-key.json``; a fresh one
    unless ``certification_key`` is given) that the demo campaigns name: citizens may hold their own
    voter keys (docs/PROTOCOL.md §16)."""
    if isinstance(committee, bool) or not isinstance(committee, int) or not 1 <= committee <= 16:
        raise GenesisError(f"--committee must be between 1 and 16 keys, got {committee!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= committee:
        raise GenesisError(f"--threshold must be between 1 and --committee ({committee}), got {threshold!r}")
    demo_data = demo
    validate_counts(validators, observers, base_port)
    host = validate_host(host)
    chain_id = chain_id if chain_id is not None else make_chain_id(demo_data)
    if not isinstance(chain_id, str) or not CHAIN_ID_PATTERN.fullmatch(chain_id):
        raise GenesisError(f"--chain-id must match [A-Za-z0-9._-]{{1,64}}, got {chain_id!r}")
    genesis_time_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if isinstance(genesis_time_ms, bool) or not isinstance(genesis_time_ms, int) or genesis_time_ms <= 0:
        raise GenesisError(f"now_ms must be a positive integer of unix milliseconds, got {now_ms!r}")

    root = Path(directory).resolve()
    validator_names = [f"validator-{i}" for i in range(validators)]
    observer_names = [f"observer-{j}" for j in range(observers)]
    keys_dir = root / KEYS_DIR
    district_ids = demo_data_module.demo_district_ids() if demo_data else ()
    committee_files = tuple(keys_dir / f"committee-{i}.json" for i in range(committee))
    district_files = {d: keys_dir / f"district-{d}.json" for d in district_ids}
    _check_free(root, [root / n for n in validator_names + observer_names + [GATEWAY_NAME]]
                + list(committee_files) + list(district_files.values()))

    validator_ports, observer_ports, gateway_port = compute_ports(base_port, validators, observers)
    validator_urls = [base_url(host, port) for port in validator_ports]
    gateway_url = base_url(host, gateway_port)
    validator_keys = [SigningKey.generate() for _ in validator_names]
    committee_keys, gateway_key = [SigningKey.generate() for _ in committee_files], SigningKey.generate()
    district_keys = {district_id: SigningKey.generate() for district_id in district_ids}
    cert_key = (certification_key or generate_rsa_key()) if demo_data else None
    document = build_genesis_document(
        chain_id=chain_id, genesis_time_ms=genesis_time_ms, validator_keys=validator_keys,
        validator_urls=validator_urls, committee_keys=committee_keys, gateway_key=gateway_key,
        gateway_url=gateway_url, district_keys=district_keys, demo_data=demo_data, committee_threshold=threshold,
        certification_key=cert_key.modulus if cert_key is not None else None)
    genesis = parse_genesis(document)
    genesis_text = render_genesis(document)

    root.mkdir(parents=True, exist_ok=True)
    _write_new(root / GENESIS_FILE, genesis_text)
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    for path, key in zip(committee_files, committee_keys):
        write_key_file(path, key)
    for district_id, key in district_keys.items():
        write_key_file(district_files[district_id], key)

    nodes: list[NodeHome] = []
    validator_peers = list(zip(validator_names, validator_urls))
    for name, port, key in zip(validator_names, validator_ports, validator_keys):
        home = root / name
        home.mkdir()
        _write_new(home / GENESIS_FILE, genesis_text)
        write_key_file(home / DEFAULT_VALIDATOR_KEY_FILE, key)
        write_initial_signing_state(home / SIGNING_STATE_FILE)
        _write_json(home / CONFIG_FILE, node_config(name=name, role=ROLE_VALIDATOR, host=host, port=port,
                                                    peers=[p for p in validator_peers if p[0] != name]))
        nodes.append(NodeHome(name, ROLE_VALIDATOR, home, base_url(host, port), port, home / DEFAULT_VALIDATOR_KEY_FILE))
    for name, port in zip(observer_names, observer_ports):
        home = root / name
        home.mkdir()
        _write_new(home / GENESIS_FILE, genesis_text)
        _write_json(home / CONFIG_FILE, node_config(name=name, role=ROLE_OBSERVER, host=host, port=port,
                                                    peers=validator_peers))
        nodes.append(NodeHome(name, ROLE_OBSERVER, home, base_url(host, port), port, None))
    gateway_home = root / GATEWAY_NAME
    gateway_home.mkdir()
    _write_new(gateway_home / GENESIS_FILE, genesis_text)
    write_key_file(gateway_home / DEFAULT_GATEWAY_KEY_FILE, gateway_key)
    if cert_key is not None:
        write_rsa_key_file(gateway_home / CERTIFICATION_KEY_FILE, cert_key)
    _write_json(gateway_home / CONFIG_FILE, gateway_config(host=host, port=gateway_port, nodes=validator_urls))

    return TestnetLayout(
        directory=root, chain_id=chain_id, genesis_file=root / GENESIS_FILE, genesis_hash=genesis.hash,
        nodes=tuple(nodes),
        gateway=GatewayHome(GATEWAY_NAME, gateway_home, gateway_url, gateway_port,
                            gateway_home / DEFAULT_GATEWAY_KEY_FILE),
        committee_key_files=committee_files, district_key_files=MappingProxyType(dict(district_files)),
    )


# --- reading an existing testnet ---------------------------------------------------------------


def _home_index(name: str) -> int:
    suffix = name.rsplit("-", 1)[-1]
    return parse_decimal(suffix) or 0


def load_testnet(directory: str | os.PathLike[str]) -> TestnetLayout:
    """Read back a folder written by ``init_testnet`` (configs are validated on the way)."""
    root = Path(directory).resolve()
    if not (root / GENESIS_FILE).is_file():
        raise GenesisError(f"{root} holds no {GENESIS_FILE}: run `veche testnet init {directory}` first")
    genesis = load_genesis(root / GENESIS_FILE)
    nodes: list[NodeHome] = []
    for role, prefix in ((ROLE_VALIDATOR, "validator-"), (ROLE_OBSERVER, "observer-")):
        homes = sorted((p for p in root.glob(f"{prefix}*") if (p / CONFIG_FILE).is_file()),
                       key=lambda p: _home_index(p.name))
        for home in homes:
            config = load_node_config(home)
            if config.role != role:
                raise GenesisError(f"{home / CONFIG_FILE}: role {config.role!r} does not match the folder name")
            nodes.append(NodeHome(home.name, role, config.home, config.api_url, config.listen_port, config.key_file))
    if not any(node.role == ROLE_VALIDATOR for node in nodes):
        raise GenesisError(f"{root} holds no validator-<i> home with a {CONFIG_FILE}")
    gateway = load_gateway_config(root / GATEWAY_NAME)
    keys_dir = root / KEYS_DIR
    committee = tuple(sorted(keys_dir.glob("committee-*.json"), key=lambda p: _home_index(p.stem)))
    districts = {p.stem[len("district-"):]: p for p in sorted(keys_dir.glob("district-*.json"))}
    return TestnetLayout(
        directory=root, chain_id=genesis.chain_id, genesis_file=root / GENESIS_FILE, genesis_hash=genesis.hash,
        nodes=tuple(nodes),
        gateway=GatewayHome(gateway.name, gateway.home, gateway.url, gateway.listen_port, gateway.key_file),
        committee_key_files=committee, district_key_files=MappingProxyType(districts),
    )
