"""SMS providers behind one interface: ``await provider.send(to, text)``.

* ``outbox`` (development default, ARCHITECTURE §6): appends one JSON line ``{"to", "text"}`` per
  message to ``<gateway home>/sms-outbox.jsonl``.
* ``http``: a generic JSON-over-HTTPS provider. ``POST url`` with ``{"to", "text", "sender"}`` and
  the API key in a configurable header; a timeout per attempt; 5xx, 429, timeouts and connection
  errors are retried with exponential back-off, any other 4xx is final. Plain ``http://`` is
  accepted only for loopback addresses (tests, a local relay): a phone number never crosses a
  network unencrypted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit

import aiohttp

from gateway.config import GatewayConfig
from gateway.errors import ConfigError, SmsError

log = logging.getLogger("veche.gateway.sms")


class SmsProvider(Protocol):
    async def send(self, to: str, text: str) -> None: ...

    async def close(self) -> None: ...


class OutboxProvider:
    """Development provider: one JSON line per message, flushed at once so readers see it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file: IO[str] = os.fdopen(fd, "a", encoding="utf-8")

    async def send(self, to: str, text: str) -> None:
        self._file.write(json.dumps({"to": to, "text": text}, ensure_ascii=False) + "\n")
        self._file.flush()

    async def close(self) -> None:
        self._file.close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpProvider:
    """A JSON-over-HTTPS SMS gateway with retries and back-off."""

    def __init__(self, url: str, api_key: str, *, header: str = "X-API-Key", sender: str = "Veche",
                 timeout_s: float = 5.0, retries: int = 3, backoff_s: float = 0.2,
                 session: aiohttp.ClientSession | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(parts.hostname or "")):
            raise ConfigError("sms.url must be https:// (plain http is allowed only for a loopback address)")
        if not api_key:
            raise ConfigError("the SMS provider's API key is empty")
        self.url = url
        self.api_key = api_key
        self.header = header
        self.sender = sender
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.retries = retries
        self.backoff_s = backoff_s
        self._own_session = session is None
        self.session = session or aiohttp.ClientSession()
        self.sent = 0

    async def send(self, to: str, text: str) -> None:
        payload = {"to": to, "text": text, "sender": self.sender}
        last_problem = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_s * (2 ** (attempt - 1)))
            try:
                async with self.session.post(self.url, json=payload, headers={self.header: self.api_key},
                                             timeout=self.timeout) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self.sent += 1
                        return
                    last_problem = f"HTTP {response.status}"
                    if 400 <= response.status < 500 and response.status != 429:
                        break
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                last_problem = exc.__class__.__name__
            log.warning("SMS provider attempt %d failed: %s", attempt + 1, last_problem)
        raise SmsError(f"the SMS provider did not take the message ({last_problem})")

    async def close(self) -> None:
        if self._own_session:
            await self.session.close()


def read_api_key(config: GatewayConfig) -> str:
    sms = config.sms
    if sms.api_key_file is not None:
        path = config.home / sms.api_key_file
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the SMS API key file {path}: {exc}") from exc
    if sms.api_key_env is not None:
        value = os.environ.get(sms.api_key_env, "").strip()
        if not value:
            raise ConfigError(f"environment variable {sms.api_key_env} (sms.api_key_env) is empty")
        return value
    raise ConfigError("the http SMS provider needs sms.api_key_file or sms.api_key_env")


def make_provider(config: GatewayConfig, session: aiohttp.ClientSession | None = None) -> SmsProvider:
    if config.sms.provider == "outbox":
        return OutboxProvider(config.outbox_path)
    if config.sms.url is None:
        raise ConfigError("sms.provider \"http\" needs sms.url")
    return HttpProvider(config.sms.url, read_api_key(config), header=config.sms.api_key_header,
                        sender=config.sms.sender, timeout_s=config.sms.timeout_seconds,
                        retries=config.sms.retries, session=session)
