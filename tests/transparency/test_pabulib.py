"""``veche pabulib import|export``: real elections in, the same elections (and outcomes) out."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pabutools.election import Cost_Sat, parse_pabulib
from pabutools.rules import greedy_utilitarian_welfare

from chain.errors import PabulibError
from chain.pabulib import PbFile, compute_vote_counts, parse_pb, read_pb
from node.cli_transparency import pabulib_group
from node.client import SyncNodeClient
from node.pabulib_io import PabulibImportError, district_id_for, plan_import, slugify
from tests.node.netkit import free_base_port
from tests.transparency.fakenode import ThreadedTestnet, write_testnet
from tests.paths import SHARED_DATA

DATA = SHARED_DATA
FILES = sorted(DATA.glob("*.pb"))
BALLOT_TYPE_FILES = sorted((DATA / "ballot-types").glob("*.pb"))   # cumulative, ordinal, knapsack
GATEWAY = b"\x01" * 32


def invoke(*args: str) -> Result:
    return CliRunner().invoke(pabulib_group, list(args))


@pytest.fixture(scope="module")
def testnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedTestnet]:
    directory = tmp_path_factory.mktemp("pabulib") / "testnet"
    write_testnet(directory, base_port=free_base_port(6))
    with ThreadedTestnet(directory) as running:
        yield running


def official_selection(pb: PbFile) -> set[str]:
    return {p.project_id for p in pb.projects if p.selected_by_rule}


Ballot = tuple[tuple[str, int], ...]   # (project, points) — points 1 for approval ballots


@dataclass(frozen=True)
class PabutoolsView:
    """What pabutools reads from a file: ballots (a multiset of (project, points) tuples: sorted for
    approval and cumulative ballots, in rank order for ordinal ones), scores, costs, budget, outcome."""

    ballots: Counter[Ballot]
    scores: dict[str, int]
    costs: dict[str, int]
    budget: int
    outcome: frozenset[str]


def greedy_reference(costs: dict[str, int], scores: dict[str, int], budget: int, *, skip: bool) -> set[str]:
    """Most points first (ties: lower cost, id bytes); take what fits, or stop at the first that does not."""
    chosen: set[str] = set()
    for project in sorted(costs, key=lambda p: (-scores[p], costs[p], p.encode())):
        if costs[project] > budget:
            if skip:
                continue
            break
        chosen.add(project)
        budget -= costs[project]
    return chosen


def pabutools_ballot(vote_type: str, ballot: Any, max_length: int) -> Ballot:
    if vote_type == "cumulative":
        return tuple(sorted((project.name, int(ballot[project])) for project in ballot))
    if vote_type == "ordinal":
        given = ballot.meta.get("points")
        points = [int(x) for x in given.split(",")] if given else [max_length - rank for rank in range(len(ballot))]
        return tuple((project.name, value) for project, value in zip(ballot, points))
    return tuple(sorted((project.name, 1) for project in ballot))


def pabutools_view(path: Path, rule: str) -> PabutoolsView:
    instance, profile = parse_pabulib(str(path))
    vote_type = instance.meta["vote_type"]
    max_length = int(instance.meta.get("max_length") or max((len(b) for b in profile), default=0))
    ballots = Counter(pabutools_ballot(vote_type, ballot, max_length) for ballot in profile)
    costs = {project.name: int(project.cost) for project in instance}
    scores = {project: 0 for project in costs}
    for ballot, weight in ballots.items():
        for project, points in ballot:
            scores[project] += points * weight
    budget = int(instance.budget_limit)
    if rule == "greedy" and vote_type in ("approval", "choose-1"):
        outcome = {p.name for p in greedy_utilitarian_welfare(instance, profile, sat_class=Cost_Sat)}
    else:  # pabutools has no greedy-no-skip nor a greedy on points: apply the rule to its profile
        outcome = greedy_reference(costs, scores, budget, skip=rule == "greedy")
    return PabutoolsView(ballots, scores, costs, budget, frozenset(outcome))


def test_import_with_votes_reproduces_the_official_result_and_exports_the_same_election(
        testnet: ThreadedTestnet, tmp_path: Path) -> None:
    """Against the in-process fake; tests/transparency/test_realnet.py runs every file on real nodes."""
    check_import_and_export(testnet.directory, testnet.url(0), DATA / "Poland_Warszawa_2023_Wesola.pb",
                            tmp_path)


@pytest.mark.parametrize("name", ["Poland_Krakow_2019_Bronowice.pb"])
def test_a_ranked_election_imports_and_exports_the_same(testnet: ThreadedTestnet, tmp_path: Path, name: str) -> None:
    """Ordinal ballots on the fake; tests/transparency/test_ballot_types_realnet.py runs all three types on
    real nodes."""
    check_import_and_export(testnet.directory, testnet.url(0), DATA / "ballot-types" / name, tmp_path)


def wait_closed(node_url: str, campaign_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The tally once ``node_url`` has caught up with the close (an observer may lag a block)."""
    deadline = time.monotonic() + timeout
    while True:
        tally = SyncNodeClient(node_url).tally(campaign_id)
        if tally["status"] == "closed" or time.monotonic() > deadline:
            assert tally["status"] == "closed", tally
            return tally
        time.sleep(0.2)


