"""CLI commands of the genesis package: `veche keys …`, `veche testnet init`, and genesis checks.

``node/cli/__init__.py`` wires ``keys_group`` and ``testnet_init`` into the ``veche`` group;
``genesis_group`` (check a genesis file, print its hash) is ``veche genesis`` and ``python -m genesis``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from chain.crypto import SigningKey, read_key_file, write_key_file
from chain.errors import VecheError
from genesis.model import load_genesis
from genesis.testnet import TestnetLayout, init_testnet, write_initial_signing_state


def _fail(exc: VecheError) -> click.ClickException:
    return click.ClickException(exc.message)


# --- veche keys --------------------------------------------------------------------------------


@click.group("keys")
def keys_group() -> None:
    """Ed25519 key files for validators, the committee, district operators and gateways."""


@keys_group.command("generate")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Key file to create (mode 0600); an existing file is never overwritten.")
@click.option("--signing-state", "signing_state", type=click.Path(dir_okay=False, path_type=Path),
              help="Also create this validator's signing state (signing-state.bin in its home: nothing signed "
                   "yet). A validator refuses to start without one (docs/NODE.md §6).")
def keys_generate(out: Path, signing_state: Path | None) -> None:
    """Create a new key file and print its public key (hex) for the genesis file."""
    for path in (out, signing_state):
        if path is not None and not path.parent.is_dir():
            raise click.ClickException(f"folder {path.parent} does not exist")
    if signing_state is not None and signing_state.exists():
        raise click.ClickException(f"{signing_state} already exists; a signing state is never overwritten")
    key = SigningKey.generate()
    try:
        write_key_file(out, key)
        if signing_state is not None:
            write_initial_signing_state(signing_state)
    except VecheError as exc:
        raise _fail(exc) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename or out}: {exc.strerror}") from exc
    click.echo(key.public_key.hex())


@keys_group.command("show")
@click.argument("key_file", type=click.Path(dir_okay=False, path_type=Path))
def keys_show(key_file: Path) -> None:
    """Print the public key (hex) of an existing key file."""
    try:
        key = read_key_file(key_file)
    except VecheError as exc:
        raise _fail(exc) from exc
    click.echo(key.public_key.hex())


# --- veche testnet init ------------------------------------------------------------------------


def _summary(layout: TestnetLayout, demo: bool) -> str:
    genesis = load_genesis(layout.genesis_file)
    lines = [
        f"Initialised testnet {layout.chain_id} in {layout.directory}",
        f"  genesis      {layout.genesis_file}",
        f"  genesis hash {genesis.hash.hex()}",
    ]
    if demo:
        campaigns = genesis.document.get("campaigns", [])
        districts = len(campaigns[0]["districts"]) if campaigns else 0
        lines.append(f"  demo data    {len(campaigns)} campaigns, {len(genesis.document.get('initiatives', []))} "
                     f"initiatives, {districts} districts of Volgograd oblast")
    lines.append("")
    width = max(len(node.name) for node in layout.nodes)
    for node in layout.nodes:
        lines.append(f"  {node.name:<{width}}  {node.role:<9}  {node.api_url:<24}  {node.home}")
    lines.append(f"  {layout.gateway.name:<{width}}  {'gateway':<9}  {layout.gateway.url:<24}  {layout.gateway.home}")
    lines.append("")
    lines.append(f"  committee key        {layout.committee_key_files[0]}")
    if layout.district_key_files:
        lines.append(f"  district keys        {len(layout.district_key_files)} files "
                     f"{layout.directory / 'keys' / 'district-<district_id>.json'}")
    lines.append("")
    lines.append(f"Start every process with: veche testnet start {layout.directory}")
    return "\n".join(lines)


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--validators", default=4, show_default=True, type=click.IntRange(min=1), help="Validator nodes.")
@click.option("--observers", default=1, show_default=True, type=click.IntRange(min=0), help="Observer nodes.")
@click.option("--base-port", default=26600, show_default=True, type=click.IntRange(1, 65535),
              help="Port of validator-0; the others follow (validators, observers, then the gateway).")
@click.option("--demo", is_flag=True, help="Put the Volgograd oblast demo campaigns into the genesis file.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Host every process listens on.")
@click.option("--chain-id", default=None, help="Chain id (default veche-testnet-<hex>, or veche-demo-<hex>).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object describing the testnet.")
@click.option("--committee", default=1, show_default=True, type=click.IntRange(1, 16),
              help="Committee keys (keys/committee-<i>.json).")
@click.option("--threshold", default=1, show_default=True, type=click.IntRange(min=1),
              help="Committee keys that sign each committee transaction (k of --committee).")
def testnet_init(directory: Path, validators: int, observers: int, base_port: int, demo: bool, host: str,
                 chain_id: str | None, as_json: bool, committee: int, threshold: int) -> None:
    """Create a local test network in DIRECTORY: genesis, keys and one home per process."""
    try:
        layout = init_testnet(directory, validators=validators, observers=observers, base_port=base_port,
                              demo=demo, host=host, chain_id=chain_id, committee=committee, threshold=threshold)
    except VecheError as exc:
        raise _fail(exc) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write the testnet in {directory}: {exc}") from exc
    if as_json:
        click.echo(json.dumps(layout.to_json(), ensure_ascii=False))
    else:
        click.echo(_summary(layout, demo))


# --- genesis checks (python -m genesis) --------------------------------------------------------


@click.group("genesis")
def genesis_group() -> None:
    """Check genesis files."""


@genesis_group.command("hash")
@click.argument("genesis_file", type=click.Path(dir_okay=False, path_type=Path))
def genesis_hash_command(genesis_file: Path) -> None:
    """Print the genesis hash of GENESIS_FILE: SHA-256 of its RFC 8785 canonical JSON (not of the file's bytes).

    This is the value the programme publishes; compare it before trusting the file."""
    try:
        genesis = load_genesis(genesis_file)
    except VecheError as exc:
        raise _fail(exc) from exc
    click.echo(genesis.hash.hex())


@genesis_group.command("check")
@click.argument("genesis_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def genesis_check(genesis_file: Path, as_json: bool) -> None:
    """Validate GENESIS_FILE and print its hash: every operator compares this hash before starting."""
    try:
        genesis = load_genesis(genesis_file)
    except VecheError as exc:
        raise _fail(exc) from exc
    params = genesis.params
    report: dict[str, Any] = {
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.hash.hex(),
        "genesis_time_ms": params.genesis_time_ms,
        "validators": params.validators.size,
        "quorum": params.validators.quorum,
        "committee_keys": len(params.committee_keys),
        "committee_threshold": params.committee_threshold,
        "district_operators": len(params.district_operators),
        "gateways": len(params.gateways),
        "campaigns": len(genesis.document.get("campaigns", [])),
        "initiatives": len(genesis.document.get("initiatives", [])),
    }
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"{genesis_file}: valid")
    for key, value in report.items():
        click.echo(f"  {key:<20} {value}")
