"""Trust for outgoing https (peers, block sync, forwarding, the CLI's node client).

A private CA is common for a region's own machines. ``ca_file`` (a node's or the gateway's
config.json, or ``veche --ca-file`` / ``VECHE_CA_FILE`` for the CLI) adds the CA certificates in that
PEM file to the system's trust store; certificates are still verified (hostname or IP address and
chain), there is no switch to turn verification off.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from chain.errors import VecheError


class TlsConfigError(VecheError):
    """A CA file that cannot be read or holds no certificate."""

    code = "bad_ca_file"


_default_ca_file: Path | None = None
_default_context: ssl.SSLContext | None = None


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """A verifying client context: the system's CAs plus those in ``ca_file``."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"cannot read the CA certificates in {ca_file}: {exc}") from exc
    return context


def set_default_ca_file(ca_file: Path | None) -> None:
    """The CA file of this process's node clients (``veche --ca-file``); checked at once."""
    global _default_ca_file, _default_context
    _default_context = client_context(ca_file)
    _default_ca_file = ca_file


def default_context() -> ssl.SSLContext:
    """The context ``NodeClient`` uses when it makes its own session (made once per process)."""
    global _default_context
    if _default_context is None:
        _default_context = client_context(_default_ca_file)
    return _default_context
