"""An outsider's verifier (scripts/outsider/verify_chain.py, written from docs/ alone) against
``veche verify`` on a real network: 4 validator processes + 1 observer, real LevelDB, loopback HTTP.

The chain carries the demo genesis data (an adult choose-1 campaign and a children's approval
campaign), four real elections imported with ``veche pabulib import`` (knapsack, cumulative under
equal shares, ordinal, approval under equal shares — cut from the files of ../shared/data), votes
the test signs itself (children's track, one ballot per campaign; adult choose-1, one per district),
voter-held ballots (PROTOCOL §16: three adult ones cast with ``veche ballot cast`` through the demo
gateway's blind certification, four children's ones whose tokens the test signs with the gateway's
certification key and counts with ``tokens.issued``), a validator-set change that reorders the
proposers, a gateway key rotation (the children's voters and tokens are counted by the new key), a
protocol upgrade to version 2 (the app hash then covers the version) and a progress report. Both
verifiers must agree on every documented field of ``--json``; the outsider's app hash must be the
node's; and both must refuse a served chain with a flipped byte, a block forged by the whole
validator set that slips in a double vote, and one that slips in a second ballot of a voter-held key
with its (valid) token.

The outsider code under test imports nothing from the project; this test uses the project's test
harness only to start nodes (``LocalNet``) and its CLI as a user would.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.node.netkit import LocalNet, get_json, wait_for
from tests.paths import SHARED_DATA

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DATA = SHARED_DATA
VECHE = str(Path(sys.executable).with_name("veche"))
PROTOCOL_MD = ROOT / "docs" / "PROTOCOL.md"
BALLOTS_PER_FILE = 100
CHILD_VOTERS = 60
CAST_BY_CLI = 3          # voter-held adult ballots cast with `veche ballot cast` through the gateway
HELD_CHILDREN = 4        # voter-held children's ballots whose tokens the test makes as the gateway


OUTSIDER = ROOT / "scripts" / "outsider"


def load_outsider() -> ModuleType:
    """The outsider's package ``outsider_vc`` (scripts/outsider/), imported from its own folder."""
    if str(OUTSIDER) not in sys.path:
        sys.path.insert(0, str(OUTSIDER))
    return importlib.import_module("outsider_vc")


vc = load_outsider()


# ------------------------------------------------------------------------------------------------
# PROTOCOL §13.2 replayed by the outsider's state machine (no network: a quick first-wrong-byte check)


def test_outsider_state_machine_reproduces_every_byte_of_protocol_13_2() -> None:
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    section = text[text.index("### 13.2"):text.index("## 14.")]
    start = section.index("```json") + len("```json")
    doc = vc.load_json_strict(section[start:section.index("```", start)])
    start = section.index("```vectors") + len("```vectors")
    lines = section[start:section.index("```", start)].strip().splitlines()
    verifier = vc.Verifier.__new__(vc.Verifier)
    verifier.doc, verifier.chain_id = doc, doc["chain_id"]
    verifier.genesis_hash = vc.genesis_hash(doc)
    verifier.roster0 = vc.genesis_roster(doc)
    verifier.state = vc.State(verifier.chain_id, verifier.roster0)
    verifier.apply_genesis()
    app_hash: bytes = verifier.app_hash
    state = verifier.state
    height, time_ms = 0, 0
    raws: list[bytes] = []
    expected: list[tuple[bytes, bytes]] = []
    checked = 0
    for line in lines:
        word, *rest = line.split()
        if word == "genesis_jcs":
            assert vc.jcs(doc).encode("utf-8").hex() == rest[0]
        elif word == "genesis_hash":
            assert verifier.genesis_hash.hex() == rest[0]
        elif word == "app_hash" and rest[0] == "0":
            assert app_hash.hex() == rest[1]
        elif word == "height":
            height, time_ms, raws, expected = int(rest[0]), int(rest[2]), [], []
        elif word == "tx":
            raw = bytes.fromhex(rest[1])
            assert vc.sha256(raw).hex() == rest[0]
            raws.append(raw)
        elif word == "change":
            key = b"".join(bytes.fromhex(part[1:-1]) if part.startswith("{") else part.encode()
                           for part in re.split(r"(\{[0-9a-f]+\})", rest[0]))
            expected.append((key, b"" if rest[1] == "-" else bytes.fromhex(rest[1])))
        elif word == "app_hash":
            state.begin_block(height, time_ms)
            seen: set[bytes] = set()
            for raw in raws:
                tx = vc.decode_tx(raw, verifier.chain_id)
                state.apply(tx, seen)
                seen.add(tx.hash)
            state.committed |= seen
            assert sorted(state.changes.items()) == expected, f"changes of height {height}"
            app_hash = vc.sha256(app_hash, vc.u64(height), vc.sha256(state.take_changes()))
            assert app_hash.hex() == rest[1], f"app hash of height {height}"
            checked += 1
    assert checked == 5


