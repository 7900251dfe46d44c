"""Blind tokens for voter-held keys: one per (campaign, citizen), counted on the chain before it is given.

A logged-in citizen's device sends a *blinded* message (RFC 9474 Blind: a uniformly random number
modulo the certification key's n, unrelated to the voter key it hides). ``TokenDesk.issue``:

1. refuses a second token for the same (campaign, citizen) — the citizen is named by the vault index
   (a keyed hash of the phone or card) — unless it is the *same* blinded message again (a retry after
   a lost answer gets the same answer);
2. queues the request; every ``batch_ms`` the queue is flushed: the blind signatures are computed
   (``gateway.certifier``, checked against the public key), and one ``tokens.issued`` record per
   campaign counts them. One synced LevelDB batch stores the record (pending, ``I/``) and, per citizen,
   ``T/<campaign>/<index>`` → ``[record hash, blinded message, blind signature]`` — written in key
   order, which is the order of keyed hashes, not of arrival;
3. answers only once the record is committed (the chain then counts the token before any ballot can
   spend it: PROTOCOL §16.5 refuses ballots of more voter-held keys than tokens counted). A refused
   record frees its citizens' slots again.

What is stored links a citizen to a *batch* (whose time is public on the chain), never to a voter key
or a token: the blinded message and the blind signature are independent of the token the device
unblinds (RSA blinding is perfect). Nothing here is logged per citizen. Records are deleted with the
vault when the campaign closes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from chain import codec
from chain.crypto import SigningKey
from chain.errors import DecodeError
from chain.storage import KeyValueStore
from chain.tx import MAX_TOKENS_PER_RECORD, make_tokens_issued
from gateway.certifier import Certifier, CertifyError
from gateway.errors import Refusal
from gateway.pipeline import BallotPipeline
from gateway.vault import TOKEN_BATCH_KEY, Writes, decode_u64, encode_u64, token_key

log = logging.getLogger("veche.gateway.tokens")


@dataclass(frozen=True, slots=True)
class TokenRecord:
    record_hash: bytes      # the tokens.issued transaction that counts this token
    blinded_msg: bytes
    blind_sig: bytes

    def encode(self) -> bytes:
        return codec.encode([self.record_hash, self.blinded_msg, self.blind_sig])

    @classmethod
    def decode(cls, data: bytes) -> "TokenRecord":
        raw = codec.decode(data)
        if not isinstance(raw, list) or len(raw) != 3 or not all(isinstance(part, bytes) for part in raw):
            raise DecodeError("malformed token record")
        return cls(raw[0], raw[1], raw[2])


@dataclass(slots=True, eq=False)
class TokenRequest:
    campaign_id: str
    index: bytes
    blinded_msg: bytes
    answer: asyncio.Future[bytes] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class TokenDesk:
    def __init__(self, store: KeyValueStore, pipeline: BallotPipeline, certifier: Certifier,
                 gateway_key: SigningKey, chain_id: str, *, batch_ms: int = 20) -> None:
        self.store = store
        self.pipeline = pipeline
        self.certifier = certifier
        self.gateway_key = gateway_key
        self.chain_id = chain_id
        self.batch_s = batch_ms / 1000
        self._queue: list[TokenRequest] = []
        self._flush_scheduled = False
        self._lock = asyncio.Lock()
        self.stats = {"tokens": 0, "records": 0}

    @property
    def modulus(self) -> bytes:
        return self.certifier.modulus

    def record(self, campaign_id: str, index: bytes) -> TokenRecord | None:
        raw = self.store.get(token_key(campaign_id, index))
        return None if raw is None else TokenRecord.decode(raw)

    def has_token(self, campaign_id: str, index: bytes) -> bool:
        return self.store.get(token_key(campaign_id, index)) is not None or any(
            r.campaign_id == campaign_id and r.index == index for r in self._queue)

    async def issue(self, campaign_id: str, index: bytes, blinded_msg: bytes) -> bytes:
        """The blind signature for this citizen's blinded message, once it is counted on the chain.

        The caller holds the citizen's lock (``views_vote``), so two requests of one citizen never race.
        """
        if len(blinded_msg) != self.certifier.modulus_bytes:
            raise Refusal("err_bad_token_request", status=400, reason="bad_token_request")
        existing = self.record(campaign_id, index)
        if existing is not None:
            if existing.blinded_msg != blinded_msg:
                raise Refusal("err_token_issued", status=409, reason="second_token")
            await self._committed(existing.record_hash)   # a retry: the same answer, once counted
            return existing.blind_sig
        request = TokenRequest(campaign_id, index, blinded_msg)
        self._queue.append(request)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(self.batch_s, self._start_flush)
        return await asyncio.shield(request.answer)

    async def _committed(self, record_hash: bytes) -> None:
        tracker = self.pipeline.trackers.get(record_hash)
        if tracker is None:
            return                      # resolved: committed (a refused record deletes its token records)
        outcome = await asyncio.shield(tracker.future)
        if not outcome.committed:
            raise Refusal("err_tokens_refused", status=409, reason="tokens_refused")

    def _start_flush(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush())
        task.add_done_callback(_report)

    async def _flush(self) -> None:
        async with self._lock:
            self._flush_scheduled = False
            batch, self._queue = self._queue, []
        by_campaign: dict[str, list[TokenRequest]] = {}
        for request in batch:
            by_campaign.setdefault(request.campaign_id, []).append(request)
        await asyncio.gather(*(self._issue_campaign(campaign_id, requests)
                               for campaign_id, requests in by_campaign.items()))

    async def _issue_campaign(self, campaign_id: str, requests: list[TokenRequest]) -> None:
        for start in range(0, len(requests), MAX_TOKENS_PER_RECORD):
            await self._issue_record(campaign_id, requests[start:start + MAX_TOKENS_PER_RECORD])

    async def _issue_record(self, campaign_id: str, requests: list[TokenRequest]) -> None:
        try:
            answers = await asyncio.to_thread(self._sign_all, requests)
        except Exception as exc:  # never leave a citizen waiting
            _fail(requests, Refusal("err_internal", status=500, reason="internal"))
            log.error("blind signatures failed: %s", exc)
            return
        signed = [(r, a) for r, a in zip(requests, answers) if a is not None]
        for request, answer in zip(requests, answers):
            if answer is None and not request.answer.done():
                request.answer.set_exception(Refusal("err_bad_token_request", status=400, reason="bad_token_request"))
        if not signed:
            return
        async with self._lock:
            batch = decode_u64(self.store.get(TOKEN_BATCH_KEY) or encode_u64(0))
            record = make_tokens_issued(self.chain_id, self.gateway_key, campaign_id, batch, len(signed))
            writes: Writes = {TOKEN_BATCH_KEY: encode_u64(batch + 1)}
            for request, answer in sorted(signed, key=lambda pair: pair[0].index):
                writes[token_key(campaign_id, request.index)] = TokenRecord(record.hash, request.blinded_msg,
                                                                            answer).encode()
            try:
                tracker = await self.pipeline.submit_record(campaign_id, record, writes)
            except Refusal as refusal:
                _fail([r for r, _ in signed], refusal)
                return
            except Exception as exc:
                log.error("could not store a tokens.issued record: %s", exc)
                _fail([r for r, _ in signed], Refusal("err_storage", status=503, reason="storage_error",
                                                      retry_after=5))
                return
        self.stats["records"] += 1
        outcome = await asyncio.shield(tracker.future)
        if outcome.committed:
            self.stats["tokens"] += len(signed)
            for request, answer in signed:
                if not request.answer.done():
                    request.answer.set_result(answer)
            return
        log.warning("tokens.issued record for %d tokens refused: %s %s", len(signed), outcome.code, outcome.message)
        self.store.write({token_key(campaign_id, r.index): None for r, _ in signed}, sync=True)
        reason = "registration_cap" if outcome.code == "registration_cap" else "tokens_refused"
        _fail([r for r, _ in signed], Refusal("err_tokens_refused", status=409, reason=reason))

    def _sign_all(self, requests: list[TokenRequest]) -> list[bytes | None]:
        answers: list[bytes | None] = []
        for request in requests:
            try:
                answers.append(self.certifier.blind_sign(request.blinded_msg))
            except CertifyError:
                answers.append(None)
        return answers


def _fail(requests: list[TokenRequest], refusal: Refusal) -> None:
    for request in requests:
        if not request.answer.done():
            request.answer.set_exception(refusal)


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("token batch failed: %s", task.exception())
