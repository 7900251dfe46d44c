"""A one-line progress bar on a terminal (``veche verify``, the big-chain generator).

On a terminal the line is redrawn in place (carriage return) at most every ``interval`` seconds; on
anything else (a log file, a pipe) a plain line is written at most every ``log_interval`` seconds,
so long runs under nohup or systemd leave a readable trail. Nothing is written when disabled.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ProgressBar:
    """``[#####.....]  42.1%  4,210,000/10,000,000 votes  2,341/s  ETA 41m02s  <note>``."""

    WIDTH = 24

    def __init__(self, total: int, unit: str, *, enabled: bool = True, stream: TextIO | None = None,
                 interval: float = 0.5, log_interval: float = 30.0, start_done: int = 0) -> None:
        self.total = max(0, total)
        self.unit = unit
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else log_interval
        self.started = time.monotonic()
        self.start_done = start_done     # work done before this run (a resumed run's rate leaves it out)
        self.done = start_done
        self._last_draw = 0.0
        self._drawn = False

    def update(self, done: int, note: str = "", *, force: bool = False) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        line = self.render(now, note)
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._drawn = True

    def render(self, now: float, note: str = "") -> str:
        elapsed = max(1e-9, now - self.started)
        fraction = min(1.0, self.done / self.total) if self.total else 1.0
        filled = int(fraction * self.WIDTH)
        rate = (self.done - self.start_done) / elapsed
        remaining = (self.total - self.done) / rate if rate > 0 else float("inf")
        return (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction * 100:5.1f}%  "
                f"{self.done:,}/{self.total:,} {self.unit}  {rate:,.0f}/s  "
                f"elapsed {format_duration(elapsed)}  ETA {format_duration(remaining)}"
                + (f"  {note}" if note else ""))

    def close(self, note: str = "") -> None:
        if not self.enabled:
            return
        self.update(self.done, note, force=True)
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
