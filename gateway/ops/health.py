"""What ``GET /healthz`` reports: can the gateway reach a node of its chain and its SMS provider?

A background task probes every ``health_interval_seconds``: ``GET /api/v1/status`` of each configured
node (up when it answers 200 with this gateway's chain id) and the SMS provider's own health check
(``SmsProvider.check``: SMSC.ru's balance, the generic provider's health URL, the outbox file). The
route only reads the last result, so a flood of health requests costs no outgoing traffic.

Unhealthy (503) when no node is up, when the SMS provider is down, when the last
``SMS_FAILURES_UNHEALTHY`` messages all failed, or when the probes themselves stalled; the answer lists
the reasons (never a phone number).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.errors import SmsError
from gateway.ops.metrics import MeteredSms

log = logging.getLogger("veche.gateway.health")

SMS_FAILURES_UNHEALTHY = 3
MAX_STATUS_BYTES = 1 << 20


@dataclass(slots=True)
class Probe:
    up: bool | None = None          # None: not checked yet
    detail: str = "not checked yet"
    height: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"up": bool(self.up), "detail": self.detail, "height": self.height}


class HealthMonitor:
    def __init__(self, nodes: tuple[str, ...], chain_id: str, session: aiohttp.ClientSession, sms: MeteredSms, *,
                 interval_s: float, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.nodes = {url: Probe() for url in nodes}
        self.chain_id = chain_id
        self.session = session
        self.sms = sms
        self.sms_probe = Probe()
        self.interval_s = interval_s
        self.timeout = aiohttp.ClientTimeout(total=min(timeout_s, interval_s * 2))
        self.clock = clock
        self.last_round: float | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("health check failed; trying again")
            await asyncio.sleep(self.interval_s)

    async def check_once(self) -> None:
        was = self.healthy_reasons()
        await asyncio.gather(*(self._check_node(url, probe) for url, probe in self.nodes.items()), self._check_sms())
        self.last_round = self.clock()
        now = self.healthy_reasons()
        if now != was:
            if now:
                log.warning("gateway unhealthy: %s", "; ".join(now))
            else:
                log.info("gateway healthy: a node of its chain and the SMS provider answer")

    async def _check_node(self, url: str, probe: Probe) -> None:
        try:
            async with self.session.get(url + "/api/v1/status", timeout=self.timeout) as response:
                body = await response.content.read(MAX_STATUS_BYTES)
                status = response.status
        except asyncio.TimeoutError:
            probe.up, probe.detail = False, "no answer in time"
            return
        except (aiohttp.ClientError, OSError) as exc:
            probe.up, probe.detail = False, f"unreachable ({exc.__class__.__name__})"
            return
        if status != 200:
            probe.up, probe.detail = False, f"answered HTTP {status}"
            return
        try:
            document = json.loads(body)
        except ValueError:
            probe.up, probe.detail = False, "answered something that is not the node API"
            return
        if not isinstance(document, dict) or document.get("chain_id") != self.chain_id:
            chain = document.get("chain_id") if isinstance(document, dict) else None
            probe.up, probe.detail = False, f"serves another chain ({str(chain)[:64]!r})"
            return
        height = document.get("height")
        probe.up, probe.detail = True, "ok"
        probe.height = height if isinstance(height, int) else None

    async def _check_sms(self) -> None:
        try:
            await self.sms.check()
        except SmsError as exc:
            self.sms_probe.up, self.sms_probe.detail = False, f"{exc.reason}: {exc.message}"
            return
        self.sms_probe.up, self.sms_probe.detail = True, "ok"

    def healthy_reasons(self) -> list[str]:
        """Why the gateway is unhealthy (empty when healthy)."""
        reasons: list[str] = []
        if self.last_round is None:
            return ["health checks have not completed yet"]
        stale = self.clock() - self.last_round
        if stale > 3 * self.interval_s + (self.timeout.total or 0):
            reasons.append(f"health checks stalled: the last one finished {stale:.0f} s ago")
        if not any(probe.up for probe in self.nodes.values()):
            reasons.append("no node reachable: " + "; ".join(f"{url} {probe.detail}" for url, probe in self.nodes.items()))
        if self.sms_probe.up is False:
            reasons.append(f"SMS provider {self.sms.name} unavailable: {self.sms_probe.detail}")
        if self.sms.consecutive_failures >= SMS_FAILURES_UNHEALTHY and self.sms.last_failure is not None:
            reasons.append(f"the last {self.sms.consecutive_failures} SMS failed ({self.sms.last_failure.reason})")
        return reasons

    def nodes_up(self) -> dict[str, float]:
        return {url: 1.0 if probe.up else 0.0 for url, probe in self.nodes.items()}

    def to_json(self) -> dict[str, Any]:
        return {"nodes": {url: probe.to_json() for url, probe in self.nodes.items()},
                "sms": {"provider": self.sms.name, "up": bool(self.sms_probe.up), "detail": self.sms_probe.detail,
                        "consecutive_failures": self.sms.consecutive_failures}}
