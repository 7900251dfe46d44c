"""``scripts/pabulib_sweep.py`` over a small collection: real files of every ballot type, one file that
departs from its rule, one malformed file; the table and the lists say what happened to each."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT, SHARED_DATA

REAL = [SHARED_DATA / "Poland_Warszawa_2023_Wesola.pb", SHARED_DATA / "ballot-types" / "Poland_Krakow_2019_Bronowice.pb",
        SHARED_DATA / "ballot-types" / "Poland_Warszawa_2017_Bielany.pb"]
TIED = """META
key;value
budget;100
vote_type;approval
rule;greedy
PROJECTS
project_id;cost;votes;selected
a;60;3;0
b;60;2;1
c;30;1;1
VOTES
voter_id;vote
1;a,b
2;a,b,c
"""


def load_sweep():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("pabulib_sweep", REPO_ROOT / "scripts" / "pabulib_sweep.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pabulib_sweep"] = module
    spec.loader.exec_module(module)
    return module


def test_sweep_reports_parsing_counts_selections_and_departures(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    for source in REAL:
        shutil.copy(source, tmp_path / source.name)
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "Tied.pb").write_text(TIED.replace("1;a,b\n", "1;a,b,a\n"), encoding="utf-8")
    (tmp_path / "Broken.pb").write_text("META\nkey;value\nbudget;10\n", encoding="utf-8")
    sweep = load_sweep()
    assert sweep.main([str(tmp_path), "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "| approval | greedy | 3 | 3 | 1 | 3 | 2 | 0 | 0 | 3 | 2 |" in out       # Wesoła, Bielany, Tied
    assert "| ordinal | greedy | 1 | 1 | 0 | 1 | 1 | 1 | 1 | 1 | 1 |" in out        # Bronowice: points from 3 down
    assert "| (refused) |  | 1 | 0 |" in out
    assert ("- Tied.pb (approval, greedy): a tie at the cut broken the other way: a and b both have 2 votes "
            "(the file selects b, cost 60 vs 60)") in out
    assert "- Tied.pb (approval, greedy): the votes column counts a project each time a vote names it (1 repeated " \
           "namings)" in out
    assert "- Broken.pb: line 3: META has no 'vote_type'" in out
    assert "a vote names a project more than once" in out and "1 files (Tied.pb)" in out
