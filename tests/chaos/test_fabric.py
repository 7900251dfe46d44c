"""The network-namespace fabric makes partitions real at the IP level (the proxy's are in test_proxy)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

from veche_chaos.fabric import Member, ProxyFabric, choose_fabric, netns_available
from veche_chaos.netns import NetnsFabric

PORT = 28999
SERVER = ("import socket,sys\n"
          "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(16)\n"
          "while True:\n"
          "    c,_=s.accept(); c.sendall(b'hi'); c.close()\n")
CLIENT = ("import socket,sys\n"
          "try:\n"
          "    s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.0); print(s.recv(2).decode())\n"
          "except OSError as e:\n"
          "    print('cut')\n")


def _reach_from(fabric: NetnsFabric, src: str, host: str) -> bool:
    argv = fabric.command(src, [sys.executable, "-c", CLIENT, host, str(PORT)])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
    return out == "hi"


def _reach_from_host(host: str) -> bool:
    try:
        with socket.create_connection((host, PORT), timeout=1.0) as sock:
            return sock.recv(2) == b"hi"
    except OSError:
        return False


async def _netns_scenario() -> None:
    fabric = NetnsFabric()
    names = ["validator-0", "validator-1", "validator-2"]
    fabric.add_members(Member(name, "validator", PORT) for name in names)
    servers: list[subprocess.Popen[bytes]] = []
    await fabric.setup()
    try:
        namespaces = set(fabric.namespaces.values())
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert all(ns in listed for ns in namespaces)
        for name in names:
            servers.append(subprocess.Popen(fabric.command(name, [sys.executable, "-c", SERVER, str(PORT)])))
        deadline = time.monotonic() + 10
        while not all(_reach_from_host(fabric.control_address(n)) for n in names):
            assert time.monotonic() < deadline, "servers in the namespaces did not come up"
            await asyncio.sleep(0.1)
        p2p = {n: fabric.p2p_address(n) for n in names}
        assert _reach_from(fabric, "validator-0", p2p["validator-1"])
        assert fabric.peer_url("validator-0", "validator-1") == f"http://{p2p['validator-1']}:{PORT}"

        await fabric.partition([{"validator-0"}, {"validator-1", "validator-2"}])
        assert not _reach_from(fabric, "validator-0", p2p["validator-1"])
        assert not _reach_from(fabric, "validator-2", p2p["validator-0"])
        assert _reach_from(fabric, "validator-1", p2p["validator-2"])
        # the runner still reaches every node over its control link
        assert all(_reach_from_host(fabric.control_address(n)) for n in names)

        await fabric.heal()
        deadline = time.monotonic() + 10
        while not _reach_from(fabric, "validator-0", p2p["validator-1"]):
            assert time.monotonic() < deadline, "the partition did not heal"
            await asyncio.sleep(0.2)
    finally:
        for server in servers:
            server.kill()
            server.wait()
        await fabric.teardown()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(ns in listed for ns in namespaces)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"vk{fabric.slot}" not in links


def test_netns_partition_is_real_or_the_proxy_is_chosen(tmp_path: Path) -> None:
    if netns_available():
        assert isinstance(choose_fabric("auto", tmp_path), NetnsFabric)
        asyncio.run(_netns_scenario())
    else:
        assert isinstance(choose_fabric("auto", tmp_path), ProxyFabric)


def test_proxy_fabric_routes_each_direction_through_its_own_link(tmp_path: Path) -> None:
    fabric = ProxyFabric(tmp_path)
    fabric.add_members([Member("validator-0", "validator", 26600), Member("validator-1", "validator", 26601),
                        Member("observer-0", "observer", 26602), Member("gateway", "gateway", 26603)])
    forward = fabric.peer_url("validator-0", "validator-1")
    backward = fabric.peer_url("validator-1", "validator-0")
    observer = fabric.peer_url("observer-0", "validator-1")
    assert len({forward, backward, observer, fabric.genesis_url("validator-1")}) == 4
    assert fabric.client_url("validator-1") == "http://127.0.0.1:26601"
    assert fabric.links["validator-0->validator-1"].target_port == 26601
    assert fabric.links["front->validator-0"].target_port == 26600
