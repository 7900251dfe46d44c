"""How the chaos runner wires nodes together so that it can cut the wires: the network *fabric*.

A fabric decides, for every process of the testnet, where it listens, which URL it uses to reach
each other node (``peer_url(src, dst)``), which URL the genesis file publishes for a validator,
which URL the runner itself (load, observation, ``veche verify``) uses, and how a process is
launched. ``partition(groups)`` makes the cut real at the TCP level; ``heal()`` undoes it.

Two fabrics:

- ``NetnsFabric`` (``netns.py``): every node in its own Linux network namespace; node-to-node
  traffic over veth links on a bridge, a partition moves bridge ports onto separate bridges;
  the runner reaches each node over a separate point-to-point control link that partitions do
  not touch (citizens can still reach every validator, as in a real split between data centres).
- ``ProxyFabric`` (here): every node on loopback; each ordered pair (src → dst) talks through its
  own link of the fault proxy (``proxy.py``), which blackholes or resets links per direction.
  The genesis URL of a validator points at a *front* link that every partition cuts, so block
  sync cannot tunnel around a partition through the published URLs.

``choose_fabric("auto")`` uses namespaces when ``ip netns add`` works (root with iproute2), else
the proxy.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from veche_chaos.proxy import BLACKHOLE, PASS, RESET, LinkSpec, write_table

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Member:
    """A process of the testnet as the fabric sees it."""

    name: str           # validator-0, observer-0, gateway
    role: str           # validator, observer, gateway
    port: int           # the port it listens on


class FabricError(RuntimeError):
    pass


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ephemeral_port_floor() -> int:
    """The lowest port the kernel gives outgoing connections (``ip_local_port_range``; 32768 default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_block(count: int, *, low: int = 21000, high: int | None = None, attempts: int = 200) -> int:
    """A base port such that ``base .. base+count-1`` are all free on loopback now — below the
    ephemeral range by default, where no outgoing connection can take one before it is bound."""
    if high is None:
        floor = ephemeral_port_floor()
        high = floor if floor > low + count + 100 else 60000
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(attempts):
        base = rng.randrange(low, high - count)
        if all(port_is_free(base + offset) for offset in range(count)):
            return base
    raise FabricError(f"no block of {count} free ports found in {low}..{high}")


def url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


class Fabric(ABC):
    kind = "abstract"

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self.partitioned: list[set[str]] | None = None

    def add_members(self, members: Iterable[Member]) -> None:
        for member in members:
            self.members[member.name] = member

    @property
    def node_names(self) -> list[str]:
        return [m.name for m in self.members.values() if m.role != "gateway"]

    # --- addressing -------------------------------------------------------------------------------

    @abstractmethod
    def listen_host(self, name: str) -> str: ...

    @abstractmethod
    def peer_url(self, src: str, dst: str) -> str: ...

    @abstractmethod
    def genesis_url(self, name: str) -> str: ...

    @abstractmethod
    def client_url(self, name: str) -> str: ...

    def own_url(self, name: str) -> str:
        """The ``api_url`` in a node's own config (the address other nodes know it by)."""
        return self.client_url(name)

    MAX_FLOOD_SOURCES = 4

    def flood_source(self, name: str, number: int = 0, own_network: bool = False) -> str | None:
        """Local address ``number`` (< ``MAX_FLOOD_SOURCES``) the runner can bind to, so that a flood
        comes from clients of its own (a node budgets each client address separately). With
        ``own_network`` each address is in an IPv4 /24 of its own where the fabric can do that (a node
        shares its node-wide budget fairly per /24), else they share one."""
        return None

    def measure_source(self, name: str) -> str | None:
        """A local address apart from the flood's, from which the flood measures the node's admission
        rate (the node trusts it, so what is measured is the node's capacity, not a budget)."""
        return None

    def command(self, name: str, argv: Sequence[str]) -> list[str]:
        return list(argv)

    # --- life cycle and faults ----------------------------------------------------------------------

    async def setup(self) -> None:
        """Create what the fabric needs; called after members are known, before processes start."""

    async def teardown(self) -> None:
        """Remove everything ``setup`` created; must not raise."""

    @abstractmethod
    async def partition(self, groups: Sequence[Iterable[str]]) -> None:
        """Split the nodes: traffic flows only within a group; a node in no group is isolated."""

    @abstractmethod
    async def heal(self) -> None: ...

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "partitioned": [sorted(g) for g in self.partitioned] if self.partitioned else None}


def group_of(groups: Sequence[set[str]], name: str) -> int | None:
    for index, group in enumerate(groups):
        if name in group:
            return index
    return None


