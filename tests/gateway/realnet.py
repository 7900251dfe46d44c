"""A real local testnet for end-to-end tests: ``init_testnet(..., demo=True)`` and one OS process per
validator (``python -m node --home``) plus the gateway (``python -m node.cli gateway start --home``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from gateway.phone import normalize_phone
from genesis.testnet import TestnetLayout, init_testnet
from tests.certkey import test_certification_key
from tests.node.netkit import free_base_port

ROOT = Path(__file__).resolve().parents[2]


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Process:
    name: str
    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    def start(self) -> None:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
        self.process = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env, cwd=str(ROOT), start_new_session=True)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class RealNet:
    layout: TestnetLayout
    validators: list[Process] = field(default_factory=list)
    gateway: Process | None = None

    @property
    def gateway_url(self) -> str:
        return self.layout.gateway.url

    @property
    def gateway_home(self) -> Path:
        return self.layout.gateway.home

    @property
    def node_urls(self) -> list[str]:
        return [node.api_url for node in self.layout.nodes]

    def start(self, *, gateway_overrides: dict[str, Any] | None = None) -> None:
        for node in self.layout.nodes:
            process = Process(node.name, [sys.executable, "-m", "node", "--home", str(node.home)],
                              node.home / "process.log")
            process.start()
            self.validators.append(process)
        if gateway_overrides:
            config_path = self.gateway_home / "config.json"
            config = json.loads(config_path.read_text(encoding="utf-8"))
            config.update(gateway_overrides)
            config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        self.gateway = Process("gateway", [sys.executable, "-m", "node.cli", "gateway", "start", "--home",
                                           str(self.gateway_home)], self.gateway_home / "process.log")
        self.gateway.start()
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = {n.name: n.api_url + "/api/v1/status" for n in self.layout.nodes}
        pending["gateway"] = self.gateway_url + "/healthz"
        while pending:
            for name, url in list(pending.items()):
                try:
                    get_json(url)
                    del pending[name]
                except (urllib.error.URLError, OSError, ValueError):
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout} s: {sorted(pending)}; see process.log files")
            for process in self.validators + ([self.gateway] if self.gateway else []):
                if not process.alive:
                    raise RuntimeError(f"{process.name} exited; see {process.log_path}:\n"
                                       + process.log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        # the first block shows the validators found each other
        deadline = time.monotonic() + timeout
        while get_json(self.node_urls[0] + "/api/v1/status")["height"] < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("the testnet did not commit a first block")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in ([self.gateway] if self.gateway else []) + self.validators:
            process.stop()

    def outbox_code(self, phone: str) -> str:
        phone = normalize_phone(phone)
        path = self.gateway_home / "sms-outbox.jsonl"
        for line in reversed(path.read_text(encoding="utf-8").splitlines()):
            message = json.loads(line)
            if message["to"] == phone:
                found = re.search(r"\b(\d{6})\b", message["text"])
                if found:
                    return found.group(1)
        raise AssertionError(f"no SMS to {phone} in the outbox")


def make_realnet(directory: Path, validators: int = 4) -> RealNet:
    base = free_base_port(validators + 2)
    layout = init_testnet(directory, validators=validators, observers=0, base_port=base, demo=True,
                          certification_key=test_certification_key())
    return RealNet(layout)
