"""One-time code cards: generation, login, one ballot per card, reuse and bad codes."""

from __future__ import annotations

import asyncio
import csv
import re
from pathlib import Path

from click.testing import CliRunner

from gateway.auth import CARD_ALPHABET, normalize_card
from gateway.cli import gateway_group
from tests.gateway.harness import TX_HASH, gateway_world

CARD = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")


def generate(home: Path, campaign: str, count: int, out: Path) -> list[str]:
    result = CliRunner().invoke(gateway_group, ["cards", "generate", "--home", str(home), "--campaign", campaign,
                                                "--count", str(count), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o077 == 0
    return CARD.findall(out.read_text(encoding="utf-8"))


def test_card_codes_normalise() -> None:
    assert normalize_card("abcd-efgh-jkmn") == "ABCDEFGHJKMN"
    assert normalize_card(" ABCD EFGH JKMN ") == "ABCDEFGHJKMN"
    assert normalize_card("ABCD-EFGH-JKM0") is None          # 0 is not in the alphabet
    assert normalize_card("ABCD-EFGH-JKM") is None
    assert normalize_card("A" * 41) is None
    assert "O" not in CARD_ALPHABET and "1" not in CARD_ALPHABET


def test_cards_vote_once_in_their_campaign(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            codes = generate(world.home, "kids-test", 3, tmp_path / "cards.html")
            assert len(set(codes)) == 3
            csv_codes = generate(world.home, "ib-test", 2, tmp_path / "cards.csv")
            with open(tmp_path / "cards.csv", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            assert [r["card_code"] for r in rows] == csv_codes and {r["campaign_id"] for r in rows} == {"ib-test"}
            stored = "".join(p.read_text() for p in (world.home / "cards").glob("*.json"))
            assert all(code not in stored and code.replace("-", "") not in stored for code in codes + csv_codes)

            pupil = world.client("10.50.0.1")
            try:
                await pupil.get("/login?next=/c/kids-test/d/north")
                status, page = await pupil.post("/login/card", {"card": codes[0].lower()})
                assert status == 200 and 'name="choice"' in page   # redirected back to the ballot
                status, page = await pupil.post("/c/kids-test/d/north/vote", [("csrf_token", pupil.csrf),
                                                                              ("choice", "k1"), ("choice", "k2")],
                                                csrf=False)
                assert status == 200 and TX_HASH.search(page)
                # a card belongs to its campaign only
                status, page = await pupil.post("/c/ib-test/d/north/vote", [("csrf_token", pupil.csrf),
                                                                            ("choice", "n1")], csrf=False)
                assert status == 403 and "другой кампании" in page
                _, page = await pupil.get("/")
                assert "ib-test" not in page and "/c/kids-test/d/north" in page
            finally:
                await pupil.close()

            reuser = world.client("10.51.0.1")
            try:
                await reuser.get("/login")
                status, page = await reuser.post("/login/card", {"card": codes[0]})
                assert status == 409 and "уже использована" in page
                status, page = await reuser.post("/login/card", {"card": "ABCD-EFGH-JKMN"})
                assert status == 400 and "Такой карточки нет" in page
                status, page = await reuser.post("/login/card", {"card": "not a card"})
                assert status == 400 and "12 букв и цифр" in page
                await reuser.post("/login/card", {"card": codes[1]})
                status, page = await reuser.vote("kids-test", "south", ["k3"])
                assert status == 200
                card_ballot = TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                status, page = await reuser.post("/c/kids-test/d/north/vote", [("csrf_token", reuser.csrf),
                                                                               ("choice", "k1")], csrf=False)
                assert status == 200 and "Повторный бюллетень не принимается" in page
                assert TX_HASH.search(page).group(1) == card_ballot  # type: ignore[union-attr]
                _, page = await reuser.get("/transparency")
                assert "повторное использование карточки" in page and "неизвестная карточка" in page
            finally:
                await reuser.close()
            state = world.chain.ledger.state
            assert (state.votes("kids-test", "k1"), state.votes("kids-test", "k3")) == (1, 1)
            assert state.campaigns["kids-test"].registered == 2

    asyncio.run(scenario())


def test_cards_generate_refuses_bad_arguments(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            runner = CliRunner()
            for args, text in [
                (["--campaign", "bad id", "--count", "1", "--out", str(tmp_path / "a.html")], "campaign"),
                (["--campaign", "ib-test", "--count", "0", "--out", str(tmp_path / "a.html")], "count"),
                (["--campaign", "ib-test", "--count", "1", "--out", str(tmp_path / "a.txt")], ".html or .csv"),
            ]:
                result = runner.invoke(gateway_group, ["cards", "generate", "--home", str(world.home)] + args)
                assert result.exit_code != 0 and text in result.output, result.output
            (tmp_path / "exists.csv").write_text("x")
            result = runner.invoke(gateway_group, ["cards", "generate", "--home", str(world.home), "--campaign",
                                                   "ib-test", "--count", "1", "--out", str(tmp_path / "exists.csv")])
            assert result.exit_code != 0 and "already exists" in result.output
            assert not (world.home / "cards").exists()

    asyncio.run(scenario())


def test_unknown_card_codes_spend_one_gateway_wide_budget(tmp_path: Path) -> None:
    """Wrong card codes from many addresses together pause card entry; SMS login goes on."""
    async def scenario() -> None:
        limits = {"card_wrong_global": {"count": 4, "seconds": 3600}}
        async with gateway_world(tmp_path, overrides={"limits": limits}) as world:
            codes = generate(world.home, "kids-test", 1, tmp_path / "cards.html")
            guessers = [world.client(f"10.60.{i}.1") for i in range(5)]
            pupil = world.client("10.61.0.1")
            try:
                statuses = []
                for i, guesser in enumerate(guessers):
                    await guesser.get("/login")
                    status, page = await guesser.post("/login/card", {"card": f"ABCD-EFGH-JK{CARD_ALPHABET[i]}N"})
                    statuses.append(status)
                assert statuses == [400, 400, 400, 400, 429]
                assert "Вход по карточкам временно приостановлен" in page
                await pupil.get("/login")
                status, page = await pupil.post("/login/card", {"card": codes[0]})
                assert status == 429 and "Retry-After" in pupil.last_headers
                await pupil.login()                      # SMS login is not paused
                _, page = await pupil.get("/transparency")
                assert "вход по карточкам приостановлен (подбор)" in page
            finally:
                for client in guessers + [pupil]:
                    await client.close()

    asyncio.run(scenario())
