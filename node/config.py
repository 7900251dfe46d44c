"""The node's view of its home: the shared ``config.json`` loader plus node tuning from ``limits``.

``genesis.config.load_node_config`` reads and validates ``<home>/config.json`` (docs/INTERNALS.md).
The node's own knobs live in that file's optional ``limits`` object (all optional):

  client_tx_rate      transactions per second one client IP may submit (token bucket; default 5000)
  client_tx_burst     bucket size (default 20000; never below one full batch)
  verify_threads      threads verifying a POST's signatures (0 = on the event loop, in chunks; default 0)
  sync_poll_ms        how often an observer polls its peers' status (default 150)
  backlog_ms          refuse client transactions (503) while more wait than the network committed
                      in this many milliseconds (default 1000; at least 1000 transactions may wait)
  proposal_grace_ms   a transaction is proposed only this long after this node admitted it, so the
                      other validators have verified it from gossip (default 100; 0 = at once)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.errors import GenesisError
from genesis.config import NodeConfig, load_node_config
from node.errors import ConfigError

LIMIT_DEFAULTS: dict[str, int] = {
    "client_tx_rate": 5_000,
    "client_tx_burst": 20_000,
    "verify_threads": 0,
    "sync_poll_ms": 150,
    "backlog_ms": 1000,
    "proposal_grace_ms": 100,
}


@dataclass(frozen=True, slots=True)
class NodeLimits:
    client_tx_rate: int = 5_000
    client_tx_burst: int = 20_000
    verify_threads: int = 0
    sync_poll_ms: int = 150
    backlog_ms: int = 1000
    proposal_grace_ms: int = 100


def parse_limits(raw: Mapping[str, Any], where: str = "limits") -> NodeLimits:
    unknown = sorted(set(raw) - set(LIMIT_DEFAULTS))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(LIMIT_DEFAULTS))})")
    values = dict(LIMIT_DEFAULTS)
    for key, value in raw.items():
        may_be_zero = key in ("verify_threads", "proposal_grace_ms")
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
    return config, parse_limits(config.limits, f"{config.home / 'config.json'}: limits")
