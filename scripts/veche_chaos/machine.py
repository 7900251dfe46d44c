"""The machine's own faults as chaos perturbations (docs/NODE.md §12, docs/RELIABILITY.md).

  delete-signing-state  kill -9, delete the validator's signing-state.bin, start: it must refuse
                        (exit 6); start with --recover-signing-state: it must come up with a floor
  corrupt-table         SIGTERM, compact the store, flip a byte inside a stored block in a LevelDB
                        table, start, read blocks: nothing may be served from it (no 200 for the
                        corrupt block), the node must stop with exit 5; ``veche node resync``, start
  fill-disk             move the node's data/ and signing state onto a tmpfs (root: ``mount``), fill
                        it below the watermark: new transactions get 503 ``disk_low`` while the node
                        keeps committing; free the space: intake resumes

Each writes what it saw into ``FaultRecord.detail`` and fails the record on any broken promise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from veche_chaos.cluster import REPO_ROOT, Cluster
from veche_chaos.observe import CommitWatcher

EXIT_DATA_CORRUPT = 5
EXIT_SIGNING_STATE = 6
FILL_WATERMARK_MB = 16
FILL_LEAVE_BYTES = 8 << 20
TMPFS_HEADROOM_BYTES = 64 << 20

MACHINE_KINDS = ("delete-signing-state", "corrupt-table", "fill-disk")


class MachineFaultError(RuntimeError):
    pass


async def delete_signing_state(cluster: Cluster, target: str, down_s: float) -> dict[str, Any]:
    if target not in cluster.validators:
        raise MachineFaultError(f"{target} is not a validator: it has no signing state")
    await cluster.kill(target)
    path = cluster.signing_state_file(target)
    path.unlink()
    await asyncio.sleep(down_s)
    cluster.spawn(target)
    refused = await cluster.wait_exit(target, 60.0)
    detail: dict[str, Any] = {"refused_exit_code": refused}
    if refused != EXIT_SIGNING_STATE:
        raise MachineFaultError(f"started without its signing state, {target} exited with {refused}, not 6")
    await cluster.start(target, extra_args=("--recover-signing-state",))
    from consensus.signing_state import decode_file

    state, _ = decode_file(path.read_bytes())
    detail["recovered_floor"] = state.floor
    return detail


def _flip_in_a_table(data_dir: Path) -> tuple[int, str]:
    """Compact, pick a stored block from the middle of the chain, flip a byte of it inside its table."""
    import plyvel

    from chain.ledger import BLOCK_PREFIX

    db = plyvel.DB(str(data_dir))
    try:
        db.compact_range()
        keys = [bytes(key) for key in db.iterator(prefix=BLOCK_PREFIX, include_value=False)]
        if len(keys) < 3:
            raise MachineFaultError("too few blocks to corrupt one")
        key = keys[len(keys) // 2]
        value = db.get(key)
    finally:
        db.close()
    assert value is not None
    height = int.from_bytes(key[len(BLOCK_PREFIX):], "big")
    needle = value[-48:]
    for table in sorted(data_dir.glob("*.ldb")):
        content = bytearray(table.read_bytes())
        offset = content.find(needle)
        if offset >= 0:
            content[offset + len(needle) // 2] ^= 0x40
            table.write_bytes(bytes(content))
            return height, table.name
    raise MachineFaultError(f"block {height}'s bytes are in no table")


async def corrupt_table(cluster: Cluster, target: str) -> dict[str, Any]:
    await cluster.stop(target)
    height, table = _flip_in_a_table(cluster.data_dir(target))
    detail: dict[str, Any] = {"corrupt_block": height, "table": table}
    cluster.spawn(target)
    served_ok = 0
    answers: dict[str, int] = {}
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while cluster.procs[target].running and time.monotonic() < deadline:
            for path in (f"/api/v1/blocks/{height}/raw", f"/api/v1/blocks/raw?from={height}&to={height}"):
                try:
                    async with session.get(cluster.url(target) + path, timeout=aiohttp.ClientTimeout(total=2)) as r:
                        await r.read()
                        answers[str(r.status)] = answers.get(str(r.status), 0) + 1
                        served_ok += r.status == 200
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    answers["unreachable"] = answers.get("unreachable", 0) + 1
            await asyncio.sleep(0.1)
    code = await cluster.wait_exit(target, 10.0)
    detail.update(exit_code=code, answers=answers, corrupt_served=served_ok)
    if served_ok:
        raise MachineFaultError(f"{target} served the corrupt block {height} {served_ok} times")
    if code != EXIT_DATA_CORRUPT:
        raise MachineFaultError(f"{target} with a corrupt table exited with {code}, not 5")
    resync = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "node.cli", "node", "resync", "--home", str(cluster.home(target))],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    detail["resync_exit_code"] = resync.returncode
    if resync.returncode != 0:
        raise MachineFaultError(f"veche node resync failed: {resync.stderr.strip()}")
    await cluster.start(target)
    return detail


def _move_onto_tmpfs(cluster: Cluster, target: str) -> Path:
    """Mount a tmpfs for ``target``'s data and signing state (size: what they hold + 64 MiB)."""
    disk = cluster.directory.parent / "disks" / target
    disk.mkdir(parents=True, exist_ok=True)
    data_dir = cluster.data_dir(target)
    used = sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file()) if data_dir.exists() else 0
    size_mb = (used + TMPFS_HEADROOM_BYTES) // (1 << 20) + 1
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        raise MachineFaultError(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    cluster.mounts.append(disk)
    config = cluster.config_of(target)
    if data_dir.exists():
        shutil.move(str(data_dir), disk / "data")
    config["data_dir"] = str(disk / "data")
    if target in cluster.validators:
        signing = cluster.signing_state_file(target)
        shutil.move(str(signing), disk / "signing-state.bin")
        config["signing_state_file"] = str(disk / "signing-state.bin")
    config["limits"] = {**config.get("limits", {}), "disk_min_free_mb": FILL_WATERMARK_MB}
    cluster.write_config(target, config)
    return disk


def _fill(path: Path, leave_bytes: int) -> None:
    stats = os.statvfs(path.parent)
    want = max(0, stats.f_bavail * stats.f_frsize - leave_bytes)
    chunk = b"\0" * (1 << 20)
    try:
        with open(path, "ab", buffering=0) as handle:
            while want > 0:
                want -= handle.write(chunk[:min(len(chunk), want)]) or 0
    except OSError:
        pass


async def _intake(session: aiohttp.ClientSession, url: str) -> str:
    """What a POST of an empty batch gets: ``disk_low`` while space is low, another answer otherwise."""
    try:
        async with session.post(url + "/api/v1/txs", data=b"\x90", headers={"Content-Type": "application/octet-stream"},
                                timeout=aiohttp.ClientTimeout(total=5)) as response:
            if response.status == 503:
                body = await response.json()
                return str(body["error"]["code"])
            return str(response.status)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError, KeyError):
        return "unreachable"


