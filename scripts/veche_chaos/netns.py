"""Network-namespace fabric: each node in its own Linux network namespace, partitions on real links.

Per run, in a private /24 of 10.77/16 inside the namespaces only and a /24 of 10.78/16 for the
control links (``slot`` picks a free one so concurrent runs never collide):

  node i  ── netns ``veche-chaos-<pid>-<i>``
             ├─ ``p2p``  10.77.0.(10+i)/24  ── veth ── bridge ``vk<slot>b0`` (host side, no address)
             └─ ``ctl``  10.78.<slot>.(16i+2)/28 ── veth ── host 10.78.<slot>.(16i+1), .(16i+3)…(16i+7)

Validators reach each other (consensus, gossip, block sync) only over ``p2p`` addresses, which
are also the URLs in the genesis file. ``partition(groups)`` moves each node's bridge port onto
the bridge of its group (``vk<slot>b<g>``), a node outside every group gets no bridge at all;
packets between groups are simply not delivered, so TCP connections stall and time out. The
runner (load, observation, gateway, ``veche verify``) talks to each node over its own control
link, which partitions never touch. ``.(16i+3)`` … ``.(16i+6)`` are more host addresses on that
link, used as the sources of floods so that a node sees flooders as clients apart from honest ones,
and ``.(16i+7)`` the source of the flood's admission measurement (``measure_source``).

Everything created is recorded in ``/run/veche-chaos/<pid>.json``; ``teardown`` removes it, and
the next run removes what a killed run (whose pid is gone) left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from veche_chaos.fabric import Fabric, FabricError, group_of, url

log = logging.getLogger("veche.chaos.netns")

STATE_DIR = Path("/run/veche-chaos")
NS_PREFIX = "veche-chaos-"
P2P_NET = "10.77.0"
CONTROL_NET = "10.78"
CONTROL_STRIDE = 16          # one /28 per member: .1 host, .2 node, .3-.7 flood and measurement clients


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise FabricError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_recorded(record: dict[str, Any]) -> None:
    for link in record.get("links", []):
        _ip("link", "del", str(link), check=False)
    for namespace in record.get("namespaces", []):
        _ip("netns", "del", str(namespace), check=False)


def clean_stale() -> int:
    """Remove namespaces and links of earlier runs whose process is gone; returns how many runs."""
    if not STATE_DIR.is_dir():
        return 0
    removed = 0
    for path in STATE_DIR.glob("*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            _remove_recorded(record)
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _used_slots() -> set[int]:
    text = _ip("-o", "addr", check=False).stdout
    used = {int(m.group(1)) for m in re.finditer(rf"{re.escape(CONTROL_NET)}\.(\d+)\.", text)}
    for path in STATE_DIR.glob("*.json") if STATE_DIR.is_dir() else []:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            used.add(int(json.loads(path.read_text(encoding="utf-8"))["slot"]))
    return used


class NetnsFabric(Fabric):
    kind = "netns"

    def __init__(self) -> None:
        super().__init__()
        self.slot = -1
        self.namespaces: dict[str, str] = {}
        self.index: dict[str, int] = {}
        self.created_links: list[str] = []
        self.bridges: list[str] = []
        self.state_file = STATE_DIR / f"{os.getpid()}.json"

    # --- addressing ------------------------------------------------------------------------------

    def _node_index(self, name: str) -> int:
        if name not in self.index:
            self.index[name] = len(self.index)
        return self.index[name]

    def p2p_address(self, name: str) -> str:
        return f"{P2P_NET}.{10 + self._node_index(name)}"

    def control_address(self, name: str) -> str:
        return f"{CONTROL_NET}.{self.slot}.{CONTROL_STRIDE * self._node_index(name) + 2}"

    def listen_host(self, name: str) -> str:
        if self.members[name].role == "gateway":
            return "127.0.0.1"
        return "0.0.0.0"

    def peer_url(self, src: str, dst: str) -> str:
        return url(self.p2p_address(dst), self.members[dst].port)

    def genesis_url(self, name: str) -> str:
        return url(self.p2p_address(name), self.members[name].port)

    def own_url(self, name: str) -> str:
        return url(self.p2p_address(name), self.members[name].port)

    def client_url(self, name: str) -> str:
        member = self.members[name]
        if member.role == "gateway":
            return url("127.0.0.1", member.port)
        return url(self.control_address(name), member.port)

    def flood_source(self, name: str, number: int = 0, own_network: bool = False) -> str | None:  # one /24
        return f"{CONTROL_NET}.{self.slot}.{CONTROL_STRIDE * self._node_index(name) + 3 + number}"

    def measure_source(self, name: str) -> str | None:
        return self.flood_source(name, self.MAX_FLOOD_SOURCES)

    def command(self, name: str, argv: Sequence[str]) -> list[str]:
        namespace = self.namespaces.get(name)
        if namespace is None:
            return list(argv)
        return ["ip", "netns", "exec", namespace, *argv]

    def _bridge(self, group: int) -> str:
        return f"vk{self.slot}b{group}"

    def _port(self, name: str) -> str:
        return f"vk{self.slot}p{self._node_index(name)}"

    # --- life cycle --------------------------------------------------------------------------------

    def _record(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "slot": self.slot, "namespaces": sorted(self.namespaces.values()),
                  "links": self.created_links + self.bridges}
        self.state_file.write_text(json.dumps(record) + "\n", encoding="utf-8")

    async def setup(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with open(STATE_DIR / ".lock", "w", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            stale = clean_stale()
            if stale:
                log.warning("removed namespaces and links of %d earlier chaos run(s) that did not clean up", stale)
            used = _used_slots()
            free = [slot for slot in range(1, 250) if slot not in used]
            if not free:
                raise FabricError("no free 10.78.<slot>.0/24 control network")
            self.slot = free[0]
            self._record()
            try:
                self._create()
            except FabricError:
                self._destroy()
                raise
            finally:
                self._record()

    def _create(self) -> None:
        nodes = [m for m in self.members.values() if m.role != "gateway"]
        if len(nodes) > 256 // CONTROL_STRIDE:
            raise FabricError(f"the namespace fabric takes at most {256 // CONTROL_STRIDE} nodes, not {len(nodes)}")
        bridge = self._bridge(0)
        self.bridges.append(bridge)
        _ip("link", "add", bridge, "type", "bridge")
        _ip("link", "set", bridge, "up")
        for member in nodes:
            index = self._node_index(member.name)
            namespace = f"{NS_PREFIX}{os.getpid()}-{index}"
            self.namespaces[member.name] = namespace
            self._record()
            _ip("netns", "add", namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
            port = self._port(member.name)
            self.created_links.append(port)
            _ip("link", "add", port, "type", "veth", "peer", "name", "p2p", "netns", namespace)
            _ip("-n", namespace, "addr", "add", f"{self.p2p_address(member.name)}/24", "dev", "p2p")
            _ip("-n", namespace, "link", "set", "p2p", "up")
            _ip("link", "set", port, "master", bridge)
            _ip("link", "set", port, "up")
            control = f"vk{self.slot}c{index}"
            self.created_links.append(control)
            _ip("link", "add", control, "type", "veth", "peer", "name", "ctl", "netns", namespace)
            base = f"{CONTROL_NET}.{self.slot}.{CONTROL_STRIDE * index}"
            _ip("addr", "add", f"{CONTROL_NET}.{self.slot}.{CONTROL_STRIDE * index + 1}/28", "dev", control)
            for extra in range(3, 4 + self.MAX_FLOOD_SOURCES):   # .3 .. .6 flood clients, .7 its measurement
                _ip("addr", "add", f"{CONTROL_NET}.{self.slot}.{CONTROL_STRIDE * index + extra}/28", "dev", control)
            _ip("link", "set", control, "up")
            _ip("-n", namespace, "addr", "add", f"{self.control_address(member.name)}/28", "dev", "ctl")
            _ip("-n", namespace, "link", "set", "ctl", "up")
            log.debug("node %s in %s: p2p %s, control %s (%s/28)", member.name, namespace,
                      self.p2p_address(member.name), self.control_address(member.name), base)

    def _destroy(self) -> None:
        for link in self.created_links:
            _ip("link", "del", link, check=False)
        for bridge in self.bridges:
            _ip("link", "del", bridge, check=False)
        for namespace in self.namespaces.values():
            _ip("netns", "del", namespace, check=False)
        self.created_links, self.bridges = [], []
        self.namespaces = {}

    async def teardown(self) -> None:
        try:
            self._destroy()
        finally:
            self.state_file.unlink(missing_ok=True)

    # --- faults -------------------------------------------------------------------------------------

    def _ensure_bridge(self, group: int) -> str:
        bridge = self._bridge(group)
        if bridge not in self.bridges:
            self.bridges.append(bridge)
            self._record()
            _ip("link", "add", bridge, "type", "bridge")
            _ip("link", "set", bridge, "up")
        return bridge

    async def partition(self, groups: Sequence[Iterable[str]]) -> None:
        sets = [set(g) for g in groups]
        for name in self.namespaces:
            group = group_of(sets, name)
            port = self._port(name)
            if group is None:
                _ip("link", "set", port, "nomaster")
            else:
                _ip("link", "set", port, "master", self._ensure_bridge(group))
        self.partitioned = sets

    async def heal(self) -> None:
        bridge = self._bridge(0)
        for name in self.namespaces:
            _ip("link", "set", self._port(name), "master", bridge)
        self.partitioned = None

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "slot": self.slot, "namespaces": dict(self.namespaces),
                "p2p": {name: self.p2p_address(name) for name in self.namespaces},
                "control": {name: self.control_address(name) for name in self.namespaces}}
