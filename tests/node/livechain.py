"""Real data on a running test network, for tests that read every body the public API serves.

``populate(net)`` drives a ``LocalNet`` (real node processes) through every state a record can be
in, with real signed transactions over HTTP: ballots in both demo campaigns (one per district, one
per campaign), a campaign ``live-topn`` with an initiative approved on submission, one never
reviewed, one approved and one rejected by review, ballots, a committee close (result final) and a
progress report; an equal-shares campaign ``live-es`` closed with ballots; a cumulative (scored)
campaign ``live-points`` with ballots, left open; a forged transaction
(remembered as rejected).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from chain.crypto import SigningKey, read_key_file, sha256
from chain.tx import (
    BallotSpec, CampaignClose, CampaignCreate, District, InitiativeReview, InitiativeSubmit, ProgressReport,
    RuleSpec, Tx, VoteCast, make_registration, make_vote, sign_tx,
)
from node.cosign.request import SigningRequest
from tests.node.docnet import document_set, upload_headers
from tests.node.netkit import LocalNet, get_json, http_post, wait_for
from tests.node.votes import demo_plan, encode_batch, make_batch

DISTRICTS = ("volgograd", "volzhsky")


@dataclass
class LiveChain:
    url: str
    chain_id: str
    campaigns: list[str] = field(default_factory=list)
    committed: list[str] = field(default_factory=list)
    rejected_tx: str = ""


def submit(url: str, txs: list[Tx] | list[bytes]) -> list[str]:
    raws = [tx.raw if isinstance(tx, Tx) else tx for tx in txs]
    status, body, _ = http_post(url + "/api/v1/txs", encode_batch(raws))
    assert status == 200, body[:300]
    answer = json.loads(body)
    assert not answer["rejected"], answer["rejected"]
    return list(answer["accepted"])


def commit(url: str, txs: list[Tx] | list[bytes]) -> list[str]:
    hashes = submit(url, txs)
    wait_for(lambda: all(get_json(f"{url}/api/v1/txs/{h}")["status"] == "committed" for h in hashes),
             30, "transactions to commit")
    return hashes


def populate(net: LocalNet, name: str = "validator-0") -> LiveChain:
    url = net.urls[name]
    directory = net.directory
    committee = read_key_file(directory / "keys" / "committee-0.json")
    operators = {d: read_key_file(directory / "keys" / f"district-{d}.json") for d in DISTRICTS}
    gateway = read_key_file(directory / "gateway" / "gateway-key.json")
    chain_id = net.layout.chain_id
    live = LiveChain(url, chain_id)

    for campaign_id in ("ib-2027", "ib-deti-2027"):
        live.committed += commit(url, make_batch(demo_plan(directory, campaign_id), 4, seed=7))

    now = int(time.time() * 1000)
    voting_start = now + 3_000
    districts = tuple(District(d, f"District {d}", 50_000_000) for d in DISTRICTS)

    def campaign(campaign_id: str, ballot: BallotSpec, rule: RuleSpec, per_voter: str) -> Tx:
        body = CampaignCreate(campaign_id, f"Live campaign {campaign_id}", "adult", districts, ballot, rule,
                              100, 10**9, ("parks", "roads"), now - 60_000, voting_start, voting_start,
                              now + 10**9, gateway.public_key, 1000, per_voter)
        return sign_tx("campaign.create", chain_id, body, [committee])

    live.committed += commit(url, [
        campaign("live-topn", BallotSpec("choose-1", 1, 1), RuleSpec("top-n", "district", 1, 0, 0), "district"),
        campaign("live-es", BallotSpec("approval", 1, 2), RuleSpec("equal-shares", "campaign", 0, 0, 30_000_000),
                 "campaign"),
        campaign("live-points", BallotSpec("cumulative", 1, 2, min_sum_points=1, max_sum_points=10),
                 RuleSpec("greedy", "district", 0, 0, 0), "district")])

    # documents: an estimate and two photos under a manifest that p1 names (node/documents/)
    files, manifest = document_set("live")
    for data in [*files, manifest]:
        status, body, _ = http_post(url + "/api/v1/documents", data, "",
                                    headers=upload_headers(chain_id, operators["volgograd"], data))
        assert status == 201, body

    def initiative(campaign_id: str, initiative_id: str, district: str, signer: SigningKey, cost: int) -> Tx:
        document = sha256(manifest) if initiative_id == "p1" else bytes(range(32))
        body = InitiativeSubmit(campaign_id, initiative_id, district, f"Initiative {initiative_id}", "parks",
                                cost, "A summary.", document)
        return sign_tx("initiative.submit", chain_id, body, [signer])

    live.committed += commit(url, [
        initiative("live-topn", "t-approved", "volgograd", committee, 1_000_000),
        initiative("live-topn", "t-unreviewed", "volgograd", operators["volgograd"], 2_000_000),
        initiative("live-topn", "t-reviewed", "volzhsky", operators["volzhsky"], 3_000_000),
        initiative("live-topn", "t-rejected", "volzhsky", operators["volzhsky"], 4_000_000),
        initiative("live-es", "e1", "volgograd", committee, 10_000_000),
        initiative("live-es", "e2", "volgograd", committee, 20_000_000),
        initiative("live-es", "e3", "volzhsky", committee, 5_000_000),
        initiative("live-points", "p1", "volgograd", committee, 1_000_000),
        initiative("live-points", "p2", "volgograd", committee, 2_000_000)])
    live.committed += commit(url, [
        sign_tx("initiative.review", chain_id, InitiativeReview("live-topn", "t-reviewed", True, ""), [committee]),
        sign_tx("initiative.review", chain_id,
                InitiativeReview("live-topn", "t-rejected", False, "over the district's budget"), [committee])])

    wait_for(lambda: int(time.time() * 1000) > voting_start + 50, 10, "the live campaigns' voting to open")
    voters = [SigningKey.generate() for _ in range(3)]
    keys = [v.public_key for v in voters]
    live.committed += commit(url, [
        make_registration(chain_id, gateway, "live-topn", keys), make_registration(chain_id, gateway, "live-es", keys),
        make_registration(chain_id, gateway, "live-points", keys),
        sign_tx("vote.cast", chain_id, VoteCast("live-points", "volgograd", ("p2", "p1"), (7, 3)), [voters[0]]),
        sign_tx("vote.cast", chain_id, VoteCast("live-points", "volgograd", ("p1",), (4,)), [voters[1]]),
        make_vote(chain_id, voters[0], "live-topn", "volgograd", ["t-approved"]),
        make_vote(chain_id, voters[1], "live-topn", "volzhsky", ["t-reviewed"]),
        make_vote(chain_id, voters[0], "live-es", "volgograd", ["e1", "e2"]),
        make_vote(chain_id, voters[1], "live-es", "volgograd", ["e1"]),
        make_vote(chain_id, voters[2], "live-es", "volzhsky", ["e3"])])
    live.committed += commit(url, [
        sign_tx("campaign.close", chain_id, CampaignClose("live-topn", "the vote is over"), [committee]),
        sign_tx("campaign.close", chain_id, CampaignClose("live-es", "the vote is over"), [committee])])
    live.committed += commit(url, [
        sign_tx("progress.report", chain_id,
                ProgressReport("live-topn", "t-approved", "works", 40, 400_000, "the works began", b""), [committee]),
        sign_tx("progress.report", chain_id,
                ProgressReport("live-topn", "t-approved", "done", 100, 990_000, "", bytes(32)), [committee])])
    wait_for(lambda: get_json(f"{url}/api/v1/campaigns/live-es/tally")["result_status"] == "final", 30,
             "the equal-shares result")

    forged = make_vote(chain_id, voters[2], "live-topn", "volzhsky", ["t-reviewed"]).raw
    forged = forged[:-1] + bytes([forged[-1] ^ 1])  # the signature's last byte: bad_signature
    status, body, _ = http_post(url + "/api/v1/txs", encode_batch([forged]))
    assert status == 200 and b"bad_signature" in body, body
    live.rejected_tx = sha256(forged).hex()
    wait_for(lambda: get_json(url + "/api/v1/documents")["documents"] == 4, 30, "the named documents")
    # a signing request waiting for co-signers (node/cosign/)
    pending = SigningRequest(chain_id, net.layout.genesis_hash, "campaign.close",
                             CampaignClose("ib-deti-2027", "a decision waiting for signatures"), 1, [], 0,
                             int(time.time() * 1000), expires_at_ms=int(time.time() * 1000) + 3_600_000)
    pending.add_signature(committee)
    status, body, _ = http_post(url + "/api/v1/signing-requests", json.dumps(pending.to_json()).encode(),
                                "application/json")
    assert status == 201, body
    live.campaigns = sorted(c["campaign_id"] for c in get_json(url + "/api/v1/campaigns")["campaigns"])
    return live
