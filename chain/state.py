"""The deterministic state machine.

``State`` holds the committed state (a key-value store plus in-memory caches of the small,
hot records: campaigns, initiatives, vote counts). An ``Execution`` is a write-back overlay
on top of it: transactions apply to the overlay one by one, each either fully or not at all
(every handler runs all its checks before its first write), and ``finish()`` yields the state
changes and the new app hash. Nothing here reads a clock: block time is an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, ClassVar

from chain import codec
from chain.ballots import check_ballot_limits, check_ballot_shape
from chain.crypto import sha256
from chain.errors import DecodeError, SignatureError, TxRejected, VecheError
from chain.governance import (
    ROSTER_PREFIX, UPGRADE_PREFIX, ProtocolSchedule, Roster, SetChange, SetHistory, UpgradeRecord, app_hash_suffix,
    apply_keys_rotate, apply_validators_update, check_protocol_upgrade, effective_height, roster_key, upgrade_key,
)
from chain.params import ChainParams
from chain.blind import verify_token
from chain.records import (
    INITIATIVE_APPROVED, INITIATIVE_REJECTED, INITIATIVE_SUBMITTED, STATUS_CLOSED, STATUS_OPEN,
    Campaign, Initiative, Progress, ballot_key, campaign_key, certified_key_key, decode_result, encode_ballot,
    encode_result, initiative_key, progress_key, read_u64, result_key, score_key, tally_key,
    u64, voter_key_key,
)
from chain.storage import KeyValueStore
from chain.tx import (
    BODY_TYPES, CampaignClose, CampaignCreate, InitiativeReview, InitiativeSubmit, KeysRotate, ProgressReport,
    ProtocolUpgrade, TokensIssued, Tx, ValidatorsUpdate, VoteCast, VotersRegister,
)

AUTO_CLOSE_REASON = "voting window ended"
META_PREFIX = b"M/"
APP_HASH_KEY = b"M/app_hash"
HEIGHT_KEY = b"M/height"
TIME_KEY = b"M/time"
TX_INDEX_PREFIX = b"T/"
NO_DEADLINE = 2**64


def reject(code: str, message: str) -> TxRejected:
    return TxRejected(message, code)


def compute_app_hash(previous: bytes, height: int, changes: dict[bytes, bytes | None], version: int = 1) -> bytes:
    """Hash chain over sorted state changes: sha256(previous ‖ u64(height) ‖ sha256(encode(changes))),
    followed by ``u64(version)`` from protocol version 2 on (``governance.app_hash_suffix``).

    ``changes`` encodes as ``[[key, value], ...]`` sorted by key bytes; a deleted key has value nil.
    """
    ordered = sorted(changes.items())   # keys are distinct: the order is the keys' (values never compared)
    return sha256(previous + u64(height) + sha256(codec.encode_pairs(ordered)) + app_hash_suffix(version))


class State:
    """Committed state. Mutated only by ``apply_changes`` after a block is durably stored."""

    def __init__(self, store: KeyValueStore, params: ChainParams) -> None:
        self.store = store
        self.params = params
        self.campaigns: dict[str, Campaign] = {}
        self.initiatives: dict[tuple[str, str], Initiative] = {}
        self.tallies: dict[tuple[str, str], int] = {}
        self.scores: dict[tuple[str, str], int] = {}   # points of scored ballots (cumulative, ordinal)
        self.results: dict[str, tuple[tuple[str, ...], bytes]] = {}
        # progress reports committed per (campaign, initiative): the next report's sequence number
        # (counting ``S/p/`` keys in the store instead scanned a synced range's whole overlay per report)
        self.progress_counts: dict[tuple[str, str], int] = {}
        self._initiative_ids: dict[str, set[str]] = {}
        self._campaign_gateways: dict[tuple[str, int, bytes], str | None] = {}
        self.history = SetHistory(params.genesis_roster(),
                                  (SetChange.decode(key, value) for key, value in store.iterate(ROSTER_PREFIX)))
        self.protocol = ProtocolSchedule(UpgradeRecord.decode(key, value) for key, value in store.iterate(UPGRADE_PREFIX))
        raw_height = store.get(HEIGHT_KEY)
        self.height = 0 if raw_height is None else read_u64(raw_height)
        raw_time = store.get(TIME_KEY)
        self.time_ms = params.genesis_time_ms if raw_time is None else read_u64(raw_time)
        self.app_hash = store.get(APP_HASH_KEY) or params.genesis_hash
        self._load_caches()
        self.next_deadline_ms = self._next_deadline()

    def _load_caches(self) -> None:
        for _, value in self.store.iterate(b"S/c/"):
            campaign = Campaign.decode(value)
            self.campaigns[campaign.campaign_id] = campaign
        for _, value in self.store.iterate(b"S/i/"):
            initiative = Initiative.decode(value)
            self._index_initiative(initiative)
        for key, value in self.store.iterate(b"S/t/"):
            campaign_id, initiative_id = key[4:].decode().split("/", 1)
            self.tallies[(campaign_id, initiative_id)] = read_u64(value)
        for key, value in self.store.iterate(b"S/s/"):
            campaign_id, initiative_id = key[4:].decode().split("/", 1)
            self.scores[(campaign_id, initiative_id)] = read_u64(value)
        for key, value in self.store.iterate(b"S/r/"):
            self.results[key[4:].decode()] = decode_result(value)
        for key, _ in self.store.iterate(b"S/p/"):   # S/p/<campaign>/<initiative>/<seq u32>
            campaign_id, initiative_id = key[4:-5].decode().split("/", 1)
            counted = self.progress_counts
            counted[(campaign_id, initiative_id)] = counted.get((campaign_id, initiative_id), 0) + 1

    def _index_initiative(self, initiative: Initiative) -> None:
        campaign_id, initiative_id = initiative.spec.campaign_id, initiative.spec.initiative_id
        self.initiatives[(campaign_id, initiative_id)] = initiative
        self._initiative_ids.setdefault(campaign_id, set()).add(initiative_id)

    def _next_deadline(self) -> int:
        ends = [c.spec.voting_end for c in self.campaigns.values() if c.status == STATUS_OPEN]
        return min(ends, default=NO_DEADLINE)

    def votes(self, campaign_id: str, initiative_id: str) -> int:
        return self.tallies.get((campaign_id, initiative_id), 0)

    # --- who may sign what (chain/governance.py) -------------------------------------------------

    def roster_at(self, height: int) -> Roster:
        """Every key in force at block ``height`` (known up to the committed height + 2)."""
        return self.history.at(height)

    def protocol_version_at(self, height: int) -> int:
        return self.protocol.version_at(height)

    def campaign_gateway(self, campaign: Campaign) -> str | None:
        """The name of the gateway a campaign named by key when it was created (it keeps it across rotations)."""
        key = (campaign.campaign_id, campaign.created_height, campaign.spec.gateway)
        if key not in self._campaign_gateways:
            roster = self.history.at(campaign.created_height)
            self._campaign_gateways[key] = roster.gateway_name(campaign.spec.gateway)
        return self._campaign_gateways[key]

    def former_gateway_keys(self, name: str) -> dict[bytes, int]:
        """Keys gateway ``name`` had before, each with the height from which it no longer signs."""
        revoked: dict[bytes, int] = {}
        previous: bytes | None = None
        for change in (self.history.change_at(0),) + self.history.changes():
            key = change.roster.gateway_key(name)
            if previous is not None and key != previous:
                revoked[previous] = change.from_height
            previous = key
        if previous is not None:
            revoked.pop(previous, None)
        return revoked

    def points(self, campaign_id: str, initiative_id: str) -> int:
        """Points of a scored campaign's initiative (0 for set ballots: their points are the votes)."""
        return self.scores.get((campaign_id, initiative_id), 0)

    def initiative_ids(self, campaign_id: str) -> set[str]:
        return self._initiative_ids.get(campaign_id, set())

    def campaign_initiatives(self, campaign_id: str) -> list[Initiative]:
        ids = sorted(self.initiative_ids(campaign_id), key=str.encode)
        return [self.initiatives[(campaign_id, initiative_id)] for initiative_id in ids]

    def is_committed_tx(self, tx_hash: bytes) -> bool:
        return self.store.get(TX_INDEX_PREFIX + tx_hash) is not None

    def begin(self, height: int, time_ms: int) -> "Execution":
        return Execution(self, height, time_ms)

    def open_campaigns_due(self, time_ms: int) -> list[str]:
        """Open campaigns whose voting window has ended at ``time_ms`` (ids in byte order)."""
        if time_ms < self.next_deadline_ms:
            return []
        return sorted((c.campaign_id for c in self.campaigns.values()
                       if c.status == STATUS_OPEN and c.spec.voting_end <= time_ms), key=str.encode)

    def apply_changes(self, execution: "Execution") -> None:
        """Adopt an execution's overlay into the caches (its writes are already stored)."""
        execution.finish()
        self.campaigns.update(execution.campaigns)
        for initiative in execution.initiatives.values():
            self._index_initiative(initiative)
        self.tallies.update(execution.tallies)
        self.scores.update(execution.scores)
        self.results.update(execution.results)
        self.progress_counts.update(execution.progress_counts)
        self.height = execution.height
        self.time_ms = execution.time_ms
        self.app_hash = execution.app_hash
        if execution.set_change is not None:
            self.history.add(execution.set_change)
        for record in execution.upgrades:
            self.protocol.add(record)
        if execution.campaigns:
            self.next_deadline_ms = self._next_deadline()


