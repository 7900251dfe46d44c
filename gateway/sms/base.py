"""What every SMS provider shares: the interface, the retry loop, the https-only rule, health probes.

A provider's ``send(to, text)`` returns once the provider took the message, or raises ``SmsError``
with a ``reason`` label after its retries. One attempt ends in an ``Attempt``: taken, a failure worth
retrying (a timeout, a refused connection, a 5xx, the provider's own "too many requests"), or a
final one (bad credentials, no money left, a number or text the provider refuses). Retries back off
exponentially from ``backoff_s``. ``check()`` answers the gateway's health monitor: None when the
provider is reachable and able to send, else ``SmsError`` saying why.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from gateway.errors import ConfigError, SmsError

log = logging.getLogger("veche.gateway.sms")

RETRYABLE_STATUS_REASON = {429: "rate_limited"}


class SmsProvider(Protocol):
    name: str

    async def send(self, to: str, text: str) -> None: ...

    async def check(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at handing a message to the provider."""

    taken: bool
    reason: str = ""
    retry: bool = False
    detail: str = ""

    @staticmethod
    def ok() -> "Attempt":
        return Attempt(True)

    @staticmethod
    def transient(reason: str, detail: str) -> "Attempt":
        return Attempt(False, reason, True, detail)

    @staticmethod
    def final(reason: str, detail: str) -> "Attempt":
        return Attempt(False, reason, False, detail)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https(url: str, what: str = "sms.url") -> None:
    """A phone number never crosses a network unencrypted: plain http only to a loopback address."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname or "")):
        raise ConfigError(f"{what} must be https:// (plain http is allowed only for a loopback address)")


def http_status_attempt(status: int) -> Attempt:
    """The generic reading of an HTTP status: 2xx taken, 429 and 5xx retried, other 4xx final."""
    if 200 <= status < 300:
        return Attempt.ok()
    if status == 429:
        return Attempt.transient("rate_limited", "HTTP 429")
    if status >= 500:
        return Attempt.transient("http_5xx", f"HTTP {status}")
    return Attempt.final("http_4xx", f"HTTP {status}")


async def guarded(attempt: Callable[[], Awaitable[Attempt]]) -> Attempt:
    """Run one attempt; a timeout or a connection error becomes a transient failure."""
    try:
        return await attempt()
    except asyncio.TimeoutError:
        return Attempt.transient("timeout", "no answer in time")
    except (aiohttp.ClientError, OSError) as exc:
        return Attempt.transient("connection", exc.__class__.__name__)


async def send_with_retries(provider: str, attempt: Callable[[], Awaitable[Attempt]], *, retries: int,
                            backoff_s: float) -> None:
    """Try up to ``retries + 1`` times; raise ``SmsError`` with the last failure's reason."""
    last = Attempt.final("failed", "no attempt made")
    for number in range(retries + 1):
        if number:
            await asyncio.sleep(backoff_s * (2 ** (number - 1)))
        last = await guarded(attempt)
        if last.taken:
            return
        log.warning("SMS provider %s attempt %d failed: %s (%s)", provider, number + 1, last.reason, last.detail)
        if not last.retry:
            break
    raise SmsError(f"the SMS provider did not take the message ({last.reason}: {last.detail})", last.reason)


async def probe_url(session: aiohttp.ClientSession, url: str, timeout: aiohttp.ClientTimeout, *,
                    method: str = "GET") -> int:
    """The HTTP status ``url`` answers with; ``SmsError`` (timeout, connection) if it does not answer."""
    try:
        async with session.request(method, url, timeout=timeout, allow_redirects=False) as response:
            await response.read()
            return response.status
    except asyncio.TimeoutError:
        raise SmsError("the SMS provider did not answer in time", "timeout") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise SmsError(f"cannot reach the SMS provider ({exc.__class__.__name__})", "connection") from None
