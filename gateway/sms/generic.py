"""The generic JSON-over-HTTPS provider (``"provider": "http"``, docs/GATEWAY.md "SMS providers").

``POST url`` with the JSON body ``{"to": "+79…", "text": "…", "sender": "…"}`` and the API key in the
header ``api_key_header``. The answer expected: any 2xx status means the provider took the message
(the body is not read); 429 and 5xx are retried with back-off, as are timeouts and refused
connections; any other 4xx is final. Health: ``GET health_url`` must answer 2xx; without a
``health_url`` the provider counts as reachable when ``url`` answers anything below 500.
"""

from __future__ import annotations

import aiohttp

from gateway.errors import ConfigError, SmsError
from gateway.sms.base import Attempt, http_status_attempt, probe_url, require_https, send_with_retries


class HttpProvider:
    name = "http"

    def __init__(self, url: str, api_key: str, *, header: str = "X-API-Key", sender: str = "Veche",
                 timeout_s: float = 5.0, retries: int = 3, backoff_s: float = 0.2, health_url: str | None = None,
                 session: aiohttp.ClientSession | None = None) -> None:
        require_https(url)
        if health_url is not None:
            require_https(health_url, "sms.health_url")
        if not api_key:
            raise ConfigError("the SMS provider's API key is empty")
        self.url = url
        self.api_key = api_key
        self.header = header
        self.sender = sender
        self.health_url = health_url
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.retries = retries
        self.backoff_s = backoff_s
        self._own_session = session is None
        self.session = session or aiohttp.ClientSession()

    async def send(self, to: str, text: str) -> None:
        payload = {"to": to, "text": text, "sender": self.sender}

        async def attempt() -> Attempt:
            async with self.session.post(self.url, json=payload, headers={self.header: self.api_key},
                                         timeout=self.timeout) as response:
                await response.read()
                return http_status_attempt(response.status)

        await send_with_retries(self.name, attempt, retries=self.retries, backoff_s=self.backoff_s)

    async def check(self) -> None:
        if self.health_url is not None:
            status = await probe_url(self.session, self.health_url, self.timeout)
            if not 200 <= status < 300:
                raise SmsError(f"the SMS provider's health URL answered HTTP {status}", "http_status")
            return
        status = await probe_url(self.session, self.url, self.timeout, method="HEAD")
        if status >= 500:
            raise SmsError(f"the SMS provider answered HTTP {status}", "http_5xx")

    async def close(self) -> None:
        if self._own_session:
            await self.session.close()
