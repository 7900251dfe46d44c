"""A node logs once: to the journal when stderr is systemd's journal stream (JOURNAL_STREAM), with
syslog priorities and no node.log; else to stderr and node.log (or stderr only with ``log_file: null``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.node.apphost import make_testnet


def run_until_serving(home: Path, stderr: Path, env: dict[str, str] | None = None) -> None:
    port = json.loads((home / "config.json").read_text())["listen_port"]
    with stderr.open("ab") as sink:
        process = subprocess.Popen([sys.executable, "-m", "node", "--home", str(home)], stdout=subprocess.DEVNULL,
                                   stderr=sink, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"the node exited with {process.returncode}: {stderr.read_text()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status", timeout=2) as answer:
                    if json.loads(answer.read())["height"] >= 1:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the node did not serve"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_journal_only_under_systemd_else_stderr_and_file(tmp_path: Path) -> None:
    home = make_testnet(tmp_path / "net").nodes[0].home
    journal = tmp_path / "journal-stream"
    journal.touch()
    status = os.stat(journal)
    run_until_serving(home, journal, {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"})
    lines = journal.read_text().splitlines()
    assert any(line.startswith("<6>INFO veche.node [validator-0] node validator-0 serves") for line in lines), lines
    assert not (home / "node.log").exists()

    plain = tmp_path / "stderr"
    run_until_serving(home, plain, {"JOURNAL_STREAM": "1:2"})     # someone else's journal stream: not ours
    assert "serves" in (home / "node.log").read_text() and "serves" in plain.read_text()

    (home / "node.log").unlink()
    document = json.loads((home / "config.json").read_text())
    (home / "config.json").write_text(json.dumps({**document, "log_file": None}))
    quiet = tmp_path / "stderr-only"
    run_until_serving(home, quiet)
    assert "serves" in quiet.read_text() and not (home / "node.log").exists()
