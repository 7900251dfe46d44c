"""Chain parameters fixed at genesis: who may sign what, and the consensus settings.

``genesis/`` builds a ``ChainParams`` from the human-edited genesis file; ``chain/`` never reads
files itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chain.block import ValidatorSet


@dataclass(frozen=True, slots=True)
class ChainParams:
    chain_id: str
    genesis_time_ms: int
    validators: ValidatorSet
    committee_keys: frozenset[bytes]
    committee_threshold: int
    district_operators: tuple[tuple[str, bytes], ...]   # (district_id, public key); one key may serve several
    gateways: tuple[tuple[str, bytes], ...]             # (name, public key)
    time_precision_ms: int = 500
    heartbeat_ms: int = 5000
    genesis_hash: bytes = b"\x00" * 32
    # Transactions applied at height 0 without signatures (demo data): (kind, body) pairs.
    initial_bodies: tuple[tuple[str, Any], ...] = field(default=())

    def operators_of(self, district_id: str) -> frozenset[bytes]:
        return frozenset(key for district, key in self.district_operators if district == district_id)

    def is_gateway(self, public_key: bytes) -> bool:
        return any(key == public_key for _, key in self.gateways)