# ------------------------------------------------------------------------------------------------
# PROTOCOL §16.6 (voter-held keys) through the outsider's decoder, token check and state machine

RFC8032_TEST2 = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")


def section_16_6() -> dict[str, bytes]:
    """The hex values of §16.6 by their label (``token`` spliced into the ``tx`` lines)."""
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    section = text[text.index("### 16.6"):text.index("## 17.")]
    pieces: dict[str, list[bytes]] = {}
    blocks = section.split("```")[1::2]
    pieces["n"] = [bytes.fromhex("".join(blocks[-1].split()))]      # RFC 9474 Appendix A's n
    for n, block in enumerate(blocks[:-1]):
        key = ""
        for line in block.splitlines():
            if not line.strip():
                continue
            if line[:15].strip():
                key = f"{n}:{line[:15].strip()}"
                pieces[key] = []
            rest = line[15:].strip()
            pieces[key].append(b"TOKEN" if rest == "‖ token ‖" else bytes.fromhex(rest))
    values = {key: b"".join(parts) for key, parts in pieces.items()}
    for key, value in list(values.items()):
        if key != "0:token":
            values[key] = b"".join(values["0:token"] if part == b"TOKEN" else part for part in pieces[key])
    return values


def test_outsider_checks_the_voter_held_vectors_of_protocol_16_6() -> None:
    v = section_16_6()
    rfc9474_n = v["n"]
    assert len(rfc9474_n) == 512
    voter = Ed25519PrivateKey.from_private_bytes(RFC8032_TEST2).public_key().public_bytes_raw()
    message = b"veche/v1/voter-token" + vc.enc(["veche-test", "c1", voter])
    assert message == v["0:token message"]
    assert vc.rsa_pss_sha384_ok(rfc9474_n, v["0:token"], message)
    assert not vc.rsa_pss_sha384_ok(rfc9474_n, v["0:token"], b"veche/v1/voter-token" + vc.enc(["veche-test", "c2", voter]))
    set_ballot, scored_ballot, issued = (vc.decode_tx(v[f"{i}:tx"], "veche-test") for i in (1, 2, 3))
    assert [t.hash.hex() for t in (set_ballot, scored_ballot, issued)] == [v[f"{i}:tx hash"].hex() for i in (1, 2, 3)]
    assert set_ballot.body == ["c1", "d1", ["a1", "a2"], [], ["c1", v["0:token"]]]
    assert scored_ballot.body == ["c1", "d1", ["a2", "a1"], [7, 3], ["c1", v["0:token"]]]
    assert issued.kind == "tokens.issued" and issued.body == ["c1", 7, 25]
    # the state machine: an approval campaign c1 with this certification key, gateway = the test 2 key
    roster = vc.Roster([], [["alice", bytes(32)]], 1, [], [["gw", voter]])
    state = vc.State("veche-test", roster)
    create = ["c1", "Campaign", "adult", [["d1", "District", 0]], ["approval", 1, 2], ["top-n", "district", 1, 0, 0],
              1, 100, [], 0, 0, 0, 10_000, voter, 30, "district", rfc9474_n]
    assert vc.enc(create).endswith(b"\xc5\x02\x00" + rfc9474_n)
    state.begin_block(0, 0)
    state.apply(vc.Tx(b"", b"", "campaign.create", "veche-test", create, [bytes(32)], []), set(), genesis=True)
    for iid in ("a1", "a2"):
        submit = ["c1", iid, "d1", iid, "x", 10, "", b""]
        state.apply(vc.Tx(b"", b"", "initiative.submit", "veche-test", submit, [bytes(32)], []), set(), genesis=True)
    state.take_changes()
    state.begin_block(1, 5)
    with pytest.raises(vc.Reject, match="tokens_exhausted"):
        state.apply(set_ballot, set())
    state.apply(issued, set())
    state.apply(set_ballot, {issued.hash})
    with pytest.raises(vc.Reject, match="bad_ballot"):     # a scored ballot in an approval campaign
        state.apply(scored_ballot, {issued.hash, set_ballot.hash})
    changes = dict(state.changes)
    assert changes[b"S/n/c1/" + voter] == b""
    record = vc.dec(changes[b"S/c/c1"])
    assert len(record) == 12 and record[6:] == [0, 1, 2, 25, 1, 1]
    with pytest.raises(vc.Reject, match="registration_cap"):     # 25 tokens + 6 keys > the cap of 30
        keys = [bytes([i]) * 32 for i in range(1, 7)]
        body = ["c1", keys]
        message = b"veche/v1/voters.register" + b"veche-test" + vc.enc(body)
        signature = Ed25519PrivateKey.from_private_bytes(RFC8032_TEST2).sign(message)
        state.apply(vc.Tx(b"x", b"x" * 32, "voters.register", "veche-test", body, [voter], [signature]), set())


