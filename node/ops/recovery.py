"""``--recover-signing-state``: a validator that lost its signing state derives a floor from the chain.

The validator may have signed at any height up to the one the network was working on when it lost
its state. What the chain can vouch for:

* ``own_signature`` — the highest height at which this validator's own signature appears in a
  commit certificate (this node's stored ones — the top certificates and the last commit of the top
  blocks —, and each peer's latest block and certificate, every signature verified against the
  genesis validators) or in equivocation evidence against it (this node's stored evidence and each
  peer's ``GET /api/v1/evidence``, each item verified);
* ``tip`` — the highest height proven committed: this node's ledger, and each peer's latest block
  whose certificate verifies (a peer's claimed height alone is not trusted). A validator only signs
  at height ``h`` after block ``h − 1`` was committed, so it cannot have signed above ``tip + 1``
  unless a peer with a higher block did not answer.

floor = max(own_signature, tip + 1) + ``SAFETY_MARGIN`` (2 heights): the margin covers blocks
committed by validators that did not answer and a consensus commit that was still held in a block
sync batch when the process died. The engine then signs nothing at a height ``<= floor``
(``SigningState.floor``). It costs this validator its votes for ``SAFETY_MARGIN + 1`` heights or so;
the other validators commit them.

With no peer answering and an empty ledger there is nothing to derive a floor from: the node
refuses (exit code 6) rather than guess.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chain.block import Block, CommitCertificate, ValidatorSet, verify_certificate
from chain.crypto import verify
from chain.errors import VecheError
from chain.ledger import Ledger, decode_block_with_certificate
from consensus.errors import ConsensusError, SigningStateError
from consensus.messages import decode_evidence, verify_evidence
from consensus.signing_state import SigningState
from node.evidence import EvidenceRecord

log = logging.getLogger("veche.node.signing")

SAFETY_MARGIN = 2
"""Heights added above the highest height the chain shows this validator may have signed at."""
PEER_TIMEOUT_S = 3.0
OWN_SCAN_BLOCKS = 8
"""Top blocks of this node's ledger whose certificates and last commits are scanned."""

Fetch = Callable[[str], bytes | None]


class RecoveryRefused(SigningStateError):
    code = "signing_state_recovery_refused"


@dataclass(slots=True)
class PeerView:
    name: str
    url: str
    tip: int = 0
    own_signature: int = 0
    evidence: int = 0
    error: str | None = None


@dataclass(slots=True)
class Recovery:
    floor: int
    tip: int
    own_tip: int
    own_signature: int
    peers: list[PeerView] = field(default_factory=list)

    def state(self) -> SigningState:
        return SigningState.recovered(self.floor)

    @property
    def answered(self) -> list[PeerView]:
        return [peer for peer in self.peers if peer.error is None]

    def describe(self) -> str:
        peers = ", ".join(f"{p.name} h{p.tip}" if p.error is None else f"{p.name} ({p.error})" for p in self.peers)
        return (f"floor {self.floor} = max(own signature seen at height {self.own_signature}, highest committed "
                f"height {self.tip} + 1) + safety margin {SAFETY_MARGIN}; this ledger at {self.own_tip}; "
                f"peers: {peers or 'none'}")


def http_fetch(url: str) -> bytes | None:
    """GET ``url``: the body on 200, None on 404; raises OSError/ValueError on anything else."""
    try:
        with urllib.request.urlopen(url, timeout=PEER_TIMEOUT_S) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise OSError(f"HTTP {exc.code}") from exc


def signature_heights(my_index: int, certificates: Iterable[CommitCertificate | None]) -> int:
    """The highest height among ``certificates`` that carry a signature of validator ``my_index``."""
    best = 0
    for certificate in certificates:
        if certificate is not None and any(index == my_index for index, _ in certificate.signatures):
            best = max(best, certificate.height)
    return best


