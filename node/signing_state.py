"""The validator's signing-state file: what it signed, written durably before a signed message leaves.

The file lives in the home, apart from ``data/``, so wiping the data directory (and re-syncing
from peers) keeps it. Each write goes to a temporary file that is fsynced, renamed over the old
file, and then the directory is fsynced: after a crash at any point the file holds either the
previous state or the new one, never a torn mix.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from consensus.errors import SigningStateError
from consensus.signing_state import SigningState

log = logging.getLogger("veche.node.signing")


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
