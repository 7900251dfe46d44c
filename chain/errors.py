"""Errors of the ledger core. Every error carries a stable machine-readable ``code``."""

from __future__ import annotations


class VecheError(Exception):
    """Root of every error the project raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class DecodeError(VecheError):
    """Bytes that are not a well-formed canonical encoding (peer's fault)."""

    code = "malformed"


class SignatureError(VecheError):
    """A signature that does not verify, or a malformed key or signature."""

    code = "bad_signature"


class TxRejected(VecheError):
    """A well-formed transaction that the state machine refuses; ``code`` names the rule."""

    code = "rejected"


class BlockInvalid(VecheError):
    """A block (or its commit certificate) that must not be applied."""

    code = "invalid_block"


class CertificateError(BlockInvalid):
    """A commit certificate that does not prove a quorum for a block."""

    code = "bad_certificate"


class UpgradeRequired(VecheError):
    """The chain reached a protocol version this software cannot apply (a scheduled upgrade)."""

    code = "upgrade_required"

    def __init__(self, message: str, *, height: int, version: int, supported: int) -> None:
        super().__init__(message)
        self.height = height
        self.version = version
        self.supported = supported


class StorageError(VecheError):
    """The store is missing data it must have, or holds data that does not check."""

    code = "storage"


class StoreCorrupt(StorageError):
    """LevelDB found a checksum mismatch or a damaged file: nothing read from it can be trusted."""

    code = "data_corrupt"


class StoreLocked(StorageError):
    """Another process holds the data directory's LevelDB lock."""

    code = "store_in_use"


class StoreFull(StorageError):
    """No space left on the device holding the data directory."""

    code = "disk_full"


class GenesisError(VecheError):
    """A genesis file an operator must fix."""

    code = "bad_genesis"


class RuleError(VecheError):
    """A winner rule asked to run on input it cannot accept (unknown rule, bad costs, bad ballots)."""

    code = "rule_error"


class PabulibError(VecheError):
    """A pabulib ``.pb`` text that is malformed; the message names the line."""

    code = "pabulib_error"
