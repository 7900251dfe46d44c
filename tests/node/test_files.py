"""node/ops/files.py: the one atomic, durable file replacement — data fsynced before the rename, the
folder fsynced after it; a failure at any step leaves the old file whole and no temporary behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from node.ops.files import TEMP_PREFIX, atomic_write


def test_writes_replaces_and_leaves_only_the_target(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, b"first")
    atomic_write(target, b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    assert target.stat().st_mode & 0o777 == 0o600


def test_mode_is_that_of_a_new_file_less_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        atomic_write(tmp_path / "public", b"x", mode=0o666)
    finally:
        os.umask(previous)
    assert (tmp_path / "public").stat().st_mode & 0o777 == 0o644


def test_fsync_of_the_data_then_rename_then_fsync_of_the_folder(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.bin"
    atomic_write(target, b"old")
    events: list[str] = []
    opened: dict[int, Path] = {}
    real_open, real_fsync, real_replace = os.open, os.fsync, os.replace

    def tracking_open(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        fd = real_open(path, flags, mode)
        opened[fd] = Path(path)
        return fd

    def tracking_fsync(fd: int) -> None:
        where = opened[fd]
        events.append("fsync folder" if where == tmp_path else f"fsync {where.name}")
        real_fsync(fd)

    def tracking_replace(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
        source = Path(source)
        assert source.parent == tmp_path and source.name.startswith(TEMP_PREFIX + "state.bin.")
        assert source.read_bytes() == b"new bytes"      # complete before it takes the target's name
        assert target.read_bytes() == b"old"
        events.append(f"replace {source.name} -> {Path(destination).name}")
        real_replace(source, destination)

    monkeypatch.setattr(os, "open", tracking_open)
    monkeypatch.setattr(os, "fsync", tracking_fsync)
    monkeypatch.setattr(os, "replace", tracking_replace)
    atomic_write(target, b"new bytes")
    assert len(events) == 3, events
    temporary = events[0].removeprefix("fsync ")
    assert events == [f"fsync {temporary}", f"replace {temporary} -> state.bin", "fsync folder"]
    assert target.read_bytes() == b"new bytes"


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_crash_mid_write_keeps_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              failing: str) -> None:
    target = tmp_path / "state.bin"
    atomic_write(target, b"the old state")
    real_write = os.write

    def half_then_full_disk(fd: int, data: object) -> int:
        real_write(fd, bytes(memoryview(data))[:3])  # type: ignore[arg-type]
        raise OSError(errno.ENOSPC, "No space left on device")

    def fails(*args: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, failing, half_then_full_disk if failing == "write" else fails)
    with pytest.raises(OSError):
        atomic_write(target, b"a new state, never whole")
    monkeypatch.undo()
    assert target.read_bytes() == b"the old state"
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]


def test_an_interrupt_mid_write_also_removes_the_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.bin"

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_named_temporary_left_by_a_crash_is_truncated_and_consumed(tmp_path: Path) -> None:
    target = tmp_path / "signing-state.bin"
    temporary = tmp_path / "signing-state.bin.tmp"
    temporary.write_bytes(b"a longer torn write from before the crash")
    atomic_write(target, b"short", temporary=temporary)
    assert target.read_bytes() == b"short"
    assert not temporary.exists()
