"""The p2p envelope: valid/invalid pairs for authentication and decoding, and the replay filter."""

from __future__ import annotations

import msgpack
import pytest

from chain import codec
from chain.block import Validator, ValidatorSet
from chain.crypto import SigningKey
from node.envelope import (
    MAX_ENVELOPE_BYTES, ReplayFilter, envelope_signing_bytes, open_envelope, peek_sender, seal,
)
from node.errors import PeerRejected, PeerUnauthorized

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


def test_signature_covers_domain_chain_and_payload() -> None:
    sender = KEYS[1].public_key
    signing = envelope_signing_bytes(CHAIN, sender, 7, [[b"m1"], []])
    assert signing.startswith(b"veche/v1/p2p" + CHAIN.encode())
    assert envelope_signing_bytes("other", sender, 7, [[b"m1"], []]) != signing
    assert envelope_signing_bytes(CHAIN, sender, 8, [[b"m1"], []]) != signing
    assert envelope_signing_bytes(CHAIN, KEYS[2].public_key, 7, [[b"m1"], []]) != signing


@pytest.mark.parametrize("body, code", [
    (b"", "malformed"),
    (b"\xc1garbage", "malformed"),
    (sealed()[:-10], "malformed"),                       # truncated
    (codec.encode([CHAIN, 1, 7]), "malformed"),           # wrong shape
    (codec.encode([CHAIN, 1, 7, [[b"m"], []], b"short"]), "malformed"),
    (codec.encode([CHAIN, -1, 7, [[b"m"], []], b"s" * 64]), "malformed"),
    (codec.encode([CHAIN, 1, 7, [[b"m"], []], b"s" * 64]), "malformed"),           # an index, not a key
    (codec.encode([CHAIN, b"k" * 31, 7, [[b"m"], []], b"s" * 64]), "malformed"),
    (codec.encode([CHAIN, b"k" * 32, 7, [[1, 2], []], b"s" * 64]), "malformed"),
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
])
def test_unauthenticated_envelopes_are_refused(body: bytes, code: str) -> None:
    with pytest.raises(PeerUnauthorized) as refused:
        open_envelope(body, CHAIN, is_validator)
    assert refused.value.code == code and refused.value.status == 401


def test_tampered_payload_fails_the_signature() -> None:
    value = codec.decode(sealed())
    value[3][1] = [b"injected"]
    with pytest.raises(PeerUnauthorized):
        open_envelope(codec.encode(value), CHAIN, is_validator)


def test_oversized_envelope_is_refused_before_decoding() -> None:
    with pytest.raises(PeerRejected) as refused:
        open_envelope(b"\x00" * (MAX_ENVELOPE_BYTES + 1), CHAIN, is_validator)
    assert refused.value.code == "too_large"


def test_replay_filter_flags_exact_recent_replays_only() -> None:
    replays = ReplayFilter(capacity=2)
    one, two = KEYS[1].public_key, KEYS[2].public_key
    assert not replays.seen(one, 10)
    assert replays.seen(one, 10)
    assert not replays.seen(two, 10)
    assert not replays.seen(one, 11)
    assert not replays.seen(one, 10)  # evicted from the window: processed again (harmless, idempotent)


def test_non_canonical_encoding_is_refused() -> None:
    value = codec.decode(sealed())
    # the same array behind a 3-byte array16 header: decodes to the same value, is not canonical
    stretched = b"\xdc\x00\x05" + b"".join(msgpack.packb(item, use_bin_type=True) for item in value)
    with pytest.raises(PeerRejected) as refused:
        open_envelope(stretched, CHAIN, is_validator)
    assert refused.value.code == "malformed"
