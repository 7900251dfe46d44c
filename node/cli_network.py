"""CLI commands that run and look at the network: ``node start``, ``testnet start``, ``demo``,
``status`` and ``tally`` (ARCHITECTURE §6).

``testnet start DIR`` runs every node home of DIR (``python -m node --home …``) and, when DIR has a
gateway home, ``veche gateway start --home DIR/gateway``, each as a child process whose stdout and
stderr go to ``<home>/process.log`` (nodes also log to ``<home>/node.log``). It prints the URLs once
every node answers, reports any child that exits (nothing is restarted silently), and on Ctrl-C or
SIGTERM stops them all (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import click

from chain.errors import VecheError
from genesis.testnet import TestnetLayout, init_testnet, load_testnet
from node.client import ClientError, SyncNodeClient
from node.process import run_node

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
DEFAULT_DEMO_DIR = "veche-demo"


# --- veche node start ------------------------------------------------------------------------------


@click.group("node")
def node_group() -> None:
    """Run a validator or observer node."""


@node_group.command("start")
@click.option("--home", "home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The node's home folder (config.json, genesis.json, node-key.json, data/).")
@click.option("--recover-signing-state", "recover", is_flag=True,
              help="The validator's signing state is lost: derive a floor from the chain (own signatures in "
                   "stored and peers' certificates and evidence, plus a margin) and sign nothing at or below it.")
def node_start(home: Path, recover: bool) -> None:
    """Run the node of HOME until Ctrl-C or SIGTERM.

    Exit codes (docs/NODE.md §12): 0 stopped, 1 failed, 3 bad config/genesis/key, 4 store in use,
    5 data corrupt (run `veche node resync`), 6 signing state missing or damaged, 7 cannot listen,
    9 disk full.
    """
    code = run_node(home, recover_signing_state=recover)
    if code:
        sys.exit(code)


@node_group.command("resync")
@click.option("--home", "home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The node's home folder.")
def node_resync(home: Path) -> None:
    """Wipe HOME's block store and state (data/), keeping the signing state and the key.

    For a node that stopped with exit code 5 (corrupt data). The node must be stopped. On its next
    start it syncs every block from its peers. Exit codes: 0 wiped, 3 bad config, 4 store in use.
    """
    from node.config import load_config
    from node.exitcodes import EXIT_CONFIG
    from node.ops.resync import resync

    try:
        config, _ = load_config(home)
    except VecheError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(EXIT_CONFIG)
    result = resync(config)
    for line in result.lines:
        click.echo(line, err=line.startswith(("error", "warning")))
    if result.code:
        sys.exit(result.code)


# --- veche testnet start / veche demo ------------------------------------------------------------


@dataclass
class Child:
    name: str
    home: Path
    url: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    reported: bool = False


def _children(layout: TestnetLayout, with_gateway: bool) -> list[Child]:
    children = [Child(node.name, node.home, node.api_url, [sys.executable, "-m", "node", "--home", str(node.home)])
                for node in layout.nodes]
    gateway = layout.gateway
    if with_gateway and (gateway.home / "config.json").is_file():
        children.append(Child(gateway.name, gateway.home, gateway.url,
                              [sys.executable, "-m", "node.cli", "gateway", "start", "--home", str(gateway.home)]))
    return children


def _answers(url: str, path: str) -> bool:
    try:
        with urllib.request.urlopen(url + path, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


class NetworkRunner:
    """Owns the child processes of ``veche testnet start``."""

    def __init__(self, layout: TestnetLayout, *, with_gateway: bool = True) -> None:
        self.layout = layout
        self.children = _children(layout, with_gateway)
        self.stopping = False

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for child in self.children:
            child.log = open(child.home / "process.log", "ab")  # noqa: SIM115 - closed in stop()
            child.process = subprocess.Popen(child.command, stdout=child.log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> list[str]:
        """Names of children that did not answer within ``timeout`` (empty when all are up)."""
        deadline = time.monotonic() + timeout
        waiting = {child.name: child for child in self.children}
        while waiting and time.monotonic() < deadline:
            for name, child in list(waiting.items()):
                path = "/healthz" if child.name == self.layout.gateway.name else "/api/v1/status"
                if _answers(child.url, path):
                    del waiting[name]
                elif child.process is not None and child.process.poll() is not None:
                    del waiting[name]
                    self.report_exit(child)
            time.sleep(0.2)
        return sorted(waiting)

    def report_exit(self, child: Child) -> None:
        if child.reported or child.process is None:
            return
        child.reported = True
        code = child.process.returncode
        click.echo(f"!! {child.name} exited with code {code}; it is NOT restarted. "
                   f"Logs: {child.home / 'process.log'}", err=True)
        tail = _tail(child.home / "process.log")
        if tail:
            click.echo(tail, err=True)

    def watch(self) -> int:
        """Block until Ctrl-C/SIGTERM or until every child has exited; return an exit code."""
        while not self.stopping:
            alive = 0
            for child in self.children:
                if child.process is None:
                    continue
                if child.process.poll() is None:
                    alive += 1
                else:
                    self.report_exit(child)
            if alive == 0:
                click.echo("every process of the testnet has exited", err=True)
                return 1
            time.sleep(0.5)
        return 0

    def stop(self) -> None:
        self.stopping = True
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"{child.name} did not stop within {STOP_GRACE_S:.0f} s; killing it", err=True)
                child.process.kill()
                child.process.wait()
        for child in self.children:
            if child.log is not None:
                child.log.close()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("   " + line for line in text.splitlines()[-lines:])


def _print_urls(layout: TestnetLayout, runner: NetworkRunner) -> None:
    gateway = layout.gateway
    if any(child.name == gateway.name for child in runner.children):
        click.echo(f"gateway:      {gateway.url}/")
        click.echo(f"SMS outbox:   {gateway.home / 'sms-outbox.jsonl'}  (login codes are written here)")
    for node in layout.nodes:
        click.echo(f"{node.name + ':':<13} {node.api_url}/api/v1/status   (logs: {node.home / 'node.log'})")


def run_testnet(directory: Path) -> int:
    try:
        layout = load_testnet(directory)
    except VecheError as exc:
        raise click.ClickException(exc.message) from exc
    runner = NetworkRunner(layout)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.start()
        click.echo(f"starting testnet {layout.chain_id} in {layout.directory} "
                   f"({len(runner.children)} processes)...")
        missing = runner.wait_ready()
        if runner.stopping:
            return 0
        if missing:
            click.echo(f"!! not answering after {READY_TIMEOUT_S:.0f} s: {', '.join(missing)}", err=True)
        _print_urls(layout, runner)
        click.echo("Ctrl-C stops every process.")
        return runner.watch()
    finally:
        click.echo("stopping the testnet...")
        runner.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@click.command("start")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def testnet_start(directory: Path) -> None:
    """Run every node and the gateway of DIRECTORY as child processes; Ctrl-C stops all."""
    code = run_testnet(directory)
    if code:
        sys.exit(code)


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path(DEFAULT_DEMO_DIR), show_default=True, help="Where the demo testnet lives.")
@click.option("--base-port", type=int, default=26600, show_default=True,
              help="First port (only used when the demo is created).")
def demo_command(directory: Path, base_port: int) -> None:
    """Create the demo network in DIR if it is new (testnet init --demo), then run it."""
    if not (directory / "genesis.json").is_file():
        try:
            layout = init_testnet(directory, validators=4, observers=1, base_port=base_port, demo=True)
        except VecheError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"created the demo network {layout.chain_id} in {layout.directory}")
    else:
        click.echo(f"using the existing demo network in {directory.resolve()}")
    code = run_testnet(directory)
    if code:
        sys.exit(code)


# --- veche status / veche tally ----------------------------------------------------------------------


def _client_call(url: str, what: str, call: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = call(SyncNodeClient(url))
        return result
    except ClientError as exc:
        raise click.ClickException(f"{what}: {exc}") from exc


@click.command("status")
@click.option("--node", "node_url", required=True, help="Base URL of a node, e.g. http://127.0.0.1:26600")
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
def status_command(node_url: str, as_json: bool) -> None:
    """Show a node's status: chain, role, height, hashes, peers, mempool."""
    status = _client_call(node_url, "status", lambda client: client.status())
    if as_json:
        click.echo(json.dumps(status, ensure_ascii=False))
        return
    role = status.get("role", "?")
    if status.get("validator_index") is not None:
        role += f" #{status['validator_index']}"
    lines = [
        ("node", f"{status.get('node')} ({role})"),
        ("chain", f"{status.get('chain_id')}  genesis {str(status.get('genesis_hash', ''))[:16]}…"),
        ("height", f"{status.get('height')}{'  (catching up)' if status.get('catching_up') else ''}"),
        ("last block", f"{status.get('last_block_hash')}"),
        ("app hash", f"{status.get('app_hash')}"),
        ("block time", _format_time(status.get("last_block_time_ms"))),
        ("peers up", f"{status.get('peers')}"),
        ("mempool", f"{status.get('mempool')} txs"),
    ]
    consensus = status.get("consensus")
    if isinstance(consensus, dict):
        lines.append(("consensus", f"height {consensus.get('height')} round {consensus.get('round')} "
                                   f"step {consensus.get('step')}"))
    for label, value in lines:
        click.echo(f"{label:<11} {value}")
    links = status.get("peer_links")
    if isinstance(links, list):
        for link in links:
            if isinstance(link, dict):
                state = "up" if link.get("connected") else f"down ({link.get('last_error')})"
                click.echo(f"  peer {link.get('name')}: {state}")


