"""Voter-held keys in real headless Chromium with JavaScript on, against real processes: the four
steps end with a ballot whose voter key never reached the gateway process.

The gateway runs in its test-only wire-logging mode (gateway/wirelog.py). After the vote the test
searches (1) a dump of the gateway process's memory (/proc/PID/mem), (2) every file of the gateway's
home — LevelDB data, logs, the wire log — for the voter's private key, public key and token in raw,
hex and base64 forms, and finds none; and (3) the wire log for a request that carries both the
session cookie and any of them, and finds none. Positive controls show each search can find what is
there (the session cookie in memory and in the wire log, the token request in the wire log). The
browser's requests to the node carried no cookie."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Request

from gateway.wirelog import read_requests
from tests.gateway.realnet import ROOT, RealNet, make_realnet
from tests.gateway.voterheld import FORM_WAIT_S, files_under, login, process_memory, submit, vote_with_script

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def wirenet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNet]:
    net = make_realnet(Path(tmp_path_factory.mktemp("wirenet")) / "testnet", validators=1)
    try:
        net.start(gateway_overrides={"test_wire_log_file": "wire.log"})
        yield net
    finally:
        net.stop()


def test_the_voter_key_never_reaches_the_gateway(wirenet: RealNet, chromium: Browser, tmp_path: Path) -> None:
    context = chromium.new_context()
    page = context.new_page()
    to_node: list[tuple[str, dict[str, str]]] = []

    def note(request: Request) -> None:
        if request.url.startswith(wirenet.node_urls[0]):
            to_node.append((request.url, request.all_headers()))

    page.on("request", note)
    try:
        login(wirenet, page, "+7 912 200-00-01")
        ballot = vote_with_script(wirenet, page)
        cookies: list[Any] = context.cookies(wirenet.gateway_url)
        session = next(c["value"] for c in cookies if c["name"] == "veche_session").encode()
    except BaseException:
        page.screenshot(path=str(tmp_path / "voter-held.png"))
        (tmp_path / "voter-held.html").write_text(page.content(), encoding="utf-8")
        raise
    finally:
        context.close()
    needles = ballot.needles()
    # the node got the ballot, without any cookie
    assert any(url.endswith("/api/v1/txs") for url, _ in to_node), to_node
    for url, headers in to_node:
        assert "cookie" not in {name.lower() for name in headers}, (url, headers)
    # (1) the gateway process's memory
    assert wirenet.gateway is not None and wirenet.gateway.process is not None
    memory = process_memory(wirenet.gateway.process.pid)
    assert sum(len(region) for region in memory) > 10_000_000
    assert any(session in region for region in memory)                    # the scan does see the heap
    for name, needle in needles.items():
        assert not any(needle in region for region in memory), f"the gateway's memory holds the {name}"
    # (2) every file of the gateway's home: LevelDB, logs, the wire log
    files = files_under(wirenet.gateway_home)
    assert any(path.name.endswith((".ldb", ".log")) for path, _ in files)
    for path, data in files:
        for name, needle in needles.items():
            assert needle not in data, f"{path} holds the {name}"
    # (3) no request to the gateway carries the session cookie and the key or token
    requests = read_requests(wirenet.gateway_home / "wire.log")
    token_requests = [r for r in requests if r.startswith(b"POST /c/ib-2027/token ")]
    assert len(token_requests) == 1 and session in token_requests[0]      # the log has the cookie-bearing request
    for request in requests:
        carried = [name for name, needle in needles.items() if needle in request]
        assert not (session in request and carried), (request[:200], carried)
        assert not carried, (request[:200], carried)
    # the receipt the browser made verifies with veche receipt verify and only the genesis file
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(ballot.receipt))
    checked = subprocess.run([sys.executable, "-m", "node.cli", "receipt", "verify", str(path), "--node",
                              wirenet.node_urls[0], "--genesis", str(wirenet.layout.genesis_file)],
                             capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_javascript_the_gateway_signs_as_before(wirenet: RealNet, chromium: Browser) -> None:
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        login(wirenet, page, "+7 912 200-00-02")
        assert page.locator('script[src="/static/vote.js"]').count() == 1      # served, but not run
        page.check('input[name="choice"]')
        submit(page, "form#ballot button[type='submit']")
        html = page.content()
        assert "Ваш голос учтён" in html or "ждём подтверждения" in html, html
        assert page.locator("#tx-hash").count() == 1 and page.locator("#vh-done").count() == 0
        assert page.url.startswith(wirenet.gateway_url + "/receipt/")
        assert FORM_WAIT_S > 1
    finally:
        context.close()
