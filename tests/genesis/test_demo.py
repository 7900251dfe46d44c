"""The Volgograd oblast demo data: districts, campaigns, initiatives, and that it applies."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from chain.ledger import Ledger
from chain.records import INITIATIVE_APPROVED, STATUS_OPEN
from chain.storage import MemoryStore
from chain.tx import ID_PATTERN
from genesis import demo
from genesis.model import load_genesis
from genesis.testnet import TestnetLayout as Layout, init_testnet

NOW_MS = 1_780_000_000_000
DAY_MS = 86_400_000

MUNICIPAL_DISTRICTS = [
    "Алексеевский", "Быковский", "Городищенский", "Даниловский", "Дубовский", "Еланский", "Жирновский",
    "Иловлинский", "Калачёвский", "Камышинский", "Киквидзенский", "Клетский", "Котельниковский", "Котовский",
    "Кумылженский", "Ленинский", "Нехаевский", "Николаевский", "Новоаннинский", "Новониколаевский", "Октябрьский",
    "Ольховский", "Палласовский", "Руднянский", "Светлоярский", "Серафимовичский", "Среднеахтубинский",
    "Старополтавский", "Суровикинский", "Урюпинский", "Фроловский", "Чернышковский",
]
URBAN_OKRUG_CITIES = ["Волгоград", "Волжский", "Камышин", "Михайловка", "Урюпинск", "Фролово"]


@pytest.fixture(scope="module")
def demo_layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return init_testnet(tmp_path_factory.mktemp("demo") / "demo", demo=True, now_ms=NOW_MS)


def test_the_38_districts() -> None:
    districts = demo.load_demo_districts()
    assert len(districts) == 38
    kinds = Counter(d.kind for d in districts)
    assert kinds == {"municipal_district": 32, "urban_okrug": 6}
    municipal = sorted(d.name.removesuffix(" муниципальный район") for d in districts if d.kind == "municipal_district")
    assert municipal == sorted(MUNICIPAL_DISTRICTS)
    okrugs = [d.name for d in districts if d.kind == "urban_okrug"]
    assert all(any(okrug.endswith(city) for okrug in okrugs) for city in URBAN_OKRUG_CITIES)
    ids = [d.district_id for d in districts]
    assert len(set(ids)) == 38
    assert all(ID_PATTERN.fullmatch(i) and re.fullmatch(r"[a-z-]+", i) for i in ids)
    assert {"alekseevsky", "volzhsky", "volgograd", "sredneakhtubinsky"} <= set(ids)


def test_demo_genesis_applies_with_every_campaign_and_initiative(demo_layout: Layout) -> None:
    genesis = load_genesis(demo_layout.genesis_file)
    ledger = Ledger(MemoryStore(), genesis.params)
    campaigns = ledger.state.campaigns
    assert set(campaigns) == {demo.ADULT_CAMPAIGN_ID, demo.CHILDREN_CAMPAIGN_ID}
    for campaign in campaigns.values():
        assert campaign.status == STATUS_OPEN
        assert len(campaign.spec.districts) == 38
        assert genesis.params.is_gateway(campaign.spec.gateway)
    documents = genesis.document["initiatives"]
    assert len(ledger.state.initiatives) == len(documents) > 100
    for document in documents:
        stored = ledger.state.initiatives[(document["campaign_id"], document["initiative_id"])]
        assert stored.status == INITIATIVE_APPROVED
        assert stored.spec.title == document["title"] and stored.spec.cost == document["cost"]


def test_demo_campaign_rules(demo_layout: Layout) -> None:
    genesis = load_genesis(demo_layout.genesis_file)
    adult, children = genesis.document["campaigns"]
    assert adult["title"] == "Инициативное бюджетирование 2027" and adult["track"] == "adult"
    assert adult["ballot"]["type"] == "choose-1" and adult["ballots_per_voter"] == "district"
    assert (adult["rule"]["name"], adult["rule"]["scope"], adult["rule"]["min_votes"]) == ("top-n", "district", 500)
    assert adult["rule"]["top_n"] >= 1 and adult["max_cost"] == 5_000_000_00
    assert children["title"] == "Детское инициативное бюджетирование 2027" and children["track"] == "children"
    assert (children["ballot"]["min_choices"], children["ballot"]["max_choices"]) == (1, 3)
    assert (children["rule"]["name"], children["rule"]["scope"]) == ("greedy", "district")
    assert children["max_cost"] == 500_000_00
    for campaign in (adult, children):
        assert campaign["gateway"] == "gateway" and campaign["registration_cap"] >= 1_000_000
        assert campaign["submission_end"] <= campaign["voting_start"] == NOW_MS
        assert campaign["voting_end"] == NOW_MS + 30 * DAY_MS
        assert sorted(campaign["categories"]) == sorted(demo.DEMO_CATEGORIES)
        assert all(d["budget"] > 0 for d in campaign["districts"])


def test_demo_initiatives_cover_every_district(demo_layout: Layout) -> None:
    genesis = load_genesis(demo_layout.genesis_file)
    initiatives = genesis.document["initiatives"]
    adult = Counter(i["district_id"] for i in initiatives if i["campaign_id"] == demo.ADULT_CAMPAIGN_ID)
    children = Counter(i["district_id"] for i in initiatives if i["campaign_id"] == demo.CHILDREN_CAMPAIGN_ID)
    assert len(adult) == 38 and min(adult.values()) >= 2 and max(adult.values()) <= 6
    assert sum(1 for count in adult.values() if count >= 3) >= 15
    assert sum(children.values()) < sum(adult.values())
    assert {i["category"] for i in initiatives} == set(demo.DEMO_CATEGORIES)
    for initiative in initiatives:
        assert re.search("[а-яё]", initiative["title"]) and initiative["summary"]
    titles = Counter((i["campaign_id"], i["district_id"], i["title"]) for i in initiatives)
    assert max(titles.values()) == 1


def test_demo_extras_and_size(demo_layout: Layout) -> None:
    root = demo_layout.directory
    assert re.fullmatch(r"veche-demo-[0-9a-f]{6}", demo_layout.chain_id)
    assert (root / "genesis.json").stat().st_size < 300_000
    genesis = load_genesis(root / "genesis.json")
    operators = dict(genesis.params.district_operators)
    assert set(operators) == set(demo.demo_district_ids())
    assert set(demo_layout.district_key_files) == set(operators)
    for district_id, path in demo_layout.district_key_files.items():
        assert path == root / "keys" / f"district-{district_id}.json"
        assert path.stat().st_mode & 0o777 == 0o600


def test_demo_data_is_deterministic() -> None:
    assert demo.demo_initiatives() == demo.demo_initiatives()
    first = demo.demo_campaigns(NOW_MS)
    assert first == demo.demo_campaigns(NOW_MS)
    assert demo.demo_campaigns(NOW_MS + 5)[0]["voting_start"] == NOW_MS + 5


def test_demo_data_file_is_packaged() -> None:
    assert (Path(demo.__file__).parent / "data" / "volgograd.json").is_file()
