"""Shared fixtures for consensus unit tests: four validators, a scripted application, message makers."""

from __future__ import annotations

from dataclasses import dataclass, field

from chain.block import CommitCertificate, Validator, ValidatorSet
from chain.crypto import SigningKey, sha256
from consensus import (
    Broadcast,
    Engine,
    Message,
    Output,
    Proposal,
    SigningState,
    TimeoutConfig,
    Vote,
    make_proposal,
    make_vote,
)

CHAIN_ID = "veche-test"
KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(10)]
TIMEOUTS = TimeoutConfig()


def validator_set(n: int = 4) -> ValidatorSet:
    return ValidatorSet(tuple(Validator(f"v{i}", KEYS[i].public_key) for i in range(n)))


def block_bytes(tag: str) -> bytes:
    return b"block:" + tag.encode()


def block_hash(tag: str) -> bytes:
    return sha256(block_bytes(tag))


@dataclass
class ScriptedApp:
    """Accepts blocks ``block:<tag>`` unless the tag is listed in ``invalid``; records every call."""

    pending: bool = False
    deadline: bool = False
    invalid: set[str] = field(default_factory=set)
    next_tag: str = "A"
    calls: list[tuple[str, int]] = field(default_factory=list)
    last_commits: list[CommitCertificate | None] = field(default_factory=list)

    def create_block(self, height: int, round_: int, now_ms: int,
                     last_commit: CommitCertificate | None) -> tuple[bytes, bytes]:
        self.calls.append(("create_block", height))
        self.last_commits.append(last_commit)
        return block_hash(self.next_tag), block_bytes(self.next_tag)

    def check_block(self, height: int, encoded_block: bytes, now_ms: int) -> bytes | None:
        self.calls.append(("check_block", height))
        if not encoded_block.startswith(b"block:") or encoded_block[6:].decode() in self.invalid:
            return None
        return sha256(encoded_block)

    def has_pending(self) -> bool:
        self.calls.append(("has_pending", 0))
        return self.pending

    def deadline_due(self, now_ms: int) -> bool:
        self.calls.append(("deadline_due", 0))
        return self.deadline


def make_engine(my_index: int | None = 3, n: int = 4, app: ScriptedApp | None = None, *,
                signing_state: SigningState | None = None, start_height: int = 1,
                last_commit: CommitCertificate | None = None, heartbeat_ms: int = 5000,
                batch_ms: int = 5) -> tuple[Engine, ScriptedApp]:
    app = app if app is not None else ScriptedApp()
    signer = KEYS[my_index].sign if my_index is not None else None
    engine = Engine(CHAIN_ID, validator_set(n), my_index, signer, app, TIMEOUTS, heartbeat_ms=heartbeat_ms,
                    batch_ms=batch_ms, signing_state=signing_state, start_height=start_height,
                    last_commit=last_commit)
    return engine, app


def proposal(height: int, round_: int, tag: str, *, pol_round: int = -1, n: int = 4,
             proposer: int | None = None) -> Proposal:
    index = (height + round_) % n if proposer is None else proposer
    return make_proposal(CHAIN_ID, height, round_, pol_round, block_hash(tag), block_bytes(tag), index,
                         KEYS[index].sign)


def vote(step: str, height: int, round_: int, tag: str | None, validator: int) -> Vote:
    return make_vote(CHAIN_ID, step, height, round_, None if tag is None else block_hash(tag), validator,
                     KEYS[validator].sign)


def prevote(height: int, round_: int, tag: str | None, validator: int) -> Vote:
    return vote("prevote", height, round_, tag, validator)


def precommit(height: int, round_: int, tag: str | None, validator: int) -> Vote:
    return vote("precommit", height, round_, tag, validator)


def feed(engine: Engine, messages: list[Message], now: int = 0, sender: int | None = None) -> list[Output]:
    outputs: list[Output] = []
    for message in messages:
        outputs.extend(engine.receive(message, now, sender))
    return outputs


def sent(outputs: list[Output], kind: type | None = None) -> list[Message]:
    """Messages the engine broadcast, optionally of one type."""
    return [o.message for o in outputs if isinstance(o, Broadcast) and (kind is None or isinstance(o.message, kind))]


def own_votes(outputs: list[Output], engine: Engine, step: str) -> list[Vote]:
    return [m for m in sent(outputs, Vote) if isinstance(m, Vote) and m.step == step
            and m.validator_index == engine.my_index]
