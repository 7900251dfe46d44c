"""Browser helpers for voter-held keys (Playwright, Debian's Chromium): log in, vote with the ballot
page's script, read what the browser kept, and search a process's memory (``/proc/PID/mem``)."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from chain.receipt import verify_receipt
from chain.tx import Tx, decode_tx
from genesis.model import load_genesis
from tests.gateway.realnet import RealNet, get_json

FORM_WAIT_S = 1.1   # the testnet's form_min_seconds is 1


@dataclass(frozen=True)
class BrowserBallot:
    tx_hash: str
    tx: Tx
    public_key: bytes
    seed: bytes
    token: bytes
    receipt: dict[str, Any]

    def needles(self) -> dict[str, bytes]:
        """Every form in which the voter's key or token could travel or be stored."""
        found: dict[str, bytes] = {}
        for name, value in (("public key", self.public_key), ("private key", self.seed), ("token", self.token)):
            found[f"{name} (raw)"] = value
            found[f"{name} (hex)"] = value.hex().encode()
            found[f"{name} (HEX)"] = value.hex().upper().encode()
            found[f"{name} (base64)"] = base64.b64encode(value).rstrip(b"=")
            found[f"{name} (base64url)"] = base64.urlsafe_b64encode(value).rstrip(b"=")
        return found


def submit(page: Page, selector: str) -> None:
    time.sleep(FORM_WAIT_S)
    with page.expect_navigation():
        page.click(selector)


def login(net: RealNet, page: Page, phone: str, campaign: str = "ib-2027") -> str:
    """Steps 1–2 from the home page, on the district's ballot page; returns its path."""
    gateway = net.gateway_url
    page.goto(gateway + "/")
    with page.expect_navigation():
        page.click(f'a[href^="/c/{campaign}/d/"]')
    district_path = page.url.removeprefix(gateway)
    page.fill("#phone", phone)
    submit(page, 'form[action="/login"] button[type="submit"]')
    page.fill("#code", net.outbox_code(phone))
    submit(page, 'form[action="/login/code"] button[type="submit"]')
    assert page.url == gateway + district_path
    return district_path


def vote_with_script(net: RealNet, page: Page, campaign: str = "ib-2027") -> BrowserBallot:
    """Steps 3–4 with JavaScript: the script makes the key, gets the token, sends the ballot to a node."""
    assert page.locator('script[src="/static/vote.js"]').count() == 1, page.content()
    page.check('input[name="choice"]')
    time.sleep(FORM_WAIT_S)
    page.click("form#ballot button[type='submit']")          # the script takes over: no navigation
    page.wait_for_selector("#vh-done, #vh-status.err", timeout=90_000)
    if page.locator("#vh-status.err").count():
        raise AssertionError(page.inner_text("#vh-status"))
    html = page.content()
    assert "Ваш голос учтён" in html or "Your vote is counted" in html
    tx_hash = page.inner_text("#tx-hash").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", tx_hash)
    kept = json.loads(page.evaluate(f"sessionStorage.getItem('veche-key-{campaign}')"))
    href = page.get_attribute("#receipt-download", "href") or ""
    assert href.startswith("data:application/json;charset=utf-8,")
    assert (page.get_attribute("#receipt-download", "download") or "").endswith(".json")
    receipt = json.loads(urllib.parse.unquote(href.split(",", 1)[1]))
    found = get_json(f"{net.node_urls[0]}/api/v1/txs/{tx_hash}")
    assert found["status"] == "committed"
    tx = decode_tx(bytes.fromhex(found["proof"]["tx"]))
    public_key, seed, token = bytes.fromhex(kept["pk"]), bytes.fromhex(kept["sk"])[-32:], bytes.fromhex(kept["token"])
    assert tx.signers == (public_key,) and tx.body.token == token and tx.body.mode == "voter-held"
    checked = verify_receipt(receipt, load_genesis(net.layout.genesis_file).params)
    assert checked.tx.hash.hex() == tx_hash and receipt["tx_hash"] == tx_hash
    return BrowserBallot(tx_hash, tx, public_key, seed, token, receipt)


def process_memory(pid: int) -> list[bytes]:
    """Every readable mapping of process ``pid`` (a memory dump through /proc/PID/mem)."""
    regions: list[bytes] = []
    with open(f"/proc/{pid}/maps", encoding="ascii") as maps, open(f"/proc/{pid}/mem", "rb", 0) as memory:
        for line in maps:
            fields = line.split()
            start, end = (int(part, 16) for part in fields[0].split("-"))
            if not fields[1].startswith("r") or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]",
                                                                                      "[vvar_vclock]")):
                continue
            try:
                memory.seek(start)
                regions.append(memory.read(end - start))
            except (OSError, ValueError, OverflowError):
                continue
    return regions


def files_under(directory: Path) -> list[tuple[Path, bytes]]:
    return [(path, path.read_bytes()) for path in sorted(directory.rglob("*")) if path.is_file()]
