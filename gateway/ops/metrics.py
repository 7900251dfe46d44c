"""The gateway's Prometheus metrics (``GET /metrics``, docs/GATEWAY.md "Monitoring").

Counters are kept by ``prometheus_client`` in the gateway's own registry; gauges of live state
(sessions, the unconfirmed ballots, requests in progress, what the health monitor last saw) are read
at scrape time. ``MeteredSms`` wraps the SMS provider so that every message is counted as sent or
failed (by reason) and timed, whatever the provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.errors import SmsError
from gateway.sms.base import SmsProvider

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it unannotated


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sms_sent = prometheus_client.Counter(
            "veche_gateway_sms_sent_total", "SMS messages the provider took, by provider.", ("provider",), registry=r)
        self.sms_failed = prometheus_client.Counter(
            "veche_gateway_sms_failed_total", "SMS messages the provider did not take after every retry, by provider "
            "and reason (timeout, connection, http_5xx, http_4xx, rate_limited, balance, auth, blocked, rejected, "
            "bad_answer, io).", ("provider", "reason"), registry=r)
        self.sms_seconds = prometheus_client.Histogram(
            "veche_gateway_sms_send_seconds", "Time to hand one SMS to the provider, retries included.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0), registry=r)
        self.node_failovers = prometheus_client.Counter(
            "veche_gateway_node_failovers_total", "Requests to a node that failed (connection, timeout, 5xx, 429, "
            "503, not JSON) and moved on to the next node, by node.", ("node",), registry=r)
        self.ballots = prometheus_client.Counter(
            "veche_gateway_ballots_total", "Cast ballots by what was known when the answer redirected to the "
            "receipt: committed (within commit_wait_seconds), pending, rejected.", ("outcome",), registry=r)
        self.live = LiveState()
        r.register(self.live)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class LiveState(Collector):
    """Gauges (and the persisted refusal counts) read from callbacks at scrape time."""

    def __init__(self) -> None:
        self.gauges: list[tuple[str, str, Callable[[], float]]] = []
        self.labeled: list[tuple[str, str, str, Callable[[], dict[str, float]]]] = []
        self.counters: list[tuple[str, str, str, Callable[[], dict[str, float]]]] = []

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges.append((name, help_text, read))

    def labeled_gauge(self, name: str, help_text: str, label: str, read: Callable[[], dict[str, float]]) -> None:
        self.labeled.append((name, help_text, label, read))

    def labeled_counter(self, name: str, help_text: str, label: str, read: Callable[[], dict[str, float]]) -> None:
        self.counters.append((name, help_text, label, read))

    def collect(self) -> Iterable[Metric]:
        for name, help_text, read in self.gauges:
            yield GaugeMetricFamily(name, help_text, value=float(read()))
        for name, help_text, label, read_labeled in self.labeled:
            family = GaugeMetricFamily(name, help_text, labels=(label,))
            for value_label, value in sorted(read_labeled().items()):
                family.add_metric((value_label,), float(value))
            yield family
        for name, help_text, label, read_labeled in self.counters:
            counter = CounterMetricFamily(name.removesuffix("_total"), help_text, labels=(label,))
            for value_label, value in sorted(read_labeled().items()):
                counter.add_metric((value_label,), float(value))
            yield counter


class MeteredSms:
    """An ``SmsProvider`` that counts and times what the wrapped provider does."""

    def __init__(self, provider: SmsProvider, metrics: GatewayMetrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.provider = provider
        self.name = provider.name
        self.metrics = metrics
        self.clock = clock
        self.consecutive_failures = 0
        self.last_failure: SmsError | None = None

    async def send(self, to: str, text: str) -> None:
        started = self.clock()
        try:
            await self.provider.send(to, text)
        except SmsError as exc:
            self.metrics.sms_failed.labels(self.name, exc.reason).inc()
            self.consecutive_failures += 1
            self.last_failure = exc
            raise
        finally:
            self.metrics.sms_seconds.observe(self.clock() - started)
        self.metrics.sms_sent.labels(self.name).inc()
        self.consecutive_failures = 0
        self.last_failure = None

    async def check(self) -> None:
        await self.provider.check()

    async def close(self) -> None:
        await self.provider.close()
