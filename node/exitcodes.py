"""Exit codes of the long-running processes (`veche node start`, `veche gateway start`).

A supervisor (systemd, docs/OPERATOR.md) restarts a process that exits with a *transient* code and
leaves one that exits with a *permanent* code stopped until an operator acts (the units list the
permanent codes in ``RestartPreventExitStatus=``). One-shot operator commands keep their own codes
(``node/cli_ops.py``: 0 committed, 1 rejected, 2 bad input, 3 unreachable, 4 timeout).
"""

from __future__ import annotations

EXIT_OK = 0
"""Stopped on SIGINT/SIGTERM."""
EXIT_FAILURE = 1
"""Transient: an unexpected failure while running (restart may help)."""
EXIT_USAGE = 2
"""Permanent: wrong command-line usage (click's own code)."""
EXIT_CONFIG = 3
"""Permanent: config.json, the genesis file or a key file is missing or invalid."""
EXIT_STORE_IN_USE = 4
"""Transient: another process holds the data directory's LevelDB lock."""
EXIT_DATA_CORRUPT = 5
"""Permanent: the block store or state failed a checksum; run ``veche node resync --home DIR``."""
EXIT_SIGNING_STATE = 6
"""Permanent: the signing state is missing or damaged; see the runbook (``--recover-signing-state``)."""
EXIT_LISTEN = 7
"""Transient: the listening address is in use or not available."""
EXIT_UPGRADE_REQUIRED = 8
"""Permanent: the chain scheduled a protocol version this software does not support."""
EXIT_DISK_FULL = 9
"""Transient: no space left for the data directory or the signing state."""

PERMANENT = (EXIT_USAGE, EXIT_CONFIG, EXIT_DATA_CORRUPT, EXIT_SIGNING_STATE, EXIT_UPGRADE_REQUIRED)
"""What ``RestartPreventExitStatus=`` lists: restarting cannot help until an operator acts."""
