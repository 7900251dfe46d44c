"""A registration refused with ``revoked_key`` is signed again with the current gateway key (the race
of a ``keys.rotate`` switch: acknowledged before it, dropped from the mempools at it)."""

from __future__ import annotations

import time

from chain.crypto import SigningKey
from chain.tx import VotersRegister, decode_tx
from veche_chaos.load import Ballot, DirectLoad, NodeRing, Resubmitter
from veche_chaos.tracking import REGISTRATION, Tracker


def test_revoked_registration_is_signed_again_and_its_votes_follow() -> None:
    tracker = Tracker()
    ring = NodeRing(["validator-0"], {"validator-0": "http://validator-0.invalid"})
    old, new = SigningKey.generate(), SigningKey.generate()
    direct = DirectLoad(tracker, ring, "test-chain", old, [Ballot("north", "i1")], rate=0)
    batch = direct.make_batch(3)
    registration, votes = batch[0], batch[1:]
    for tx in batch:
        tracker.ack(tx.hash)
        tracker.records[tx.hash].last_submit = time.time() - 60
    resubmitter = Resubmitter(tracker, ring, resubmit_after_s=1, direct=direct)

    # before any refusal: the same registration goes with its votes
    groups = resubmitter._due()
    assert [g[0] for g in groups] == [registration.raw] * 3 and resubmitter.resigned == 0

    tracker.reject(registration.hash, "revoked_key")
    direct.gateway_key = new                      # the operator switched the client to the new key
    groups = resubmitter._due()
    fresh = decode_tx(groups[0][0])
    assert fresh.hash != registration.hash and fresh.signers == (new.public_key,)
    assert isinstance(fresh.body, VotersRegister)
    assert set(fresh.body.voter_keys) == set(decode_tx(registration.raw).body.voter_keys)
    assert all(g == [fresh.raw, v.raw] for g, v in zip(groups, votes, strict=True))
    assert resubmitter.resigned == 1 and tracker.records[fresh.hash].kind == REGISTRATION
    assert all(tracker.records[v.hash].depends == fresh.hash for v in votes)

    # a key not rotated yet: nothing to sign again with
    tracker2 = Tracker()
    direct2 = DirectLoad(tracker2, ring, "test-chain", old, [Ballot("north", "i1")], rate=0)
    batch2 = direct2.make_batch(1)
    for tx in batch2:
        tracker2.records[tx.hash].last_submit = time.time() - 60
    tracker2.reject(batch2[0].hash, "revoked_key")
    again = Resubmitter(tracker2, ring, resubmit_after_s=1, direct=direct2)
    assert again._due() == [[batch2[0].raw, batch2[1].raw]] and again.resigned == 0
