"""Operator commands: create and close campaigns, submit and review initiatives, report progress.

Each command reads its key files, fetches the chain's genesis from the node (checking its hash
against the node's status) and what is in force now (GET /api/v1/validators: keys rotate), builds and signs one transaction, submits it and waits until it is
committed or rejected. It prints the tx hash and the outcome. Exit codes (docs/OPERATOR.md):
0 committed, 1 rejected by the chain, 2 bad input (file, key, option), 3 node unreachable or
misbehaving, 4 not committed in time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from chain.crypto import SigningKey, read_key_file
from chain.errors import DecodeError, GenesisError, SignatureError, VecheError
from chain.tx import STAGES, CampaignClose, InitiativeReview, ProgressReport, Tx, Wire, sign_tx
from genesis.campaign_json import campaign_from_json, initiative_from_json
from node.client import (
    ClientError, NodeApiError, NodeClient, NodeProtocolError, NodeUnreachable, TxOutcome,
    submit_and_wait,
)

if TYPE_CHECKING:  # node/cli/committee.py imports this module
    from node.cli.committee import ChainView

EXIT_REJECTED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_TIMEOUT = 4
DEFAULT_WAIT_S = 60.0


class OperatorInputError(VecheError):
    """A file, key or option the operator must fix."""

    code = "bad_input"


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn the project's typed errors into a message on stderr and a documented exit code."""
    try:
        yield
    except (OperatorInputError, GenesisError, SignatureError, DecodeError) as exc:
        fail(exc.message, EXIT_BAD_INPUT)
    except NodeUnreachable as exc:
        fail(f"node unreachable: {exc.message}", EXIT_UNREACHABLE)
    except NodeProtocolError as exc:
        fail(f"node misbehaves: {exc.message}", EXIT_UNREACHABLE)
    except NodeApiError as exc:
        fail(f"the node refused the request: {exc}", EXIT_REJECTED)
    except ClientError as exc:
        fail(exc.message, EXIT_BAD_INPUT)
    except VecheError as exc:
        fail(exc.message, EXIT_BAD_INPUT)


def read_json_file(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OperatorInputError(f"{what} file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OperatorInputError(f"{what} file {path} cannot be read: {exc}") from None
    except ValueError as exc:
        raise OperatorInputError(f"{what} file {path} is not valid JSON: {exc}") from None


def read_keys(paths: Sequence[str]) -> list[SigningKey]:
    keys = [read_key_file(path) for path in paths]
    if len({key.public_key for key in keys}) != len(keys):
        raise OperatorInputError("the same key was given twice")
    return keys


def check_submitter(view: ChainView, key: SigningKey, district_id: str | None, what: str) -> None:
    """The key must be a committee key or a district operator's key (of ``district_id`` if known), in force now."""
    if view.committee_name(key.public_key) is not None:
        return
    districts = [d for d, k in view.district_operators if k == key.public_key]
    if not districts:
        raise OperatorInputError(f"key {key.public_key.hex()} is neither a committee key nor a district "
                                 f"operator key in force on chain {view.chain_id!r}")
    if district_id is not None and district_id not in districts:
        raise OperatorInputError(f"key {key.public_key.hex()} operates district(s) {', '.join(districts)}, "
                                 f"not {district_id!r}; {what} needs that district's key or the committee")


BuildTx = Callable[["ChainView"], Tx]


def run_transaction(nodes: Sequence[str], build: BuildTx, wait_s: float) -> TxOutcome:
    """Fetch what is in force, build the tx, submit it and wait; print the outcome; exit non-zero on failure."""
    from node.cli.committee import fetch_chain_view

    async def flow() -> TxOutcome:
        async with NodeClient(nodes) as client:
            view = await fetch_chain_view(client)
            tx = build(view)
            click.echo(f"tx {tx.hash.hex()}")
            return await submit_and_wait(client, tx.raw, tx.hash.hex(), timeout=wait_s)

    with cli_errors():
        outcome = asyncio.run(flow())
    report_outcome(outcome)
    return outcome


def report_outcome(outcome: TxOutcome) -> None:
    if outcome.status == "committed":
        click.echo(f"committed at height {outcome.height} (index {outcome.index})")
        return
    if outcome.status == "timeout":
        fail(f"tx {outcome.tx_hash}: {outcome.message}", EXIT_TIMEOUT)
    fail(f"tx {outcome.tx_hash} rejected: {outcome.code}: {outcome.message}", EXIT_REJECTED)


def node_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--node", "nodes", multiple=True, required=True, metavar="URL",
                        help="Node API base URL; repeat for fail-over to the next node.")(function)


def wait_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--wait", "wait_s", type=click.FloatRange(min=0.1), default=DEFAULT_WAIT_S,
                        show_default=True, help="Seconds to wait for the commit.")(function)


