"""Cheap copies of the big chain for measurements that write (a network on top, a close, a restart).

LevelDB never changes a table file (``*.ldb``) once written — compaction writes new ones and deletes
old ones — so a copy of a **closed** database can share its tables by hard links and copy only the
small files that do change (the write-ahead log, MANIFEST, CURRENT). Each copy then evolves on its
own: what one node compacts away it unlinks from its own directory only. A 4 GB chain copies in a
second and costs only what each copy writes afterwards.

``BigNet`` is a ``tests.node.netkit.LocalNet`` over such copies: the big chain's testnet layout
(genesis, keys) in a run directory of its own, on fresh loopback ports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from genesis.testnet import load_testnet
from tests.node.netkit import LocalNet, free_base_port

TABLE_SUFFIXES = (".ldb", ".sst")


def snapshot_data(source: Path, target: Path) -> None:
    """Copy the (closed) LevelDB at ``source`` to ``target``: tables hard-linked, the rest copied."""
    target.mkdir(parents=True, exist_ok=False)
    for entry in os.scandir(source):
        if not entry.is_file() or entry.name == "LOCK":
            continue
        destination = target / entry.name
        if entry.name.endswith(TABLE_SUFFIXES):
            os.link(entry.path, destination)
        else:
            shutil.copy2(entry.path, destination)


def _rewrite_config(path: Path, ports: dict[str, int], host: str = "127.0.0.1") -> None:
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    name = config["name"]
    config["listen_port"] = ports[name]
    url_key = "api_url" if "api_url" in config else "url"
    config[url_key] = f"http://{host}:{ports[name]}"
    if "peers" in config:
        config["peers"] = [{**peer, "url": f"http://{host}:{ports[peer['name']]}"} for peer in config["peers"]]
    if "nodes" in config:
        config["nodes"] = [f"http://{host}:{ports[n]}" for n in sorted(ports) if n.startswith("validator-")]
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def copy_layout(chain_dir: Path, run_dir: Path, *, data_for: tuple[str, ...], new_ports: bool = False) -> None:
    """The testnet of ``chain_dir/net`` in ``run_dir``; the homes in ``data_for`` get a snapshot of
    validator-0's chain, the others start empty.

    The genesis names each validator's URL (observers forward client transactions there), so a
    network keeps the layout's ports; ``new_ports`` moves every home to free ports (for a single
    node, or nodes that never forward). The ports must be free: ``PortsBusy`` otherwise.
    """
    net = chain_dir / "net"
    shutil.copytree(net, run_dir, ignore=shutil.ignore_patterns("data", "process.log", "*.log"))
    names = sorted(p.name for p in run_dir.iterdir() if (p / "config.json").is_file())
    if new_ports:
        base = free_base_port(len(names))
        ordered = [n for n in names if n.startswith("validator-")] + \
            [n for n in names if n.startswith("observer-")] + \
            [n for n in names if not n.startswith(("validator-", "observer-"))]
        ports = {name: base + i for i, name in enumerate(ordered)}
        for name in names:
            _rewrite_config(run_dir / name / "config.json", ports)
    else:
        busy = [name for name in names if _port_busy(json.loads((run_dir / name / "config.json").read_text())
                                                             ["listen_port"])]
        if busy:
            raise PortsBusy(f"the ports of {', '.join(busy)} (config.json in {net}) are taken by another process")
    for name in data_for:
        snapshot_data(net / "validator-0" / "data", run_dir / name / "data")


class PortsBusy(RuntimeError):
    pass


def _port_busy(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class BigNet(LocalNet):
    """A LocalNet over an existing layout (see ``copy_layout``) instead of a new testnet."""

    def __init__(self, directory: Path) -> None:  # noqa: D107 - LocalNet's fields, read from disk
        self.layout = load_testnet(directory)
        self.directory = self.layout.directory
        self.homes = {node.name: node.home for node in self.layout.nodes}
        self.urls = {node.name: node.api_url for node in self.layout.nodes}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile of a process, in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
