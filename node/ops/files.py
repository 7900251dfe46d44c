"""Durable, atomic replacement of a file: the one write-to-temporary, fsync, rename, fsync-the-folder.

``atomic_write(path, data)`` writes ``data`` to a temporary file beside ``path``, fsyncs it, renames
it over ``path`` and fsyncs the folder, in that order. After a crash at any point ``path`` holds its
old bytes or the new ones, never a part of them; once the call returns, the new bytes survive a
power loss. A write that fails (full disk, a signal) removes its temporary file and leaves ``path``
as it was.

Temporary names start with ``TEMP_PREFIX`` unless the caller names one: a store that sweeps its
folder at start-up deletes what a crash left behind by that prefix.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def sync_folder(folder: str | os.PathLike[str]) -> None:
    """fsync a folder, so that a rename or a new name in it survives a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600,
                 temporary: str | os.PathLike[str] | None = None) -> None:
    """Replace ``path`` by ``data`` durably and atomically (see the module text).

    ``mode``: of a new file, less the process umask. ``temporary``: a fixed temporary name for a file
    with one writer (it is truncated if a crash left it); by default a fresh name
    ``TEMP_PREFIX + name + random`` in the same folder, so that concurrent writers never share one.
    """
    target = Path(path)
    if temporary is None:
        scratch = target.with_name(f"{TEMP_PREFIX}{target.name}.{secrets.token_hex(4)}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    else:
        scratch = Path(temporary)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(scratch, flags, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(scratch, target)
    except BaseException:
        try:
            os.unlink(scratch)
        except OSError:
            pass
        raise
    sync_folder(target.parent)
