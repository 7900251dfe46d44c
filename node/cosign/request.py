"""Signing requests: a committee transaction signed k-of-n on separate machines (docs/OPERATOR.md).

``--prepare FILE`` writes the unsigned transaction as a JSON **signing request**; each committee
member runs ``veche sign FILE --key K`` on their own machine (the private key never travels), and
anyone runs ``veche submit FILE --node URL`` once k signatures are in. The operator console reuses
this format, so it is fixed here and documented in docs/OPERATOR.md "Signing requests"::

  {"format": "veche-signing-request/1",
   "chain_id": "...", "genesis_hash": "<hex>",
   "kind": "validators.update",
   "body": "<hex of enc(body)>",                 the exact bytes every signature covers (with the prefix)
   "signing_hash": "<hex of sha256(signing bytes)>",
   "summary": ["...", ...],                      what ``prepare`` showed; ``sign`` re-derives it from ``body``
   "committee": {"threshold": k, "members": [{"name", "public_key"}], "height": H},
   "signatures": [{"public_key": "<hex>", "signature": "<hex>"}],
   "prepared_at_ms": 1767000000000,
   "expires_at_ms": 1767259200000}             optional: after it, tools and nodes refuse the request

Signing bytes = ``b"veche/v1/" + kind + chain_id + body`` (docs/PROTOCOL.md §2.1). Nothing in the
file is trusted: ``sign`` and ``submit`` decode ``body`` strictly, recompute the signing hash and the
summary from it, and check every signature. ``committee`` is informational (the committee in force
when the request was prepared); ``submit`` checks against the committee in force now.

``expires_at_ms`` (optional; the operator console always sets one) is when the members' tools stop
treating the request as open: ``veche sign``/``submit``, the console and the nodes' pending-request
store (node/cosign/store.py) refuse it afterwards. It is not part of the signed bytes: the chain
itself never sees it, and k signatures already collected stay a valid transaction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain import codec
from chain.crypto import DOMAIN, SigningKey, sha256, verify
from chain.errors import DecodeError, SignatureError, VecheError
from chain.governance import SET_CHANGE_DELAY
from chain.tx import (
    BODY_TYPES, CampaignClose, CampaignCreate, InitiativeReview, KeysRotate, ProtocolUpgrade, Tx, ValidatorsUpdate,
    Wire, body_to_json, decode_tx, encode_tx,
)
from node.ops.files import atomic_write

FORMAT = "veche-signing-request/1"
MAX_REQUEST_BYTES = 1024 * 1024


class SigningRequestError(VecheError):
    """A signing request file that is unreadable, inconsistent, or carries a bad signature."""

    code = "bad_signing_request"


class RequestExpired(SigningRequestError):
    """A signing request past its ``expires_at_ms``."""

    code = "expired"


@dataclass
class SigningRequest:
    chain_id: str
    genesis_hash: bytes
    kind: str
    body: Wire
    committee_threshold: int
    committee_members: list[tuple[str, bytes]]
    committee_height: int
    prepared_at_ms: int
    signatures: dict[bytes, bytes] = field(default_factory=dict)   # public key → signature
    expires_at_ms: int | None = None

    # --- derived -----------------------------------------------------------------------------------

    @property
    def body_bytes(self) -> bytes:
        return codec.encode(self.body.to_wire())

    @property
    def signing_bytes(self) -> bytes:
        return DOMAIN + self.kind.encode() + self.chain_id.encode() + self.body_bytes

    @property
    def signing_hash(self) -> bytes:
        return sha256(self.signing_bytes)

    def summary(self) -> list[str]:
        return describe(self.kind, self.body)

    def expired(self, now_ms: int) -> bool:
        return self.expires_at_ms is not None and now_ms >= self.expires_at_ms

    def check_open(self, now_ms: int) -> None:
        """Raise ``RequestExpired`` once the request's ``expires_at_ms`` has passed."""
        if self.expired(now_ms):
            raise RequestExpired(f"this signing request expired at {self.expires_at_ms} (unix ms); prepare a new one")

    def member_name(self, public_key: bytes) -> str:
        return next((name for name, key in self.committee_members if key == public_key), public_key.hex()[:16] + "…")

    # --- signatures ---------------------------------------------------------------------------------

    def add_signature(self, key: SigningKey) -> bytes:
        if key.public_key in self.signatures:
            raise SigningRequestError(f"this request already carries a signature by {key.public_key.hex()}")
        signature = key.sign(self.signing_bytes)
        self.signatures[key.public_key] = signature
        return signature

    def check_signatures(self) -> None:
        """Raise unless every attached signature verifies over this request's signing bytes."""
        for public_key, signature in self.signatures.items():
            try:
                verify(public_key, signature, self.signing_bytes)
            except SignatureError as exc:
                raise SigningRequestError(f"the signature by {public_key.hex()} does not verify over this request "
                                          "(the file was changed after it was signed)") from exc

    def transaction(self, signers: Sequence[bytes]) -> Tx:
        """The envelope with the signatures of exactly ``signers`` (the chain wants exactly k)."""
        return decode_tx(encode_tx(self.kind, self.chain_id, self.body,
                                   [(key, self.signatures[key]) for key in signers]))

    # --- the file -----------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "chain_id": self.chain_id, "genesis_hash": self.genesis_hash.hex(), "kind": self.kind,
            "body": self.body_bytes.hex(), "signing_hash": self.signing_hash.hex(), "summary": self.summary(),
            "body_json": body_to_json(self.body),
            "committee": {"threshold": self.committee_threshold, "height": self.committee_height,
                          "members": [{"name": name, "public_key": key.hex()} for name, key in self.committee_members]},
            "signatures": [{"public_key": key.hex(), "signature": signature.hex()}
                           for key, signature in sorted(self.signatures.items())],
            "prepared_at_ms": self.prepared_at_ms,
            **({} if self.expires_at_ms is None else {"expires_at_ms": self.expires_at_ms}),
        }

    @classmethod
    def from_json(cls, document: Any) -> "SigningRequest":
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise SigningRequestError(f"not a signing request (format must be {FORMAT!r})")
        try:
            kind = _text(document, "kind")
            if kind not in BODY_TYPES:
                raise SigningRequestError(f"unknown transaction kind {kind!r}")
            body_bytes = _hex(document, "body")
            body = BODY_TYPES[kind].from_wire(codec.decode(body_bytes), kind)
            committee = document.get("committee")
            if not isinstance(committee, dict) or not isinstance(committee.get("members"), list):
                raise SigningRequestError("committee must be {threshold, height, members}")
            members = [(_text(m, "name"), _key(m, "public_key")) for m in committee["members"]]
            request = cls(chain_id=_text(document, "chain_id"), genesis_hash=_hex(document, "genesis_hash"), kind=kind,
                          body=body, committee_threshold=_int(committee, "threshold"), committee_members=members,
                          committee_height=_int(committee, "height"), prepared_at_ms=_int(document, "prepared_at_ms"),
                          expires_at_ms=_int(document, "expires_at_ms") if "expires_at_ms" in document else None)
            signatures = document.get("signatures")
            if not isinstance(signatures, list) or len(signatures) > 16:
                raise SigningRequestError("signatures must be a list of at most 16")
            for item in signatures:
                public_key = _key(item, "public_key")
                if public_key in request.signatures:
                    raise SigningRequestError(f"two signatures by {public_key.hex()}")
                signature = _hex(item, "signature")
                if len(signature) != 64:
                    raise SigningRequestError("a signature is 64 bytes")
                request.signatures[public_key] = signature
        except DecodeError as exc:
            raise SigningRequestError(f"the request's transaction body does not decode: {exc.message}") from exc
        if codec.encode(body.to_wire()) != body_bytes:
            raise SigningRequestError("the request's body is not in canonical form")
        if _hex(document, "signing_hash") != request.signing_hash:
            raise SigningRequestError("signing_hash does not match the body (the file was changed)")
        return request


