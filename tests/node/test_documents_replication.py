"""Documents replicate to every node and survive kill -9 (4 validators and an observer, real processes).

A district operator's client uploads document sets (an estimate PDF, two photos, their manifest) to
validator-0 and submits the initiative naming each manifest, moving to the next node when a node
fails; validator-0 is killed with SIGKILL in the middle and restarted. Afterwards every node serves
every document a committed transaction names, byte for byte; an upload no committed transaction
names is refused by every node; provisional uploads stay within their bound.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.crypto import read_key_file, sha256
from chain.tx import sign_tx
from tests.docfiles import pdf_bytes
from tests.node.docnet import document_set, initiative_naming, open_campaign, upload_headers
from tests.node.livechain import commit
from tests.node.netkit import LocalNet, get_json, http_get, http_post, wait_for
from tests.node.votes import encode_batch

pytestmark = pytest.mark.slow
SETS = 8


@pytest.fixture()
def net(tmp_path: Path) -> Iterator[LocalNet]:
    local = LocalNet(tmp_path / "net", validators=4, observers=1)
    for home in local.homes.values():
        path = home / "config.json"
        config = json.loads(path.read_text())
        config["limits"] = {"documents_provisional_mb": 1}
        path.write_text(json.dumps(config))
    try:
        local.start_all()
        yield local
    finally:
        local.close()


def test_committed_documents_reach_every_node_across_a_kill_9(net: LocalNet) -> None:
    directory = net.directory
    committee = read_key_file(directory / "keys" / "committee-0.json")
    operator = read_key_file(directory / "keys" / "district-volgograd.json")
    chain_id = net.layout.chain_id
    gateway = read_key_file(directory / "gateway" / "gateway-key.json").public_key
    first = net.urls["validator-0"]
    commit(first, [sign_tx("campaign.create", chain_id, open_campaign("docs", gateway), [committee])])

    committed: dict[str, list[bytes]] = {}   # tx hash → every file of its set (manifest first)
    raw_txs: dict[str, bytes] = {}            # tx hash → its bytes, for the client's re-send
    failures: list[str] = []
    order = ["validator-0", "validator-1", "validator-2"]

    def upload_set(index: int) -> None:
        files, manifest = document_set(f"set-{index}")
        tx = initiative_naming(chain_id, operator, "docs", f"i{index}", "volgograd", sha256(manifest))
        for name in order:   # a client that moves to the next node when one fails
            url = net.urls[name]
            try:
                for data in [*files, manifest]:
                    status, body, _ = http_post(url + "/api/v1/documents", data, "", timeout=5,
                                                headers=upload_headers(chain_id, operator, data))
                    if status not in (200, 201):
                        raise OSError(f"{name}: HTTP {status} {body[:200]!r}")
                status, body, _ = http_post(url + "/api/v1/txs", encode_batch([tx.raw]), timeout=5)
                if status != 200 or json.loads(body)["rejected"]:
                    raise OSError(f"{name}: {body[:200]!r}")
                committed[tx.hash.hex()] = [manifest, *files]
                return
            except OSError as exc:
                failures.append(f"set {index} on {name}: {exc}")
        raise AssertionError(f"set {index} reached no node: {failures}")

    def uploader() -> None:
        for index in range(SETS):
            upload_set(index)
            time.sleep(0.15)

    thread = threading.Thread(target=uploader)
    thread.start()
    wait_for(lambda: len(committed) >= 3, 60, "three document sets sent")
    net.kill("validator-0")                      # SIGKILL while documents are being uploaded
    thread.join(120)
    assert not thread.is_alive() and len(committed) == SETS, failures
    # a set sent to validator-0 alone just before the kill, and an upload nobody names
    files, manifest = document_set("last")
    stray = pdf_bytes(3000, "nobody names this")
    net.start("validator-0")
    net.wait_up("validator-0")
    for data in [*files, manifest, stray]:
        assert http_post(first + "/api/v1/documents", data, "", headers=upload_headers(chain_id, operator, data))[0] == 201
    net.kill("validator-0")
    net.start("validator-0")
    net.wait_up("validator-0")
    last = initiative_naming(chain_id, operator, "docs", "last", "volgograd", sha256(manifest))
    commit(net.urls["validator-1"], [last])
    committed[last.hash.hex()] = [manifest, *files]

    # A 200 from POST /api/v1/txs admits a transaction to that node's mempool; a node killed -9 before
    # its next gossip loses what only it held, and the client re-sends what it has seen no commit for
    # (docs/NODE.md §3) — as the gateway does. Re-sent to a live validator: a duplicate is harmless.
    for raw in raw_txs.values():
        http_post(net.urls["validator-1"] + "/api/v1/txs", encode_batch([raw]), timeout=5)
    for tx_hash in committed:
        wait_for(lambda: all(net.tx_status(n, tx_hash) == "committed" for n in net.names), 60, f"{tx_hash} everywhere")
    wanted = [data for files_of_set in committed.values() for data in files_of_set]

    def served_everywhere() -> bool:
        return all(http_get(f"{net.urls[name]}/api/v1/documents/{sha256(data).hex()}")[1] == data
                   for name in net.names for data in wanted)
    wait_for(served_everywhere, 90, "every committed document on every node", interval=0.5)
    for name in net.names:   # byte for byte, and under the hash that names it
        for data in wanted:
            status, body = http_get(f"{net.urls[name]}/api/v1/documents/{sha256(data).hex()}")
            assert status == 200 and sha256(body) == sha256(data)
        status, body = http_get(f"{net.urls[name]}/api/v1/documents/{sha256(stray).hex()}")
        assert status == 404 and json.loads(body)["error"]["code"] == "unknown_document", name
        summary = get_json(net.urls[name] + "/api/v1/documents")
        assert summary["missing"] == 0 and summary["documents"] == len(wanted), (name, summary)

    # provisional uploads are bounded (limits.documents_provisional_mb = 1 here): the node refuses with 507
    url = net.urls["validator-2"]
    statuses = []
    for index in range(12):
        junk = pdf_bytes(150_000, f"junk {index}")
        statuses.append(http_post(url + "/api/v1/documents", junk, "", headers=upload_headers(chain_id, operator, junk))[0])
    assert statuses[:6] == [201] * 6 and statuses[-1] == 507, statuses
    provisional = net.homes["validator-2"] / "documents" / "provisional"
    assert sum(p.stat().st_size for p in provisional.iterdir()) <= 1024 * 1024
