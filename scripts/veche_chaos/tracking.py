"""What the load offered, what the network acknowledged, and what it committed — per transaction.

Every transaction a driver creates is *offered* (first send time), *acknowledged* when a node
answered ``accepted`` (or ``already_pending``/``already_committed`` on a re-send) or the gateway
showed its hash on the vote page, and *committed* when the commit watcher first saw it in a block.
Commit latency is counted from the first offer, i.e. as the citizen or client sees it, re-sends
included. Times are wall-clock seconds (``time.time()``) so they line up with fault windows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

DIRECT = "direct"
GATEWAY = "gateway"
FLOOD = "flood"
VOTE = "vote"
REGISTRATION = "registration"
ACK_CODES = frozenset({"already_pending", "already_committed"})


@dataclass(slots=True)
class TxRecord:
    tx_hash: bytes
    kind: str
    source: str
    raw: bytes | None = None              # None for gateway ballots (the gateway holds them)
    depends: bytes | None = None          # a vote's registration
    offered: float = 0.0
    acked: float | None = None
    committed: float | None = None
    height: int | None = None
    index: int | None = None
    submits: int = 0
    last_submit: float = 0.0
    last_node: str = ""
    rejections: dict[str, int] = field(default_factory=dict)

    @property
    def latency(self) -> float | None:
        if self.committed is None:
            return None
        return self.committed - self.offered


class Tracker:
    def __init__(self) -> None:
        self.records: dict[bytes, TxRecord] = {}
        self.offered_votes = 0
        self.gateway_flows_failed: dict[str, int] = {}
        self.resubmitted = 0
        self.early: dict[bytes, tuple[int, int, float]] = {}   # committed before anyone offered it here

    def offer(self, tx_hash: bytes, *, kind: str, source: str, raw: bytes | None = None,
              depends: bytes | None = None, node: str = "", now: float | None = None) -> TxRecord:
        moment = time.time() if now is None else now
        record = self.records.get(tx_hash)
        if record is None:
            record = TxRecord(tx_hash, kind, source, raw, depends, offered=moment)
            self.records[tx_hash] = record
            if kind == VOTE:
                self.offered_votes += 1
            early = self.early.pop(tx_hash, None)
            if early is not None:  # a gateway page is shown after its ballot committed
                record.height, record.index, record.committed = early
        record.submits += 1
        record.last_submit = moment
        record.last_node = node
        return record

    def ack(self, tx_hash: bytes, now: float | None = None) -> None:
        record = self.records.get(tx_hash)
        if record is not None and record.acked is None:
            record.acked = time.time() if now is None else now

    def reject(self, tx_hash: bytes, code: str) -> None:
        record = self.records.get(tx_hash)
        if record is not None:
            record.rejections[code] = record.rejections.get(code, 0) + 1

    def committed(self, tx_hash: bytes, height: int, index: int, seen: float) -> None:
        record = self.records.get(tx_hash)
        if record is None:
            self.early[tx_hash] = (height, index, seen)
        elif record.committed is None:
            record.committed = seen
            record.height = height
            record.index = index

    def flow_failed(self, reason: str) -> None:
        self.gateway_flows_failed[reason] = self.gateway_flows_failed.get(reason, 0) + 1

    # --- views --------------------------------------------------------------------------------------

    def votes(self, source: str | None = None) -> Iterator[TxRecord]:
        for record in self.records.values():
            if record.kind == VOTE and (source is None or record.source == source):
                yield record

    def unconfirmed(self, older_than: float) -> list[TxRecord]:
        """Direct transactions not committed whose last send is older than ``older_than`` (the flood's
        are never re-sent: an attacker does not care, and a flood vote admitted but lost must show)."""
        return [r for r in self.records.values()
                if r.committed is None and r.raw is not None and r.source != FLOOD and r.last_submit < older_than]

    def counts(self, source: str | None = None) -> dict[str, int]:
        votes = list(self.votes(source))
        acked = [r for r in votes if r.acked is not None]
        return {
            "offered": len(votes),
            "acknowledged": len(acked),
            "committed": sum(1 for r in votes if r.committed is not None),
            "acknowledged_committed": sum(1 for r in acked if r.committed is not None),
            "lost": sum(1 for r in acked if r.committed is None),
            "committed_without_ack": sum(1 for r in votes if r.acked is None and r.committed is not None),
        }


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (``fraction`` in 0..1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(records: Iterable[TxRecord]) -> dict[str, float | int | None]:
    latencies = [r.latency for r in records if r.latency is not None]
    values = [v for v in latencies if v is not None]
    return {"count": len(values), "p50": percentile(values, 0.5), "p99": percentile(values, 0.99),
            "max": max(values) if values else None}
