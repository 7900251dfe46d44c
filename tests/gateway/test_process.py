"""``veche gateway start`` as a process: exit codes a supervisor acts on (node/exitcodes.py), and logs
written once — to the journal under systemd (JOURNAL_STREAM), else to stderr and gateway.log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from chain.storage import LevelStore
from node import exitcodes
from tests.gateway.harness import Keys, genesis_document, write_gateway_home
from tests.node.netkit import free_base_port

START_TIMEOUT_S = 30.0


def gateway_home(tmp_path: Path, **overrides: object) -> Path:
    home = tmp_path / "gateway"
    keys = Keys()
    port = free_base_port(1)
    write_gateway_home(home, keys, genesis_document(keys), ["http://127.0.0.1:1"],
                       {"listen_port": port, "url": f"http://127.0.0.1:{port}", **overrides})
    return home


def start(home: Path, stderr: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with stderr.open("wb") as sink:
        return subprocess.Popen([sys.executable, "-m", "node.cli", "gateway", "start", "--home", str(home)],
                                stdout=subprocess.DEVNULL, stderr=sink, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})})


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"gateway exited with {process.returncode}"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError("the gateway did not listen")


def config_port(home: Path) -> int:
    return int(json.loads((home / "config.json").read_text())["listen_port"])


def test_exit_codes_tell_permanent_from_transient(tmp_path: Path) -> None:
    home = gateway_home(tmp_path)
    port = config_port(home)
    # bad config: permanent
    document = json.loads((home / "config.json").read_text())
    (home / "config.json").write_text(json.dumps({**document, "surprise": 1}))
    result = subprocess.run([sys.executable, "-m", "node.cli", "gateway", "start", "--home", str(home)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == exitcodes.EXIT_CONFIG and "unknown keys" in result.stderr
    assert exitcodes.EXIT_CONFIG in exitcodes.PERMANENT
    (home / "config.json").write_text(json.dumps(document))
    # a key file that is not the genesis gateway's: permanent, found while starting
    (home / "gateway-key.json").rename(home / "kept-key.json")
    result = subprocess.run([sys.executable, "-m", "node.cli", "gateway", "start", "--home", str(home)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == exitcodes.EXIT_CONFIG and "key file" in result.stderr
    (home / "kept-key.json").rename(home / "gateway-key.json")
    # the data directory held by another process: transient
    store = LevelStore(home / "data")
    try:
        result = subprocess.run([sys.executable, "-m", "node.cli", "gateway", "start", "--home", str(home)],
                                capture_output=True, text=True, timeout=60)
    finally:
        store.close()
    assert result.returncode == exitcodes.EXIT_STORE_IN_USE, result.stderr
    assert exitcodes.EXIT_STORE_IN_USE not in exitcodes.PERMANENT
    # the port taken: transient
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = subprocess.run([sys.executable, "-m", "node.cli", "gateway", "start", "--home", str(home)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == exitcodes.EXIT_LISTEN, result.stderr
    # SIGTERM: a clean stop
    process = start(home, tmp_path / "stderr.log")
    wait_listening(port, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == exitcodes.EXIT_OK


def test_logs_once_to_the_journal_or_to_stderr_and_the_file(tmp_path: Path) -> None:
    home = gateway_home(tmp_path)
    port = config_port(home)
    stderr = tmp_path / "journal-stream"
    stderr.touch()
    status = os.stat(stderr)
    process = start(home, stderr, {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"})
    wait_listening(port, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    lines = stderr.read_text().splitlines()
    assert any(line.startswith("<6>INFO veche.gateway: gateway listening on") for line in lines), lines
    assert not (home / "gateway.log").exists()

    plain = tmp_path / "plain-stderr"
    process = start(home, plain)
    wait_listening(port, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    logged = (home / "gateway.log").read_text()
    assert "gateway listening on" in logged and "gateway listening on" in plain.read_text()
    assert not any(line.startswith("<") for line in logged.splitlines())
