"""An independent Veche chain verifier written from docs/ alone; ``verify_chain.py`` is its CLI.

Modules: ``codec`` (canonical msgpack, hashes, Merkle tree, signatures, RFC 8785), ``txs``
(envelope and body schemas), ``roster`` (rosters, genesis data), ``state`` (the state machine and
app-hash changes), ``results`` (counting rules, Equal Shares, result hashes), ``chain`` (blocks,
certificates, the node's API, the replay and its report). It imports nothing from the project.
"""

from __future__ import annotations

from .chain import Fault, Unreachable, Verifier, run
from .codec import dec, enc, genesis_hash, jcs, load_json_strict, merkle_root, rsa_pss_sha384_ok, sha256, u32, u64
from .roster import Roster, genesis_roster
from .state import Campaign, Reject, State
from .txs import Bad, Tx, decode_tx

__all__ = ["Bad", "Campaign", "Fault", "Reject", "Roster", "State", "Tx", "Unreachable", "Verifier", "dec",
           "decode_tx", "enc", "genesis_hash", "genesis_roster", "jcs", "load_json_strict", "merkle_root",
           "rsa_pss_sha384_ok", "run", "sha256", "u32", "u64"]
