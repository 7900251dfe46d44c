"""``veche gateway …``: run the citizen gateway and generate one-time code cards."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

import click
from aiohttp import web

from chain.errors import VecheError
from chain.tx import ID_PATTERN
from gateway.app import AccessLogger, build_app
from gateway.auth import card_id, format_card, load_or_create_secret, new_card_code, write_card_batch
from gateway.config import GatewayConfig, load_config
from gateway.ops.admin import UNLOCK_PATH
from gateway.phone import normalize_phone
from genesis.journal import handlers
from node import exitcodes
from node.ops.faults import ListenError, classify

log = logging.getLogger("veche.gateway")
MAX_CARDS_PER_RUN = 1_000_000


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"


def setup_logging(config: GatewayConfig) -> None:
    """Once: to the journal under systemd, else to stderr and ``log_file`` (genesis/journal.py)."""
    level = getattr(logging, config.log_level.upper())
    installed, where = handlers(config.log_file, LOG_FORMAT, JOURNAL_FORMAT)
    logging.basicConfig(level=level, handlers=installed, force=True)
    # one access-log line per request (method, path without query, status, size, time) only at debug:
    # at voting rates it would be thousands of lines a second
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if level <= logging.DEBUG else logging.WARNING)
    log.debug("gateway: %s", where)


async def serve(config: GatewayConfig) -> None:
    app = build_app(config)
    runner = web.AppRunner(app, access_log_class=AccessLogger, keepalive_timeout=15, max_line_size=4096,
                           max_field_size=4096, max_headers=64, handle_signals=False)
    await runner.setup()
    wire = None
    server = None
    try:
        try:
            if config.test_wire_log_file is not None:   # TEST ONLY: gateway/wirelog.py
                from gateway.wirelog import WireLog, logging_handler_factory

                wire = WireLog(config.test_wire_log_file)
                server = await asyncio.get_running_loop().create_server(
                    logging_handler_factory(runner.server, wire), config.listen_host, config.listen_port,
                    backlog=1024, reuse_address=True)
            else:
                site = web.TCPSite(runner, config.listen_host, config.listen_port, backlog=1024, reuse_address=True)
                await site.start()
        except OSError as exc:
            raise ListenError(f"cannot listen on {config.listen_host}:{config.listen_port}: {exc}") from exc
        log.info("gateway listening on %s (http://%s:%d)", config.url, config.listen_host, config.listen_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("gateway stopping")
    finally:
        if server is not None:
            server.close()
        await runner.cleanup()
        if wire is not None:
            wire.close()


def exit_code_for(exc: BaseException) -> int:
    """node/exitcodes.py's code for what stopped the gateway: permanent ones keep systemd from restarting.
    The store's typed faults (locked, corrupt, full), a bad genesis or key file and a taken port are
    classified as for a node (node/ops/faults.py); any other error of ours is a configuration to fix."""
    fault = classify(exc)
    if fault is not None:
        return fault.code
    if isinstance(exc, VecheError):
        return exitcodes.EXIT_CONFIG            # config.json, secret, CA file, SMS API key
    return exitcodes.EXIT_FAILURE


def run_gateway(config: GatewayConfig) -> int:
    """Run until SIGINT/SIGTERM; the exit code of node/exitcodes.py."""
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        return exitcodes.EXIT_OK
    except Exception as exc:  # noqa: BLE001 - every failure becomes a logged exit code
        code = exit_code_for(exc)
        if isinstance(exc, VecheError):
            log.critical("gateway cannot run: %s (exit %d)", exc.message, code)
        else:
            log.critical("gateway failed (exit %d)", code, exc_info=exc)
        return code
    return exitcodes.EXIT_OK


@click.group("gateway")
def gateway_group() -> None:
    """The citizen gateway: web voting with SMS codes or code cards."""


@gateway_group.command("start")
@click.option("--home", "home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The gateway's home directory (with config.json).")
def start_command(home: Path) -> None:
    """Run the gateway of HOME until interrupted.

    Exit codes (node/exitcodes.py): 0 stopped, 1 unexpected failure, 3 bad config, genesis, key or
    secret, 4 the data directory is in use, 5 the data is damaged, 7 cannot listen, 9 disk full.
    """
    try:
        config = load_config(home)
    except VecheError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exitcodes.EXIT_CONFIG)
    setup_logging(config)
    sys.exit(run_gateway(config))


@gateway_group.command("unlock")
@click.option("--home", "home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The running gateway's home directory (config.json, admin-token).")
@click.option("--phone", required=True, help="The citizen's mobile number (+7 9XX …).")
@click.option("--sms-limits", is_flag=True,
              help="Also reset the phone's SMS resend cooldown, daily SMS count and per-phone SMS rate.")
def unlock_command(home: Path, phone: str, sms_limits: bool) -> None:
    """Clear one phone's code lock-outs in the running gateway (audited in its log).

    Talks to the gateway on this machine through its loopback port with the token of admin-token.
    Exit codes: 0 done, 2 bad input, 3 the gateway did not answer or refused.
    """
    try:
        config = load_config(home)
        normalize_phone(phone, config.sms.allowed_regions, config.sms.allowed_prefixes)
    except VecheError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    try:
        token = config.admin_token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        click.echo(f"error: cannot read the admin token {config.admin_token_file} ({exc.strerror}); run this as "
                   "the gateway's user or root, after the gateway has started once", err=True)
        sys.exit(3)
    host = "::1" if ":" in config.listen_host else "127.0.0.1"
    url = f"http://{'[::1]' if host == '::1' else host}:{config.listen_port}{UNLOCK_PATH}"
    request = urllib.request.Request(url, data=json.dumps({"phone": phone, "sms_limits": sms_limits}).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            result = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        click.echo(f"error: the gateway refused the unlock (HTTP {exc.code}): {exc.read()[:300].decode(errors='replace')}",
                   err=True)
        sys.exit(2 if exc.code == 400 else 3)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        click.echo(f"error: no gateway answers on {url} ({exc}); a stopped gateway holds no lock-outs", err=True)
        sys.exit(3)
    cleared = result["lockouts_cleared"]
    click.echo(f"phone ref {result['phone_ref']}: {cleared} lock-out/wrong-code entr{'y' if cleared == 1 else 'ies'} "
               f"cleared" + ("; SMS cooldown and daily count reset" if result["sms_limits_cleared"] else ""))


@gateway_group.command("certification-key")
@click.option("--home", "home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The gateway's home directory (config.json names certification_key_file).")
@click.option("--create", is_flag=True,
              help="First make the key file (mode 0600; an existing one is never replaced). Restart the gateway.")
@click.option("--bits", type=click.Choice(["3072", "4096"]), default="3072", show_default=True,
              help="The RSA key size for --create.")
@click.option("--json", "as_json", is_flag=True, help='Print {"certification_key", "bits", "sha256"} instead.')
def certification_key_command(home: Path, create: bool, bits: str, as_json: bool) -> None:
    """Print the public half of the gateway's certification key, for the committee.

    A campaign whose citizens may vote with their own key names this key: the committee pastes the
    hex modulus (e = 65537) into the console's campaign wizard or into "certification_key" of the
    campaign JSON, and compares the SHA-256 fingerprint (of the modulus bytes) with the one the
    console's preview shows. The private key never leaves certification_key_file.
    Exit codes: 0 printed, 2 bad options, 3 no key file, a damaged one, or --create with one there.
    """
    from chain.crypto import sha256
    from gateway.certifier import generate_certification_key, read_certification_key

    try:
        config = load_config(home)
        path = config.certification_key_file
        if create:
            if path.exists():
                raise VecheError(f"{path} already exists and is never replaced; run without --create to print it",
                                 "exists")
            key = generate_certification_key(path, int(bits))
            click.echo(f"created {path} (0600); restart the gateway to issue tokens with it", err=True)
        elif not path.exists():
            raise VecheError(f"the gateway has no certification key ({path}); make one with --create", "no_key")
        else:
            key = read_certification_key(path)
    except VecheError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exitcodes.EXIT_CONFIG)
    modulus, fingerprint = key.modulus, sha256(key.modulus).hex()
    if as_json:
        click.echo(json.dumps({"certification_key": modulus.hex(), "bits": len(modulus) * 8, "sha256": fingerprint}))
        return
    click.echo(f"certification key, RSA {len(modulus) * 8} bits, e = 65537 — paste this modulus into the campaign "
               "wizard of `veche console` (or \"certification_key\" of the campaign JSON):")
    click.echo(modulus.hex())
    click.echo(f"SHA-256 fingerprint: {fingerprint}")


@gateway_group.group("cards")
def cards_group() -> None:
    """One-time code cards (children's track, people without a mobile phone)."""


def _cards_html(campaign_id: str, url: str, codes: list[str]) -> str:
    cells = "\n".join(
        f'<div class="card"><p class="t">Вече — голосование / Veche vote</p><p>Кампания / campaign: '
        f"<b>{html.escape(campaign_id)}</b></p><p class=\"c\">{format_card(code)}</p><p>{html.escape(url)}/login — "
        "«Войти по карточке» / “Log in with the card”. Один голос. / One vote.</p></div>"
        for code in codes)
    return ("<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>Code cards</title><style>"
            "body{font-family:sans-serif;margin:0}.card{display:inline-block;box-sizing:border-box;width:48%;"
            "margin:1%;padding:8px;border:1px dashed #000;page-break-inside:avoid}.c{font:bold 1.4em monospace}"
            ".t{font-weight:bold}</style></head><body>\n" + cells + "\n</body></html>\n")


def _cards_csv(campaign_id: str, codes: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["campaign_id", "card_code"])
    for code in codes:
        writer.writerow([campaign_id, format_card(code)])
    return buffer.getvalue()


@cards_group.command("generate")
@click.option("--home", "home", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--campaign", "campaign_id", required=True, help="Campaign the cards vote in.")
@click.option("--count", type=click.IntRange(1, MAX_CARDS_PER_RUN), required=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Printable .html, or .csv for a print shop. Written 0600: it holds the codes.")
def cards_generate(home: Path, campaign_id: str, count: int, out: Path) -> None:
    """Make COUNT one-time code cards for a campaign; the gateway keeps only their keyed hashes."""
    if not ID_PATTERN.fullmatch(campaign_id):
        raise click.BadParameter("a campaign id matches [A-Za-z0-9._-]{1,64}", param_hint="--campaign")
    if out.suffix.lower() not in (".html", ".htm", ".csv"):
        raise click.BadParameter("the output file must end in .html or .csv", param_hint="--out")
    if out.exists():
        raise click.ClickException(f"{out} already exists; refusing to overwrite it")
    try:
        config = load_config(home)
        secret = load_or_create_secret(config.secret_file)
    except VecheError as exc:
        raise click.ClickException(exc.message) from exc
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < count:
        code = new_card_code()
        if code not in seen:
            seen.add(code)
            codes.append(code)
    text = _cards_csv(campaign_id, codes) if out.suffix.lower() == ".csv" else _cards_html(campaign_id, config.url,
                                                                                            codes)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    batch = write_card_batch(config.cards_dir, campaign_id, [card_id(secret, code) for code in codes])
    click.echo(f"{count} cards for campaign {campaign_id} written to {out}; hashes in {batch}")
