"""The gateway home's ``config.json`` (docs/INTERNALS.md "Homes", docs/GATEWAY.md "Config keys").

Paths are relative to the home. Unknown keys are an error; missing optional keys take defaults.
``load_config(home)`` returns one frozen ``GatewayConfig``; every mistake gets a ``ConfigError``
that names the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import phonenumbers

from chain.errors import GenesisError
from chain.numbers import is_decimal
from gateway.errors import ConfigError
from genesis.config import GatewayConfig as SharedGatewayConfig
from genesis.config import load_gateway_config
from genesis.forwarding import MAX_TRUSTED_PROXIES, parse_networks

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LANGUAGES = ("ru", "en")
SMS_PROVIDERS = ("outbox", "http", "smsc")
DEFAULT_TRUSTED_PROXIES = ("127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` events per ``seconds`` (a token bucket refilled evenly)."""

    count: int
    seconds: int


@dataclass(frozen=True, slots=True)
class Limits:
    sms_per_ip: RateLimit = RateLimit(30, 3600)
    sms_per_subnet: RateLimit = RateLimit(300, 3600)
    sms_per_phone: RateLimit = RateLimit(3, 3600)
    sms_phone_daily: int = 5
    sms_resend_seconds: int = 60
    code_ttl_seconds: int = 300
    code_tries: int = 3
    code_tries_per_code: int = 5
    code_lockout_seconds: int = 900
    code_per_ip: RateLimit = RateLimit(60, 3600)
    code_per_subnet: RateLimit = RateLimit(600, 3600)
    card_per_ip: RateLimit = RateLimit(30, 3600)
    card_per_subnet: RateLimit = RateLimit(300, 3600)
    card_wrong_global: RateLimit = RateLimit(1000, 3600)
    ballot_per_ip: RateLimit = RateLimit(60, 3600)
    ballot_per_subnet: RateLimit = RateLimit(600, 3600)
    max_inflight_requests: int = 1000
    max_pending_ballots: int = 20000
    max_body_bytes: int = 16 * 1024
    body_read_seconds: int = 10
    session_ttl_seconds: int = 1800
    max_sessions: int = 200_000


@dataclass(frozen=True, slots=True)
class SmsConfig:
    provider: str = "outbox"
    outbox_file: str = "sms-outbox.jsonl"
    allowed_regions: tuple[str, ...] = ("RU",)
    allowed_prefixes: tuple[str, ...] = ()
    sender: str | None = None           # http: "Veche" when unset; smsc: the account's default when unset
    url: str | None = None
    api_key_file: str | None = None
    api_key_env: str | None = None
    api_key_header: str = "X-API-Key"
    timeout_seconds: float = 5.0
    retries: int = 3
    health_url: str | None = None       # http: GET it for the health check (2xx = up)
    login: str | None = None            # smsc: the account login (the key file then holds its password)
    check_interval_seconds: float = 15.0   # smsc: how long a balance check is kept


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """The cookie-less ballot relay (docs/GATEWAY.md "Voter-held keys"): each ballot is held for a
    random delay, uniform in [min_delay_seconds, max_delay_seconds], then sent with every other
    ballot due at the same tick, in random order, in one request to a node."""

    enabled: bool = False
    min_delay_seconds: float = 60.0
    max_delay_seconds: float = 600.0
    tick_seconds: float = 10.0
    max_held: int = 100_000


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    home: Path
    name: str
    listen_host: str
    listen_port: int
    url: str
    genesis_file: Path
    key_file: Path
    data_dir: Path
    nodes: tuple[str, ...]
    sms: SmsConfig = field(default_factory=SmsConfig)
    form_min_seconds: float = 1.0
    trusted_proxy_header: str | None = None
    tls: bool = False
    secret_file: Path = Path("gateway-secret.key")
    cards_dir: Path = Path("cards")
    log_level: str = "info"
    log_file: Path | None = None
    commit_wait_seconds: float = 10.0
    registration_batch_ms: int = 20
    node_timeout_seconds: float = 5.0
    resubmit_seconds: float = 5.0
    display_utc_offset_minutes: int = 180
    default_lang: str = "ru"
    limits: Limits = field(default_factory=Limits)
    certification_key_file: Path = Path("certification-key.json")
    token_batch_ms: int = 20
    relay: RelayConfig = field(default_factory=RelayConfig)
    test_wire_log_file: Path | None = None
    trusted_proxies: tuple[str, ...] = DEFAULT_TRUSTED_PROXIES
    ca_file: Path | None = None
    admin_token_file: Path = Path("admin-token")
    health_interval_seconds: float = 5.0

    @property
    def outbox_path(self) -> Path:
        return self.home / self.sms.outbox_file