def read_request(path: str | os.PathLike[str]) -> SigningRequest:
    target = Path(path)
    try:
        if target.stat().st_size > MAX_REQUEST_BYTES:
            raise SigningRequestError(f"{target} is larger than {MAX_REQUEST_BYTES} bytes")
        document = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SigningRequestError(f"signing request {target} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SigningRequestError(f"signing request {target} cannot be read: {exc}") from None
    return SigningRequest.from_json(document)


def write_request(path: str | os.PathLike[str], request: SigningRequest) -> None:
    """Write atomically (a temporary file renamed over the target), so a crash never leaves half a request."""
    text = json.dumps(request.to_json(), indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, text.encode("utf-8"))


def _text(document: Any, key: str) -> str:
    value = document.get(key) if isinstance(document, dict) else None
    if not isinstance(value, str):
        raise SigningRequestError(f"{key} must be text")
    return value


def _int(document: Any, key: str) -> int:
    value = document.get(key) if isinstance(document, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SigningRequestError(f"{key} must be a non-negative integer")
    return value


def _hex(document: Any, key: str) -> bytes:
    value = _text(document, key)
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise SigningRequestError(f"{key} is not hex") from exc


def _key(document: Any, key: str) -> bytes:
    value = _hex(document, key)
    if len(value) != 32:
        raise SigningRequestError(f"{key} must be a 32-byte public key")
    return value


# --- human-readable summaries -------------------------------------------------------------------------


def _short(key: bytes) -> str:
    return key.hex() if key else "(none)"


def describe(kind: str, body: Wire) -> list[str]:
    """What a committee member is about to sign, in words (derived from the bytes, never from the file)."""
    after = f"in force from {SET_CHANGE_DELAY} blocks after the block that commits it"
    if isinstance(body, ValidatorsUpdate):
        lines = [f"CHANGE THE VALIDATOR SET ({after})", f"reason: {body.reason}"]
        lines += [f"add validator {v.name}: operator {v.operator}, key {v.public_key.hex()}, {v.url}" for v in body.add]
        lines += [f"remove validator {name}" for name in body.remove]
        return lines
    if isinstance(body, KeysRotate):
        role = {"committee": "committee member", "district": "operator key of district", "gateway": "gateway"}[body.role]
        if body.old_public_key and body.new_public_key:
            action = f"ROTATE the key of {role} {body.subject}: old {_short(body.old_public_key)} is revoked, new " \
                     f"{_short(body.new_public_key)}"
        elif body.new_public_key:
            action = f"ADD {role} {body.subject} with key {_short(body.new_public_key)}"
        elif body.old_public_key:
            action = f"REMOVE {role} {body.subject} (key {_short(body.old_public_key)} is revoked)"
        else:
            action = "CHANGE ONLY THE COMMITTEE THRESHOLD"
        lines = [f"{action} ({after})", f"reason: {body.reason}"]
        if body.role == "committee":
            lines.append(f"committee threshold after the change: {body.threshold}")
        return lines
    if isinstance(body, ProtocolUpgrade):
        return [f"SCHEDULE PROTOCOL VERSION {body.version} from block height {body.height}: nodes without support "
                "stop before that height", f"reason: {body.reason}"]
    if isinstance(body, CampaignCreate):
        return [f"CREATE CAMPAIGN {body.campaign_id}: {body.title}",
                f"districts: {', '.join(d.district_id for d in body.districts)}; rule {body.rule.name} "
                f"({body.rule.scope}); voting {body.voting_start}..{body.voting_end} (unix ms); gateway "
                f"{body.gateway.hex()}, cap {body.registration_cap}"]
    if isinstance(body, CampaignClose):
        return [f"CLOSE CAMPAIGN {body.campaign_id} now", f"reason: {body.reason}"]
    if isinstance(body, InitiativeReview):
        verdict = "APPROVE" if body.approve else "REJECT"
        return [f"{verdict} initiative {body.initiative_id} of campaign {body.campaign_id}"] + (
            [f"reason: {body.reason}"] if body.reason else [])
    return [f"{kind}: {json.dumps(body_to_json(body), ensure_ascii=False)}"]
