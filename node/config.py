"""The node's view of its home: the shared ``config.json`` loader plus node tuning from ``limits``.

``genesis.config.load_node_config`` reads and validates ``<home>/config.json`` (docs/INTERNALS.md).
The node's own knobs live in that file's optional ``limits`` object (all optional):

  client_tx_rate      transactions per second one client IP may submit (token bucket; default 500)
  client_tx_burst     bucket size (default 5000; never below one full batch)
  node_tx_rate        transactions per second all untrusted clients together may submit (one shared
                      bucket; default 0 = one eighth of this machine's Ed25519 verify rate, measured
                      at start, between 200 and 10000)
  node_tx_burst       size of the shared bucket (default 5000; never below one full batch)
  trusted_clients     IP addresses or networks ("10.0.0.7", "10.1.0.0/16", "::1") that skip the
                      per-client and shared buckets — the gateway, forwarding observers, operator
                      tools (default none)
  trusted_tx_rate     transactions per second of the trusted clients' own bucket (default 0 =
                      the node_tx_rate in effect)
  verify_threads      threads verifying a POST's signatures (0 = on the event loop, in chunks; default 0)
  sync_poll_ms        how often an observer polls its peers' status (default 150)
  backlog_ms          refuse client transactions (503) while more wait than the network committed
                      in this many milliseconds (default 1000; at least 1000 transactions may wait)
  proposal_grace_ms   a transaction is proposed only this long after this node admitted it, so the
                      other validators have verified it from gossip (default 100; 0 = at once)
  header_timeout_ms   a request head must be complete this long after its first byte (default 10000)
  body_timeout_ms     the longest pause in a request body, and the grace before min_body_rate applies
                      (default 10000)
  min_body_rate       bytes per second a request body must average after that grace (default 4096)
  max_connections     public connections at once (default 2048; never more than the open-files
                      limit leaves after the node's own files)
  max_connections_per_network  public connections per IPv4 /24 or IPv6 /64 (default 64)
  max_reserved_connections     connections of validator peers and trusted_clients, a pool of their
                      own that public connections cannot fill (default 512)
  disk_min_free_mb    below this much free space on the data directory's device the node takes no new
                      client transactions (503 disk_low); consensus goes on (default 512; 0 = never)
  document_max_bytes  the largest document the document store takes (default 10485760 = 10 MiB)
  documents_max_total_mb        every document this node holds, together (default 2048)
  documents_provisional_mb      uploads no committed transaction names yet, together (default 256)
  documents_provisional_key_mb  ... of one uploading key (default 64)
  documents_provisional_hours   how long such an upload waits for its transaction (default 168 = 7 days)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.errors import GenesisError
from genesis.config import NodeConfig, load_node_config
from node.admission import parse_networks
from node.documents.store import DocumentLimits
from node.errors import ConfigError
from node.ops.tls import TlsConfigError, client_context

LIMIT_DEFAULTS: dict[str, Any] = {
    "client_tx_rate": 500,
    "client_tx_burst": 5_000,
    "node_tx_rate": 0,
    "node_tx_burst": 5_000,
    "trusted_clients": (),
    "trusted_tx_rate": 0,
    "verify_threads": 0,
    "sync_poll_ms": 150,
    "backlog_ms": 1000,
    "proposal_grace_ms": 100,
    "header_timeout_ms": 10_000,
    "body_timeout_ms": 10_000,
    "min_body_rate": 4096,
    "max_connections": 2048,
    "max_connections_per_network": 64,
    "max_reserved_connections": 512,
    "disk_min_free_mb": 512,
    "document_max_bytes": 10 * 1024 * 1024,
    "documents_max_total_mb": 2048,
    "documents_provisional_mb": 256,
    "documents_provisional_key_mb": 64,
    "documents_provisional_hours": 168,
}
MAY_BE_ZERO = frozenset({"verify_threads", "proposal_grace_ms", "node_tx_rate", "trusted_tx_rate",
                         "disk_min_free_mb"})
MAX_TRUSTED_CLIENTS = 256


@dataclass(frozen=True, slots=True)
class NodeLimits:
    client_tx_rate: int = 500
    client_tx_burst: int = 5_000
    node_tx_rate: int = 0
    node_tx_burst: int = 5_000
    trusted_clients: tuple[str, ...] = ()
    trusted_tx_rate: int = 0
    verify_threads: int = 0
    sync_poll_ms: int = 150
    backlog_ms: int = 1000
    proposal_grace_ms: int = 100
    header_timeout_ms: int = 10_000
    body_timeout_ms: int = 10_000
    min_body_rate: int = 4096
    max_connections: int = 2048
    max_connections_per_network: int = 64
    max_reserved_connections: int = 512
    disk_min_free_mb: int = 512
    document_max_bytes: int = 10 * 1024 * 1024
    documents_max_total_mb: int = 2048
    documents_provisional_mb: int = 256
    documents_provisional_key_mb: int = 64
    documents_provisional_hours: int = 168

    def document_limits(self) -> DocumentLimits:
        mib = 1024 * 1024
        return DocumentLimits(max_document_bytes=self.document_max_bytes,
                              max_total_bytes=self.documents_max_total_mb * mib,
                              max_provisional_bytes=self.documents_provisional_mb * mib,
                              max_provisional_per_key=self.documents_provisional_key_mb * mib,
                              provisional_ttl_ms=self.documents_provisional_hours * 3600 * 1000)


def parse_trusted_clients(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where} must be a list of IP addresses or networks (strings), got {value!r}")
    if len(value) > MAX_TRUSTED_CLIENTS:
        raise ConfigError(f"{where} holds at most {MAX_TRUSTED_CLIENTS} entries, got {len(value)}")
    try:
        parse_networks(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return tuple(value)


def parse_limits(raw: Mapping[str, Any], where: str = "limits") -> NodeLimits:
    unknown = sorted(set(raw) - set(LIMIT_DEFAULTS))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(LIMIT_DEFAULTS))})")
    values = dict(LIMIT_DEFAULTS)
    for key, value in raw.items():
        if key == "trusted_clients":
            values[key] = parse_trusted_clients(value, f"{where}.{key}")
            continue
        may_be_zero = key in MAY_BE_ZERO
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if may_be_zero else 1):
            raise ConfigError(f"{where}.{key} must be a {'non-negative' if may_be_zero else 'positive'} "
                              f"integer, got {value!r}")
        values[key] = value
    if values["verify_threads"] > 64:
        raise ConfigError(f"{where}.verify_threads must be at most 64")
    return NodeLimits(**values)


def load_config(home: str | Path) -> tuple[NodeConfig, NodeLimits]:
    """Read a validator's or observer's home; any mistake is a ``ConfigError`` naming the file and key."""
    try:
        config = load_node_config(home)
    except GenesisError as exc:
        raise ConfigError(exc.message) from exc
    if config.ca_file is not None:
        try:
            client_context(config.ca_file)
        except TlsConfigError as exc:
            raise ConfigError(f"{config.home / 'config.json'}: ca_file: {exc.message}") from exc
    return config, parse_limits(config.limits, f"{config.home / 'config.json'}: limits")
