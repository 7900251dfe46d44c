"""Process lifecycle of ``veche node start``: logging, the listening socket, signals, exit codes.

Every failure class ends the process with its code from ``node/exitcodes.py`` and one message
saying what to do (``node/ops/faults.py``): bad config, genesis or key 3, store in use 4, corrupt
data 5, signing state missing or damaged 6, cannot listen 7, disk full 9, any other failure 1.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from chain.errors import UpgradeRequired, VecheError
from genesis.config import NodeConfig
from genesis.journal import handlers
from node.app import RUNTIME, create_app
from node.config import NodeLimits, load_config
from node.exitcodes import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_UPGRADE_REQUIRED
from node.net.guard import ConnectionGuard, GuardLimits
from node.net.peers import reserved_hosts, reserved_networks, resolve_reserved
from node.net.site import GuardedSite
from node.node import Node
from node.ops.faults import ListenError, classify, exit_code, explain

log = logging.getLogger("veche.node")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(node)s] %(message)s"
KEEPALIVE_S = 15.0        # idle keep-alive connections close after this (aiohttp's default is 75 s)
SHED_ON_PRESSURE = 64     # public connections cut each time the signing state cannot get a descriptor
JOURNAL_FORMAT = "%(levelname)s %(name)s [%(node)s] %(message)s"


class _NodeName(logging.Filter):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.node_name = name

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.node_name
        return True


def setup_logging(name: str, level: str, log_file: Path | None) -> None:
    """Operator events once: to the journal under systemd, else to stderr and ``log_file`` (genesis/journal.py)."""
    root = logging.getLogger("veche")
    root.setLevel(level.upper())
    root.handlers.clear()
    # a log file that cannot be opened (a full disk) leaves stderr: the one clear message still goes out
    installed, where = handlers(log_file, LOG_FORMAT, JOURNAL_FORMAT)
    for handler in installed:
        handler.addFilter(_NodeName(name))
        root.addHandler(handler)
    root.propagate = False
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    log.debug("node %s: %s", name, where)


async def serve(config: NodeConfig, limits: NodeLimits, *, recover_signing_state: bool = False) -> int:
    node = Node(config, limits, recover_signing_state=recover_signing_state)
    guard = ConnectionGuard(guard_limits(limits), node.metrics, reserved=reserved_networks(node, limits))
    if node.driver is not None:
        node.driver.relieve_fd_pressure = lambda: guard.shed(SHED_ON_PRESSURE)
    node.on_set_change = lambda: follow_reserved(node, limits, guard)
    app = create_app(node)
    runtime = app[RUNTIME]
    runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=KEEPALIVE_S)
    await runner.setup()
    sweeper: asyncio.Task[None] | None = None
    try:
        site = GuardedSite(runner, config.listen_host, config.listen_port, guard)
        try:
            await site.start()
        except OSError as exc:
            raise ListenError(f"cannot listen on {config.listen_host}:{config.listen_port}: {exc.strerror or exc}; "
                              "is another process using this port (or the address not on this machine)?") from exc
        sweeper = asyncio.create_task(guard.run(), name="connection-guard")
        log.info("connections: at most %d public (%d per network), %d reserved for %d validator peer and trusted "
                 "networks", guard.public_cap, limits.max_connections_per_network, limits.max_reserved_connections,
                 len(guard.reserved_networks))
        log.info("node %s serves %s (listening on %s:%d)", config.name, config.api_url, config.listen_host,
                 config.listen_port)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, runtime.stopped.set)
        await runtime.stopped.wait()
        log.info("node %s stopping", config.name)
    finally:
        if sweeper is not None:
            sweeper.cancel()
        await runner.cleanup()
    upgrade = find_upgrade_required(runtime.failed)
    if upgrade is not None:
        log_upgrade_required(config.name, upgrade)
        return EXIT_UPGRADE_REQUIRED
    if node.fault is not None:
        return exit_code(node.fault)
    if runtime.failed is not None:
        return exit_code(runtime.failed)
    return EXIT_OK


def find_upgrade_required(error: BaseException | None) -> UpgradeRequired | None:
    """The ``UpgradeRequired`` that stopped the node, also from inside (nested) task-group errors."""
    if isinstance(error, UpgradeRequired):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = find_upgrade_required(inner)
            if found is not None:
                return found
    return None


def log_upgrade_required(name: str, error: UpgradeRequired) -> None:
    log.critical("node %s STOPS BEFORE HEIGHT %d: %s (exit code %d)", name, error.height, error.message,
                 EXIT_UPGRADE_REQUIRED)


def follow_reserved(node: Node, limits: NodeLimits, guard: ConnectionGuard) -> None:
    """A validator set change committed: the new validators' hosts join the reserved pool (resolved
    off the event loop; host names may need DNS)."""
    hosts = reserved_hosts(node)

    async def resolve() -> None:
        networks = await asyncio.get_running_loop().run_in_executor(None, resolve_reserved, hosts, limits)
        guard.set_reserved(networks)
        log.info("connections: %d validator peer and trusted networks reserved after the set change",
                 len(networks))
    task = asyncio.get_running_loop().create_task(resolve(), name="reserved-networks")
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()


def guard_limits(limits: NodeLimits) -> GuardLimits:
    return GuardLimits(header_timeout_s=limits.header_timeout_ms / 1000, body_timeout_s=limits.body_timeout_ms / 1000,
                       min_body_rate=float(limits.min_body_rate), max_connections=limits.max_connections,
                       max_per_network=limits.max_connections_per_network,
                       max_reserved=limits.max_reserved_connections)


def run_node(home: str | Path, *, recover_signing_state: bool = False) -> int:
    """Run a validator or observer from its home until SIGINT/SIGTERM; returns the exit code."""
    try:
        config, limits = load_config(home)
    except VecheError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.name, config.log_level, config.log_file)
    try:
        return asyncio.run(serve(config, limits, recover_signing_state=recover_signing_state))
    except UpgradeRequired as exc:
        log_upgrade_required(config.name, exc)
        return EXIT_UPGRADE_REQUIRED
    except (VecheError, OSError) as exc:
        fault = classify(exc)
        if fault is None:
            log.critical("node %s cannot start: %s", config.name, exc.message if isinstance(exc, VecheError) else exc)
            return EXIT_FAILURE
        log.critical("node %s cannot start: %s", config.name, explain(fault, home=config.home,
                                                                      data_dir=config.data_dir))
        return fault.code
    except KeyboardInterrupt:
        return 130
