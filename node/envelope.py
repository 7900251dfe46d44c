"""The validator-authenticated p2p envelope (pure: no I/O).

Every ``POST /p2p/v1/envelope`` body is one canonical msgpack array::

  envelope = [chain_id, sender_key, sequence, payload, signature]
  payload  = [[consensus_message_bytes, ...], [tx_bytes, ...]]

``sender_key`` is the sender's 32-byte validator public key (not an index: validator sets change,
and two validators at different heights may number each other differently); the receiver accepts
it when that key validates at a height near its own (``Inbound``). ``signature`` is by that key over
``b"veche/v1/p2p" + chain_id + encode([sender_key, sequence, payload])``, a domain no other
signed object uses. ``sequence`` grows with every envelope a sender process sends (it starts at
the wall clock in nanoseconds, so a restarted sender keeps growing); receivers ignore an exact
replay of a recent (sender, sequence) and process anything else — consensus messages are
idempotent and transactions are de-duplicated by hash, so a replay outside that window is
harmless work, not harm.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.crypto import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, verify
from chain.errors import DecodeError, SignatureError
from node.errors import PeerRejected, PeerUnauthorized

P2P_DOMAIN = b"veche/v1/p2p"
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
MAX_ITEMS = 50_000


@dataclass(frozen=True, slots=True)
class Envelope:
    chain_id: str
    sender_key: bytes
    sequence: int
    messages: tuple[bytes, ...]
    txs: tuple[bytes, ...]


def envelope_signing_bytes(chain_id: str, sender_key: bytes, sequence: int, payload: Any) -> bytes:
    return P2P_DOMAIN + chain_id.encode() + codec.encode([sender_key, sequence, payload])


def seal(chain_id: str, sender_key: bytes, sequence: int, messages: Sequence[bytes], txs: Sequence[bytes],
         sign: Callable[[bytes], bytes]) -> bytes:
    payload = [list(messages), list(txs)]
    signature = sign(envelope_signing_bytes(chain_id, sender_key, sequence, payload))
    return codec.encode([chain_id, sender_key, sequence, payload, signature])


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _byte_list(value: Any, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > MAX_ITEMS or not all(isinstance(item, bytes) for item in value):
        raise PeerRejected(f"envelope {what} must be a list of byte strings", "malformed")
    return tuple(value)


def _is_key(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == PUBLIC_KEY_BYTES


def peek_sender(body: bytes) -> bytes | None:
    """The claimed sender key of a body, for attributing a rejection; None when unreadable."""
    try:
        value = codec.decode(body, max_bytes=MAX_ENVELOPE_BYTES)
    except DecodeError:
        return None
    if isinstance(value, list) and len(value) == 5 and _is_key(value[1]):
        return bytes(value[1])
    return None


def open_envelope(body: bytes, chain_id: str, is_validator: Callable[[bytes], bool]) -> Envelope:
    """Decode and authenticate an envelope from a key ``is_validator`` accepts."""
    if len(body) > MAX_ENVELOPE_BYTES:
        raise PeerRejected(f"envelope exceeds {MAX_ENVELOPE_BYTES} bytes", "too_large")
    try:
        value = codec.decode(body, max_bytes=MAX_ENVELOPE_BYTES)  # strict: canonical bytes only
    except DecodeError as exc:
        raise PeerRejected(f"envelope is not canonical msgpack: {exc.message}", "malformed") from exc
    if not isinstance(value, list) or len(value) != 5:
        raise PeerRejected("envelope must be [chain_id, sender_key, sequence, payload, signature]", "malformed")
    envelope_chain, sender_key, sequence, payload, signature = value
    if not isinstance(envelope_chain, str) or envelope_chain != chain_id:
        shown = envelope_chain[:64] if isinstance(envelope_chain, str) else type(envelope_chain).__name__
        raise PeerRejected(f"envelope is for chain {shown!r}, this node is on {chain_id!r}", "wrong_chain")
    if not _is_key(sender_key) or not _is_uint(sequence):
        raise PeerRejected("envelope sender_key must be 32 bytes and sequence a non-negative integer", "malformed")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise PeerRejected("envelope signature must be 64 bytes", "malformed")
    if not isinstance(payload, list) or len(payload) != 2:
        raise PeerRejected("envelope payload must be [messages, txs]", "malformed")
    messages = _byte_list(payload[0], "messages")
    txs = _byte_list(payload[1], "txs")
    if not is_validator(sender_key):
        raise PeerUnauthorized(f"sender {sender_key.hex()[:16]}… is not a validator of this chain at this node's "
                               "heights", "unknown_sender")
    try:
        verify(sender_key, signature, envelope_signing_bytes(chain_id, sender_key, sequence, payload),
               cache_key=True)
    except SignatureError as exc:
        raise PeerUnauthorized(f"envelope signature of validator {sender_key.hex()[:16]}… does not verify",
                               "bad_signature") from exc
    return Envelope(chain_id, bytes(sender_key), sequence, messages, txs)


class ReplayFilter:
    """Remembers recent (sender, sequence) pairs; ``seen`` is True for an exact recent replay."""

    def __init__(self, capacity: int = 8192) -> None:
        self.capacity = capacity
        self._recent: OrderedDict[tuple[bytes, int], None] = OrderedDict()

    def seen(self, sender_key: bytes, sequence: int) -> bool:
        key = (sender_key, sequence)
        if key in self._recent:
            return True
        self._recent[key] = None
        if len(self._recent) > self.capacity:
            self._recent.popitem(last=False)
        return False
