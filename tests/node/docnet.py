"""Helpers for document tests: a campaign open for submissions now, signed uploads, initiatives naming manifests."""

from __future__ import annotations

import time
from typing import Any

from chain.crypto import SigningKey, sha256
from chain.documents import make_manifest, sniff_type, upload_signing_bytes
from chain.tx import BallotSpec, CampaignCreate, District, InitiativeSubmit, RuleSpec, Tx, sign_tx
from tests.docfiles import TINY_JPEG, pdf_bytes, png_bytes

HOUR_MS = 3600 * 1000


def open_campaign(campaign_id: str, gateway: bytes, districts: tuple[str, ...] = ("volgograd", "volzhsky"),
                  *, now_ms: int | None = None, voting_in_ms: int = 2 * HOUR_MS, max_cost: int = 10**10) -> CampaignCreate:
    """A campaign whose submission window is open now and whose vote opens ``voting_in_ms`` later."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return CampaignCreate(
        campaign_id, f"Campaign {campaign_id}", "adult",
        tuple(District(d, d.title(), 10**9) for d in districts), BallotSpec("choose-1", 1, 1),
        RuleSpec("top-n", "district", 0, 0, 0), 100, max_cost, (), now - HOUR_MS, now + voting_in_ms,
        now + voting_in_ms, now + voting_in_ms + HOUR_MS, gateway, 1000, "district")


def upload_headers(chain_id: str, key: SigningKey, data: bytes, content_type: str | None = None) -> dict[str, str]:
    digest = sha256(data)
    return {"X-Veche-Document": digest.hex(), "X-Veche-Key": key.public_key.hex(),
            "X-Veche-Signature": key.sign(upload_signing_bytes(chain_id, digest)).hex(),
            "Content-Type": content_type or sniff_type(data) or "application/octet-stream"}


def document_set(salt: str) -> tuple[list[bytes], bytes]:
    """An estimate PDF and two photos, and their manifest: (the three files, the manifest's bytes)."""
    files = [pdf_bytes(4000, f"estimate {salt}"), png_bytes(6, 4, salt=len(salt) + sum(map(ord, salt))),
             TINY_JPEG + salt.encode()]
    _, manifest = make_manifest([(files[0], f"smeta-{salt}.pdf", "estimate"), (files[1], "photo-1.png", "photo"),
                                 (files[2], "photo-2.jpg", "photo")])
    return files, manifest


def initiative_naming(chain_id: str, key: SigningKey, campaign_id: str, initiative_id: str, district_id: str,
                      document_hash: bytes) -> Tx:
    body = InitiativeSubmit(campaign_id, initiative_id, district_id, f"Initiative {initiative_id}", "landscaping",
                            50_000, "", document_hash)
    return sign_tx("initiative.submit", chain_id, body, [key])


def error_code(answer: Any) -> str:
    return str(answer["error"]["code"])
