"""Serve real ``Node`` objects in-process with aiohttp's test utilities (no child processes).

``serve_node(home)`` opens the node of a testnet home (LevelDB in the home's data/), wraps it in
``create_app`` (so its tasks run exactly as in ``veche node start``) and binds it to the port in
its config, so nodes of one testnet can reach each other inside a single event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from genesis.testnet import TestnetLayout, init_testnet
from tests.certkey import test_certification_key
from node.app import create_app
from node.config import NodeLimits, load_config
from node.node import Node
from tests.node.netkit import free_base_port

Client = TestClient[web.Request, web.Application]


def make_testnet(directory: Path, *, validators: int = 1, observers: int = 0, demo: bool = True,
                 config: dict[str, Any] | None = None) -> TestnetLayout:
    layout = init_testnet(directory, validators=validators, observers=observers,
                          base_port=free_base_port(validators + observers + 1), demo=demo,
                          certification_key=test_certification_key())
    if config:
        for node in layout.nodes:
            path = node.home / "config.json"
            document = json.loads(path.read_text())
            document.update(config)
            path.write_text(json.dumps(document))
    return layout


@asynccontextmanager
async def serve_node(home: Path, limits: NodeLimits | None = None) -> AsyncIterator[tuple[Node, Client]]:
    config, configured = load_config(home)
    node = Node(config, limits or configured)
    server = TestServer(create_app(node), host="127.0.0.1", port=config.listen_port)
    client = TestClient(server)
    await client.start_server()
    try:
        yield node, client
    finally:
        await client.close()


async def until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class ThreadedNode:
    """``serve_node`` on its own event-loop thread, for tests that call blocking clients or CLIs."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.node: Node | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with serve_node(self.home) as (node, _):
                self.node = node
                self._ready.set()
                await self._stop.wait()
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test thread
            self._error = exc
            self._ready.set()

    def __enter__(self) -> "ThreadedNode":
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None or self.node is None:
            raise RuntimeError(f"node did not start: {self._error!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
