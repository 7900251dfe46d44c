"""The ``veche`` command line (click). Each command group lives beside the code it drives."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli import gateway_group
from genesis.cli import genesis_group, keys_group, testnet_init
from node.cli.backup import backup_command, restore_command
from node.cli.governance import keys_rotate, upgrade_group, validators_group
from node.cli.signing import sign_command, submit_command
from node.cli_network import demo_command, node_group, status_command, tally_command, testnet_start
from node.cli_ops import campaign_group, initiative_group, progress_group
from node.cli_transparency import pabulib_group, receipt_group, verify_command
from node.console.cli import console_command
from node.voter.cli import ballot_group
from node.ops.tls import TlsConfigError, set_default_ca_file


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="veche")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), envvar="VECHE_CA_FILE",
              help="PEM file of CA certificates trusted for https node URLs, beside the system's "
                   "(a private CA). Also from VECHE_CA_FILE.")
def main(ca_file: Path | None) -> None:
    """Veche: a permissioned BFT ledger for participatory budgeting votes."""
    try:
        set_default_ca_file(ca_file)
    except TlsConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="--ca-file") from exc


@main.group("testnet")
def testnet_group() -> None:
    """Create and run a local test network."""


testnet_group.add_command(testnet_init, "init")
testnet_group.add_command(testnet_start, "start")

keys_group.add_command(keys_rotate, "rotate")
main.add_command(keys_group, "keys")
main.add_command(genesis_group, "genesis")
node_group.add_command(backup_command, "backup")
node_group.add_command(restore_command, "restore")
main.add_command(node_group, "node")
main.add_command(gateway_group, "gateway")
main.add_command(demo_command, "demo")
main.add_command(status_command, "status")
main.add_command(tally_command, "tally")
main.add_command(campaign_group, "campaign")
main.add_command(initiative_group, "initiative")
main.add_command(progress_group, "progress")
main.add_command(verify_command, "verify")
main.add_command(receipt_group, "receipt")
main.add_command(pabulib_group, "pabulib")
main.add_command(ballot_group, "ballot")
main.add_command(console_command, "console")
main.add_command(validators_group, "validators")
main.add_command(upgrade_group, "upgrade")
main.add_command(sign_command, "sign")
main.add_command(submit_command, "submit")


if __name__ == "__main__":
    main()
