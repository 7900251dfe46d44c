"""The nodes' pending signing requests (node/cosign/store.py): valid/invalid pairs, merging, expiry, bounds,
restart, and marking a request whose transaction committed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chain.crypto import SigningKey
from chain.tx import CampaignClose, InitiativeSubmit, sign_tx
from node.cosign.request import SigningRequest
from node.cosign.store import RequestStore
from node.errors import ApiError

CHAIN, GENESIS = "veche-test", b"\x07" * 32
MEMBERS = [SigningKey.generate() for _ in range(3)]


@dataclass
class Roster:
    committee_keys: frozenset[bytes] = frozenset(k.public_key for k in MEMBERS)


@dataclass
class State:
    def roster_at(self, height: int) -> Roster:
        return Roster()


@dataclass
class Ledger:
    height: int = 5
    state: State = field(default_factory=State)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def store_at(folder: Path, clock: Clock, **options: int) -> RequestStore:
    store = RequestStore(folder, chain_id=CHAIN, genesis_hash=GENESIS, ledger=Ledger(), clock_ms=clock,  # type: ignore[arg-type]
                         **options)
    store.open()
    return store


def request(reason: str = "done", *, signers: list[SigningKey] = MEMBERS[:1], expires: int | None = None,
            chain: str = CHAIN) -> SigningRequest:
    made = SigningRequest(chain, GENESIS, "campaign.close", CampaignClose("c1", reason), 2, [], 5, 999_000,
                          expires_at_ms=expires)
    for key in signers:
        made.add_signature(key)
    return made


def raw(made: SigningRequest, **changes: object) -> bytes:
    return json.dumps({**made.to_json(), **changes}).encode()


def test_a_request_is_kept_merged_and_survives_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path, clock)
    first = request()
    entry, outcome = store.put(store.parse(raw(first)))
    assert outcome == "new" and entry.expires_at_ms == clock.now + 7 * 24 * 3600 * 1000   # capped default
    assert store.put(store.parse(raw(first)))[1] == "unchanged"
    second = request(signers=[MEMBERS[1]])
    entry, outcome = store.put(store.parse(raw(second)))
    assert outcome == "added" and set(entry.request.signatures) == {MEMBERS[0].public_key, MEMBERS[1].public_key}
    reopened = store_at(tmp_path, clock)
    assert set(reopened.get(first.signing_hash).request.signatures) == set(entry.request.signatures)
    assert [e.request.signing_hash for e in reopened.listing()] == [first.signing_hash]


@pytest.mark.parametrize("body, status, code", [
    (b"not json", 400, "bad_signing_request"),
    (b"[1]", 400, "bad_signing_request"),
    (raw(request(), body="9200"), 403, "bad_signing_request"),                      # altered: hash mismatch
    (raw(request(), signatures=[{"public_key": MEMBERS[0].public_key.hex(), "signature": "00" * 64}]),
     403, "bad_signing_request"),                                                   # a signature that fails
    (raw(request(chain="other-chain")), 403, "wrong_chain"),
    (b"{" + b" " * 300_000 + b"}", 413, "too_large"),
])
def test_requests_that_do_not_check_are_refused(tmp_path: Path, body: bytes, status: int, code: str) -> None:
    store = store_at(tmp_path, Clock())
    with pytest.raises(ApiError) as refused:
        store.put(store.parse(body))
    assert (refused.value.status, refused.value.code) == (status, code)
    assert store.entries == {} and list(tmp_path.iterdir()) == []


def test_a_stranger_signature_and_an_unsigned_request_are_refused(tmp_path: Path) -> None:
    store = store_at(tmp_path, Clock())
    with pytest.raises(ApiError) as refused:
        store.put(store.parse(raw(request(signers=[SigningKey.generate()]))))
    assert refused.value.code == "permission_denied"
    with pytest.raises(ApiError) as refused:
        store.put(request(signers=[]))
    assert refused.value.code == "unsigned"


def test_expiry_answers_gone_then_forgets(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path, clock)
    short = request(expires=clock.now + 1000)
    store.put(store.parse(raw(short)))
    clock.now += 1000
    with pytest.raises(ApiError) as gone:
        store.get(short.signing_hash)
    assert gone.value.status == 410 and list(tmp_path.iterdir()) == []
    with pytest.raises(ApiError) as gone:   # and it cannot come back
        store.put(store.parse(raw(short)))
    assert gone.value.status == 410
    clock.now += 8 * 24 * 3600 * 1000
    with pytest.raises(ApiError) as unknown:
        store.get(short.signing_hash)
    assert unknown.value.status == 404
    with pytest.raises(ApiError) as late:
        store.put(store.parse(raw(request("late", expires=clock.now - 1))))
    assert late.value.status == 410


def test_bounds(tmp_path: Path) -> None:
    store = store_at(tmp_path, Clock(), max_requests=2)
    store.put(store.parse(raw(request("a"))))
    store.put(store.parse(raw(request("b"))))
    with pytest.raises(ApiError) as full:
        store.put(store.parse(raw(request("c"))))
    assert full.value.status == 507


def test_a_committed_transaction_marks_its_request(tmp_path: Path) -> None:
    store = store_at(tmp_path, Clock())
    pending = request(signers=MEMBERS[:2])
    store.put(pending)
    other = sign_tx("initiative.submit", CHAIN, InitiativeSubmit("c1", "i", "d", "t", "c", 1, "", b""), [MEMBERS[2]])
    store.on_block([other.raw, pending.transaction(sorted(pending.signatures)).raw], 12)
    assert store.get(pending.signing_hash).committed_height == 12
    assert store_at(tmp_path, Clock()).get(pending.signing_hash).committed_height == 12
