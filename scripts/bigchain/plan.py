"""The plan of ten program-years: which campaigns, when, with which ballots and initiatives (pure).

A plan is a function of three numbers kept in ``DIR/bigchain.json``: the ballot total, the seed and
the anchor time (when the chain directory was made). Everything else — campaign ids, schedules,
districts, initiatives, ballot shapes, how many ballots each campaign gets — follows from them, so a
build that stops can be resumed: the builder compares the plan with the chain's state.

The programme (Volgograd oblast's 38 districts, genesis/data/volgograd.json):
  * year 1 is the demo genesis: ``ib-2027`` (adult, choose-1 per district, top-5 with ≥ 500 votes)
    and ``ib-deti-2027`` (children, approval of 1–3, greedy); the youth and school campaigns of
    year 1 are created by transactions;
  * each later year has four campaigns, created by the committee 45 days before voting opens, their
    initiatives submitted (and so approved) by the committee, voting open for 30 days:
      ``ib-YYYY``        adult, choose-1 top-n (years 1–6), approval 1–3 with equal shares (7–9),
                         approval 1–3 greedy (10);
      ``ib-deti-YYYY``   children, approval 1–3, greedy, one ballot per campaign;
      ``ib-molod-YYYY``  youth (adult track), knapsack within the district budget, greedy-no-skip;
      ``ib-shkola-YYYY`` school (children's track), cumulative: 1–3 initiatives, 1–10 points, ≤ 5 each;
  * year 5 has an extra round ``ib-2031-dop`` that the committee closes by a ``campaign.close``;
  * the last year's adult campaign stays open when the build ends (its window runs past "now"), so
    the measurements can close it, or vote in it, on a copy.

Ballots per year grow like the real programme (112,600 → 207,300 → … ≈ 718,000 in year 5) and are
scaled so that the whole chain holds ``total`` ballots; a year's ballots split 62 / 25 / 8 / 5 % over
adult / children / youth / school.

Times: the chain must not run ahead of the wall clock (validators refuse a block timed in their
future), so the genesis is placed nine years and twenty days before the anchor and the last year's
voting opens twenty days before it. Labels (``2027`` …) are programme years, not block-time years.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from genesis import demo

DAY_MS = 24 * 60 * 60 * 1000
YEAR_MS = 365 * DAY_MS
YEARS = 10
FIRST_LABEL = 2027
# Ballots per programme year at 10 M in all (the first two are the real programme's).
YEAR_BALLOTS_10M = (112_600, 207_300, 380_000, 560_000, 718_000, 900_000, 1_150_000, 1_450_000, 1_900_000,
                    2_622_100)
SHARES = {"adult": 0.62, "children": 0.25, "youth": 0.08, "school": 0.05}
EXTRA_SHARE = 0.03           # of year 5's adult ballots go to the extra round
EXTRA_YEAR = 4
ES_YEARS = (6, 7, 8)         # adult campaigns decided by the Method of Equal Shares
REGISTRATION_CAP = 5_000_000
GATEWAY = demo.DEMO_GATEWAY
BLOCK_MIN, BLOCK_MAX = 10, 1000   # ballots per block: log-uniform (mean ≈ 215)


@dataclass(frozen=True, slots=True)
class InitiativePlan:
    initiative_id: str
    district_id: str
    title: str
    category: str
    cost: int
    summary: str


@dataclass(frozen=True, slots=True)
class BallotShape:
    """What a worker needs to fill ballots of one campaign (small and picklable)."""

    campaign_id: str
    type: str
    min_choices: int
    max_choices: int
    per_campaign: bool
    districts: tuple[tuple[str, float, tuple[str, ...], tuple[float, ...], tuple[int, ...]], ...]
    # (district_id, weight, initiative ids, their popularity, their costs)
    max_sum_cost: int = 0
    budgets: tuple[int, ...] = ()       # per district (knapsack caps)
    max_sum_points: int = 0
    max_points: int = 0


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    campaign_id: str
    year: int
    kind: str
    json: dict[str, Any]                # the campaign as genesis/campaign JSON (genesis.campaign_json)
    initiatives: tuple[InitiativePlan, ...]
    ballots: int
    genesis: bool = False
    close_by_committee: bool = False

    @property
    def voting_start(self) -> int:
        return int(self.json["voting_start"])

    @property
    def voting_end(self) -> int:
        return int(self.json["voting_end"])

    @property
    def submission_start(self) -> int:
        return int(self.json["submission_start"])


@dataclass(frozen=True, slots=True)
class YearPlan:
    year: int
    label: int
    campaigns: tuple[CampaignPlan, ...]
    create_time: int          # block time of the year's campaign.create block (0: genesis year)
    ballots_from: int         # block time of the first ballot block
    ballots_until: int        # last ballot block time (exclusive)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ballots(self) -> int:
        return sum(c.ballots for c in self.campaigns)


def year_totals(total: int) -> list[int]:
    """Ballots per year summing exactly to ``total``, shaped like ``YEAR_BALLOTS_10M``."""
    whole = sum(YEAR_BALLOTS_10M)
    shares = [round(total * n / whole) for n in YEAR_BALLOTS_10M]
    shares[-1] += total - sum(shares)
    return shares


def split(total: int, weights: dict[str, float]) -> dict[str, int]:
    names = list(weights)
    scale = sum(weights.values())
    counts = {name: int(total * weights[name] / scale) for name in names}
    counts[names[0]] += total - sum(counts.values())
    return counts


def genesis_time(anchor_ms: int) -> int:
    return anchor_ms - (YEARS - 1) * YEAR_MS - 20 * DAY_MS


def _templates(track: str) -> tuple[demo.Template, ...]:
    return demo.load_templates(track)


def make_initiatives(campaign_id: str, track: str, counts: dict[str, int], rng: random.Random,
                     cost_range: tuple[int, int]) -> tuple[InitiativePlan, ...]:
    """``counts[district]`` initiatives per district, titles from the demo templates."""
    templates = _templates(track)
    districts = {d.district_id: d for d in demo.load_demo_districts()}
    out: list[InitiativePlan] = []
    low, high = cost_range
    for district_id, count in counts.items():
        district = districts[district_id]
        usable = [t for t in templates if t.settlement == "any" or district.kind == "municipal_district"]
        order = rng.sample(usable, len(usable))
        for number in range(1, count + 1):
            template = order[(number - 1) % len(order)]
            where = district.places[(number - 1) % len(district.places)]
            title = template.title.format(where=where)
            if number > len(order):
                title += f" ({(number - 1) // len(order) + 1})"
            lo = max(low, template.min_rub * demo.KOPECKS_PER_RUBLE)
            hi = min(high, template.max_rub * demo.KOPECKS_PER_RUBLE)
            if hi < lo:
                lo, hi = low, high
            step = demo.COST_STEP_RUB * demo.KOPECKS_PER_RUBLE
            cost = lo + rng.randrange(0, max(1, (hi - lo) // step + 1)) * step
            out.append(InitiativePlan(f"{district_id}-{number:02d}", district_id, title[:300], template.category,
                                      cost, template.summary))
    return tuple(out)


def _districts(budget_of: str) -> list[dict[str, Any]]:
    return [{"district_id": d.district_id, "name": d.name, "budget": getattr(d, budget_of)}
            for d in demo.load_demo_districts()]


def _campaign_json(campaign_id: str, title: str, track: str, budget_of: str, ballot: dict[str, Any],
                   rule: dict[str, Any], cost_range: tuple[int, int], schedule: dict[str, int],
                   per_campaign: bool) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id, "title": title, "track": track, "districts": _districts(budget_of),
        "ballot": ballot, "rule": rule, "min_cost": cost_range[0], "max_cost": cost_range[1],
        "categories": list(demo.DEMO_CATEGORIES), **schedule, "gateway": GATEWAY,
        "registration_cap": REGISTRATION_CAP, "ballots_per_voter": "campaign" if per_campaign else "district",
    }


ADULT_COSTS = (demo.ADULT_MIN_COST_RUB * demo.KOPECKS_PER_RUBLE, demo.ADULT_MAX_COST_RUB * demo.KOPECKS_PER_RUBLE)
CHILD_COSTS = (demo.CHILDREN_MIN_COST_RUB * demo.KOPECKS_PER_RUBLE,
               demo.CHILDREN_MAX_COST_RUB * demo.KOPECKS_PER_RUBLE)


def make_plan(total: int, seed: int, anchor_ms: int) -> list[YearPlan]:
    start = genesis_time(anchor_ms)
    totals = year_totals(total)
    districts = demo.load_demo_districts()
    years: list[YearPlan] = []
    for year in range(YEARS):
        label = FIRST_LABEL + year
        rng = random.Random(f"bigchain/{seed}/{year}")
        base = start + year * YEAR_MS
        last = year == YEARS - 1
        if year == 0:
            schedule = {"submission_start": start, "submission_end": start + DAY_MS,
                        "voting_start": start + DAY_MS, "voting_end": start + demo.VOTING_DAYS * DAY_MS}
            create_time = start + 1000
        else:
            schedule = {"submission_start": base - 45 * DAY_MS, "submission_end": base - 10 * DAY_MS,
                        "voting_start": base, "voting_end": base + demo.VOTING_DAYS * DAY_MS}
            create_time = base - 45 * DAY_MS + 3_600_000
        short = dict(schedule, voting_end=base + 12 * DAY_MS) if last else schedule
        counts = split(totals[year], SHARES)
        grow_adult = 1 + year // 3
        grow_child = 1 + year // 4
        campaigns: list[CampaignPlan] = []
        adult_id, child_id = f"ib-{label}", f"ib-deti-{label}"
        if year == 0:
            genesis_campaigns = {c["campaign_id"]: c for c in demo.demo_campaigns(start, GATEWAY)}
            by_campaign: dict[str, list[InitiativePlan]] = {}
            for item in demo.demo_initiatives():
                by_campaign.setdefault(item["campaign_id"], []).append(InitiativePlan(
                    item["initiative_id"], item["district_id"], item["title"], item["category"], item["cost"],
                    item["summary"]))
            campaigns.append(CampaignPlan(demo.ADULT_CAMPAIGN_ID, year, "adult",
                                          genesis_campaigns[demo.ADULT_CAMPAIGN_ID],
                                          tuple(by_campaign[demo.ADULT_CAMPAIGN_ID]), counts["adult"], genesis=True))
            campaigns.append(CampaignPlan(demo.CHILDREN_CAMPAIGN_ID, year, "children",
                                          genesis_campaigns[demo.CHILDREN_CAMPAIGN_ID],
                                          tuple(by_campaign[demo.CHILDREN_CAMPAIGN_ID]), counts["children"],
                                          genesis=True))
        else:
            if year in ES_YEARS:
                ballot = {"type": "approval", "min_choices": 1, "max_choices": 3}
                rule = {"name": "equal-shares", "scope": "district", "top_n": 0, "min_votes": 0, "budget": 0}
            elif last:
                ballot = {"type": "approval", "min_choices": 1, "max_choices": 3}
                rule = {"name": "greedy", "scope": "district", "top_n": 0, "min_votes": demo.ADULT_MIN_VOTES,
                        "budget": 0}
            else:
                ballot = {"type": "choose-1", "min_choices": 1, "max_choices": 1}
                rule = {"name": "top-n", "scope": "district", "top_n": demo.ADULT_TOP_N,
                        "min_votes": demo.ADULT_MIN_VOTES, "budget": 0}
            adult_schedule = dict(schedule, voting_end=anchor_ms + 60 * DAY_MS) if last else schedule
            adult_json = _campaign_json(adult_id, f"Инициативное бюджетирование {label}", "adult", "adult_budget",
                                        ballot, rule, ADULT_COSTS, adult_schedule, per_campaign=False)
            adult_counts = {d.district_id: d.adult_initiatives * grow_adult for d in districts}
            campaigns.append(CampaignPlan(adult_id, year, "adult", adult_json,
                                          make_initiatives(adult_id, "adult", adult_counts, rng, ADULT_COSTS),
                                          counts["adult"]))
            child_json = _campaign_json(
                child_id, f"Детское инициативное бюджетирование {label}", "children", "children_budget",
                {"type": "approval", "min_choices": 1, "max_choices": 3},
                {"name": "greedy", "scope": "district", "top_n": 0, "min_votes": demo.CHILDREN_MIN_VOTES,
                 "budget": 0}, CHILD_COSTS, short, per_campaign=True)
            child_counts = {d.district_id: d.children_initiatives * grow_child for d in districts}
            campaigns.append(CampaignPlan(child_id, year, "children", child_json,
                                          make_initiatives(child_id, "children", child_counts, rng, CHILD_COSTS),
                                          counts["children"]))
        youth_id, school_id = f"ib-molod-{label}", f"ib-shkola-{label}"
        youth_json = _campaign_json(
            youth_id, f"Молодёжное инициативное бюджетирование {label}", "adult", "children_budget",
            {"type": "knapsack", "min_choices": 1, "max_choices": 4, "max_sum_cost": 0},
            {"name": "greedy-no-skip", "scope": "district", "top_n": 0, "min_votes": 0, "budget": 0},
            CHILD_COSTS, short, per_campaign=True)
        youth_counts = {d.district_id: max(2, d.children_initiatives * grow_child) for d in districts}
        campaigns.append(CampaignPlan(youth_id, year, "youth", youth_json,
                                      make_initiatives(youth_id, "children", youth_counts, rng, CHILD_COSTS),
                                      counts["youth"]))
        school_json = _campaign_json(
            school_id, f"Школьное инициативное бюджетирование {label}", "children", "children_budget",
            {"type": "cumulative", "min_choices": 1, "max_choices": 3, "min_sum_points": 1, "max_sum_points": 10,
             "max_points": 5},
            {"name": "top-n", "scope": "district", "top_n": 2, "min_votes": 0, "budget": 0},
            CHILD_COSTS, short, per_campaign=True)
        school_counts = {d.district_id: max(2, d.children_initiatives) for d in districts}
        campaigns.append(CampaignPlan(school_id, year, "school", school_json,
                                      make_initiatives(school_id, "children", school_counts, rng, CHILD_COSTS),
                                      counts["school"]))
        if year == EXTRA_YEAR:
            extra_id = f"ib-{label}-dop"
            moved = int(campaigns[0].ballots * EXTRA_SHARE)
            campaigns[0] = CampaignPlan(campaigns[0].campaign_id, year, "adult", campaigns[0].json,
                                        campaigns[0].initiatives, campaigns[0].ballots - moved)
            extra_json = _campaign_json(
                extra_id, f"Инициативное бюджетирование {label}: дополнительный отбор", "adult", "adult_budget",
                {"type": "choose-1", "min_choices": 1, "max_choices": 1},
                {"name": "top-n", "scope": "district", "top_n": 1, "min_votes": 0, "budget": 0},
                ADULT_COSTS, schedule, per_campaign=False)
            extra_counts = {d.district_id: 2 for d in districts}
            campaigns.append(CampaignPlan(extra_id, year, "extra", extra_json,
                                          make_initiatives(extra_id, "adult", extra_counts, rng, ADULT_COSTS),
                                          moved, close_by_committee=True))
        voting_start = max(c.voting_start for c in campaigns)
        until = min(c.voting_end for c in campaigns) - 3_600_000
        years.append(YearPlan(year, label, tuple(campaigns), 0 if year == 0 else create_time, voting_start, until))
    return years


def ballot_shape(plan: CampaignPlan, seed: int) -> BallotShape:
    """Popularity of districts (by budget, a stand-in for population) and of initiatives (Zipf-like)."""
    rng = random.Random(f"bigchain/{seed}/shape/{plan.campaign_id}")
    ballot = plan.json["ballot"]
    by_district: dict[str, list[InitiativePlan]] = {}
    for initiative in plan.initiatives:
        by_district.setdefault(initiative.district_id, []).append(initiative)
    budgets = {d["district_id"]: int(d["budget"]) for d in plan.json["districts"]}
    rows = []
    for district_id, items in sorted(by_district.items()):
        popularity = [1.0 / math.pow(rank + 1, 1.1) for rank in range(len(items))]
        rng.shuffle(popularity)
        rows.append((district_id, float(budgets[district_id]), tuple(i.initiative_id for i in items),
                     tuple(popularity), tuple(i.cost for i in items)))
    return BallotShape(
        plan.campaign_id, ballot["type"], int(ballot["min_choices"]), int(ballot["max_choices"]),
        plan.json["ballots_per_voter"] == "campaign", tuple(rows),
        max_sum_cost=int(ballot.get("max_sum_cost", 0)),
        budgets=tuple(budgets[row[0]] for row in rows),
        max_sum_points=int(ballot.get("max_sum_points", 0)), max_points=int(ballot.get("max_points", 0)))


def block_sizes(rng: random.Random) -> int:
    """Ballots in the next block: log-uniform between BLOCK_MIN and BLOCK_MAX."""
    return int(math.exp(rng.uniform(math.log(BLOCK_MIN), math.log(BLOCK_MAX + 1))))
