"""Test "machines": one Linux network namespace each, on one bridge, as the chaos runner makes them
(scripts/veche_chaos/netns.py): a private /24 of 10.79/16 per run (``slot``), the host on .1 (the
operator's and the citizens' side, and the monitoring network), machine i on .(10 + i).

Everything created is recorded in ``/run/veche-deploy/<pid>.json``; ``close`` removes it, and the next
run removes what a killed run (whose pid is gone) left behind. Processes started with ``spawn`` run
inside their machine's namespace (``ip netns exec``) and are stopped by ``close`` (SIGTERM, then
SIGKILL after 10 s).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR = Path("/run/veche-deploy")
NET = "10.79"
STOP_TIMEOUT_S = 10.0


class MachineError(RuntimeError):
    pass


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise MachineError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(record: dict[str, object]) -> None:
    for link in record.get("links", []):  # type: ignore[union-attr]
        ip("link", "del", str(link), check=False)
    for namespace in record.get("namespaces", []):  # type: ignore[union-attr]
        ip("netns", "del", str(namespace), check=False)


def clean_stale() -> None:
    for path in STATE_DIR.glob("*.json") if STATE_DIR.is_dir() else []:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            record = json.loads(path.read_text(encoding="utf-8"))
            if int(record["pid"]) != os.getpid() and not _alive(int(record["pid"])):
                _remove(record)
                path.unlink(missing_ok=True)


def _used_slots() -> set[int]:
    used = {int(m.group(1)) for m in re.finditer(rf"{re.escape(NET)}\.(\d+)\.", ip("-o", "addr", check=False).stdout)}
    for path in STATE_DIR.glob("*.json") if STATE_DIR.is_dir() else []:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            used.add(int(json.loads(path.read_text(encoding="utf-8"))["slot"]))
    return used


@dataclass
class Machine:
    name: str
    namespace: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass
class Lab:
    """The bridge, the machines and every process started in them."""

    slot: int = -1
    machines: dict[str, Machine] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    state_file: Path = STATE_DIR / f"{os.getpid()}.json"

    @property
    def host_address(self) -> str:
        return f"{NET}.{self.slot}.1"

    def _record(self) -> None:
        record = {"pid": os.getpid(), "slot": self.slot, "links": self.links,
                  "namespaces": [m.namespace for m in self.machines.values()]}
        self.state_file.write_text(json.dumps(record) + "\n", encoding="utf-8")

    def open(self, names: Sequence[str]) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with open(STATE_DIR / ".lock", "w", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            clean_stale()
            free = [slot for slot in range(1, 250) if slot not in _used_slots()]
            if not free:
                raise MachineError(f"no free {NET}.<slot>.0/24 network")
            self.slot = free[0]
            self._record()
            bridge = f"vd{self.slot}b"
            self.links.append(bridge)
            self._record()
            ip("link", "add", bridge, "type", "bridge")
            ip("addr", "add", f"{self.host_address}/24", "dev", bridge)
            ip("link", "set", bridge, "up")
            for index, name in enumerate(names):
                machine = Machine(name, f"veche-deploy-{os.getpid()}-{index}", f"{NET}.{self.slot}.{10 + index}")
                self.machines[name] = machine
                port = f"vd{self.slot}m{index}"
                self.links.append(port)
                self._record()
                ip("netns", "add", machine.namespace)
                ip("-n", machine.namespace, "link", "set", "lo", "up")
                ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", machine.namespace)
                ip("-n", machine.namespace, "addr", "add", f"{machine.address}/24", "dev", "eth0")
                ip("-n", machine.namespace, "link", "set", "eth0", "up")
                ip("link", "set", port, "master", bridge)
                ip("link", "set", port, "up")

    def spawn(self, machine: str, argv: Sequence[str], log: Path, *, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as sink:
            process = subprocess.Popen(self.machines[machine].command(argv), stdout=sink, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}, cwd=cwd,
                                       start_new_session=True)
        self.processes.append((machine, process))
        return process

    @staticmethod
    def stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        return process.returncode

    def close(self) -> None:
        for _, process in reversed(self.processes):
            self.stop(process)
        self.processes.clear()
        for link in self.links:
            ip("link", "del", link, check=False)
        for machine in self.machines.values():
            ip("netns", "del", machine.namespace, check=False)
        self.state_file.unlink(missing_ok=True)


def wait_for(condition: object, what: str, timeout: float = 60.0, interval: float = 0.2) -> None:
    """Poll ``condition()`` (a callable returning a truthy value) until it holds, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}" + (f" (last error: {last_error!r})" if last_error else ""))
