"""The signing-state file: durable, atomic replacement, refuses to start on a damaged file."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain.block import STEP_PREVOTE
from chain.crypto import SigningKey
from consensus.errors import SigningStateError
from consensus.messages import make_vote
from consensus.signing_state import SigningState
from node.signing_state import SigningStateFile


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
    assert loaded == SigningState.decode(path.read_bytes())
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