class ProxyFabric(Fabric):
    """All nodes on loopback; node-to-node connections through per-direction links of the fault proxy."""

    kind = "proxy"

    def __init__(self, work_dir: Path, *, python: str = sys.executable, mode: str = BLACKHOLE) -> None:
        super().__init__()
        if mode not in (BLACKHOLE, RESET):
            raise FabricError(f"proxy partition mode must be {BLACKHOLE} or {RESET}")
        self.work_dir = work_dir
        self.python = python
        self.mode = mode
        self.links: dict[str, LinkSpec] = {}
        self._pair: dict[tuple[str, str], str] = {}
        self._front: dict[str, str] = {}
        self.control_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def _allocate(self) -> None:
        if self.links:
            return
        nodes = [m for m in self.members.values() if m.role != "gateway"]
        validators = [m for m in nodes if m.role == "validator"]
        pairs = [(src, dst) for src in nodes for dst in validators if src.name != dst.name]
        count = len(pairs) + len(validators) + 1
        base = free_port_block(count)
        port = iter(range(base, base + count))
        for src, dst in pairs:
            name = f"{src.name}->{dst.name}"
            self.links[name] = LinkSpec(name, LOOPBACK, next(port), LOOPBACK, dst.port)
            self._pair[(src.name, dst.name)] = name
        for validator in validators:
            name = f"front->{validator.name}"
            self.links[name] = LinkSpec(name, LOOPBACK, next(port), LOOPBACK, validator.port)
            self._front[validator.name] = name
        self.control_port = next(port)

    def listen_host(self, name: str) -> str:
        return LOOPBACK

    def peer_url(self, src: str, dst: str) -> str:
        self._allocate()
        link = self._pair.get((src, dst))
        if link is None:
            return self.client_url(dst)
        return url(LOOPBACK, self.links[link].listen_port)

    def genesis_url(self, name: str) -> str:
        self._allocate()
        return url(LOOPBACK, self.links[self._front[name]].listen_port)

    def client_url(self, name: str) -> str:
        return url(LOOPBACK, self.members[name].port)

    def flood_source(self, name: str, number: int = 0, own_network: bool = False) -> str | None:
        return f"127.{77 + number}.0.1" if own_network else f"127.0.0.{77 + number}"

    def measure_source(self, name: str) -> str | None:
        return self.flood_source(name, self.MAX_FLOOD_SOURCES)

    async def setup(self) -> None:
        self._allocate()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        table = self.work_dir / "proxy-links.json"
        write_table(table, self.links.values())
        log_file = open(self.work_dir / "proxy.log", "ab")
        scripts_dir = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [scripts_dir, os.environ.get("PYTHONPATH")]))}
        from veche_chaos.cluster import die_with_runner

        self.process = subprocess.Popen(
            [self.python, "-m", "veche_chaos.proxy", "--table", str(table), "--control-port", str(self.control_port)],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True, preexec_fn=die_with_runner)
        log_file.close()
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise FabricError(f"the fault proxy exited with {self.process.returncode}; see "
                                      f"{self.work_dir / 'proxy.log'}")
                try:
                    async with session.get(f"{url(LOOPBACK, self.control_port)}/links",
                                           timeout=aiohttp.ClientTimeout(total=2)) as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    pass
                await asyncio.sleep(0.1)
        raise FabricError("the fault proxy did not come up within 20 s")

    async def teardown(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.get_running_loop().run_in_executor(None, process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    async def _rules(self, default: str, states: dict[str, str]) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url(LOOPBACK, self.control_port)}/rules",
                                    data=json.dumps({"default": default, "links": states}),
                                    timeout=aiohttp.ClientTimeout(total=10)) as response:
                if response.status != 200:
                    raise FabricError(f"proxy rules refused: {await response.text()}")

    async def partition(self, groups: Sequence[Iterable[str]]) -> None:
        sets = [set(g) for g in groups]
        states: dict[str, str] = {}
        for (src, dst), link in self._pair.items():
            same = group_of(sets, src)
            if same is None or same != group_of(sets, dst):
                states[link] = self.mode
        for link in self._front.values():
            states[link] = self.mode
        await self._rules(PASS, states)
        self.partitioned = sets

    async def block_directions(self, pairs: Iterable[tuple[str, str]]) -> None:
        """A one-way cut: connections that ``src`` opens to ``dst`` are blackholed (the reverse flows)."""
        states = {self._pair[pair]: self.mode for pair in pairs}
        await self._rules(PASS, states)
        self.partitioned = []

    async def heal(self) -> None:
        await self._rules(PASS, {})
        self.partitioned = None

    async def link_counters(self) -> list[dict[str, object]]:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url(LOOPBACK, self.control_port)}/links",
                                   timeout=aiohttp.ClientTimeout(total=5)) as response:
                body = await response.json()
        links: list[dict[str, object]] = body["links"]
        return links


def netns_available() -> bool:
    """True when this process can create network namespaces and veth links (root + iproute2)."""
    if os.geteuid() != 0:
        return False
    probe = f"vcprobe{os.getpid() % 100000}"
    try:
        created = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if created.returncode != 0:
        return False
    try:
        veth = subprocess.run(["ip", "link", "add", probe[:15], "type", "veth", "peer", "name", "p0", "netns", probe],
                              capture_output=True, timeout=10)
        ok = veth.returncode == 0
        subprocess.run(["ip", "link", "del", probe[:15]], capture_output=True, timeout=10)
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return ok


def choose_fabric(kind: str, work_dir: Path) -> Fabric:
    from veche_chaos.netns import NetnsFabric

    if kind == "auto":
        kind = "netns" if netns_available() else "proxy"
    if kind == "netns":
        return NetnsFabric()
    if kind == "proxy":
        return ProxyFabric(work_dir)
    raise FabricError(f"unknown fabric {kind!r} (auto, netns, proxy)")