# ------------------------------------------------------------------------------------------------
# an outsider's client: key files (GENESIS "Key files"), transactions (PROTOCOL §2.1), POST /api/v1/txs


@dataclass
class Key:
    private: Ed25519PrivateKey
    public: bytes

    @staticmethod
    def read(path: Path) -> Key:
        seed = bytes.fromhex(json.loads(path.read_text())["private_key"])
        private = Ed25519PrivateKey.from_private_bytes(seed)
        return Key(private, private.public_key().public_bytes_raw())

    @staticmethod
    def generate() -> Key:
        private = Ed25519PrivateKey.generate()
        return Key(private, private.public_key().public_bytes_raw())


def make_tx(kind: str, chain_id: str, body: list[Any], signer: Key) -> bytes:
    message = b"veche/v1/" + kind.encode() + chain_id.encode() + vc.enc(body)
    return bytes(vc.enc([kind, chain_id, body, [[signer.public, signer.private.sign(message)]]]))


def http_bytes(url: str, body: bytes | None = None, timeout: float = 10.0) -> bytes:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback test node
        data: bytes = response.read()
        return data


def submit_and_wait(url: str, raws: list[bytes], timeout: float = 60.0) -> int:
    """Send transactions; wait until each is committed; return the highest commit height."""
    answer = json.loads(http_bytes(url + "/api/v1/txs", vc.enc(raws)))
    assert not answer["rejected"], answer["rejected"]
    heights: list[int] = []
    for raw in raws:
        tx_hash = vc.sha256(raw).hex()

        def committed(h: str = tx_hash) -> bool:
            status = get_json(f"{url}/api/v1/txs/{h}")
            assert status["status"] != "rejected", status
            if status["status"] == "committed":
                heights.append(int(status["height"]))
                return True
            return False
        wait_for(committed, timeout, f"tx {tx_hash} to commit")
    return max(heights)


def veche(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VECHE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)


