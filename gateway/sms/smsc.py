"""SMSC.ru (``"provider": "smsc"``): its documented HTTP API, answers in JSON (``fmt=3``).

Sending: ``POST <url>/sys/send.php`` with the form fields ``login`` + ``psw`` (or ``apikey`` alone),
``phones`` (E.164 with "+", so the provider does not "correct" the number), ``mes``, ``sender``,
``charset=utf-8``, ``fmt=3``. Taken: ``{"id": <id>, "cnt": <parts>}``. Refused:
``{"error": "<text>", "error_code": N}`` (plus ``"id"`` for 3, 6, 7, 8) with N:

  1 error in the parameters        → final, rejected
  2 wrong login or password, or this address is not allowed → final, auth
  3 not enough money on the account → final, balance
  4 address blocked for a while after too many errors → final, blocked (retrying prolongs it)
  5 wrong date format               → final, rejected
  6 message forbidden (text or sender name) → final, rejected
  7 wrong phone number format       → final, rejected
  8 the message cannot be delivered to this number → final, rejected
  9 the same request too often, or too many concurrent requests → retried, rate_limited

Health: ``POST <url>/sys/balance.php`` (same credentials, ``fmt=3``) answers ``{"balance": "12.34"}``;
a balance of zero or less, or an error, makes the provider unhealthy. SMSC.ru refuses more than ten
balance requests a minute (error 9), so the result is kept ``check_interval_s`` (default 15 s).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from gateway.errors import ConfigError, SmsError
from gateway.sms.base import Attempt, http_status_attempt, require_https, send_with_retries

DEFAULT_URL = "https://smsc.ru"
ERROR_REASONS = {1: "rejected", 2: "auth", 3: "balance", 4: "blocked", 5: "rejected", 6: "rejected",
                 7: "rejected", 8: "rejected", 9: "rate_limited"}
RETRIED_ERRORS = frozenset({9})
MAX_ANSWER_BYTES = 64 * 1024


def _answer(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body[:MAX_ANSWER_BYTES])
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _error_code(document: dict[str, Any]) -> int | None:
    code = document.get("error_code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, str) and code.isascii() and code.isdigit():
        return int(code)
    return None


class SmscProvider:
    name = "smsc"

    def __init__(self, secret: str, *, url: str = DEFAULT_URL, login: str | None = None, sender: str | None = None,
                 timeout_s: float = 5.0, retries: int = 3, backoff_s: float = 0.2, check_interval_s: float = 15.0,
                 session: aiohttp.ClientSession | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        require_https(url)
        if not secret:
            raise ConfigError("the SMSC.ru password or API key is empty")
        base = url.rstrip("/")
        self.send_url = base + "/sys/send.php"
        self.balance_url = base + "/sys/balance.php"
        self.credentials = {"login": login, "psw": secret} if login else {"apikey": secret}
        self.sender = sender
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.retries = retries
        self.backoff_s = backoff_s
        self.check_interval_s = check_interval_s
        self.clock = clock
        self._checked: tuple[float, SmsError | None] | None = None
        self.balance: float | None = None
        self._own_session = session is None
        self.session = session or aiohttp.ClientSession()

    async def send(self, to: str, text: str) -> None:
        form = {**self.credentials, "phones": to, "mes": text, "charset": "utf-8", "fmt": "3"}
        if self.sender:
            form["sender"] = self.sender

        async def attempt() -> Attempt:
            async with self.session.post(self.send_url, data=form, timeout=self.timeout) as response:
                body = await response.read()
                if response.status != 200:
                    return http_status_attempt(response.status)
            document = _answer(body)
            if document is None:
                return Attempt.transient("bad_answer", "the answer is not a JSON object")
            code = _error_code(document)
            if code is not None:
                reason = ERROR_REASONS.get(code, "rejected")
                detail = f"SMSC.ru error {code}"
                return Attempt.transient(reason, detail) if code in RETRIED_ERRORS else Attempt.final(reason, detail)
            if "id" in document:
                return Attempt.ok()
            return Attempt.final("bad_answer", "neither an id nor an error_code in the answer")

        await send_with_retries(self.name, attempt, retries=self.retries, backoff_s=self.backoff_s)
        if self._checked is not None and self._checked[1] is not None:
            self._checked = None   # a message went through: the remembered failure is out of date

    async def check(self) -> None:
        now = self.clock()
        if self._checked is not None and now - self._checked[0] < self.check_interval_s:
            if self._checked[1] is not None:
                raise self._checked[1]
            return
        problem: SmsError | None = None
        try:
            await self._check_balance()
        except SmsError as exc:
            problem = exc
        self._checked = (now, problem)
        if problem is not None:
            raise problem

    async def _check_balance(self) -> None:
        form = {**self.credentials, "fmt": "3"}
        try:
            async with self.session.post(self.balance_url, data=form, timeout=self.timeout) as response:
                body = await response.read()
                status = response.status
        except asyncio.TimeoutError:
            raise SmsError("SMSC.ru did not answer the balance request in time", "timeout") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise SmsError(f"cannot reach SMSC.ru ({exc.__class__.__name__})", "connection") from None
        if status != 200:
            raise SmsError(f"SMSC.ru balance request answered HTTP {status}",
                           "http_5xx" if status >= 500 else "http_4xx")
        document = _answer(body)
        if document is None:
            raise SmsError("SMSC.ru balance answer is not a JSON object", "bad_answer")
        code = _error_code(document)
        if code is not None:
            raise SmsError(f"SMSC.ru balance request refused: error {code}", ERROR_REASONS.get(code, "rejected"))
        try:
            self.balance = float(document["balance"])
        except (KeyError, TypeError, ValueError):
            raise SmsError("SMSC.ru balance answer has no balance", "bad_answer") from None
        if self.balance <= 0:
            raise SmsError(f"the SMSC.ru account balance is {self.balance:.2f}: no SMS can be sent", "balance")

    async def close(self) -> None:
        if self._own_session:
            await self.session.close()
