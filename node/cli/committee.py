"""How every committee command runs: signed here with k keys, or prepared for k members to sign apart.

``veche campaign create|close``, ``initiative review``, ``validators update``, ``keys rotate`` and
``upgrade schedule`` take either ``--key K`` (repeated k times, every key on this machine) or
``--prepare FILE`` (write a signing request, node/cli/requests.py, for ``veche sign`` and
``veche submit``). Either way the committee, the gateways and the district operators are those in
force *now* (``GET /api/v1/validators``), not the genesis file's: keys rotate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from chain.crypto import SigningKey
from chain.governance import effective_height
from chain.tx import GOVERNANCE_KINDS, Tx, Wire, sign_tx
from genesis.model import Genesis
from node.cli_ops import (
    EXIT_BAD_INPUT, OperatorInputError, cli_errors, committee_options, fail, read_keys, report_outcome,
)
from node.cli.requests import SigningRequest, write_request
from node.client import NodeApiError, NodeClient, NodeProtocolError, TxOutcome, fetch_genesis, submit_and_wait


@dataclass(frozen=True, slots=True)
class ChainView:
    """What the node says is in force at its next height, under a genesis whose hash it proved."""

    genesis: Genesis
    height: int                                  # the height the roster is in force at (the next block)
    committee: tuple[tuple[str, bytes], ...]
    threshold: int
    gateways: dict[str, bytes]
    district_operators: tuple[tuple[str, bytes], ...]
    validators: tuple[dict[str, Any], ...]

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    def committee_name(self, public_key: bytes) -> str | None:
        return next((name for name, key in self.committee if key == public_key), None)

    def check_signers(self, keys: Sequence[SigningKey], what: str) -> None:
        """Every key a committee key in force, and exactly k of them (the chain wants exactly k)."""
        for key in keys:
            if self.committee_name(key.public_key) is None:
                raise OperatorInputError(f"key {key.public_key.hex()} is not a committee key in force at height "
                                         f"{self.height} on chain {self.chain_id!r}; {what} needs committee keys")
        if len(keys) != self.threshold:
            raise OperatorInputError(f"{what} needs exactly {self.threshold} committee keys (--key ... --key ...), "
                                     f"got {len(keys)}; or prepare it with --prepare FILE for members to sign apart")


def _hex_key(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 64:
        raise NodeProtocolError(f"/api/v1/validators: {what} is not a 64-hex-digit key")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise NodeProtocolError(f"/api/v1/validators: {what} is not hex") from exc


async def fetch_chain_view(client: NodeClient) -> ChainView:
    genesis = await fetch_genesis(client)
    try:
        roster = await client.validators()
    except NodeApiError as exc:
        if exc.status != 404:
            raise
        params = genesis.params   # a node from before set changes: the genesis roster is in force
        return ChainView(genesis, 0, params.committee_members(), params.committee_threshold, dict(params.gateways),
                         params.district_operators, tuple({"name": v.name, "public_key": v.public_key.hex()}
                                                          for v in params.validators.validators))
    try:
        committee = roster["committee"]
        members = tuple((str(m["name"]), _hex_key(m["public_key"], "a committee key")) for m in committee["members"])
        threshold = committee["threshold"]
        gateways = {str(g["name"]): _hex_key(g["public_key"], "a gateway key") for g in roster["gateways"]}
        operators = tuple((str(o["district_id"]), _hex_key(o["public_key"], "an operator key"))
                          for o in roster["district_operators"])
        validators = tuple(v for v in roster["validators"] if isinstance(v, dict))
        height = roster["height"]
    except (KeyError, TypeError) as exc:
        raise NodeProtocolError(f"/api/v1/validators answered an unexpected document: {exc!r}") from exc
    if not isinstance(threshold, int) or not isinstance(height, int):
        raise NodeProtocolError("/api/v1/validators: threshold and height are integers")
    return ChainView(genesis, height, members, threshold, gateways, operators, validators)


BuildBody = Callable[[ChainView], tuple[str, Wire]]


__all__ = ["ChainView", "committee_options", "fetch_chain_view", "prepare_request", "report_governance",
           "run_committee_command"]


def run_committee_command(nodes: Sequence[str], key_files: Sequence[str], prepare: str | None, wait_s: float,
                          build: BuildBody, *, what: str) -> TxOutcome | None:
    """Sign here with ``key_files`` and submit, or write a signing request to ``prepare``."""
    if bool(key_files) == (prepare is not None):
        fail("give committee keys (--key FILE, k times) or --prepare FILE, not both and not neither", EXIT_BAD_INPUT)
    if prepare is not None:
        with cli_errors():
            request = asyncio.run(prepare_request(nodes, build))
            write_request(prepare, request)
        print_prepared(prepare, request)
        return None
    with cli_errors():
        keys = read_keys(key_files)

    async def flow() -> tuple[TxOutcome, Tx]:
        async with NodeClient(nodes) as client:
            view = await fetch_chain_view(client)
            kind, body = build(view)
            view.check_signers(keys, what)
            tx = sign_tx(kind, view.chain_id, body, keys)
            click.echo(f"tx {tx.hash.hex()}")
            return await submit_and_wait(client, tx.raw, tx.hash.hex(), timeout=wait_s), tx

    with cli_errors():
        outcome, tx = asyncio.run(flow())
    report_governance(outcome, tx.kind)
    return outcome


def report_governance(outcome: TxOutcome, kind: str) -> None:
    """The usual outcome lines; a committed set change also says from which height it is in force."""
    report_outcome(outcome)
    if kind in ("validators.update", "keys.rotate") and outcome.height is not None:
        click.echo(f"in force from height {effective_height(outcome.height)}")
    elif kind in GOVERNANCE_KINDS and outcome.height is not None:
        click.echo("scheduled")


async def prepare_request(nodes: Sequence[str], build: BuildBody) -> SigningRequest:
    async with NodeClient(nodes) as client:
        view = await fetch_chain_view(client)
    kind, body = build(view)
    body.validate()
    return SigningRequest(view.chain_id, view.genesis.hash, kind, body, view.threshold, list(view.committee),
                          view.height, int(time.time() * 1000))


def print_prepared(path: str, request: SigningRequest) -> None:
    click.echo(f"signing request written to {path}")
    for line in request.summary():
        click.echo(f"  {line}")
    click.echo(f"signing hash {request.signing_hash.hex()}  (compare it with the other members out of band)")
    click.echo(f"needs {request.committee_threshold} of the {len(request.committee_members)} committee members: "
               f"on each member's machine `veche sign {path} --key KEY`, then `veche submit {path} --node URL`")
