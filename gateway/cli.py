"""``veche gateway …``: run the citizen gateway and generate one-time code cards."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import logging
import os
import signal
import sys
from pathlib import Path

import click
from aiohttp import web

from chain.errors import VecheError
from chain.tx import ID_PATTERN
from gateway.app import AccessLogger, build_app
from gateway.auth import card_id, format_card, load_or_create_secret, new_card_code, write_card_batch
from gateway.config import GatewayConfig, load_config

log = logging.getLogger("veche.gateway")
MAX_CARDS_PER_RUN = 1_000_000


def setup_logging(config: GatewayConfig) -> None:
    level = getattr(logging, config.log_level.upper())
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.log_file is not None:
        handlers.append(logging.FileHandler(config.log_file, encoding="utf-8"))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # one access-log line per request (method, path without query, status, size, time) only at debug:
    # at voting rates it would be thousands of lines a second
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if level <= logging.DEBUG else logging.WARNING)


async def serve(config: GatewayConfig) -> None:
    app = build_app(config)
    runner = web.AppRunner(app, access_log_class=AccessLogger, keepalive_timeout=15, max_line_size=4096,
                           max_field_size=4096, max_headers=64, handle_signals=False)
    await runner.setup()
    wire = None
    if config.test_wire_log_file is not None:   # TEST ONLY: gateway/wirelog.py
        from gateway.wirelog import WireLog, logging_handler_factory

        wire = WireLog(config.test_wire_log_file)
        server = await asyncio.get_running_loop().create_server(
            logging_handler_factory(runner.server, wire), config.listen_host, config.listen_port, backlog=1024,
            reuse_address=True)
    else:
        site = web.TCPSite(runner, config.listen_host, config.listen_port, backlog=1024, reuse_address=True)
        await site.start()
    log.info("gateway listening on %s (http://%s:%d)", config.url, config.listen_host, config.listen_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("gateway stopping")
        if wire is not None:
            server.close()
        await runner.cleanup()
        if wire is not None:
            wire.close()


@click.group("gateway")
def gateway_group() -> None:
    """The citizen gateway: web voting with SMS codes or code cards."""


@gateway_group.command("start")
@click.option("--home", "home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The gateway's home directory (with config.json).")
def start_command(home: Path) -> None:
    """Run the gateway of HOME until interrupted."""
    try:
        config = load_config(home)
    except VecheError as exc:
        raise click.ClickException(exc.message) from exc
    setup_logging(config)
    try:
        asyncio.run(serve(config))
    except VecheError as exc:
        raise click.ClickException(exc.message) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {config.listen_host}:{config.listen_port}: {exc}") from exc


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