def truncate_pb(source: Path, target: Path, votes: int, rule: str | None = None) -> Path:
    """The first ``votes`` ballots of a pabulib file (META num_votes adjusted; optionally another rule)."""
    out: list[str] = []
    section, header, kept = "", False, 0
    for line in source.read_text(encoding="utf-8-sig").splitlines():
        if line.strip().upper() in ("META", "PROJECTS", "VOTES"):
            section, header = line.strip().upper(), True
            out.append(line)
            continue
        if header:
            header = False
            out.append(line)
            continue
        if section == "META" and line.startswith("num_votes;"):
            line = f"num_votes;{votes}"
        if section == "META" and rule is not None and line.startswith("rule;"):
            line = f"rule;{rule}"
        if section == "VOTES":
            if kept >= votes:
                continue
            kept += 1
        out.append(line)
    target.write_text("\n".join(out) + "\n", encoding="utf-8")
    return target


def certification_key(path: Path) -> rsa.RSAPrivateKey:
    """The gateway's RSA certification key (docs/GATEWAY.md: ``{"kind", "modulus", "p", "q"}``)."""
    data = json.loads(path.read_text(encoding="utf-8"))

    def number(v: Any) -> int:
        return int(v, 16) if isinstance(v, str) else int(v)
    p, q, e = number(data["p"]), number(data["q"]), 65537
    assert p * q == number(data["modulus"])
    d = pow(e, -1, (p - 1) * (q - 1))
    public = rsa.RSAPublicNumbers(e, p * q)
    return rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                 rsa.rsa_crt_iqmp(p, q), public).private_key()


def make_token(key: rsa.RSAPrivateKey, chain_id: str, campaign_id: str, voter: bytes) -> bytes:
    """PROTOCOL §16.2: RSASSA-PSS (SHA-384, MGF1-SHA-384, 48-byte salt) over the token message. The
    test holds the certification key, so it signs directly: the same signature RFC 9474's Finalize
    gives the device (the blind protocol itself runs in `veche ballot cast` against the gateway)."""
    message = b"veche/v1/voter-token" + vc.enc([chain_id, campaign_id, voter])
    return key.sign(message, padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48), hashes.SHA384())


def cast_with_the_cli(net: LocalNet, picks: list[dict[str, Any]]) -> None:
    """Voter-held ballots the documented way: `veche ballot cast` logs in by SMS, gets a blind token
    from the demo gateway (its own process) and sends the ballot straight to a node."""
    home = net.layout.gateway.home
    log = (home / "outsider-test.log").open("wb")
    gateway = subprocess.Popen([VECHE, "gateway", "start", "--home", str(home)], stdout=log, stderr=subprocess.STDOUT)
    try:
        def healthy() -> bool:
            try:
                return bool(http_bytes(net.layout.gateway.url + "/healthz", timeout=2.0))
            except OSError:
                return False
        wait_for(healthy, 60, "the gateway")
        for i, pick in enumerate(picks):
            done = veche("ballot", "cast", "--gateway", net.layout.gateway.url, "--phone", f"+7900555{i:04d}",
                         "--sms-outbox", str(home / "sms-outbox.jsonl"), "--campaign", str(pick["campaign_id"]),
                         "--district", str(pick["district_id"]), "--choice", str(pick["initiative_id"]), "--json")
            assert done.returncode == 0, done.stdout + done.stderr
            assert json.loads(done.stdout)["mode"] == "voter-held"
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        log.close()


# ------------------------------------------------------------------------------------------------
# the network and its elections


@dataclass
class Chain:
    net: LocalNet
    genesis: Path
    observer: str
    height: int
    campaigns: dict[str, str]       # what -> campaign id
    voter: Key                      # a registered children's voter, for the forged block
    vote_height: int                # a block holding that voter's ballot
    chain_id: str
    held_voter: Key                 # a voter-held children's key (PROTOCOL §16) ...
    held_token: bytes               # ... its token ...
    held_height: int                # ... and the block holding its ballot


def wait_height(url: str, height: int, timeout: float = 60.0) -> None:
    wait_for(lambda: int(get_json(url + "/api/v1/status")["height"]) >= height, timeout, f"height {height}")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    directory = tmp_path_factory.mktemp("outsider")
    net: LocalNet | None = None
    for attempt in range(3):   # another test may grab a free port between check and bind
        net = LocalNet(directory / f"testnet{attempt}", demo=True)
        try:
            net.start_all()
            break
        except AssertionError:
            net.close()
            if attempt == 2:
                raise
    assert net is not None
    try:
        yield build_elections(net, directory)
    finally:
        net.close()


