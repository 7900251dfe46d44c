"""Equivocation evidence this validator recorded, kept in its LevelDB so a restart does not lose it.

Layout (its own prefix in the node's store, apart from blocks and state)::

    E/<u64 sequence>  ->  canonical msgpack [seen_ms, encode_evidence(evidence)]

The sequence grows by one per item, so key order is arrival order and the oldest item is first.
At most ``MAX_STORED_EVIDENCE`` items are kept, and at most ``per_validator`` of them against one
validator (``evidence_per_validator``: the limit divided by the number of validators): storing one
more deletes, in the same batch, the oldest item against the same validator once it has its share,
else the oldest of all (the store never holds more than the API can show, and one Byzantine
validator flooding proofs against itself cannot push out the evidence against another). The engine
records at most one item per (validator, height, round, step) and a bounded number per validator
(docs/CONSENSUS.md §8), so this is a second line.

Durability: ``add`` writes **without** fsync, before the driver relays the item. LevelDB has then
handed the record to the operating system, so it survives ``kill -9`` of the node; it becomes safe
against power loss with the next synced write to the same store (the next committed block, at
most a heartbeat later). A synced write per item would put an fsync (1–15 ms) on the consensus
loop for every equivocation a Byzantine validator chooses to sign — up to one per step per round —
on every honest validator. Every item is also relayed to every peer, which stores it too, so the
proof is not lost by one node's power cut in those few seconds.

``load`` re-verifies every stored item (both signatures, the conflict, the chain) against the
genesis validator set: an entry that does not decode or verify is logged and skipped, never fatal.
A wiped (or new) data directory holds no ``E/`` keys and loads as empty.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chain import codec
from chain.errors import DecodeError, StorageError, VecheError
from chain.storage import KeyValueStore
from consensus.messages import Evidence, decode_evidence, encode_evidence, message_slot

log = logging.getLogger("veche.node.evidence")

EVIDENCE_PREFIX = b"E/"
MAX_STORED_EVIDENCE = 1000
"""Items kept in the store (and shown by ``GET /api/v1/evidence``); the oldest are pruned first."""


def evidence_per_validator(validators: int, limit: int = MAX_STORED_EVIDENCE) -> int:
    """Items kept against one validator: an equal share of ``limit``."""
    return max(1, limit // max(1, validators))


def index_to_prune(accused: Sequence[int], validator: int, *, limit: int, per_validator: int) -> int | None:
    """Which kept item (``accused``: the validator each accuses, oldest first) to drop before one more
    against ``validator``: its own oldest once it has ``per_validator``, else the oldest of all at
    ``limit``; ``None`` if there is room."""
    if sum(1 for index in accused if index == validator) >= per_validator:
        return accused.index(validator)
    return 0 if accused and len(accused) >= limit else None


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    evidence: Evidence
    seen_ms: int

    def to_json(self) -> dict[str, object]:
        e = self.evidence
        return {"validator_index": e.validator_index, "height": e.height, "round": e.round, "step": e.step,
                "seen_ms": self.seen_ms, "evidence": encode_evidence(e).hex()}


def evidence_key(sequence: int) -> bytes:
    return EVIDENCE_PREFIX + struct.pack(">Q", sequence)


def encode_record(record: EvidenceRecord) -> bytes:
    return codec.encode([record.seen_ms, encode_evidence(record.evidence)])


def decode_record(data: bytes) -> EvidenceRecord:
    """Raise ``DecodeError`` (``MalformedMessage`` is one) unless ``data`` is a stored record."""
    raw = codec.decode(data, max_bytes=len(data))
    if not (isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], int) and raw[0] >= 0
            and isinstance(raw[1], bytes)):
        raise DecodeError("stored evidence must be [seen_ms, evidence bytes]")
    return EvidenceRecord(decode_evidence(raw[1]), raw[0])


class EvidenceStore:
    """The ``E/`` keys of one node store. The driver owns it; the node owns the store."""

    def __init__(self, store: KeyValueStore, *, limit: int = MAX_STORED_EVIDENCE,
                 per_validator: int | None = None) -> None:
        if limit < 1 or (per_validator is not None and per_validator < 1):
            raise ValueError("the evidence limits must be at least 1")
        self._store = store
        self._limit = limit
        self.per_validator = limit if per_validator is None else min(limit, per_validator)
        self._keys: deque[bytes] = deque()
        self._accused: list[int] = []  # per key: the validator its item accuses (-1: does not check)
        self._next = 0
        self.skipped = 0

    def load(self, check: Callable[[Evidence], None]) -> list[EvidenceRecord]:
        """Stored items, oldest first; ``check`` raises (a ``VecheError``) for evidence that does not verify.

        Entries that do not decode or verify are logged and skipped (and pruned like any other entry
        as new ones arrive); the same equivocation slot stored twice is listed once.
        """
        records: list[EvidenceRecord] = []
        slots: set[tuple[int, int, int, str]] = set()
        self._keys.clear()
        self._accused.clear()
        self.skipped = 0
        for key, value in self._store.iterate(EVIDENCE_PREFIX):
            if len(key) != len(EVIDENCE_PREFIX) + 8:
                log.warning("stored evidence key %s is malformed: skipped", key.hex())
                self.skipped += 1
                continue
            self._keys.append(key)
            self._accused.append(-1)
            self._next = max(self._next, struct.unpack(">Q", key[len(EVIDENCE_PREFIX):])[0] + 1)
            try:
                record = decode_record(value)
                check(record.evidence)
            except VecheError as exc:
                log.warning("stored evidence %s does not check (%s): skipped", key.hex(), exc.message)
                self.skipped += 1
                continue
            self._accused[-1] = record.evidence.validator_index
            slot = message_slot(record.evidence.first)
            if slot not in slots:
                slots.add(slot)
                records.append(record)
        kept: list[EvidenceRecord] = []
        for record in records:  # what ``add`` would have kept (a store written under other limits)
            while (index := index_to_prune([r.evidence.validator_index for r in kept], record.evidence.validator_index,
                                           limit=self._limit, per_validator=self.per_validator)) is not None:
                del kept[index]
            kept.append(record)
        return kept

    def add(self, record: EvidenceRecord) -> None:
        """Write one item (no fsync: see the module text) and delete the oldest beyond the limit.

        Raises ``StorageError`` if the store refuses the write.
        """
        key = evidence_key(self._next)
        changes: dict[bytes, bytes | None] = {key: encode_record(record)}
        validator = record.evidence.validator_index
        keys, accused = list(self._keys), list(self._accused)
        while (index := index_to_prune(accused, validator, limit=self._limit,
                                       per_validator=self.per_validator)) is not None:
            changes[keys.pop(index)] = None
            del accused[index]
        try:
            self._store.write(changes, sync=False)
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001 - plyvel raises its own untyped errors
            raise StorageError(f"cannot store evidence: {exc}") from exc
        self._next += 1
        self._keys = deque(keys + [key])
        self._accused = accused + [validator]

    def __len__(self) -> int:
        return len(self._keys)


__all__ = ["EVIDENCE_PREFIX", "MAX_STORED_EVIDENCE", "EvidenceRecord", "EvidenceStore", "decode_record",
           "encode_record", "evidence_key", "evidence_per_validator", "index_to_prune"]
