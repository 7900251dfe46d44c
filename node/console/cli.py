"""``veche console --key KEY.json --node URL [--port 8700]``: the operator console on this machine.

Start-up refuses a key file that others may read (mode other than 0600: exit 3), a key that holds
no role on the chain (exit 3), and a network it cannot reach (exit 1); a port it cannot listen on is
exit 7. It listens on 127.0.0.1 unless ``--host`` says otherwise, and prints a one-time login link
(a random token): the key stays on this machine, and only the person who started the console can
open it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import signal
import stat
import sys
from pathlib import Path

import click
from aiohttp import web

from chain.crypto import SigningKey, read_key_file
from chain.errors import VecheError
from node.client import ClientError, NodeClient
from node.exitcodes import EXIT_CONFIG, EXIT_FAILURE, EXIT_LISTEN

log = logging.getLogger("veche.console")
DEFAULT_PORT = 8700


class StartError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def read_private_key(path: str) -> SigningKey:
    """The key file, refused unless only its owner may read it (mode 0600 or stricter)."""
    target = Path(path)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError as exc:
        raise StartError(f"cannot read the key file {target}: {exc.strerror}", EXIT_CONFIG) from exc
    if mode & 0o077:
        raise StartError(f"the key file {target} has mode {mode:04o}: others on this machine may read it. Run "
                         f"`chmod 600 {target}` (and check who could have copied it) before starting the console",
                         EXIT_CONFIG)
    try:
        return read_key_file(target)
    except VecheError as exc:
        raise StartError(f"the key file {target} is not a Veche key: {exc.message}", EXIT_CONFIG) from exc


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    names = {host, "127.0.0.1", "localhost", "[::1]"} if is_loopback(host) else {host}
    return frozenset(f"{name.lower()}:{port}" for name in names)


async def serve(key: SigningKey, nodes: tuple[str, ...], host: str, port: int, lang: str, offset: int,
                request_hours: int = 72) -> None:
    # the web app is imported when a console starts, not when `veche` loads its commands: the app's
    # modules use node/cli/'s committee helpers, so a top-level import here would be circular
    from node.console.app import create_app
    from node.console.chain import ConsoleChain, KeyRoleError

    client = NodeClient(nodes, timeout=60)
    try:
        chain = await ConsoleChain.connect(client, key)
    except KeyRoleError as exc:
        await client.close()
        raise StartError(str(exc), EXIT_CONFIG) from exc
    except (ClientError, VecheError) as exc:
        await client.close()
        raise StartError(f"cannot reach the network through {', '.join(nodes)}: {exc}", EXIT_FAILURE) from exc
    token = secrets.token_urlsafe(24)
    app = create_app(chain, login_token=token, allowed_hosts=allowed_hosts(host, port),
                     display_offset_minutes=offset, default_lang=lang, request_ttl_hours=request_hours)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartError(f"cannot listen on {host}:{port}: {exc.strerror}", EXIT_LISTEN) from exc
    identity = chain.identity
    address = f"[{host}]" if ":" in host else host
    click.echo(f"veche console for {identity.role} {identity.name} on chain {chain.chain_id}")
    if not is_loopback(host):
        click.echo(f"WARNING: listening on {host}, not only on this machine: anyone who can reach it and obtains the "
                   "login link acts with this key", err=True)
    click.echo(f"open http://{address}:{port}/login?token={token}  (the link works once)")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


@click.command("console")
@click.option("--key", "key_file", required=True, metavar="KEY.json",
              help="Your committee, district operator or gateway key (mode 0600).")
@click.option("--node", "nodes", multiple=True, required=True, metavar="URL",
              help="Node API base URL; repeat for fail-over (documents go to every one).")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but a loopback address exposes the console to the network.")
@click.option("--lang", type=click.Choice(["ru", "en"]), default="ru", show_default=True, help="Default language.")
@click.option("--utc-offset", "offset", type=click.IntRange(-14 * 60, 14 * 60), default=180, show_default=True,
              help="Minutes east of UTC for times on the pages (180: Moscow).")
@click.option("--request-hours", type=click.IntRange(1, 168), default=72, show_default=True,
              help="How long a signing request this console prepares stays open for the other members.")
def console_command(key_file: str, nodes: tuple[str, ...], port: int, host: str, lang: str, offset: int,
                    request_hours: int) -> None:
    """Run the operator console (district operators, committee members, gateway) on this machine."""
    logging.basicConfig(level=os.environ.get("VECHE_CONSOLE_LOG", "INFO"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        key = read_private_key(key_file)
        asyncio.run(serve(key, nodes, host, port, lang, offset, request_hours))
    except StartError as exc:
        click.echo(f"veche console: {exc}", err=True)
        sys.exit(exc.exit_code)
