"""The voter-key vault and the gateway's own LevelDB layout.

For each (campaign, citizen) the gateway makes a random Ed25519 key when the citizen casts a first
ballot (never at login). The key and the citizen's ballot hashes are stored encrypted with
AES-256-GCM under ``HMAC(identity.vault_key, campaign)`` and indexed by
``HMAC(identity.index_key, campaign)``; both identity keys are themselves keyed hashes of the
phone number (or card code) under the gateway secret, so the database alone links nothing to a
person. When a campaign closes, ``destroy_campaign`` deletes its keys and links, and compacts their
key ranges at once, so the deleted records leave LevelDB's table and log files (a deletion alone
only adds a tombstone; the old value stays on disk until some later compaction).

AES-GCM comes from ``chain.crypto.seal``/``unseal`` (the one wrapper around ``cryptography``).

Key layout of ``<gateway home>/data`` (every phone-derived value is a keyed hash):
  V/<campaign>/<index 32>          nonce(12) ‖ AES-GCM([seed, [[slot, tx_hash]...]])   voter key vault
  K/<campaign>/<voter pk 32>       hash of the voters.register tx that registers this key
  R/<registration hash 32>         [campaign, raw tx]                                  pending registration
  P/<vote hash 32>                 [campaign, raw tx]                                  pending ballot
  X/<tx hash 32>                   [campaign, code, message]                           final rejection
  U/<card id 32>                   [campaign, vote tx hash]                            used code card
  T/<campaign>/<index 32>          [tokens.issued hash, blinded msg, blind sig]        a blind token issued
  I/<tx hash 32>                   [campaign, raw tx]                                  pending tokens.issued
  N/token-batch                    u64                                                 next tokens.issued label
  B/<campaign>/<district>/<reason> u64                                                blocked attempts
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from chain import codec
from chain.crypto import SigningKey, seal, unseal
from chain.errors import DecodeError, VecheError
from chain.storage import KeyValueStore, LevelStore
from gateway.errors import GatewayError
from gateway.phone import Identity, keyed_hash

Writes = dict[bytes, bytes | None]


def vault_key(campaign_id: str, index: bytes) -> bytes:
    return b"V/" + campaign_id.encode() + b"/" + index


def vault_prefix(campaign_id: str) -> bytes:
    return b"V/" + campaign_id.encode() + b"/"


def registered_key(campaign_id: str, voter_pk: bytes) -> bytes:
    return b"K/" + campaign_id.encode() + b"/" + voter_pk


def registered_prefix(campaign_id: str) -> bytes:
    return b"K/" + campaign_id.encode() + b"/"


def pending_registration_key(tx_hash: bytes) -> bytes:
    return b"R/" + tx_hash


def pending_vote_key(tx_hash: bytes) -> bytes:
    return b"P/" + tx_hash


def rejection_key(tx_hash: bytes) -> bytes:
    return b"X/" + tx_hash


def token_key(campaign_id: str, index: bytes) -> bytes:
    """The blind token issued to one (campaign, citizen): the vault index names the citizen."""
    return b"T/" + campaign_id.encode() + b"/" + index


def token_prefix(campaign_id: str) -> bytes:
    return b"T/" + campaign_id.encode() + b"/"


def pending_tokens_key(tx_hash: bytes) -> bytes:
    return b"I/" + tx_hash


TOKEN_BATCH_KEY = b"N/token-batch"


def used_card_key(card_id: bytes) -> bytes:
    return b"U/" + card_id


def blocked_key(campaign_id: str, district_id: str, reason: str) -> bytes:
    return b"B/" + campaign_id.encode() + b"/" + district_id.encode() + b"/" + reason.encode()


def encode_u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def decode_u64(data: bytes) -> int:
    value: int = struct.unpack(">Q", data)[0]
    return value


@dataclass(slots=True)
class VaultEntry:
    """A voter's key for one campaign and the ballots it has cast (slot → vote tx hash).

    The slot is the district id when the campaign allows one ballot per district, or "" when it
    allows one ballot per campaign.
    """

    seed: bytes
    ballots: dict[str, bytes] = field(default_factory=dict)

    @property
    def signing_key(self) -> SigningKey:
        return SigningKey(self.seed)

    def encode(self) -> bytes:
        return codec.encode([self.seed, [[slot, self.ballots[slot]] for slot in sorted(self.ballots)]])

    @classmethod
    def decode(cls, data: bytes) -> "VaultEntry":
        raw = codec.decode(data)
        if (not isinstance(raw, list) or len(raw) != 2 or not isinstance(raw[0], bytes)
                or not isinstance(raw[1], list)):
            raise DecodeError("malformed vault entry")
        return cls(raw[0], {str(slot): bytes(tx_hash) for slot, tx_hash in raw[1]})


class VaultError(GatewayError):
    code = "vault_error"


class VoterVault:
    """Encrypted per-(campaign, citizen) voter keys in the gateway store."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    @staticmethod
    def index(identity: Identity, campaign_id: str) -> bytes:
        return keyed_hash(identity.index_key, b"veche/gw/vault-index/v1", campaign_id.encode())

    @staticmethod
    def _sealing_key(identity: Identity, campaign_id: str) -> bytes:
        return keyed_hash(identity.vault_key, b"veche/gw/vault-key/v1", campaign_id.encode())

    def load(self, identity: Identity, campaign_id: str) -> VaultEntry | None:
        key = vault_key(campaign_id, self.index(identity, campaign_id))
        sealed = self.store.get(key)
        if sealed is None:
            return None
        try:
            plain = unseal(self._sealing_key(identity, campaign_id), sealed, key)
            return VaultEntry.decode(plain)
        except (VecheError, ValueError) as exc:
            raise VaultError("a voter record does not decrypt (wrong gateway secret or damaged data)") from exc

    def entry_writes(self, identity: Identity, campaign_id: str, entry: VaultEntry) -> Writes:
        """The write that stores ``entry`` (to go in the same batch as the pending ballot)."""
        key = vault_key(campaign_id, self.index(identity, campaign_id))
        return {key: seal(self._sealing_key(identity, campaign_id), entry.encode(), key)}

    def campaigns_with_keys(self) -> set[str]:
        """Campaigns that still have voter keys, links or token records here (one seek per campaign)."""
        return (distinct_campaigns(self.store, b"V/") | distinct_campaigns(self.store, b"K/")
                | distinct_campaigns(self.store, b"T/"))

    def destroy_campaign(self, campaign_id: str) -> int:
        """Delete every voter key, key→registration link and token record of a closed campaign;
        return the number of voter keys."""
        doomed: Writes = {key: None for key, _ in self.store.iterate(vault_prefix(campaign_id))}
        keys = len(doomed)
        doomed.update({key: None for key, _ in self.store.iterate(registered_prefix(campaign_id))})
        doomed.update({key: None for key, _ in self.store.iterate(token_prefix(campaign_id))})
        if doomed:
            self.store.write(doomed, sync=True)
            if isinstance(self.store, LevelStore):   # the deleted values leave LevelDB's files now
                self.store.compact(vault_prefix(campaign_id))
                self.store.compact(registered_prefix(campaign_id))
                self.store.compact(token_prefix(campaign_id))
        return keys


