"""The testnet under test: its homes, its processes, and the blunt instruments used on them.

``Cluster.create`` runs ``genesis.testnet.init_testnet`` (demo data, so campaign ``ib-2027`` is
open from genesis time), then rewrites what the fabric decides — the validators' URLs in the
genesis file (and its copy in every home), each node's ``listen_host``/``api_url``/``peers``,
node ``limits``, and the gateway's node list, ``limits`` and ``form_min_seconds``.

Processes are children of the runner, each in its own session, logging to ``<home>/process.log``.
Instruments: ``kill(name, SIGKILL)``, ``pause``/``resume`` (SIGSTOP/SIGCONT), ``stop`` (SIGTERM,
graceful, with a deadline), ``start``, ``wipe_data`` (the LevelDB ``data/`` folder only; the
validator's ``signing-state.bin`` stays), and ``rss_kib`` (``VmRSS`` from ``/proc``). A process
that exits without being told to is recorded in ``unexpected_exits``.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from genesis.model import parse_genesis, render_genesis
from genesis.testnet import TestnetLayout, init_testnet
from veche_chaos.fabric import Fabric, Member, free_port_block

log = logging.getLogger("veche.chaos.cluster")

REPO_ROOT = Path(__file__).resolve().parents[2]
BYZANTINE_ENV = "VECHE_BYZANTINE"
GENEROUS_GATEWAY_LIMITS: dict[str, Any] = {
    "sms_per_ip": {"count": 10_000_000, "seconds": 1}, "sms_per_subnet": {"count": 10_000_000, "seconds": 1},
    "sms_per_phone": {"count": 1000, "seconds": 1}, "sms_phone_daily": 1000,
    "code_per_ip": {"count": 10_000_000, "seconds": 1}, "code_per_subnet": {"count": 10_000_000, "seconds": 1},
    "ballot_per_ip": {"count": 10_000_000, "seconds": 1}, "ballot_per_subnet": {"count": 10_000_000, "seconds": 1},
    "card_per_ip": {"count": 10_000_000, "seconds": 1}, "card_per_subnet": {"count": 10_000_000, "seconds": 1},
    "sms_resend_seconds": 1,
}


@dataclass(eq=False)
class Proc:
    name: str
    role: str
    home: Path
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    paused: bool = False
    expect_exit: bool = False
    exits: list[tuple[float, int]] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class ClusterError(RuntimeError):
    pass


PR_SET_PDEATHSIG = 1


def die_with_runner() -> None:
    """In the child before exec: receive SIGTERM when the runner dies, however it dies (Linux), so no
    node outlives a killed run."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


MEASURER_TX_RATE = 1_000_000  # the measurement client's budget never binds: it measures capacity


