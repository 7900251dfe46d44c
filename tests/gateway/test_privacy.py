"""Voter keys and privacy: no key before a ballot, nothing phone-shaped on disk or in logs, keys destroyed at close."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from chain.storage import LevelStore, MemoryStore
from gateway.app import destroy_closed_campaigns
from gateway.phone import phone_identity
from gateway.vault import VaultEntry, VaultError, VoterVault, registered_key
from tests.gateway.harness import gateway_world

PHONE = "+79161234567"
PHONE_FORMS = ["79161234567", "9161234567", "+7 916", "916-123", "916 123", "123-45-67", "1234567",
               "89161234567", "(916)"]


def phone_traces(data: bytes) -> list[str]:
    found = [form for form in PHONE_FORMS if form.encode() in data]
    found += [form for form in PHONE_FORMS if form.encode("utf-16-le") in data]
    return found


def test_phone_number_is_nowhere_in_the_database_or_logs_after_a_vote(tmp_path: Path) -> None:
    log_file = tmp_path / "gateway-test.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)

    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.get("/login?next=/c/ib-test/d/north")
                await citizen.post("/login", {"phone": "8 (916) 123-45-67"})
                wrong = f"{(int(world.last_code(PHONE)) + 1) % 1_000_000:06d}"
                await citizen.post("/login/code", {"code": wrong})             # a refusal is logged too
                await citizen.post("/login/code", {"code": world.last_code(PHONE)})
                status, _ = await citizen.vote("ib-test", "north", ["n1"])
                assert status == 200
                await citizen.get("/transparency")
                world.gateway.refusals.flush()
            finally:
                await citizen.close()

    try:
        asyncio.run(scenario())
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()
    home = tmp_path / "gateway"
    data_files = [p for p in (home / "data").rglob("*") if p.is_file()]
    assert data_files and sum(p.stat().st_size for p in data_files) > 0
    for path in data_files + [log_file]:
        assert phone_traces(path.read_bytes()) == [], path
    assert log_file.read_text(encoding="utf-8").count("refused") >= 1
    # the SMS outbox is the (development) SMS provider, outside the gateway's own records
    assert PHONE in (home / "sms-outbox.jsonl").read_text(encoding="utf-8")


def test_no_voter_key_exists_for_a_citizen_who_only_logged_in(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login(PHONE)
                await citizen.get("/c/ib-test/d/north")
                store = world.gateway.store
                assert not list(store.iterate(b"V/")) and not list(store.iterate(b"K/"))
                assert world.chain.ledger.state.campaigns["ib-test"].registered == 0
                await citizen.vote("ib-test", "north", ["n2"])
                assert len(list(store.iterate(b"V/ib-test/"))) == 1
                assert len(list(store.iterate(b"K/ib-test/"))) == 1
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_voter_keys_and_links_are_destroyed_when_the_campaign_closes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gateway_world(tmp_path) as world:
            citizen = world.client()
            try:
                await citizen.login(PHONE)
                assert (await citizen.vote("to-close", "north", ["c2"]))[0] == 200
                assert (await citizen.vote("ib-test", "north", ["n2"]))[0] == 200
                store = world.gateway.store
                assert list(store.iterate(b"V/to-close/")) and list(store.iterate(b"K/to-close/"))
                world.close_campaign("to-close")
                world.gateway.chain.invalidate()
                assert await destroy_closed_campaigns(world.gateway) == ["to-close"]
                assert not list(store.iterate(b"V/to-close/")) and not list(store.iterate(b"K/to-close/"))
                assert list(store.iterate(b"V/ib-test/"))           # the open campaign keeps its keys
                assert await destroy_closed_campaigns(world.gateway) == []
                # the chain still counts the ballot and the receipt still verifies
                assert world.chain.ledger.state.votes("to-close", "c2") == 1
            finally:
                await citizen.close()

    asyncio.run(scenario())


def test_vault_entries_are_encrypted_and_bound_to_the_identity() -> None:
    store = MemoryStore()
    vault = VoterVault(store)
    secret = b"s" * 32
    owner, stranger = phone_identity(secret, PHONE), phone_identity(secret, "+79160000000")
    entry = VaultEntry(b"k" * 32, {"north": b"h" * 32})
    store.write(vault.entry_writes(owner, "ib", entry))
    [(key, sealed)] = list(store.iterate(b"V/"))
    assert b"k" * 32 not in sealed and b"h" * 32 not in sealed and PHONE.encode() not in key
    assert vault.load(owner, "ib") == entry
    assert vault.load(stranger, "ib") is None
    assert vault.load(owner, "other") is None
    store.write({key: sealed[:-1] + bytes([sealed[-1] ^ 1])})
    with pytest.raises(VaultError):
        vault.load(owner, "ib")
    other_secret = phone_identity(b"t" * 32, PHONE)
    assert VoterVault.index(other_secret, "ib") != VoterVault.index(owner, "ib")


def test_campaigns_with_keys_are_found_by_seeking() -> None:
    store = MemoryStore()
    vault = VoterVault(store)
    identity = phone_identity(b"s" * 32, PHONE)
    for campaign in ("c", "c-2", "c.x", "c0", "cz", "d"):
        store.write(vault.entry_writes(identity, campaign, VaultEntry(b"k" * 32)))
    store.write({b"K/e/" + b"p" * 32: b"h" * 32})
    assert vault.campaigns_with_keys() == {"c", "c-2", "c.x", "c0", "cz", "d", "e"}
    vault.destroy_campaign("c")
    assert vault.campaigns_with_keys() == {"c-2", "c.x", "c0", "cz", "d", "e"}


def test_destroyed_voter_keys_leave_the_leveldb_files(tmp_path: Path) -> None:
    """After destroy_campaign the sealed records' bytes are in no file of the store (compacted at once)."""
    data = tmp_path / "data"
    store = LevelStore(data)
    vault = VoterVault(store)
    sealed: list[bytes] = []
    for i in range(300):
        identity = phone_identity(b"s" * 32, f"+7900{i:07d}")
        writes = vault.entry_writes(identity, "closing", VaultEntry(bytes([i % 256]) * 32))
        writes[registered_key("closing", bytes([i % 256, 7]) * 16)] = b"h" * 32
        sealed.extend(value for value in writes.values() if value is not None and value != b"h" * 32)
        store.write(writes)
        store.write(vault.entry_writes(identity, "open", VaultEntry(b"o" * 32)))
    store.close()
    store = LevelStore(data)              # reopening writes the log into a table file, as a restart does
    vault = VoterVault(store)
    assert all(any(value in path.read_bytes() for path in data.iterdir()) for value in sealed[:3])
    assert vault.destroy_campaign("closing") == 300
    on_disk = b"".join(path.read_bytes() for path in data.iterdir() if path.is_file())
    assert not any(value in on_disk for value in sealed)
    assert vault.campaigns_with_keys() == {"open"}
    store.close()
