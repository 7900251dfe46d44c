"""What a campaign's ballots become as a pabulib file (pure): the record read from the chain,
checked against the node's published tally, written anonymised.

Voters are numbered 1..N in the order of their ballots' tx hashes (which reveals no key and no
time); ``selected`` is 1 for the published winners. Per ballot type:

| campaign ballot | file |
|---|---|
| choose-1, approval | that ``vote_type`` |
| knapsack | ``approval`` with META ``max_sum_cost`` (the cap; a district-budget cap is the budget) |
| cumulative | ``cumulative``, VOTES ``points``, PROJECTS ``score``, META ``min_sum_points``, ``max_sum_points`` (and ``max_points``) |
| ordinal | ``ordinal``, votes in rank order, PROJECTS ``score``; VOTES ``points`` unless ranks are worth ``max_length`` … 1 |

pabutools reads the file back with the same ballots, points and scores (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from chain.errors import DecodeError
from chain.pabulib import Amount, PbFile, PbProject, PbVote
from chain.tx import BallotSpec, CampaignCreate, District, InitiativeSubmit, RuleSpec, Tx, Wire, field_names
from node.pabulib.plan import KOPECKS_PER_UNIT, PabulibImportError

EXPORT_RULE_NAMES = {"greedy": "greedy", "greedy-no-skip": "greedy-no-skip", "equal-shares": "equalshares",
                     "top-n": "top-n"}
NESTED_FIELDS: dict[str, type[Wire]] = {"districts": District, "ballot": BallotSpec, "rule": RuleSpec}
HEX_FIELDS = frozenset({"certification_key", "gateway", "document_hash"})

RecordedBallot = tuple[tuple[str, ...], tuple[int, ...]]   # (choices, points; empty for set ballots)


@dataclass
class CampaignRecord:
    """A campaign as the chain recorded it: spec, initiatives on the ballot, ballots by tx hash."""

    committee: frozenset[bytes]
    spec: CampaignCreate | None = None
    initiatives: dict[str, InitiativeSubmit] = field(default_factory=dict)
    approved: set[str] = field(default_factory=set)
    ballots: dict[bytes, RecordedBallot] = field(default_factory=dict)


def collect_tx(record: CampaignRecord, campaign_id: str, tx: Tx) -> None:
    body = tx.body
    if getattr(body, "campaign_id", None) != campaign_id:
        return
    if tx.kind == "vote.cast":
        record.ballots[tx.hash] = (tuple(body.choices), tuple(body.points))
    elif tx.kind == "campaign.create":
        record.spec = body
    elif tx.kind == "initiative.submit":
        record.initiatives[body.initiative_id] = body
        if set(tx.signers) <= record.committee:
            record.approved.add(body.initiative_id)
    elif tx.kind == "initiative.review":
        (record.approved.add if body.approve else record.approved.discard)(body.initiative_id)


def wire_from_json(cls: type[Wire], value: Any, where: str) -> list[Any]:
    """The wire array of a body the node's API showed as JSON (``chain.tx.body_to_json``)."""
    if not isinstance(value, dict):
        raise PabulibImportError(f"the node's {where} is not a JSON object")
    out: list[Any] = []
    names = field_names(cls)
    if cls is BallotSpec:
        kind = value.get("type")
        names = BallotSpec.names_of(kind) if isinstance(kind, str) else names
    if cls is CampaignCreate and "certification_key" not in value:   # on the wire only when present
        names = names[:-1]
    for name in names:
        if name not in value:
            raise PabulibImportError(f"the node's {where} lacks {name!r}")
        item = value[name]
        nested = NESTED_FIELDS.get(name)
        if nested is not None and isinstance(item, list):
            item = [wire_from_json(nested, part, f"{where}.{name}") for part in item]
        elif nested is not None:
            item = wire_from_json(nested, item, f"{where}.{name}")
        elif name in HEX_FIELDS:
            try:
                item = bytes.fromhex(item) if isinstance(item, str) else item
            except ValueError:
                raise PabulibImportError(f"the node's {where}.{name} is not hex") from None
        out.append(item)
    return out


def record_from_details(details: dict[str, Any], committee: frozenset[bytes]) -> CampaignRecord:
    """Spec and initiatives from ``GET /api/v1/campaigns/{id}`` (ballots are added page by page)."""
    record = CampaignRecord(committee)
    try:
        record.spec = CampaignCreate.from_wire(wire_from_json(CampaignCreate, details.get("campaign"), "campaign"))
        initiatives = details.get("initiatives")
        if not isinstance(initiatives, list):
            raise PabulibImportError("the node's campaign lacks its initiatives")
        for item in initiatives:
            initiative = InitiativeSubmit.from_wire(wire_from_json(InitiativeSubmit, item, "initiative"))
            record.initiatives[initiative.initiative_id] = initiative
            if item.get("status") == "approved":
                record.approved.add(initiative.initiative_id)
    except DecodeError as exc:
        raise PabulibImportError(f"the node's campaign document is malformed: {exc.message}") from exc
    return record


