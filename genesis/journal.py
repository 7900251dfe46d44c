"""Logging once: to the systemd journal when stderr is one, else to stderr and the home's log file.

Under systemd, stderr goes to the journal; writing the same lines to ``node.log``/``gateway.log`` too
would store everything twice. systemd sets ``JOURNAL_STREAM=<device>:<inode>`` of the stream it
connected; when that is our stderr, only stderr is used and each line starts with its syslog priority
(``<3>`` … ``<7>``), so ``journalctl -p warning`` filters by level, and carries no timestamp (the
journal adds its own). Elsewhere lines go to stderr and, unless ``log_file`` is null, to the log file
through a ``WatchedFileHandler``, which reopens the file when logrotate moves it (docs/OPERATOR.md).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from collections.abc import Mapping
from pathlib import Path

PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def stderr_is_journal(environ: Mapping[str, str] | None = None, fd: int = 2) -> bool:
    """Is ``fd`` the stream systemd connected to the journal (``JOURNAL_STREAM``)?"""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not device.isdigit() or not inode.isdigit():
        return False
    try:
        status = os.fstat(fd)
    except OSError:
        return False
    return status.st_dev == int(device) and status.st_ino == int(inode)


class JournalFormatter(logging.Formatter):
    """``<priority>`` + the message format without a time stamp."""

    def format(self, record: logging.LogRecord) -> str:
        priority = PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
        return f"<{priority}>" + super().format(record)


def handlers(log_file: Path | None, line_format: str, journal_format: str, *,
             journal: bool | None = None) -> tuple[list[logging.Handler], str]:
    """The handlers to install and a sentence saying where the log goes."""
    stream = logging.StreamHandler()
    if stderr_is_journal() if journal is None else journal:
        stream.setFormatter(JournalFormatter(journal_format))
        return [stream], "logging to the systemd journal only" + (
            f" ({log_file} is not written)" if log_file is not None else "")
    stream.setFormatter(logging.Formatter(line_format))
    if log_file is None:
        return [stream], "logging to stderr"
    try:
        file_handler = logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")
    except OSError as exc:  # a full disk must still get its one clear message on stderr
        print(f"warning: cannot open {log_file}: {exc}", file=sys.stderr)
        return [stream], f"logging to stderr only (cannot open {log_file})"
    file_handler.setFormatter(logging.Formatter(line_format))
    return [stream, file_handler], f"logging to stderr and {log_file}"
