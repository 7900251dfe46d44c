"""The machine's own faults: which exit code each failure class gets, and the one message that says
what to do (docs/NODE.md §12, the "Machine faults" runbook in docs/OPERATOR.md).

``classify(exc)`` walks an exception, its causes and (for a failed ``TaskGroup``) its group members,
and returns the first fault it recognises; ``Fault.code`` is one of ``node/exitcodes.py``.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

from chain.errors import GenesisError, StorageError, StoreCorrupt, StoreFull, StoreLocked, VecheError
from consensus.errors import SigningStateError
from node.errors import ConfigError
from node.exitcodes import (
    EXIT_CONFIG, EXIT_DATA_CORRUPT, EXIT_DISK_FULL, EXIT_FAILURE, EXIT_LISTEN, EXIT_SIGNING_STATE,
    EXIT_STORE_IN_USE,
)

RUNBOOK_DISK_FULL = 'docs/OPERATOR.md "Machine faults: disk full"'
RUNBOOK_CORRUPT = 'docs/OPERATOR.md "Machine faults: corrupt data"'
RUNBOOK_SIGNING = 'docs/OPERATOR.md "Machine faults: lost or damaged signing state"'
RUNBOOK_RESTORE = 'docs/OPERATOR.md "Machine faults: restore from backup"'


class ListenError(VecheError):
    """The listening address is in use or not available."""

    code = "cannot_listen"


@dataclass(frozen=True, slots=True)
class Fault:
    code: int
    kind: str
    cause: BaseException


def _walk(exc: BaseException, seen: set[int]) -> list[BaseException]:
    if id(exc) in seen:
        return []
    seen.add(id(exc))
    found = [exc]
    if isinstance(exc, BaseExceptionGroup):
        for member in exc.exceptions:
            found.extend(_walk(member, seen))
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            found.extend(_walk(linked, seen))
    return found


def _is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, StoreFull) or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT))


ORDER: tuple[tuple[str, int], ...] = (
    ("corrupt", EXIT_DATA_CORRUPT), ("disk_full", EXIT_DISK_FULL), ("signing_state", EXIT_SIGNING_STATE),
    ("store_in_use", EXIT_STORE_IN_USE), ("listen", EXIT_LISTEN), ("config", EXIT_CONFIG),
)


def _kind(exc: BaseException) -> str | None:
    if isinstance(exc, StoreCorrupt):
        return "corrupt"
    if _is_disk_full(exc):
        return "disk_full"
    if isinstance(exc, SigningStateError):
        return "signing_state"
    if isinstance(exc, StoreLocked):
        return "store_in_use"
    if isinstance(exc, ListenError):
        return "listen"
    if isinstance(exc, (ConfigError, GenesisError)) or (isinstance(exc, VecheError) and exc.code == "bad_key_file"):
        return "config"
    if isinstance(exc, StorageError) and "different genesis" in exc.message:
        return "config"
    return None


def classify(exc: BaseException | None) -> Fault | None:
    """The most specific machine fault in ``exc`` (corruption before disk full before the rest)."""
    if exc is None:
        return None
    kinds: dict[str, BaseException] = {}
    for item in _walk(exc, set()):
        kind = _kind(item)
        if kind is not None:
            kinds.setdefault(kind, item)
    for kind, code in ORDER:
        if kind in kinds:
            return Fault(code, kind, kinds[kind])
    return None


def exit_code(exc: BaseException | None) -> int:
    fault = classify(exc)
    return fault.code if fault is not None else EXIT_FAILURE


def _text(exc: BaseException) -> str:
    return exc.message if isinstance(exc, VecheError) else str(exc)


def explain(fault: Fault, *, home: Path, data_dir: Path) -> str:
    """The one operator message for ``fault``: what happened and what to do, naming the runbook."""
    detail = _text(fault.cause)
    if fault.kind == "corrupt":
        return (f"the data directory {data_dir} is corrupt ({detail}); this node stops rather than serve or apply "
                f"data it cannot vouch for. Run `veche node resync --home {home}` (it keeps the signing state and "
                f"the key), then start the node again: it syncs every block from its peers. See {RUNBOOK_CORRUPT}")
    if fault.kind == "disk_full":
        return (f"no space left on the device of {data_dir} or of the signing state ({detail}); nothing was "
                f"sent that is not on disk. Free space (more than limits.disk_min_free_mb), then start the node "
                f"again. See {RUNBOOK_DISK_FULL}")
    if fault.kind == "store_in_use":
        return (f"another process holds the LevelDB lock of {data_dir} ({detail}): is another node process "
                f"using {data_dir}? Stop it first")
    if fault.kind == "signing_state":
        return detail if "docs/OPERATOR.md" in detail else f"{detail}; see {RUNBOOK_SIGNING}"
    return detail
