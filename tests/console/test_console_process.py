"""The console as its operators start it: what it refuses, how it guards itself, and signing requests as files.

A real validator process (LevelDB, loopback HTTP) with a committee of three keys, k = 2, and real
console processes (``python -m node.cli console``). Checked here: a key file others may read, a key
with no role (both exit 3, nothing listens); loopback only by default (the kernel's table of listening
sockets); the one-time login token; CSRF and cross-site posts; requests naming another host; and the
file path of co-signing: a request downloaded from one console, signed with ``veche sign``, sent with
the console or ``veche submit``, altered or expired files refused with a message.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.crypto import SigningKey, write_key_file
from tests.console.consolekit import ConsoleProcess, Visitor, run_console
from tests.node.netkit import ROOT, LocalNet, free_base_port, get_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    local = LocalNet(tmp_path_factory.mktemp("console-net") / "net", validators=1, observers=0, committee=3,
                     threshold=2)
    try:
        local.start_all()
        yield local
    finally:
        local.close()


@pytest.fixture(scope="module")
def member(net: LocalNet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    console = ConsoleProcess(net.directory / "keys" / "committee-0.json", [net.urls["validator-0"]],
                             tmp_path_factory.mktemp("console-0")).start()
    try:
        yield console
    finally:
        console.stop()


def listening_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on ``port`` (the kernel's /proc/net/tcp and tcp6 tables)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:   # 0A: LISTEN
                found.add(address)
    return found


def test_a_key_file_others_may_read_is_refused(net: LocalNet, tmp_path: Path) -> None:
    key_file = tmp_path / "committee.json"
    shutil.copy(net.directory / "keys" / "committee-0.json", key_file)
    os.chmod(key_file, 0o644)
    port = free_base_port(1)
    done = run_console(key_file, [net.urls["validator-0"]], port)
    assert done.returncode == 3, done.stderr
    assert "mode 0644" in done.stderr and f"chmod 600 {key_file}" in done.stderr
    assert listening_addresses(port) == set() and "token=" not in done.stdout


def test_a_key_without_a_role_is_refused(net: LocalNet, tmp_path: Path) -> None:
    key_file = tmp_path / "stranger.json"
    write_key_file(key_file, SigningKey.generate())
    done = run_console(key_file, [net.urls["validator-0"]], free_base_port(1))
    assert done.returncode == 3
    assert "neither a committee key, a district operator key nor a gateway key" in done.stderr


def test_loopback_only_token_required_once_and_other_hosts_refused(member: ConsoleProcess) -> None:
    assert listening_addresses(member.port) == {"0100007F"}    # 127.0.0.1, nothing else
    visitor = Visitor(member.url)
    refused = visitor.get("/")
    assert refused.status == 401 and "Сначала войдите" in refused.message()
    assert visitor.get("/requests").status == 401
    assert visitor.get("/login?token=not-the-token").status == 403
    assert visitor.get("/login").status == 403
    assert visitor.login(member.login_url).status == 303
    page = visitor.get("/")
    assert page.status == 200 and "член комиссии committee-0" in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert visitor.get(member.login_url).status == 403        # the link works once
    assert Visitor(member.url).get(member.login_url).status == 403
    other_host = visitor.get("/", headers={"Host": f"evil.example:{member.port}"})
    assert other_host.status == 421


def test_every_form_needs_its_csrf_token(net: LocalNet, member: ConsoleProcess) -> None:
    console = ConsoleProcess(net.directory / "keys" / "committee-1.json", [net.urls["validator-0"]],
                             member.folder).start()
    try:
        visitor = Visitor(console.url)
        assert visitor.login(console.login_url).status == 303
        token = visitor.csrf("/campaigns")
        before = get_json(net.urls["validator-0"] + "/api/v1/signing-requests")["requests"]
        for fields in ({"reason": "no token"}, {"reason": "wrong token", "csrf_token": "0" * 64}):
            answer = visitor.post_form("/campaigns/ib-2027/close", fields)
            assert answer.status == 403 and "Форма устарела" in answer.message()
        cross_site = visitor.post_form("/campaigns/ib-2027/close", {"reason": "cross-site", "csrf_token": token},
                                       headers={"Origin": "http://evil.example"})
        assert cross_site.status == 403 and "с другого сайта" in cross_site.message()
        assert visitor.post_form("/logout", {}).status == 403
        assert get_json(net.urls["validator-0"] + "/api/v1/signing-requests")["requests"] == before
        assert get_json(net.urls["validator-0"] + "/api/v1/campaigns/ib-2027")["status"] == "open"
    finally:
        console.stop()


def test_signing_requests_as_files_between_console_and_cli(net: LocalNet, member: ConsoleProcess,
                                                          tmp_path: Path) -> None:
    node = net.urls["validator-0"]
    console = ConsoleProcess(net.directory / "keys" / "committee-0.json", [node], tmp_path).start()
    try:
        visitor = Visitor(console.url)
        visitor.login(console.login_url)
        token = visitor.csrf("/campaigns")
        prepared = visitor.post_form("/campaigns/ib-deti-2027/close", {"reason": "closed by the file test",
                                                                       "csrf_token": token})
        assert prepared.status == 303
        signing_hash = prepared.headers["Location"].split("/requests/")[1].split("?")[0]
        download = visitor.get(f"/requests/{signing_hash}.json")
        assert download.status == 200 and "attachment" in download.headers["Content-Disposition"]
        document = json.loads(download.text)
        assert document["format"] == "veche-signing-request/1" and len(document["signatures"]) == 1
        assert document["expires_at_ms"] > time.time() * 1000

        # altered on the way: another reason in the body, the hash left as it was → refused, nothing signed
        altered = dict(document, body=document["body"].replace("66696c652074657374", "66696c652074657375"))
        assert altered["body"] != document["body"]
        answer = visitor.post_multipart("/requests/import", {"csrf_token": token},
                                        [("file", "req.json", json.dumps(altered).encode(), "application/json")])
        assert answer.status == 409 and "изменён или повреждён" in answer.message()
        assert "signing_hash does not match the body" in answer.message()
        # expired: refused by the console and by veche sign
        expired = dict(document, expires_at_ms=int(time.time() * 1000) - 1000)
        answer = visitor.post_multipart("/requests/import", {"csrf_token": token},
                                        [("file", "req.json", json.dumps(expired).encode(), "application/json")])
        assert answer.status == 410 and "Срок запроса на подпись истёк" in answer.message()
        path = tmp_path / "expired.json"
        path.write_text(json.dumps(expired))
        signed = veche("sign", str(path), "--key", str(net.directory / "keys" / "committee-2.json"), "--yes")
        assert signed.returncode == 2 and "expired" in signed.stderr

        # the file path: the second member signs with veche sign on another machine; the console submits it
        path = tmp_path / "request.json"
        path.write_text(download.text)
        signed = veche("sign", str(path), "--key", str(net.directory / "keys" / "committee-2.json"), "--yes")
        assert signed.returncode == 0, signed.stdout + signed.stderr
        assert len(json.loads(path.read_text())["signatures"]) == 2
        answer = visitor.post_multipart("/requests/import", {"csrf_token": token},
                                        [("file", "request.json", path.read_bytes(), "application/json")])
        assert answer.status == 303
        page = visitor.get(f"/requests/{signing_hash}")
        assert 'id="signature-count">2 из 2' in page.text and "closed by the file test" in page.text
        outcome = visitor.post_form(f"/requests/{signing_hash}/submit", {"csrf_token": token})
        assert outcome.status == 200 and 'id="tx-hash"' in outcome.text, outcome.message()
        assert get_json(node + "/api/v1/campaigns/ib-deti-2027")["close_reason"] == "closed by the file test"
        # ... and veche submit takes the same file: the transaction is already committed (exit 0)
        submitted = veche("submit", str(path), "--node", node)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    finally:
        console.stop()


def veche(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_the_console_refuses_to_start_when_no_node_answers(tmp_path: Path) -> None:
    key_file = tmp_path / "k.json"
    write_key_file(key_file, SigningKey.generate())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    done = run_console(key_file, [f"http://127.0.0.1:{dead}"], free_base_port(1))
    assert done.returncode == 1 and "cannot reach the network" in done.stderr


def test_each_role_sees_only_its_own_pages(net: LocalNet, tmp_path: Path) -> None:
    gateway = ConsoleProcess(net.directory / "gateway" / "gateway-key.json", [net.urls["validator-0"]],
                             tmp_path).start()
    district = ConsoleProcess(net.directory / "keys" / "district-kamyshin.json", [net.urls["validator-0"]],
                              tmp_path).start()
    try:
        visitor = Visitor(gateway.url)
        visitor.login(gateway.login_url)
        home = visitor.get("/")
        assert "сайт голосования gateway" in home.text and "/ 3000000" in home.text   # registered / its cap
        assert 'href="/review"' not in home.text and 'href="/initiatives/new"' not in home.text
        for path in ("/review", "/requests", "/campaigns/new", "/initiatives"):
            refused = visitor.get(path)
            assert refused.status == 403 and "Это делает только ключ" in refused.message(), path
        visitor = Visitor(district.url)
        visitor.login(district.login_url)
        home = visitor.get("/")
        assert "оператор района kamyshin" in home.text and 'href="/initiatives/new"' in home.text
        assert 'href="/requests"' not in home.text
        refused = visitor.get("/requests")
        assert refused.status == 403 and "ключ члена комиссии" in refused.message()
    finally:
        gateway.stop()
        district.stop()