def units(kopecks: int) -> Amount:
    """Kopecks as currency units: an int when whole, else an exact fraction (written as a decimal)."""
    value = Fraction(kopecks, KOPECKS_PER_UNIT)
    return int(value) if value.denominator == 1 else value


def count_ballots(record: CampaignRecord, on_ballot: list[InitiativeSubmit],
                  ordered: list[tuple[bytes, RecordedBallot]]) -> tuple[dict[str, int], dict[str, int]]:
    votes = {i.initiative_id: 0 for i in on_ballot}
    scores = {i.initiative_id: 0 for i in on_ballot}
    for _, (choices, points) in ordered:
        for position, choice in enumerate(choices):
            votes[choice] = votes.get(choice, 0) + 1
            scores[choice] = scores.get(choice, 0) + (points[position] if points else 1)
    return votes, scores


def ballot_meta(ballot: BallotSpec, district_budgets: list[int]) -> tuple[str, list[tuple[str, str]]]:
    """The file's ``vote_type`` and the META lines that state the ballot's limits."""
    lengths = [("min_length", str(ballot.min_choices)), ("max_length", str(ballot.max_choices))]
    if ballot.type == "knapsack":
        caps = {ballot.max_sum_cost} if ballot.max_sum_cost else set(district_budgets)
        if len(caps) != 1:
            return "approval", lengths + [("comment", "knapsack ballots: each ballot's total cost is at most "
                                                      "its district's budget")]
        return "approval", lengths + [("max_sum_cost", str(units(caps.pop())))]
    if ballot.type == "cumulative":
        limits = [("min_sum_points", str(ballot.min_sum_points)), ("max_sum_points", str(ballot.max_sum_points))]
        if ballot.max_points:
            limits.append(("max_points", str(ballot.max_points)))
        return "cumulative", lengths + limits
    return ballot.type, lengths


def default_rank_points(ballot: BallotSpec) -> bool:
    """Ranks worth max_length … 1: what a pabulib ordinal file means without a points column."""
    return ballot.rank_points == tuple(range(ballot.max_choices, 0, -1))


def build_export(record: CampaignRecord, tally: dict[str, Any], chain_id: str) -> PbFile:
    spec = record.spec
    if spec is None:
        raise PabulibImportError("the campaign's campaign.create was not found on the chain")
    on_ballot = [record.initiatives[i] for i in sorted(record.approved, key=str.encode) if i in record.initiatives]
    ordered = sorted(record.ballots.items())              # by tx hash: reveals no key, no time
    votes, scores = count_ballots(record, on_ballot, ordered)
    districts = tally.get("districts", {})
    published = {iid: n for d in districts.values() for iid, n in d.get("initiatives", {}).items()}
    published_scores = {iid: n for d in districts.values() for iid, n in d.get("scores", d.get("initiatives", {})).items()}
    if published != votes or published_scores != scores:
        raise PabulibImportError("the ballots read from the blocks do not add up to the node's published tally")
    closed = tally.get("status") == "closed" and tally.get("result_status", "final") == "final"
    winners = set(tally.get("winners", [])) if closed else None
    names = {d.district_id: d.name for d in spec.districts}
    several = len(spec.districts) > 1
    budget = spec.rule.budget if spec.rule.scope == "campaign" else sum(d.budget for d in spec.districts)
    vote_type, limits = ballot_meta(spec.ballot, [d.budget for d in spec.districts])
    meta = [("description", spec.title), ("num_projects", str(len(on_ballot))), ("num_votes", str(len(ordered))),
            ("budget", str(units(budget))), ("vote_type", vote_type),
            ("rule", EXPORT_RULE_NAMES.get(spec.rule.name, spec.rule.name)), *limits,
            ("scope", spec.rule.scope), ("chain_id", chain_id), ("campaign_id", spec.campaign_id)]
    if spec.rule.min_votes:
        meta.append(("min_project_score_threshold", str(spec.rule.min_votes)))
    if closed:
        meta.append(("result_hash", str(tally.get("result_hash"))))
    scored = spec.ballot.scored
    projects = tuple(PbProject(
        project_id=i.initiative_id, cost=units(i.cost), votes=votes[i.initiative_id],
        name=" ".join(i.title.split()), category=" ".join(i.category.split()),
        selected=None if winners is None else int(i.initiative_id in winners),
        district=names.get(i.district_id, i.district_id) if several else None, extra=(),
        score=scores[i.initiative_id] if scored else None) for i in on_ballot)
    with_points = spec.ballot.type == "cumulative" or (spec.ballot.type == "ordinal"
                                                       and not default_rank_points(spec.ballot))
    ballots = tuple(PbVote(str(n), choices, None, (), points if with_points else None)
                    for n, (_, (choices, points)) in enumerate(ordered, start=1))
    return PbFile(tuple(meta), projects, ballots)
