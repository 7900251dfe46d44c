#!/usr/bin/env python3
"""Benchmark the document store: uploads to one node, then replication to every node once named.

Starts a real testnet (4 validators and an observer as processes, LevelDB on disk), uploads
``--sets`` document sets (an estimate PDF of ``--size`` bytes and two photos, and their manifest)
to validator-0 — signed uploads, as the operator console sends them — and times them; then submits
one initiative naming each manifest and times how long until **every** node serves every document
(they fetch what they lack from each other). Prints one JSON object.

    .venv/bin/python scripts/bench_documents.py [--sets 20] [--size 2000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chain.crypto import read_key_file, sha256  # noqa: E402
from chain.documents import make_manifest  # noqa: E402
from chain.tx import sign_tx  # noqa: E402
from tests.docfiles import TINY_JPEG, pdf_bytes, png_bytes  # noqa: E402
from tests.node.docnet import initiative_naming, open_campaign, upload_headers  # noqa: E402
from tests.node.livechain import commit  # noqa: E402
from tests.node.netkit import LocalNet, get_json, http_get, http_post, wait_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--size", type=int, default=2_000_000, help="bytes of each estimate PDF")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="veche-bench-docs-") as folder:
        net = LocalNet(Path(folder) / "net", validators=4, observers=1)
        try:
            net.start_all()
            print(json.dumps(run(net, args.sets, args.size)))
        finally:
            net.close()


def run(net: LocalNet, sets: int, size: int) -> dict[str, object]:
    keys = net.directory / "keys"
    committee, operator = read_key_file(keys / "committee-0.json"), read_key_file(keys / "district-volgograd.json")
    chain_id = net.layout.chain_id
    first = net.urls["validator-0"]
    gateway = read_key_file(net.directory / "gateway" / "gateway-key.json").public_key
    commit(first, [sign_tx("campaign.create", chain_id, open_campaign("bench-docs", gateway), [committee])])
    uploads: list[bytes] = []
    txs = []
    for index in range(sets):
        files = [pdf_bytes(size, f"bench {index}"), png_bytes(64, 48, salt=index), TINY_JPEG + index.to_bytes(4, "big")]
        _, manifest = make_manifest([(files[0], "smeta.pdf", "estimate"), (files[1], "1.png", "photo"),
                                     (files[2], "2.jpg", "photo")])
        uploads += [*files, manifest]
        txs.append(initiative_naming(chain_id, operator, "bench-docs", f"i{index}", "volgograd", sha256(manifest)))
    total = sum(len(data) for data in uploads)
    started = time.perf_counter()
    for data in uploads:
        status, body, _ = http_post(first + "/api/v1/documents", data, "", headers=upload_headers(chain_id, operator, data))
        if status != 201:
            raise RuntimeError(f"upload refused: {status} {body[:200]!r}")
    upload_s = time.perf_counter() - started
    started = time.perf_counter()
    commit(first, txs)
    committed_s = time.perf_counter() - started
    digests = [sha256(data).hex() for data in uploads]

    def everywhere() -> bool:
        return all(http_get(f"{url}/api/v1/documents/{digest}")[0] == 200
                   for url in net.urls.values() for digest in digests)
    wait_for(everywhere, 600, "every document on every node", interval=0.2)
    replicated_s = time.perf_counter() - started
    summary = get_json(net.urls["observer-0"] + "/api/v1/documents")
    return {"sets": sets, "documents": len(uploads), "bytes": total, "upload_s": round(upload_s, 2),
            "upload_mb_per_s": round(total / upload_s / 1e6, 1), "commit_s": round(committed_s, 2),
            "replicated_everywhere_s": round(replicated_s, 2),
            "replicated_mb_per_s_per_node": round(total / replicated_s / 1e6, 1),
            "observer_documents": summary["documents"]}


if __name__ == "__main__":
    main()
