"""Process configuration files: ``<home>/config.json`` of a node (validator, observer) or the gateway.

Formats are in docs/INTERNALS.md ("Homes written by veche testnet init"). Paths are resolved
relative to the home folder; unknown keys are an error; missing optional keys take defaults.
The gateway's ``limits`` and ``sms`` objects (and the node's ``limits``) are passed through as
read-only mappings for the code that owns those settings; so are the gateway-only settings listed
in ``GATEWAY_EXTRA_KEYS`` (``GatewayConfig.extra``), which gateway/config.py validates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chain.errors import GenesisError
from chain.tx import ID_PATTERN
from genesis.forwarding import MAX_TRUSTED_PROXIES, parse_networks
from genesis.model import parse_url, read_json_document

CONFIG_FILE = "config.json"
ROLE_VALIDATOR = "validator"
ROLE_OBSERVER = "observer"
ROLE_GATEWAY = "gateway"
NODE_ROLES = (ROLE_VALIDATOR, ROLE_OBSERVER)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DEFAULT_MEMPOOL_MAX_TXS = 100_000
DEFAULT_MEMPOOL_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_VALIDATOR_KEY_FILE = "node-key.json"
SIGNING_STATE_FILE = "signing-state.bin"
DEFAULT_GATEWAY_KEY_FILE = "gateway-key.json"

NODE_KEYS = frozenset({"name", "role", "listen_host", "listen_port", "api_url", "genesis_file", "key_file",
                       "signing_state_file", "data_dir", "peers", "log_level", "mempool_max_txs",
                       "mempool_max_bytes", "limits", "trusted_proxies", "ca_file", "log_file"})
GATEWAY_KEYS = frozenset({"name", "role", "listen_host", "listen_port", "url", "genesis_file", "key_file",
                          "data_dir", "nodes", "sms", "form_min_seconds", "trusted_proxy_header", "tls",
                          "log_level", "limits"})
# Settings only the gateway reads (gateway/config.py validates them); passed through in ``extra``.
GATEWAY_EXTRA_KEYS = frozenset({"secret_file", "cards_dir", "log_file", "commit_wait_seconds",
                                "registration_batch_ms", "node_timeout_seconds", "resubmit_seconds",
                                "display_utc_offset_minutes", "default_lang", "trusted_proxies", "ca_file",
                                "admin_token_file", "health_interval_seconds", "certification_key_file",
                                "token_batch_ms", "relay", "test_wire_log_file"})
PEER_KEYS = frozenset({"name", "url"})


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class NodeConfig:
    home: Path
    name: str
    role: str                         # "validator" or "observer"
    listen_host: str
    listen_port: int
    api_url: str                      # public base URL, no trailing slash
    genesis_file: Path
    key_file: Path | None             # None for an observer without a key
    signing_state_file: Path
    data_dir: Path
    peers: tuple[Peer, ...]
    log_level: str = "info"
    mempool_max_txs: int = DEFAULT_MEMPOOL_MAX_TXS
    mempool_max_bytes: int = DEFAULT_MEMPOOL_MAX_BYTES
    limits: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    trusted_proxies: tuple[str, ...] = ()   # peers whose X-Forwarded-For / X-Real-IP names the client
    ca_file: Path | None = None             # extra CA certificates for https peers (beside the system's)
    log_file: Path | None = None            # None: stderr only (journald); see node/ops/logs.py

    @property
    def is_validator(self) -> bool:
        return self.role == ROLE_VALIDATOR


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    home: Path
    name: str
    listen_host: str
    listen_port: int
    url: str                          # public base URL, no trailing slash
    genesis_file: Path
    key_file: Path
    data_dir: Path
    nodes: tuple[str, ...]            # node API base URLs, no trailing slash
    sms: Mapping[str, Any]
    form_min_seconds: float = 1.0
    trusted_proxy_header: str | None = None
    tls: bool = False
    log_level: str = "info"
    limits: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # GATEWAY_EXTRA_KEYS

    @property
    def sms_outbox_file(self) -> Path:
        return self.home / "sms-outbox.jsonl"


# --- field readers -----------------------------------------------------------------------------


class _Reader:
    """Reads one config object, naming the file and key in every error."""

    def __init__(self, document: Any, source: Path, known: frozenset[str]) -> None:
        if not isinstance(document, dict):
            raise GenesisError(f"{source}: a config file must hold a JSON object")
        unknown = sorted(set(document) - known)
        if unknown:
            raise GenesisError(f"{source}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        self.document = document
        self.source = source

    def fail(self, key: str, message: str) -> GenesisError:
        return GenesisError(f"{self.source}: {key} {message}")

    def required(self, key: str) -> Any:
        if key not in self.document:
            raise self.fail(key, "is missing")
        return self.document[key]

    def text(self, key: str, default: str | None = None) -> str:
        value = self.document.get(key, default) if default is not None else self.required(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be non-empty text")
        return value

    def ident(self, key: str) -> str:
        value = self.required(key)
        if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
            raise self.fail(key, "must match [A-Za-z0-9._-]{1,64}")
        return value

    def positive_int(self, key: str, default: int) -> int:
        value = self.document.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise self.fail(key, f"must be a positive integer, got {value!r}")
        return value

    def port(self, key: str) -> int:
        value = self.required(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            raise self.fail(key, f"must be a TCP port 1..65535, got {value!r}")
        return value

    def url(self, key: str, value: Any) -> str:
        try:
            return parse_url(value, key)
        except GenesisError as exc:
            raise GenesisError(f"{self.source}: {exc.message}") from exc

    def path(self, home: Path, key: str, default: str | None) -> Path | None:
        value = self.document.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a path (text) or null")
        return home / value  # an absolute value stays absolute

    def file(self, home: Path, key: str, default: str) -> Path:
        value = self.path(home, key, default)
        if value is None:
            raise self.fail(key, "must be a path (text)")
        return value

    def mapping(self, key: str, default: dict[str, Any]) -> Mapping[str, Any]:
        value = self.document.get(key, default)
        if not isinstance(value, dict):
            raise self.fail(key, "must be a JSON object")
        return MappingProxyType(dict(value))

    def networks(self, key: str) -> tuple[str, ...]:
        value = self.document.get(key, [])
        if not isinstance(value, list) or len(value) > MAX_TRUSTED_PROXIES:
            raise self.fail(key, f"must be a list of at most {MAX_TRUSTED_PROXIES} IP addresses or networks")
        try:
            parse_networks(value, key)
        except ValueError as exc:
            raise GenesisError(f"{self.source}: {exc}") from exc
        return tuple(value)

    def log_level(self) -> str:
        value = self.document.get("log_level", "info")
        if value not in LOG_LEVELS:
            raise self.fail("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
        return str(value)

    def role(self, allowed: tuple[str, ...], loader: str) -> str:
        value = self.required("role")
        if value not in allowed:
            hint = ("load it with load_gateway_config" if value == ROLE_GATEWAY
                    else "load it with load_node_config" if value in NODE_ROLES else "")
            raise self.fail("role", f"is {value!r}, {loader} reads {' or '.join(allowed)}"
                                    + (f"; {hint}" if hint else ""))
        return str(value)


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _home_and_source(home: str | os.PathLike[str]) -> tuple[Path, Path]:
    root = Path(home).resolve()
    if not root.is_dir():
        raise GenesisError(f"home folder {root} does not exist")
    return root, root / CONFIG_FILE


def _read(source: Path) -> Any:
    if not source.is_file():
        raise GenesisError(f"{source} does not exist: is this a Veche home folder (see veche testnet init)?")
    return read_json_document(source, "config file")


# --- loaders -----------------------------------------------------------------------------------


def _peers(reader: _Reader) -> tuple[Peer, ...]:
    raw = reader.document.get("peers", [])
    if not isinstance(raw, list):
        raise reader.fail("peers", "must be a list of {name, url} objects")
    peers = []
    for index, item in enumerate(raw):
        where = f"peers[{index}]"
        if not isinstance(item, dict) or set(item) - PEER_KEYS or not PEER_KEYS <= set(item):
            raise reader.fail(where, "must be an object with exactly the keys name and url")
        if not isinstance(item["name"], str) or not ID_PATTERN.fullmatch(item["name"]):
            raise reader.fail(f"{where}.name", "must match [A-Za-z0-9._-]{1,64}")
        peers.append(Peer(item["name"], reader.url(f"{where}.url", item["url"])))
    names = [p.name for p in peers]
    if len(set(names)) != len(names):
        raise reader.fail("peers", "lists the same peer name twice")
    return tuple(peers)


def load_node_config(home: str | os.PathLike[str]) -> NodeConfig:
    """Read ``<home>/config.json`` of a validator or an observer."""
    root, source = _home_and_source(home)
    reader = _Reader(_read(source), source, NODE_KEYS)
    role = reader.role(NODE_ROLES, "load_node_config")
    host = reader.text("listen_host", "127.0.0.1")
    port = reader.port("listen_port")
    api_url = reader.url("api_url", reader.document.get("api_url", _base_url(host, port)))
    key_file = reader.path(root, "key_file", DEFAULT_VALIDATOR_KEY_FILE if role == ROLE_VALIDATOR else None)
    if role == ROLE_VALIDATOR and key_file is None:
        raise reader.fail("key_file", "is required for a validator")
    return NodeConfig(
        home=root, name=reader.ident("name"), role=role, listen_host=host, listen_port=port, api_url=api_url,
        genesis_file=reader.file(root, "genesis_file", "genesis.json"),
        key_file=key_file,
        signing_state_file=reader.file(root, "signing_state_file", SIGNING_STATE_FILE),
        data_dir=reader.file(root, "data_dir", "data"),
        peers=_peers(reader),
        log_level=reader.log_level(),
        mempool_max_txs=reader.positive_int("mempool_max_txs", DEFAULT_MEMPOOL_MAX_TXS),
        mempool_max_bytes=reader.positive_int("mempool_max_bytes", DEFAULT_MEMPOOL_MAX_BYTES),
        limits=reader.mapping("limits", {}),
        trusted_proxies=reader.networks("trusted_proxies"),
        ca_file=reader.path(root, "ca_file", None),
        log_file=reader.path(root, "log_file", "node.log"),
    )


def _nodes(reader: _Reader) -> tuple[str, ...]:
    raw = reader.required("nodes")
    if not isinstance(raw, list) or not raw:
        raise reader.fail("nodes", "must be a non-empty list of node API URLs")
    urls = tuple(reader.url(f"nodes[{index}]", item) for index, item in enumerate(raw))
    if len(set(urls)) != len(urls):
        raise reader.fail("nodes", "lists the same URL twice")
    return urls


def load_gateway_config(home: str | os.PathLike[str]) -> GatewayConfig:
    """Read ``<home>/config.json`` of the gateway."""
    root, source = _home_and_source(home)
    reader = _Reader(_read(source), source, GATEWAY_KEYS | GATEWAY_EXTRA_KEYS)
    reader.role((ROLE_GATEWAY,), "load_gateway_config")
    host = reader.text("listen_host", "127.0.0.1")
    port = reader.port("listen_port")
    form_min_seconds = reader.document.get("form_min_seconds", 1)
    if not isinstance(form_min_seconds, (int, float)) or isinstance(form_min_seconds, bool) or form_min_seconds < 0:
        raise reader.fail("form_min_seconds", f"must be a number of seconds >= 0, got {form_min_seconds!r}")
    proxy_header = reader.document.get("trusted_proxy_header")
    if proxy_header is not None and (not isinstance(proxy_header, str) or not proxy_header.strip()):
        raise reader.fail("trusted_proxy_header", "must be a header name (e.g. X-Forwarded-For) or null")
    tls = reader.document.get("tls", False)
    if not isinstance(tls, bool):
        raise reader.fail("tls", "must be true or false")
    sms = reader.mapping("sms", {"provider": "outbox"})
    if not isinstance(sms.get("provider", "outbox"), str):
        raise reader.fail("sms.provider", "must name the SMS provider (e.g. \"outbox\")")
    return GatewayConfig(
        home=root, name=reader.ident("name"), listen_host=host, listen_port=port,
        url=reader.url("url", reader.document.get("url", _base_url(host, port))),
        genesis_file=reader.file(root, "genesis_file", "genesis.json"),
        key_file=reader.file(root, "key_file", DEFAULT_GATEWAY_KEY_FILE),
        data_dir=reader.file(root, "data_dir", "data"),
        nodes=_nodes(reader), sms=sms, form_min_seconds=float(form_min_seconds),
        trusted_proxy_header=proxy_header, tls=tls, log_level=reader.log_level(),
        limits=reader.mapping("limits", {}),
        extra=MappingProxyType({key: value for key, value in reader.document.items() if key in GATEWAY_EXTRA_KEYS}),
    )
