"""Real node processes on loopback for multi-process tests and the network benchmarks.

``LocalNet`` writes a testnet with ``init_testnet`` (free ports), runs each home as
``python -m node --home HOME`` (stdout/stderr to ``HOME/process.log``), and can kill (-9), stop,
restart and wipe nodes. HTTP helpers are blocking (urllib) so tests stay simple.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genesis.testnet import TestnetLayout, init_testnet
from tests.certkey import test_certification_key

ROOT = Path(__file__).resolve().parents[2]


def ephemeral_port_floor() -> int:
    """The lowest port the kernel hands to outgoing connections (32768 on Linux by default).

    Listening ports chosen by tests must stay below it: a port picked as free in the ephemeral range
    can be taken by any outgoing connection before the node binds it ("address already in use")."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_base_port(count: int) -> int:
    """A base port such that base .. base+count-1 are free on 127.0.0.1 right now, below the
    ephemeral range so no outgoing connection can take one before the node binds it."""
    floor = ephemeral_port_floor()
    high = floor if floor > 21000 + count else 60000
    for _ in range(500):
        base = random.randrange(20000, high - count)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range found")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post(url: str, body: bytes, content_type: str = "application/octet-stream",
              timeout: float = 30.0, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def get_json(url: str, timeout: float = 5.0) -> Any:
    status, body = http_get(url, timeout)
    if status != 200:
        raise RuntimeError(f"GET {url}: HTTP {status}: {body[:200]!r}")
    return json.loads(body)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, RuntimeError, ValueError) as exc:
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


class LocalNet:
    def __init__(self, directory: Path, *, validators: int = 4, observers: int = 1, demo: bool = True,
                 base_port: int | None = None, committee: int = 1, threshold: int = 1) -> None:
        base = base_port if base_port is not None else free_base_port(validators + observers + 1)
        self.layout: TestnetLayout = init_testnet(directory, validators=validators, observers=observers,
                                                  base_port=base, demo=demo, committee=committee, threshold=threshold,
                                                  certification_key=test_certification_key())
        self.directory = self.layout.directory
        self.homes = {node.name: node.home for node in self.layout.nodes}
        self.urls = {node.name: node.api_url for node in self.layout.nodes}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def names(self) -> list[str]:
        return list(self.homes)

    @property
    def validators(self) -> list[str]:
        return [node.name for node in self.layout.validators]

    def start(self, name: str, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = (), *,
              nofile: int | None = None) -> None:
        """Run node ``name``; ``nofile`` caps its open files (soft and hard RLIMIT_NOFILE)."""
        home = self.homes[name]
        log = open(home / "process.log", "ab")  # noqa: SIM115 - the child owns it; closed below
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **(extra_env or {}))

        def limit_files() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.processes[name] = subprocess.Popen([sys.executable, "-m", "node", "--home", str(home), *args], cwd=ROOT,
                                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                env=env, preexec_fn=limit_files if nofile is not None else None)
        log.close()

    def start_all(self, timeout: float = 60.0) -> None:
        for name in self.names:
            self.start(name)
        for name in self.names:
            self.wait_up(name, timeout)

    def wait_up(self, name: str, timeout: float = 60.0) -> None:
        def up() -> bool:
            process = self.processes[name]
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            return http_get(self.urls[name] + "/api/v1/status", 1.0)[0] == 200
        wait_for(up, timeout, f"{name} to answer")

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def alive(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self, name: str, timeout: float = 30.0) -> int:
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def wipe_data(self, name: str) -> None:
        shutil.rmtree(self.homes[name] / "data")

    def close(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.homes[name] / "process.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # --- API helpers ---------------------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = get_json(self.urls[name] + "/api/v1/status")
        return result

    def height(self, name: str) -> int:
        return int(self.status(name)["height"])

    def block_hash(self, name: str, height: int) -> str:
        return str(get_json(f"{self.urls[name]}/api/v1/blocks/{height}")["hash"])

    def submit(self, name: str, raws: list[bytes]) -> dict[str, Any]:
        from tests.node.votes import encode_batch

        status, body, _ = http_post(self.urls[name] + "/api/v1/txs", encode_batch(raws))
        if status != 200:
            raise RuntimeError(f"POST txs to {name}: HTTP {status}: {body[:300]!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    def tx_status(self, name: str, tx_hash: str) -> str:
        return str(get_json(f"{self.urls[name]}/api/v1/txs/{tx_hash}")["status"])

    def cpu_seconds(self, name: str) -> float:
        """utime + stime of the node process from /proc (Linux)."""
        fields = Path(f"/proc/{self.pid(name)}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