def check_import_and_export(directory: Path, node_url: str, source: Path, tmp_path: Path) -> dict[str, Any]:
    """Import with votes and close; the node's tally must be the file's; the export must be the election."""
    pb = read_pb(source)
    started = time.monotonic()
    result = invoke("import", str(source), "--testnet", str(directory), "--with-votes", "--close", "--json")
    assert result.exit_code == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    assert set(summary) == {"campaign_id", "initiatives", "votes_submitted", "votes_committed", "seconds"}
    assert summary["initiatives"] == len(pb.projects)
    assert summary["votes_submitted"] == summary["votes_committed"] == len(pb.votes)
    print(f"\n{source.name}: {len(pb.votes)} ballots imported in {time.monotonic() - started:.1f} s; "
          + result.stderr.strip().splitlines()[-1])

    campaign_id = summary["campaign_id"]
    tally = wait_closed(node_url, campaign_id)
    assert tally["total_ballots"] == len(pb.votes)
    assert tally["close_reason"] == "pabulib import complete"
    node_counts = {iid: votes for d in tally["districts"].values() for iid, votes in d["initiatives"].items()}
    assert node_counts == {p.project_id: p.votes for p in pb.projects}
    node_scores = {iid: points for d in tally["districts"].values() for iid, points in d["scores"].items()}
    assert node_scores == {p.project_id: p.votes if p.score is None else p.score for p in pb.projects}
    assert set(tally["winners"]) == official_selection(pb)

    out = tmp_path / f"{source.stem}-export.pb"
    exported = invoke("export", "--node", node_url, "--campaign", campaign_id, "--out", str(out))
    assert exported.exit_code == 0, exported.stderr
    original, recount = pabutools_view(source, pb.rule), pabutools_view(out, pb.rule)
    assert recount == original
    assert recount.outcome == official_selection(pb)
    assert recount.scores == {p.project_id: p.votes if p.score is None else p.score for p in pb.projects}
    back = read_pb(out)
    assert {p.project_id: (p.votes, p.score, p.selected) for p in back.projects} == \
        {p.project_id: (p.votes, p.score, int(p.selected_by_rule)) for p in pb.projects}
    assert back.meta_get("rule") == pb.rule and back.vote_type == pb.vote_type
    for limit in ("max_sum_cost", "max_sum_points", "min_length", "max_length"):
        if pb.meta_get(limit) is not None:
            assert back.get_meta_amount(limit) == pb.get_meta_amount(limit), limit
    assert [v.voter_id for v in back.votes] == [str(n) for n in range(1, len(pb.votes) + 1)]
    return summary


def test_import_without_votes_and_failover(testnet: ThreadedTestnet) -> None:
    source = DATA / "Poland_Warszawa_2023_Wesola.pb"
    testnet.run(lambda: testnet.testnet.stop_node("validator-0"))
    try:
        result = invoke("import", str(source), "--testnet", str(testnet.directory), "--with-votes")
    finally:
        testnet.run(lambda: testnet.testnet.start_node("validator-0"))
    assert result.exit_code == 0, result.stderr
    assert "29 initiatives" in result.stdout and "ballots: 1181 of 1181 committed" in result.stdout
    campaign_id = result.stdout.split()[1].rstrip(":")
    assert testnet.network.ledger.state.campaigns[campaign_id].status == "open"   # no --close
    second = invoke("import", str(source), "--testnet", str(testnet.directory), "--json")
    assert second.exit_code == 0, second.stderr
    assert json.loads(second.stdout)["campaign_id"] != campaign_id   # a new campaign each run
    assert json.loads(second.stdout)["votes_submitted"] == 0


