"""The node's metrics, kept and exposed by ``prometheus_client`` (docs/NODE.md §8).

One ``CollectorRegistry`` per node (tests run several nodes in one process). Counters and
histograms are ``prometheus_client`` metrics behind a thin wrapper that keeps the node's call sites
short (``metrics.p2p_received.inc(peer)``) and caches each label set's child, so a hot-path call is
one dict lookup plus the library's own increment. Gauges that mirror live state are read through
callbacks at scrape time (a custom collector), so nothing has to remember to update them.
``render()`` is the Prometheus text format (0.0.4) that ``GET /metrics`` serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LabelValues = tuple[str, ...]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic Prometheus text format, which every scraper reads."""

# No ``*_created`` series beside every counter and histogram: they double the scrape for no use here
# (a restart is visible from ``process_start_time_seconds`` / the counters resetting).
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it unannotated


def _sample_value(metric: prometheus_client.Counter, names: tuple[str, ...], labels: LabelValues) -> float:
    wanted = dict(zip(names, labels))
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels == wanted:
                return float(sample.value)
    return 0.0


class Counter:
    """A counter with fixed label names: ``inc(*label_values, amount=1)``."""

    __slots__ = ("metric", "label_names", "_children")

    def __init__(self, registry: CollectorRegistry, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.metric = prometheus_client.Counter(name, help_text, labels, registry=registry)
        self.label_names = labels
        self._children: dict[LabelValues, prometheus_client.Counter] = {} if labels else {(): self.metric}

    def inc(self, *labels: str, amount: float = 1) -> None:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.metric.labels(*labels)
        child.inc(amount)

    def value(self, *labels: str) -> float:
        """The current value of one label set (0 if never incremented)."""
        return _sample_value(self.metric, self.label_names, labels) if labels in self._children else 0.0

    @property
    def values(self) -> dict[LabelValues, float]:
        """Every label set incremented so far, with its value."""
        return {labels: _sample_value(self.metric, self.label_names, labels) for labels in self._children}


class Histogram:
    """A histogram without labels: ``observe(seconds)``."""

    __slots__ = ("metric", "observe")

    def __init__(self, registry: CollectorRegistry, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        self.metric = prometheus_client.Histogram(name, help_text, buckets=buckets, registry=registry)
        self.observe: Callable[[float], None] = self.metric.observe


class LiveGauges(Collector):
    """Gauges read from callbacks at scrape time."""

    def __init__(self) -> None:
        self.gauges: list[tuple[str, str, Callable[[], float]]] = []

    def add(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges.append((name, help_text, read))

    def collect(self) -> Iterable[Metric]:
        for name, help_text, read in self.gauges:
            yield GaugeMetricFamily(name, help_text, value=float(read()))


class NodeMetrics:
    """Every metric the node exports; live gauges are bound later by ``bind_*``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.live = LiveGauges()
        self.registry.register(self.live)
        r = self
        self.txs_accepted = r.counter("veche_txs_accepted_total", "Transactions admitted to the mempool.",
                                      ("source",))
        self.txs_rejected = r.counter("veche_txs_rejected_total",
                                      "Transactions refused at admission or dropped later, by code.", ("code",))
        self.requests_shed = r.counter("veche_requests_shed_total",
                                       "POST /api/v1/txs requests refused before decoding, by reason.", ("reason",))
        self.tx_posts = r.counter(
            "veche_tx_posts_total", "POST /api/v1/txs requests, by whether the client (the TCP peer, or the address a "
            "trusted proxy named) is in limits.trusted_clients.", ("client",))
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
        self.consensus_stalled = 0.0
        """Set by the consensus driver's stall alarm (node/driver.py)."""
        r.gauge("veche_consensus_stalled",
                "1 while this node has seen no new block for the stall threshold (6 heartbeats, 30 s by default).",
                lambda: self.consensus_stalled)
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

    def counter(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(self.registry, name, help_text, labels)

    def histogram(self, name: str, help_text: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(self.registry, name, help_text, buckets)

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge read through ``read()`` at every scrape."""
        self.live.add(name, help_text, read)

    def bind_live(self, *, height: Callable[[], float], mempool_size: Callable[[], float],
                  mempool_bytes: Callable[[], float], peers_connected: Callable[[], float],
                  sync_target: Callable[[], float], catching_up: Callable[[], float],
                  consensus_round: Callable[[], float]) -> None:
        r = self
        r.gauge("veche_height", "Height of the last committed block.", height)
        r.gauge("veche_mempool_txs", "Transactions waiting in the mempool.", mempool_size)
        r.gauge("veche_mempool_bytes", "Bytes of transactions waiting in the mempool.", mempool_bytes)
        r.gauge("veche_peers_connected", "Validators: peer links up; observers: sync sources answering.",
                peers_connected)
        r.gauge("veche_sync_target_height", "Highest height seen at a peer (block sync target).", sync_target)
        r.gauge("veche_catching_up", "1 while block sync is behind its target.", catching_up)
        r.gauge("veche_consensus_round", "Current consensus round at the current height.", consensus_round)

    def render(self) -> str:
        """The Prometheus text exposition of every metric (``CONTENT_TYPE``)."""
        return generate_latest(self.registry).decode("utf-8")
