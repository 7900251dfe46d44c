"""The gateway's texts: gettext catalogues (Babel) for Russian, English as the source language.

Every text a citizen reads is an English message id marked for extraction — ``_("…")``,
``ngettext("…", "…", n)`` in templates, ``N_("…")`` in the tables below — with ``%(name)s``
placeholders. ``gateway/locale/<lang>/LC_MESSAGES/messages.po`` holds a language's translations
(Russian, with its three plural forms); the compiled ``messages.mo`` next to it is committed, and a
test checks that it is exactly what the ``.po`` compiles to and that every extracted message is
translated. docs/GATEWAY.md "Texts and languages" gives the commands (extract, update, compile) and
how to add a language. Templates get ``_`` and ``ngettext`` bound to the request's language;
``Refusal`` messages are keys of ``ERROR_TEXTS``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from genesis.texts import DOMAIN as DOMAIN
from genesis.texts import N_ as N_
from genesis.texts import Catalogues
from genesis.texts import format_money as format_money

LOCALE_DIR = Path(__file__).parent / "locale"
SOURCE_LANG = "en"
LANGS = ("ru", "en")
TEXTS = Catalogues(LOCALE_DIR, LANGS, SOURCE_LANG)
catalogue = TEXTS.catalogue
translate = TEXTS.translate
translate_plural = TEXTS.translate_plural
named = TEXTS.named
format_size = TEXTS.format_size


def error_text(lang: str, key: str, **params: object) -> str:
    """A ``Refusal``'s message (a key of ``ERROR_TEXTS``) in ``lang``."""
    return translate(lang, ERROR_TEXTS[key], **params)


ERROR_TEXTS: dict[str, str] = {  # a Refusal's message key → its text
    "err_csrf": N_("This form expired or belongs to another window. Reload the page and try again."),
    "err_form_stale": N_("This form is too old. Reload the page."),
    "err_too_fast": N_("The form was sent too quickly. Wait a second and send it again."),
    "err_honeypot": N_("This request looks automated and was refused."),
    "err_rate_limited": N_("Too many requests. Please try later."),
    "err_overloaded": N_("The site is overloaded. Please try again in a few seconds."),
    "err_storage": N_("The ballot could not be stored. Try again."),
    "err_no_session": N_("Your session expired or cookies are off. Open the login page again."),
    "err_login_first": N_("Please log in with your phone or a card first."),
    "err_phone_empty": N_("Enter your phone number."),
    "err_phone_malformed": N_("We could not read this number. Enter a Russian mobile number such as +7 912 345-67-89."),
    "err_phone_prefix": N_("Only Russian mobile numbers (+7 9…) are accepted."),
    "err_resend_wait": N_("A code was just sent. You can ask for a new one in %(seconds)s s."),
    "err_daily_cap": N_("Too many codes were sent to this number today. Try again tomorrow."),
    "err_sms_failed": N_("The SMS could not be sent. Please try later."),
    "err_no_code": N_("Ask for a code first."),
    "err_code_expired": N_("The code has expired. Ask for a new one."),
    "err_code_format": N_("The code is the 6 digits from the SMS."),
    "err_code_wrong": N_("Wrong code. Tries left: %(left)s."),
    "err_locked_out": N_("Too many wrong codes. Try again in %(minutes)s min."),
    "err_card_format": N_("A card code is 12 letters and digits, such as ABCD-EFGH-JKLM."),
    "err_card_unknown": N_("There is no such card."),
    "err_card_paused": N_("Card entry is paused for now: too many wrong card codes were entered. Try later, or sign "
                          "in by phone."),
    "err_code_burned": N_("Too many wrong tries: this code no longer works. Ask for a new one."),
    "err_form_used": N_("This form was already sent. Reload the page."),
    "err_card_used": N_("This card has already been used to vote."),
    "err_card_campaign": N_("This card is for another campaign."),
    "err_unknown_campaign": N_("There is no such campaign."),
    "err_unknown_district": N_("This campaign has no such district."),
    "err_unknown_initiative": N_("There is no such project."),
    "err_no_document": N_("No node of the network serves this document (yet)."),
    "err_not_voting": N_("Voting is not open in this campaign now."),
    "err_other_gateway": N_("This campaign votes through another site."),
    "err_no_choice": N_("Choose a project."),
    "err_choice_count": N_("Choose between %(min)s and %(max)s projects."),
    "err_bad_choice": N_("Project “%(choice)s” is not on this district's ballot."),
    "err_already_voted": N_("You have already voted here. A second ballot is not accepted."),
    # a ballot over its campaign's limits (knapsack, cumulative, ordinal): gateway/ballot_forms.py
    "err_over_cap": N_("The projects you chose cost %(total)s, more than the limit of %(cap)s. Untick one of them."),
    "err_points_number": N_("The points for “%(title)s” must be a whole number, 0 or more."),
    "err_points_max": N_("You can give “%(title)s” at most %(max)s points."),
    "err_points_total": N_("You gave %(total)s points; give between %(min)s and %(max)s."),
    "err_rank_gap": N_("Rank %(rank)s is filled but a rank above it is empty. Fill the ranks in order, from the first."),
    "err_rank_twice": N_("“%(title)s” is on two ranks."),
    "err_token_issued": N_("Your own key for this campaign is already certified. Vote from the device and tab where "
                           "it was made."),
    "err_gateway_key_exists": N_("You have already voted here without JavaScript: the site holds your key for this "
                                 "campaign, vote the same way."),
    "err_bad_token_request": N_("A malformed key certification request."),
    "err_tokens_refused": N_("The network refused to count the key certification (the campaign's cap is used up or "
                             "it closed)."),
    "err_no_voter_held": N_("This campaign takes no ballots of voters' own keys."),
    "err_bad_form": N_("The form is malformed: %(detail)s."),
    "err_too_large": N_("The request is too large."),
    "err_slow_client": N_("The request took too long to arrive."),
    "err_wrong_type": N_("Unsupported request type."),
    "err_not_found": N_("Page not found."),
    "err_method": N_("This address does not accept this request."),
    "err_bad_hash": N_("A ballot number is 64 hexadecimal characters."),
    "err_nodes_down": N_("The voting network is unavailable right now. Try again in a minute."),
    "err_rejected": N_("The network rejected the ballot: %(reason)s"),
    "err_internal": N_("Internal error. It has been logged."),
}

