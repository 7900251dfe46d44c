"""A region deployed from the shipped files only: 4 validators, an observer, the gateway and an SMS
provider, each on its own "machine" (a network namespace), nginx with TLS from a private CA in front
of every node and the gateway.

What an operator does, in order: build the wheel and install it into a venv (/opt/veche); make the
CA and the machines' certificates with deploy/pki/veche-ca.sh; generate keys; write genesis.json and
every config.json from docs/examples/ (changing names, addresses, paths); check the units with
``systemd-analyze verify``; start each process with its unit's ``ExecStart`` line (paths moved) and
nginx with the shipped site (names, certificates, monitoring address changed); create a campaign,
submit and approve an initiative with the CLI over https (``--ca-file``). Then citizens vote through
https, the node counts the gateway as a trusted client through its proxy, the observer re-verifies
everything, /metrics parse, and the gateway's /healthz fails while the SMS provider is down.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chain.crypto import SigningKey, read_key_file, write_key_file
from node import exitcodes
from tests.deploy.machines import Lab, wait_for
from tests.deploy.shipped import (
    NGINX_GATEWAY, NGINX_NODE, PKI, adapt_nginx, exec_start, nginx_main, tool, unit_environment,
    write_adapted_units,
)
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.slow

EXAMPLES = REPO_ROOT / "docs" / "examples"
VALIDATORS = ("validator-0", "validator-1", "validator-2", "validator-3")
MACHINES = (*VALIDATORS, "observer-0", "gateway", "sms")
CAMPAIGN = "volgograd-2027"
DISTRICT = "volzhsky"
INITIATIVE = "volzhsky-01"
PHONES = ("+79123450001", "+79123450002", "+79123450003")
SMS_LOGIN = "volgograd-ib"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TX_HASH = re.compile(r'id="tx-hash">([0-9a-f]{64})<')


@dataclass
class Region:
    root: Path
    lab: Lab
    prefix: Path
    ca: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    sms_messages: Path = Path()
    committee: list[Path] = field(default_factory=list)
    district_key: Path = Path()
    voting_start_ms: int = 0

    def url(self, machine: str) -> str:
        return f"https://{self.lab.machines[machine].address}"

    @property
    def veche(self) -> str:
        return str(self.prefix / "bin" / "veche")

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """The operator's CLI from the installed wheel, trusting the region's CA."""
        return subprocess.run([self.veche, "--ca-file", str(self.ca / "ca.crt"), *args], capture_output=True,
                              text=True, timeout=timeout)

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca / "ca.crt"))

    def get(self, url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context()) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def json(self, url: str) -> tuple[int, Any]:
        status, body = self.get(url)
        return status, json.loads(body)

    def log(self, name: str) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else ""


def build_wheel_install(root: Path) -> Path:
    """``pip wheel`` the checkout, install the wheel into a fresh venv (the /opt/veche of the docs)."""
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO_ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("veche-*.whl"))
    prefix = root / "opt" / "veche"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True, timeout=120)
    site = next((prefix / "lib").glob("python3*/site-packages"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(prefix / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    # the dependencies (aiohttp, plyvel, …) come from this test environment's site-packages, added
    # after the venv's own: the code itself runs from the wheel, not from the checkout
    dependencies = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "veche-test-dependencies.pth").write_text(dependencies + "\n", encoding="utf-8")
    return prefix


def issue_certificates(region: Region) -> None:
    subprocess.run(["sh", str(PKI), "init", str(region.ca)], check=True, capture_output=True)
    for name, machine in region.lab.machines.items():
        subprocess.run(["sh", str(PKI), "issue", str(region.ca), name, f"IP:{machine.address}"], check=True,
                       capture_output=True)


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def write_homes(region: Region) -> dict[str, Path]:
    """Keys, genesis.json and every config.json, from docs/examples/ with this region's names and addresses."""
    keys_dir = region.root / "keys"
    keys_dir.mkdir()
    keys = {name: SigningKey.generate() for name in ("committee-0", "committee-1", "committee-2", "district-volgograd",
                                                     "district-volzhsky", "gateway")}
    for name, key in keys.items():
        write_key_file(keys_dir / f"{name}.json", key)
    for name in VALIDATORS:       # as each validator operator does on their machine: key and signing state
        made = subprocess.run([region.veche, "keys", "generate", "--out", str(keys_dir / f"{name}.json"),
                               "--signing-state", str(keys_dir / f"{name}.signing-state.bin")],
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        keys[name] = read_key_file(keys_dir / f"{name}.json")
    region.committee = [keys_dir / "committee-0.json", keys_dir / "committee-1.json"]
    region.district_key = keys_dir / "district-volzhsky.json"
    genesis = example("genesis.json")
    genesis["chain_id"] = f"deploy-test-{region.lab.slot}"
    genesis["genesis_time_ms"] = int(time.time() * 1000)
    for index, validator in enumerate(genesis["validators"]):
        validator["public_key"] = keys[VALIDATORS[index]].public_key.hex()
        validator["url"] = region.url(VALIDATORS[index])
    for index, member in enumerate(genesis["committee"]["keys"]):
        member["public_key"] = keys[f"committee-{index}"].public_key.hex()
    for operator in genesis["district_operators"]:
        operator["public_key"] = keys[f"district-{operator['district_id']}"].public_key.hex()
    genesis["gateways"][0].update(public_key=keys["gateway"].public_key.hex(), url=region.url("gateway"))
    genesis_file = region.root / "genesis.json"
    genesis_file.write_text(json.dumps(genesis, ensure_ascii=False, indent=2), encoding="utf-8")
    checked = subprocess.run([region.veche, "genesis", "check", str(genesis_file)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr

    homes: dict[str, Path] = {}
    gateway_address = region.lab.machines["gateway"].address
    for name in (*VALIDATORS, "observer-0", "gateway"):
        role = "gateway" if name == "gateway" else "observer" if name.startswith("observer") else "validator"
        state = region.root / "machines" / name / "var" / "lib" / "veche"
        home = state / role
        home.mkdir(parents=True)
        homes[name] = home
        shutil.copy(genesis_file, home / "genesis.json")
        shutil.copy(region.ca / "ca.crt", home / "ca.pem")
        config = example(f"{role}-config.json")
        if role == "gateway":
            write_key_file(home / "gateway-key.json", keys["gateway"])
            config["url"] = region.url("gateway")
            config["nodes"] = [region.url(v) for v in VALIDATORS]
            config["sms"]["url"] = region.url("sms")
            config["sms"]["check_interval_seconds"] = 1
            config["health_interval_seconds"] = 1
            (home / "smsc-password").write_text("smsc-password-of-the-region\n", encoding="utf-8")
            (home / "smsc-password").chmod(0o600)
        else:
            config["name"] = name
            config["api_url"] = region.url(name)
            config["peers"] = [{"name": v, "url": region.url(v)} for v in VALIDATORS if v != name]
            config["limits"]["trusted_clients"] = [gateway_address] if role == "validator" else []
            if role == "validator":
                shutil.copy(keys_dir / f"{name}.json", home / "node-key.json")
                shutil.copy(keys_dir / f"{name}.signing-state.bin", home / "signing-state.bin")
        (home / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return homes


def start_nginx(region: Region, name: str, shipped: Path) -> None:
    machine = region.lab.machines[name]
    directory = region.root / "machines" / name / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    site = directory / shipped.name
    site.write_text(adapt_nginx(shipped, server_name=machine.address, cert=region.ca / f"{name}.crt",
                                key=region.ca / f"{name}.key", monitoring=f"{region.lab.host_address}/32",
                                listen=machine.address), encoding="utf-8")
    main = directory / "nginx.conf"
    main.write_text(nginx_main(directory, [site]), encoding="utf-8")
    region.processes[f"nginx-{name}"] = region.lab.spawn(
        name, [tool("nginx"), "-c", str(main), "-p", str(directory), "-g", "daemon off;"],
        region.root / "logs" / f"nginx-{name}.log")


def start_unit(region: Region, name: str, role: str) -> None:
    state = region.root / "machines" / name / "var" / "lib" / "veche"
    command = exec_start(role, region.prefix, state)
    region.processes[name] = region.lab.spawn(name, command, region.root / "logs" / f"{name}.log",
                                              env=unit_environment(role), cwd=Path("/"))  # systemd's default


def start_sms(region: Region) -> None:
    directory = region.root / "machines" / "sms"
    directory.mkdir(parents=True, exist_ok=True)
    secret = directory / "password"
    secret.write_text("smsc-password-of-the-region\n", encoding="utf-8")
    region.sms_messages = directory / "messages.jsonl"
    region.processes["sms"] = region.lab.spawn(
        "sms", [sys.executable, "-m", "tests.gateway.fakesmsc", "--host", region.lab.machines["sms"].address,
                "--port", "443", "--secret-file", str(secret), "--login", SMS_LOGIN, "--messages",
                str(region.sms_messages), "--cert", str(region.ca / "sms.crt"), "--key", str(region.ca / "sms.key")],
        region.root / "logs" / "sms.log", cwd=REPO_ROOT)


def healthy(region: Region, name: str) -> bool:
    status, _ = region.get(region.url(name) + "/healthz")
    return status == 200


def sms_answers(region: Region) -> bool:
    try:
        status, _ = region.get(region.url("sms") + "/sys/balance.php")
    except (urllib.error.URLError, OSError):
        return False
    return status == 200


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    root = tmp_path_factory.mktemp("region")
    (root / "logs").mkdir()
    lab = Lab()
    try:
        lab.open(MACHINES)
        region = Region(root, lab, build_wheel_install(root), root / "ca")
        issue_certificates(region)
        homes = write_homes(region)
        start_sms(region)
        for name in (*VALIDATORS, "observer-0"):
            start_nginx(region, name, NGINX_NODE)
            start_unit(region, name, "observer" if name.startswith("observer") else "validator")
        start_nginx(region, "gateway", NGINX_GATEWAY)
        wait_for(lambda: sms_answers(region), "the SMS provider", timeout=30)
        start_unit(region, "gateway", "gateway")
        for name in (*VALIDATORS, "observer-0", "gateway"):
            try:
                wait_for(lambda name=name: healthy(region, name), f"{name} /healthz through nginx", timeout=90)
            except TimeoutError:
                raise AssertionError(f"{name} not healthy:\n{region.log(name)}\n{region.log('nginx-' + name)}")
        assert homes["gateway"].joinpath("gateway-secret.key").exists()
        yield region
    finally:
        lab.close()


def test_units_verify_and_the_processes_are_theirs(region: Region) -> None:
    units = write_adapted_units(region.root / "units", region.prefix,
                                region.root / "machines" / "validator-0" / "var" / "lib" / "veche")
    result = subprocess.run([tool("systemd-analyze"), "verify", "--man=no", *map(str, units)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
    for name in (*VALIDATORS, "observer-0", "gateway"):
        process = region.processes[name]
        assert process.poll() is None, region.log(name)
        command = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert command[1].decode() == region.veche            # the venv's entry point, run by its python
    # the code runs from the installed wheel, not from this checkout
    installed = subprocess.run([str(region.prefix / "bin" / "python"), "-c", "import node, gateway.sms; "
                                "print(node.__file__); print(gateway.sms.__file__)"], capture_output=True, text=True,
                               cwd="/")
    assert installed.returncode == 0, installed.stderr
    assert all(line.startswith(str(region.prefix)) for line in installed.stdout.split()), installed.stdout


def create_campaign(region: Region) -> None:
    now = int(time.time() * 1000)
    region.voting_start_ms = now + 20_000        # three CLI commands commit before it, even on a busy machine
    campaign = example("campaign.json")
    campaign.update(submission_start=now - 60_000, submission_end=region.voting_start_ms,
                    voting_start=region.voting_start_ms, voting_end=now + 86_400_000)
    initiative = example("initiative.json")
    campaign_file, initiative_file = region.root / "campaign.json", region.root / "initiative.json"
    campaign_file.write_text(json.dumps(campaign, ensure_ascii=False), encoding="utf-8")
    initiative_file.write_text(json.dumps(initiative, ensure_ascii=False), encoding="utf-8")
    nodes = [arg for v in VALIDATORS for arg in ("--node", region.url(v))]
    committee = [arg for key in region.committee for arg in ("--key", str(key))]
    for command in (["campaign", "create", str(campaign_file), *committee, *nodes],
                    ["initiative", "submit", str(initiative_file), "--key", str(region.district_key), *nodes],
                    ["initiative", "review", CAMPAIGN, INITIATIVE, "--approve", *committee, *nodes]):
        result = region.cli(*command)
        assert result.returncode == 0 and "committed at height" in result.stdout, (command, result.stdout,
                                                                                 result.stderr)


async def cast_ballot(region: Region, phone: str) -> str:
    base = region.url("gateway")
    connector = aiohttp.TCPConnector(ssl=region.context())
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async def page(method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
            async with browser.request(method, base + path, data=form) as response:
                return response.status, await response.text()

        status, text = await page("GET", "/login")
        assert status == 200, text
        await asyncio.sleep(1.1)                             # form_min_seconds of the example config
        status, text = await page("POST", "/login", {"phone": phone, "csrf_token": CSRF.findall(text)[0]})
        assert status == 200 and 'name="code"' in text, text
        code = await sms_code(region, phone)
        await asyncio.sleep(1.1)
        status, text = await page("POST", "/login/code", {"code": code, "csrf_token": CSRF.findall(text)[0]})
        assert status == 200, text
        status, text = await page("GET", f"/c/{CAMPAIGN}/d/{DISTRICT}")
        assert status == 200 and INITIATIVE in text, text
        await asyncio.sleep(1.1)
        status, text = await page("POST", f"/c/{CAMPAIGN}/d/{DISTRICT}/vote",
                                  {"choice": INITIATIVE, "csrf_token": CSRF.findall(text)[0]})
        assert status == 200, text                           # redirected (303) to the ballot's receipt page
        return TX_HASH.findall(text)[0]


async def sms_code(region: Region, phone: str) -> str:
    for _ in range(100):
        if region.sms_messages.exists():
            for line in reversed(region.sms_messages.read_text(encoding="utf-8").splitlines()):
                message = json.loads(line)
                if message["phones"] == phone:
                    return str(re.findall(r"\b(\d{6})\b", message["mes"])[0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no SMS to {phone}")


def tx_posts(region: Region, name: str) -> dict[str, float]:
    status, body = region.get(region.url(name) + "/metrics")
    assert status == 200
    found = {"trusted": 0.0, "untrusted": 0.0}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "veche_tx_posts_total":
                found[sample.labels["client"]] = sample.value
    return found


def test_ballots_through_https_trusted_gateway_and_the_observer_verifies(region: Region) -> None:
    create_campaign(region)
    wait_for(lambda: region.json(region.url("validator-0") + "/api/v1/status")[1]["last_block_time_ms"]
             >= region.voting_start_ms, "voting to open", timeout=60)

    async def citizens() -> list[str]:
        return list(await asyncio.gather(*(cast_ballot(region, phone) for phone in PHONES)))

    hashes = asyncio.run(citizens())
    assert len(set(hashes)) == len(PHONES)

    # trusted_clients through the proxy: the gateway's posts reached a validator as its own address
    posts = {name: tx_posts(region, name) for name in VALIDATORS}
    assert sum(p["trusted"] for p in posts.values()) >= 1, posts
    # an anonymous client that claims to be the gateway is counted as itself (its empty batch is refused)
    target = max(VALIDATORS, key=lambda name: posts[name]["trusted"])
    gateway_address = region.lab.machines["gateway"].address
    status, _ = region.get(region.url(target) + "/api/v1/txs", data=b"\x90",
                           headers={"Content-Type": "application/octet-stream", "X-Forwarded-For": gateway_address,
                                    "X-Real-IP": gateway_address})
    assert status == 400
    after = tx_posts(region, target)
    assert after["untrusted"] == posts[target]["untrusted"] + 1 and after["trusted"] == posts[target]["trusted"]

    # the observer re-verifies everything, and the tally counts the three ballots
    observer = region.url("observer-0")
    wait_for(lambda: all(region.json(f"{observer}/api/v1/txs/{h}")[1]["status"] == "committed" for h in hashes),
             "the observer to hold every ballot", timeout=60)
    verified = region.cli("verify", "--node", observer, "--json", timeout=180)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
    tally = region.cli("tally", "--node", observer, "--campaign", CAMPAIGN, "--json")
    assert tally.returncode == 0, tally.stderr
    assert json.loads(tally.stdout)["total_ballots"] == len(PHONES)
    receipt = region.root / "receipt.json"
    status, body = region.get(f"{region.url('gateway')}/receipt/{hashes[0]}.json")
    assert status == 200
    receipt.write_bytes(body)
    checked = region.cli("receipt", "verify", str(receipt), "--node", observer)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_metrics_parse_through_nginx_for_the_monitoring_host(region: Region) -> None:
    for name, metric in (("validator-1", "veche_height"), ("observer-0", "veche_height"),
                         ("gateway", "veche_gateway_sms_provider_up")):
        status, body = region.get(region.url(name) + "/metrics")
        assert status == 200, body[:300]
        families = {family.name for family in text_string_to_metric_families(body.decode())}
        assert metric in families, (name, sorted(families)[:20])
    status, body = region.get(region.url("validator-2") + "/api/v1/status")
    assert status == 200 and json.loads(body)["height"] >= 1


def test_gateway_health_follows_the_sms_provider(region: Region) -> None:
    gateway = region.url("gateway")
    assert region.json(gateway + "/healthz")[0] == 200
    assert region.lab.stop(region.processes["sms"]) == 0          # the provider goes away
    wait_for(lambda: region.json(gateway + "/healthz")[0] == 503, "/healthz to fail without the SMS provider",
             timeout=30)
    status, document = region.json(gateway + "/healthz")
    assert document["status"] == "unhealthy" and document["sms"]["up"] is False
    assert any(reason.startswith("SMS provider smsc unavailable") for reason in document["reasons"])
    status, body = region.get(gateway + "/metrics")
    values = {s.name: s.value for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    assert values["veche_gateway_sms_provider_up"] == 0 and values["veche_gateway_healthy"] == 0
    start_sms(region)                                                # back
    wait_for(lambda: region.json(gateway + "/healthz")[0] == 200, "/healthz to recover", timeout=30)


def test_every_process_stops_cleanly(region: Region) -> None:
    for name in ("gateway", "observer-0", *VALIDATORS):
        assert region.lab.stop(region.processes[name], timeout=30) == exitcodes.EXIT_OK, region.log(name)
