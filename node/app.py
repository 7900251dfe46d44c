"""The aiohttp application of a node: routes, middlewares, and the resources it owns.

``create_app(node)`` wires the routes and three cleanup contexts, torn down in reverse order:
the node itself (its LevelDB store is closed last), the one ``ClientSession`` every outgoing
request of this node uses, and the supervisor task that runs the node's ``TaskGroup``. If that
group fails, ``Runtime.failed`` is set and the process stops instead of running half a node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from node.api import NODE, add_routes, cors_header, error_middleware
from node.node import Node
from node.ops.faults import classify, explain
from node.ops.tls import client_context

log = logging.getLogger("veche.node")

MAX_REQUEST_BYTES = 17 * 1024 * 1024


@dataclass(slots=True)
class Runtime:
    node: Node
    session: aiohttp.ClientSession | None = None
    supervisor: asyncio.Task[None] | None = None
    failed: BaseException | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)


RUNTIME = web.AppKey("runtime", Runtime)


async def _node_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    app[NODE].close()


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    connector = aiohttp.TCPConnector(limit=64, limit_per_host=8, keepalive_timeout=60,
                                     ssl=client_context(runtime.node.config.ca_file))
    runtime.session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": "veche-node"})
    yield
    await runtime.session.close()


async def _node_tasks(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    if runtime.session is None:
        raise RuntimeError("the client session context must run first")
    runtime.supervisor = asyncio.create_task(runtime.node.run(runtime.session), name="node")

    def finished(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        runtime.failed = error if error is not None else RuntimeError("node tasks ended")
        node = runtime.node
        fault = classify(runtime.failed)
        if node.fault is not None:
            pass  # the store's fault was already explained in one message (Node._store_fault)
        elif fault is not None:
            log.critical("node %s stops: %s", node.name, explain(fault, home=node.config.home,
                                                                 data_dir=node.config.data_dir))
        else:
            log.critical("node %s stops: its tasks failed: %r", node.name, runtime.failed, exc_info=error)
        runtime.stopped.set()

    runtime.supervisor.add_done_callback(finished)
    yield
    runtime.supervisor.remove_done_callback(finished)
    runtime.supervisor.cancel()
    try:
        await runtime.supervisor
    except (asyncio.CancelledError, Exception):  # noqa: BLE001 - teardown collects, never stops
        pass


def create_app(node: Node) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_REQUEST_BYTES)
    app[NODE] = node
    app[RUNTIME] = Runtime(node)
    node.on_fatal = app[RUNTIME].stopped.set
    add_routes(app)
    app.on_response_prepare.append(cors_header)
    app.cleanup_ctx.append(_node_lifetime)
    app.cleanup_ctx.append(_client_session)
    app.cleanup_ctx.append(_node_tasks)
    return app
