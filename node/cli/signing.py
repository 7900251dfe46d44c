"""``veche sign FILE --key K`` and ``veche submit FILE --node URL``: k-of-n from separate machines.

``sign`` runs offline on one committee member's machine: it decodes the request, shows what the
bytes say (not what the file claims), checks the signatures already on it, and adds this member's.
``submit`` checks every signature, asks the node which committee is in force, and sends the
transaction once k members of it signed — or says which members are missing.
"""

from __future__ import annotations

import asyncio
import time

import click

from chain.crypto import read_key_file
from chain.tx import Tx
from node.cli.committee import fetch_chain_view, report_governance
from node.cli.requests import SigningRequest, read_request, write_request
from node.cli_ops import DEFAULT_WAIT_S, EXIT_BAD_INPUT, OperatorInputError, cli_errors, fail
from node.client import NodeClient, TxOutcome, submit_and_wait


def show(request: SigningRequest) -> None:
    click.echo(f"chain {request.chain_id} (genesis {request.genesis_hash.hex()})")
    click.echo(f"transaction {request.kind}:")
    for line in request.summary():
        click.echo(f"  {line}")
    click.echo(f"signing hash {request.signing_hash.hex()}")
    signed = ", ".join(request.member_name(key) for key in sorted(request.signatures)) or "nobody yet"
    click.echo(f"signed by {len(request.signatures)} of the {request.committee_threshold} needed: {signed}")


@click.command("sign")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--key", "key_file", required=True, metavar="FILE", help="This committee member's key file.")
@click.option("--yes", is_flag=True, help="Sign without asking (the summary is still printed).")
def sign_command(file: str, key_file: str, yes: bool) -> None:
    """Add this committee member's signature to the signing request FILE."""
    with cli_errors():
        request = read_request(file)
        request.check_signatures()
        request.check_open(int(time.time() * 1000))
        key = read_key_file(key_file)
    show(request)
    if key.public_key in request.signatures:
        fail(f"this key ({request.member_name(key.public_key)}) has already signed this request", EXIT_BAD_INPUT)
    if all(member != key.public_key for _, member in request.committee_members):
        click.echo(f"warning: key {key.public_key.hex()} was not a committee key when the request was prepared "
                   f"(height {request.committee_height}); `veche submit` counts only keys in force then", err=True)
    if not yes and not click.confirm("sign this transaction?", default=False):
        fail("not signed", EXIT_BAD_INPUT)
    with cli_errors():
        request.add_signature(key)
        write_request(file, request)
    click.echo(f"signed by {request.member_name(key.public_key)}; {len(request.signatures)} of "
               f"{request.committee_threshold} signatures")


@click.command("submit")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--node", "nodes", multiple=True, required=True, metavar="URL",
              help="Node API base URL; repeat for fail-over to the next node.")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0.1), default=DEFAULT_WAIT_S, show_default=True,
              help="Seconds to wait for the commit.")
def submit_command(file: str, nodes: tuple[str, ...], wait_s: float) -> None:
    """Send the signing request FILE once k committee members signed it."""
    with cli_errors():
        request = read_request(file)
        request.check_signatures()
        request.check_open(int(time.time() * 1000))
    show(request)

    async def flow() -> tuple[TxOutcome, Tx]:
        async with NodeClient(nodes) as client:
            view = await fetch_chain_view(client)
            if view.chain_id != request.chain_id or view.genesis.hash != request.genesis_hash:
                raise OperatorInputError(f"the request is for chain {request.chain_id} (genesis "
                                         f"{request.genesis_hash.hex()}), the node runs {view.chain_id} "
                                         f"(genesis {view.genesis.hash.hex()})")
            in_force = [key for key in sorted(request.signatures) if view.committee_name(key) is not None]
            if len(in_force) < view.threshold:
                missing = [name for name, key in view.committee if key not in request.signatures]
                stale = [request.member_name(key) for key in request.signatures if key not in in_force]
                raise OperatorInputError(
                    f"needs {view.threshold} signatures by committee keys in force at height {view.height}, has "
                    f"{len(in_force)}; missing: {view.threshold - len(in_force)} more of {', '.join(missing)}"
                    + (f" (not counted, no longer committee keys: {', '.join(stale)})" if stale else ""))
            tx = request.transaction(in_force[: view.threshold])
            click.echo(f"tx {tx.hash.hex()}")
            return await submit_and_wait(client, tx.raw, tx.hash.hex(), timeout=wait_s), tx

    with cli_errors():
        outcome, tx = asyncio.run(flow())
    report_governance(outcome, tx.kind)
