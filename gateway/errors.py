"""Errors of the citizen gateway. Every error carries a stable machine-readable ``code``.

``Refusal`` is what a citizen sees: a clear message key (translated by ``gateway.i18n``), an HTTP
status and, for rate limits and load shedding, a ``Retry-After``. ``reason`` is what the refusal log
and the public per-district counters record; it never contains a phone number.
"""

from __future__ import annotations

from chain.errors import VecheError


class GatewayError(VecheError):
    """Root of every error the gateway raises on purpose."""

    code = "gateway_error"


class ConfigError(GatewayError):
    """A gateway home or config.json that an operator must fix."""

    code = "bad_config"


class NodeUnavailable(GatewayError):
    """No configured node answered usefully."""

    code = "node_unavailable"


class NodeAnswerError(GatewayError):
    """A node answered with something the public API does not promise."""

    code = "bad_node_answer"


class SmsError(GatewayError):
    """The SMS provider did not take the message (or did not answer a health check).

    ``reason`` is a short stable label for metrics and logs (``timeout``, ``connection``,
    ``http_5xx``, ``http_4xx``, ``rate_limited``, ``balance``, ``auth``, ``rejected``, ``bad_answer``,
    ``io``); it never holds a phone number.
    """

    code = "sms_failed"

    def __init__(self, message: str, reason: str = "failed") -> None:
        super().__init__(message)
        self.reason = reason


class PhoneError(GatewayError):
    """A phone number the gateway cannot accept; ``code`` says why."""

    code = "bad_phone"


class Refusal(GatewayError):
    """A request refused with a message for the citizen.

    ``message`` is an i18n key; ``params`` fill its placeholders; ``reason`` is logged and counted.
    """

    def __init__(self, message: str, *, status: int = 400, reason: str | None = None,
                 retry_after: int | None = None, params: dict[str, str] | None = None,
                 counted: bool = False) -> None:
        super().__init__(message, reason or message)
        self.status = status
        self.reason = reason or message
        self.retry_after = retry_after
        self.params = params or {}
        self.counted = counted
