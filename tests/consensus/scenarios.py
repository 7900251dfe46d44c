"""Random fault scenarios for the simulator, one per (seed, n): reproducible from the pair alone.

About 40% of the scenarios also change the validator set once or twice (``set_changes``): an honest
validator — half the time the one that would have proposed round 0 of the switch height — is
replaced by a spare node, at heights 2..7, under whatever partitions, crashes and Byzantine
validators the scenario has. Set changes are drawn from their own random stream, so the other
faults of a (seed, n) pair are what they were before set changes existed.
"""

from __future__ import annotations

import random

from chain.block import max_faulty
from tests.consensus.sim import BYZANTINE_BEHAVIOURS, Crash, Partition, SetSwitch, SimConfig

SET_CHANGE_SHARE = 0.4


def random_set_changes(seed: int, n: int, byzantine: dict[int, str]) -> tuple[SetSwitch, ...]:
    """Zero to two validator replacements; the removed validator is honest (the faulty count stays)."""
    rng = random.Random(f"veche-set-changes-{n}-{seed}")
    if rng.random() >= SET_CHANGE_SHARE:
        return ()
    members = list(range(n))
    switches = []
    height = rng.randint(2, 4)
    for added in range(n, n + rng.choice((1, 1, 2))):
        honest = [m for m in members if m not in byzantine]
        proposer = members[height % len(members)]        # round 0 of the switch height in the old set
        remove = proposer if proposer in honest and rng.random() < 0.5 else rng.choice(honest)
        switches.append(SetSwitch(height, remove, added))
        members = [m for m in members if m != remove] + [added]
        height += rng.randint(1, 3)
    return tuple(switches)


def random_config(seed: int, n: int) -> SimConfig:
    rng = random.Random(f"veche-consensus-{n}-{seed}")
    faulty = rng.randint(0, max_faulty(n))
    byzantine_nodes = rng.sample(range(n), faulty)
    byzantine = {index: rng.choice(BYZANTINE_BEHAVIOURS) for index in byzantine_nodes}
    honest = [i for i in range(n) if i not in byzantine]
    fault_end = 0
    partitions: list[Partition] = []
    if rng.random() < 0.4:
        start = rng.randint(0, 2000)
        end = start + rng.randint(200, 3000)
        members = list(range(n))
        rng.shuffle(members)
        cut = rng.randint(1, n - 1)
        partitions.append(Partition(start, end, (frozenset(members[:cut]), frozenset(members[cut:]))))
        fault_end = max(fault_end, end)
    crashes: list[Crash] = []
    if rng.random() < 0.4:
        for node in rng.sample(honest, min(len(honest), rng.randint(1, 2))):
            at = rng.randint(0, 3000)
            down = rng.randint(50, 1500)
            crashes.append(Crash(node, at, down, wipe=rng.random() < 0.3))
            fault_end = max(fault_end, at + down)
    crash_node = None
    crash_after: tuple[int, ...] = ()
    if rng.random() < 0.25:
        crash_node = rng.choice(honest)
        crash_after = tuple(sorted(rng.sample(range(5, 400), 3)))
    drop_rate = rng.choice([0.0, 0.0, 0.05, 0.2, 0.4])
    lossy_until = rng.randint(1000, 4000) if drop_rate else 0
    switches = random_set_changes(seed, n, byzantine)
    after_switches = switches[-1].height + 2 if switches else 0
    return SimConfig(
        n=n, seed=seed, byzantine=byzantine,
        min_delay_ms=rng.choice([1, 5]), max_delay_ms=rng.choice([20, 60, 200]),
        drop_rate=drop_rate, duplicate_rate=rng.choice([0.0, 0.05, 0.2]),
        partitions=tuple(partitions), crashes=tuple(crashes),
        crash_node=crash_node, crash_after_outputs=crash_after, crash_down_ms=rng.randint(50, 800),
        max_skew_ms=rng.choice([0, 20, 100, 200]),
        tx_mean_interval_ms=rng.choice([20, 100, 400, 2000]),
        tx_until_ms=rng.choice([10**9, 1500]),
        target_height=max(rng.randint(4, 7), after_switches),
        stabilise_ms=max(fault_end, lossy_until) + 100,
        spares=len(switches), set_changes=switches,
    )
