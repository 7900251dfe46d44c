"""The document routes of one real node (in-process, LevelDB on disk): uploads, naming by a committed
transaction, serving, and every refusal with its status and code."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chain.crypto import SigningKey, read_key_file, sha256
from chain.documents import make_manifest
from chain.tx import sign_tx
from node.node import Node
from tests.docfiles import pdf_bytes, png_bytes
from tests.node.apphost import Client, make_testnet, serve_node, until
from tests.node.docnet import document_set, error_code, initiative_naming, open_campaign, upload_headers
from tests.node.votes import encode_batch


async def submit(node: Node, client: Client, raw: bytes) -> None:
    answer = await (await client.post("/api/v1/txs", data=encode_batch([raw]),
                                      headers={"Content-Type": "application/octet-stream"})).json()
    assert answer["rejected"] == [], answer
    await until(lambda: node.ledger.tx_location(sha256(raw)) is not None, what="commit")


def test_uploads_are_served_only_once_a_committed_transaction_names_them(tmp_path: Path) -> None:
    layout = make_testnet(tmp_path / "net", config={"limits": {"document_max_bytes": 100_000}})
    committee = read_key_file(layout.committee_key_files[0])
    operator = read_key_file(layout.district_key_files["volgograd"])
    stranger = SigningKey.generate()

    async def main() -> None:
        async with serve_node(layout.nodes[0].home) as (node, client):
            chain_id = node.chain_id
            gateway = node.params.gateways[0][1]
            files, manifest = document_set("a")

            async def put(data: bytes, key: SigningKey = operator, **override: str) -> tuple[int, dict[str, object]]:
                headers = {**upload_headers(chain_id, key, data), **override}
                response = await client.post("/api/v1/documents", data=data, headers=headers)
                return response.status, await response.json()

            async def get(digest: str) -> tuple[int, bytes]:
                response = await client.get(f"/api/v1/documents/{digest}")
                return response.status, await response.read()

            for data in [*files, manifest]:
                status, answer = await put(data)
                assert status == 201 and answer["status"] == "provisional", answer
                assert answer["expires_at_ms"] is not None and answer["sha256"] == sha256(data).hex()
            assert (await put(files[0]))[0] == 200   # the same upload again: nothing new
            for data in [*files, manifest]:
                status, body = await get(sha256(data).hex())
                assert status == 404 and b"unknown_document" in body

            await submit(node, client, sign_tx("campaign.create", chain_id, open_campaign("docs-1", gateway),
                                               [committee]).raw)
            await submit(node, client, initiative_naming(chain_id, operator, "docs-1", "park", "volgograd",
                                                         sha256(manifest)).raw)
            for data in [manifest, *files]:
                await until(lambda: sha256(data) in node.documents.named, what="named")
                status, body = await get(sha256(data).hex())
                assert status == 200 and body == data, body[:300]
            response = await client.get(f"/api/v1/documents/{sha256(files[0]).hex()}")
            assert response.content_type == "application/pdf"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "sandbox" in response.headers["Content-Security-Policy"]
            await until(lambda: not any(h.provisional for h in node.documents.store.held.values()), what="promotion")
            assert sorted(p.name for p in (layout.nodes[0].home / "documents" / "committed").iterdir()) == sorted(
                sha256(d).hex() for d in [*files, manifest])

            # a document a committed transaction names is stored as committed at once
            extra = pdf_bytes(1500, "late")
            _, late_manifest = make_manifest([(extra, "act.pdf", "document")])
            await submit(node, client, initiative_naming(chain_id, committee, "docs-1", "late", "volzhsky",
                                                         sha256(late_manifest)).raw)
            status, answer = await put(late_manifest, committee)
            assert status == 201 and answer["status"] == "committed" and answer["expires_at_ms"] is None
            await until(lambda: sha256(extra) in node.documents.named, what="manifest entries named")
            status, answer = await put(extra)
            assert status == 201 and answer["status"] == "committed"
            wrong = pdf_bytes(1501, "late")   # the manifest says 1500 bytes of application/pdf
            node.documents.name(sha256(wrong), node.documents.named[sha256(extra)])
            status, answer = await put(wrong)
            assert status == 400 and error_code(answer) == "manifest_mismatch"

            summary = await (await client.get("/api/v1/documents")).json()
            assert summary["documents"] == 6 and summary["missing"] == 1 and summary["provisional"] == 0
            assert summary["limits"]["max_document_bytes"] == 100_000

            # refusals: each with its status and code, and nothing stored
            held_before = dict(node.documents.store.held)
            photo = png_bytes(3, 3, salt=9)
            checks = [
                (await client.post("/api/v1/documents", data=photo, headers={"Content-Type": "image/png"}),
                 401, "unauthenticated"),
                (await client.post("/api/v1/documents", data=photo, headers={
                    **upload_headers(chain_id, operator, photo), "X-Veche-Document": sha256(photo).hex().upper()}),
                 400, "bad_hash"),
                (await client.post("/api/v1/documents", data=photo, headers={
                    **upload_headers(chain_id, operator, photo), "X-Veche-Signature": "00" * 64}),
                 403, "bad_signature"),
                (await client.post("/api/v1/documents", data=photo, headers=upload_headers("other-chain", operator,
                                                                                           photo)),
                 403, "bad_signature"),
                (await client.post("/api/v1/documents", data=photo, headers=upload_headers(chain_id, stranger, photo)),
                 403, "permission_denied"),
                (await client.post("/api/v1/documents", data=b"GIF89a-not-allowed", headers=upload_headers(
                    chain_id, operator, b"GIF89a-not-allowed", "image/gif")), 415, "unsupported_type"),
                (await client.post("/api/v1/documents", data=photo, headers=upload_headers(chain_id, operator, photo,
                                                                                           "image/jpeg")),
                 415, "unsupported_type"),
                (await client.post("/api/v1/documents", data=photo + b"!", headers=upload_headers(chain_id, operator,
                                                                                                  photo)),
                 400, "hash_mismatch"),
                (await client.post("/api/v1/documents", data=pdf_bytes(100_001), headers=upload_headers(
                    chain_id, operator, pdf_bytes(100_001))), 413, "too_large"),
                (await client.post("/api/v1/documents", data=b"\x92\xb1veche-documents/1\x90", headers=upload_headers(
                    chain_id, operator, b"\x92\xb1veche-documents/1\x90")), 400, "bad_manifest"),
                (await client.get("/api/v1/documents/" + sha256(files[0]).hex().upper()), 400, "bad_hash"),
                (await client.get("/api/v1/documents/" + "ab" * 31), 400, "bad_hash"),
                (await client.get("/api/v1/documents/" + sha256(b"never").hex()), 404, "unknown_document"),
            ]
            for response, status, code in checks:
                assert response.status == status, (status, code, await response.text())
                assert error_code(await response.json()) == code
            assert node.documents.store.held == held_before
            missing = [d for d in node.documents.named if d not in node.documents.store.held]
            assert missing == [sha256(wrong)]
            status, body = await get(sha256(wrong).hex())
            assert status == 404 and b"not_replicated" in body

    asyncio.run(main())
