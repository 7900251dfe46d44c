"""A fault-injecting TCP proxy: the partition mechanism when network namespaces are not available.

Every *link* is one listening address on loopback that forwards to one target, and carries the
connections one process opens towards another (``src → dst``): a validator's peer URL for another
validator points at the link for that ordered pair, so a rule on the link acts on one direction.
A link is in one of three states:

- ``pass``      bytes flow both ways;
- ``blackhole`` the proxy stops reading from both sockets of every connection on the link, and new
  connections are accepted but frozen the same way: what is in flight stays in kernel buffers,
  senders block and time out, exactly as behind a cable that was pulled. When the link passes
  again, frozen connections resume where they stopped (as TCP does after a partition heals);
- ``reset``     every connection on the link is aborted with a TCP RST and new ones are reset at
  once (a firewall answering REJECT, or a host that is gone).

The proxy runs as its own process (``python -m veche_chaos.proxy --table FILE --control PORT``)
so the chaos runner's CPU load never slows peer traffic. ``GET /links`` lists links and their
counters; ``POST /rules`` with ``{"default": "pass", "links": {"name": "blackhole", ...}}`` sets
every link's state at once (links not named take ``default``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import socket
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

log = logging.getLogger("veche.chaos.proxy")

PASS = "pass"
BLACKHOLE = "blackhole"
RESET = "reset"
STATES = (PASS, BLACKHOLE, RESET)
CHUNK = 1 << 16
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One forwarding rule: ``listen`` (host, port) → ``target`` (host, port)."""

    name: str
    listen_host: str
    listen_port: int
    target_host: str
    target_port: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": [self.listen_host, self.listen_port],
                "target": [self.target_host, self.target_port]}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "LinkSpec":
        return cls(str(raw["name"]), str(raw["listen"][0]), int(raw["listen"][1]), str(raw["target"][0]),
                   int(raw["target"][1]))


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), so the peer sees 'connection reset', not a clean FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class Link:
    spec: LinkSpec
    state: str = PASS
    opened: int = 0
    reset: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = field(default_factory=set)
    server: asyncio.base_events.Server | None = None

    def __post_init__(self) -> None:
        self.flowing.set()

    def set_state(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"unknown link state {state!r}")
        self.state = state
        if state == PASS:
            self.flowing.set()
        else:
            self.flowing.clear()
        if state == RESET:
            for client, upstream in list(self.connections):
                _abort(client)
                if upstream is not None:
                    _abort(upstream)
                self.reset += 1
            self.connections.clear()

    def describe(self) -> dict[str, Any]:
        return {**self.spec.to_json(), "state": self.state, "open": len(self.connections), "opened": self.opened,
                "reset": self.reset, "bytes_up": self.bytes_up, "bytes_down": self.bytes_down}

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.spec.listen_host, self.spec.listen_port,
                                                 reuse_address=True, backlog=256)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for client, upstream in list(self.connections):
            _abort(client)
            if upstream is not None:
                _abort(upstream)
        self.connections.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        if self.state == RESET:
            self.reset += 1
            _abort(writer)
            return
        entry: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (writer, None)
        self.connections.add(entry)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            await self.flowing.wait()  # a frozen link holds new connections too
            try:
                upstream_reader, upstream = await asyncio.wait_for(
                    asyncio.open_connection(self.spec.target_host, self.spec.target_port), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError):
                _abort(writer)
                return
            upstream_writer = upstream
            self.connections.discard(entry)
            if self.state == RESET:
                _abort(writer)
                _abort(upstream)
                return
            entry = (writer, upstream)
            self.connections.add(entry)
            await asyncio.gather(self._pump(reader, upstream, up=True),
                                 self._pump(upstream_reader, writer, up=False))
        finally:
            self.connections.discard(entry)
            for stream in (writer, upstream_writer):
                if stream is not None and not stream.is_closing():
                    stream.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool) -> None:
        try:
            while True:
                await self.flowing.wait()  # stop reading while frozen: data stays in kernel buffers
                data = await reader.read(CHUNK)
                if not data:
                    if writer.can_write_eof():
                        with contextlib.suppress(OSError):
                            writer.write_eof()
                    return
                await self.flowing.wait()  # frozen between read and write: hold the chunk
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            _abort(writer)


class ProxyServer:
    """All links of one run plus the control API."""

    def __init__(self, specs: Iterable[LinkSpec]) -> None:
        self.links = {spec.name: Link(spec) for spec in specs}

    async def start(self) -> None:
        for link in self.links.values():
            await link.start()

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()

    def apply(self, default: str, states: dict[str, str]) -> None:
        unknown = sorted(set(states) - set(self.links))
        if unknown:
            raise ValueError(f"unknown links: {', '.join(unknown)}")
        for value in [default, *states.values()]:
            if value not in STATES:
                raise ValueError(f"unknown link state {value!r}")
        for name, link in self.links.items():
            link.set_state(states.get(name, default))

    def control_app(self) -> web.Application:
        app = web.Application()

        async def get_links(request: web.Request) -> web.Response:
            return web.json_response({"links": [link.describe() for link in self.links.values()]})

        async def post_rules(request: web.Request) -> web.Response:
            body = await request.json()
            try:
                self.apply(str(body.get("default", PASS)), {str(k): str(v) for k, v in body.get("links", {}).items()})
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response({"ok": True})

        app.router.add_get("/links", get_links)
        app.router.add_post("/rules", post_rules)
        return app


def write_table(path: Path, specs: Iterable[LinkSpec]) -> None:
    path.write_text(json.dumps([spec.to_json() for spec in specs], indent=1) + "\n", encoding="utf-8")


def read_table(path: Path) -> list[LinkSpec]:
    return [LinkSpec.from_json(item) for item in json.loads(path.read_text(encoding="utf-8"))]


async def serve(table: Path, control_host: str, control_port: int) -> None:
    server = ProxyServer(read_table(table))
    await server.start()
    runner = web.AppRunner(server.control_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, control_host, control_port, reuse_address=True).start()
    log.info("fault proxy: %d links, control on %s:%d", len(server.links), control_host, control_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m veche_chaos.proxy", description=__doc__.split("\n")[0])
    parser.add_argument("--table", required=True, type=Path, help="JSON list of links")
    parser.add_argument("--control-host", default="127.0.0.1")
    parser.add_argument("--control-port", required=True, type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.table, args.control_host, args.control_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