def test_export_of_an_unknown_campaign(testnet: ThreadedTestnet, tmp_path: Path) -> None:
    result = invoke("export", "--node", testnet.url(0), "--campaign", "nope", "--out", str(tmp_path / "x.pb"))
    assert result.exit_code == 2 and "knows no campaign 'nope'" in result.stderr


def test_import_errors(testnet: ThreadedTestnet, tmp_path: Path) -> None:
    missing = invoke("import", str(tmp_path / "none.pb"), "--testnet", str(testnet.directory))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    broken = tmp_path / "broken.pb"
    broken.write_text("META\nkey;value\nbudget;10\n", encoding="utf-8")
    result = invoke("import", str(broken), "--testnet", str(testnet.directory))
    assert result.exit_code == 2 and "META has no 'vote_type'" in result.stderr
    result = invoke("import", str(DATA / "Poland_Warszawa_2023_Wesola.pb"), "--testnet", str(tmp_path))
    assert result.exit_code == 2 and "testnet init" in result.stderr


# --- planning, without a network ---------------------------------------------------------------------


def pb_text(vote_type: str = "approval", rule: str = "greedy", *, districts: bool = True,
            votes: list[str] | None = None, project_ids: tuple[str, str, str] = ("1", "2", "3")) -> str:
    a, b, c = project_ids
    project_rows = [f"{a};100;Park;parks;Śródmieście", f"{b};200;Road;roads;Łódź Bałuty", f"{c};50;Tree;parks;Łódź Bałuty"]
    if not districts:
        project_rows = [row.rsplit(";", 1)[0] for row in project_rows]
    ballots = votes if votes is not None else [f"{b}", f"{b},{c}", f"{a}"]
    return "\n".join([
        "META", "key;value", "description;Test", "unit;Łódź", "budget;250", f"vote_type;{vote_type}", f"rule;{rule}",
        "PROJECTS", "project_id;cost;name;category" + (";district" if districts else ""), *project_rows,
        "VOTES", "voter_id;vote", *[f"v{i};{v}" for i, v in enumerate(ballots)], ""])


def test_plan_maps_budget_costs_districts_and_ballots() -> None:
    plan = plan_import(parse_pb(pb_text()), campaign_id="c-1", gateway=GATEWAY, now_ms=1_000_000)
    campaign = plan.campaign
    assert campaign.rule.name == "greedy" and campaign.rule.scope == "campaign" and campaign.rule.budget == 25_000
    assert [d.name for d in campaign.districts] == ["Śródmieście", "Łódź Bałuty"]
    assert [d.district_id for d in campaign.districts] == [district_id_for("Śródmieście"), district_id_for("Łódź Bałuty")]
    assert all(d.district_id.isascii() for d in campaign.districts)
    assert district_id_for("Łódź Bałuty").startswith("lodz-baluty-")
    assert [(i.initiative_id, i.cost) for i in plan.initiatives] == [("1", 10_000), ("2", 20_000), ("3", 5_000)]
    assert plan.ballots == ((district_id_for("Łódź Bałuty"), ("2",), None),
                            (district_id_for("Łódź Bałuty"), ("2", "3"), None),
                            (district_id_for("Śródmieście"), ("1",), None))
    assert campaign.ballot.type == "approval" and campaign.ballots_per_voter == "campaign"
    assert campaign.voting_start == campaign.submission_end > 1_000_000
    assert plan.notes == ()


def test_ballots_spanning_districts_make_one_district() -> None:
    plan = plan_import(parse_pb(pb_text(votes=["1,2", "3"])), campaign_id="c", gateway=GATEWAY, now_ms=1)
    assert [d.name for d in plan.campaign.districts] == ["Łódź"]
    assert plan.campaign.districts[0].budget == 25_000
    assert "several districts" in plan.notes[0]
    assert {i.summary for i in plan.initiatives} >= {"pabulib project 1 (Śródmieście)"}


