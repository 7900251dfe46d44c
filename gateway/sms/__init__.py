"""SMS providers behind one interface (``SmsProvider``): ``send``, ``check`` (health), ``close``.

* ``outbox`` (development default, ARCHITECTURE §6): ``<gateway home>/sms-outbox.jsonl``.
* ``http``: a generic JSON-over-HTTPS provider (``generic.py`` documents the answer it expects).
* ``smsc``: SMSC.ru's documented HTTP API (``smsc.py``).

Plain ``http://`` provider URLs are accepted only for loopback addresses (tests, a local relay): a
phone number never crosses a network unencrypted.
"""

from __future__ import annotations

import os

import aiohttp

from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from gateway.sms.base import SmsProvider
from gateway.sms.generic import HttpProvider
from gateway.sms.outbox import OutboxProvider
from gateway.sms.smsc import DEFAULT_URL as SMSC_URL
from gateway.sms.smsc import SmscProvider

__all__ = ["HttpProvider", "OutboxProvider", "SmsProvider", "SmscProvider", "make_provider", "read_api_key"]


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
    raise ConfigError(f"the {sms.provider} SMS provider needs sms.api_key_file or sms.api_key_env")


def make_provider(config: GatewayConfig, session: aiohttp.ClientSession | None = None) -> SmsProvider:
    sms = config.sms
    if sms.provider == "outbox":
        return OutboxProvider(config.outbox_path)
    if sms.provider == "smsc":
        return SmscProvider(read_api_key(config), url=sms.url or SMSC_URL, login=sms.login, sender=sms.sender,
                            timeout_s=sms.timeout_seconds, retries=sms.retries,
                            check_interval_s=sms.check_interval_seconds, session=session)
    if sms.url is None:
        raise ConfigError("sms.provider \"http\" needs sms.url")
    return HttpProvider(sms.url, read_api_key(config), header=sms.api_key_header, sender=sms.sender or "Veche",
                        timeout_s=sms.timeout_seconds, retries=sms.retries, health_url=sms.health_url,
                        session=session)