def _want(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _int(value: Any, where: str, *, minimum: int = 0) -> int:
    _want(isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
          f"gateway config: {where} must be an integer >= {minimum}")
    return int(value)


def _number(value: Any, where: str, *, minimum: float = 0.0) -> float:
    _want(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= minimum,
          f"gateway config: {where} must be a number >= {minimum}")
    return float(value)


def _text(value: Any, where: str) -> str:
    _want(isinstance(value, str) and bool(value.strip()), f"gateway config: {where} must be a non-empty string")
    return str(value)


def _url(value: Any, where: str) -> str:
    text = _text(value, where)
    _want(text.startswith(("http://", "https://")), f"gateway config: {where} must be an http(s) URL")
    return text.rstrip("/")


def _offset(value: Any) -> int:
    _want(isinstance(value, int) and not isinstance(value, bool) and -720 <= value <= 840,
          "gateway config: display_utc_offset_minutes must be an integer between -720 and 840")
    return int(value)


def _proxies(value: Any) -> tuple[str, ...]:
    _want(isinstance(value, list) and len(value) <= MAX_TRUSTED_PROXIES,
          f"gateway config: trusted_proxies must be a list of at most {MAX_TRUSTED_PROXIES} IP addresses or networks")
    try:
        parse_networks(value, "gateway config: trusted_proxies")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return tuple(value)


def _rate(value: Any, where: str) -> RateLimit:
    _want(isinstance(value, dict) and set(value) == {"count", "seconds"},
          f"gateway config: {where} must be an object {{\"count\": N, \"seconds\": S}}")
    return RateLimit(_int(value["count"], f"{where}.count", minimum=1), _int(value["seconds"], f"{where}.seconds",
                                                                              minimum=1))


def parse_limits(raw: Any) -> Limits:
    _want(isinstance(raw, dict), "gateway config: limits must be an object")
    defaults = Limits()
    names = {f.name for f in fields(Limits)}
    unknown = sorted(set(raw) - names)
    _want(not unknown, f"gateway config: unknown keys in limits: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name in names:
        if name not in raw:
            continue
        where = f"limits.{name}"
        if isinstance(getattr(defaults, name), RateLimit):
            values[name] = _rate(raw[name], where)
        else:
            values[name] = _int(raw[name], where, minimum=1)
    return Limits(**values)


def parse_sms(raw: Any) -> SmsConfig:
    _want(isinstance(raw, dict), "gateway config: sms must be an object")
    names = {f.name for f in fields(SmsConfig)}
    unknown = sorted(set(raw) - names)
    _want(not unknown, f"gateway config: unknown keys in sms: {', '.join(unknown)}")
    provider = raw.get("provider", "outbox")
    _want(provider in SMS_PROVIDERS, f"gateway config: sms.provider must be one of {', '.join(SMS_PROVIDERS)}")
    regions_raw = raw.get("allowed_regions", ["RU"])
    _want(isinstance(regions_raw, list) and bool(regions_raw)
          and all(isinstance(r, str) and r in phonenumbers.SUPPORTED_REGIONS for r in regions_raw),
          "gateway config: sms.allowed_regions must be a non-empty list of ISO 3166 region codes like [\"RU\"]")
    prefixes_raw = raw.get("allowed_prefixes", [])
    _want(isinstance(prefixes_raw, list)
          and all(isinstance(p, str) and p.startswith("+") and is_decimal(p[1:], 15)
                  for p in prefixes_raw),
          "gateway config: sms.allowed_prefixes must be a list of E.164 prefixes like [\"+79\"]")
    url = raw.get("url")
    if url is not None:
        url = _url(url, "sms.url")
    if provider == "http":
        _want(url is not None, "gateway config: sms.provider \"http\" needs sms.url")
    if provider in ("http", "smsc"):
        _want(raw.get("api_key_file") is not None or raw.get("api_key_env") is not None,
              f"gateway config: sms.provider \"{provider}\" needs sms.api_key_file or sms.api_key_env")
    health_url = raw.get("health_url")
    if health_url is not None:
        health_url = _url(health_url, "sms.health_url")
    optional_text = {name: (None if raw.get(name) is None else _text(raw[name], f"sms.{name}"))
                     for name in ("api_key_file", "api_key_env", "sender", "login")}
    return SmsConfig(
        provider=provider,
        outbox_file=_text(raw.get("outbox_file", "sms-outbox.jsonl"), "sms.outbox_file"),
        allowed_regions=tuple(regions_raw),
        allowed_prefixes=tuple(prefixes_raw),
        sender=optional_text["sender"],
        url=url,
        api_key_file=optional_text["api_key_file"],
        api_key_env=optional_text["api_key_env"],
        api_key_header=_text(raw.get("api_key_header", "X-API-Key"), "sms.api_key_header"),
        timeout_seconds=_number(raw.get("timeout_seconds", 5.0), "sms.timeout_seconds", minimum=0.1),
        retries=_int(raw.get("retries", 3), "sms.retries"),
        health_url=health_url,
        login=optional_text["login"],
        check_interval_seconds=_number(raw.get("check_interval_seconds", 15.0), "sms.check_interval_seconds",
                                       minimum=0.0),
    )


def parse_relay(raw: Any) -> RelayConfig:
    _want(isinstance(raw, dict), "gateway config: relay must be an object")
    names = {f.name for f in fields(RelayConfig)}
    unknown = sorted(set(raw) - names)
    _want(not unknown, f"gateway config: unknown keys in relay: {', '.join(unknown)}")
    enabled = raw.get("enabled", False)
    _want(isinstance(enabled, bool), "gateway config: relay.enabled must be true or false")
    defaults = RelayConfig()
    low = _number(raw.get("min_delay_seconds", defaults.min_delay_seconds), "relay.min_delay_seconds")
    high = _number(raw.get("max_delay_seconds", defaults.max_delay_seconds), "relay.max_delay_seconds")
    _want(low <= high, "gateway config: relay.min_delay_seconds must not exceed relay.max_delay_seconds")
    return RelayConfig(enabled, low, high,
                       _number(raw.get("tick_seconds", defaults.tick_seconds), "relay.tick_seconds", minimum=0.05),
                       _int(raw.get("max_held", defaults.max_held), "relay.max_held", minimum=1))


EXTRA_DEFAULTS: dict[str, Any] = {
    "secret_file": "gateway-secret.key", "cards_dir": "cards", "log_file": "gateway.log",
    "commit_wait_seconds": 10.0, "registration_batch_ms": 20, "node_timeout_seconds": 5.0,
    "resubmit_seconds": 5.0, "display_utc_offset_minutes": 180, "default_lang": "ru",
    "certification_key_file": "certification-key.json", "token_batch_ms": 20, "relay": {},
    "test_wire_log_file": None,
    "trusted_proxies": list(DEFAULT_TRUSTED_PROXIES), "ca_file": None, "admin_token_file": "admin-token",
    "health_interval_seconds": 5.0,
}


def from_shared(base: SharedGatewayConfig) -> GatewayConfig:
    """Complete the shared loader's config (genesis/config.py) with the gateway-only settings."""
    extra = {**EXTRA_DEFAULTS, **dict(base.extra)}
    unknown = sorted(set(extra) - set(EXTRA_DEFAULTS))
    _want(not unknown, f"gateway config: unknown keys: {', '.join(unknown)}")
    lang = extra["default_lang"]
    _want(lang in LANGUAGES, f"gateway config: default_lang must be one of {', '.join(LANGUAGES)}")
    log_level = base.log_level if base.log_level in LOG_LEVELS else "error"
    home = base.home

    def path(name: str) -> Path:
        return home / _text(extra[name], name)

    return GatewayConfig(
        home=home,
        name=base.name,
        listen_host=base.listen_host,
        listen_port=base.listen_port,
        url=base.url,
        genesis_file=base.genesis_file,
        key_file=base.key_file,
        data_dir=base.data_dir,
        nodes=tuple(base.nodes),
        sms=parse_sms(dict(base.sms)),
        form_min_seconds=float(base.form_min_seconds),
        trusted_proxy_header=base.trusted_proxy_header,
        tls=base.tls,
        secret_file=path("secret_file"),
        cards_dir=path("cards_dir"),
        log_level=log_level,
        log_file=None if extra["log_file"] is None else path("log_file"),
        commit_wait_seconds=_number(extra["commit_wait_seconds"], "commit_wait_seconds", minimum=0.1),
        registration_batch_ms=_int(extra["registration_batch_ms"], "registration_batch_ms"),
        node_timeout_seconds=_number(extra["node_timeout_seconds"], "node_timeout_seconds", minimum=0.1),
        resubmit_seconds=_number(extra["resubmit_seconds"], "resubmit_seconds", minimum=0.1),
        display_utc_offset_minutes=_offset(extra["display_utc_offset_minutes"]),
        default_lang=lang,
        limits=parse_limits(dict(base.limits)),
        certification_key_file=path("certification_key_file"),
        token_batch_ms=_int(extra["token_batch_ms"], "token_batch_ms"),
        relay=parse_relay(extra["relay"]),
        test_wire_log_file=None if extra["test_wire_log_file"] is None else path("test_wire_log_file"),
        trusted_proxies=_proxies(extra["trusted_proxies"]),
        ca_file=None if extra["ca_file"] is None else path("ca_file"),
        admin_token_file=path("admin_token_file"),
        health_interval_seconds=_number(extra["health_interval_seconds"], "health_interval_seconds", minimum=0.5),
    )


def load_config(home: str | Path) -> GatewayConfig:
    """Read ``home/config.json`` (shared loader first, then the gateway-only settings)."""
    try:
        base = load_gateway_config(home)
    except GenesisError as exc:
        raise ConfigError(exc.message) from exc
    return from_shared(base)
