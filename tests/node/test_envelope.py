"""The p2p envelope: valid/invalid pairs for authentication and decoding, and the replay filter."""

from __future__ import annotations

import hashlib

import msgpack
import pytest

from chain import codec
from chain.block import Validator, ValidatorSet
from chain.crypto import SigningKey, verify
from node.envelope import (
    HEADER_BYTES, MAX_ENVELOPE_BYTES, MAX_PAYLOAD_BYTES, EnvelopeHeader, ReplayFilter, envelope_signing_bytes,
    open_envelope, open_header, open_payload, peek_sender, seal,
)
from node.errors import PayloadTooLarge, PeerRejected, PeerUnauthorized

KEYS = [SigningKey.generate() for _ in range(4)]
VALIDATORS = ValidatorSet(tuple(Validator(f"validator-{i}", k.public_key) for i, k in enumerate(KEYS)))
CHAIN = "veche-test"
OUTSIDER = SigningKey.generate()


def is_validator(public_key: bytes) -> bool:
    return VALIDATORS.index_of(public_key) is not None


def sealed(sender: int = 1, sequence: int = 7, messages: list[bytes] | None = None, txs: list[bytes] | None = None,
           key: SigningKey | None = None, chain_id: str = CHAIN) -> bytes:
    return seal(chain_id, KEYS[sender].public_key, sequence, messages or [b"m1"], txs or [b"t1", b"t2"],
                (key or KEYS[sender]).sign)


def test_valid_envelope_opens() -> None:
    envelope = open_envelope(sealed(), CHAIN, is_validator)
    assert (envelope.sender_key, envelope.sequence) == (KEYS[1].public_key, 7)
    assert envelope.messages == (b"m1",) and envelope.txs == (b"t1", b"t2")
    assert peek_sender(sealed(sender=2)) == KEYS[2].public_key
    assert peek_sender(sealed(sender=2)[:HEADER_BYTES]) == KEYS[2].public_key and peek_sender(b"garbage") is None


def test_the_header_is_exactly_the_documented_bytes() -> None:
    """docs/PROTOCOL.md §7.2: magic, chain tag, sender, sequence, length, payload hash, signature, payload."""
    body = sealed(sender=1, sequence=7, messages=[b"m1"], txs=[b"t1"])
    payload = codec.encode([[b"m1"], [b"t1"]])
    assert body[:4] == b"VCH1"
    assert body[4:12] == hashlib.sha256(CHAIN.encode()).digest()[:8]
    assert body[12:44] == KEYS[1].public_key and body[44:52] == (7).to_bytes(8, "big")
    assert body[52:56] == len(payload).to_bytes(4, "big") and body[56:88] == hashlib.sha256(payload).digest()
    assert body[HEADER_BYTES:] == payload and HEADER_BYTES == 152
    signing = envelope_signing_bytes(CHAIN, body[4:88])
    assert signing == b"veche/v1/p2p" + CHAIN.encode() + body[4:88]
    verify(KEYS[1].public_key, body[88:152], signing)   # the sender's signature over exactly those bytes


def with_header(body: bytes, offset: int, replacement: bytes) -> bytes:
    return body[:offset] + replacement + body[offset + len(replacement):]


@pytest.mark.parametrize("body, code", [
    (b"", "malformed"),
    (b"\xc1garbage", "malformed"),
    (sealed()[:HEADER_BYTES - 1], "malformed"),                          # truncated header
    (b"\xdd\x00\xff\xff\xff" + b"\x90" * 200, "malformed"),             # a msgpack bomb is not even a header
    (with_header(sealed(), 0, b"VCH2"), "malformed"),
    (sealed(chain_id="other-chain"), "wrong_chain"),
])
def test_malformed_envelopes_are_rejected(body: bytes, code: str) -> None:
    with pytest.raises(PeerRejected) as rejected:
        open_envelope(body, CHAIN, is_validator)
    assert rejected.value.code == code and rejected.value.status == 400


