"""Errors of the node process. One root, ``NodeError``; API errors carry their HTTP status.

Peer input that is harmless but useless (a duplicate envelope, a stale message) is *ignored*;
input that is invalid is *rejected* with a ``PeerRejected`` and counted against the peer.
"""

from __future__ import annotations

from chain.errors import VecheError


class NodeError(VecheError):
    """Root of every error the node raises on purpose."""

    code = "node"


class ConfigError(NodeError):
    """A node home or config.json that the operator must fix."""

    code = "bad_config"


class ApiError(NodeError):
    """An error answered to an HTTP client as ``{"error": {"code", "message"}}``."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class AdminUnauthorized(ApiError):
    """An operations route without the home's admin token."""

    status = 401
    code = "unauthorized"


class PayloadTooLarge(ApiError):
    status = 413
    code = "too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class OverBudget(ApiError):
    """The client spent its admission budget (429 with Retry-After)."""

    status = 429
    code = "over_budget"


class Overloaded(ApiError):
    """The node sheds load (503 with Retry-After): mempool full or still starting."""

    status = 503
    code = "overloaded"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class PeerRejected(ApiError):
    """A ``/p2p/*`` request that is not an authentic message from a validator of this chain."""

    status = 400
    code = "bad_envelope"


class PeerUnauthorized(PeerRejected):
    status = 401
    code = "unauthorized"


class SyncError(NodeError):
    """A peer served blocks that do not check, or no peer could serve them."""

    code = "sync"


class FatalError(NodeError):
    """The node cannot continue safely (its store disagrees with a certified block)."""

    code = "fatal"
