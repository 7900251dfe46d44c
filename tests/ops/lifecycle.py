"""Helpers for the network-lifecycle tests: new homes on a running testnet, the ``veche`` CLI as a
separate process (one key per process), a continuous ballot stream, and receipts from a node's proofs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from chain import codec
from chain.block import BlockHeader, CommitCertificate
from chain.crypto import SigningKey, sha256, write_key_file
from chain.receipt import build_receipt
from genesis.model import load_genesis
from genesis.testnet import node_config, write_initial_signing_state
from tests.node.netkit import ROOT, LocalNet, free_base_port, get_json
from tests.node.votes import BallotPlan, make_batch

BATCH_VOTERS = 20


def veche(*args: str, env: dict[str, str] | None = None, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """Run ``veche ARGS`` as its own process (the way an operator does, one machine's keys at a time)."""
    return subprocess.run([sys.executable, "-m", "node.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))


def add_home(net: LocalNet, name: str, role: str = "validator") -> SigningKey | None:
    """A new home next to the testnet's (its own key for a validator), registered with ``net``; not started."""
    home = net.directory / name
    home.mkdir()
    shutil.copy(net.directory / "genesis.json", home / "genesis.json")
    port = free_base_port(1)
    peers = [(other, net.urls[other]) for other in net.validators]
    config = node_config(name=name, role=role, host="127.0.0.1", port=port, peers=peers)
    (home / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    key = None
    if role == "validator":   # as `veche keys generate --out node-key.json --signing-state signing-state.bin`
        key = SigningKey.generate()
        write_key_file(home / "node-key.json", key)
        write_initial_signing_state(home / "signing-state.bin")
    net.homes[name] = home
    net.urls[name] = f"http://127.0.0.1:{port}"
    return key


class BallotStream:
    """Submits fresh ballots continuously, round-robin over the nodes that answer; keeps every
    acknowledged (accepted) ballot's tx hash — what a voter was told went through — and, like the gateway
    and the chaos runner's re-sender, re-sends what did not commit (``drain``): a ballot accepted by a
    node killed before it gossiped it is re-sent to another; a re-sent ballot is the same transaction."""

    def __init__(self, net: LocalNet, plan: BallotPlan, targets: list[str], interval_s: float = 0.15) -> None:
        self.net = net
        self.plan = plan
        self.targets = list(targets)
        self.interval_s = interval_s
        self.acknowledged: list[str] = []
        self.batches: list[tuple[list[bytes], list[str]]] = []    # (raw txs, accepted ballot hashes)
        self.refused = 0
        self.resent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._seed = 0

    def start(self) -> "BallotStream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        index = 0
        while not self._stop.is_set():
            self._seed += 1
            batch = make_batch(self.plan, BATCH_VOTERS, seed=self._seed)
            for attempt in range(len(self.targets) * 3):
                target = self.targets[(index + attempt) % len(self.targets)]
                if not self.net.alive(target):
                    continue
                try:
                    result = self.net.submit(target, batch)
                except (RuntimeError, OSError):
                    self.refused += 1
                    continue
                registration = sha256(batch[0]).hex()
                ballots = [tx_hash for tx_hash in result["accepted"] if tx_hash != registration]
                self.acknowledged.extend(ballots)
                self.batches.append((batch, ballots))
                break
            index += 1
            self._stop.wait(self.interval_s)


    def drain(self, name: str, campaign_id: str, timeout: float = 120.0) -> list[str]:
        """Re-send the batches with an acknowledged ballot not committed yet (every 3 s) until all are, or
        ``timeout``; returns the committed ballots (as ``committed_ballots``)."""
        deadline = time.monotonic() + timeout
        while True:
            committed = committed_ballots(self.net, name, campaign_id)
            done = set(committed)
            waiting = [raws for raws, accepted in self.batches if not set(accepted) <= done]
            if not waiting or time.monotonic() > deadline:
                return committed
            live = [target for target in self.targets if self.net.alive(target)]
            for index, raws in enumerate(waiting):
                try:
                    self.net.submit(live[index % len(live)], raws)
                    self.resent += 1
                except (RuntimeError, OSError):
                    pass
            time.sleep(3.0)


def committed_ballots(net: LocalNet, name: str, campaign_id: str) -> list[str]:
    """Every committed ballot's tx hash, in commit order (``GET /campaigns/{id}/ballots`` pages)."""
    hashes: list[str] = []
    after = ""
    while True:
        query = f"?limit=2000{'&after=' + after if after else ''}"
        page = get_json(f"{net.urls[name]}/api/v1/campaigns/{campaign_id}/ballots{query}", timeout=30)
        hashes.extend(ballot["tx_hash"] for ballot in page["ballots"])
        if not page["next"]:
            return hashes
        after = page["next"]


def receipt_file(net: LocalNet, name: str, tx_hash: str, path: Path) -> int:
    """Write the receipt of a committed tx from the node's proof (as the gateway builds it); its height."""
    found = get_json(f"{net.urls[name]}/api/v1/txs/{tx_hash}")
    assert found["status"] == "committed", found
    proof = found["proof"]
    params = load_genesis(net.directory / "genesis.json").params
    header = BlockHeader.from_wire(codec.decode(bytes.fromhex(proof["header"])))
    certificate = CommitCertificate.decode(bytes.fromhex(proof["certificate"]))
    receipt = build_receipt(params, bytes.fromhex(proof["tx"]), found["height"], found["index"], proof["tree_size"],
                            [bytes.fromhex(p) for p in proof["path"]], header, certificate)
    path.write_text(json.dumps(receipt))
    return int(found["height"])


def wait_height(net: LocalNet, names: list[str], height: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending and time.monotonic() < deadline:
        try:
            pending = [name for name in pending if net.height(name) < height]
        except (OSError, RuntimeError):
            pass
        if pending:
            time.sleep(0.2)
    if pending:
        heights: dict[str, Any] = {}
        for name in pending:
            try:
                heights[name] = net.height(name)
            except (OSError, RuntimeError) as exc:
                heights[name] = str(exc)
        raise TimeoutError(f"{heights} did not reach height {height} in {timeout:.0f} s:\n"
                           + "\n".join(net.log_tail(name, 15) for name in pending))
