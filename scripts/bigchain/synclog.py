"""Block sync's own account of a catch-up, read from a node's log (node/sync.py's INFO lines).

A catch-up logs ``block sync: from height A to T`` when it starts (only when more than one block is
missing) and ``block sync: reached height H (+N blocks in S s)`` when it ends (only when it gained
more than one block). While the chain grows under it (heartbeat blocks) one start may be followed by
several catch-ups; each pair is a ``SyncSpan``. Lines look like (node/process.py ``LOG_FORMAT``)::

    2026-12-06 11:02:03,417 INFO    node.sync [observer-0] block sync: from height 0 to 46571
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
SYNC_FROM = re.compile(r"block sync: from height (\d+) to (\d+)\s*$")
SYNC_REACHED = re.compile(r"block sync: reached height (\d+) \(\+(\d+) blocks in ([0-9.]+) s\)\s*$")


@dataclass(frozen=True, slots=True)
class SyncSpan:
    start_time: float           # the log time of "from", seconds since the epoch (the node's local time)
    from_height: int
    target: int                 # the target known when the catch-up started
    end_time: float | None      # the log time of "reached"; None while the catch-up runs
    reached: int | None
    blocks: int | None
    seconds: float | None       # as the node measured it (perf_counter around the catch-up)

    def to_json(self) -> dict[str, object]:
        return {"from_height": self.from_height, "target": self.target, "reached": self.reached,
                "blocks": self.blocks, "seconds": self.seconds}


def log_time(line: str) -> float | None:
    match = LOG_TIME.match(line)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def sync_spans(text: str) -> list[SyncSpan]:
    """Every catch-up the log shows, in order. A "reached" without a "from" before it (a catch-up of
    a single missing block logs no start) starts and ends at its own line."""
    spans: list[SyncSpan] = []
    open_span: tuple[float, int, int] | None = None
    for line in text.splitlines():
        moment = log_time(line)
        if moment is None:
            continue
        started = SYNC_FROM.search(line)
        if started is not None:
            if open_span is not None:   # a start without an end (the node was stopped, or crashed)
                spans.append(SyncSpan(open_span[0], open_span[1], open_span[2], None, None, None, None))
            open_span = (moment, int(started.group(1)), int(started.group(2)))
            continue
        reached = SYNC_REACHED.search(line)
        if reached is not None:
            height, blocks, seconds = int(reached.group(1)), int(reached.group(2)), float(reached.group(3))
            if open_span is None:
                open_span = (moment - seconds, height - blocks, height)
            spans.append(SyncSpan(open_span[0], open_span[1], open_span[2], moment, height, blocks, seconds))
            open_span = None
    if open_span is not None:
        spans.append(SyncSpan(open_span[0], open_span[1], open_span[2], None, None, None, None))
    return spans


def sync_reached(text: str, height: int) -> SyncSpan | None:
    """The first finished catch-up that ended at or above ``height``."""
    return next((span for span in sync_spans(text) if span.reached is not None and span.reached >= height), None)
