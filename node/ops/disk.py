"""The free-space watermark: below ``limits.disk_min_free_mb`` the node takes no new client transactions.

Consensus keeps committing what is already pending (and what other validators propose) while the
device has room: the watermark leaves that room. Each transition is logged once (``WARNING`` when
space runs low, ``INFO`` when it is back) and exported as ``veche_disk_low`` (0/1) beside
``veche_disk_free_bytes``. ``POST /api/v1/txs`` is refused with 503 ``disk_low`` (and Retry-After)
while low. Should the device fill completely anyway, the next synced write fails and the process
stops with exit code 9 (``node/ops/faults.py``) — before any message that was not persisted leaves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from node.errors import Overloaded
from node.metrics import NodeMetrics

log = logging.getLogger("veche.node.disk")

REFRESH_S = 0.5
RETRY_AFTER_DISK_S = 10.0


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the device of ``path`` (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    stats = os.statvfs(probe)
    return stats.f_bavail * stats.f_frsize


class DiskWatch:
    def __init__(self, data_dir: Path, min_free_bytes: int, metrics: NodeMetrics | None = None, *,
                 paths: tuple[Path, ...] = (), measure: Callable[[Path], int] = free_bytes,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.paths = (Path(data_dir), *paths)
        self.min_free_bytes = min_free_bytes
        self._measure = measure
        self._clock = clock
        self._checked = -1e9
        self.free = 0
        self.low = False
        self.transitions = 0
        self.refresh(force=True)
        if metrics is not None:
            metrics.gauge("veche_disk_free_bytes", "Free bytes on the device of the data directory "
                          "(the smaller one when the signing state is elsewhere).", lambda: self.free)
            metrics.gauge("veche_disk_low", "1 while free space is below limits.disk_min_free_mb: new "
                          "client transactions are refused (503 disk_low).", lambda: 1 if self.low else 0)

    def refresh(self, *, force: bool = False) -> bool:
        """Measure again (at most every ``REFRESH_S`` unless ``force``); returns whether space is low."""
        now = self._clock()
        if not force and now - self._checked < REFRESH_S:
            return self.low
        self._checked = now
        try:
            self.free = min(self._measure(path) for path in self.paths)
        except OSError as exc:
            log.warning("cannot measure free space of %s: %s", ", ".join(map(str, self.paths)), exc)
            return self.low
        low = self.free < self.min_free_bytes
        if low != self.low:
            self.low = low
            self.transitions += 1
            if low:
                log.warning("free space %.0f MiB is below limits.disk_min_free_mb (%.0f MiB): new client "
                            "transactions are refused (503 disk_low) until space is freed; consensus goes on; see "
                            "docs/OPERATOR.md \"Machine faults: disk full\"", self.free / 2**20,
                            self.min_free_bytes / 2**20)
            else:
                log.info("free space %.0f MiB is above limits.disk_min_free_mb again: client transactions are "
                         "taken again", self.free / 2**20)
        return self.low

    def check_room(self) -> None:
        """Refuse a client's transactions (503 ``disk_low``) while free space is below the watermark."""
        if self.refresh():
            raise Overloaded(f"this node's disk is almost full ({self.free // 2**20} MiB free, below "
                             f"{self.min_free_bytes // 2**20} MiB): it takes no new transactions until space is "
                             "freed; send them to another node", "disk_low", retry_after=RETRY_AFTER_DISK_S)

    async def run(self) -> None:
        while True:
            self.refresh(force=True)
            await asyncio.sleep(REFRESH_S)
