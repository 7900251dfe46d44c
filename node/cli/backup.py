"""``veche node backup --home DIR --out FILE`` and ``veche node restore FILE --home DIR``.

Backup: asks the running node of DIR for a consistent LevelDB snapshot (``GET /admin/v1/backup``
with the home's admin token) and writes it to FILE; when the node is not running it reads the store
directly. The file is read back and checked before it replaces FILE.

Restore: into a home whose ``data/`` is absent or empty (the node stopped). The backup must be of the
home's genesis; its records go to a staging directory renamed into place only after the whole file
checked. The signing state is never restored over one the home already has (that one is newer or
equal: a validator signs on after a backup is taken); a home without one gets none from the backup
either, because the validator may have signed after the backup — see docs/OPERATOR.md. The node,
started again, catches up from its peers by block sync.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import click

from chain.errors import VecheError
from chain.ledger import Ledger
from chain.storage import LevelStore
from genesis.config import NodeConfig, load_node_config
from genesis.model import load_genesis
from node.cli_ops import EXIT_BAD_INPUT, fail
from node.ops.backup import BackupError, BackupHeader, header_of, read_backup, restore_store, write_backup
from node.ops.files import atomic_write
from node.signing_state import SigningStateFile

BACKUP_TIMEOUT_S = 3600.0


def _local_url(config: NodeConfig) -> str:
    host = config.listen_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{config.listen_port}"


async def _fetch(url: str, token: str, out: Path) -> bool:
    """Stream the node's backup into ``out``; False when nothing listens there (the node is stopped)."""
    timeout = aiohttp.ClientTimeout(total=BACKUP_TIMEOUT_S, sock_connect=3)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(url + "/admin/v1/backup", headers={"Authorization": f"Bearer {token}"}) as reply:
                if reply.status != 200:
                    text = (await reply.text())[:300]
                    raise BackupError(f"the node at {url} refused the backup: HTTP {reply.status}: {text}")
                with open(out, "wb") as handle:
                    async for chunk in reply.content.iter_chunked(1 << 20):
                        handle.write(chunk)
    except aiohttp.ClientConnectorError:
        return False
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise BackupError(f"the backup from {url} broke off: {exc}") from exc
    return True


def _read_offline(config: NodeConfig, out: Path) -> None:
    """The node is stopped: snapshot its store directly."""
    genesis = load_genesis(config.genesis_file)
    signing = b""
    if config.is_validator and config.signing_state_file.exists():
        signing = config.signing_state_file.read_bytes()
    store = LevelStore(config.data_dir, create=False)
    try:
        snapshot = store.snapshot()
        try:
            header = header_of(snapshot.get, chain_id=genesis.chain_id, genesis_hash=genesis.hash, node=config.name,
                               signing_state=signing)
            write_backup(out, header, snapshot.items())
        finally:
            snapshot.close()
    finally:
        store.close()


def check_file(path: Path) -> tuple[BackupHeader, int]:
    with open(path, "rb") as handle:
        header, batches = read_backup(handle)
        records = sum(len(batch) for batch in batches)
    return header, records


def backup(home: Path, out: Path) -> None:
    config = load_node_config(home)
    token_file = home / "admin-token"
    started = time.perf_counter()
    partial = Path(tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent or Path("."))[1])
    try:
        online = False
        if token_file.exists():
            online = asyncio.run(_fetch(_local_url(config), token_file.read_text(encoding="ascii").strip(), partial))
        if not online:
            click.echo(f"node {config.name} is not answering at {_local_url(config)}: reading its store directly")
            _read_offline(config, partial)
        header, records = check_file(partial)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    size = out.stat().st_size
    click.echo(f"backup of {config.name} written to {out}: height {header.height}, app hash {header.app_hash.hex()}, "
               f"{records} records, {size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s"
               f"{' (taken while the node ran)' if online else ''}")


def restore(file: Path, home: Path) -> None:
    config = load_node_config(home)
    genesis = load_genesis(config.genesis_file)
    with open(file, "rb") as handle:
        header, _ = read_backup(handle)
    if header.chain_id != genesis.chain_id or header.genesis_hash != genesis.hash:
        raise BackupError(f"the backup is of chain {header.chain_id} (genesis {header.genesis_hash.hex()}); this "
                          f"home runs {genesis.chain_id} (genesis {genesis.hash.hex()})")
    started = time.perf_counter()
    restore_store(file, config.data_dir)
    store = LevelStore(config.data_dir, create=False)
    try:
        ledger = Ledger(store, genesis.params)
        if (ledger.height, ledger.app_hash) != (header.height, header.app_hash):
            raise BackupError("the restored store does not open at the backup's height and app hash")
    finally:
        store.close()
    click.echo(f"restored {config.data_dir} to height {header.height} (app hash {header.app_hash.hex()}) in "
               f"{time.perf_counter() - started:.1f} s; the node catches up from its peers when it starts")
    if config.is_validator:
        restore_signing_state(config, header)


def _height_of(data: bytes, where: str) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "signing-state.bin"
        path.write_bytes(data)
        state = SigningStateFile(path).load()
    if state is None:
        raise BackupError(f"{where}: no signing state")
    return state.height


def restore_signing_state(config: NodeConfig, header: BackupHeader) -> None:
    """Never over a newer (or equal) one; never where there is none (the validator may have signed after
    the backup: that is the recovery procedure's job); only over an older one."""
    path = config.signing_state_file
    backup_height = _height_of(header.signing_state, "the backup") if header.signing_state else None
    if not path.exists():
        click.echo(f"warning: {path} does not exist and is NOT restored from the backup (height "
                   f"{backup_height if backup_height is not None else 'none'}): this validator may have signed after "
                   "the backup was taken, and a stale signing state would let it sign twice. Start it with "
                   "`veche node start --home DIR --recover-signing-state` (it derives a safe floor from the chain), "
                   "see docs/OPERATOR.md", err=True)
        return
    current = SigningStateFile(path).load()
    current_height = current.height if current is not None else 0
    if backup_height is None or current_height >= backup_height:
        click.echo(f"refusing to restore the signing state over a newer one: kept {path} (height {current_height}); "
                   f"the backup's is at height {backup_height if backup_height is not None else 'none'}")
        return
    atomic_write(path, header.signing_state)   # 0600, as SigningStateFile writes it
    click.echo(f"signing state raised from height {current_height} to the backup's {backup_height}")


# --- click -------------------------------------------------------------------------------------------


@click.command("backup")
@click.option("--home", "home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The node's home (its config.json and admin-token).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The backup file.")
def backup_command(home: Path, out: Path) -> None:
    """Write a consistent snapshot of the node's store to OUT (the node may keep running)."""
    try:
        backup(home, out)
    except BackupError as exc:
        fail(exc.message, 1)
    except VecheError as exc:
        fail(exc.message, EXIT_BAD_INPUT)
    except OSError as exc:
        fail(f"cannot write {out}: {exc}", 1)


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--home", "home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The node's home; its data/ must be absent or empty (stop the node first).")
def restore_command(file: Path, home: Path) -> None:
    """Restore the node's store from FILE; the node catches up from its peers when started."""
    try:
        restore(file, home)
    except VecheError as exc:
        fail(exc.message, 1)
    except OSError as exc:
        fail(f"cannot restore: {exc}", 1)
    sys.stdout.flush()