@pytest.mark.parametrize("body, code", [
    (sealed(sender=1, key=SigningKey.generate()), "bad_signature"),   # re-signed by a non-validator
    (sealed(sender=2, key=KEYS[1]), "bad_signature"),                 # validator 1 posing as 2
    (seal(CHAIN, OUTSIDER.public_key, 1, [], [], OUTSIDER.sign), "unknown_sender"),  # not a validator
    (with_header(sealed(), 12, KEYS[2].public_key), "bad_signature"),  # another validator named as sender
    (with_header(sealed(), 44, (8).to_bytes(8, "big")), "bad_signature"),    # sequence changed
    (sealed() + b"x", "bad_signature"),                                # payload longer than signed
    (sealed()[:-1], "bad_signature"),                                  # payload shorter than signed
])
def test_unauthenticated_envelopes_are_refused(body: bytes, code: str) -> None:
    with pytest.raises(PeerUnauthorized) as refused:
        open_envelope(body, CHAIN, is_validator)
    assert refused.value.code == code and refused.value.status == 401


def test_tampered_payload_fails_the_signature() -> None:
    body = sealed()
    tampered = body[:HEADER_BYTES] + codec.encode([[b"m1"], [b"t1", b"t3"]])
    with pytest.raises(PeerUnauthorized):
        open_envelope(tampered, CHAIN, is_validator)


def test_header_is_authenticated_before_the_payload_is_looked_at() -> None:
    head = sealed(key=SigningKey.generate())[:HEADER_BYTES]
    with pytest.raises(PeerUnauthorized):
        open_header(head, CHAIN, is_validator)
    claims_huge = with_header(sealed()[:HEADER_BYTES], 52, (MAX_PAYLOAD_BYTES + 1).to_bytes(4, "big"))
    with pytest.raises(PayloadTooLarge):
        open_header(claims_huge, CHAIN, is_validator)
    header = open_header(sealed()[:HEADER_BYTES], CHAIN, is_validator)
    assert (header.sender_key, header.sequence) == (KEYS[1].public_key, 7)


def test_oversized_envelope_is_refused_before_decoding() -> None:
    with pytest.raises(PayloadTooLarge) as refused:
        open_envelope(b"\x00" * (MAX_ENVELOPE_BYTES + 1), CHAIN, is_validator)
    assert refused.value.code == "too_large"


def test_signed_payloads_that_are_not_the_shape_are_rejected() -> None:
    for payload in (codec.encode([[b"m"]]), codec.encode([[1, 2], []]), b"\xc1", codec.encode([[[b"x"]], []]),
                    codec.encode([[b"m"], []]) + b"\x00"):
        header = EnvelopeHeader(KEYS[1].public_key, 7, len(payload), hashlib.sha256(payload).digest())
        with pytest.raises(PeerRejected) as rejected:
            open_payload(header, CHAIN, payload)
        assert rejected.value.code == "malformed" and rejected.value.status == 400


def test_replay_filter_flags_exact_recent_replays_only() -> None:
    replays = ReplayFilter(capacity=2)
    one, two = KEYS[1].public_key, KEYS[2].public_key
    assert not replays.seen(one, 10)
    assert replays.seen(one, 10)
    assert not replays.seen(two, 10)
    assert not replays.seen(one, 11)
    assert not replays.seen(one, 10)  # evicted from the window: processed again (harmless, idempotent)


def test_non_canonical_payload_is_refused() -> None:
    # [[b"m1"], []] behind a 3-byte array16 header: decodes to the same value, is not canonical
    payload = b"\xdc\x00\x02" + msgpack.packb([b"m1"], use_bin_type=True) + msgpack.packb([], use_bin_type=True)
    header = EnvelopeHeader(KEYS[1].public_key, 7, len(payload), hashlib.sha256(payload).digest())
    with pytest.raises(PeerRejected) as refused:
        open_payload(header, CHAIN, payload)
    assert refused.value.code == "malformed"
