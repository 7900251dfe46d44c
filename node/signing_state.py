"""The validator's signing-state file: what it signed, written durably before a signed message leaves.

The file lives in the home, apart from ``data/``, so wiping the data directory (and re-syncing
from peers) keeps it. Each write goes to a temporary file that is fsynced, renamed over the old
file, and then the directory is fsynced: after a crash at any point the file holds either the
previous state or the new one, never a torn mix.

A write that fails because the process is out of file descriptors (``EMFILE``/``ENFILE``: client
load) is not fatal: ``store_retrying`` asks the node to shed connections and tries again, with
back-off, for as long as it takes — nothing is signed or sent meanwhile, so safety holds. Any other
failure still stops the node.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path

from consensus.errors import SigningStateError
from consensus.signing_state import SigningState

log = logging.getLogger("veche.node.signing")

FD_PRESSURE = frozenset({errno.EMFILE, errno.ENFILE})
RETRY_START_S = 0.01
RETRY_MAX_S = 1.0


class SigningStateFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._temporary = self.path.with_name(self.path.name + ".tmp")
        self.writes = 0

    def load(self) -> SigningState | None:
        """The persisted state, or None when this validator never signed anything.

        A file that exists but does not decode raises ``SigningStateError``: the node refuses to
        start rather than risk signing twice.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SigningStateError(f"cannot read the signing state {self.path}: {exc}") from exc
        try:
            return SigningState.decode(data)
        except SigningStateError as exc:
            raise SigningStateError(f"{self.path}: {exc.message}; refusing to start (move it away only if "
                                    "you are sure this validator signed nothing at the heights it names)") from exc

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
        """Write ``state`` durably: temp file + fsync + rename + fsync of the directory."""
        data = state.encode()
        fd = os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self._temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self.writes += 1
