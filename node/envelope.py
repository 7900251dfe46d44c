"""The validator-authenticated p2p envelope (pure: no I/O).

Every ``POST /p2p/v1/envelope`` body is a fixed 152-byte header followed by the payload
(docs/PROTOCOL.md §7.2 gives the exact bytes)::

  body    = "VCH1" ‖ chain_tag(8) ‖ sender_key(32) ‖ u64(sequence) ‖ u32(payload_length)
            ‖ sha256(payload)(32) ‖ signature(64) ‖ payload
  payload = enc([[consensus_message_bytes, ...], [tx_bytes, ...]])

``chain_tag`` is the first 8 bytes of sha256(chain_id); ``sender_key`` is the sender's validator
public key — not an index: validator sets change (docs/PROTOCOL.md §15), and two validators at
different heights may number each other differently; the receiver accepts it when that key
validates at a height near its own (``Inbound``). ``signature`` is by that key over
``b"veche/v1/p2p" ‖ chain_id ‖ header[4:88]`` (everything before the signature but the magic), a
domain no other signed object uses. The signed header commits to the payload by its length and
hash, so the receiver **authenticates before it reads the payload, and decodes nothing before
authenticating**: an envelope that is not from a validator costs one Ed25519 verification of 100
bytes, whatever size it claims. ``sequence`` grows with every envelope a sender
process sends (it starts at the wall clock in nanoseconds, so a restarted sender keeps growing);
receivers ignore an exact replay of a recent (sender, sequence) — checked before the payload is
read — and process anything else: consensus messages are idempotent and transactions are
de-duplicated by hash, so a replay outside that window is harmless work, not harm.
"""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chain import codec
from chain.crypto import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, verify
from chain.errors import DecodeError, SignatureError
from consensus.messages import MAX_MESSAGE_BYTES
from node.errors import PayloadTooLarge, PeerRejected, PeerUnauthorized

P2P_DOMAIN = b"veche/v1/p2p"
MAGIC = b"VCH1"
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
MAX_ITEMS = 50_000
_SIGNED = struct.Struct(f">8s{PUBLIC_KEY_BYTES}sQI32s")  # chain tag, sender key, sequence, payload length and hash
HEADER_BYTES = len(MAGIC) + _SIGNED.size + SIGNATURE_BYTES   # 4 + 84 + 64 = 152
MAX_ENVELOPE_BYTES = HEADER_BYTES + MAX_PAYLOAD_BYTES
PAYLOAD_LIMITS = codec.Limits(array=MAX_ITEMS, string=0, binary=MAX_MESSAGE_BYTES, depth=2, containers=3)


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """An authenticated header: the sender signed this (sender, sequence, payload length and hash)."""

    sender_key: bytes
    sequence: int
    payload_length: int
    payload_hash: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    chain_id: str
    sender_key: bytes
    sequence: int
    messages: tuple[bytes, ...]
    txs: tuple[bytes, ...]


def chain_tag(chain_id: str) -> bytes:
    return hashlib.sha256(chain_id.encode()).digest()[:8]


def envelope_signing_bytes(chain_id: str, signed_header: bytes) -> bytes:
    """What the sender signs: the domain, the chain id and the header's fields after the magic."""
    return P2P_DOMAIN + chain_id.encode() + signed_header


def seal(chain_id: str, sender_key: bytes, sequence: int, messages: Sequence[bytes], txs: Sequence[bytes],
         sign: Callable[[bytes], bytes]) -> bytes:
    payload = codec.encode([list(messages), list(txs)])
    signed = _SIGNED.pack(chain_tag(chain_id), sender_key, sequence, len(payload),
                          hashlib.sha256(payload).digest())
    return MAGIC + signed + sign(envelope_signing_bytes(chain_id, signed)) + payload


def peek_sender(head: bytes) -> bytes | None:
    """The claimed sender key of a body (or its header), for attributing a rejection; None when unreadable."""
    if len(head) < len(MAGIC) + _SIGNED.size or not head.startswith(MAGIC):
        return None
    return bytes(_SIGNED.unpack_from(head, len(MAGIC))[1])


