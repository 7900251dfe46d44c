"""Operator consoles as real processes (``python -m node.cli console``) for tests, and a small HTTP client.

``ConsoleProcess.start()`` runs ``veche console --key … --node … --port …`` and waits for the login
link it prints; ``Visitor`` keeps cookies like a browser and reads pages, forms and messages.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.node.netkit import ROOT, free_base_port

LINK = re.compile(r"open (http://\S+/login\?token=\S+)")


@dataclass
class ConsoleProcess:
    key_file: Path
    nodes: list[str]
    folder: Path
    port: int = 0
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    login_url: str = ""
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / f"console-{self.port}.log"

    def command(self) -> list[str]:
        nodes = [arg for url in self.nodes for arg in ("--node", url)]
        return [sys.executable, "-m", "node.cli", "console", "--key", str(self.key_file), *nodes,
                "--port", str(self.port), *self.extra]

    def start(self, timeout: float = 60.0) -> "ConsoleProcess":
        if not self.port:
            self.port = free_base_port(1)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env, cwd=str(ROOT))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LINK.search(self.log_path.read_text(errors="replace"))
            if found:
                self.login_url = found.group(1)
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"the console exited ({self.process.returncode}):\n{self.log_text()}")
            time.sleep(0.1)
        raise RuntimeError(f"the console printed no login link in {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def run_console(key_file: Path, nodes: list[str], port: int, *extra: str,
                timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the console to its end (it refuses to start): exit code and output."""
    args = [sys.executable, "-m", "node.cli", "console", "--key", str(key_file),
            *[arg for url in nodes for arg in ("--node", url)], "--port", str(port), *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT), env=env)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Answer:
    status: int
    text: str
    headers: dict[str, str]

    def message(self) -> str:
        found = re.search(r'id="message">(.*?)</p>', self.text, re.S)
        return found.group(1) if found else ""


class Visitor:
    """A cookie-keeping HTTP client of one console (redirects are not followed: tests see them)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), NoRedirect())

    def request(self, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 90.0) -> Answer:
        request = urllib.request.Request(self.base + path if path.startswith("/") else path, data=data,
                                         method=method, headers=headers or {})
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return Answer(response.status, response.read().decode("utf-8", "replace"), dict(response.headers))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read().decode("utf-8", "replace"), dict(exc.headers))

    def get(self, path: str, **options: object) -> Answer:
        return self.request("GET", path, **options)  # type: ignore[arg-type]

    def post_form(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> Answer:
        body = urllib.parse.urlencode(fields).encode()
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded",
                                                 **(headers or {})})

    def post_multipart(self, path: str, fields: dict[str, str], files: list[tuple[str, str, bytes, str]]) -> Answer:
        boundary = "veche-test-boundary-7f3a"
        parts: list[bytes] = []
        for name, value in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        for name, filename, content, kind in files:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                         f"Content-Type: {kind}\r\n\r\n".encode() + content + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def login(self, login_url: str) -> Answer:
        return self.get(login_url)

    def csrf(self, path: str = "/") -> str:
        found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', self.get(path).text)
        if found is None:
            raise AssertionError(f"no CSRF token on {path}")
        return found.group(1)