class Cluster:
    def __init__(self, directory: Path, fabric: Fabric, *, validators: int = 4, observers: int = 1,
                 gateway: bool = True, node_limits: Mapping[str, Any] | None = None,
                 measured_node: str | None = None,
                 byzantine: Mapping[str, str] | None = None, python: str = sys.executable,
                 mempool_max_txs: int | None = None, log_level: str = "info", spares: int = 0) -> None:
        self.directory = directory
        self.spares = spares
        self.spare_names: list[str] = []   # validator homes outside the genesis set, until a validators.update
        self.retired: set[str] = set()     # validators killed for good (replaced)
        self.fabric = fabric
        self.validator_count = validators
        self.observer_count = observers
        self.with_gateway = gateway
        self.node_limits = dict(node_limits or {})
        self.measured_node = measured_node  # trusts the fabric's measurement address (flood.py)
        self.byzantine = dict(byzantine or {})
        self.python = python
        self.mempool_max_txs = mempool_max_txs
        self.log_level = log_level
        self.layout: TestnetLayout | None = None
        self.procs: dict[str, Proc] = {}
        self.unexpected_exits: list[dict[str, Any]] = []
        self.mounts: list[Path] = []  # tmpfs mounts made by the fill-disk fault, unmounted at shutdown
        self.chain_id = ""
        self.genesis_document: dict[str, Any] = {}

    # --- creation ----------------------------------------------------------------------------------

    def create(self) -> TestnetLayout:
        count = self.validator_count + self.spares + self.observer_count + 1
        base_port = free_port_block(count)
        layout = init_testnet(self.directory, validators=self.validator_count + self.spares,
                              observers=self.observer_count, base_port=base_port, demo=True)
        self.layout = layout
        self.spare_names = [node.name for node in layout.validators][self.validator_count:]
        self.chain_id = layout.chain_id
        members = [Member(node.name, node.role, node.port) for node in layout.nodes]
        members.append(Member(layout.gateway.name, "gateway", layout.gateway.port))
        self.fabric.add_members(members)
        return layout

    def configure(self) -> None:
        """Rewrite genesis URLs and configs for the fabric (after ``fabric.setup``)."""
        layout = self._layout()
        document = json.loads(layout.genesis_file.read_text(encoding="utf-8"))
        # spare machines: their homes, keys and fabric places exist, but genesis does not name them
        document["validators"] = [v for v in document["validators"] if v["name"] not in self.spare_names]
        for validator in document["validators"]:
            validator["url"] = self.fabric.genesis_url(validator["name"])
        parse_genesis(document)
        text = render_genesis(document)
        self.genesis_document = document
        layout.genesis_file.write_text(text, encoding="utf-8")
        validators = [node.name for node in layout.validators if node.name not in self.spare_names]
        for node in layout.nodes:
            (node.home / "genesis.json").write_text(text, encoding="utf-8")
            config_file = node.home / "config.json"
            config = json.loads(config_file.read_text(encoding="utf-8"))
            config["listen_host"] = self.fabric.listen_host(node.name)
            config["api_url"] = self.fabric.own_url(node.name)
            config["peers"] = [{"name": peer, "url": self.fabric.peer_url(node.name, peer)}
                               for peer in validators if peer != node.name]
            config["log_level"] = self.log_level
            limits = dict(self.node_limits)
            measurer = self.fabric.measure_source(node.name) if node.name == self.measured_node else None
            if measurer is not None:
                limits["trusted_clients"] = [*limits.get("trusted_clients", []), measurer]
                limits.setdefault("trusted_tx_rate", MEASURER_TX_RATE)
            if limits:
                config["limits"] = limits
            if self.mempool_max_txs is not None:
                config["mempool_max_txs"] = self.mempool_max_txs
            config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
            env = dict(os.environ)
            env.pop(BYZANTINE_ENV, None)
            if node.name in self.byzantine:
                env[BYZANTINE_ENV] = self.byzantine[node.name]
            argv = self.fabric.command(node.name, [self.python, "-m", "node", "--home", str(node.home)])
            self.procs[node.name] = Proc(node.name, node.role, node.home, argv, env)
        if self.with_gateway:
            gateway = layout.gateway
            (gateway.home / "genesis.json").write_text(text, encoding="utf-8")
            config_file = gateway.home / "config.json"
            config = json.loads(config_file.read_text(encoding="utf-8"))
            config["nodes"] = [self.fabric.client_url(name) for name in validators]
            config["form_min_seconds"] = 0
            config["limits"] = dict(GENEROUS_GATEWAY_LIMITS)
            config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
            env = dict(os.environ)
            env.pop(BYZANTINE_ENV, None)
            argv = [self.python, "-m", "node.cli", "gateway", "start", "--home", str(gateway.home)]
            self.procs[gateway.name] = Proc(gateway.name, "gateway", gateway.home, argv, env)

    def _layout(self) -> TestnetLayout:
        if self.layout is None:
            raise ClusterError("the cluster was not created")
        return self.layout

    # --- naming --------------------------------------------------------------------------------------

    @property
    def validators(self) -> list[str]:
        """The validators in service: genesis ones and joined spares, without the retired."""
        return [node.name for node in self._layout().validators if self._in_service(node.name)]

    @property
    def observers(self) -> list[str]:
        return [node.name for node in self._layout().observers]

    @property
    def nodes(self) -> list[str]:
        return [node.name for node in self._layout().nodes if self._in_service(node.name)]

    def _in_service(self, name: str) -> bool:
        return name not in self.spare_names and name not in self.retired

    def retire(self, name: str) -> None:
        """A validator killed for good (replaced by ``validators.update``): no longer watched or checked."""
        self.retired.add(name)
        self.procs[name].expect_exit = True

    def join(self, name: str) -> None:
        """A spare that a ``validators.update`` made a validator: watched and checked from now on."""
        if name in self.spare_names:
            self.spare_names.remove(name)

    @property
    def gateway_name(self) -> str:
        return self._layout().gateway.name

    def home(self, name: str) -> Path:
        return self.procs[name].home

    def url(self, name: str) -> str:
        return self.fabric.client_url(name)

    @property
    def gateway_url(self) -> str:
        return self.fabric.client_url(self.gateway_name)

    @property
    def outbox_file(self) -> Path:
        return self._layout().gateway.home / "sms-outbox.jsonl"

    # --- processes ------------------------------------------------------------------------------------

    def spawn(self, name: str, extra_args: tuple[str, ...] = ()) -> None:
        proc = self.procs[name]
        if proc.running:
            raise ClusterError(f"{name} is already running")
        log_file = open(proc.home / "process.log", "ab")
        log_file.write(f"\n=== chaos: start #{proc.starts + 1} at {time.strftime('%H:%M:%S')} ===\n".encode())
        log_file.flush()
        proc.process = subprocess.Popen([*proc.argv, *extra_args], stdout=log_file, stderr=subprocess.STDOUT, env=proc.env,
                                        cwd=REPO_ROOT, start_new_session=True, preexec_fn=die_with_runner)
        log_file.close()
        proc.starts += 1
        proc.paused = False
        proc.expect_exit = False

    async def start(self, name: str, *, ready_timeout: float = 60.0, extra_args: tuple[str, ...] = ()) -> None:
        self.spawn(name, extra_args)
        await self.wait_ready([name], timeout=ready_timeout)

    async def wait_exit(self, name: str, timeout: float) -> int | None:
        """The exit code of a process expected to stop by itself (a refusal), or None if still running."""
        proc = self.procs[name]
        proc.expect_exit = True
        if not await self._reap(name, timeout):
            return None
        return proc.process.returncode if proc.process is not None else None

    def config_of(self, name: str) -> dict[str, Any]:
        config: dict[str, Any] = json.loads((self.home(name) / "config.json").read_text(encoding="utf-8"))
        return config

    def write_config(self, name: str, config: dict[str, Any]) -> None:
        (self.home(name) / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    def signing_state_file(self, name: str) -> Path:
        return self.home(name) / str(self.config_of(name).get("signing_state_file", "signing-state.bin"))

    def data_dir(self, name: str) -> Path:
        return self.home(name) / str(self.config_of(name).get("data_dir", "data"))

    async def start_all(self, *, ready_timeout: float = 90.0) -> None:
        for name in self.nodes:
            self.spawn(name)
        await self.wait_ready(self.nodes, timeout=ready_timeout)
        if self.with_gateway:
            self.spawn(self.gateway_name)
            await self.wait_ready([self.gateway_name], timeout=ready_timeout)

    async def wait_ready(self, names: list[str], *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names)
        async with aiohttp.ClientSession() as session:
            while pending:
                for name in sorted(pending):
                    proc = self.procs[name]
                    if not proc.running:
                        raise ClusterError(f"{name} exited with {proc.process.returncode if proc.process else '?'} "
                                           f"while starting; see {proc.home / 'process.log'}")
                    path = "/healthz" if proc.role == "gateway" else "/api/v1/status"
                    try:
                        async with session.get(self.url(name) + path, timeout=aiohttp.ClientTimeout(total=2)) as r:
                            if r.status == 200:
                                pending.discard(name)
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                        pass
                if pending:
                    if time.monotonic() > deadline:
                        raise ClusterError(f"not ready after {timeout:.0f} s: {', '.join(sorted(pending))}")
                    await asyncio.sleep(0.2)

    def signal(self, name: str, signum: int) -> None:
        proc = self.procs[name]
        if proc.process is None or proc.process.poll() is not None:
            raise ClusterError(f"cannot signal {name}: not running")
        if signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            proc.expect_exit = True
        os.kill(proc.process.pid, signum)
        if signum == signal.SIGSTOP:
            proc.paused = True
        elif signum == signal.SIGCONT:
            proc.paused = False

    async def kill(self, name: str) -> None:
        """``kill -9`` and reap."""
        self.signal(name, signal.SIGKILL)
        await self._reap(name, 15.0)

    def pause(self, name: str) -> None:
        self.signal(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.signal(name, signal.SIGCONT)

    async def stop(self, name: str, *, timeout: float = 20.0) -> float:
        """Graceful stop (SIGTERM); returns seconds taken; SIGKILL and raise if it overruns ``timeout``."""
        proc = self.procs[name]
        if proc.paused:
            self.resume(name)
        started = time.monotonic()
        self.signal(name, signal.SIGTERM)
        if not await self._reap(name, timeout):
            self.signal(name, signal.SIGKILL)
            await self._reap(name, 10.0)
            raise ClusterError(f"{name} did not stop within {timeout:.0f} s of SIGTERM (killed)")
        return time.monotonic() - started

    async def _reap(self, name: str, timeout: float) -> bool:
        proc = self.procs[name]
        if proc.process is None:
            return True
        deadline = time.monotonic() + timeout
        while proc.process.poll() is None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        proc.exits.append((time.time(), proc.process.returncode))
        return True

    def wipe_data(self, name: str) -> Path:
        proc = self.procs[name]
        if proc.running:
            raise ClusterError(f"stop {name} before wiping its data")
        data_dir = self.data_dir(name)
        shutil.rmtree(data_dir, ignore_errors=True)
        return data_dir

    def check_exits(self) -> list[dict[str, Any]]:
        """Record processes that exited without being told to; returns the new ones."""
        found = []
        for proc in self.procs.values():
            if proc.process is not None and not proc.expect_exit and proc.process.poll() is not None:
                record = {"name": proc.name, "code": proc.process.returncode, "time": time.time(),
                          "log": str(proc.home / "process.log")}
                proc.expect_exit = True
                proc.exits.append((time.time(), proc.process.returncode))
                self.unexpected_exits.append(record)
                found.append(record)
        return found

    def rss_kib(self, name: str) -> int | None:
        memory = self.memory_kib(name)
        return None if memory is None else memory.get("VmRSS")

    def memory_kib(self, name: str) -> dict[str, int] | None:
        """``VmRSS``, ``RssAnon`` (heap: what a leak grows) and ``RssFile`` (mapped files such as
        LevelDB tables: clean pages the kernel can take back) from ``/proc/<pid>/status``, in KiB."""
        pid = self.procs[name].pid
        if pid is None or not self.procs[name].running:
            return None
        found: dict[str, int] = {}
        try:
            for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    found[key] = int(rest.split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return found if "VmRSS" in found else None

    async def shutdown(self) -> None:
        """Stop everything (resume paused ones first); never raises."""
        for proc in self.procs.values():
            if proc.running:
                try:
                    if proc.paused:
                        os.kill(proc.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
                    proc.expect_exit = True
                    os.kill(proc.process.pid, signal.SIGTERM)  # type: ignore[union-attr]
                except ProcessLookupError:
                    pass
        for name, proc in self.procs.items():
            if proc.process is not None and not await self._reap(name, 15.0):
                try:
                    os.kill(proc.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await self._reap(name, 5.0)
        for mount in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)
        self.mounts.clear()
