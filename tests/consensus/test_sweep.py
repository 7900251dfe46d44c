"""scripts/consensus_sweep.py: resumable from its state file, violations reported with a reproduction."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from tests.consensus.sim import SimConfig
from tests.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))

import consensus_sweep  # noqa: E402

SPEC = "tests.consensus.scenarios:random_config"


def stalling_config(seed: int, n: int) -> SimConfig:
    """A scenario that must fail: half the validators silent (more than f), liveness checked after 2 s."""
    return SimConfig(n=n, seed=seed, byzantine={i: "silent" for i in range(n // 2)}, target_height=3,
                     liveness_bound_ms=2_000)


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_sweep_resumes_from_its_state_file_and_runs_only_what_is_missing(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    out, err = io.StringIO(), io.StringIO()
    first = consensus_sweep.sweep(consensus_sweep.interleave(range(0, 2), [4, 5]), SPEC, state, 1, 0, out, err)
    assert (first["scenarios"], first["this_run"], first["resumed"], first["violations"]) == (4, 4, 0, 0)
    assert sorted((r["n"], r["seed"]) for r in records(state)) == [(4, 0), (4, 1), (5, 0), (5, 1)]
    with state.open("a") as log:
        log.write('{"scenarios": "tests.consensus.scenar')  # a sweep killed while writing a line

    second = consensus_sweep.sweep(consensus_sweep.interleave(range(0, 3), [4, 5]), SPEC, state, 2, 0, out, err)
    assert (second["scenarios"], second["this_run"], second["resumed"], second["violations"]) == (6, 2, 4, 0)
    assert out.getvalue() == "" and "6/6 100.0%" in err.getvalue()
    assert second["scenarios_per_s"] > 0 and second["simulated_s"] > 0


def test_each_violation_is_printed_with_its_reproduction_and_fails_the_sweep(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.jsonl"
    spec = "tests.consensus.test_sweep:stalling_config"
    status = consensus_sweep.main(["--seeds", "7", "--sizes", "4", "--jobs", "1", "--state", str(state),
                                   "--scenarios", spec])
    printed = capsys.readouterr().out
    assert status == 1
    assert "VIOLATION n=4 seed=7:" in printed and "liveness: honest node" in printed
    assert ("reproduce: .venv/bin/python -c 'from tests.consensus.test_sweep import stalling_config; "
            "from tests.consensus.sim import Simulation; print(Simulation(stalling_config(7, 4)).run().violations)'"
            ) in printed
    assert "violations 1" in printed
    # resumed: the violation is reported again without running the scenario again
    assert consensus_sweep.main(["--seeds", "7", "--sizes", "4", "--state", str(state), "--scenarios", spec]) == 1
    again = capsys.readouterr().out
    assert "VIOLATION n=4 seed=7:" in again and "(this run 0, resumed 1), violations 1" in again


@pytest.mark.parametrize("text, expected", [("5000-5002", [5000, 5001, 5002]), ("9", [9])])
def test_seed_ranges_include_both_ends(text: str, expected: list[int]) -> None:
    assert list(consensus_sweep.parse_range(text)) == expected
    assert consensus_sweep.parse_sizes("4-5,7") == [4, 5, 7]