def _own_view(my_index: int, ledger: Ledger) -> int:
    certificates: list[CommitCertificate | None] = []
    for height in range(ledger.height, max(0, ledger.height - OWN_SCAN_BLOCKS), -1):
        certificates.append(ledger.certificate(height))
        block = ledger.block(height)
        if block is not None:
            certificates.append(block.last_commit)
    return signature_heights(my_index, certificates)


def _peer_view(name: str, url: str, my_index: int, validators: ValidatorSet, chain_id: str,
               fetch: Fetch) -> PeerView:
    view = PeerView(name, url)
    try:
        status = json.loads(fetch(f"{url}/api/v1/status") or b"{}")
        height = int(status.get("height", 0))
        if status.get("chain_id") != chain_id:
            raise ValueError(f"chain {status.get('chain_id')!r}")
        if height > 0:
            raw = fetch(f"{url}/api/v1/blocks/{height}/raw")
            if raw is None:
                raise ValueError(f"no block {height} although its status says so")
            block, certificate = decode_block_with_certificate(raw)
            _check_block(block, certificate, height, validators, chain_id)
            view.tip = height
            view.own_signature = signature_heights(my_index, (certificate, block.last_commit))
        answer: Any = json.loads(fetch(f"{url}/api/v1/evidence") or b"{}")
        for item in answer.get("evidence", []) if isinstance(answer, dict) else []:
            evidence = decode_evidence(bytes.fromhex(item["evidence"]))
            if evidence.validator_index != my_index:
                continue
            verify_evidence(evidence, validators, chain_id, verify)
            view.evidence = max(view.evidence, evidence.height)
    except (OSError, ValueError, KeyError, TypeError, VecheError, ConsensusError) as exc:
        view.error = f"{type(exc).__name__}: {exc}"[:200]
    return view


def _check_block(block: Block, certificate: CommitCertificate, height: int, validators: ValidatorSet,
                 chain_id: str) -> None:
    if block.height != height or block.header.chain_id != chain_id:
        raise ValueError(f"served block {block.height} of chain {block.header.chain_id!r} for height {height}")
    block.check_structure()
    verify_certificate(certificate, validators, chain_id, height=height, block_hash=block.hash())
    if block.last_commit is not None:
        verify_certificate(block.last_commit, validators, chain_id, height=height - 1,
                           block_hash=block.header.previous_hash)


def recover_floor(*, my_index: int, chain_id: str, validators: ValidatorSet, ledger: Ledger,
                  evidence: list[EvidenceRecord], sources: list[tuple[str, str]],
                  fetch: Fetch = http_fetch) -> Recovery:
    """Derive the signing floor of validator ``my_index`` (module docstring); log what it saw."""
    own_tip = ledger.height
    own_signature = _own_view(my_index, ledger)
    for record in evidence:
        if record.evidence.validator_index == my_index:
            own_signature = max(own_signature, record.evidence.height)
    peers: list[PeerView] = []
    if sources:
        with ThreadPoolExecutor(max_workers=min(8, len(sources))) as pool:
            peers = list(pool.map(lambda source: _peer_view(source[0], source[1].rstrip("/"), my_index,
                                                            validators, chain_id, fetch), sources))
    answered = [peer for peer in peers if peer.error is None]
    for peer in peers:
        if peer.error is not None:
            log.warning("signing-state recovery: %s (%s) did not answer usefully: %s", peer.name, peer.url, peer.error)
    if not answered and own_tip == 0:
        raise RecoveryRefused(
            "cannot recover the signing state: no peer answered and this node's ledger is empty, so nothing shows "
            "how far this validator may have signed. Start again with --recover-signing-state once peers are "
            "reachable, or restore signing-state.bin from a backup; see docs/OPERATOR.md \"Machine faults: lost or "
            "damaged signing state\"")
    tip = max([own_tip] + [peer.tip for peer in answered])
    own_signature = max([own_signature] + [max(peer.own_signature, peer.evidence) for peer in answered])
    floor = max(own_signature, tip + 1) + SAFETY_MARGIN
    return Recovery(floor=floor, tip=tip, own_tip=own_tip, own_signature=own_signature, peers=peers)