def _format_time(value: Any) -> str:
    if not isinstance(value, int):
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value / 1000)) + f".{value % 1000:03d} UTC"


@click.command("tally")
@click.option("--node", "node_url", required=True, help="Base URL of a node.")
@click.option("--campaign", "campaign_id", required=True, help="Campaign id.")
@click.option("--json", "as_json", is_flag=True, help="Print the tally document as one JSON object.")
def tally_command(node_url: str, campaign_id: str, as_json: bool) -> None:
    """Show a campaign's tally: votes per initiative by district, and the winners."""
    tally = _client_call(node_url, "tally", lambda client: client.tally(campaign_id))
    if as_json:
        click.echo(json.dumps(tally, ensure_ascii=False))
        return
    click.echo(format_tally(tally))


def counted(count: object, noun: str) -> str:
    """"1 ballot", "2 ballots" (the CLI speaks English)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_tally(tally: dict[str, Any]) -> str:
    winners = set(tally.get("winners") or [])
    head = (f"campaign {tally.get('campaign')}: {tally.get('status')} at height {tally.get('height')}, "
            f"{counted(tally.get('total_ballots'), 'ballot')}, rule {tally.get('rule')} ({tally.get('scope')}), "
            f"result {tally.get('result_status')}")
    lines = [head, f"result hash {tally.get('result_hash')}"]
    districts = tally.get("districts") or {}
    width = max([len(str(i)) for d in districts.values() for i in (d.get("initiatives") or {})] + [10])
    for district_id, district in districts.items():
        initiatives = district.get("initiatives") or {}
        total = sum(v for v in initiatives.values() if isinstance(v, int))
        lines.append("")
        lines.append(f"{district_id}  ({counted(total, 'vote')})")
        ranked = sorted(initiatives.items(), key=lambda item: (-item[1], str(item[0]).encode()))
        for initiative_id, votes in ranked:
            mark = "  winner" if initiative_id in winners else ""
            lines.append(f"  {initiative_id:<{width}}  {votes:>8}{mark}")
    if tally.get("winners") is not None:
        lines.append("")
        lines.append(f"winners: {', '.join(tally.get('winners') or []) or '(none yet)'}")
    return "\n".join(lines)
