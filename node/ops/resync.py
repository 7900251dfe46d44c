"""``veche node resync --home DIR``: wipe the block store and state, keep the signing state and the key.

What an operator runs after the node stopped with exit code 5 (corrupt data). The command only
wipes: the node syncs every block from its peers on its next start (certificates checked, as for
any catch-up: docs/NODE.md §5), so a supervisor or the operator starts it as usual. It refuses while
a process holds the data directory's LevelDB lock, and says what the signing state is (the node
will need ``--recover-signing-state`` if that file is missing too).

Exit codes: 0 wiped (or nothing to wipe), 3 bad config, 4 the store is in use.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from consensus.errors import SigningStateError
from genesis.config import NodeConfig
from node.exitcodes import EXIT_OK, EXIT_STORE_IN_USE
from node.signing_state import SigningStateFile


@dataclass(frozen=True, slots=True)
class ResyncResult:
    code: int
    lines: tuple[str, ...]


def lock_held(data_dir: Path) -> bool:
    """Whether another process holds LevelDB's lock on ``data_dir`` (an fcntl lock on ``LOCK``)."""
    lock_file = data_dir / "LOCK"
    if not lock_file.exists():
        return False
    fd = os.open(lock_file, os.O_RDWR)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def resync(config: NodeConfig) -> ResyncResult:
    data_dir = config.data_dir
    if lock_held(data_dir):
        return ResyncResult(EXIT_STORE_IN_USE, (
            f"error: another process holds the LevelDB lock of {data_dir}: stop the node first "
            f"(nothing was changed)",))
    lines: list[str] = []
    if data_dir.exists():
        size = sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file())
        shutil.rmtree(data_dir)
        lines.append(f"wiped {data_dir} ({size / 2**20:.1f} MiB: blocks, certificates, state, stored evidence)")
    else:
        lines.append(f"{data_dir} does not exist: nothing to wipe")
    if config.is_validator:
        lines.append(f"kept the key {config.key_file}")
        try:
            state = SigningStateFile(config.signing_state_file).load()
        except SigningStateError as exc:
            lines.append(f"warning: {exc.message}")
        else:
            if state is None:
                lines.append(f"warning: there is no signing state at {config.signing_state_file}: the node will "
                             "refuse to start until it is restored or started with --recover-signing-state")
            else:
                lines.append(f"kept the signing state {config.signing_state_file} (signed up to height "
                             f"{state.height}, round {state.round}, {state.step})")
    lines.append(f"start the node (`veche node start --home {config.home}`): it syncs every block from its peers")
    return ResyncResult(EXIT_OK, tuple(lines))
