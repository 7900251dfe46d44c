"""The console's window on the chain: who this key is, campaigns, documents, and sending transactions.

Everything goes through the nodes' public API (``NodeClient``, fail-over between the ``--node``
URLs). The genesis is fetched and checked against the node's ``genesis_hash`` once at start; the
key's role comes from it (committee member, district operator of which districts, gateway).
Documents are uploaded to every node given (any one suffices: the others fetch them once a
transaction naming them commits) and every document read back is re-hashed here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from chain.crypto import SigningKey, sha256
from chain.documents import sniff_type, upload_signing_bytes
from chain.tx import Tx
from genesis.model import Genesis
from node.cli.committee import ChainView, fetch_chain_view
from node.client import ClientError, NodeApiError, NodeClient, TxOutcome, submit_and_wait

ROLE_COMMITTEE = "committee"
ROLE_DISTRICT = "district"
ROLE_GATEWAY = "gateway"
LIMITS_TTL_S = 60.0
VIEW_TTL_S = 30.0


class KeyRoleError(Exception):
    """The key holds no role on this chain."""


@dataclass(frozen=True, slots=True)
class Identity:
    public_key: bytes
    role: str
    name: str
    districts: tuple[str, ...] = ()

    @property
    def is_committee(self) -> bool:
        return self.role == ROLE_COMMITTEE

    @property
    def is_district(self) -> bool:
        return self.role == ROLE_DISTRICT


def identify(view: ChainView, public_key: bytes) -> Identity:
    """The role ``public_key`` holds in the roster in force (keys rotate: docs/OPERATOR.md)."""
    name = view.committee_name(public_key)
    if name is not None:
        return Identity(public_key, ROLE_COMMITTEE, name)
    districts = tuple(district for district, key in view.district_operators if key == public_key)
    if districts:
        return Identity(public_key, ROLE_DISTRICT, ", ".join(districts), districts)
    for gateway, key in view.gateways.items():
        if key == public_key:
            return Identity(public_key, ROLE_GATEWAY, gateway)
    raise KeyRoleError(f"key {public_key.hex()} is neither a committee key, a district operator key nor a gateway "
                       f"key in force on chain {view.chain_id!r}")


class ConsoleChain:
    def __init__(self, client: NodeClient, key: SigningKey, view: ChainView, identity: Identity) -> None:
        self.client = client
        self.key = key
        self.view = view
        self.identity = identity
        self._limits: tuple[float, dict[str, Any]] | None = None
        self._view_at = time.monotonic()

    @classmethod
    async def connect(cls, client: NodeClient, key: SigningKey) -> "ConsoleChain":
        view = await fetch_chain_view(client)
        return cls(client, key, view, identify(view, key.public_key))

    async def refresh(self, *, max_age_s: float = VIEW_TTL_S) -> ChainView:
        """The roster in force now (fetched again when older than ``max_age_s``); the role must still hold."""
        if time.monotonic() - self._view_at > max_age_s:
            view = await fetch_chain_view(self.client)
            self.identity = identify(view, self.key.public_key)
            self.view, self._view_at = view, time.monotonic()
        return self.view

    @property
    def genesis(self) -> Genesis:
        return self.view.genesis

    @property
    def chain_id(self) -> str:
        return self.view.chain_id

    @property
    def threshold(self) -> int:
        return self.view.threshold

    # --- reading -----------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        return await self.client.status()

    async def campaigns(self) -> list[dict[str, Any]]:
        answer = await self.client.campaigns()
        campaigns = answer.get("campaigns", []) if isinstance(answer, dict) else []
        return [c for c in campaigns if isinstance(c, dict)]

    async def campaign(self, campaign_id: str) -> dict[str, Any]:
        return await self.client.campaign(campaign_id)

    async def initiative(self, campaign_id: str, initiative_id: str) -> dict[str, Any]:
        return await self.client.initiative(campaign_id, initiative_id)

    async def tally(self, campaign_id: str) -> dict[str, Any]:
        return await self.client.tally(campaign_id)

    async def document_limits(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._limits is None or now - self._limits[0] > LIMITS_TTL_S:
            summary = await self.client.documents_summary()
            self._limits = (now, dict(summary.get("limits", {})))
        return self._limits[1]

    async def max_document_bytes(self) -> int:
        return int((await self.document_limits()).get("max_document_bytes", 10 * 1024 * 1024))

    async def document(self, digest_hex: str) -> bytes | None:
        """A document from any node that holds it, re-hashed; ``None`` if no node serves it (yet)."""
        for url in self.client.urls:
            try:
                data = await self.client.document(digest_hex, only=url)
            except ClientError:
                continue
            if sha256(data).hex() == digest_hex:
                return data
        return None

    # --- writing -----------------------------------------------------------------------------------

    def upload_headers(self, data: bytes) -> dict[str, str]:
        digest = sha256(data)
        return {"X-Veche-Document": digest.hex(), "X-Veche-Key": self.key.public_key.hex(),
                "X-Veche-Signature": self.key.sign(upload_signing_bytes(self.chain_id, digest)).hex(),
                "Content-Type": sniff_type(data) or "application/octet-stream"}

    async def upload(self, files: list[bytes]) -> None:
        """Upload every file to every node; each file must reach at least one node (else ``ClientError``)."""
        async def one(data: bytes) -> None:
            errors: list[str] = []
            answers = await asyncio.gather(*(self.client.upload_document(data, self.upload_headers(data), only=url)
                                             for url in self.client.urls), return_exceptions=True)
            for answer in answers:
                if isinstance(answer, NodeApiError):
                    errors.append(f"{answer.code}: {answer.message}")
                elif isinstance(answer, BaseException):
                    errors.append(str(answer))
            if len(errors) == len(answers):
                raise ClientError("no node took the document: " + "; ".join(errors), "upload_failed")
        for data in files:
            await one(data)

    async def submit(self, tx: Tx, *, timeout: float = 60.0) -> TxOutcome:
        return await submit_and_wait(self.client, tx.raw, tx.hash.hex(), timeout=timeout)
