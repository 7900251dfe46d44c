"""Sentences built from a campaign's rules, in the citizen's language, with correct plural forms.

Each function takes the request's language and returns finished text: the ballot's instructions,
the winner rule in plain words (threshold, places, budget), and why a project or a district did not
win. Message ids are English (``N_``/``ngettext`` calls are extracted by Babel, see gateway/i18n.py).
"""

from __future__ import annotations

from gateway.chainview import CampaignView
from gateway.i18n import N_, format_money, translate, translate_plural
from gateway.outcomes import (
    BELOW_THRESHOLD, NO_BUDGET_LEFT, NO_PROJECTS, NO_VOTES, NOT_CHOSEN, PLACES_TAKEN, WON, DistrictOutcome,
)


def ngettext(singular: str, plural: str, count: int) -> tuple[str, str, int]:
    """Mark a plural message for extraction (the translation happens in ``_plural``)."""
    return singular, plural, count


def _plural(lang: str, message: tuple[str, str, int], **params: object) -> str:
    singular, plural, count = message
    return translate_plural(lang, singular, plural, count, **params)


def ballot_summary(lang: str, campaign: CampaignView) -> str:
    """What one citizen may do, for the campaign's card: "1 project in each district"."""
    if campaign.ballot_type == "cumulative":
        what = _plural(lang, ngettext("%(points)s points over up to %(num)d project",
                                      "%(points)s points over up to %(num)d projects", campaign.max_choices),
                       points=campaign.max_sum_points)
    elif campaign.ballot_type == "ordinal":
        what = _plural(lang, ngettext("a ranking of up to %(num)d project", "a ranking of up to %(num)d projects",
                                      campaign.max_choices))
    elif campaign.ballot_type == "choose-1":
        what = translate(lang, N_("one project"))
    elif campaign.min_choices == campaign.max_choices:
        what = _plural(lang, ngettext("%(num)d project", "%(num)d projects", campaign.max_choices))
    else:
        what = _plural(lang, ngettext("%(min)d to %(num)d project", "%(min)d to %(num)d projects",
                                      campaign.max_choices), min=campaign.min_choices)
    if campaign.ballots_per_voter == "district":
        return translate(lang, N_("%(what)s in each district"), what=what)
    return translate(lang, N_("%(what)s, in one district"), what=what)


def ballot_instruction(lang: str, campaign: CampaignView, on_ballot: int, district_budget: int = 0) -> str:
    """The ballot's legend: what to tick (or how to give points, or to rank)."""
    if campaign.ballot_type == "cumulative":
        return _plural(lang, ngettext(
            "Give points to up to %(num)d project: %(min)s to %(max)s in total, at most %(per)s to one project. "
            "An empty field is 0.",
            "Give points to up to %(num)d projects: %(min)s to %(max)s in total, at most %(per)s to one project. "
            "An empty field is 0.", min(campaign.max_choices, on_ballot)),
            min=max(1, campaign.min_sum_points), max=campaign.max_sum_points,
            per=campaign.max_points or campaign.max_sum_points)
    if campaign.ballot_type == "ordinal":
        return _plural(lang, ngettext(
            "Rank from %(min)d to %(num)d project: first the one you want most. Fill the ranks in order.",
            "Rank from %(min)d to %(num)d projects: first the one you want most. Fill the ranks in order.",
            campaign.max_choices), min=campaign.min_choices)
    if campaign.ballot_type == "knapsack":
        most = min(campaign.max_choices, on_ballot)
        return _plural(lang, ngettext(
            "Tick from %(min)d to %(num)d project that cost %(cap)s at most in total.",
            "Tick from %(min)d to %(num)d projects that cost %(cap)s at most in total.", most),
            min=min(campaign.min_choices, most), cap=format_money(campaign.cost_cap(district_budget), lang))
    if on_ballot == 1:
        return translate(lang, N_("There is one project on this ballot. Tick it to support it."))
    if campaign.ballot_type == "choose-1":
        return translate(lang, N_("Choose one project."))
    most = min(campaign.max_choices, on_ballot)
    if campaign.min_choices >= most:
        return _plural(lang, ngettext("Tick %(num)d project.", "Tick %(num)d projects.", most))
    return _plural(lang, ngettext("Tick from %(min)d to %(num)d project.", "Tick from %(min)d to %(num)d projects.",
                                  most), min=campaign.min_choices)


