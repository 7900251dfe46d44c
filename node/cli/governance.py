"""Governance commands (committee, k of n): ``veche validators update``, ``veche keys rotate``,
``veche upgrade schedule`` (docs/OPERATOR.md "Network lifecycle").

Each builds one transaction against what the node says is in force now, then signs it here with k
``--key`` files or writes a signing request with ``--prepare FILE`` (node/cli/committee.py). A
committed set change prints the height it is in force from (the commit height + 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from chain.tx import KeysRotate, ProtocolUpgrade, ValidatorEntry, ValidatorsUpdate, Wire
from node.cli.committee import ChainView, committee_options, run_committee_command
from node.cli_ops import OperatorInputError, cli_errors, node_option, read_json_file, wait_option

UPDATE_KEYS = frozenset({"reason", "add", "remove"})
ENTRY_KEYS = frozenset({"name", "operator", "public_key", "url"})


def _public_key(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or len(value) != 64:
        raise OperatorInputError(f"{where} must be a public key of 64 hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise OperatorInputError(f"{where} is not hex") from None


def validators_update_from_json(document: Any, where: str) -> ValidatorsUpdate:
    """``{"reason", "add": [{"name", "operator", "public_key", "url"}], "remove": [NAME, ...]}`` (keys and names
    as in genesis.json; ``operator`` defaults to "committee"; a trailing "/" of a URL is dropped)."""
    if not isinstance(document, dict):
        raise OperatorInputError(f"{where} must be a JSON object")
    unknown = sorted(set(document) - UPDATE_KEYS)
    if unknown:
        raise OperatorInputError(f"{where} has unknown keys: {', '.join(unknown)} (known: reason, add, remove)")
    add_raw, remove_raw = document.get("add", []), document.get("remove", [])
    if not isinstance(add_raw, list) or not isinstance(remove_raw, list):
        raise OperatorInputError(f"{where}: add and remove are lists")
    entries = []
    for index, item in enumerate(add_raw):
        at = f"{where}: add[{index}]"
        if not isinstance(item, dict):
            raise OperatorInputError(f"{at} must be an object")
        unknown = sorted(set(item) - ENTRY_KEYS)
        missing = [key for key in ("name", "public_key", "url") if key not in item]
        if unknown or missing:
            raise OperatorInputError(f"{at}: unknown keys {unknown or 'none'}, missing {missing or 'none'}")
        url = item["url"].rstrip("/") if isinstance(item["url"], str) else item["url"]
        entries.append([item["name"], item.get("operator", "committee"), _public_key(item["public_key"], at), url])
    body = ValidatorsUpdate.from_wire([document.get("reason"), entries, remove_raw], where)
    return body  # type: ignore[no-any-return]


# --- veche validators update ---------------------------------------------------------------------


@click.group("validators")
def validators_group() -> None:
    """Change the validator set (committee)."""


@validators_group.command("update")
@click.argument("file", type=click.Path(dir_okay=False))
@committee_options
@node_option
@wait_option
def validators_update(file: str, key_files: tuple[str, ...], prepare: str | None, nodes: tuple[str, ...],
                      wait_s: float) -> None:
    """Add and remove validators as FILE.json says; in force from the commit height + 2."""
    with cli_errors():
        body = validators_update_from_json(read_json_file(file, "validators update"), Path(file).name)

    def build(view: ChainView) -> tuple[str, Wire]:
        return "validators.update", body

    run_committee_command(nodes, key_files, prepare, wait_s, build, what="validators.update")


# --- veche keys rotate ---------------------------------------------------------------------------


def old_key_of(view: ChainView, role: str, subject: str, given: bytes | None) -> bytes:
    """The key ``subject`` holds now in ``role`` (``given`` picks one of a district's several keys)."""
    if role == "committee":
        held = [key for name, key in view.committee if name == subject]
        known = ", ".join(name for name, _ in view.committee)
    elif role == "gateway":
        held = [key for name, key in view.gateways.items() if name == subject]
        known = ", ".join(view.gateways)
    else:
        held = [key for district, key in view.district_operators if district == subject]
        known = ", ".join(sorted({district for district, _ in view.district_operators}))
    if given is not None:
        if given not in held:
            raise OperatorInputError(f"{given.hex()} is not a key {role} {subject!r} holds now")
        return given
    if not held:
        raise OperatorInputError(f"there is no {role} {subject!r} in force (known: {known or 'none'})")
    if len(held) > 1:
        raise OperatorInputError(f"district {subject!r} has {len(held)} operator keys; name the old one with "
                                 "--old-public-key")
    return held[0]


@click.command("rotate")
@click.argument("role", type=click.Choice(["committee", "district", "gateway"]))
@click.argument("subject", metavar="ID")
@click.option("--new-public-key", "new_key", metavar="PK", help="The new key (64 hex digits).")
@click.option("--old-public-key", "old_key", metavar="PK",
              help="The key to replace, when a district has several (default: the one ID holds).")
@click.option("--add", "add", is_flag=True, help="Add ID with the new key instead of replacing a key.")
@click.option("--remove", "remove", is_flag=True, help="Remove ID's key (no new key).")
@click.option("--threshold", type=click.IntRange(min=1), help="The committee's k after the change (default: as now).")
@click.option("--reason", default=None, help="Public reason, recorded on the chain.")
@committee_options
@node_option
@wait_option
def keys_rotate(role: str, subject: str, new_key: str | None, old_key: str | None, add: bool, remove: bool,
                threshold: int | None, reason: str | None, key_files: tuple[str, ...], prepare: str | None,
                nodes: tuple[str, ...], wait_s: float) -> None:
    """Replace the ROLE key of ID (committee member, district, gateway); the old key is revoked from the
    commit height + 2. A campaign whose gateway key rotates keeps its registrations and counts."""
    with cli_errors():
        if add and remove:
            raise OperatorInputError("give --add or --remove, not both")
        if remove == (new_key is not None) and not (role == "committee" and threshold is not None and not add):
            raise OperatorInputError("give --new-public-key PK (or --remove)")
        new = _public_key(new_key, "--new-public-key") if new_key is not None else b""
        given_old = _public_key(old_key, "--old-public-key") if old_key is not None else None
        if role != "committee" and threshold is not None:
            raise OperatorInputError("--threshold is for the committee only")

    def build(view: ChainView) -> tuple[str, Wire]:
        old = b"" if add or (not remove and not new) else old_key_of(view, role, subject, given_old)
        k = (threshold or view.threshold) if role == "committee" else 0
        action = "add" if add else "remove" if remove else "rotate"
        text = reason or f"{action} the {role} key of {subject}"
        body = KeysRotate(role, subject, old, new, k, text)
        return "keys.rotate", KeysRotate.from_wire(body.to_wire(), "keys.rotate")

    run_committee_command(nodes, key_files, prepare, wait_s, build, what="keys.rotate")


# --- veche upgrade schedule ----------------------------------------------------------------------


@click.group("upgrade")
def upgrade_group() -> None:
    """Schedule protocol upgrades (committee)."""


@upgrade_group.command("schedule")
@click.argument("version", type=click.IntRange(min=2))
@click.option("--height", required=True, type=click.IntRange(min=1), help="The first block under VERSION.")
@click.option("--reason", default=None, help="Public reason, recorded on the chain.")
@committee_options
@node_option
@wait_option
def upgrade_schedule(version: int, height: int, reason: str | None, key_files: tuple[str, ...],
                     prepare: str | None, nodes: tuple[str, ...], wait_s: float) -> None:
    """Schedule protocol VERSION from block HEIGHT: nodes that do not support it stop before it (exit 8)."""
    body = ProtocolUpgrade(version, height, reason or f"protocol version {version}")

    def build(view: ChainView) -> tuple[str, Wire]:
        return "protocol.upgrade", ProtocolUpgrade.from_wire(body.to_wire(), "protocol.upgrade")

    run_committee_command(nodes, key_files, prepare, wait_s, build, what="protocol.upgrade")
