"""Veche consensus: a sans-I/O Tendermint engine (see docs/CONSENSUS.md)."""

from consensus.engine import STEP_NEW_HEIGHT, Engine
from consensus.errors import (
    ConsensusError,
    InvalidEvidence,
    InvalidProposal,
    InvalidSignature,
    LocalProtocolError,
    MalformedMessage,
    RemoteProtocolError,
    SigningStateError,
    UnknownValidator,
    WrongChain,
    WrongProposer,
)
from consensus.messages import (
    STEP_PRECOMMIT,
    STEP_PREVOTE,
    STEP_PROPOSE,
    Evidence,
    Message,
    PeerItem,
    Proposal,
    Vote,
    decode_evidence,
    decode_item,
    decode_message,
    encode_evidence,
    encode_item,
    encode_message,
    make_proposal,
    make_vote,
    verify_evidence,
    verify_message,
)
from consensus.outputs import (
    Application,
    Broadcast,
    Commit,
    EvidenceFound,
    Output,
    PeerAhead,
    PersistSigningState,
    RejectedMessage,
    Send,
    TimeoutConfig,
)
from consensus.signing_state import SigningState

__all__ = [
    "Application", "Broadcast", "Commit", "ConsensusError", "Engine", "Evidence", "EvidenceFound",
    "InvalidEvidence", "InvalidProposal", "InvalidSignature", "LocalProtocolError", "MalformedMessage",
    "Message", "Output", "PeerAhead", "PeerItem", "PersistSigningState", "Proposal", "RejectedMessage",
    "RemoteProtocolError", "STEP_NEW_HEIGHT", "STEP_PRECOMMIT", "STEP_PREVOTE", "STEP_PROPOSE",
    "Send", "SigningState", "SigningStateError", "TimeoutConfig", "UnknownValidator", "Vote", "WrongChain",
    "WrongProposer", "decode_evidence", "decode_item", "decode_message", "encode_evidence", "encode_item",
    "encode_message",
    "make_proposal", "make_vote", "verify_evidence", "verify_message",
]
