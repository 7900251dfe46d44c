"""The signing-request file format lives in ``node/cosign/request.py`` (shared by the CLI, the nodes'
pending-request store and the operator console); this module keeps the CLI's imports."""

from __future__ import annotations

from node.cosign.request import (
    FORMAT, MAX_REQUEST_BYTES, RequestExpired, SigningRequest, SigningRequestError, describe, read_request, write_request,
)

__all__ = ["FORMAT", "MAX_REQUEST_BYTES", "RequestExpired", "SigningRequest", "SigningRequestError", "describe", "read_request",
           "write_request"]
