"""A small Prometheus text-format registry (counters, gauges, histograms with labels).

Gauges that mirror live state are read through callbacks at scrape time, so nothing has to
remember to update them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: LabelValues, extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = labels

    def samples(self) -> Iterable[str]:
        raise NotImplementedError

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines.extend(self.samples())
        return "\n".join(lines)


class Counter(Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        super().__init__(name, help_text, labels)
        self.values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, amount: float = 1) -> None:
        self.values[labels] = self.values.get(labels, 0) + amount

    def value(self, *labels: str) -> float:
        return self.values.get(labels, 0)

    def samples(self) -> Iterable[str]:
        if not self.values and not self.label_names:
            yield f"{self.name} 0"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


class Gauge(Metric):
    kind = "gauge"

    def __init__(self, name: str, help_text: str, read: Callable[[], float] | None = None,
                 labels: tuple[str, ...] = (), read_labeled: Callable[[], dict[LabelValues, float]] | None = None) -> None:
        super().__init__(name, help_text, labels)
        self._read = read
        self._read_labeled = read_labeled
        self.values: dict[LabelValues, float] = {}

    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value

    def samples(self) -> Iterable[str]:
        if self._read is not None:
            yield f"{self.name} {_number(self._read())}"
            return
        values = self._read_labeled() if self._read_labeled is not None else self.values
        if not values and not self.label_names:
            yield f"{self.name} 0"
        for labels, value in sorted(values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


class Histogram(Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * (len(self.buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def samples(self) -> Iterable[str]:
        cumulative = 0
        for bound, count in zip(self.buckets, self.counts):
            cumulative += count
            yield f'{self.name}_bucket{{le="{_number(bound)}"}} {cumulative}'
        yield f'{self.name}_bucket{{le="+Inf"}} {self.count}'
        yield f"{self.name}_sum {_number(self.total)}"
        yield f"{self.name}_count {self.count}"


class Registry:
    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def add(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        return metric

    def counter(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Counter:
        metric = Counter(name, help_text, labels)
        self.metrics.append(metric)
        return metric

    def gauge(self, name: str, help_text: str, read: Callable[[], float] | None = None, *,
              labels: tuple[str, ...] = (),
              read_labeled: Callable[[], dict[LabelValues, float]] | None = None) -> Gauge:
        metric = Gauge(name, help_text, read, labels, read_labeled)
        self.metrics.append(metric)
        return metric

    def histogram(self, name: str, help_text: str, buckets: tuple[float, ...]) -> Histogram:
        metric = Histogram(name, help_text, buckets)
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        return "\n".join(metric.render() for metric in self.metrics) + "\n"


class NodeMetrics:
    """Every metric the node exports; live gauges are bound later by ``bind_*``."""

    def __init__(self) -> None:
        self.registry = Registry()
        r = self.registry
        self.txs_accepted = r.counter("veche_txs_accepted_total", "Transactions admitted to the mempool.",
                                      ("source",))
        self.txs_rejected = r.counter("veche_txs_rejected_total",
                                      "Transactions refused at admission or dropped later, by code.", ("code",))
        self.requests_shed = r.counter("veche_requests_shed_total",
                                       "POST /api/v1/txs requests refused before decoding, by reason.", ("reason",))
        self.txs_committed = r.counter("veche_txs_committed_total", "Transactions in committed blocks.")
        self.blocks_committed = r.counter("veche_blocks_committed_total", "Blocks committed, by how.", ("via",))
        self.commit_latency = r.histogram(
            "veche_block_commit_seconds", "Time from proposal (block time) to commit on this node.",
            (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0))
        self.commit_write = r.histogram(
            "veche_block_write_seconds", "Time to apply and write one committed block (synced batch).",
            (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
        self.signing_write = r.histogram(
            "veche_signing_state_write_seconds", "Time to persist the signing state (fsync) before signing.",
            (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
        self.loop_lag = r.histogram(
            "veche_event_loop_lag_seconds", "How late the event loop wakes a 100 ms timer (CPU starvation or blocking).",
            (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
        self.gossip_wait = r.histogram(
            "veche_gossip_queue_seconds", "How long gossiped transactions waited for admission on this node.",
            (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0))
        self.mempool_wait = r.histogram(
            "veche_mempool_wait_seconds", "Admission to inclusion in a block this node proposed, per transaction.",
            (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0))
        self.rounds = r.counter("veche_consensus_round_changes_total", "Rounds started above round 0.")
        self.stalled = r.gauge(
            "veche_consensus_stalled",
            "1 while this node has seen no new block for the stall threshold (6 heartbeats, 30 s by default).")
        self.stalls = r.counter("veche_consensus_stalls_total", "Stall alarms raised (no new block for the threshold).")
        self.consensus_rejected = r.counter(
            "veche_consensus_messages_rejected_total",
            "Consensus messages the engine rejected, by the validator whose authenticated link delivered them, "
            "and code.", ("validator", "code"))
        self.consensus_sent = r.counter(
            "veche_consensus_messages_sent_total",
            "Consensus messages queued to peer links (one per copy), by kind (proposal, prevote, precommit, "
            "evidence).", ("kind",))
        self.p2p_rejected = r.counter("veche_p2p_rejected_total",
                                      "Rejected /p2p/* requests, by claimed sender and reason.", ("peer", "reason"))
        self.p2p_received = r.counter("veche_p2p_envelopes_total", "Authentic envelopes received, by sender.",
                                      ("peer",))
        self.p2p_duplicates = r.counter("veche_p2p_duplicates_total", "Replayed envelopes ignored, by sender.",
                                        ("peer",))
        self.p2p_stale_proposals = r.counter(
            "veche_p2p_stale_proposals_total", "Proposals of already decided heights skipped undecoded, by sender.",
            ("peer",))
        self.p2p_dropped = r.counter("veche_p2p_dropped_total",
                                     "Outgoing items dropped because a peer queue was full, by peer and kind.",
                                     ("peer", "kind"))
        self.p2p_sent = r.counter("veche_p2p_sent_total", "Envelopes sent, by peer.", ("peer",))
        self.evidence = r.counter("veche_equivocation_evidence_total", "Equivocations detected, by validator.",
                                  ("validator",))
        self.evidence_ignored = r.counter(
            "veche_evidence_ignored_total",
            "Equivocation evidence not recorded, checked for no signature and counted against no peer, by reason: "
            "duplicate_slot (one proof per validator, height, round and step is kept), outside_window, "
            "validator_cap (that validator already has the most proofs kept against it).", ("reason",))
        self.sync_blocks = r.counter("veche_sync_blocks_total", "Blocks applied by block sync.")
        self.sync_fetches = r.counter("veche_sync_fetches_total", "Block ranges block sync asked a peer for.")
        self.sync_bad_peer = r.counter("veche_sync_bad_peer_total",
                                       "Peers that served blocks that do not check, by peer.", ("peer",))

    def bind_live(self, *, height: Callable[[], float], mempool_size: Callable[[], float],
                  mempool_bytes: Callable[[], float], peers_connected: Callable[[], float],
                  sync_target: Callable[[], float], catching_up: Callable[[], float],
                  consensus_round: Callable[[], float]) -> None:
        r = self.registry
        r.gauge("veche_height", "Height of the last committed block.", height)
        r.gauge("veche_mempool_txs", "Transactions waiting in the mempool.", mempool_size)
        r.gauge("veche_mempool_bytes", "Bytes of transactions waiting in the mempool.", mempool_bytes)
        r.gauge("veche_peers_connected", "Validators: peer links up; observers: sync sources answering.",
                peers_connected)
        r.gauge("veche_sync_target_height", "Highest height seen at a peer (block sync target).", sync_target)
        r.gauge("veche_catching_up", "1 while block sync is behind its target.", catching_up)
        r.gauge("veche_consensus_round", "Current consensus round at the current height.", consensus_round)

    def render(self) -> str:
        return self.registry.render()