def committee_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--key FILE`` (k times) or ``--prepare FILE`` (node/cli/committee.py runs either)."""
    function = click.option("--prepare", "prepare", type=click.Path(dir_okay=False), metavar="FILE",
                            help="Write an unsigned signing request instead (members sign it apart with "
                                 "`veche sign`; `veche submit` sends it).")(function)
    return click.option("--key", "key_files", multiple=True, metavar="FILE",
                        help="Committee key file; repeat for k-of-n committees (or use --prepare).")(function)


# --- campaign ------------------------------------------------------------------------------------


@click.group("campaign")
def campaign_group() -> None:
    """Create and close campaigns (committee)."""


@campaign_group.command("create")
@click.argument("file", type=click.Path(dir_okay=False))
@committee_options
@node_option
@wait_option
def campaign_create(file: str, key_files: tuple[str, ...], prepare: str | None, nodes: tuple[str, ...],
                    wait_s: float) -> None:
    """Create the campaign described by FILE.json (see genesis/campaign_json.py)."""
    from node.cli.committee import ChainView, run_committee_command

    with cli_errors():
        document = read_json_file(file, "campaign")

    def build(view: ChainView) -> tuple[str, Wire]:
        # gateway names resolve to the key each gateway holds now (keys rotate)
        return "campaign.create", campaign_from_json(document, view.gateways, where=Path(file).name)

    run_committee_command(nodes, key_files, prepare, wait_s, build, what="campaign.create")


@campaign_group.command("close")
@click.argument("campaign_id")
@click.option("--reason", required=True, help="Public reason, recorded on the chain.")
@committee_options
@node_option
@wait_option
def campaign_close(campaign_id: str, reason: str, key_files: tuple[str, ...], prepare: str | None,
                   nodes: tuple[str, ...], wait_s: float) -> None:
    """Close campaign CAMPAIGN_ID now; its result is computed in the closing block."""
    from node.cli.committee import ChainView, run_committee_command

    with cli_errors():
        body = CampaignClose(campaign_id, reason)
        CampaignClose.from_wire(body.to_wire(), "campaign.close")

    def build(view: ChainView) -> tuple[str, Wire]:
        return "campaign.close", body

    run_committee_command(nodes, key_files, prepare, wait_s, build, what="campaign.close")


# --- initiatives ---------------------------------------------------------------------------------


@click.group("initiative")
def initiative_group() -> None:
    """Submit and review initiatives."""


@initiative_group.command("submit")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--key", "key_file", required=True, metavar="FILE", help="District operator or committee key.")
@node_option
@wait_option
def initiative_submit(file: str, key_file: str, nodes: tuple[str, ...], wait_s: float) -> None:
    """Submit the initiative described by FILE.json (see genesis/campaign_json.py)."""
    with cli_errors():
        body = initiative_from_json(read_json_file(file, "initiative"), where=Path(file).name)
        key = read_key_file(key_file)

    def build(view: ChainView) -> Tx:
        check_submitter(view, key, body.district_id, "initiative.submit")
        return sign_tx("initiative.submit", view.chain_id, body, [key])

    run_transaction(nodes, build, wait_s)


@initiative_group.command("review")
@click.argument("campaign_id")
@click.argument("initiative_id")
@click.option("--approve", is_flag=True, help="Approve the initiative for the ballot.")
@click.option("--reject", "reject_reason", metavar="REASON", help="Reject it, with a public reason.")
@committee_options
@node_option
@wait_option
def initiative_review(campaign_id: str, initiative_id: str, approve: bool, reject_reason: str | None,
                      key_files: tuple[str, ...], prepare: str | None, nodes: tuple[str, ...], wait_s: float) -> None:
    """Approve or reject an initiative (committee, before voting opens)."""
    from node.cli.committee import ChainView, run_committee_command

    if approve == (reject_reason is not None):
        fail("give exactly one of --approve or --reject REASON", EXIT_BAD_INPUT)
    with cli_errors():
        body = InitiativeReview(campaign_id, initiative_id, approve, reject_reason or "")
        InitiativeReview.from_wire(body.to_wire(), "initiative.review")

    def build(view: ChainView) -> tuple[str, Wire]:
        return "initiative.review", body

    run_committee_command(nodes, key_files, prepare, wait_s, build, what="initiative.review")


# --- progress ------------------------------------------------------------------------------------


@click.group("progress")
def progress_group() -> None:
    """Report how winning initiatives are carried out."""


def hash_evidence(path: str | None) -> bytes:
    if path is None:
        return b""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise OperatorInputError(f"evidence file {path} cannot be read: {exc}") from None
    return digest.digest()


@progress_group.command("report")
@click.argument("campaign_id")
@click.argument("initiative_id")
@click.option("--stage", required=True, type=click.Choice(STAGES))
@click.option("--percent", required=True, type=click.IntRange(0, 100))
@click.option("--spent", type=click.IntRange(min=0), default=0, show_default=True, help="Kopecks spent so far.")
@click.option("--note", default="", help="Public note.")
@click.option("--evidence", type=click.Path(dir_okay=False), help="A document; its SHA-256 goes on the chain.")
@click.option("--key", "key_file", required=True, metavar="FILE", help="District operator or committee key.")
@node_option
@wait_option
def progress_report(campaign_id: str, initiative_id: str, stage: str, percent: int, spent: int, note: str,
                    evidence: str | None, key_file: str, nodes: tuple[str, ...], wait_s: float) -> None:
    """Record a progress report for an approved initiative of a closed campaign."""
    with cli_errors():
        key = read_key_file(key_file)
        evidence_hash = hash_evidence(evidence)
        body = ProgressReport(campaign_id, initiative_id, stage, percent, spent, note, evidence_hash)
        ProgressReport.from_wire(body.to_wire(), "progress.report")
    if evidence_hash:
        click.echo(f"evidence sha256 {evidence_hash.hex()}")

    def build(view: ChainView) -> Tx:
        check_submitter(view, key, None, "progress.report")
        return sign_tx("progress.report", view.chain_id, body, [key])

    run_transaction(nodes, build, wait_s)