def test_file_without_districts_is_one_district() -> None:
    plan = plan_import(parse_pb(pb_text(districts=False)), campaign_id="c", gateway=GATEWAY, now_ms=1)
    assert [d.name for d in plan.campaign.districts] == ["Łódź"]


def test_empty_ballots_are_skipped_and_counted() -> None:
    text = pb_text(votes=["2", "1"]) .replace("v1;1", "v1;1\nv9;")
    plan = plan_import(parse_pb(text), campaign_id="c", gateway=GATEWAY, now_ms=1)
    assert len(plan.ballots) == 2 and plan.skipped_empty == 1


@pytest.mark.parametrize(("text", "message"), [
    (pb_text(vote_type="borda"), "vote_type 'borda' is not supported"),
    (pb_text(rule="maximin"), "rule 'maximin' is not supported"),
    (pb_text(vote_type="choose-1"), "a choose-1 file has a ballot naming several projects"),
    (pb_text().replace("budget;250", "budget;250.005"), "more than two decimal places"),
])
def test_unsupported_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(PabulibImportError, match=message):
        plan_import(parse_pb(text), campaign_id="c", gateway=GATEWAY, now_ms=1)


def test_project_ids_that_are_no_initiative_ids_are_renamed_with_a_note() -> None:
    plan = plan_import(parse_pb(pb_text(project_ids=("1", "L21/05/IX", "x y"))), campaign_id="c", gateway=GATEWAY,
                       now_ms=1)
    ids = [i.initiative_id for i in plan.initiatives]
    assert ids[0] == "1" and ids[1].startswith("L21-05-IX-") and ids[2].startswith("x-y-")
    assert plan.ballots[0][1] == (ids[1],)
    assert "2 project ids are not valid initiative ids" in plan.notes[0]
    assert plan.initiatives[1].summary.startswith("pabulib project L21/05/IX ")


def test_fractional_budget_and_costs_become_exact_kopecks() -> None:
    text = pb_text().replace("budget;250", "budget;1331751.11").replace("1;100;Park", "1;100.5;Park")
    plan = plan_import(parse_pb(text), campaign_id="c", gateway=GATEWAY, now_ms=1)
    assert plan.campaign.rule.budget == 133_175_111 and plan.initiatives[0].cost == 10_050


def test_greedy_threshold_and_the_rules_the_chain_runs_approximately() -> None:
    text = pb_text(rule="greedy-threshold").replace("rule;greedy-threshold", "rule;greedy-threshold\n"
                                                                             "min_project_score_threshold;50")
    plan = plan_import(parse_pb(text), campaign_id="c", gateway=GATEWAY, now_ms=1)
    assert (plan.campaign.rule.name, plan.campaign.rule.min_votes, plan.notes) == ("greedy", 50, ())
    for rule, chain_rule in (("greedy-custom", "greedy-no-skip"), ("greedy-exclusive", "greedy"), ("unknown", "greedy")):
        plan = plan_import(parse_pb(pb_text(rule=rule)), campaign_id="c", gateway=GATEWAY, now_ms=1)
        assert plan.campaign.rule.name == chain_rule and "official selection may differ" in plan.notes[0]


def test_knapsack_from_max_sum_cost() -> None:
    text = pb_text(districts=False).replace("rule;greedy", "rule;greedy\nmax_sum_cost;250")
    plan = plan_import(parse_pb(text), campaign_id="c", gateway=GATEWAY, now_ms=1)
    ballot = plan.campaign.ballot
    assert (ballot.type, ballot.max_sum_cost) == ("knapsack", 25_000) and plan.notes == ()
    tight = plan_import(parse_pb(text.replace("max_sum_cost;250", "max_sum_cost;200")), campaign_id="c",
                        gateway=GATEWAY, now_ms=1)
    assert tight.campaign.ballot.max_sum_cost == 25_000  # ballot 2,3 costs 250: raised so that it counts
    assert "1 ballots cost more than max_sum_cost 200" in tight.notes[0]


