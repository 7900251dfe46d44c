"""Outgoing peer links: how gossiped transactions and consensus messages share envelopes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import node.p2p
from node.p2p import PeerInfo, PeerLink


class RecordingLink(PeerLink):
    """A link whose envelopes are recorded instead of posted (the sender loop is the real one)."""

    def __init__(self) -> None:
        super().__init__(PeerInfo("validator-1", "http://127.0.0.1:1", b"\x01" * 32), network=None)  # type: ignore[arg-type]
        self.envelopes: list[tuple[float, list[bytes], list[bytes]]] = []
        self.started = time.monotonic()

    async def _send(self, messages: list[bytes], txs: list[bytes]) -> bool:
        self.envelopes.append((time.monotonic() - self.started, messages, txs))
        return True


async def run_link(link: RecordingLink, script: Any, until: float) -> None:
    """Run the link's sender while ``script`` pushes; give it ``until`` seconds to send its first envelope."""
    sender = asyncio.create_task(link.run())
    try:
        await script(link)
        deadline = time.monotonic() + until
        while time.monotonic() < deadline and not link.envelopes:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
    finally:
        sender.cancel()


def test_a_consensus_message_does_not_wait_for_transactions_to_gather(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone transaction waits for company, but a prevote queued meanwhile ends the wait: the vote
    leaves at once and carries the transaction (consensus is never delayed by gossip batching)."""
    monkeypatch.setattr(node.p2p, "GOSSIP_DELAY_S", 5.0)
    link = RecordingLink()

    async def script(link: RecordingLink) -> None:
        link.push_txs([b"ballot"])
        await asyncio.sleep(0.05)
        link.push_message(b"prevote")

    asyncio.run(run_link(link, script, until=2.0))
    assert len(link.envelopes) == 1
    sent_at, messages, txs = link.envelopes[0]
    assert messages == [b"prevote"] and txs == [b"ballot"]
    assert sent_at < 1.0, f"the prevote waited {sent_at:.2f} s for gossip batching"


def test_transactions_arriving_one_by_one_share_an_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ballots posted one at a time by citizens' devices are gossiped together, not one envelope each."""
    monkeypatch.setattr(node.p2p, "GOSSIP_DELAY_S", 0.3)
    link = RecordingLink()

    async def script(link: RecordingLink) -> None:
        for index in range(5):
            link.push_txs([b"ballot-%d" % index])
            await asyncio.sleep(0.02)

    asyncio.run(run_link(link, script, until=2.0))
    assert [txs for _, _, txs in link.envelopes] == [[b"ballot-%d" % index for index in range(5)]]


def test_the_default_wait_stays_well_below_the_proposal_grace() -> None:
    """Peers must hold a transaction before the node that admitted it may propose it."""
    from node.config import LIMIT_DEFAULTS

    assert node.p2p.GOSSIP_DELAY_S * 1000 <= LIMIT_DEFAULTS["proposal_grace_ms"] / 2
