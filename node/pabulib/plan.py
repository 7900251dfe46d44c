"""What a pabulib file becomes on the chain: a campaign, its initiatives and its ballots (pure).

META gives the budget (× 100: kopecks), the ballot type and the rule; PROJECTS become initiatives
(cost × 100), each in its district when the file has a PROJECTS ``district`` column; VOTES become
ballots. Ballot types follow the format, not any one file:

| file | campaign ballot |
|---|---|
| ``choose-1`` | choose-1 |
| ``approval`` | approval, 1..64 choices from ``min_length``/``max_length`` |
| ``approval`` with ``max_sum_cost`` | knapsack with that cap |
| ``cumulative`` | cumulative: ``points`` column, ``min_sum_points``/``max_sum_points``/``max_points`` |
| ``ordinal`` | ordinal: votes in rank order worth ``max_length`` … 1 points, or the ``points`` column |

Every real ballot must be castable, so where ballots break the file's own stated limits the
campaign's limits are widened to admit them, and a note says so. Everything the import changes or
cannot model is a note in ``ImportPlan.notes``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

from chain.errors import DecodeError, VecheError
from chain.pabulib import Amount, PbFile, PbProject, PbVote
from chain.tx import (
    ID_PATTERN, MAX_CHOICES, MAX_POINTS, BallotSpec, CampaignCreate, District, InitiativeSubmit, RuleSpec,
)

KOPECKS_PER_UNIT = 100
SETUP_SECONDS = 6.0             # voting opens this long after the campaign is created
VOTING_DAYS = 7
RULE_NAMES = {
    "greedy": "greedy", "greedy-no-skip": "greedy-no-skip", "greedy_no_skip": "greedy-no-skip",
    "greedy-noskip": "greedy-no-skip", "equalshares": "equal-shares", "equal-shares": "equal-shares",
    "equal_shares": "equal-shares", "mes": "equal-shares", "top-n": "top-n", "greedy-threshold": "greedy",
}
# rules the chain runs only approximately: (chain rule, what the note says)
APPROXIMATED_RULES = {
    "equalshares/add1": ("equal-shares", "is imported as plain equal shares (no completion)"),
    "equalshares-add1": ("equal-shares", "is imported as plain equal shares (no completion)"),
    "equalshares/add1-comparison": ("equal-shares", "is imported as plain equal shares (no completion)"),
    "greedy-custom": ("greedy-no-skip", "is imported as greedy-no-skip: projects the file marks selected 2 or 3 "
                                        "were funded outside that rule"),
    "greedy-exclusive": ("greedy", "is imported as greedy: its mutually exclusive projects are not modelled"),
    "unknown": ("greedy", "is imported as greedy: the file does not know the rule"),
}
TRANSLIT = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "ß": "ss", "æ": "ae",
                          **dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                                     ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o",
                                      "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e",
                                      "yu", "ya"]))})

PlannedBallot = tuple[str, tuple[str, ...], tuple[int, ...] | None]   # (district_id, choices, points)


class PabulibImportError(VecheError):
    """A pabulib file, testnet or campaign that cannot be imported or exported as asked."""

    code = "pabulib_import"


def slugify(text: str, limit: int = 40) -> str:
    plain = unicodedata.normalize("NFKD", text.lower().translate(TRANSLIT)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:limit].strip("-")


def district_id_for(name: str) -> str:
    """ASCII-safe, stable id for a district name: slug plus 6 hex digits of its hash."""
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    slug = slugify(name)
    return f"{slug}-{digest}" if slug else f"d-{digest}"


def initiative_id_for(project_id: str) -> str:
    """The project id itself when it is a valid initiative id, else a safe id plus a short hash."""
    if ID_PATTERN.fullmatch(project_id):
        return project_id
    digest = hashlib.sha256(project_id.encode("utf-8")).hexdigest()[:6]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", unicodedata.normalize("NFKD", project_id)).strip("-")[:57]
    return f"{safe}-{digest}" if safe else f"p-{digest}"


def kopecks(amount: Amount, what: str) -> int:
    """Currency units × 100, exactly; an amount finer than a kopeck cannot be represented."""
    value = Fraction(amount) * KOPECKS_PER_UNIT
    if value.denominator != 1:
        raise PabulibImportError(f"{what} {amount} has more than two decimal places: not a whole number of kopecks")
    return int(value)


def whole_points(value: Amount, what: str, lowest: int = 1) -> int:
    if Fraction(value).denominator != 1 or not lowest <= value <= MAX_POINTS:
        raise PabulibImportError(f"{what}: points must be whole numbers from {lowest} to {MAX_POINTS}, got {value}")
    return int(value)


@dataclass(frozen=True, slots=True)
class ImportPlan:
    campaign: CampaignCreate
    initiatives: tuple[InitiativeSubmit, ...]
    ballots: tuple[PlannedBallot, ...]   # per voter with a ballot
    skipped_empty: int
    notes: tuple[str, ...]


def map_rule(pb: PbFile, notes: list[str]) -> tuple[str, int]:
    """The chain's rule for the file's, and its ``min_votes`` (greedy-threshold's score threshold)."""
    raw = pb.rule.strip().lower()
    if raw in RULE_NAMES:
        name = RULE_NAMES[raw]
    elif raw in APPROXIMATED_RULES:
        name, what = APPROXIMATED_RULES[raw]
        notes.append(f"rule {pb.rule!r} {what}; the official selection may differ")
    else:
        raise PabulibImportError(f"rule {pb.rule!r} is not supported; supported: "
                                 f"{', '.join(sorted(set(RULE_NAMES) | set(APPROXIMATED_RULES)))}")
    threshold = pb.get_meta_amount("min_project_score_threshold") or 0
    if raw == "greedy-threshold" and not threshold:
        notes.append("rule greedy-threshold without min_project_score_threshold: no threshold")
    if Fraction(threshold).denominator != 1:
        raise PabulibImportError(f"min_project_score_threshold {threshold} is not a whole number")
    return name, int(threshold)


def get_lengths(pb: PbFile) -> tuple[int, int]:
    """(min_choices, max_choices) admitting every ballot: the file's lengths, widened by its ballots."""
    lengths = [len(v.choices) for v in pb.votes if v.choices]
    longest, shortest = max(lengths, default=1), min(lengths, default=1)
    if longest > MAX_CHOICES:
        raise PabulibImportError(f"a ballot names {longest} projects; the chain allows at most {MAX_CHOICES}")
    low = max(1, min(pb.min_length or 1, shortest))
    high = min(MAX_CHOICES, max(pb.max_length or min(len(pb.projects), MAX_CHOICES), longest))
    return low, max(low, high)


def map_ballot(pb: PbFile, notes: list[str]) -> BallotSpec:
    vote_type = pb.vote_type
    if vote_type == "choose-1":
        if any(len(v.choices) > 1 for v in pb.votes):
            raise PabulibImportError("a choose-1 file has a ballot naming several projects")
        return BallotSpec("choose-1", 1, 1)
    low, high = get_lengths(pb)
    if vote_type == "approval":
        return map_approval(pb, low, high, notes)
    if vote_type == "cumulative":
        return map_cumulative(pb, low, high, notes)
    if vote_type == "ordinal":
        return map_ordinal(pb, low, high, notes)
    raise PabulibImportError(f"vote_type {pb.vote_type!r} is not supported "
                             "(choose-1, approval, cumulative, ordinal)")


def map_approval(pb: PbFile, low: int, high: int, notes: list[str]) -> BallotSpec:
    """Approval; with META ``max_sum_cost`` a knapsack ballot with that cap."""
    cap = pb.get_meta_amount("max_sum_cost")
    if not cap:
        return BallotSpec("approval", low, high)
    cap_kopecks = kopecks(cap, "META max_sum_cost")
    costs = {p.project_id: kopecks(p.cost, f"project {p.project_id} cost") for p in pb.projects}
    over = [sum(costs[c] for c in v.choices) for v in pb.votes if sum(costs[c] for c in v.choices) > cap_kopecks]
    if over:
        notes.append(f"{len(over)} ballots cost more than max_sum_cost {cap}; the cap is raised to "
                     f"{Fraction(max(over), KOPECKS_PER_UNIT)} so that every ballot counts")
        cap_kopecks = max(over)
    return BallotSpec("knapsack", low, high, max_sum_cost=cap_kopecks)


def map_cumulative(pb: PbFile, low: int, high: int, notes: list[str]) -> BallotSpec:
    totals = [sum(whole_points(p, f"voter {v.voter_id}") for p in v.points or ()) for v in pb.votes if v.choices]
    largest = max((whole_points(p, f"voter {v.voter_id}") for v in pb.votes for p in v.points or ()), default=1)
    maximum = pb.get_meta_amount("max_sum_points")
    minimum = pb.get_meta_amount("min_sum_points") or 0
    per = pb.get_meta_amount("max_points") or 0
    if maximum is None:
        maximum = max(totals, default=1)
        notes.append(f"META has no max_sum_points: the largest ballot's {maximum} points is the limit")
    if totals and max(totals) > maximum:
        notes.append(f"ballots give up to {max(totals)} points, more than max_sum_points {maximum}; "
                     "the limit is raised to admit them")
        maximum = max(totals)
    if totals and min(totals) < minimum:
        notes.append(f"ballots give as few as {min(totals)} points, fewer than min_sum_points {minimum}; "
                     "the limit is lowered to admit them")
        minimum = min(totals)
    if per and largest > per:
        notes.append(f"a ballot gives one project {largest} points, more than max_points {per}; raised")
        per = largest
    maximum = whole_points(maximum, "META max_sum_points")
    minimum = whole_points(minimum, "META min_sum_points", lowest=0)
    per = whole_points(per, "META max_points", lowest=0)
    return BallotSpec("cumulative", low, high, min_sum_points=minimum, max_sum_points=maximum,
                      max_points=0 if per >= maximum else per)


def map_ordinal(pb: PbFile, low: int, high: int, notes: list[str]) -> BallotSpec:
    """Rank i is worth the points every ballot gives it (``points`` column), else max_length − i."""
    stated = pb.max_length
    top = pb.get_rank_length()
    if stated is not None and top > stated:
        notes.append(f"a ballot ranks {top} projects, more than max_length {stated}: ranks are worth "
                     f"{top} … 1 points")
    if stated is None:
        notes.append(f"META has no max_length: rank 1 is worth {top} points (the longest ballot)")
    high = min(MAX_CHOICES, top)
    by_rank: list[set[int]] = [set() for _ in range(high)]
    for vote in pb.votes:
        for rank, points in enumerate(vote.points or ()):
            by_rank[rank].add(whole_points(points, f"voter {vote.voter_id}"))
    ranks: list[int] = []
    for rank, seen in enumerate(by_rank):
        if len(seen) > 1:
            raise PabulibImportError(f"ordinal ballots give rank {rank + 1} different points ({sorted(seen)}); "
                                     "a campaign fixes one value per rank")
        default = max(1, top - rank)
        value = seen.pop() if seen else min(default, ranks[-1]) if ranks else default
        ranks.append(value)
    if any(later > earlier for earlier, later in zip(ranks, ranks[1:])):
        raise PabulibImportError(f"ordinal rank points {ranks} increase from one rank to the next")
    return BallotSpec("ordinal", low, high, rank_points=tuple(ranks))


def map_districts(pb: PbFile, notes: list[str], initiative_of: dict[str, str]) -> tuple[list[District], dict[str, str]]:
    """Districts of the campaign and each initiative's district id."""
    budget = kopecks(pb.budget, "META budget")
    names = [p.district for p in pb.projects if p.district is not None]
    if names and len(names) != len(pb.projects):
        raise PabulibImportError("some PROJECTS rows have a district and others do not")
    if names:
        by_project = {initiative_of[p.project_id]: district_id_for(p.district or "") for p in pb.projects}
        spanning = sum(1 for v in pb.votes if len({by_project[initiative_of[c]] for c in v.choices}) > 1)
        if not spanning:
            unique = list(dict.fromkeys(names))
            return ([District(district_id_for(n), n[:200], 0) for n in unique], by_project)
        notes.append(f"{spanning} ballots approve projects of several districts; a ballot is cast in one "
                     "district, so the file is imported as one district (project districts are in the summaries)")
    name = pb.meta_get("district") or pb.meta_get("unit") or pb.meta_get("description") or "all"
    single = District(district_id_for(name), name[:200], budget)
    return [single], {initiative_of[p.project_id]: single.district_id for p in pb.projects}


def map_initiative_ids(pb: PbFile, notes: list[str]) -> dict[str, str]:
    initiative_of = {p.project_id: initiative_id_for(p.project_id) for p in pb.projects}
    if len(set(initiative_of.values())) != len(initiative_of):
        raise PabulibImportError("two project ids map to the same initiative id")
    renamed = [(pid, iid) for pid, iid in initiative_of.items() if pid != iid]
    if renamed:
        pid, iid = renamed[0]
        notes.append(f"{len(renamed)} project ids are not valid initiative ids ([A-Za-z0-9._-]{{1,64}}) and were "
                     f"renamed, e.g. {pid!r} → {iid!r}; the original id is in each initiative's summary")
    return initiative_of


def plan_ballot(pb: PbFile, vote: PbVote, ballot: BallotSpec, initiative_of: dict[str, str],
                district_of: dict[str, str]) -> PlannedBallot:
    choices = tuple(initiative_of[c] for c in vote.choices)
    district = district_of[choices[0]]
    if ballot.type == "cumulative":
        return district, choices, tuple(whole_points(p, f"voter {vote.voter_id}") for p in vote.points or ())
    if ballot.type == "ordinal":
        return district, choices, ballot.rank_points[:len(choices)]
    return district, choices, None


def plan_import(pb: PbFile, *, campaign_id: str, gateway: bytes, now_ms: int,
                setup_ms: int = int(SETUP_SECONDS * 1000)) -> ImportPlan:
    """The campaign, initiatives and ballots a pabulib file becomes (pure; no keys, no network)."""
    notes: list[str] = [f"the file: {note}" for note in pb.notes]
    rule, min_votes = map_rule(pb, notes)
    ballot = map_ballot(pb, notes)
    initiative_of = map_initiative_ids(pb, notes)
    districts, district_of = map_districts(pb, notes, initiative_of)
    budget = kopecks(pb.budget, "META budget")
    if budget <= 0:
        raise PabulibImportError("META budget must be positive")
    voting_start = now_ms + setup_ms
    title = (pb.meta_get("description") or campaign_id)[:200].strip() or campaign_id
    try:
        campaign = CampaignCreate(
            campaign_id, title, "adult", tuple(districts), ballot, RuleSpec(rule, "campaign", 0, min_votes, budget),
            1, 2**62, (), max(0, now_ms - 60_000), voting_start, voting_start,
            voting_start + VOTING_DAYS * 86_400_000, gateway, max(1, len(pb.votes)), "campaign")
        campaign = CampaignCreate.from_wire(campaign.to_wire(), "campaign")
    except DecodeError as exc:
        raise PabulibImportError(f"the file does not make a valid campaign: {exc.message}") from exc
    names = {d.district_id: d.name for d in districts}
    initiatives = tuple(
        InitiativeSubmit(campaign_id, initiative_of[p.project_id], district_of[initiative_of[p.project_id]],
                         (p.name.strip() or f"Project {p.project_id}")[:300],
                         (p.category.strip() or "other")[:64].strip() or "other",
                         kopecks(p.cost, f"project {p.project_id} cost"),
                         project_summary(p, names[district_of[initiative_of[p.project_id]]]), b"")
        for p in pb.projects)
    ballots = tuple(plan_ballot(pb, v, ballot, initiative_of, district_of) for v in pb.votes if v.choices)
    return ImportPlan(campaign, initiatives, ballots, len(pb.votes) - len(ballots), tuple(notes))


def project_summary(project: PbProject, district_name: str) -> str:
    where = project.district or district_name
    return f"pabulib project {project.project_id} ({where})"[:4000]
