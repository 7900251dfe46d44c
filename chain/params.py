"""Chain parameters fixed at genesis: who may sign what, and the consensus settings.

``genesis/`` builds a ``ChainParams`` from the human-edited genesis file; ``chain/`` never reads
files itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chain.block import ValidatorSet
from chain.governance import Roster, genesis_roster


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
    # The committee members' names with their keys, in genesis order; empty: "committee-<i>" over the
    # keys in ascending byte order. ``keys.rotate`` names a member by it.
    committee_names: tuple[tuple[str, bytes], ...] = field(default=())

    def committee_members(self) -> tuple[tuple[str, bytes], ...]:
        if self.committee_names:
            return self.committee_names
        return tuple((f"committee-{i}", key) for i, key in enumerate(sorted(self.committee_keys)))

    def genesis_roster(self) -> Roster:
        """Who may sign what at height 0 (and until the committee changes it)."""
        return genesis_roster(self.validators, self.committee_members(), self.committee_threshold,
                              self.district_operators, self.gateways)

    def operators_of(self, district_id: str) -> frozenset[bytes]:
        return frozenset(key for district, key in self.district_operators if district == district_id)

    def is_gateway(self, public_key: bytes) -> bool:
        return any(key == public_key for _, key in self.gateways)
