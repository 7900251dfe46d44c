"""An aiohttp site whose every accepted connection passes through a ``ConnectionGuard``."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from node.net.guard import ConnectionGuard

BACKLOG = 1024


class GuardedSite(web.BaseSite):
    """Like ``web.TCPSite``, but aiohttp's protocol is created (and wrapped) only for admitted connections."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard) -> None:
        super().__init__(runner, backlog=BACKLOG)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        if server is None:
            raise RuntimeError("the runner must be set up before its site starts")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.protocol_factory(server), self._host, self._port, reuse_address=True,
            backlog=self._backlog, family=socket.AF_UNSPEC)