def open_header(head: bytes, chain_id: str, is_validator: Callable[[bytes], bool]) -> EnvelopeHeader:
    """Authenticate the 152-byte header, from a key ``is_validator`` accepts, before anything else is
    read or decoded.

    Raises ``PeerRejected`` (400: ``malformed``, ``wrong_chain``), ``PayloadTooLarge`` (413) or
    ``PeerUnauthorized`` (401: ``unknown_sender``, ``bad_signature``)."""
    if len(head) != HEADER_BYTES or not head.startswith(MAGIC):
        raise PeerRejected(f"an envelope starts with {MAGIC!r} and a {HEADER_BYTES}-byte header", "malformed")
    signed = head[len(MAGIC):len(MAGIC) + _SIGNED.size]
    tag, sender_key, sequence, length, payload_hash = _SIGNED.unpack(signed)
    if tag != chain_tag(chain_id):
        raise PeerRejected(f"envelope is for another chain than {chain_id!r}", "wrong_chain")
    if length > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"an envelope payload is at most {MAX_PAYLOAD_BYTES} bytes")
    if sequence >= 2**63:
        raise PeerRejected("envelope sequence must be below 2**63", "malformed")
    if not is_validator(sender_key):
        raise PeerUnauthorized(f"sender {sender_key.hex()[:16]}… is not a validator of this chain at this node's "
                               "heights", "unknown_sender")
    try:
        verify(sender_key, head[len(MAGIC) + _SIGNED.size:], envelope_signing_bytes(chain_id, signed), cache_key=True)
    except SignatureError as exc:
        raise PeerUnauthorized(f"envelope signature of validator {sender_key.hex()[:16]}… does not verify",
                               "bad_signature") from exc
    return EnvelopeHeader(bytes(sender_key), sequence, length, payload_hash)


def open_payload(header: EnvelopeHeader, chain_id: str, payload: bytes) -> Envelope:
    """Check the payload against the authenticated header, then decode it (bounded)."""
    if len(payload) != header.payload_length or hashlib.sha256(payload).digest() != header.payload_hash:
        raise PeerUnauthorized("envelope payload does not match its signed length and hash", "bad_signature")
    try:
        value = codec.decode(payload, max_bytes=MAX_PAYLOAD_BYTES, limits=PAYLOAD_LIMITS)
    except DecodeError as exc:
        raise PeerRejected(f"envelope payload is not canonical msgpack: {exc.message}", "malformed") from exc
    if not isinstance(value, list) or len(value) != 2:
        raise PeerRejected("envelope payload must be [messages, txs]", "malformed")
    return Envelope(chain_id, header.sender_key, header.sequence, _byte_list(value[0], "messages"),
                    _byte_list(value[1], "txs"))


def open_envelope(body: bytes, chain_id: str, is_validator: Callable[[bytes], bool]) -> Envelope:
    """Authenticate and decode a whole body (header, then payload)."""
    if len(body) > MAX_ENVELOPE_BYTES:
        raise PayloadTooLarge(f"an envelope is at most {MAX_ENVELOPE_BYTES} bytes", "too_large")
    header = open_header(body[:HEADER_BYTES], chain_id, is_validator)
    return open_payload(header, chain_id, body[HEADER_BYTES:])


def _byte_list(value: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > MAX_ITEMS or not all(isinstance(item, bytes) for item in value):
        raise PeerRejected(f"envelope {what} must be a list of byte strings", "malformed")
    return tuple(value)


class ReplayFilter:
    """Remembers recent (sender, sequence) pairs of authenticated envelopes."""

    def __init__(self, capacity: int = 8192) -> None:
        self.capacity = capacity
        self._recent: OrderedDict[tuple[bytes, int], None] = OrderedDict()

    def contains(self, sender_key: bytes, sequence: int) -> bool:
        return (sender_key, sequence) in self._recent

    def add(self, sender_key: bytes, sequence: int) -> None:
        self._recent[(sender_key, sequence)] = None
        if len(self._recent) > self.capacity:
            self._recent.popitem(last=False)

    def seen(self, sender_key: bytes, sequence: int) -> bool:
        """True for an exact recent replay; otherwise remember the pair."""
        if self.contains(sender_key, sequence):
            return True
        self.add(sender_key, sequence)
        return False
