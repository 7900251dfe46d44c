"""The time-order attack on voter-held ballots: can the gateway's records be paired with the chain's
ballots by timing alone? Used by tests/gateway/test_unlinkability.py and scripts/unlinkability.py.

N citizens log in (SMS code), get a blind token and hand their ballot to the gateway's relay (no
cookie), as the ballot page's script does when the gateway runs a relay. The gateway process, its
LevelDB store and its log file are real; the nodes are the in-process fake nodes of
tests/gateway/fakenode.py (a real ledger that commits every POST in a block).

The attacker holds the gateway's complete records — every key of its store and its log — and the
chain. The store says, per citizen (a keyed hash of the phone), which ``tokens.issued`` record
counted its token; the chain says in which block each record and each ballot landed. The attacker
orders citizens by when their token was counted (record's block, then its position; citizens of one
record in store order) and ballots by (block, position), and pairs the k-th with the k-th.

Ground truth (which ballot is whose) is known only to the test's devices. Two rates are reported:
``relayed`` — the pairing against the chain as it is; ``undelayed`` — the same pairing against the
order in which ballots reached the relay, i.e. what the chain would show without the delay (the
attack works there, so the attacker is no straw man). Chance — a random pairing — gets 1/N.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.crypto import SigningKey
from chain.tx import decode_tx, make_vote
from gateway.tokens import TokenRecord
from gateway.vault import token_prefix
from node.voter.device import Device
from tests.gateway.harness import gateway_world

CAMPAIGN = "ib-test"


@dataclass
class Measurement:
    voters: int
    relayed_matches: int
    undelayed_matches: int
    seconds: float
    delay: tuple[float, float]
    tick: float
    log_lines: int
    store_keys: int

    def as_dict(self) -> dict[str, Any]:
        return {"voters": self.voters, "relayed_matches": self.relayed_matches,
                "relayed_rate": self.relayed_matches / self.voters, "undelayed_matches": self.undelayed_matches,
                "undelayed_rate": self.undelayed_matches / self.voters, "chance_rate": 1 / self.voters,
                "relay_delay_s": list(self.delay), "relay_tick_s": self.tick, "seconds": round(self.seconds, 1),
                "gateway_log_lines": self.log_lines, "gateway_store_keys": self.store_keys}


async def measure(tmp_path: Path, voters: int = 1000, delay: tuple[float, float] = (0.0, 20.0), tick: float = 0.5,
                  concurrency: int = 32) -> Measurement:
    relay = {"relay": {"enabled": True, "min_delay_seconds": delay[0], "max_delay_seconds": delay[1],
                       "tick_seconds": tick, "max_held": voters + 10}}
    started = time.monotonic()
    log_path = tmp_path / "gateway-info.log"          # everything the gateway logs at level info
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    gateway_log = logging.getLogger("veche.gateway")
    gateway_log.addHandler(handler)
    previous_level = gateway_log.level
    gateway_log.setLevel(logging.INFO)
    try:
        return await _measure(tmp_path, voters, delay, tick, concurrency, relay, started, log_path)
    finally:
        gateway_log.removeHandler(handler)
        gateway_log.setLevel(previous_level)
        handler.close()


async def _measure(tmp_path: Path, voters: int, delay: tuple[float, float], tick: float, concurrency: int,
                   relay: dict[str, Any], started: float, log_path: Path) -> Measurement:
    async with gateway_world(tmp_path, certified=True, overrides=relay) as world:
        owner: dict[bytes, int] = {}          # voter public key -> citizen number (the devices' secret)
        handed: list[int] = []                # citizen numbers in the order their ballots reached the relay
        queue = list(range(voters))

        async def citizen_worker() -> None:
            while queue:
                number = queue.pop()
                phone = f"+7912{number:07d}"
                async with Device(world.url, nodes=[n.url for n in world.nodes],
                                  headers={"X-Test-Client": f"10.{number >> 16 & 255}.{number >> 8 & 255}."
                                                            f"{number & 255}"}) as device:
                    await device.login(phone, world.config.outbox_path)
                    data = await device.ballot_data(CAMPAIGN, "north")
                    voter = SigningKey.generate()
                    token = await device.certify(data, voter)
                    owner[voter.public_key] = number
                    ballot = make_vote(data["chain"], voter, CAMPAIGN, "north", ["n1"], token=token)
                    handed.append(number)
                    await device.relay(data, ballot)

        await asyncio.gather(*(citizen_worker() for _ in range(concurrency)))
        ledger = world.chain.ledger
        deadline = time.monotonic() + delay[1] + 10 * tick + 30
        while ledger.state.campaigns[CAMPAIGN].voter_held_ballots < voters:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {ledger.state.campaigns[CAMPAIGN].voter_held_ballots} of {voters} "
                                     "relayed ballots committed")
            await asyncio.sleep(0.2)
        gw = world.gateway
        # the attacker's view: the gateway's whole store and log, and the chain
        store = list(gw.store.iterate(b""))
        tokens = [(key, TokenRecord.decode(value)) for key, value in gw.store.iterate(token_prefix(CAMPAIGN))]
        issued_order = sorted(range(len(tokens)), key=lambda i: (_position(ledger, tokens[i][1].record_hash),
                                                                 tokens[i][0]))
        index_of_citizen = _citizen_indexes(gw, voters)
        citizens_by_time = [index_of_citizen[tokens[i][0]] for i in issued_order]
        ballots = []
        for height in range(1, ledger.height + 1):
            block = ledger.block(height)
            assert block is not None
            for position, raw in enumerate(block.txs):
                tx = decode_tx(raw)
                if tx.kind == "vote.cast" and tx.body.token:
                    ballots.append(owner[tx.signers[0]])
        log_lines = len(log_path.read_text(encoding="utf-8").splitlines())
    relayed = sum(1 for k, citizen in enumerate(citizens_by_time) if ballots[k] == citizen)
    undelayed = sum(1 for k, citizen in enumerate(citizens_by_time) if handed[k] == citizen)
    return Measurement(voters, relayed, undelayed, time.monotonic() - started, delay, tick, log_lines, len(store))


def _position(ledger: Any, tx_hash: bytes) -> tuple[int, int]:
    location = ledger.tx_location(tx_hash)
    assert location is not None, "a token record the chain does not hold"
    return location.height, location.index


def _citizen_indexes(gw: Any, voters: int) -> dict[bytes, int]:
    """Token record key → citizen number, for scoring only (the attacker never needs the phone)."""
    from gateway.phone import phone_identity
    from gateway.vault import token_key

    return {token_key(CAMPAIGN, gw.vault.index(phone_identity(gw.secret, f"+7912{n:07d}"), CAMPAIGN)): n
            for n in range(voters)}