def test_cumulative_points_and_limits() -> None:
    text = pb_text(vote_type="cumulative", districts=False).replace("voter_id;vote", "voter_id;vote;points") \
        .replace("v0;2", "v0;2;5").replace("v1;2,3", "v1;2,3;3,2").replace("v2;1", "v2;1;4") \
        .replace("rule;greedy", "rule;greedy\nmin_sum_points;1\nmax_sum_points;5")
    plan = plan_import(parse_pb(text), campaign_id="c", gateway=GATEWAY, now_ms=1)
    ballot = plan.campaign.ballot
    assert (ballot.type, ballot.min_sum_points, ballot.max_sum_points, ballot.max_points) == ("cumulative", 1, 5, 0)
    assert [b[1:] for b in plan.ballots] == [(("2",), (5,)), (("2", "3"), (3, 2)), (("1",), (4,))]
    assert plan.notes == ()
    over = plan_import(parse_pb(text.replace("max_sum_points;5", "max_sum_points;4")), campaign_id="c",
                       gateway=GATEWAY, now_ms=1)
    assert over.campaign.ballot.max_sum_points == 5 and "more than max_sum_points 4" in over.notes[0]


def test_ordinal_rank_points() -> None:
    base = pb_text(vote_type="ordinal", districts=False, votes=["2,1,3", "3,2", "1,3,2"])
    plan = plan_import(parse_pb(base.replace("rule;greedy", "rule;greedy\nmin_length;2\nmax_length;3")),
                       campaign_id="c", gateway=GATEWAY, now_ms=1)
    ballot = plan.campaign.ballot
    assert (ballot.type, ballot.min_choices, ballot.max_choices, ballot.rank_points) == ("ordinal", 2, 3, (3, 2, 1))
    assert [b[1:] for b in plan.ballots] == [(("2", "1", "3"), (3, 2, 1)), (("3", "2"), (3, 2)),
                                              (("1", "3", "2"), (3, 2, 1))]
    given = base.replace("voter_id;vote", "voter_id;vote;points").replace("2,1,3", "2,1,3;5,3,1") \
        .replace("v1;3,2", "v1;3,2;5,3").replace("1,3,2\n", "1,3,2;5,3,1\n")
    assert plan_import(parse_pb(given), campaign_id="c", gateway=GATEWAY, now_ms=1).campaign.ballot.rank_points == \
        (5, 3, 1)
    mixed = given.replace("v1;3,2;5,3", "v1;3,2;4,3")
    with pytest.raises(PabulibImportError, match="rank 1 different points"):
        plan_import(parse_pb(mixed), campaign_id="c", gateway=GATEWAY, now_ms=1)


def test_equal_shares_variants() -> None:
    plan = plan_import(parse_pb(pb_text(rule="equalshares/add1")), campaign_id="c", gateway=GATEWAY, now_ms=1)
    assert plan.campaign.rule.name == "equal-shares" and "no completion" in plan.notes[0]
    plan = plan_import(parse_pb(pb_text(rule="equalshares")), campaign_id="c", gateway=GATEWAY, now_ms=1)
    assert plan.campaign.rule.name == "equal-shares" and plan.notes == ()


def test_real_files_plan_as_documented() -> None:
    wroclaw = read_pb(DATA / "Poland_Wroclaw_2019_local.pb")
    plan = plan_import(wroclaw, campaign_id="w", gateway=GATEWAY, now_ms=1)
    assert len(plan.campaign.districts) == len({p.district for p in wroclaw.projects})
    assert plan.campaign.rule.budget == 9_000_000 * 100 and plan.campaign.ballot.type == "choose-1"
    wesola = read_pb(DATA / "Poland_Warszawa_2023_Wesola.pb")
    plan = plan_import(wesola, campaign_id="w", gateway=GATEWAY, now_ms=1)
    assert [d.name for d in plan.campaign.districts] == ["Wesoła"]
    assert (plan.campaign.ballot.min_choices, plan.campaign.ballot.max_choices) == (1, 15)
    assert compute_vote_counts(wesola) == {p.project_id: p.votes for p in wesola.projects}
    assert slugify("Poland_Wroclaw_2019_local") == "poland-wroclaw-2019-local"


def test_malformed_file_is_a_typed_error() -> None:
    with pytest.raises(PabulibError):
        parse_pb("META\nkey;value\n")
