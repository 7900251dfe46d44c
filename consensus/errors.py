"""Errors of the consensus engine, split the h11 way.

``LocalProtocolError``: the engine's caller (the node) misused it or its own files are broken.
``RemoteProtocolError``: a peer sent something invalid; the engine reports it as a
``RejectedMessage`` output so the node can count it against that peer. Harmless input
(duplicates, stale heights) is ignored without an error.
"""

from __future__ import annotations

from chain.errors import DecodeError, VecheError


class ConsensusError(VecheError):
    """Root of every error raised by ``consensus/``."""

    code = "consensus"


class LocalProtocolError(ConsensusError):
    """The caller used the engine wrongly (bad configuration, impossible call order)."""

    code = "local_protocol"


class SigningStateError(LocalProtocolError):
    """A persisted signing state that cannot be decoded: refuse to start rather than guess."""

    code = "bad_signing_state"


class RemoteProtocolError(ConsensusError):
    """A peer's message that is invalid and is counted against the peer."""

    code = "remote_protocol"


class MalformedMessage(RemoteProtocolError, DecodeError):
    """Bytes that do not decode to a well-formed consensus message."""

    code = "malformed"


class WrongChain(RemoteProtocolError):
    code = "wrong_chain"


class UnknownValidator(RemoteProtocolError):
    """The message names a signer index outside the validator set."""

    code = "unknown_validator"


class InvalidSignature(RemoteProtocolError):
    code = "bad_signature"


class WrongProposer(RemoteProtocolError):
    """A proposal signed by a validator that is not the proposer of its height and round."""

    code = "wrong_proposer"


class InvalidProposal(RemoteProtocolError):
    """A proposal whose fields contradict each other (pol_round, block hash of its bytes)."""

    code = "invalid_proposal"


class InvalidEvidence(RemoteProtocolError):
    """Evidence that does not prove an equivocation."""

    code = "invalid_evidence"
