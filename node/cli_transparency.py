"""Transparency commands: ``veche verify``, ``veche receipt verify``, ``veche pabulib import|export``.

Exit codes (docs/TRANSPARENCY.md): 0 everything checks; 1 the chain, a receipt or a published
result is wrong (the message names what and, for blocks, the first bad height); 2 bad input
(file, option, locked database); 3 node unreachable or misbehaving.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from chain.errors import VecheError
from chain.lightclient import LightClientError, follow_set_changes, proofs_from_json
from chain.receipt import ReceiptError, verify_receipt
from genesis.model import Genesis, load_genesis
from node.cli_ops import EXIT_BAD_INPUT, EXIT_REJECTED, cli_errors, fail, read_json_file
from node.client import NodeApiError, NodeClient, fetch_genesis
from node.pabulib_io import Importer, PabulibImportError, export_campaign, write_export
from node.ops.progress import ProgressBar
from node.verify import VerifyReport, verify_home, verify_node

EXIT_INVALID = EXIT_REJECTED


# --- veche verify ----------------------------------------------------------------------------------


@click.command("verify")
@click.option("--node", "nodes", multiple=True, metavar="URL",
              help="Node API base URL to download the chain from; repeat for fail-over.")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="A stopped node's home (or a copy of it): replay its own database.")
@click.option("--genesis", "genesis_file", type=click.Path(dir_okay=False),
              help="With --node: the genesis file you trust; the node's must be the same.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Signature-checking processes (default: one per core; 0 = none).")
@click.option("--scratch", type=click.Path(file_okay=False, path_type=Path),
              help="Where the replayed state goes while the run lasts (LevelDB on disk, removed at the end; "
                   "default: the system's temporary directory).")
@click.option("--checkpoint", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the replayed state in this directory: a run that stops (Ctrl-C, a crash) continues "
                   "from the height it reached when run again with the same --checkpoint, and a later run "
                   "replays only the blocks added since.")
@click.option("--progress/--no-progress", default=None,
              help="A progress bar on stderr (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify_command(nodes: tuple[str, ...], home: Path | None, genesis_file: str | None, workers: int | None,
                   scratch: Path | None, checkpoint: Path | None, progress: bool | None, as_json: bool) -> None:
    """Replay the whole chain from genesis and check every block, signature and tally."""
    if bool(nodes) == (home is not None):
        fail("give exactly one of --node URL or --home DIR", EXIT_BAD_INPUT)
    show = sys.stderr.isatty() if progress is None else progress
    bar = ProgressBar(0, "votes", enabled=show)
    first: list[int] = []

    def on_progress(done: int, total: int, height: int) -> None:
        bar.total = total
        if not first:   # the first call: what a checkpoint already holds
            first.append(done)
            bar.start_done = done
        bar.update(done, f"height {height:,}")

    with cli_errors():
        try:
            if home is not None:
                report = verify_home(home, workers=workers, scratch_dir=scratch, checkpoint=checkpoint,
                                     progress=on_progress)
            else:
                pinned = load_genesis(genesis_file) if genesis_file else None
                report = verify_node(list(nodes), pinned_genesis=pinned, workers=workers, scratch_dir=scratch,
                                     checkpoint=checkpoint, progress=on_progress)
        except KeyboardInterrupt:
            bar.close()
            if checkpoint is not None:
                click.echo(f"stopped; the checkpoint in {checkpoint} keeps every block replayed so far: run the "
                           "same command again to continue", err=True)
            raise
        bar.close()
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print_report(report)
    if not report.ok:
        sys.exit(EXIT_INVALID)


def print_report(report: VerifyReport) -> None:
    click.echo(f"chain {report.chain_id}, genesis {report.genesis_hash}")
    if report.resumed_from:
        click.echo(f"continued the checkpoint at height {report.resumed_from}")
    click.echo(f"replayed {report.blocks} blocks ({report.txs} txs, {report.votes} votes) up to height "
               f"{report.height} in {report.seconds:.2f} s ({report.votes_per_second:,.0f} votes/s)")
    for campaign_id, check in sorted(report.campaigns.items()):
        winners = ", ".join(check.winners) or "none"
        if check.matches is None:
            verdict = "not published for this height yet" if check.published_result_hash is None else "unchecked"
        else:
            verdict = "matches the published result" if check.matches else \
                f"DIFFERS from the published {check.published_result_hash}"
        click.echo(f"campaign {campaign_id}: {check.status}, {check.total_ballots} ballots, winners {winners}; "
                   f"result {check.result_hash} {verdict}")
    if report.ok:
        click.echo("OK: every block, certificate, signature, state transition and tally checks")
    elif report.first_bad_height is not None:
        click.echo(f"FAILED at height {report.first_bad_height}: {report.error}", err=True)
    else:
        click.echo(f"FAILED: {report.error}", err=True)


# --- veche receipt verify --------------------------------------------------------------------------


@click.group("receipt")
def receipt_group() -> None:
    """Check vote receipts."""


@receipt_group.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--node", "nodes", multiple=True, required=True, metavar="URL",
              help="Node to fetch the genesis from (unless --genesis) and to ask about the block.")
@click.option("--genesis", "genesis_file", type=click.Path(dir_okay=False),
              help="Pin the genesis file to trust instead of fetching it from the node.")
def receipt_verify(file: str, nodes: tuple[str, ...], genesis_file: str | None) -> None:
    """Check a receipt like a light client: inclusion proof and commit certificate."""
    with cli_errors():
        document = read_json_file(file, "receipt")
        pinned = load_genesis(genesis_file) if genesis_file else None
    with cli_errors():
        genesis, block_hash, tx_status, changes = asyncio.run(receipt_context(list(nodes), pinned, document))
    source = f"pinned by {genesis_file}" if pinned is not None else f"fetched from {nodes[0]}"
    click.echo(f"genesis {genesis.hash.hex()} ({source})")
    try:
        schedule = follow_set_changes(genesis.chain_id, genesis.params.validators, proofs_from_json(changes))
    except LightClientError as exc:
        fail(f"receipt INVALID: the node's validator set changes do not check: {exc.message}", EXIT_INVALID)
    if schedule.changes:
        click.echo(f"validator set: followed {schedule.changes} set change(s) from genesis, each certified by the "
                   "set in force before it")
    try:
        checked = verify_receipt(document, genesis.params, schedule.at)
    except ReceiptError as exc:
        fail(f"receipt INVALID: {exc.message}", EXIT_INVALID)
    except VecheError as exc:
        fail(f"receipt INVALID: {exc.message}", EXIT_INVALID)
    header_hash = checked.header.hash().hex()
    validators = schedule.at(checked.height)
    click.echo(f"inclusion proof: tx {checked.tx.hash.hex()} is transaction {checked.index} of block "
               f"{checked.height}")
    click.echo(f"commit certificate: {len(checked.certificate.signatures)} validator signatures "
               f"(quorum {validators.quorum} of {validators.size}) for block {header_hash}")
    if block_hash is None:
        fail(f"receipt INVALID: the node has no block at height {checked.height}", EXIT_INVALID)
    if block_hash != header_hash:
        fail(f"receipt INVALID: the node's block {checked.height} is {block_hash}, the receipt's is {header_hash}",
             EXIT_INVALID)
    if tx_status.get("status") == "committed" and tx_status.get("height") != checked.height:
        fail(f"receipt INVALID: the node places tx {checked.tx.hash.hex()} at height {tx_status.get('height')}",
             EXIT_INVALID)
    click.echo(f"node: block {checked.height} has the same hash")
    click.echo(f"receipt valid: {describe_tx(checked.tx.kind, checked.tx.body)}")


async def receipt_context(nodes: list[str], pinned: Genesis | None,
                          document: Any) -> tuple[Genesis, str | None, dict[str, Any], dict[str, Any]]:
    """The genesis to trust, the node's hash of the receipt's block, its status of the tx, and the proofs of
    the validator set changes (checked by the caller from genesis on, chain/lightclient.py)."""
    async with NodeClient(nodes) as client:
        genesis = pinned if pinned is not None else await fetch_genesis(client)
        height = document.get("height") if isinstance(document, dict) else None
        tx_hash = document.get("tx_hash") if isinstance(document, dict) else None
        block_hash: str | None = None
        if isinstance(height, int) and not isinstance(height, bool) and height >= 1:
            try:
                block_hash = str((await client.block(height)).get("hash"))
            except NodeApiError as exc:
                if exc.status != 404:
                    raise
        tx_status: dict[str, Any] = {}
        if isinstance(tx_hash, str) and len(tx_hash) == 64:
            try:
                tx_status = await client.tx(tx_hash)
            except NodeApiError:
                tx_status = {}
        try:
            changes = await client.validator_changes()
        except NodeApiError as exc:
            if exc.status != 404:
                raise
            changes = {"changes": []}  # a node from before set changes existed: only the genesis set
        return genesis, block_hash, tx_status, changes


def describe_tx(kind: str, body: Any) -> str:
    if kind == "vote.cast":
        if body.points:
            given = ", ".join(f"{choice} ({points} points)" for choice, points in zip(body.choices, body.points))
            return f"ballot in campaign {body.campaign_id}, district {body.district_id}, giving {given}"
        return (f"ballot in campaign {body.campaign_id}, district {body.district_id}, "
                f"for {', '.join(body.choices)}")
    return f"{kind} transaction"



# --- veche pabulib import / export -----------------------------------------------------------------


@click.group("pabulib")
def pabulib_group() -> None:
    """Import real elections from pabulib files; export a campaign for a recount with pabutools."""


@pabulib_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--testnet", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A folder written by `veche testnet init` whose nodes are running.")
@click.option("--with-votes", is_flag=True, help="Cast every ballot of the file (one fresh key per voter).")
@click.option("--close", is_flag=True, help="Close the campaign when the import is committed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes making keys and ballots (default: one per core).")
@click.option("--timeout", type=click.FloatRange(min=1), default=None,
              help="Seconds to wait for the ballots to commit (default: 120 + 20 ms per ballot).")
def pabulib_import(file: Path, directory: Path, with_votes: bool, close: bool, as_json: bool, workers: int | None,
                   timeout: float | None) -> None:
    """Create a new campaign from FILE.pb on the running testnet in DIR."""
    def progress(text: str) -> None:
        click.echo(text, err=True)

    with cli_errors():
        if not file.is_file():
            raise PabulibImportError(f"pabulib file {file} does not exist")
        importer = Importer(directory, file, with_votes=with_votes, close=close, progress=progress,
                            workers=workers, timeout=timeout)
        result = asyncio.run(importer.run())
    if as_json:
        click.echo(json.dumps(result.to_json()))
        if result.votes_committed:
            progress(f"ballots: {result.votes_committed} in {result.vote_seconds:.1f} s "
                     f"({result.votes_committed / result.vote_seconds:,.0f}/s)")
        return
    click.echo(f"campaign {result.campaign_id}: {result.initiatives} initiatives")
    if with_votes:
        rate = result.votes_committed / result.vote_seconds if result.vote_seconds else 0.0
        click.echo(f"ballots: {result.votes_committed} of {result.votes_submitted} committed in "
                   f"{result.vote_seconds:.1f} s ({rate:,.0f}/s)")
    if result.closed_height is not None:
        click.echo(f"closed at height {result.closed_height}")
    click.echo(f"done in {result.seconds:.1f} s")


@pabulib_group.command("export")
@click.option("--node", "nodes", multiple=True, required=True, metavar="URL", help="Node API base URL.")
@click.option("--campaign", "campaign_id", required=True, help="Campaign id.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The .pb file to write.")
def pabulib_export(nodes: tuple[str, ...], campaign_id: str, out: Path) -> None:
    """Write a campaign's anonymised ballots and results as a pabulib file."""
    with cli_errors():
        pb, tally = asyncio.run(export_campaign(list(nodes), campaign_id))
        write_export(pb, out)
    selected = sum(1 for p in pb.projects if p.funded)
    click.echo(f"wrote {out}: {len(pb.projects)} projects, {len(pb.votes)} ballots, "
               f"{selected if tally.get('status') == 'closed' else 'no'} selected (tally at height {tally.get('height')})")
