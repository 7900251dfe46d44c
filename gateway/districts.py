"""Districts as citizens look for them: grouped by kind of municipality, filtered by what they type.

A Russian municipality's official name states its kind ("городской округ город Михайловка",
"Быковский муниципальный район"), so the group is read from the name the campaign publishes; a
name that states no known kind goes to "other districts" (e.g. a pabulib import's district names).
Texts never decline a district's name: pages use it as it is, in the nominative case, as a heading
or after a colon ("Район: городской округ город-герой Волгоград"), with its first letter capitalised
when it starts a line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.i18n import N_

URBAN = "urban"
MUNICIPAL = "municipal"
OTHER = "other"
GROUP_ORDER = (URBAN, MUNICIPAL, OTHER)
GROUP_NAMES: dict[str, str] = {
    URBAN: N_("City okrugs"),
    MUNICIPAL: N_("Municipal districts and okrugs"),
    OTHER: N_("Districts"),
}
_KIND_WORDS = (
    ("городской округ", URBAN),
    ("муниципальный район", MUNICIPAL),
    ("муниципальный округ", MUNICIPAL),
    ("городское поселение", URBAN),
)
MAX_FILTER_CHARS = 64


class Named(Protocol):
    @property
    def district_id(self) -> str: ...

    @property
    def name(self) -> str: ...


def district_group(name: str) -> str:
    lowered = name.casefold()
    for words, group in _KIND_WORDS:
        if words in lowered:
            return group
    return OTHER


def capitalised(name: str) -> str:
    """The name as the first words of a heading: "городской округ …" → "Городской округ …"."""
    return name[:1].upper() + name[1:]


@dataclass(frozen=True, slots=True)
class Group:
    key: str
    districts: tuple[Named, ...]


def group_districts(districts: Iterable[Named]) -> list[Group]:
    """Districts by kind (city okrugs first), each group in the campaign's own order."""
    buckets: dict[str, list[Named]] = {key: [] for key in GROUP_ORDER}
    for district in districts:
        buckets[district_group(district.name)].append(district)
    return [Group(key, tuple(items)) for key, items in buckets.items() if items]


def normalise_query(text: str | None) -> str:
    """What the citizen typed in the district filter, trimmed, or "" (too long counts as nothing)."""
    if not text or len(text) > MAX_FILTER_CHARS:
        return ""
    return " ".join(text.split())


def matches(district: Named, query: str) -> bool:
    """Every word typed appears in the name ("ё" and "е" alike, any case)."""
    name = district.name.casefold().replace("ё", "е")
    return all(word in name for word in query.casefold().replace("ё", "е").split())


def filter_districts(districts: Sequence[Named], query: str) -> list[Named]:
    return [d for d in districts if matches(d, query)] if query else list(districts)
