"""Hostile clients with no key, beside the flood (``--flood-attacks``; docs/RELIABILITY.md, "Hostile clients").

Each kind runs for the whole flood window against the flood's target (envelopes also against a
second validator), from client addresses of its own (``Fabric.flood_source`` numbers above the
flood's), bounded in count:

* ``trickle`` — ``trickle_connections`` connections that send a request line and then one header
  line a second, never ending the head; each one the node cuts is opened again;
* ``slow_upload`` — ``slow_uploads`` ``POST /api/v1/txs`` bodies (half chunked, half with a 4 MiB
  ``Content-Length``) sending one byte a second, re-opened when cut;
* ``envelope`` — an unsigned 16 MiB ``POST /p2p/v1/envelope`` (16.7 M nested empty arrays) every
  ``envelope_every_s`` to two validators; the time to the node's answer is recorded;
* ``garbage`` — 1 MiB bodies that are not msgpack to ``POST /api/v1/txs`` every ``garbage_every_s``
  (charged to the sender's budget: 400, then 429);
* ``unicode`` — ``GET /api/v1/blocks/¹`` and other Unicode digits every ``unicode_every_s``.

What comes back is counted by kind; a gate requires that none of it was a 5xx other than a 503
shed, that every envelope was refused, and that the node cut the trickling and slow connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from veche_chaos.runner import Context

log = logging.getLogger("veche.chaos.hostile")

KINDS = ("trickle", "slow_upload", "envelope", "garbage", "unicode")
SOURCE_BASE = 40             # loopback attackers live in 127.150.0.0/16 and up (the flood uses 127.77-81)
ENVELOPE_BYTES = 16 * 1024 * 1024
ENVELOPE_HEAD_PART = 1024 * 1024
UNICODE_PATHS = ("/api/v1/blocks/%C2%B9", "/api/v1/blocks/%D9%A3/raw", "/api/v1/blocks/raw?from=%EF%BC%93")


@dataclass(slots=True)
class HostileConfig:
    kinds: tuple[str, ...] = KINDS
    trickle_connections: int = 200
    slow_uploads: int = 16
    envelope_every_s: float = 2.0
    garbage_every_s: float = 0.2
    unicode_every_s: float = 0.5
    sources: int = 8


@dataclass(slots=True)
class KindStats:
    attempts: int = 0
    statuses: Counter[int] = field(default_factory=Counter)     # HTTP status; 0 = cut or no answer
    lifetimes: list[float] = field(default_factory=list)         # seconds a held connection lasted
    answer_ms: list[float] = field(default_factory=list)         # envelopes: ms to the node's answer

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"attempts": self.attempts, "http_status": dict(self.statuses)}
        if self.lifetimes:
            spans = sorted(self.lifetimes)
            document["connection_seconds"] = {"p50": round(spans[len(spans) // 2], 2), "max": round(spans[-1], 2),
                                              "count": len(spans)}
        if self.answer_ms:
            answers = sorted(self.answer_ms)
            document["answer_ms"] = {"p50": round(answers[len(answers) // 2], 1), "max": round(answers[-1], 1)}
        return document


def hostile_sources(context: Context, target: str, count: int) -> list[str | None]:
    """Client addresses for the attackers: on a loopback fabric each in a /24 of its own
    (127.150.0.1, 127.151.0.1, ...: any 127.x address can be bound); elsewhere the fabric has only
    the flood's few addresses, in one /24 with the runner's honest clients — then the attackers share
    their network's caps with them (run with ``--fabric proxy`` to keep them apart)."""
    fabric = context.fabric
    first = fabric.flood_source(target, 0, True)
    if first is not None and first.startswith("127."):
        return [f"127.{SOURCE_BASE + 110 + n}.0.1" for n in range(count)]
    return [fabric.flood_source(target, n % fabric.MAX_FLOOD_SOURCES, True) for n in range(count)]


def _status(line: bytes) -> int:
    parts = line.split(b" ", 2)
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() and parts[1].isascii() else 0


