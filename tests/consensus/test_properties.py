"""Property tests (hypothesis): quorum intersection of commit certificates, and the simulator
driven by hypothesis-chosen fault mixes."""

from __future__ import annotations

from functools import lru_cache

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.block import (
    STEP_PRECOMMIT,
    make_certificate,
    max_faulty,
    verify_certificate,
    vote_signing_bytes,
)
from chain.errors import CertificateError
from tests.consensus.helpers import CHAIN_ID, KEYS, block_hash, validator_set
from tests.consensus.sim import BYZANTINE_BEHAVIOURS, SimConfig, Simulation


@lru_cache(maxsize=None)
def _precommit_signature(validator: int, round_: int, tag: str) -> bytes:
    return KEYS[validator].sign(vote_signing_bytes(CHAIN_ID, STEP_PRECOMMIT, 5, round_, block_hash(tag)))


def _certifies(n: int, round_: int, tag: str, signers: list[int]) -> bool:
    certificate = make_certificate(5, round_, block_hash(tag),
                                   [(i, _precommit_signature(i, round_, tag)) for i in signers])
    try:
        verify_certificate(certificate, validator_set(n), CHAIN_ID, height=5)
    except CertificateError:
        return False
    return True


@st.composite
def precommit_round(draw: st.DrawFn) -> tuple[int, list[str | None]]:
    """n validators; the first max_faulty(n) are faulty. Honest choices: A, B or no precommit."""
    n = draw(st.integers(min_value=4, max_value=10))
    honest = draw(st.lists(st.sampled_from(["A", "B", None]), min_size=n - max_faulty(n),
                           max_size=n - max_faulty(n)))
    return n, honest


@settings(max_examples=150, deadline=None)
@given(precommit_round())
def test_two_conflicting_certificates_never_both_reach_quorum(case: tuple[int, list[str | None]]) -> None:
    n, honest_choices = case
    faulty = list(range(max_faulty(n)))  # faulty validators sign both blocks
    signed_a = faulty + [max_faulty(n) + i for i, choice in enumerate(honest_choices) if choice == "A"]
    signed_b = faulty + [max_faulty(n) + i for i, choice in enumerate(honest_choices) if choice == "B"]
    assert not (_certifies(n, 0, "A", signed_a) and _certifies(n, 0, "B", signed_b))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=4, max_value=10))
def test_all_honest_validators_alone_always_certify(n: int) -> None:
    """Liveness side of the threshold: the n − f honest validators form a quorum by themselves."""
    assert _certifies(n, 1, "A", list(range(max_faulty(n), n)))


@st.composite
def fault_mix(draw: st.DrawFn) -> SimConfig:
    n = draw(st.integers(min_value=4, max_value=7))
    faulty = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=max_faulty(n)))
    behaviours = {i: draw(st.sampled_from(BYZANTINE_BEHAVIOURS)) for i in faulty}
    return SimConfig(
        n=n, seed=draw(st.integers(0, 2**32)), byzantine=behaviours,
        max_delay_ms=draw(st.sampled_from([10, 80, 250])),
        drop_rate=draw(st.sampled_from([0.0, 0.1, 0.3])), duplicate_rate=draw(st.sampled_from([0.0, 0.1])),
        max_skew_ms=draw(st.sampled_from([0, 150])), target_height=4,
        stabilise_ms=draw(st.sampled_from([0, 1500])),
    )


@settings(max_examples=25, deadline=None)
@given(fault_mix())
def test_simulated_runs_keep_every_invariant(config: SimConfig) -> None:
    result = Simulation(config).run()
    assert result.violations == [], f"{config}: {result.violations}"
