"""``veche ballot cast``: vote like a citizen's browser with JavaScript, holding the voter key here."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from chain.errors import VecheError
from node.voter.device import Device


@click.group("ballot")
def ballot_group() -> None:
    """Vote as a citizen (voter-held key; for tests and observers' spot checks)."""


@ballot_group.command("cast")
@click.option("--gateway", "gateway", required=True, help="The gateway's base URL.")
@click.option("--phone", required=True, help="The phone number to log in with (+7 9XX …).")
@click.option("--sms-outbox", "outbox", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The gateway's development SMS outbox file (sms-outbox.jsonl): the code is read from it.")
@click.option("--campaign", "campaign_id", required=True)
@click.option("--district", "district_id", required=True)
@click.option("--choice", "choices", required=True, multiple=True,
              help="An initiative id (repeat for several). Cumulative ballots: ID:POINTS. Ordinal ballots: repeat "
                   "in rank order, first place first (the campaign's rank points; ID:POINTS states them).")
@click.option("--json", "as_json", is_flag=True, help='Print {"tx_hash", "voter_public_key", "mode", "height"}.')
def cast_command(gateway: str, phone: str, outbox: Path, campaign_id: str, district_id: str,
                 choices: tuple[str, ...], as_json: bool) -> None:
    """Log in with the SMS code, get a blind token for a fresh voter key made here, send the signed
    ballot straight to a node and wait for its commit. The gateway never sees the key. The ballot is
    checked with the campaign's limits (read from a node) before a token is asked for."""
    ids, points = parse_choices(choices)

    async def run() -> dict[str, object]:
        async with Device(gateway) as device:
            cast = await device.cast(phone, outbox, campaign_id, district_id, ids, points)
            return cast.to_json()

    try:
        result = asyncio.run(run())
    except VecheError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"ballot {result['tx_hash']} committed at height {result['height']} "
                   f"(voter-held key {result['voter_public_key']})")


def parse_choices(values: tuple[str, ...]) -> tuple[list[str], list[int] | None]:
    """``--choice`` values: all ``ID`` (points None) or all ``ID:POINTS``, in the order given."""
    pairs = [value.partition(":") for value in values]
    with_points = [sep == ":" for _, sep, _ in pairs]
    if any(with_points) and not all(with_points):
        raise click.BadParameter("give every choice its points (ID:POINTS) or none", param_hint="--choice")
    if not any(with_points):
        return list(values), None
    points = []
    for value, (_, _, text) in zip(values, pairs):
        if not text.isascii() or not text.isdigit():
            raise click.BadParameter(f"{value!r}: the points are a whole number (ID:POINTS)", param_hint="--choice")
        points.append(int(text))
    return [choice for choice, _, _ in pairs], points
