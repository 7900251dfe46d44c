"""Real node processes on loopback with real LevelDB: 4 validators + 1 observer.

One network serves the whole module (tests run in file order and build on each other's chain):
agreement on every block, bad input that never stops a node, ``kill -9`` under load, two of four
validators down (no commit, no fork, then recovery), and a validator whose data directory is wiped
after more than 10,000 votes re-syncing from genesis with its signing state kept.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from chain.block import STEP_PRECOMMIT, Block, CommitCertificate
from chain.crypto import SigningKey, read_key_file
from consensus.messages import encode_message, make_vote
from node.envelope import seal
from node.sync import decode_block_range
from tests.node.netkit import LocalNet, get_json, http_get, http_post, wait_for
from tests.node.votes import BallotPlan, demo_plan, encode_batch, make_batches

pytestmark = pytest.mark.slow

BATCH = 100


class Voting:
    """Submits pre-signed ballots round-robin and remembers what must commit."""

    def __init__(self, net: LocalNet, plan: BallotPlan) -> None:
        self.net = net
        self.plan = plan
        self.voters = 0
        self.hashes: list[str] = []
        self._seed = 1000

    def batches(self, voters: int) -> list[list[bytes]]:
        self._seed += 1
        made = make_batches(self.plan, voters, BATCH, processes=2 if voters >= 2000 else 1)
        self.voters += voters
        return made

    def submit(self, batches: list[list[bytes]], targets: list[str]) -> list[str]:
        accepted: list[str] = []
        for index, batch in enumerate(batches):
            for attempt in range(40):
                target = targets[(index + attempt) % len(targets)]
                try:
                    result = self.net.submit(target, batch)
                except (RuntimeError, OSError):
                    time.sleep(0.25)
                    continue
                assert result["rejected"] == [], result["rejected"][:3]
                accepted.extend(result["accepted"])
                break
            else:
                raise AssertionError("no node accepted a batch")
        self.hashes.extend(accepted)
        return accepted

    def wait_committed(self, name: str, hashes: list[str], timeout: float = 120.0) -> None:
        sample = hashes[BATCH::BATCH + 1] + hashes[-1:]  # the last ballot of every batch
        pending = list(sample)

        def done() -> bool:
            while pending and self.net.tx_status(name, pending[0]) == "committed":
                pending.pop(0)
            return not pending
        wait_for(done, timeout, f"{len(sample)} sampled txs to commit on {name}", interval=0.2)


def block_range(net: LocalNet, name: str, first: int, last: int) -> list[tuple[Block, CommitCertificate]]:
    entries: list[tuple[Block, CommitCertificate]] = []
    while first <= last:
        status, body = http_get(f"{net.urls[name]}/api/v1/blocks/raw?from={first}&to={last}", timeout=30)
        assert status == 200
        chunk = decode_block_range(body)
        assert chunk, f"{name} served no blocks from {first}"
        entries.extend(chunk)
        first = chunk[-1][0].height + 1
    return entries


def assert_agree(net: LocalNet, names: list[str]) -> int:
    """Every node has the same block hash and app hash at every height they all have."""
    top = min(net.height(name) for name in names)
    reference = [(block.hash(), block.header.app_hash) for block, _ in block_range(net, names[0], 1, top)]
    assert len(reference) == top
    for name in names[1:]:
        other = [(block.hash(), block.header.app_hash) for block, _ in block_range(net, name, 1, top)]
        assert other == reference, f"{name} disagrees with {names[0]}"
    return top


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    network = LocalNet(tmp_path_factory.mktemp("network") / "net", validators=4, observers=1)
    try:
        network.start_all()
        yield network
    finally:
        network.close()
        for name in network.names:
            if "Traceback" in network.log_tail(name, 400):
                print(f"--- {name} ---\n{network.log_tail(name, 60)}")


@pytest.fixture(scope="module")
def voting(net: LocalNet) -> Voting:
    return Voting(net, demo_plan(net.directory))


def test_validators_and_observer_agree_on_every_block(net: LocalNet, voting: Voting) -> None:
    hashes = voting.submit(voting.batches(2000), net.names)
    for name in net.names:
        voting.wait_committed(name, hashes)
    top = assert_agree(net, net.names)
    assert top >= 2
    for name in net.names:
        tally = get_json(f"{net.urls[name]}/api/v1/campaigns/{voting.plan.campaign_id}/tally")
        assert tally["total_ballots"] >= 2000
    # "peers" is what answered the last poll; under CI load one status poll can time out, so the
    # links must come back within a few poll intervals rather than be up at this exact instant.
    assert net.status(net.names[-1])["role"] == "observer"
    for name in net.names:
        want = 4 if name == net.names[-1] else 3  # the observer syncs from all four validators
        wait_for(lambda name=name, want=want: net.status(name)["peers"] == want, 20, f"{name} to see {want} peers")


def test_bad_input_never_stops_a_node(net: LocalNet, voting: Voting) -> None:
    chain_id = voting.plan.chain_id
    validator_key = read_key_file(net.homes["validator-2"] / "node-key.json")
    relay_key = read_key_file(net.homes["validator-3"] / "node-key.json")
    stale_vote = make_vote(chain_id, STEP_PRECOMMIT, 1, 0, b"\x05" * 32, 2, validator_key.sign)
    sender, relay = validator_key.public_key, relay_key.public_key
    genuine = seal(chain_id, sender, 10, [encode_message(stale_vote)], [], validator_key.sign)
    resigned = seal(chain_id, relay, 11, [encode_message(stale_vote)], [], relay_key.sign)
    foreign = make_vote("other-chain", STEP_PRECOMMIT, 1, 0, b"\x05" * 32, 2, validator_key.sign)
    msgpack = "application/msgpack"
    p2p_cases = [
        (b"\xc1\xc1garbage", msgpack, 400),
        (genuine[:-9], msgpack, 400),                                    # truncated
        (b"\x00" * (10 * 1024 * 1024), msgpack, 400),                    # 10 MB of garbage
        (seal("other-chain", sender, 12, [], [], validator_key.sign), msgpack, 400),
        (seal(chain_id, sender, 13, [], [], SigningKey.generate().sign), msgpack, 401),  # non-validator signer
        (seal(chain_id, sender, 14, [encode_message(foreign)], [], validator_key.sign), msgpack, 200),
        (seal(chain_id, sender, 15, [b"\x93junk"], [b"\x01\x02"], validator_key.sign), msgpack, 200),
        (genuine, msgpack, 200), (genuine, msgpack, 200),                # replayed: ignored
        (resigned, msgpack, 200),                                        # relayed by another validator
        (b"{}", "application/json", 415),
    ]
    for target in ("validator-1", "observer-0"):
        for body, content_type, expected in p2p_cases:
            status, reply, _ = http_post(net.urls[target] + "/p2p/v1/envelope", body, content_type)
            if target == "observer-0" and content_type == msgpack:
                expected = 403  # an observer takes no p2p messages at all
            assert status == expected, (target, status, reply[:200])
            document = json.loads(reply)
            assert ("error" in document) == (status != 200)
        huge = http_post(net.urls[target] + "/api/v1/txs", b"\x00" * (10 * 1024 * 1024))
        assert huge[0] == 413 and json.loads(huge[1])["error"]["code"] == "too_large"
        assert http_post(net.urls[target] + "/api/v1/txs", b"\x91\xc4\x03abc")[0] == 200
        assert http_post(net.urls[target] + "/api/v1/txs", b"\x95\x01")[0] == 400
        assert http_post(net.urls[target] + "/api/v1/txs", b"x", "text/plain")[0] == 415
        assert http_get(net.urls[target] + "/api/v1/txs/nothex")[0] == 400
        assert http_get(net.urls[target] + "/api/v1/blocks/raw?from=-1")[0] == 400
    metrics = http_get(net.urls["validator-1"] + "/metrics")[1].decode()
    assert 'veche_p2p_rejected_total{peer="validator-2",reason="bad_signature"}' in metrics
    assert 'veche_p2p_duplicates_total{peer="validator-2"}' in metrics
    assert all(net.alive(name) for name in net.names)
    hashes = voting.submit(voting.batches(300), net.names)
    for name in net.names:
        voting.wait_committed(name, hashes)
    assert_agree(net, net.names)


class Load:
    """Background ballots to some nodes while a test kills others."""

    def __init__(self, voting: Voting, batches: list[list[bytes]], targets: list[str], interval: float) -> None:
        self.voting = voting
        self.batches = batches
        self.targets = targets
        self.interval = interval
        self.accepted: list[str] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            for index, batch in enumerate(self.batches):
                self.accepted.extend(self.voting.submit([batch], self.targets[index % len(self.targets):]
                                                        + self.targets[:index % len(self.targets)]))
                time.sleep(self.interval)
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join(300)
        if self.error is not None:
            raise self.error


def test_kill_9_under_load_keeps_committing_and_the_victim_catches_up(net: LocalNet, voting: Voting) -> None:
    survivors = ["validator-0", "validator-1", "validator-2", "observer-0"]
    with Load(voting, voting.batches(3000), survivors, interval=0.15) as load:
        wait_for(lambda: len(load.accepted) > 500, 60, "load to start")
        net.kill("validator-3")
        at_kill = net.height("validator-0")
        wait_for(lambda: net.height("validator-0") >= at_kill + 4, 90, "commits without validator-3")
        net.start("validator-3")
        net.wait_up("validator-3")
    wait_for(lambda: net.height("validator-3") >= net.height("validator-0") - 1, 120, "validator-3 to catch up")
    for name in net.names:
        voting.wait_committed(name, load.accepted)
    assert_agree(net, net.names)


def test_two_of_four_down_commits_nothing_forks_nothing_then_resumes(net: LocalNet, voting: Voting) -> None:
    net.kill("validator-2")
    net.kill("validator-3")
    time.sleep(1.0)  # let blocks that already had a quorum land
    before = {name: net.height(name) for name in ("validator-0", "validator-1")}
    hashes = voting.submit(voting.batches(200), ["validator-0", "validator-1"])
    time.sleep(6.0)
    after = {name: net.height(name) for name in ("validator-0", "validator-1")}
    assert max(after.values()) <= max(before.values()) + 1  # at most one block that had its quorum already
    assert_agree(net, ["validator-0", "validator-1", "observer-0"])
    assert any(net.tx_status("validator-0", h) != "committed" for h in hashes[-5:])
    net.start("validator-2")
    net.wait_up("validator-2")
    voting.wait_committed("validator-0", hashes, timeout=180)
    net.start("validator-3")
    net.wait_up("validator-3")
    wait_for(lambda: net.height("validator-3") >= net.height("validator-0") - 1, 120, "validator-3 to catch up")
    for name in net.names:
        voting.wait_committed(name, hashes, timeout=180)
    assert_agree(net, net.names)


def test_wiped_validator_resyncs_from_genesis_and_keeps_its_signing_state(net: LocalNet, voting: Voting) -> None:
    missing = max(0, 10_500 - voting.voters)
    if missing:
        hashes = voting.submit(voting.batches(missing), net.names)
        for name in net.names:
            voting.wait_committed(name, hashes, timeout=300)
    tally = get_json(f"{net.urls['validator-0']}/api/v1/campaigns/{voting.plan.campaign_id}/tally")
    assert tally["total_ballots"] >= 10_000
    home = net.homes["validator-1"]
    signing_state = (home / "signing-state.bin").read_bytes()
    assert signing_state
    net.kill("validator-1")
    net.wipe_data("validator-1")
    assert not (home / "data").exists() and (home / "signing-state.bin").exists()
    target = net.height("validator-0")
    started = time.monotonic()
    net.start("validator-1")
    net.wait_up("validator-1")
    wait_for(lambda: net.height("validator-1") >= target, 180, "the wiped validator to re-sync")
    seconds = time.monotonic() - started
    print(f"re-synced {target} blocks ({voting.voters} votes) from genesis in {seconds:.1f} s")
    hashes = voting.submit(voting.batches(300), net.names)
    for name in net.names:
        voting.wait_committed(name, hashes)
    assert_agree(net, net.names)
    for name in net.validators:
        assert get_json(f"{net.urls[name]}/api/v1/evidence")["evidence"] == [], f"{name} saw equivocation"
    assert "Traceback" not in net.log_tail("validator-1", 2000)