def distinct_campaigns(store: KeyValueStore, prefix: bytes) -> set[str]:
    """The campaign ids under ``prefix`` (keys ``prefix<campaign>/...``), skipping each campaign's keys.

    After campaign ``c`` the next possible key is ``prefix + c + "0"`` ("0" is the byte after "/"),
    so every key of ``c`` is jumped over with one seek.
    """
    found: set[str] = set()
    start: bytes | None = None
    while True:
        key = next((k for k, _ in store.iterate(prefix, start=start)), None)
        if key is None:
            return found
        campaign = key[len(prefix):].split(b"/", 1)[0]
        found.add(campaign.decode())
        start = prefix + campaign + b"0"


def iterate_pending(store: KeyValueStore, prefix: bytes) -> Iterator[tuple[bytes, str, bytes]]:
    """(tx hash, campaign, raw tx) of every pending record under ``prefix`` (b"R/", b"P/" or b"I/")."""
    for key, value in store.iterate(prefix):
        raw = codec.decode(value)
        yield key[len(prefix):], str(raw[0]), bytes(raw[1])


def pending_record(campaign_id: str, raw_tx: bytes) -> bytes:
    return codec.encode([campaign_id, raw_tx])


def merge_writes(*parts: Mapping[bytes, bytes | None]) -> Writes:
    merged: Writes = {}
    for part in parts:
        merged.update(part)
    return merged
