"""The validator's signing-state file: what it signed, written durably before a signed message leaves.

The file lives in the home, apart from ``data/``, so wiping the data directory (and re-syncing
from peers) keeps it. Each write goes to a temporary file that is fsynced, renamed over the old
file, and then the directory is fsynced: after a crash at any point the file holds either the
previous state or the new one, never a torn mix.

A write that fails because the process is out of file descriptors (``EMFILE``/``ENFILE``: client
load) is not fatal: ``store_retrying`` asks the node to shed connections and tries again, with
back-off, for as long as it takes — nothing is signed or sent meanwhile, so safety holds. Any other
failure still stops the node (a full disk: ``DiskFullError``).

The file format (magic, length, body, SHA-256; docs/NODE.md §6.1) is
``consensus.signing_state.encode_file``/``decode_file``. A file whose magic, length or digest does not check is *damaged*: the node refuses to start (exit
code 6) and names the runbook. A file in the old format 1 (the bare msgpack body, no magic and no
digest) is accepted once, logged, and rewritten in format 2 at once (``load`` does it).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path

from consensus.errors import SigningStateError
from consensus.signing_state import LEGACY_FORMAT_VERSION, MAGIC, SigningState, decode_file, encode_file
from node.ops.files import atomic_write

__all__ = ["MAGIC", "RUNBOOK", "DiskFullError", "SigningStateDamaged", "SigningStateFile", "SigningStateMissing",
           "decode_file", "encode_file"]

log = logging.getLogger("veche.node.signing")

FD_PRESSURE = frozenset({errno.EMFILE, errno.ENFILE})
RETRY_START_S = 0.01
RETRY_MAX_S = 1.0
RUNBOOK = 'docs/OPERATOR.md "Machine faults: lost or damaged signing state"'
"""Where every signing-state error message points the operator."""


class SigningStateMissing(SigningStateError):
    """A validator without its signing-state file: it may have signed before (refuse unless recovering)."""

    code = "signing_state_missing"


class SigningStateDamaged(SigningStateError):
    """A signing-state file that fails its checksum or does not decode."""

    code = "signing_state_damaged"


class DiskFullError(OSError):
    """No space left to write the signing state (ENOSPC/EDQUOT); the message said before it left."""


class SigningStateFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._temporary = self.path.with_name(self.path.name + ".tmp")
        self.writes = 0

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> SigningState | None:
        """The persisted state, or None when the file does not exist.

        A file that exists but does not check raises ``SigningStateDamaged``: the node refuses to
        start rather than risk signing twice. A format-1 file is accepted and rewritten in format 2.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SigningStateDamaged(f"cannot read the signing state {self.path}: {exc}; see {RUNBOOK}") from exc
        try:
            state, legacy = decode_file(data)
        except SigningStateError as exc:
            raise SigningStateDamaged(
                f"the signing state {self.path} is damaged ({exc.message}); refusing to start: this validator "
                f"could sign twice. Restore the file from a backup no older than the validator's last "
                f"signature, or move it away and start with --recover-signing-state; see {RUNBOOK}") from exc
        if legacy:
            log.warning("signing state %s is in format %d (no checksum): accepted once and rewritten in format 2 "
                        "(SHA-256 checksum)", self.path, LEGACY_FORMAT_VERSION)
            self.store(state)
        return state

    def load_required(self) -> SigningState:
        """Like ``load``, but a missing file is ``SigningStateMissing`` (a validator must have one)."""
        state = self.load()
        if state is None:
            raise SigningStateMissing(
                f"no signing state at {self.path}: this validator may already have signed at the current heights, "
                f"and starting without it could make it sign twice (equivocate). Restore the file from a backup, or "
                f"start once with `veche node start --home DIR --recover-signing-state` (the node derives a safe "
                f"floor from the chain); see {RUNBOOK}")
        return state

    async def store_retrying(self, state: SigningState, relieve: Callable[[], object]) -> None:
        """``store``, retried after ``relieve()`` (shed connections) while descriptors run out."""
        delay = RETRY_START_S
        while True:
            try:
                self.store(state)
                return
            except OSError as exc:
                if exc.errno not in FD_PRESSURE:
                    raise
                log.error("cannot write the signing state (%s): shedding connections and retrying in %.2f s",
                          os.strerror(exc.errno or 0), delay)
            relieve()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def store(self, state: SigningState) -> None:
        """Write ``state`` durably: temp file + fsync + rename + fsync of the directory.

        A full disk raises ``DiskFullError`` (the temporary file is removed; the old state stays).
        """
        try:
            atomic_write(self.path, encode_file(state), temporary=self._temporary)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(exc.errno, f"no space left to write the signing state {self.path}") from exc
            raise
        self.writes += 1