Handler = Callable[[Any, tuple[bytes, ...], bytes], None]


class Execution:
    """A write-back overlay on ``State`` for one block (or for the mempool's check state)."""

    def __init__(self, state: State, height: int, time_ms: int) -> None:
        self.state = state
        self.params = state.params
        self.height = height
        self.time_ms = time_ms
        self.writes: dict[bytes, bytes | None] = {}
        self.campaigns: dict[str, Campaign] = {}
        self.initiatives: dict[tuple[str, str], Initiative] = {}
        self.tallies: dict[tuple[str, str], int] = {}
        self.scores: dict[tuple[str, str], int] = {}
        self.results: dict[str, tuple[tuple[str, ...], bytes]] = {}
        self.progress_counts: dict[tuple[str, str], int] = {}
        self.tx_hashes: set[bytes] = set()
        self.events: list[tuple[str, str]] = []
        self.app_hash = state.app_hash
        self.roster = state.history.at(height)
        self.protocol_version = state.protocol.version_at(height)
        self.set_change: SetChange | None = None   # the roster this block's governance txs put in force at height + 2
        self.upgrades: list[UpgradeRecord] = []
        self._finished = False
        self._genesis = False
        # Ballots counted in this execution but not yet folded into ``campaigns`` (saves a
        # dataclass copy per vote; ``campaign()`` and ``finish()`` fold them).
        self._new_ballots: dict[str, int] = {}
        # The same for ballots of voter-held keys: campaign -> [ballots, keys voting for the first time].
        self._new_voter_held: dict[str, list[int]] = {}
        # Set by ``apply`` for the transaction being applied: its signatures (and token) were checked.
        self._credentials_checked = False

    # Transaction kind -> the method that applies it. Looked up per transaction rather than kept as
    # bound methods on the instance: those would tie the overlay into a reference cycle, and every
    # applied block's writes would stay in memory until the next full cycle collection.
    _HANDLERS: ClassVar[dict[str, str]] = {
        "vote.cast": "_vote",
        "voters.register": "_register",
        "campaign.create": "_create",
        "initiative.submit": "_submit",
        "initiative.review": "_review",
        "campaign.close": "_close_by_committee",
        "progress.report": "_progress",
        "tokens.issued": "_tokens_issued",
        "validators.update": "_validators_update",
        "keys.rotate": "_keys_rotate",
        "protocol.upgrade": "_protocol_upgrade",
    }

    def _handler(self, kind: str) -> Handler | None:
        name = self._HANDLERS.get(kind)
        handler: Handler | None = getattr(self, name) if name is not None else None
        return handler

    # --- reads through the overlay -------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.state.store.get(key)

    def campaign(self, campaign_id: str) -> Campaign | None:
        pending = self._new_ballots.pop(campaign_id, 0)
        voter_held = self._new_voter_held.pop(campaign_id, None)
        found = self._campaign(campaign_id)
        if pending and found is not None:
            found = replace(found, total_ballots=found.total_ballots + pending)
            if voter_held is not None:
                found = replace(found, voter_held_ballots=found.voter_held_ballots + voter_held[0],
                                certified_voters=found.certified_voters + voter_held[1])
            self.campaigns[campaign_id] = found
        return found

    def _campaign(self, campaign_id: str) -> Campaign | None:
        """The campaign record without this execution's pending ballot count."""
        found = self.campaigns.get(campaign_id)
        return found if found is not None else self.state.campaigns.get(campaign_id)

    def initiative(self, campaign_id: str, initiative_id: str) -> Initiative | None:
        key = (campaign_id, initiative_id)
        found = self.initiatives.get(key)
        return found if found is not None else self.state.initiatives.get(key)

    def votes(self, campaign_id: str, initiative_id: str) -> int:
        key = (campaign_id, initiative_id)
        found = self.tallies.get(key)
        return found if found is not None else self.state.tallies.get(key, 0)

    def points(self, campaign_id: str, initiative_id: str) -> int:
        key = (campaign_id, initiative_id)
        found = self.scores.get(key)
        return found if found is not None else self.state.scores.get(key, 0)

    def campaign_initiatives(self, campaign_id: str) -> list[Initiative]:
        ids = set(self.state.initiative_ids(campaign_id))
        ids.update(i for c, i in self.initiatives if c == campaign_id)
        found = (self.initiative(campaign_id, initiative_id) for initiative_id in sorted(ids, key=str.encode))
        return [initiative for initiative in found if initiative is not None]

    def all_campaigns(self) -> dict[str, Campaign]:
        for campaign_id in list(self._new_ballots):
            self.campaign(campaign_id)
        merged = dict(self.state.campaigns)
        merged.update(self.campaigns)
        return merged

    # --- block life cycle ----------------------------------------------------------------------

    def begin_block(self) -> None:
        """Close every open campaign whose voting window ended at or before this block's time.

        Runs before the block's transactions; campaigns close in ascending byte order of their ids.
        """
        due = set(self.state.open_campaigns_due(self.time_ms))
        due.update(c.campaign_id for c in self.campaigns.values()
                   if c.status == STATUS_OPEN and c.spec.voting_end <= self.time_ms)
        for campaign_id in sorted(due, key=str.encode):
            campaign = self.campaign(campaign_id)
            if campaign is not None and campaign.status == STATUS_OPEN:
                self._close(campaign, AUTO_CLOSE_REASON)

    def apply_initial(self, kind: str, body: Any) -> None:
        """Genesis data: apply a body as if the committee had signed it.

        Submission and review windows do not apply to genesis data (a demo campaign may open
        its vote at the genesis time); every other rule does.
        """
        signers = tuple(sorted(self.roster.committee_keys))[: self.roster.threshold]
        handler = self._handler(kind)
        if handler is None:
            raise reject("unknown_kind", f"unknown transaction kind {kind!r}")
        if not isinstance(body, BODY_TYPES[kind]):
            raise reject("malformed", f"genesis data of kind {kind!r} has a body of another type")
        try:
            body.validate()
        except DecodeError as exc:
            raise reject("malformed", f"genesis data of kind {kind!r}: {exc.message}") from exc
        self._genesis = True
        try:
            handler(body, signers, b"")
        finally:
            self._genesis = False

    def apply(self, tx: Tx, *, signatures_checked: bool = False) -> None:
        """Apply one transaction fully or raise ``TxRejected`` with nothing changed."""
        if self._finished:
            raise VecheError("this execution is finished; start a new one", "execution_finished")
        if tx.chain_id != self.params.chain_id:
            raise reject("wrong_chain", f"transaction is for chain {tx.chain_id!r}, this is {self.params.chain_id!r}")
        tx_hash = tx.hash
        if tx_hash in self.tx_hashes or self.state.is_committed_tx(tx_hash):
            raise reject("replay", "this transaction has already been committed")
        if not signatures_checked:
            try:
                tx.verify_signatures(cache_keys=tx.kind != "vote.cast")
            except SignatureError as exc:
                raise reject("bad_signature", exc.message) from exc
        handler = self._handler(tx.kind)
        if handler is None:  # decode_tx already rejects unknown kinds
            raise reject("unknown_kind", f"unknown transaction kind {tx.kind!r}")
        self._credentials_checked = signatures_checked
        try:
            handler(tx.body, tx.signers, tx_hash)
        finally:
            self._credentials_checked = False
        self.tx_hashes.add(tx_hash)

    def _dispatch(self, kind: str, body: Any, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        handler = self._handler(kind)
        if handler is None:
            raise reject("unknown_kind", f"unknown transaction kind {kind!r}")
        handler(body, signers, tx_hash)

    def finish(self) -> tuple[dict[bytes, bytes | None], bytes]:
        """Write dirty records into the overlay and return (changes, app hash). Idempotent."""
        if not self._finished:
            for campaign_id in list(self._new_ballots):
                self.campaign(campaign_id)
            for campaign in self.campaigns.values():
                self.writes[campaign_key(campaign.campaign_id)] = campaign.encode()
            for (campaign_id, initiative_id), initiative in self.initiatives.items():
                self.writes[initiative_key(campaign_id, initiative_id)] = initiative.encode()
            for (campaign_id, initiative_id), count in self.tallies.items():
                self.writes[tally_key(campaign_id, initiative_id)] = u64(count)
            for (campaign_id, initiative_id), points in self.scores.items():
                self.writes[score_key(campaign_id, initiative_id)] = u64(points)
            for campaign_id, (winners, result_hash) in self.results.items():
                self.writes[result_key(campaign_id)] = encode_result(winners, result_hash)
            if self.set_change is not None:
                self.writes[roster_key(self.set_change.from_height)] = self.set_change.encode()
            for record in self.upgrades:
                self.writes[upgrade_key(record.height)] = record.encode()
            self.app_hash = compute_app_hash(self.state.app_hash, self.height, self.writes, self.protocol_version)
            self._finished = True
        return self.writes, self.app_hash

    # --- permission helpers --------------------------------------------------------------------

    def _is_committee(self, signers: tuple[bytes, ...]) -> bool:
        """Exactly ``threshold`` distinct committee keys (decode_tx guarantees distinct signers).

        Exactly, not at least: otherwise anyone could drop surplus signatures from a committee
        transaction and replay the same decision under a new tx hash.
        """
        return self.roster.is_committee(signers)

    def _require_committee(self, signers: Iterable[bytes], what: str) -> None:
        signer_tuple = tuple(signers)
        roster = self.roster
        if not all(key in roster.committee_keys for key in signer_tuple):
            raise reject("permission_denied", f"{what} may be signed only by committee keys in force at height "
                                              f"{self.height}")
        if len(signer_tuple) != roster.threshold or len(set(signer_tuple)) != len(signer_tuple):
            raise reject("permission_denied", f"{what} needs exactly {roster.threshold} distinct "
                                              f"committee signatures, got {len(signer_tuple)}")

    def _is_district_operator(self, signers: tuple[bytes, ...], district_id: str) -> bool:
        return len(signers) == 1 and signers[0] in self.roster.operators_of(district_id)

    def _open_campaign(self, campaign_id: str) -> Campaign:
        campaign = self.campaign(campaign_id)
        if campaign is None:
            raise reject("unknown_campaign", f"campaign {campaign_id!r} does not exist")
        if campaign.status != STATUS_OPEN:
            raise reject("campaign_closed", f"campaign {campaign_id!r} is closed")
        return campaign

    # --- transaction handlers (every check before the first write) ------------------------------

    def _create(self, body: CampaignCreate, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        self._require_committee(signers, "campaign.create")
        if self._campaign(body.campaign_id) is not None:
            raise reject("duplicate", f"campaign {body.campaign_id!r} already exists")
        if body.gateway not in self.roster.gateway_keys:
            raise reject("unknown_gateway", f"the campaign names a gateway key that is not in force at height "
                                            f"{self.height}")
        if body.voting_end <= self.time_ms:
            raise reject("outside_window", "the campaign's voting window has already ended")
        self.campaigns[body.campaign_id] = Campaign(body, STATUS_OPEN, self.height, 0, 0, "", 0, 0, 0)
        self.events.append(("campaign.created", body.campaign_id))

    def _submit(self, body: InitiativeSubmit, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        campaign = self._open_campaign(body.campaign_id)
        spec = campaign.spec
        by_committee = self._is_committee(signers)
        if not by_committee and not self._is_district_operator(signers, body.district_id):
            raise reject("permission_denied",
                         f"only the operator of district {body.district_id!r} or the committee may submit here")
        if not campaign.has_district(body.district_id):
            raise reject("unknown_district", f"district {body.district_id!r} is not part of this campaign")
        in_window = spec.submission_start <= self.time_ms < spec.submission_end and self.time_ms < spec.voting_start
        if not in_window and not self._genesis:
            raise reject("outside_window", "initiatives can be submitted only in the submission window")
        if self.initiative(body.campaign_id, body.initiative_id) is not None:
            raise reject("duplicate", f"initiative {body.initiative_id!r} already exists in this campaign")
        if not spec.min_cost <= body.cost <= spec.max_cost:
            raise reject("cost_out_of_range",
                         f"cost {body.cost} is outside this campaign's range {spec.min_cost}..{spec.max_cost}")
        if spec.categories and body.category not in spec.categories:
            raise reject("unknown_category", f"category {body.category!r} is not allowed in this campaign")
        status = INITIATIVE_APPROVED if by_committee else INITIATIVE_SUBMITTED
        self.initiatives[(body.campaign_id, body.initiative_id)] = Initiative(
            body, status, "", self.height, signers[0])
        self.campaigns[campaign.campaign_id] = replace(campaign, initiative_count=campaign.initiative_count + 1)

    def _review(self, body: InitiativeReview, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        self._require_committee(signers, "initiative.review")
        campaign = self._open_campaign(body.campaign_id)
        if self.time_ms >= campaign.spec.voting_start and not self._genesis:
            raise reject("outside_window", "initiatives can be reviewed only before voting opens")
        initiative = self.initiative(body.campaign_id, body.initiative_id)
        if initiative is None:
            raise reject("unknown_initiative", f"initiative {body.initiative_id!r} does not exist")
        status = INITIATIVE_APPROVED if body.approve else INITIATIVE_REJECTED
        self.initiatives[(body.campaign_id, body.initiative_id)] = replace(
            initiative, status=status, review_reason=body.reason)

    def _register(self, body: VotersRegister, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        campaign = self._open_campaign(body.campaign_id)
        self._check_gateway_signer(campaign, signers, "register voter keys")
        if campaign.registered + campaign.tokens_issued + len(body.voter_keys) > campaign.spec.registration_cap:
            raise reject("registration_cap",
                         f"registration would exceed the gateway's cap of {campaign.spec.registration_cap} voters "
                         "(registered keys and issued tokens together)")
        keys = [voter_key_key(body.campaign_id, voter_key) for voter_key in body.voter_keys]
        for key in keys:
            if self.get(key) is not None:
                raise reject("duplicate", "a voter key in this batch is already registered")
        for key in keys:
            self.writes[key] = b""
        self.campaigns[campaign.campaign_id] = replace(campaign, registered=campaign.registered + len(keys))

    def _check_gateway_signer(self, campaign: Campaign, signers: tuple[bytes, ...], what: str) -> None:
        """The campaign's gateway signs with its key in force now, whatever key the campaign was created with
        (its certification key, if any, is the campaign's own and does not rotate with it)."""
        name = self.state.campaign_gateway(campaign)
        current = self.roster.gateway_key(name) if name is not None else None
        if current is not None and signers == (current,):
            return
        if name is not None and len(signers) == 1:
            revoked = self.state.former_gateway_keys(name).get(signers[0])
            if revoked is not None:
                raise reject("revoked_key", f"this key of gateway {name!r} was revoked at height {revoked} "
                                            f"(keys.rotate); it can no longer {what}")
        raise reject("permission_denied", f"only the campaign's gateway may {what}")

    def _vote(self, body: VoteCast, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        campaign_id = body.campaign_id
        campaign = self._campaign(campaign_id)
        if campaign is None:
            raise reject("unknown_campaign", f"campaign {campaign_id!r} does not exist")
        spec = campaign.spec
        if campaign.status != STATUS_OPEN or not spec.voting_start <= self.time_ms < spec.voting_end:
            raise reject("outside_window", "voting is not open for this campaign")
        if len(signers) != 1:
            raise reject("permission_denied", "a ballot carries exactly one voter signature")
        voter_key = signers[0]
        if body.token:
            self._check_token(campaign, body, voter_key)
        elif self.get(voter_key_key(campaign_id, voter_key)) is None:
            raise reject("not_registered", "the voter key is not registered for this campaign")
        district_id = body.district_id
        if district_id not in campaign.district_set:
            raise reject("unknown_district", f"district {district_id!r} is not part of this campaign")
        ballot = spec.ballot
        choices = body.choices
        check_ballot_shape(ballot, body)
        costs: list[int] = []
        for choice in choices:
            initiative = self.initiative(campaign_id, choice)
            if initiative is None or initiative.status != INITIATIVE_APPROVED:
                raise reject("invalid_choice", f"initiative {choice!r} is not on this campaign's ballot")
            if initiative.spec.district_id != district_id:
                raise reject("invalid_choice", f"initiative {choice!r} is not in district {district_id!r}")
            costs.append(initiative.spec.cost)
        if ballot.type != "choose-1" and ballot.type != "approval":
            check_ballot_limits(ballot, body, costs, campaign.district_budget(district_id))
        slot = district_id if spec.ballots_per_voter == "district" else ""
        key = ballot_key(campaign_id, voter_key, slot)
        if self.get(key) is not None:
            if body.token:
                raise reject("token_used", "this voter key and its token have already cast a ballot" +
                             (" in this district" if slot else " in this campaign"))
            raise reject("double_vote", "this voter has already voted" +
                         (" in this district" if slot else " in this campaign"))
        nullifier = certified_key_key(campaign_id, voter_key) if body.token else b""
        first_use = bool(nullifier) and self.get(nullifier) is None
        if first_use:
            pending = self._new_voter_held.get(campaign_id, (0, 0))[1]
            if campaign.certified_voters + pending >= campaign.tokens_issued:
                raise reject("tokens_exhausted", f"every one of the {campaign.tokens_issued} tokens the gateway "
                                                 "counted in tokens.issued has already voted")
        # -- every check passed: write --
        self.writes[key] = encode_ballot(tx_hash, choices, body.points)
        if nullifier:
            if first_use:
                self.writes[nullifier] = b""
            counts = self._new_voter_held.setdefault(campaign_id, [0, 0])
            counts[0] += 1
            counts[1] += first_use
        tallies = self.tallies
        for choice in choices:
            tallies[(campaign_id, choice)] = self.votes(campaign_id, choice) + 1
        if body.points:
            scores = self.scores
            for choice, points in zip(choices, body.points):
                scores[(campaign_id, choice)] = self.points(campaign_id, choice) + points
        self._new_ballots[campaign_id] = self._new_ballots.get(campaign_id, 0) + 1

    def _check_token(self, campaign: Campaign, body: VoteCast, voter_key: bytes) -> None:
        """A voter-held ballot: the campaign takes them, and the token certifies this key for it."""
        spec = campaign.spec
        if not spec.voter_held:
            raise reject("no_certification", "this campaign names no certification key: it takes no ballots of "
                                              "voter-held keys")
        if body.token_campaign_id != body.campaign_id:
            raise reject("token_wrong_campaign", f"the token was issued for campaign {body.token_campaign_id!r}, "
                                                 f"not {body.campaign_id!r}")
        if self._credentials_checked:
            return
        try:
            verify_token(spec.certification_key, self.params.chain_id, body.campaign_id, voter_key, body.token)
        except SignatureError as exc:
            raise reject("bad_token", "the token is not the campaign's certification of this voter key "
                                      f"({exc.message})") from exc

    def _tokens_issued(self, body: TokensIssued, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        campaign = self._open_campaign(body.campaign_id)
        self._check_gateway_signer(campaign, signers, "count the tokens it issued")
        if not campaign.spec.voter_held:
            raise reject("no_certification", "this campaign names no certification key: it has no tokens")
        if campaign.registered + campaign.tokens_issued + body.count > campaign.spec.registration_cap:
            raise reject("registration_cap",
                         f"{body.count} more tokens would exceed the gateway's cap of "
                         f"{campaign.spec.registration_cap} voters (registered keys and issued tokens together)")
        self.campaigns[campaign.campaign_id] = replace(campaign, tokens_issued=campaign.tokens_issued + body.count)

    def _close_by_committee(self, body: CampaignClose, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        self._require_committee(signers, "campaign.close")
        campaign = self._open_campaign(body.campaign_id)
        self._close(campaign, body.reason)

    def _close(self, campaign: Campaign, reason: str) -> None:
        closed = campaign.closed(self.height, self.time_ms, reason)
        result = None
        if closed.spec.rule.name != "equal-shares":
            from chain.results import compute_counting_result  # late import: keeps rule code off import

            result = compute_counting_result(self, closed)
        self.campaigns[campaign.campaign_id] = closed
        if result is not None:
            self.results[campaign.campaign_id] = result
        self.events.append(("campaign.closed", campaign.campaign_id))

    def _progress(self, body: ProgressReport, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        campaign = self.campaign(body.campaign_id)
        if campaign is None:
            raise reject("unknown_campaign", f"campaign {body.campaign_id!r} does not exist")
        initiative = self.initiative(body.campaign_id, body.initiative_id)
        if initiative is None or initiative.status != INITIATIVE_APPROVED:
            raise reject("unknown_initiative", f"initiative {body.initiative_id!r} is not an approved initiative")
        if not self._is_committee(signers) and not self._is_district_operator(signers, initiative.spec.district_id):
            raise reject("permission_denied", "only the committee or the district's operator may report progress")
        if campaign.status != STATUS_CLOSED:
            raise reject("campaign_open", "progress can be reported only after the vote has closed")
        key = (body.campaign_id, body.initiative_id)
        pending = self.progress_counts.get(key)
        seq = pending if pending is not None else self.state.progress_counts.get(key, 0)   # reports so far
        record = Progress(body, self.height, self.time_ms, signers[0])
        self.writes[progress_key(body.campaign_id, body.initiative_id, seq)] = record.encode()
        self.progress_counts[key] = seq + 1


    # --- governance (chain/governance.py) -------------------------------------------------------

    def _latest_roster(self) -> Roster:
        return self.set_change.roster if self.set_change is not None else self.state.history.latest().roster

    def _record_roster(self, roster: Roster, kind: str, tx_hash: bytes) -> None:
        previous = self.set_change.txs if self.set_change is not None else ()
        self.set_change = SetChange(effective_height(self.height), self.height, roster, previous + ((kind, tx_hash),))
        self.events.append((kind, str(effective_height(self.height))))

    def _validators_update(self, body: ValidatorsUpdate, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        self._require_committee(signers, "validators.update")
        in_force_before = self.state.history.at(effective_height(self.height) - 1).validators
        roster = apply_validators_update(self._latest_roster(), in_force_before, body)
        self._record_roster(roster, "validators.update", tx_hash)

    def _keys_rotate(self, body: KeysRotate, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        self._require_committee(signers, "keys.rotate")
        self._record_roster(apply_keys_rotate(self._latest_roster(), body), "keys.rotate", tx_hash)

    def _protocol_upgrade(self, body: ProtocolUpgrade, signers: tuple[bytes, ...], tx_hash: bytes) -> None:
        self._require_committee(signers, "protocol.upgrade")
        schedule = ProtocolSchedule(self.state.protocol.upgrades + self.upgrades)
        check_protocol_upgrade(schedule, body, self.height)
        self.upgrades.append(UpgradeRecord(body.height, body.version, self.height, tx_hash))
        self.events.append(("protocol.upgrade", str(body.height)))