def build_elections(net: LocalNet, directory: Path) -> Chain:
    testnet = net.directory
    genesis_path = testnet / "genesis.json"
    genesis = json.loads(genesis_path.read_text(encoding="utf-8"))
    chain_id: str = genesis["chain_id"]
    node = net.urls["validator-0"]
    observer = net.urls["observer-0"]
    committee = testnet / "keys" / "committee-0.json"
    campaigns: dict[str, str] = {"adult choose-1": "ib-2027", "children approval": "ib-deti-2027"}

    # 1. real elections, imported with every ballot and closed (before the gateway key rotates)
    files = {"knapsack": ("ballot-types/Poland_Warszawa_2017_Bielany.pb", None),
             "cumulative equal shares": ("ballot-types/Poland_Czestochowa_2024.pb", "equalshares"),
             "ordinal": ("ballot-types/Poland_Krakow_2019_Bronowice.pb", None),
             "approval equal shares": ("Poland_Warszawa_2023_Wesola.pb", "equalshares")}
    for what, (name, rule) in files.items():
        pb = truncate_pb(DATA / name, directory / (Path(name).stem + ".pb"), BALLOTS_PER_FILE, rule)
        done = veche("pabulib", "import", str(pb), "--testnet", str(testnet), "--with-votes", "--close", "--json",
                     "--workers", "1")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["votes_committed"] == BALLOTS_PER_FILE
        campaigns[what] = summary["campaign_id"]

    # 1b. voter-held ballots through the demo gateway (before its signing key rotates away)
    grown = [i for i in genesis["initiatives"] if i["campaign_id"] == "ib-2027"]
    districts = sorted({str(i["district_id"]) for i in grown})
    cast_with_the_cli(net, [next(i for i in grown if i["district_id"] == d) for d in districts[:CAST_BY_CLI]])

    # 2. governance: reorder the proposers, rotate the gateway key, schedule protocol version 2
    v0 = genesis["validators"][0]
    change = directory / "reorder.json"
    change.write_text(json.dumps({"reason": "validator-0 moves to the end of the proposer order",
                                  "add": [{"name": v0["name"], "operator": "observer-org",
                                           "public_key": v0["public_key"], "url": v0["url"]}],
                                  "remove": [v0["name"]]}))
    done = veche("validators", "update", str(change), "--key", str(committee), "--node", node)
    assert done.returncode == 0, done.stdout + done.stderr
    gateway = Key.generate()
    done = veche("keys", "rotate", "gateway", "gateway", "--new-public-key", gateway.public.hex(),
                 "--reason", "the gateway moved to a new machine", "--key", str(committee), "--node", node)
    assert done.returncode == 0, done.stdout + done.stderr
    rotated_at = int(re.search(r"committed at height (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    upgrade_height = int(get_json(node + "/api/v1/status")["height"]) + 4
    done = veche("upgrade", "schedule", "2", "--height", str(upgrade_height), "--reason", "version 2",
                 "--key", str(committee), "--node", node)
    assert done.returncode == 0, done.stdout + done.stderr
    wait_height(node, max(rotated_at + 2, upgrade_height))

    # 3. the children's track (approval, greedy by district, min_votes 50, one ballot per campaign):
    #    voters registered by the rotated gateway key; and a few adult choose-1 ballots in two districts
    kids = [i for i in genesis["initiatives"] if i["campaign_id"] == "ib-deti-2027"]
    district = kids[0]["district_id"]
    a, b = sorted((i["initiative_id"] for i in kids if i["district_id"] == district), key=str.encode)[:2]
    voters = [Key.generate() for _ in range(CHILD_VOTERS)]
    submit_and_wait(node, [make_tx("voters.register", chain_id, ["ib-deti-2027", [v.public for v in voters]], gateway)])
    ballots = [make_tx("vote.cast", chain_id, ["ib-deti-2027", district, [a, b] if i % 2 else [a]], v)
               for i, v in enumerate(voters)]
    vote_height = submit_and_wait(node, ballots)
    # voter-held children's ballots (PROTOCOL §16): the rotated gateway key counts the tokens, which the
    # certification key (untouched by the rotation) signs; no registration
    cert = certification_key(net.layout.gateway.home / "certification-key.json")
    submit_and_wait(node, [make_tx("tokens.issued", chain_id, ["ib-deti-2027", 1, HELD_CHILDREN], gateway)])
    held = [Key.generate() for _ in range(HELD_CHILDREN)]
    tokens = [make_token(cert, chain_id, "ib-deti-2027", v.public) for v in held]
    held_height = submit_and_wait(node, [
        make_tx("vote.cast", chain_id, ["ib-deti-2027", district, [a], [], ["ib-deti-2027", t]], v)
        for v, t in zip(held, tokens)])
    adults = [Key.generate() for _ in range(4)]
    submit_and_wait(node, [make_tx("voters.register", chain_id, ["ib-2027", [v.public for v in adults]], gateway)])
    picks = [grown[0], next(i for i in grown if i["district_id"] != grown[0]["district_id"])]
    submit_and_wait(node, [make_tx("vote.cast", chain_id, ["ib-2027", p["district_id"], [p["initiative_id"]]], v)
                           for v in adults for p in picks])
    for cid in ("ib-deti-2027", "ib-2027"):
        done = veche("campaign", "close", cid, "--reason", "the count is over", "--key", str(committee), "--node", node)
        assert done.returncode == 0, done.stdout + done.stderr
    operator = testnet / "keys" / f"district-{district}.json"
    done = veche("progress", "report", "ib-deti-2027", a, "--stage", "contract", "--percent", "10",
                 "--spent", "100000", "--note", "contract signed", "--key", str(operator), "--node", node)
    assert done.returncode == 0, done.stdout + done.stderr

    # 4. every equal-shares result published; then stop the validators so the chain holds still
    def published(cid: str) -> bool:
        return bool(get_json(f"{observer}/api/v1/campaigns/{cid}/tally")["result_status"] == "final")
    for cid in campaigns.values():
        wait_for(functools.partial(published, cid), 60, f"{cid}'s result")
    final = int(get_json(node + "/api/v1/status")["height"])
    wait_height(observer, final)
    for name in net.validators:
        net.stop(name)
    height = int(get_json(observer + "/api/v1/status")["height"])
    return Chain(net, genesis_path, observer, height, campaigns, voters[0], vote_height, chain_id, held[0], tokens[0],
                 held_height)


def run_both(url: str, genesis: Path) -> tuple[int, dict[str, Any], int, dict[str, Any]]:
    theirs = veche("verify", "--node", url, "--genesis", str(genesis), "--json", "--workers", "0")
    ours = subprocess.run([sys.executable, str(ROOT / "scripts" / "outsider" / "verify_chain.py"),
                           "--node", url, "--genesis", str(genesis), "--json"],
                          capture_output=True, text=True, timeout=180, check=False)
    return theirs.returncode, json.loads(theirs.stdout), ours.returncode, json.loads(ours.stdout)


DOCUMENTED = ("ok", "chain_id", "height", "blocks", "txs", "votes", "first_bad_height", "campaigns")


def test_outsider_verifier_agrees_with_veche_verify_on_every_documented_field(chain: Chain) -> None:
    their_code, theirs, our_code, ours = run_both(chain.observer, chain.genesis)
    assert (their_code, our_code) == (0, 0), (theirs["error"], ours["error"])
    for key in DOCUMENTED:
        assert ours[key] == theirs[key], key
    assert theirs["height"] == chain.height
    assert set(theirs) == set(ours) - {"app_hash"}
    # byte for byte: the campaigns object, serialised the same way, is the same text
    assert json.dumps(ours["campaigns"]) == json.dumps(theirs["campaigns"])
    # the app hash the outsider replayed is the one the node's last header carries
    status = get_json(chain.observer + "/api/v1/status")
    assert status["height"] == ours["height"] and status["app_hash"] == ours["app_hash"]
    # what the chain holds: every kind of ballot, each closed with winners, the tally published
    assert set(chain.campaigns.values()) <= set(ours["campaigns"])
    for what, cid in chain.campaigns.items():
        result = ours["campaigns"][cid]
        assert result["status"] == "closed" and result["matches"] is True, what
        assert result["winners"] or what == "adult choose-1", what     # choose-1 needs 500 votes per initiative
    assert ours["campaigns"][chain.campaigns["children approval"]]["total_ballots"] == CHILD_VOTERS + HELD_CHILDREN
    assert ours["votes"] == 4 * BALLOTS_PER_FILE + CHILD_VOTERS + 8 + CAST_BY_CLI + HELD_CHILDREN
    # the node counts the voter-held ballots as the outsider does (PROTOCOL §16.5)
    for cid, held, tokens in (("ib-2027", CAST_BY_CLI, CAST_BY_CLI), ("ib-deti-2027", HELD_CHILDREN, HELD_CHILDREN)):
        tally = get_json(f"{chain.observer}/api/v1/campaigns/{cid}/tally")
        campaign = get_json(f"{chain.observer}/api/v1/campaigns/{cid}")
        assert tally["ballots_by_mode"]["voter-held"] == held, tally["ballots_by_mode"]   # (no tokens_issued there)
        assert campaign["ballots_by_mode"]["voter-held"] == held and campaign["tokens_issued"] == tokens, campaign
    assert get_json(chain.observer + "/api/v1/status")["protocol_version"] == 2


# ------------------------------------------------------------------------------------------------
# tampered chains, served through a small proxy in front of the observer


class TamperingProxy:
    """Forwards GETs to ``upstream``; raw block pages pass through ``tamper(height, entry) -> entry``."""

    def __init__(self, upstream: str, tamper: Callable[[int, Any], Any]) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                try:
                    with urllib.request.urlopen(upstream + self.path, timeout=30) as response:  # noqa: S310
                        body, ctype, status = response.read(), response.headers["Content-Type"], response.status
                except urllib.error.HTTPError as exc:
                    body, ctype, status = exc.read(), exc.headers["Content-Type"], exc.code
                match = re.fullmatch(r"/api/v1/blocks/raw\?from=(\d+).*", self.path)
                if match and status == 200:
                    page = vc.dec(body, big=True)
                    first = int(match.group(1))
                    body = vc.enc([proxy.tamper(first + i, entry) for i, entry in enumerate(page)])
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                pass

        self.tamper = tamper
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TamperingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()



def test_both_verifiers_refuse_a_flipped_byte_in_a_served_ballot(chain: Chain) -> None:
    target = chain.vote_height

    def flip(height: int, entry: Any) -> Any:
        if height == target:
            txs = entry[0][1]
            raw = bytearray(txs[0])
            raw[-1] ^= 0x01              # the last byte of the first transaction's signature
            txs[0] = bytes(raw)
        return entry

    with TamperingProxy(chain.observer, flip) as proxy:
        their_code, theirs, our_code, ours = run_both(proxy.url, chain.genesis)
    assert (their_code, our_code) == (1, 1)
    assert theirs["ok"] is False and ours["ok"] is False
    assert theirs["first_bad_height"] == ours["first_bad_height"] == target
    assert ours["height"] == theirs["height"] == target - 1
    for key in DOCUMENTED:     # the campaigns too: as they stood after the last block that checked
        assert ours[key] == theirs[key], key
    assert ours["error"] == theirs["error"] == f"block {target}: tx root does not match its transactions"


def forger(chain: Chain, target: int, extra: bytes) -> Callable[[int, Any], Any]:
    """A tamper function: block ``target`` gains ``extra``, and all validators in force certify it."""
    keys: dict[bytes, Key] = {}
    for name in chain.net.validators:
        key = Key.read(chain.net.homes[name] / "node-key.json")
        keys[key.public] = key
    in_force = get_json(f"{chain.observer}/api/v1/validators?height={target}")["validators"]
    signers = [keys[bytes.fromhex(v["public_key"])] for v in in_force]

    def forge(height: int, entry: Any) -> Any:
        if height != target:
            return entry
        block, cert = entry
        header, txs, last_commit = block
        txs.append(extra)
        header[5] = vc.merkle_root(txs)
        block_hash = vc.sha256(vc.enc(header))
        message = b"veche/v1/consensus.precommit" + chain.chain_id.encode() + vc.enc([height, cert[1], block_hash])
        return [[header, txs, last_commit],
                [height, cert[1], block_hash, [[i, k.private.sign(message)] for i, k in enumerate(signers)]]]
    return forge


def test_both_verifiers_refuse_a_double_vote_even_when_every_validator_signs_it(chain: Chain) -> None:
    """Colluding validators (all four keys) certify a block that slips in a second ballot of one
    voter: every certificate and link checks, only the state machine (``double_vote``) catches it."""
    target = chain.vote_height
    choices = sorted((i["initiative_id"] for i in json.loads(chain.genesis.read_text())["initiatives"]
                      if i["campaign_id"] == "ib-deti-2027"), key=str.encode)[-1:]
    forged_vote = make_tx("vote.cast", chain.chain_id, ["ib-deti-2027", in_force_district(chain, choices[0]), choices],
                          chain.voter)
    with TamperingProxy(chain.observer, forger(chain, target, forged_vote)) as proxy:
        their_code, theirs, our_code, ours = run_both(proxy.url, chain.genesis)
    assert (their_code, our_code) == (1, 1), (theirs["error"], ours["error"])
    assert theirs["first_bad_height"] == ours["first_bad_height"] == target
    for field in DOCUMENTED:      # counts and campaigns stop at the last block that checked
        assert ours[field] == theirs[field], field
    assert "double_vote" in ours["error"], ours["error"]


def test_both_verifiers_refuse_a_reused_voter_held_token_even_when_every_validator_signs_it(chain: Chain) -> None:
    """PROTOCOL §16.5: a voter-held key is its own nullifier. A forged block carries a second ballot
    of a voter-held key with the same (valid) token and another choice: the signature and the token
    both verify, the slot is taken (``token_used``)."""
    target = chain.held_height
    page = vc.dec(http_bytes(f"{chain.observer}/api/v1/blocks/raw?from={target}"), big=True)
    ballot = next(tx for tx in (vc.decode_tx(raw, chain.chain_id) for raw in page[0][0][1])
                  if tx.signers == [chain.held_voter.public])
    campaign_id, district, choices, _, token = ballot.body
    others = sorted((i["initiative_id"] for i in json.loads(chain.genesis.read_text())["initiatives"]
                     if i["campaign_id"] == campaign_id and i["district_id"] == district and i["initiative_id"]
                     not in choices), key=str.encode)
    assert token == [campaign_id, chain.held_token]
    again = make_tx("vote.cast", chain.chain_id, [campaign_id, district, others[:1], [], token], chain.held_voter)
    with TamperingProxy(chain.observer, forger(chain, target, again)) as proxy:
        their_code, theirs, our_code, ours = run_both(proxy.url, chain.genesis)
    assert (their_code, our_code) == (1, 1), (theirs["error"], ours["error"])
    assert theirs["first_bad_height"] == ours["first_bad_height"] == target
    for field in DOCUMENTED:
        assert ours[field] == theirs[field], field
    assert "token_used" in ours["error"], ours["error"]


def in_force_district(chain: Chain, initiative_id: str) -> str:
    for i in json.loads(chain.genesis.read_text())["initiatives"]:
        if i["campaign_id"] == "ib-deti-2027" and i["initiative_id"] == initiative_id:
            return str(i["district_id"])
    raise AssertionError(initiative_id)