class HostileLoad:
    def __init__(self, context: Context, target: str, config: HostileConfig) -> None:
        self.context = context
        self.config = config
        self.target = target
        cluster = context.cluster
        others = [name for name in cluster.validators if name != target]
        self.envelope_targets = [target] + others[:1]
        self.sources = hostile_sources(context, target, config.sources)
        self.stats = {kind: KindStats() for kind in config.kinds}

    def _address(self, name: str) -> tuple[str, int]:
        parts = urllib.parse.urlsplit(self.context.cluster.url(name))
        return parts.hostname or "127.0.0.1", parts.port or 80

    def _source(self, number: int) -> tuple[str, int] | None:
        """Held connections and envelopes use all but the last two addresses; ``garbage`` and
        ``unicode`` one each of their own (garbage spends its address's budget: 429)."""
        source = self.sources[number % max(1, len(self.sources) - 2)]
        return (source, 0) if source else None

    def _own_source(self, kind: str) -> tuple[str, int] | None:
        source = self.sources[-1 if kind == "garbage" else -2]
        return (source, 0) if source else None

    async def _open(self, name: str, number: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self._address(name)
        return await asyncio.open_connection(host, port, local_addr=self._source(number))

    async def _hold(self, kind: str, number: int, head: bytes, drip: bytes, stop: asyncio.Event) -> None:
        """Send ``head``, then ``drip`` once a second until the node answers or cuts; then again."""
        stats = self.stats[kind]
        while not stop.is_set():
            stats.attempts += 1
            try:
                reader, writer = await self._open(self.target, number)
            except OSError:
                stats.statuses[0] += 1
                await asyncio.sleep(1.0)
                continue
            opened = time.monotonic()
            status = -1
            try:
                writer.write(head)
                while not stop.is_set():
                    try:
                        data = await asyncio.wait_for(reader.read(4096), 1.0)
                    except TimeoutError:
                        writer.write(drip)
                        continue
                    status = _status(data) if data else 0
                    break
            except (ConnectionError, OSError):
                status = 0
            finally:
                writer.close()
            if status >= 0:
                stats.statuses[status] += 1
                stats.lifetimes.append(time.monotonic() - opened)
            if status == 503:
                await asyncio.sleep(1.0)        # refused at accept (a cap): come back in a second

    async def _trickle(self, stop: asyncio.Event) -> None:
        head = b"GET /api/v1/status HTTP/1.1\r\nHost: veche\r\n"
        await asyncio.gather(*(self._hold("trickle", n, head, b"X-Trickle: 1\r\n", stop)
                               for n in range(self.config.trickle_connections)))

    async def _slow_uploads(self, stop: asyncio.Event) -> None:
        def head(chunked: bool) -> bytes:
            framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: 4194304\r\n"
            return (b"POST /api/v1/txs HTTP/1.1\r\nHost: veche\r\nContent-Type: application/octet-stream\r\n"
                    + framing + b"\r\n")
        await asyncio.gather(*(self._hold("slow_upload", n, head(n % 2 == 0), b"1\r\n\xdd\r\n" if n % 2 == 0
                                          else b"\xdd", stop) for n in range(self.config.slow_uploads)))

    async def _envelopes(self, stop: asyncio.Event) -> None:
        stats = self.stats["envelope"]
        bomb = b"\xdd" + (ENVELOPE_BYTES - 5).to_bytes(4, "big") + b"\x90" * (ENVELOPE_BYTES - 5)
        head = (b"POST /p2p/v1/envelope HTTP/1.1\r\nHost: veche\r\nContent-Type: application/octet-stream\r\n"
                + f"Content-Length: {ENVELOPE_BYTES}\r\n\r\n".encode())
        number = 0
        while not stop.is_set():
            for name in self.envelope_targets:
                number += 1
                stats.attempts += 1
                try:
                    host, port = self._address(name)
                    reader, writer = await asyncio.open_connection(host, port, local_addr=self._source(number))
                    started = time.perf_counter()
                    writer.write(head)
                    writer.write(memoryview(bomb)[:ENVELOPE_HEAD_PART])
                    line = await asyncio.wait_for(reader.readline(), 10)
                    stats.answer_ms.append((time.perf_counter() - started) * 1000)
                    stats.statuses[_status(line)] += 1
                    writer.write(memoryview(bomb)[ENVELOPE_HEAD_PART:])
                    try:
                        await asyncio.wait_for(writer.drain(), 5)
                    except (ConnectionError, OSError, TimeoutError):
                        pass
                    writer.close()
                except (ConnectionError, OSError, TimeoutError):
                    stats.statuses[0] += 1
            try:
                await asyncio.wait_for(stop.wait(), self.config.envelope_every_s)
            except TimeoutError:
                pass

    async def _requests(self, kind: str, every: float, stop: asyncio.Event) -> None:
        stats = self.stats[kind]
        url = self.context.cluster.url(self.target)
        source = self._own_source(kind)
        connector = aiohttp.TCPConnector(local_addr=source) if source else aiohttp.TCPConnector()
        garbage = b"\xc1" * (1024 * 1024)
        async with aiohttp.ClientSession(connector=connector) as session:
            turn = 0
            while not stop.is_set():
                stats.attempts += 1
                turn += 1
                try:
                    if kind == "garbage":
                        request = session.post(url + "/api/v1/txs", data=garbage,
                                               headers={"Content-Type": "application/octet-stream"},
                                               timeout=aiohttp.ClientTimeout(total=10))
                    else:
                        request = session.get(url + UNICODE_PATHS[turn % len(UNICODE_PATHS)],
                                              timeout=aiohttp.ClientTimeout(total=10))
                    async with request as response:
                        await response.read()
                        stats.statuses[response.status] += 1
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    stats.statuses[0] += 1
                try:
                    await asyncio.wait_for(stop.wait(), every)
                except TimeoutError:
                    pass

    async def run(self, stop: asyncio.Event) -> dict[str, Any]:
        async def garbage(stop: asyncio.Event) -> None:
            await self._requests("garbage", self.config.garbage_every_s, stop)

        async def unicode(stop: asyncio.Event) -> None:
            await self._requests("unicode", self.config.unicode_every_s, stop)

        runners: dict[str, Callable[[asyncio.Event], Awaitable[None]]] = {
            "trickle": self._trickle, "slow_upload": self._slow_uploads, "envelope": self._envelopes,
            "garbage": garbage, "unicode": unicode}
        await asyncio.gather(*(runners[kind](stop) for kind in self.config.kinds))
        return {kind: stats.to_json() for kind, stats in self.stats.items()}

    def judge(self, report: dict[str, Any]) -> list[tuple[str, bool]]:
        """The hostile kinds' own gates (the flood's honest-latency and no-loss gates apply as well)."""
        gates: list[tuple[str, bool]] = []
        server_errors = {kind: sum(n for status, n in doc["http_status"].items() if int(status) >= 500
                                   and int(status) != 503) for kind, doc in report.items()}
        gates.append((f"hostile clients got no server error ({server_errors})", not any(server_errors.values())))
        if "envelope" in report:
            statuses = report["envelope"]["http_status"]
            gates.append((f"every unsigned envelope was refused ({statuses})",
                          bool(statuses) and set(statuses) <= {400}))
        if "unicode" in report:
            statuses = report["unicode"]["http_status"]
            gates.append((f"every Unicode-digit request was a 400 ({statuses})", bool(statuses) and set(statuses) <= {400}))
        for kind in ("trickle", "slow_upload"):
            if kind in report:
                cut = report[kind].get("connection_seconds", {}).get("count", 0)
                gates.append((f"{kind}: the node cut the held connections ({cut})", cut > 0))
        return gates


__all__ = ["KINDS", "HostileConfig", "HostileLoad"]
