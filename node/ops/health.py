"""``GET /healthz`` of a node: can it do its job now? (docs/NODE.md §7, §11)

Healthy (200) unless one of these holds (503, each with a reason):

* its last block is older than ``max(STALE_MIN_MS, 3 × heartbeat_ms)`` by this machine's clock —
  the chain commits an empty block at least every ``heartbeat_ms``, so an older block means the
  network (or this node) has stopped: height not advancing;
* it is catching up (block sync is behind a peer);
* a validator has fewer peer links up than a quorum needs (it cannot help commit anything) — the
  validator set in force at the next height, which ``validators.update`` may have changed;
* an observer reaches none of its sources.

Fewer peer links than n − 1 while a quorum is still reachable is reported as a warning, with 200.
The answer carries the figures behind the verdict, never anything secret, so a load balancer, a
systemd watchdog script or Prometheus' blackbox exporter can use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node.driver import wall_clock_ms

if TYPE_CHECKING:
    from node.node import Node

STALE_MIN_MS = 15_000


def node_health(node: "Node") -> tuple[bool, dict[str, Any]]:
    """(healthy, the JSON answer)."""
    ledger = node.ledger
    reasons: list[str] = []
    warnings: list[str] = []
    now_ms = wall_clock_ms()
    heartbeat_ms = node.genesis.consensus.heartbeat_ms
    stale_after_ms = max(STALE_MIN_MS, 3 * heartbeat_ms)
    last_time_ms = ledger.last_time_ms
    age_ms = max(0, now_ms - last_time_ms)
    if age_ms > stale_after_ms:
        reasons.append(f"the last block (height {ledger.height}) is {age_ms / 1000:.0f} s old; the chain commits "
                       f"one at least every {heartbeat_ms / 1000:g} s")
    target = max(node.sync.target, ledger.height)
    if node.sync.catching_up:
        reasons.append(f"catching up: height {ledger.height} of {target}")
    in_force = ledger.validators_at(ledger.height + 1)       # the set of the next height (docs/PROTOCOL.md §15)
    if node.peers is not None:
        connected = node.peers.connected()
        own = 1 if node.validator_index is not None else 0   # a spare or removed validator needs every vote
        expected = in_force.size - own
        needed = in_force.quorum - own
        if connected < needed:
            reasons.append(f"{connected} of {expected} peer links up; a quorum needs {needed}")
        elif connected < expected:
            warnings.append(f"{connected} of {expected} peer links up")
    else:
        connected = node.sync.reachable()
        expected = len(node.sync.describe())
        if connected == 0:
            reasons.append("no peer answers (block sync has no source)")
        elif connected < expected:
            warnings.append(f"{connected} of {expected} peers answer")
    document = {"status": "unhealthy" if reasons else "ok", "reasons": reasons, "warnings": warnings,
                "node": node.name, "role": node.role, "height": ledger.height, "sync_target": target,
                "last_block_age_ms": age_ms, "stale_after_ms": stale_after_ms, "peers": connected,
                "peers_expected": expected, "catching_up": node.sync.catching_up}
    return not reasons, document
