"""The machine's own faults, with real node processes and real LevelDB (docs/NODE.md §12).

* a validator whose signing state is deleted (chain stalled with two of four validators down, then
  ``kill -9``) refuses to start without ``--recover-signing-state`` (exit 6) and, with it, signs
  nothing at or below a floor derived from the chain: no equivocation, ever;
* a flipped byte in the signing-state file is refused (exit 6);
* a flipped byte in a LevelDB table is found before any corrupt byte is served (503, exit 5, one
  message naming ``veche node resync``), and ``veche node resync`` brings the node back with its
  signing state;
* a tmpfs-backed home filling up under load stops intake (503 ``disk_low``), keeps committing,
  takes votes again once space is freed, loses no acknowledged vote; a completely full disk stops
  the node with exit 9 and the disk-full message (not "is another node process using …?").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain import codec
from chain.block import Block, CommitCertificate
from consensus.signing_state import SigningState, decode_file
from node.exitcodes import EXIT_DATA_CORRUPT, EXIT_DISK_FULL, EXIT_SIGNING_STATE
from node.ops.recovery import SAFETY_MARGIN
from tests.node.netkit import ROOT, LocalNet, http_get, http_post, wait_for
from tests.node.votes import BallotPlan, demo_plan, encode_batch, make_batch

pytestmark = pytest.mark.slow

SIGNING_RUNBOOK = "Machine faults: lost or damaged signing state"


def signing_state(net: LocalNet, name: str) -> SigningState:
    config = json.loads((net.homes[name] / "config.json").read_text())
    state, legacy = decode_file((net.homes[name] / config["signing_state_file"]).read_bytes())
    assert not legacy
    return state


def exit_code(net: LocalNet, name: str, timeout: float = 60.0) -> int:
    return net.processes[name].wait(timeout=timeout)


def log_of(net: LocalNet, name: str) -> str:
    return (net.homes[name] / "process.log").read_text(errors="replace")


def push_blocks(net: LocalNet, plan: BallotPlan, via: str, target: int, timeout: float = 90.0) -> None:
    """Submit small vote batches to ``via`` until it has committed height ``target``."""
    deadline = time.monotonic() + timeout
    seed = int(time.monotonic() * 1000)
    while net.height(via) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{via} did not reach height {target} (at {net.height(via)})")
        seed += 1
        try:
            net.submit(via, make_batch(plan, 2, seed=seed))
        except (RuntimeError, OSError):
            pass
        time.sleep(0.3)


def evidence_everywhere(net: LocalNet, names: list[str]) -> dict[str, int]:
    counts = {}
    for name in names:
        status, body = http_get(net.urls[name] + "/api/v1/evidence")
        assert status == 200
        counts[name] = len(json.loads(body)["evidence"])
    return counts


@pytest.fixture
def net4(tmp_path: Path) -> Iterator[LocalNet]:
    net = LocalNet(tmp_path / "net", validators=4, observers=0)
    try:
        yield net
    finally:
        net.close()


def test_a_lost_signing_state_is_refused_and_recovery_never_double_signs(net4: LocalNet) -> None:
    net = net4
    plan = demo_plan(net.directory)
    net.start_all()
    push_blocks(net, plan, "validator-0", 2)
    # Stall the chain with validator-1 as the round-0 proposer of the stalled height when we can:
    # proposer(h, 0) = h mod 4, so stop validators 2 and 3 right after a height h ≡ 0 (mod 4).
    wait_for(lambda: net.height("validator-0") % 4 == 0, 40, "a height divisible by 4", interval=0.02)
    net.kill("validator-2")
    net.kill("validator-3")
    stalled = net.height("validator-0") + 1
    time.sleep(1.0)
    stalled = max(stalled, net.height("validator-0") + 1, net.height("validator-1") + 1)
    # validator-1 has signed something at the stalled height (its proposal or its prevote)
    wait_for(lambda: signing_state(net, "validator-1").height == stalled, 30, "validator-1 to sign at the stall")
    signed_before = signing_state(net, "validator-1")
    net.kill("validator-1")
    (net.homes["validator-1"] / "signing-state.bin").unlink()

    # Without the flag: refused, exit 6, one message naming the runbook and the flag.
    net.start("validator-1")
    assert exit_code(net, "validator-1") == EXIT_SIGNING_STATE
    text = log_of(net, "validator-1")
    assert "no signing state" in text and "--recover-signing-state" in text and SIGNING_RUNBOOK in text
    assert not (net.homes["validator-1"] / "signing-state.bin").exists()

    # With the flag: the floor comes from the chain (the stalled height + the margin) and is on disk.
    net.start("validator-1", args=("--recover-signing-state",))
    net.wait_up("validator-1")
    recovered = signing_state(net, "validator-1")
    assert recovered.floor >= stalled + SAFETY_MARGIN >= signed_before.height + SAFETY_MARGIN
    assert "signing state recovered (--recover-signing-state)" in log_of(net, "validator-1")
    # While the chain stays stalled, validator-1 works at the stalled height past its propose step
    # (where it proposed or prevoted before it lost its state) and signs nothing.
    def past_propose() -> bool:
        consensus = net.status("validator-1")["consensus"]
        return bool(consensus["height"] == stalled and consensus["step"] in ("prevote", "precommit"))

    wait_for(past_propose, 30, "validator-1 to pass the propose step of the stalled height")
    assert signing_state(net, "validator-1") == recovered
    assert net.height("validator-0") == stalled - 1  # still stalled: nothing was committed meanwhile

    # Validators 2 and 3 return: the chain passes the floor; validator-1 signs again above it only.
    net.start("validator-2")
    net.start("validator-3")
    for name in ("validator-2", "validator-3"):
        net.wait_up(name)
    push_blocks(net, plan, "validator-0", recovered.floor + 3)
    wait_for(lambda: signing_state(net, "validator-1").height > recovered.floor, 60, "validator-1 to sign again")
    assert signing_state(net, "validator-1").floor == recovered.floor

    # No equivocation, anywhere: no evidence, no EQUIVOCATION line, and no signature of validator-1
    # in any certificate from the stalled height up to its floor (it signed below the stall before).
    top = net.height("validator-0")
    assert evidence_everywhere(net, net.validators) == {name: 0 for name in net.validators}
    for name in net.validators:
        assert "EQUIVOCATION" not in log_of(net, name), name
    status, body = http_get(f"{net.urls['validator-0']}/api/v1/blocks/raw?from={stalled}&to={top}")
    assert status == 200
    for raw_block, raw_cert in codec.decode(body, max_bytes=1 << 26):
        block = Block.from_wire(raw_block)
        last_commit = block.last_commit
        if last_commit is not None and stalled <= last_commit.height <= recovered.floor:
            assert 1 not in [index for index, _ in last_commit.signatures], last_commit.height
        certificate = CommitCertificate.from_wire(raw_cert)
        if block.height <= recovered.floor:
            assert 1 not in [index for index, _ in certificate.signatures], block.height


def test_a_flipped_byte_in_the_signing_state_is_refused(tmp_path: Path) -> None:
    net = LocalNet(tmp_path / "net", validators=1, observers=0)
    try:
        plan = demo_plan(net.directory)
        net.start_all()
        push_blocks(net, plan, "validator-0", 2)
        assert net.stop("validator-0") == 0
        path = net.homes["validator-0"] / "signing-state.bin"
        good = path.read_bytes()
        damaged = bytearray(good)
        damaged[len(good) // 2] ^= 0x01
        path.write_bytes(bytes(damaged))
        net.start("validator-0")
        assert exit_code(net, "validator-0") == EXIT_SIGNING_STATE
        text = log_of(net, "validator-0")
        assert "checksum mismatch" in text and SIGNING_RUNBOOK in text
        assert path.read_bytes() == bytes(damaged)  # never "repaired" behind the operator's back
        path.write_bytes(good)  # restored from a backup that is not older than the last signature
        net.start("validator-0")
        net.wait_up("validator-0")
        height = net.height("validator-0")
        push_blocks(net, plan, "validator-0", height + 1)
    finally:
        net.close()


def _flip_inside_block(data_dir: Path, needle: bytes) -> Path:
    """Compact the store into tables, then flip one byte of ``needle`` where a table holds it."""
    import plyvel

    db = plyvel.DB(str(data_dir))
    db.compact_range()
    db.close()
    for table in sorted(data_dir.glob("*.ldb")):
        content = bytearray(table.read_bytes())
        offset = content.find(needle)
        if offset >= 0:
            content[offset + len(needle) // 2] ^= 0x40
            table.write_bytes(bytes(content))
            return table
    raise AssertionError("the block's bytes are in no table")


def test_a_flipped_byte_in_a_table_is_never_served_and_resync_brings_the_node_back(net4: LocalNet) -> None:
    net = net4
    plan = demo_plan(net.directory)
    net.start_all()
    accepted = net.submit("validator-0", make_batch(plan, 60, seed=7))["accepted"]
    wait_for(lambda: all(net.tx_status("validator-3", h) == "committed" for h in accepted[-3:]), 60, "votes")
    push_blocks(net, plan, "validator-0", net.height("validator-0") + 2)
    target, home = "validator-3", net.homes["validator-3"]
    location = json.loads(http_get(f"{net.urls['validator-0']}/api/v1/txs/{accepted[-1]}")[1])
    height = location["height"]
    good_raw = http_get(f"{net.urls['validator-0']}/api/v1/blocks/{height}/raw")[1]
    assert net.stop(target) == 0
    signing_before = (home / "signing-state.bin").read_bytes()
    block = Block.decode(codec.encode(codec.decode(good_raw)[0]))
    _flip_inside_block(home / "data", block.txs[-1][-64:])  # inside a ballot's signature

    net.start(target)
    served: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 60
    while net.alive(target) and time.monotonic() < deadline:
        for url in (f"/api/v1/blocks/{height}/raw", f"/api/v1/blocks/raw?from={height}&to={height}"):
            try:
                served.append(http_get(net.urls[target] + url, 2.0))
            except OSError:
                pass
        time.sleep(0.1)
    assert exit_code(net, target) == EXIT_DATA_CORRUPT
    assert all(status != 200 for status, _ in served), "a block was served from a corrupt table"
    assert all(status == 503 and b"data_corrupt" in body for status, body in served)
    text = log_of(net, target)
    assert len(re.findall(r"CRITICAL.*veche node resync --home", text)) == 1, text[-3000:]
    assert "Machine faults: corrupt data" in text
    assert "Traceback" not in text.split("=== ", 1)[-1]

    resync = subprocess.run([sys.executable, "-m", "node.cli", "node", "resync", "--home", str(home)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert resync.returncode == 0, resync.stderr
    assert "kept the signing state" in resync.stdout and not (home / "data").exists()
    assert (home / "signing-state.bin").read_bytes() == signing_before
    net.start(target)
    net.wait_up(target)
    wait_for(lambda: net.height(target) >= net.height("validator-0") - 1 >= height, 60, "the resync")
    status, resynced = http_get(f"{net.urls[target]}/api/v1/blocks/{height}/raw")
    assert status == 200 and codec.decode(resynced)[0] == codec.decode(good_raw)[0]  # the same block again
    top = net.height("validator-0")
    push_blocks(net, plan, "validator-0", top + 2)
    assert signing_state(net, target).height > decode_file(signing_before)[0].height  # it signs again, same file
    assert evidence_everywhere(net, net.validators) == {name: 0 for name in net.validators}


# --- a full disk ------------------------------------------------------------------------------------


class Load:
    """Posts a few votes every 50 ms; remembers what was acknowledged and why anything was refused."""

    def __init__(self, net: LocalNet, plan: BallotPlan, name: str) -> None:
        self.net, self.plan, self.name = net, plan, name
        self.acked: list[str] = []
        self.refused: dict[str, int] = {}
        self.last: str = ""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self._seed = 50_000

    def run(self) -> None:
        while not self.stop.is_set():
            self._seed += 1
            try:
                status, body, _ = http_post(self.net.urls[self.name] + "/api/v1/txs",
                                            encode_batch(make_batch(self.plan, 3, seed=self._seed)), timeout=10)
            except OSError:
                self.last = "unreachable"
                time.sleep(0.1)
                continue
            if status == 200:
                self.acked.extend(json.loads(body)["accepted"])
                self.last = "ok"
            else:
                code = json.loads(body)["error"]["code"]
                self.refused[code] = self.refused.get(code, 0) + 1
                self.last = code
            time.sleep(0.05)


def _fill(path: Path, leave_bytes: int) -> None:
    """Write ``path`` until only ``leave_bytes`` stay free (0: until the device is full)."""
    stats = os.statvfs(path.parent)
    want = max(0, stats.f_bavail * stats.f_frsize - leave_bytes)
    chunk = b"\0" * (1 << 20)
    try:
        with open(path, "ab", buffering=0) as handle:
            while want > 0:
                want -= handle.write(chunk[:min(len(chunk), want)]) or 0
            while leave_bytes == 0:
                handle.write(chunk[:4096])
    except OSError:
        pass  # full


def _metric(net: LocalNet, name: str, metric: str) -> float:
    text = http_get(net.urls[name] + "/metrics")[1].decode()
    match = re.search(rf"^{metric} (\S+)$", text, re.M)
    assert match is not None, metric
    return float(match.group(1))


def test_a_filling_disk_stops_intake_and_recovers_without_losing_a_vote(tmp_path: Path) -> None:
    net = LocalNet(tmp_path / "net", validators=1, observers=0)
    name = "validator-0"
    home = net.homes[name]
    disk = tmp_path / "disk"  # the node's data/ and signing state on a 48 MiB tmpfs; its logs stay outside
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    assert mounted.returncode == 0, f"this test mounts a tmpfs (as root): {mounted.stderr}"
    try:
        shutil.move(str(home / "signing-state.bin"), disk / "signing-state.bin")
        config = json.loads((home / "config.json").read_text())
        config.update(data_dir=str(disk / "data"), signing_state_file=str(disk / "signing-state.bin"),
                      limits={"disk_min_free_mb": 16})
        (home / "config.json").write_text(json.dumps(config))
        plan = demo_plan(net.directory)
        net.start_all()
        load = Load(net, plan, name)
        load.thread.start()
        wait_for(lambda: len(load.acked) >= 30, 60, "votes to be acknowledged")

        filler = disk / "filler.bin"
        _fill(filler, 8 << 20)  # 8 MiB left: below the 16 MiB watermark, room for consensus
        wait_for(lambda: load.last == "disk_low", 20, "intake to stop with disk_low")
        assert _metric(net, name, "veche_disk_low") == 1
        low_height = net.height(name)
        wait_for(lambda: net.height(name) >= low_height + 1, 30, "consensus to go on below the watermark")
        acked_while_low = len(load.acked)
        time.sleep(1.0)
        assert len(load.acked) == acked_while_low  # nothing new taken while low
        filler.unlink()
        wait_for(lambda: load.last == "ok" and len(load.acked) > acked_while_low, 20, "intake to resume")
        assert _metric(net, name, "veche_disk_low") == 0
        load.stop.set()
        load.thread.join(timeout=20)
        text = log_of(net, name)
        assert text.count("is below limits.disk_min_free_mb") == 1 and text.count("above limits.disk_min_free_mb") == 1
        wait_for(lambda: all(net.tx_status(name, h) == "committed" for h in load.acked), 60, "every acked vote")

        # Completely full: the next write fails, the node stops with exit 9 and the disk-full message.
        _fill(filler, 0)
        assert exit_code(net, name, timeout=60) == EXIT_DISK_FULL
        net.start(name)  # still full: the same answer, never "is another node process using …?"
        assert exit_code(net, name, timeout=60) == EXIT_DISK_FULL
        text = log_of(net, name)
        assert "no space left" in text and "Machine faults: disk full" in text
        assert "another node process" not in text
        filler.unlink()
        net.start(name)
        net.wait_up(name)
        height = net.height(name)
        push_blocks(net, plan, name, height + 1)
        assert all(net.tx_status(name, h) == "committed" for h in load.acked), "an acknowledged vote was lost"
    finally:
        net.close()
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_each_start_failure_has_its_exit_code_and_message(tmp_path: Path) -> None:
    import socket

    from node.exitcodes import EXIT_CONFIG, EXIT_LISTEN, EXIT_STORE_IN_USE

    net = LocalNet(tmp_path / "net", validators=1, observers=0)
    name = "validator-0"
    home = net.homes[name]
    try:
        net.start_all()
        second = subprocess.run([sys.executable, "-m", "node", "--home", str(home)], cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == EXIT_STORE_IN_USE
        assert "is another node process using" in second.stderr and "LOCK" in second.stderr
        assert net.stop(name) == 0
        port = int(net.urls[name].rsplit(":", 1)[1])
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
            # the stopped node's closed connections may leave the port in TIME_WAIT: bind regardless
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            taken.bind(("127.0.0.1", port))
            taken.listen()
            busy = subprocess.run([sys.executable, "-m", "node", "--home", str(home)], cwd=ROOT,
                                  capture_output=True, text=True, timeout=60)
        assert busy.returncode == EXIT_LISTEN and "cannot listen on" in busy.stderr
        assert "another node process" not in busy.stderr
        config = json.loads((home / "config.json").read_text())
        (home / "config.json").write_text(json.dumps({**config, "limits": {"disk_min_free_mb": -1}}))
        bad = subprocess.run([sys.executable, "-m", "node", "--home", str(home)], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert bad.returncode == EXIT_CONFIG and "disk_min_free_mb" in bad.stderr
    finally:
        net.close()