def ballots_rule(lang: str, campaign: CampaignView) -> str:
    """That each district is a separate vote (or that a citizen has one ballot in the campaign)."""
    if campaign.ballots_per_voter == "district":
        return translate(lang, N_("Each district is a separate vote: with one phone number you may vote once in "
                                  "every district."))
    return translate(lang, N_("You have one ballot in this campaign: you may vote in one district only."))


def winner_rule(lang: str, campaign: CampaignView) -> list[str]:
    """The counting rule in plain words, one sentence a line: who wins, the threshold, the budget."""
    district_scope = campaign.scope == "district"
    lines = []
    if campaign.rule == "top-n":
        if campaign.top_n == 1:
            lines.append(translate(lang, N_("The project with the most votes wins.")))
        elif campaign.top_n:
            lines.append(_plural(lang, ngettext(
                "Up to %(num)d project with the most votes wins.",
                "Up to %(num)d projects with the most votes win.", campaign.top_n)))
        else:
            lines.append(translate(lang, N_("The projects with the most votes win.")))
    elif campaign.rule == "greedy":
        lines.append(translate(lang, N_("Projects are funded in order of votes, most votes first, while the money "
                                        "lasts; a project that does not fit in what is left is skipped and the "
                                        "next one is tried.")))
    elif campaign.rule == "greedy-no-skip":
        lines.append(translate(lang, N_("Projects are funded in order of votes, most votes first; funding stops "
                                        "at the first project that does not fit in what is left.")))
    elif campaign.rule == "equal-shares":
        lines.append(translate(lang, N_("The budget is split equally among the voters (the method of equal "
                                        "shares): a project is funded when its supporters' shares cover its "
                                        "cost.")))
    if campaign.min_votes:
        lines.append(_plural(lang, ngettext("A project needs at least %(num)d vote.",
                                            "A project needs at least %(num)d votes.", campaign.min_votes)))
    if district_scope:
        if campaign.rule != "top-n" or any(d.budget for d in campaign.districts):
            lines.append(translate(lang, N_("Each district counts separately, within its own budget.")))
        else:
            lines.append(translate(lang, N_("Each district counts separately.")))
    elif campaign.rule_budget:
        lines.append(translate(lang, N_("One budget for the whole campaign: %(amount)s."),
                               amount=format_money(campaign.rule_budget, lang)))
    lines.append(translate(lang, N_("With equal votes the cheaper project comes first.")))
    return lines


def why_text(lang: str, campaign: CampaignView, why: str) -> str:
    """Why one project won or not, for the ranking's last column."""
    if why == WON:
        return translate(lang, N_("winner"))
    if why == BELOW_THRESHOLD:
        return _plural(lang, ngettext("fewer than %(num)d vote", "fewer than %(num)d votes", campaign.min_votes))
    if why == PLACES_TAKEN:
        if campaign.top_n == 1:
            return translate(lang, N_("the only winner's place was taken"))
        return _plural(lang, ngettext("all %(num)d winner's place was taken", "all %(num)d winners' places were taken",
                                      campaign.top_n))
    if why == NO_BUDGET_LEFT:
        return translate(lang, N_("not enough money left in the budget"))
    return translate(lang, N_("not chosen by the rule"))


def no_winner_text(lang: str, campaign: CampaignView, outcome: DistrictOutcome) -> str:
    """Why a district has no winner, in one sentence."""
    why = outcome.no_winner_why
    if why == NO_PROJECTS:
        return translate(lang, N_("No projects were on the ballot."))
    if why == NO_VOTES:
        return translate(lang, N_("Nobody voted in this district."))
    if why == BELOW_THRESHOLD:
        return _plural(lang, ngettext("No project reached %(num)d vote (the most: %(top)s).",
                                      "No project reached %(num)d votes (the most: %(top)s).", campaign.min_votes),
                       top=outcome.top_votes)
    if why == NO_BUDGET_LEFT:
        return translate(lang, N_("No project fitted in the budget."))
    if why == NOT_CHOSEN:
        return translate(lang, N_("The rule chose no project."))
    return ""


def points_line(lang: str, title: str, points: int) -> str:
    """A scored ballot's choice on the receipt: "Сквер: 6 баллов"."""
    return _plural(lang, ngettext("%(title)s: %(num)d point", "%(title)s: %(num)d points", points), title=title)


def points_text(lang: str, points: int) -> str:
    return _plural(lang, ngettext("%(num)d point", "%(num)d points", points))


def votes_text(lang: str, votes: int) -> str:
    return _plural(lang, ngettext("%(num)d vote", "%(num)d votes", votes))


def winners_text(lang: str, winners: int) -> str:
    return _plural(lang, ngettext("%(num)d winner", "%(num)d winners", winners))
