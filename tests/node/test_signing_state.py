"""The signing-state file: durable, atomic replacement, checksummed; a damaged file is refused, an old
(format 1) file is accepted once and rewritten, a full disk is told apart."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from chain.block import STEP_PREVOTE
from chain.crypto import SigningKey
from consensus.errors import SigningStateError
from consensus.messages import make_vote
from consensus.signing_state import MAGIC, SigningState, decode_file, encode_file
from node.signing_state import DiskFullError, SigningStateDamaged, SigningStateFile, SigningStateMissing


def signed_state(height: int) -> SigningState:
    key = SigningKey.generate()
    vote = make_vote("veche-test", STEP_PREVOTE, height, 0, b"\x11" * 32, 2, key.sign)
    return SigningState(height=height, round=0, step=STEP_PREVOTE, last_signed=(vote,))


def test_missing_file_means_never_signed(tmp_path: Path) -> None:
    assert SigningStateFile(tmp_path / "signing-state.bin").load() is None


def test_round_trip_and_replacement(tmp_path: Path) -> None:
    path = tmp_path / "signing-state.bin"
    file = SigningStateFile(path)
    file.store(signed_state(5))
    file.store(signed_state(6))
    loaded = SigningStateFile(path).load()
    assert loaded is not None and loaded.height == 6 and loaded.last_signed[0].height == 6
    assert path.read_bytes()[:8] == MAGIC
    assert (loaded, False) == decode_file(path.read_bytes())
    assert not (tmp_path / "signing-state.bin.tmp").exists()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_torn_temporary_file_does_not_hide_the_last_state(tmp_path: Path) -> None:
    path = tmp_path / "signing-state.bin"
    SigningStateFile(path).store(signed_state(9))
    (tmp_path / "signing-state.bin.tmp").write_bytes(b"\x9a\x01half-written")  # crash before rename
    loaded = SigningStateFile(path).load()
    assert loaded is not None and loaded.height == 9


def test_damaged_file_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "signing-state.bin"
    path.write_bytes(b"\x00not a signing state")
    with pytest.raises(SigningStateError) as refused:
        SigningStateFile(path).load()
    assert "refusing to start" in refused.value.message


def test_out_of_descriptors_is_retried_after_shedding_not_fatal(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails with EMFILE (client load) sheds connections and tries again; others still fail."""
    import asyncio
    import errno
    import os

    path = tmp_path / "signing-state.bin"
    file = SigningStateFile(path)
    real_open = os.open
    failures = [errno.EMFILE, errno.ENFILE, errno.EMFILE]
    shed: list[int] = []

    def flaky_open(target: object, flags: int, *args: object) -> int:
        if failures:
            raise OSError(failures.pop(0), "Too many open files")
        return real_open(target, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", flaky_open)
    asyncio.run(file.store_retrying(signed_state(9), lambda: shed.append(1)))
    loaded = SigningStateFile(path).load()
    assert loaded is not None and loaded.height == 9 and len(shed) == 3
    failures.append(errno.EIO)
    with pytest.raises(OSError) as failed:
        asyncio.run(file.store_retrying(signed_state(10), lambda: shed.append(1)))
    assert failed.value.errno == errno.EIO and len(shed) == 3


def test_every_flipped_byte_is_refused_with_the_runbook(tmp_path: Path) -> None:
    path = tmp_path / "signing-state.bin"
    SigningStateFile(path).store(signed_state(7))
    good = path.read_bytes()
    for offset in range(len(good)):
        damaged = bytearray(good)
        damaged[offset] ^= 0x10
        path.write_bytes(bytes(damaged))
        with pytest.raises(SigningStateDamaged) as refused:
            SigningStateFile(path).load()
        assert "Machine faults: lost or damaged signing state" in refused.value.message, offset
    for cut in (1, 8, 12, len(good) - 1):
        path.write_bytes(good[:cut])
        with pytest.raises(SigningStateDamaged):
            SigningStateFile(path).load()
    path.write_bytes(good + b"\x00")
    with pytest.raises(SigningStateDamaged):
        SigningStateFile(path).load()


def test_a_format_1_file_is_accepted_once_and_rewritten_with_a_checksum(tmp_path: Path) -> None:
    path = tmp_path / "signing-state.bin"
    state = signed_state(12)
    legacy = state.encode()[:0] + _format_1(state)
    path.write_bytes(legacy)
    loaded = SigningStateFile(path).load()
    assert loaded is not None and loaded.height == 12 and loaded.floor == 0
    assert path.read_bytes()[:8] == MAGIC  # rewritten in format 2
    assert decode_file(path.read_bytes()) == (loaded, False)


def _format_1(state: SigningState) -> bytes:
    """The format-1 body: the first ten fields of the current array (no floor, no polka), version 1."""
    from chain import codec

    raw = codec.decode(state.encode())
    return codec.encode([1, *raw[1:10]])


def test_missing_file_is_refused_where_a_signing_state_is_required(tmp_path: Path) -> None:
    with pytest.raises(SigningStateMissing) as refused:
        SigningStateFile(tmp_path / "signing-state.bin").load_required()
    assert "--recover-signing-state" in refused.value.message
    assert "Machine faults: lost or damaged signing state" in refused.value.message


def test_the_floor_survives_the_file(tmp_path: Path) -> None:
    path = tmp_path / "signing-state.bin"
    SigningStateFile(path).store(SigningState.recovered(170))
    loaded = SigningStateFile(path).load()
    assert loaded is not None and loaded.floor == 170
    assert not loaded.may_sign_at(170) and loaded.may_sign_at(171)
    assert encode_file(loaded) == path.read_bytes()


def test_a_full_disk_is_a_disk_full_error_and_keeps_the_old_state(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "signing-state.bin"
    file = SigningStateFile(path)
    file.store(signed_state(3))
    real_write = os.write

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(DiskFullError) as failed:
        file.store(signed_state(4))
    monkeypatch.setattr(os, "write", real_write)
    assert failed.value.errno == errno.ENOSPC
    assert not (tmp_path / "signing-state.bin.tmp").exists()
    loaded = SigningStateFile(path).load()
    assert loaded is not None and loaded.height == 3


def test_a_restored_signing_state_is_written_like_every_other_one(tmp_path: Path) -> None:
    """``veche node restore`` raising an older signing state to the backup's: replaced atomically, mode 0600
    like the file the node and ``veche testnet init`` write (docs/GENESIS.md), no temporary left behind."""
    from genesis.config import NodeConfig
    from node.cli.backup import restore_signing_state
    from node.ops.backup import BackupHeader

    path = tmp_path / "signing-state.bin"
    SigningStateFile(path).store(signed_state(3))
    config = NodeConfig(home=tmp_path, name="validator-0", role="validator", listen_host="127.0.0.1",
                        listen_port=1, api_url="http://127.0.0.1:1", genesis_file=tmp_path / "genesis.json",
                        key_file=tmp_path / "node-key.json", signing_state_file=path, data_dir=tmp_path / "data",
                        peers=())
    header = BackupHeader(chain_id="veche-test", genesis_hash=b"\x00" * 32, height=9, app_hash=b"\x00" * 32,
                          created_ms=0, node="validator-0", signing_state=encode_file(signed_state(8)))
    previous = os.umask(0o022)
    try:
        restore_signing_state(config, header)
    finally:
        os.umask(previous)
    loaded = SigningStateFile(path).load()
    assert loaded is not None and loaded.height == 8
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing-state.bin"]
