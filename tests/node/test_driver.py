"""The consensus driver: outputs handled strictly in order, the signing state durable before sending."""

from __future__ import annotations

import asyncio
import logging
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
from node.driver import STALL_HEARTBEATS, Driver, StallAlarm
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
        self.step = "propose"
        self.heartbeat_ms = 5000
        self.my_index: int | None = 0
        self.my_key: bytes | None = self.validators.public_key(0)
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


# --- stall alarm ----------------------------------------------------------------------------------

VALIDATORS = named("validator-0", "validator-1", "validator-2", "validator-3")


def test_stall_alarm_names_round_step_and_the_peers_heard_then_clears_on_the_next_block() -> None:
    alarm = StallAlarm(30_000, 1_000, my_key=link(0))
    alarm.heard(link(1), 900)        # outside the window when the alarm goes off at 31 s
    alarm.heard(link(2), 20_000)
    alarm.heard(link(3), 30_500)
    assert alarm.check(30_999, 7, 3, "prevote", VALIDATORS) is None and not alarm.stalled
    warning = alarm.check(31_000, 7, 3, "prevote", VALIDATORS)
    assert warning is not None and alarm.stalled and alarm.stalls == 1
    assert "no new block for 30.0 s" in warning and "height 7 round 3 step prevote" in warning
    assert "heard from validator-2, validator-3 in the last 30.0 s, silent: validator-1" in warning
    assert "3 of 4 validators reachable counting this one, a block needs 3" in warning
    assert alarm.check(45_000, 7, 4, "propose", VALIDATORS) is None           # once per window
    again = alarm.check(61_000, 7, 5, "precommit", VALIDATORS)               # still stalled: said again, one stall
    assert again is not None and "no new block for 60.0 s" in again
    assert "heard from none in the last 30.0 s, silent: validator-1, validator-2, validator-3" in again
    assert alarm.stalls == 1
    resumed = alarm.progressed(8, 62_500)
    assert resumed == ("consensus resumed: height 8 after 61.5 s without a new block "
                       "(stall alarm cleared after 31.5 s)")
    assert not alarm.stalled and alarm.check(92_499, 8, 0, "propose", VALIDATORS) is None
    assert alarm.progressed(9, 70_000) is None                   # a block while not stalled: nothing to say


def test_an_observer_counts_only_the_validators_it_heard() -> None:
    alarm = StallAlarm(1_000, 0, my_key=None)
    alarm.heard(link(0), 500)
    warning = alarm.check(1_000, 1, 0, "new_height", VALIDATORS)
    assert warning is not None and "1 of 4 validators reachable, a block needs 3" in warning
    assert "silent: validator-1, validator-2, validator-3" in warning


def test_the_stall_alarm_names_the_set_in_force_after_a_change() -> None:
    """A validator removed by a set change is not listed; the one added is, heard or silent."""
    alarm = StallAlarm(1_000, 0, my_key=link(0))
    alarm.heard(link(3), 500)                                      # validator-3 was replaced ...
    after = named("validator-0", "validator-1", "validator-2")    # ... by no one: a set of three
    warning = alarm.check(1_000, 9, 0, "propose", after)
    assert warning is not None and "validator-3" not in warning
    assert "heard from none in the last 1.0 s, silent: validator-1, validator-2" in warning
    assert "1 of 3 validators reachable counting this one, a block needs 3" in warning


def test_the_driver_raises_the_stall_alarm_and_clears_it_with_the_next_block(
        caplog: pytest.LogCaptureFixture) -> None:
    engine = ScriptedEngine([], VALIDATORS)
    engine.heartbeat_ms = 20  # the alarm goes off after STALL_HEARTBEATS × 20 ms without a block
    metrics = NodeMetrics()
    driver = Driver(engine, app=None, signing_file=None, broadcast=lambda data: None,  # type: ignore[arg-type]
                    metrics=metrics, on_commit=lambda c: None, on_peer_ahead=lambda h: None)
    caplog.set_level(logging.INFO, logger="veche.node.consensus")

    async def wait_for(condition: Any) -> None:
        for _ in range(500):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("condition not reached in 5 s")

    async def main() -> None:
        task = asyncio.create_task(driver.run())

        def heard_from_2_and_stalled() -> bool:
            driver.deliver(link(2), vote(1))
            return metrics.stalls.value() == 1

        await wait_for(heard_from_2_and_stalled)
        assert "\nveche_consensus_stalled 1.0\n" in metrics.render()
        engine.height = 2  # a block: the next pass of the loop sees the new height
        driver.poke()
        await wait_for(lambda: "\nveche_consensus_stalled 0.0\n" in metrics.render())
        task.cancel()

    asyncio.run(main())
    assert STALL_HEARTBEATS * engine.heartbeat_ms == driver.stall.after_ms
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and warnings[0].startswith("consensus stalled: no new block for")
    assert "at height 1 round 0 step propose; heard from validator-2" in warnings[0]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith("consensus resumed: height 2 after") for m in infos)
    assert metrics.stalls.value() == 1
