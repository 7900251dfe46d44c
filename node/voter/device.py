"""The voter-held protocol of a citizen's device — the same steps as the ballot page's script
(``gateway/static/vote.js``), for tests and observers' spot checks.

1. Log in at the gateway: ``/login`` (phone) → the SMS code (read here from a development outbox
   file) → ``/login/code``; the session cookie stays with the gateway only.
2. Read the ballot page's ``data-*`` attributes (chain, campaign, district, node URLs from the
   genesis file, token URL); read the campaign's certification key **from a node**, never from the
   gateway (a gateway that showed another key would only get a token the chain refuses).
3. Make a fresh Ed25519 voter key, blind the token message (RFC 9474), ``POST`` the blinded message
   to the gateway's token URL (with the session cookie and the form's CSRF token), unblind the answer.
4. Sign the ballot with the voter key (it carries the token) and send it straight to a node's
   ``POST /api/v1/txs`` — a separate HTTP session without any cookie — then wait for the commit.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from chain import codec
from chain.ballots import check_ballot_limits, check_ballot_shape
from chain.blind import blind, finalize, token_message
from chain.crypto import SigningKey, check_rsa_modulus
from chain.errors import DecodeError, SignatureError, TxRejected, VecheError
from chain.receipt import receipt_document
from chain.records import INITIATIVE_APPROVED
from chain.tx import BallotSpec, Tx, VoteCast, make_vote, vote_body

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM = re.compile(r'<form[^>]*id="ballot"[^>]*>')
DATA = re.compile(r'data-([a-z-]+)="([^"]*)"')
CODE = re.compile(r"\b(\d{6})\b")
MAX_FORM_RETRIES = 3
MAX_FORM_WAIT_S = 5


class DeviceError(VecheError):
    code = "voter_device"


@dataclass(frozen=True, slots=True)
class CastBallot:
    tx: Tx
    voter_key: SigningKey
    height: int
    node: str
    proof: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"tx_hash": self.tx.hash.hex(), "voter_public_key": self.voter_key.public_key.hex(),
                "mode": "voter-held", "height": self.height}


def read_code(outbox: Path, phone: str, *, after: int, timeout: float = 15.0) -> str:
    """The newest code sent to ``phone`` among the outbox lines past the first ``after``."""
    deadline = time.monotonic() + timeout
    while True:
        lines = outbox.read_text(encoding="utf-8").splitlines() if outbox.exists() else []
        for line in reversed(lines[after:]):
            message = json.loads(line)
            if message.get("to") == phone:
                found = CODE.search(str(message.get("text", "")))
                if found:
                    return found.group(1)
        if time.monotonic() > deadline:
            raise DeviceError(f"no SMS code for {phone} arrived in {outbox}")
        time.sleep(0.05)


def outbox_lines(outbox: Path) -> int:
    return len(outbox.read_text(encoding="utf-8").splitlines()) if outbox.exists() else 0


class Device:
    """One citizen's device: a cookie jar for the gateway and a cookie-less session for nodes."""

    def __init__(self, gateway: str, *, timeout: float = 30.0, nodes: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        """``nodes`` replaces the node list of the ballot page (the genesis file's); ``headers`` go with
        every request to the gateway — both for tests."""
        self.gateway = gateway.rstrip("/")
        self.nodes = nodes
        timeouts = aiohttp.ClientTimeout(total=timeout)
        self.web = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=timeouts,
                                         headers=headers)
        self.api = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=timeouts)
        self.csrf = ""

    async def close(self) -> None:
        await self.web.close()
        await self.api.close()

    async def __aenter__(self) -> "Device":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _request(self, method: str, path: str, data: Any = None) -> tuple[int, str]:
        """One request to the gateway; a form sent sooner than the gateway's minimum time on a form
        (429 with a short ``Retry-After``) is sent again after that wait, as a person would."""
        for _ in range(MAX_FORM_RETRIES):
            async with self.web.request(method, self.gateway + path, data=data) as response:
                text = await response.text()
                wait = response.headers.get("Retry-After", "")
            if response.status == 429 and wait.isdigit() and int(wait) <= MAX_FORM_WAIT_S:
                await asyncio.sleep(int(wait))
                continue
            return response.status, text
        return response.status, text

    async def _page(self, method: str, path: str, data: Any = None) -> str:
        status, text = await self._request(method, path, data)
        if status >= 400:
            raise DeviceError(f"{method} {path}: the gateway answered {status}")
        found = CSRF.search(text)
        if found:
            self.csrf = found.group(1)
        return text

    async def login(self, phone: str, outbox: Path) -> None:
        await self._page("GET", "/login")
        seen = outbox_lines(outbox)
        await self._page("POST", "/login", {"phone": phone, "csrf_token": self.csrf})
        code = await asyncio.to_thread(read_code, outbox, phone, after=seen)
        await self._page("POST", "/login/code", {"code": code, "csrf_token": self.csrf})

    async def ballot_data(self, campaign_id: str, district_id: str) -> dict[str, str]:
        page = await self._page("GET", f"/c/{campaign_id}/d/{district_id}")
        form = FORM.search(page)
        if form is None:
            raise DeviceError("the ballot page has no ballot form (not logged in, voted already, or voting closed)")
        data = {name: html.unescape(value) for name, value in DATA.findall(form.group(0))}
        if "token-url" not in data:
            raise DeviceError("this campaign (or gateway) offers no voter-held keys", "no_voter_held")
        if self.nodes is not None:
            data["nodes"] = " ".join(self.nodes)
        return data

    async def node_json(self, nodes: list[str], path: str) -> tuple[str, Any]:
        failures = []
        for node in nodes:
            try:
                async with self.api.get(node + path) as response:
                    if response.status == 200:
                        return node, await response.json()
                    failures.append(f"{node}: {response.status}")
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failures.append(f"{node}: {exc}")
        raise DeviceError(f"no node answered {path}: {'; '.join(failures)}")

    async def certify(self, data: dict[str, str], voter: SigningKey, document: dict[str, Any] | None = None) -> bytes:
        """Steps 2–3: the campaign's key from a node (``document``: its ``GET /api/v1/campaigns/{id}``
        answer, read already), then blind, ask the gateway, unblind."""
        if document is None:
            _, document = await self.node_json(data["nodes"].split(), f"/api/v1/campaigns/{data['campaign']}")
        modulus = bytes.fromhex(str(document.get("campaign", {}).get("certification_key", "")))
        try:
            check_rsa_modulus(modulus)
        except SignatureError as exc:
            raise DeviceError("the campaign on the chain names no certification key") from exc
        message = token_message(data["chain"], data["campaign"], voter.public_key)
        blinded = blind(modulus, message)
        status, text = await self._request("POST", data["token-url"],
                                           {"csrf_token": self.csrf, "blinded": blinded.blinded_msg.hex()})
        try:
            answer = json.loads(text)
        except ValueError as exc:
            raise DeviceError(f"the gateway's token answer ({status}) is not JSON") from exc
        if status != 200:
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            raise DeviceError(f"the gateway refused a token ({status} {error.get('code')}): "
                              f"{error.get('message')}", str(error.get("code") or "token_refused"))
        return finalize(modulus, message, bytes.fromhex(answer["blind_sig"]), blinded.inverse)

    async def relay(self, data: dict[str, str], tx: Tx) -> float:
        """Hand the ballot to the gateway's cookie-less relay (no cookie, no session); the seconds
        within which the relay says it will send it."""
        async with self.api.post(self.gateway + data["relay"], data=codec.encode([tx.raw]),
                                 headers={"Content-Type": "application/octet-stream"}) as response:
            answer = await response.json(content_type=None)
        if response.status != 202:
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            raise DeviceError(f"the relay refused the ballot: {error.get('code')}: {error.get('message')}",
                              str(error.get("code") or "relay_refused"))
        return float(answer["send_within_seconds"])

    async def send(self, data: dict[str, str], tx: Tx, *, timeout: float = 60.0) -> tuple[str, int, dict[str, Any]]:
        """Step 4: to a node (no cookies), then wait for its commit; (node, height, proof)."""
        body = codec.encode([tx.raw])
        nodes = data["nodes"].split()
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            node = nodes[attempt % len(nodes)]
            attempt += 1
            try:
                async with self.api.post(node + "/api/v1/txs", data=body,
                                         headers={"Content-Type": "application/octet-stream"}) as response:
                    result = await response.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                result = None
            rejected = result.get("rejected", []) if isinstance(result, dict) else []
            code = rejected[0].get("code") if rejected else None
            if result is not None and response.status == 200 and code in (None, "already_pending", "already_committed"):
                break
            if code is not None and code != "tokens_exhausted":
                raise DeviceError(f"the node refused the ballot: {code}: {rejected[0].get('message')}", str(code))
            # no answer, or a node a block behind the gateway's that does not count the token yet
            if time.monotonic() > deadline:
                raise DeviceError("no node took the ballot")
            await asyncio.sleep(0.2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            node, found = await self.node_json(nodes, f"/api/v1/txs/{tx.hash.hex()}")
            if found.get("status") == "committed":
                return node, int(found["height"]), found
            if found.get("status") == "rejected":
                raise DeviceError(f"the ballot was rejected: {found.get('code')}", str(found.get("code")))
            await asyncio.sleep(0.1)
        raise DeviceError("the ballot was not committed in time")

    async def cast(self, phone: str, outbox: Path, campaign_id: str, district_id: str, choices: list[str],
                   points: list[int] | None = None) -> CastBallot:
        """``points`` aligned with ``choices`` for a cumulative ballot; for an ordinal one ``choices`` is
        the ranking, first place first, and ``points`` may be left out (the campaign's rank points)."""
        await self.login(phone, outbox)
        data = await self.ballot_data(campaign_id, district_id)
        _, document = await self.node_json(data["nodes"].split(), f"/api/v1/campaigns/{campaign_id}")
        body = checked_ballot(document, district_id, choices, points)
        voter = SigningKey.generate()
        token = await self.certify(data, voter, document)
        tx = make_vote(data["chain"], voter, campaign_id, district_id, body.choices, body.points or None, token=token)
        node, height, found = await self.send(data, tx)
        return CastBallot(tx, voter, height, node, found)


def ballot_spec(document: dict[str, Any]) -> BallotSpec:
    """The campaign's ballot from a node's ``GET /api/v1/campaigns/{id}`` answer."""
    ballot = document["campaign"]["ballot"]
    return BallotSpec(ballot["type"], ballot["min_choices"], ballot["max_choices"],
                      max_sum_cost=ballot.get("max_sum_cost", 0), min_sum_points=ballot.get("min_sum_points", 0),
                      max_sum_points=ballot.get("max_sum_points", 0), max_points=ballot.get("max_points", 0),
                      rank_points=tuple(ballot.get("rank_points", ())))


def checked_ballot(document: dict[str, Any], district_id: str, choices: list[str],
                   points: list[int] | None) -> VoteCast:
    """The ballot as the chain encodes it, after the checks the state machine will run on it
    (docs/PROTOCOL.md §14.3) — so, like the ballot page's script, a device asks for a token only for a
    ballot that can count. Ordinal: ``choices`` in rank order, ``points`` by default the campaign's
    rank points. ``DeviceError`` with the chain's code (``bad_ballot``, ``invalid_choice``, ``cost_cap``,
    ``points_max``, ``points_total``, ``rank_points``) otherwise."""
    spec = ballot_spec(document)
    campaign = document["campaign"]
    if spec.type == "ordinal" and points is None:
        points = list(spec.rank_points[:len(choices)])
    if spec.scored and points is None:
        raise DeviceError(f"a {spec.type} ballot gives each choice points (--choice ID:POINTS)", "bad_ballot")
    if points is not None and not spec.scored:
        raise DeviceError(f"a {spec.type} ballot gives no points", "bad_ballot")
    try:
        body = vote_body(campaign["campaign_id"], district_id, choices, points)
    except DecodeError as exc:
        raise DeviceError(f"not a ballot: {exc.message}", "bad_ballot") from exc
    approved = {i["initiative_id"]: i for i in document["initiatives"] if i["status"] == INITIATIVE_APPROVED}
    costs = []
    for choice in body.choices:
        initiative = approved.get(choice)
        if initiative is None or initiative["district_id"] != district_id:
            raise DeviceError(f"initiative {choice!r} is not on the ballot of district {district_id!r}",
                              "invalid_choice")
        costs.append(int(initiative["cost"]))
    budget = next((int(d.get("budget", 0)) for d in campaign["districts"] if d["district_id"] == district_id), 0)
    try:
        check_ballot_shape(spec, body)
        check_ballot_limits(spec, body, costs, budget)
    except TxRejected as exc:
        raise DeviceError(f"the chain would refuse this ballot: {exc.message}", exc.code) from exc
    return body


def receipt_from_proof(chain_id: str, genesis_hash: str, tx: Tx, found: dict[str, Any]) -> dict[str, Any]:
    """The receipt file (PROTOCOL §9) from a node's ``GET /api/v1/txs/{hash}`` answer — what the
    browser builds for its download button; ``veche receipt verify`` checks it against the genesis file."""
    proof = found["proof"]
    return receipt_document(chain_id, bytes.fromhex(genesis_hash), tx.raw, found["height"], found["index"],
                            proof["tree_size"], [bytes.fromhex(step) for step in proof["path"]],
                            bytes.fromhex(proof["header"]), bytes.fromhex(proof["certificate"]))


__all__ = ["CastBallot", "Device", "DeviceError", "checked_ballot", "read_code", "receipt_from_proof"]