RULE_NAMES: dict[str, str] = {  # winner rules
    "top-n": N_("most votes"),
    "greedy": N_("by votes within the budget"),
    "greedy-no-skip": N_("by votes until the budget runs out"),
    "equal-shares": N_("method of equal shares"),
}

CATEGORY_NAMES: dict[str, str] = {  # initiative categories
    "sports": N_("sports"),
    "culture": N_("culture"),
    "libraries": N_("libraries"),
    "housing-utilities": N_("housing and utilities"),
    "street-lighting": N_("street lighting"),
    "landscaping": N_("landscaping"),
    "water-supply": N_("water supply"),
    "playgrounds": N_("playgrounds"),
    "local-roads": N_("local roads"),
}

REASON_NAMES: dict[str, str] = {  # refusal reasons counted on /transparency
    "rate_ip": N_("per-address rate limit"),
    "rate_subnet": N_("per-subnet rate limit"),
    "rate_phone": N_("per-phone SMS limit"),
    "sms_cooldown": N_("code re-requested too soon"),
    "sms_daily_cap": N_("daily SMS cap per phone"),
    "code_wrong": N_("wrong code"),
    "code_expired": N_("expired code"),
    "code_lockout": N_("lock-out after wrong codes"),
    "code_burned": N_("code burned after wrong tries"),
    "card_guessing": N_("card entry paused (guessing)"),
    "form_reused": N_("form sent again"),
    "honeypot": N_("hidden field filled in (bot)"),
    "too_fast": N_("form sent too quickly"),
    "csrf": N_("forged or stale form"),
    "form_stale": N_("stale form"),
    "second_ballot": N_("second ballot"),
    "second_token": N_("second key certification"),
    "card_used": N_("card reused"),
    "card_unknown": N_("unknown card"),
    "overload_inflight": N_("overload"),
    "overload_queue": N_("submission queue full"),
}

REJECTION_NAMES: dict[str, str] = {  # the state machine's rejection codes
    "registration_cap": N_("this site's voter registration cap for the campaign is used up"),
    "outside_window": N_("voting is not open in this campaign"),
    "campaign_closed": N_("the campaign is closed"),
    "double_vote": N_("this key has already cast a ballot"),
    "token_used": N_("this own key has already cast a ballot"),
    "bad_token": N_("the key's certification is not valid"),
    "token_wrong_campaign": N_("the key is certified for another campaign"),
    "tokens_exhausted": N_("the network has not counted the key's certification"),
    "invalid_choice": N_("a chosen project is not on the ballot"),
    "bad_ballot": N_("the number of chosen projects is wrong"),
    "cost_cap": N_("the chosen projects cost more than the ballot allows"),
    "points_max": N_("a project got more points than allowed"),
    "points_total": N_("the points add up to more or less than allowed"),
    "rank_points": N_("the points of the ranks differ from the campaign's"),
    "unknown_district": N_("the campaign has no such district"),
    "unknown_campaign": N_("there is no such campaign"),
    "permission_denied": N_("this site may not register voters for the campaign"),
}

STAGE_NAMES: dict[str, str] = {  # progress report stages
    "contract": N_("contract"),
    "works": N_("works"),
    "done": N_("done"),
    "cancelled": N_("cancelled"),
}

STATUS_NAMES: dict[str, str] = {  # initiative review statuses
    "approved": N_("on the ballot"),
    "rejected": N_("rejected"),
    "submitted": N_("under review"),
}

TRACK_NAMES: dict[str, str] = {  # campaign tracks
    "adult": N_("Adults"),
    "children": N_("Children's track"),
}


def rejection_text(lang: str, code: str, message: str) -> str:
    """A node's rejection in the citizen's language when we know the code, else its own message."""
    known = REJECTION_NAMES.get(code)
    if known is not None:
        return translate(lang, known)
    return message or code


def format_number(value: int, lang: str) -> str:
    """3001 → "3 001" (Russian, no-break space) or "3,001"."""
    return f"{int(value):,}".replace(",", "\u00a0" if lang == "ru" else ",")


def format_time(ms: int, offset_minutes: int, lang: str) -> str:
    zone = timezone(timedelta(minutes=offset_minutes))
    moment = datetime.fromtimestamp(ms / 1000, tz=zone)
    hours, minutes = divmod(abs(offset_minutes), 60)
    sign = "+" if offset_minutes >= 0 else "-"
    label = "МСК" if offset_minutes == 180 and lang == "ru" else f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")
    if lang == "en":
        return moment.strftime("%d %b %Y, %H:%M ") + label
    return moment.strftime("%d.%m.%Y %H:%M ") + label


def format_clock(ms: int, offset_minutes: int) -> str:
    """The time of day only, "12:34:56" (for a moment minutes away)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone(timedelta(minutes=offset_minutes)))
    return moment.strftime("%H:%M:%S")


DOCUMENT_TYPE_NAMES = {"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP"}


def document_type_name(kind: str) -> str:
    return DOCUMENT_TYPE_NAMES.get(kind, kind)
