"""Key files and `veche keys generate` / `veche keys show`."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from chain.crypto import SigningKey, read_key_file, write_key_file
from chain.errors import VecheError
from genesis.cli import keys_group


@pytest.fixture()
def open_umask() -> Iterator[None]:
    """A umask that would make new files world-readable: the key file must still be 0600."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_file_is_0600_and_never_overwritten(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "key.json"
    key = SigningKey.generate()
    write_key_file(path, key)
    assert mode(path) == 0o600
    with pytest.raises(VecheError, match="refusing to overwrite"):
        write_key_file(path, SigningKey.generate())
    assert read_key_file(path).public_key == key.public_key


def test_generate_prints_the_public_key(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "operator.json"
    result = CliRunner().invoke(keys_group, ["generate", "--out", str(path)])
    assert result.exit_code == 0, result.output
    public_hex = result.output.strip()
    assert len(public_hex) == 64 and bytes.fromhex(public_hex)
    assert mode(path) == 0o600
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["public_key"] == public_hex
    assert read_key_file(path).public_key.hex() == public_hex


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "operator.json"
    runner = CliRunner()
    first = runner.invoke(keys_group, ["generate", "--out", str(path)])
    before = path.read_bytes()
    second = runner.invoke(keys_group, ["generate", "--out", str(path)])
    assert second.exit_code != 0
    assert "already exists" in second.output
    assert path.read_bytes() == before
    assert first.output.strip() in before.decode()


def test_generate_needs_an_existing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(keys_group, ["generate", "--out", str(tmp_path / "missing" / "key.json")])
    assert result.exit_code != 0
    assert "does not exist" in result.output


def test_generate_requires_out() -> None:
    result = CliRunner().invoke(keys_group, ["generate"])
    assert result.exit_code != 0
    assert "--out" in result.output


def test_show_prints_the_public_key_of_a_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    key = SigningKey.generate()
    write_key_file(path, key)
    result = CliRunner().invoke(keys_group, ["show", str(path)])
    assert result.exit_code == 0
    assert result.output.strip() == key.public_key.hex()
    broken = tmp_path / "broken.json"
    broken.write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(keys_group, ["show", str(broken)])
    assert result.exit_code != 0
    assert "not a Veche key file" in result.output


def test_generate_with_a_signing_state_for_a_new_validator(tmp_path: Path) -> None:
    from consensus.signing_state import SigningState, decode_file

    key, state = tmp_path / "node-key.json", tmp_path / "signing-state.bin"
    result = CliRunner().invoke(keys_group, ["generate", "--out", str(key), "--signing-state", str(state)])
    assert result.exit_code == 0, result.output
    assert decode_file(state.read_bytes()) == (SigningState.initial(), False)
    assert mode(state) == 0o600
    again = CliRunner().invoke(keys_group, ["generate", "--out", str(tmp_path / "other.json"),
                                            "--signing-state", str(state)])
    assert again.exit_code != 0 and "never overwritten" in again.output
    assert not (tmp_path / "other.json").exists()
