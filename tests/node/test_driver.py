"""The consensus driver: outputs handled strictly in order, the signing state durable before sending."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from chain.block import STEP_PREVOTE, Validator, ValidatorSet
from chain.crypto import SigningKey
from consensus.messages import Vote, encode_evidence, encode_message, make_proposal, make_vote
from consensus.outputs import (
    Broadcast, EvidenceFound, Output, PeerAhead, PersistSigningState, RejectedMessage, Send,
)
from consensus.errors import InvalidSignature
from consensus.messages import make_evidence
from consensus.signing_state import SigningState
from node.driver import Driver
from node.metrics import NodeMetrics
from node.signing_state import SigningStateFile

KEY = SigningKey.generate()
LINK_KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(4)]


def named(*names: str) -> ValidatorSet:
    """A validator set whose validator i has LINK_KEYS[i]."""
    return ValidatorSet(tuple(Validator(name, LINK_KEYS[i].public_key) for i, name in enumerate(names)))


def link(index: int) -> bytes:
    """The authenticated key of validator ``index``'s link."""
    return LINK_KEYS[index].public_key


def vote(height: int, block_hash: bytes | None = b"\x01" * 32) -> Vote:
    return make_vote("veche-test", STEP_PREVOTE, height, 0, block_hash, 1, KEY.sign)


class ScriptedEngine:
    """Returns scripted outputs from start/receive/tick; records what it was fed."""

    def __init__(self, script: list[list[Output]], validators: ValidatorSet | None = None) -> None:
        self.script = script
        self.validators = validators if validators is not None else named("v0", "v1", "v2", "v3")
        self.height = 1
        self.round = 0
        self.received: list[Any] = []
        self.senders: list[int | None] = []
        self.evidence_ignored: dict[str, int] = {}

    def _next(self) -> list[Output]:
        return self.script.pop(0) if self.script else []

    def start(self, now_ms: int) -> list[Output]:
        return self._next()

    def receive(self, message: Any, now_ms: int, sender: int | None = None) -> list[Output]:
        self.received.append(message)
        self.senders.append(sender)
        return self._next()

    def tick(self, now_ms: int) -> list[Output]:
        return self._next()

    def next_deadline(self) -> int | None:
        return None

    def skip_to(self, height: int, last_commit: Any) -> None:
        self.height = height


class RecordingFile(SigningStateFile):
    def __init__(self, path: Path, events: list[str]) -> None:
        super().__init__(path)
        self.events = events

    def store(self, state: SigningState) -> None:
        super().store(state)
        self.events.append(f"persisted {state.height}")


def test_signing_state_is_on_disk_before_the_message_leaves(tmp_path: Path) -> None:
    events: list[str] = []
    signed = vote(3)
    state = SigningState(height=3, round=0, step=STEP_PREVOTE, last_signed=(signed,))
    evidence = make_evidence(vote(2), vote(2, None))
    engine = ScriptedEngine([[PersistSigningState(state), Broadcast(signed)],
                             [RejectedMessage(1, InvalidSignature("bad")), EvidenceFound(evidence), PeerAhead(9)]],
                            named("v0", "v1"))
    signing_file = RecordingFile(tmp_path / "signing-state.bin", events)
    ahead: list[int] = []
    metrics = NodeMetrics()

    def broadcast(data: bytes) -> None:
        if data == encode_evidence(evidence):
            events.append("evidence gossiped")
            return
        on_disk = SigningStateFile(tmp_path / "signing-state.bin").load()
        events.append(f"sent {'after' if on_disk == state else 'BEFORE'} persist")
        assert data == encode_message(signed)

    driver = Driver(engine, app=None, signing_file=signing_file, broadcast=broadcast,  # type: ignore[arg-type]
                    metrics=metrics, on_commit=lambda c: None, on_peer_ahead=ahead.append)

    async def main() -> None:
        task = asyncio.create_task(driver.run())
        driver.deliver(link(1), vote(5))
        for _ in range(200):
            if ahead:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(main())
    assert events == ["persisted 3", "sent after persist", "evidence gossiped"]
    assert ahead == [9]
    assert metrics.consensus_rejected.value("v1", "bad_signature") == 1
    assert metrics.evidence.value("v1") == 1 and len(driver.evidence) == 1
    assert driver.evidence[0].to_json()["height"] == 2
    assert engine.received == [vote(5)] and engine.senders == [1]


def test_rejections_count_against_the_delivering_link_and_sends_go_to_one_peer() -> None:
    forged = vote(4)  # names validator 1 as its signer
    engine = ScriptedEngine([[], [RejectedMessage(2, InvalidSignature("bad"), claimed_index=1), Send(0, forged)]],
                            named("v0", "v1", "v2"))
    metrics = NodeMetrics()
    sent: list[tuple[bytes, bytes]] = []
    broadcasts: list[bytes] = []
    driver = Driver(engine, app=None, signing_file=None, broadcast=broadcasts.append,  # type: ignore[arg-type]
                    metrics=metrics, send_to=lambda key, data: sent.append((key, data)), peer_count=3,
                    on_commit=lambda c: None, on_peer_ahead=lambda h: None)

    async def main() -> None:
        task = asyncio.create_task(driver.run())
        driver.deliver(link(2), forged)
        for _ in range(500):
            if sent:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(main())
    assert engine.senders == [2]
    assert metrics.consensus_rejected.value("v2", "bad_signature") == 1
    assert metrics.consensus_rejected.value("v1", "bad_signature") == 0
    assert sent == [(link(0), encode_message(forged))] and broadcasts == []
    assert metrics.consensus_sent.value("prevote") == 1


def test_inbox_is_bounded_and_drops_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    import node.driver as module

    monkeypatch.setattr(module, "MAX_INBOX", 10)
    engine = ScriptedEngine([])
    driver = Driver(engine, app=None, signing_file=None, broadcast=lambda data: None,  # type: ignore[arg-type]
                    metrics=NodeMetrics(), on_commit=lambda c: None, on_peer_ahead=lambda h: None)
    message = vote(1)
    for _ in range(15):
        driver.deliver(link(0), message)
    assert driver.inbox_dropped == 5


def test_inbox_is_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    import node.driver as module

    monkeypatch.setattr(module, "MAX_INBOX_BYTES", 3 * 1024 * 1024)
    driver = Driver(ScriptedEngine([]), app=None, signing_file=None,  # type: ignore[arg-type]
                    broadcast=lambda data: None, metrics=NodeMetrics(), on_commit=lambda c: None,
                    on_peer_ahead=lambda h: None)
    big = make_proposal("veche-test", 1, 0, -1, b"\x02" * 32, b"x" * (1024 * 1024), 1, KEY.sign)
    for _ in range(5):
        driver.deliver(link(1), big)
    assert driver.inbox_dropped == 3  # 2 proposals of 1 MiB (+ overhead) fit under 3 MiB


def test_admission_waits_for_pending_consensus_messages() -> None:
    engine = ScriptedEngine([])
    driver = Driver(engine, app=None, signing_file=None, broadcast=lambda data: None,  # type: ignore[arg-type]
                    metrics=NodeMetrics(), on_commit=lambda c: None, on_peer_ahead=lambda h: None)

    async def main() -> None:
        task = asyncio.create_task(driver.run())
        await asyncio.sleep(0.05)
        driver.deliver(link(1), vote(7))
        assert engine.received == []
        await driver.wait_idle(limit_s=10)
        assert engine.received == [vote(7)]  # the message was handled before the caller went on
        task.cancel()

    asyncio.run(main())