async def fill_disk(cluster: Cluster, watcher: CommitWatcher, target: str, hold_s: float) -> dict[str, Any]:
    await cluster.stop(target)
    disk = _move_onto_tmpfs(cluster, target)
    await cluster.start(target)
    filler = disk / "filler.bin"
    await asyncio.to_thread(_fill, filler, FILL_LEAVE_BYTES)
    detail: dict[str, Any] = {"tmpfs": str(disk), "watermark_mb": FILL_WATERMARK_MB}
    async with aiohttp.ClientSession() as session:
        url = cluster.url(target)
        deadline = time.monotonic() + 15
        answer = await _intake(session, url)
        while answer != "disk_low" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            answer = await _intake(session, url)
        detail["intake_while_low"] = answer
        if answer != "disk_low":
            raise MachineFaultError(f"{target} below its watermark answered {answer}, not 503 disk_low")
        before = watcher.node_height(target) or 0
        await asyncio.sleep(hold_s)
        await watcher.refresh()
        detail["blocks_committed_while_low"] = (watcher.node_height(target) or 0) - before
        if hold_s >= 6 and detail["blocks_committed_while_low"] < 1:
            raise MachineFaultError(f"{target} committed nothing in {hold_s:.0f} s below its watermark")
        filler.unlink()
        deadline = time.monotonic() + 15
        answer = await _intake(session, url)
        while answer in ("disk_low", "unreachable") and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            answer = await _intake(session, url)
        detail["intake_after_freeing"] = answer
        if answer in ("disk_low", "unreachable"):
            raise MachineFaultError(f"{target} still refuses intake after space was freed ({answer})")
    if not cluster.procs[target].running:
        raise MachineFaultError(f"{target} stopped below its watermark")
    return detail
