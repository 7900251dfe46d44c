"""``veche --ca-file`` (or VECHE_CA_FILE): the CLI's node client trusts a private CA beside the system's."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import main
from node.ops import tls
from tests.paths import REPO_ROOT


@pytest.fixture
def reset_ca() -> Iterator[None]:
    yield
    tls.set_default_ca_file(None)


def test_ca_file_is_trusted_and_a_bad_one_refused(tmp_path: Path, reset_ca: None) -> None:
    subprocess.run(["sh", str(REPO_ROOT / "deploy" / "pki" / "veche-ca.sh"), "init", str(tmp_path / "ca")],
                   check=True, capture_output=True)
    runner = CliRunner()
    result = runner.invoke(main, ["--ca-file", str(tmp_path / "ca" / "ca.crt"), "keys", "show", "--help"])
    assert result.exit_code == 0, result.output
    subjects = [dict(item[0] for item in cert["subject"]) for cert in tls.default_context().get_ca_certs()]
    assert {"commonName": "Veche regional CA"} in subjects
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    result = runner.invoke(main, ["--ca-file", str(tmp_path / "bad.pem"), "keys", "show", "--help"])
    assert result.exit_code == 2 and "cannot read the CA certificates" in result.output
    result = runner.invoke(main, ["keys", "show", "--help"], env={"VECHE_CA_FILE": str(tmp_path / "bad.pem")})
    assert result.exit_code == 2
