"""pabulib parser and writer: valid/invalid pairs, round trips, pabutools, the official files."""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.errors import PabulibError, VecheError
from chain.pabulib import (
    PbFile,
    PbProject,
    PbVote,
    compute_vote_counts,
    parse_pb,
    read_pb,
    write_pb,
)

from tests.paths import SHARED_DATA

DATA = SHARED_DATA
DATA_FILES = ("Poland_Wroclaw_2019_local.pb", "Poland_Warszawa_2023_Wesola.pb")

META = """META
key;value
description;test
num_projects;3
num_votes;3
budget;100
vote_type;approval
rule;greedy
min_length;1
max_length;2
"""
PROJECTS = '''PROJECTS
project_id;cost;votes;name;category;selected;district
1;50;2;Park;green,space;1;North
2;60;2;"Skate; park ""XL""";sport;0;South
3;30;1;Benches;;1;
'''
VOTES = """VOTES
voter_id;vote;age;district
v1;1,2;30;North
v2;2,3;41;South
v3;1;;North
"""
VALID = META + PROJECTS + VOTES


def parse_error(text: str) -> PabulibError:
    with pytest.raises(PabulibError) as raised:
        parse_pb(text)
    assert raised.value.code == "pabulib_error"
    assert isinstance(raised.value, VecheError)
    return raised.value


def error_line(error: PabulibError) -> int:
    match = re.match(r"line (\d+): ", error.message)
    assert match is not None, error.message
    return int(match.group(1))


# --- valid files -----------------------------------------------------------------------------

def test_parse_valid() -> None:
    pb = parse_pb(VALID)
    assert pb.meta[:3] == (("description", "test"), ("num_projects", "3"), ("num_votes", "3"))
    assert (pb.budget, pb.vote_type, pb.rule, pb.min_length, pb.max_length) == (100, "approval", "greedy", 1, 2)
    assert pb.meta_get("description") == "test" and pb.meta_get("nope") is None
    assert pb.projects[0] == PbProject("1", 50, 2, "Park", "green,space", True, "North", ())
    assert pb.projects[1].name == 'Skate; park "XL"'
    assert pb.projects[2] == PbProject("3", 30, 1, "Benches", "", True, None, ())
    assert pb.votes[0] == PbVote("v1", ("1", "2"), "North", (("age", "30"),))
    assert pb.votes[2] == PbVote("v3", ("1",), "North", (("age", ""),))
    assert compute_vote_counts(pb) == {"1": 2, "2": 2, "3": 1}


def test_parse_tolerates_bom_crlf_blank_lines_and_spaces() -> None:
    text = "\ufeff" + VALID.replace("\n", "\r\n").replace("PROJECTS\r\n", "\r\n\r\nPROJECTS\r\n")
    text = text.replace("v2;2,3;", "v2; 2, 3 ;")
    assert parse_pb(text) == parse_pb(VALID)


def test_parse_minimal_columns_and_missing_values() -> None:
    text = "META\nkey;value\nbudget;10\nvote_type;approval\nrule;greedy\n" \
           "PROJECTS\nproject_id;cost;votes;selected\na;5;None;\n" \
           "VOTES\nvoter_id;vote\n1;a\n2;\n"
    pb = parse_pb(text)
    assert pb.projects == (PbProject("a", 5, None, "", "", None, None, ()),)
    assert pb.votes == (PbVote("1", ("a",), None, ()), PbVote("2", (), None, ()))
    assert pb.min_length is None and pb.max_length is None


@pytest.mark.parametrize("amount, expected", [("1500", 1500), ("1500.00", 1500), ("1500,0", 1500), ("007", 7)])
def test_whole_amounts(amount: str, expected: int) -> None:
    text = VALID.replace("1;50;2;Park", f"1;{amount};2;Park").replace("budget;100", f"budget;{amount}")
    pb = parse_pb(text)
    assert pb.projects[0].cost == expected and pb.budget == expected


def test_fractional_amounts_are_exact() -> None:
    from fractions import Fraction

    text = VALID.replace("1;50;2;Park", "1;12.5;2;Park").replace("budget;100", "budget;1331751.11")
    pb = parse_pb(text)
    assert pb.projects[0].cost == Fraction(25, 2) and pb.budget == Fraction(133175111, 100)
    assert parse_pb(write_pb(pb)) == pb
    assert "1;12.5;2;Park" in write_pb(pb)


def test_selected_keeps_pabulibs_marks() -> None:
    text = VALID.replace(";1;North\n2", ";2;North\n2").replace("Benches;;1;", "Benches;;3;")
    pb = parse_pb(text)
    assert [p.selected for p in pb.projects] == [2, 0, 3]
    assert [p.selected_by_rule for p in pb.projects] == [False, False, False]
    assert [p.funded for p in pb.projects] == [True, False, True]
    assert parse_pb(VALID).projects[0].selected_by_rule
    assert parse_pb(write_pb(pb)) == pb


def test_a_project_named_twice_in_a_vote_counts_once_with_a_note() -> None:
    pb = parse_pb(VALID.replace("v2;2,3;", "v2;2,3,2;"))
    assert pb.votes[1].choices == ("2", "3")
    assert compute_vote_counts(pb) == {"1": 2, "2": 2, "3": 1}
    assert pb.notes == ("a vote names a project more than once; counted once, at its first place (cumulative "
                        "points of every naming added up): 1 (line 19)",)
    assert pb.votes[1].repeated == ("2",)
    assert parse_pb(VALID).notes == ()


def test_a_stray_quote_is_read_literally_with_a_note() -> None:
    pb = parse_pb(VALID.replace('"Skate; park ""XL"""', '"Skate" park'))
    assert pb.projects[1].name == '"Skate" park'
    assert pb.notes == ("a field with a quote inside it, read literally: 1 (line 14)",)


CUMULATIVE = """META
key;value
budget;100
vote_type;cumulative
rule;greedy
max_sum_points;5
PROJECTS
project_id;cost;votes;score
a;40;2;6
b;70;1;1
VOTES
voter_id;vote;points;sex
1;a,b;4,1;F
2;a;2;M
3;;;
"""


def test_cumulative_points() -> None:
    from chain.pabulib import compute_scores

    pb = parse_pb(CUMULATIVE)
    assert pb.votes[0].points == (4, 1) and pb.votes[0].extra == (("sex", "F"),)
    assert pb.votes[2].points == () and pb.votes[2].choices == ()
    assert compute_scores(pb) == {"a": 6, "b": 1} == {p.project_id: p.score for p in pb.projects}
    assert parse_pb(write_pb(pb)) == pb
    assert "1;a,b;4,1;F" in write_pb(pb)
    repeated = parse_pb(CUMULATIVE.replace("1;a,b;4,1;F", "1;b,a,b;1,4,3;F"))
    assert (repeated.votes[0].choices, repeated.votes[0].points) == (("b", "a"), (4, 4))   # b: 1 + 3 points


@pytest.mark.parametrize("text, fragment", [
    (CUMULATIVE.replace("1;a,b;4,1;F", "1;a,b;4;F"), "names 2 projects but gives 1 points"),
    (CUMULATIVE.replace("1;a,b;4,1;F", "1;a,b;4,x;F"), "points"),
    (CUMULATIVE.replace("voter_id;vote;points;sex", "voter_id;vote;pts;sex"), "needs a 'points' column"),
])
def test_cumulative_invalid(text: str, fragment: str) -> None:
    assert fragment in parse_error(text).message


ORDINAL = """META
key;value
budget;100
vote_type;ordinal
rule;greedy
min_length;1
max_length;3
PROJECTS
project_id;cost;votes;score
a;40;2;5
b;70;2;5
c;10;1;1
VOTES
voter_id;vote
1;b,a,c
2;a,b
"""


def test_ordinal_points_count_down_from_max_length() -> None:
    from chain.pabulib import compute_scores

    pb = parse_pb(ORDINAL)
    assert pb.votes[0].choices == ("b", "a", "c") and pb.votes[0].points is None
    assert pb.get_ballot_points(pb.votes[0]) == (3, 2, 1) and pb.get_ballot_points(pb.votes[1]) == (3, 2)
    assert compute_scores(pb) == {"a": 5, "b": 5, "c": 1} == {p.project_id: p.score for p in pb.projects}
    with_points = parse_pb(ORDINAL.replace("voter_id;vote\n1;b,a,c\n2;a,b",
                                           "voter_id;vote;points\n1;b,a,c;5,3,1\n2;a,b;5,3"))
    assert compute_scores(with_points) == {"a": 8, "b": 8, "c": 1}


def test_lowercase_section_markers() -> None:
    text = VALID.replace("META\n", "meta\n").replace("PROJECTS\n", "Projects\n").replace("VOTES\n", "votes\n")
    assert parse_pb(text) == parse_pb(VALID)


# --- invalid files -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, line, fragment",
    [
        (PROJECTS + VOTES, 1, "expected section META"),
        (META + VOTES, 11, "expected section PROJECTS"),
        (META + PROJECTS, None, "expected section VOTES"),
        (VOTES + META + PROJECTS, 1, "expected section META"),
        ("", None, "expected section META"),
        ("META\n", None, "header of META"),
        ("META\nPROJECTS\n", 2, "no header"),
        (VALID.replace("key;value", "name;value"), 2, "META header"),
        (VALID.replace("rule;greedy\n", ""), 9, "no 'rule'"),
        (VALID.replace("budget;100", "budget;lots"), 6, "META budget"),
        (VALID.replace("budget;100", "budget;100;200"), 6, "has 3 fields"),
        (VALID.replace("rule;greedy", "budget;7"), 8, "repeated"),
        (VALID.replace("project_id;cost;votes", "project_id;price;votes"), 12, "no 'cost' column"),
        (VALID.replace("project_id;cost;votes;name", "project_id;cost;votes;cost"), 12, "repeats a column"),
        (VALID.replace("1;50;2;Park", "1;abc;2;Park"), 13, "cost"),
        (VALID.replace("1;50;2;Park", "1;-5;2;Park"), 13, "cost"),
        (VALID.replace("1;50;2;Park", "1;12.5.1;2;Park"), 13, "cost"),
        (VALID.replace("1;50;2;Park", "1;1e5;2;Park"), 13, "cost"),
        (VALID.replace("1;50;2;Park", "1;1 000;2;Park"), 13, "cost"),
        (VALID.replace("1;50;2;Park", "1;0;2;Park"), 13, "cost must be > 0"),
        (VALID.replace("1;50;2;Park", "1;50;two;Park"), 13, "votes"),
        (VALID.replace("1;50;2;Park", "1;50;-2;Park"), 13, "votes"),
        (VALID.replace(";1;North\n2", ";4;North\n2"), 13, "selected must be 0, 1, 2 or 3"),
        (VALID.replace(";1;North\n2", ";yes;North\n2"), 13, "selected must be 0, 1, 2 or 3"),
        (VALID.replace("3;30;1;Benches", "1;30;1;Benches"), 15, "project id '1' is repeated"),
        (VALID.replace("3;30;1;Benches", ";30;1;Benches"), 15, "project id"),
        (VALID.replace("3;30;1;Benches", "3,4;30;1;Benches"), 15, "contains ','"),
        (VALID.replace("3;30;1;Benches;;1;", "3;30;1;Benches;;1"), 15, "has 6 fields"),
        (VALID.replace("v2;2,3;", "v2;2,9;"), 19, "unknown project '9'"),
        (VALID.replace("v3;1;", "v1;1;"), 20, "repeated"),
        (VALID.replace("voter_id;vote;", "voter_id;ballot;"), 17, "no 'vote' column"),
        (VALID.replace("num_votes;3", "num_votes;4"), None, "num_votes is 4"),
        (VALID.replace("num_projects;3", "num_projects;x"), None, "num_projects"),
        (VALID + "META\nkey;value\n", 21, "unexpected 'META'"),
        (VALID.replace('"Skate; park ""XL"""', '"Skate; park'), 14, "bad CSV"),
        (VALID.replace('"Skate; park ""XL"""', '"Skate; park"x'), 14, "has 8 fields"),
    ],
)
def test_parse_invalid(text: str, line: int | None, fragment: str) -> None:
    error = parse_error(text)
    assert fragment in error.message
    if line is not None:
        assert error_line(error) == line


def test_parse_rejects_non_text() -> None:
    with pytest.raises(PabulibError):
        parse_pb(b"META\n")  # type: ignore[arg-type]


def test_read_pb_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.pb"
    path.write_bytes(VALID.encode("utf-8").replace(b"Park", b"P\xe9rk"))
    with pytest.raises(PabulibError, match="UTF-8"):
        read_pb(path)


def test_meta_properties_raise_when_absent() -> None:
    pb = PbFile(meta=(("budget", "x"),), projects=(), votes=())
    with pytest.raises(PabulibError):
        _ = pb.budget
    with pytest.raises(PabulibError):
        _ = pb.rule
    assert pb.min_length is None


# --- writing -----------------------------------------------------------------------------------

def test_write_round_trip() -> None:
    pb = parse_pb(VALID)
    text = write_pb(pb)
    assert parse_pb(text) == pb
    assert '"Skate; park ""XL"""' in text
    assert text.startswith("META\nkey;value\n")


def test_write_read_by_pabutools(tmp_path: Path) -> None:
    from pabutools.election import parse_pabulib
    from pabutools.election.pabulib import parse_pabulib_from_string

    pb = parse_pb(VALID)
    text = write_pb(pb)
    instance, profile = parse_pabulib_from_string(text)
    assert instance.budget_limit == 100
    assert {p.name: p.cost for p in instance} == {"1": 50, "2": 60, "3": 30}
    assert sorted(sorted(p.name for p in ballot) for ballot in profile) == [["1"], ["1", "2"], ["2", "3"]]
    path = tmp_path / "out.pb"
    path.write_text(text, encoding="utf-8")
    instance, profile = parse_pabulib(str(path))
    assert profile.num_ballots() == 3
    assert {p.name for p in instance if instance.project_meta[p]["name"] == 'Skate; park "XL"'} == {"2"}


def bare(*projects: PbProject, votes: tuple[PbVote, ...] = ()) -> PbFile:
    meta = (("budget", "100"), ("vote_type", "approval"), ("rule", "greedy"))
    return PbFile(meta=meta, projects=projects, votes=votes)


def project(project_id: str = "x", name: str = "") -> PbProject:
    return PbProject(project_id, 1, None, name, "", None, None, ())


def test_write_valid_minimal() -> None:
    pb = bare(project(), votes=(PbVote("1", ("x",), None, ()),))
    assert write_pb(pb) == (
        "META\nkey;value\nbudget;100\nvote_type;approval\nrule;greedy\n"
        "PROJECTS\nproject_id;cost\nx;1\nVOTES\nvoter_id;vote\n1;x\n")


@pytest.mark.parametrize(
    "pb, fragment",
    [
        (bare(project(name="a\nb")), "line breaks"),
        (bare(project(name=" padded")), "reads back"),
        (bare(project("meta")), "section"),
        (bare(project(), votes=(PbVote("1", ("nope",), None, ()),)), "unknown project"),
        (bare(project(), project()), "repeated"),
        (PbFile((("vote_type", "approval"), ("rule", "greedy")), (), ()), "budget"),
        (PbFile(parse_pb(VALID).meta, (), ()), "num_projects is 3"),
        (PbFile(parse_pb(VALID).meta, parse_pb(VALID).projects, ()), "num_votes is 3"),
    ],
)
def test_write_rejects_what_would_not_read_back(pb: PbFile, fragment: str) -> None:
    with pytest.raises(PabulibError, match=fragment):
        write_pb(pb)


safe_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=8
).filter(lambda s: s.lower() != "none")
ids = st.text(alphabet="abcXYZ019._-ąé", min_size=1, max_size=5).filter(
    lambda s: s.upper() not in ("META", "PROJECTS", "VOTES") and s.lower() != "none")


@st.composite
def pb_files(draw: st.DrawFn) -> PbFile:
    project_ids = draw(st.lists(ids, unique=True, max_size=6))
    extra_keys = draw(st.lists(st.sampled_from(["lat", "lon", "target"]), unique=True))
    projects = tuple(
        PbProject(
            project_id=pid,
            cost=draw(st.integers(1, 10**12) | st.builds(lambda n, d: Fraction(n, 10**d), st.integers(1, 10**9),
                                                           st.integers(1, 3))),
            votes=draw(st.none() | st.integers(0, 10**6)),
            name=draw(safe_text),
            category=draw(safe_text),
            selected=draw(st.none() | st.integers(0, 3)),
            district=draw(st.none() | safe_text.filter(bool)),
            extra=tuple((key, draw(safe_text)) for key in extra_keys),
        )
        for pid in project_ids
    )
    voter_ids = draw(st.lists(ids, unique=True, max_size=6))
    with_age = draw(st.booleans())
    votes = tuple(
        PbVote(
            voter_id=vid,
            choices=tuple(draw(st.lists(st.sampled_from(project_ids), unique=True)) if project_ids else ()),
            district=draw(st.none() | safe_text.filter(bool)),
            extra=(("age", draw(safe_text)),) if with_age else (),
        )
        for vid in voter_ids
    )
    meta = (("description", draw(safe_text)), ("num_projects", str(len(projects))),
            ("num_votes", str(len(votes))), ("budget", str(draw(st.integers(0, 10**12)))),
            ("vote_type", "approval"), ("rule", draw(st.sampled_from(["greedy", "equal-shares"]))))
    return PbFile(meta=meta, projects=projects, votes=votes)


@settings(max_examples=200, deadline=None)
@given(pb_files())
def test_property_write_parse_round_trip(pb: PbFile) -> None:
    assert parse_pb(write_pb(pb)) == pb


@settings(max_examples=60, deadline=None)
@given(pb_files())
def test_property_pabutools_reads_write_pb(pb: PbFile) -> None:
    from pabutools.election.pabulib import parse_pabulib_from_string

    instance, profile = parse_pabulib_from_string(write_pb(pb))
    assert {p.name: p.cost for p in instance} == {p.project_id: p.cost for p in pb.projects}
    assert instance.budget_limit == pb.budget
    assert profile.num_ballots() == len(pb.votes)
    assert sorted(sorted(p.name for p in ballot) for ballot in profile) == sorted(
        sorted(v.choices) for v in pb.votes)


# --- the official files --------------------------------------------------------------------------

@lru_cache(maxsize=None)
def load(name: str) -> PbFile:
    return read_pb(DATA / name)


@pytest.mark.parametrize("name", DATA_FILES)
def test_official_vote_counts_match_votes_column(name: str) -> None:
    pb = load(name)
    counts = compute_vote_counts(pb)
    assert all(p.votes is not None for p in pb.projects)
    assert {p.project_id: p.votes for p in pb.projects} == counts
    assert len(pb.votes) == int(pb.meta_get("num_votes") or -1)
    assert all(p.selected is not None for p in pb.projects)


@pytest.mark.parametrize("name", DATA_FILES)
def test_official_files_round_trip(name: str) -> None:
    pb = load(name)
    assert parse_pb(write_pb(pb)) == pb


def test_official_wesola_shape() -> None:
    pb = load("Poland_Warszawa_2023_Wesola.pb")
    assert (len(pb.projects), len(pb.votes), pb.budget) == (29, 1181, 1_011_308)
    assert [key for key, _ in pb.projects[0].extra] == ["beneficiaries", "latitude", "longitude"]
    assert max(len(v.choices) for v in pb.votes) == 15 and min(len(v.choices) for v in pb.votes) == 1


def test_official_wroclaw_shape() -> None:
    pb = load("Poland_Wroclaw_2019_local.pb")
    assert (len(pb.projects), len(pb.votes), pb.budget) == (144, 80_643, 9_000_000)
    assert all(len(v.choices) == 1 for v in pb.votes)
    quoted = next(p for p in pb.projects if p.project_id == "354")
    assert quoted.name.startswith('"Dziedziniec pilczycki" plac zabaw')
    # Each project's voters all come from one VOTES district ...
    voter_districts: dict[str, set[str | None]] = {}
    for vote in pb.votes:
        voter_districts.setdefault(vote.choices[0], set()).add(vote.district)
    assert all(len(d) == 1 for d in voter_districts.values())
    # ... which is usually NOT the PROJECTS district column (see docs/RULES.md).
    agree = sum(voter_districts[p.project_id] == {p.district} for p in pb.projects)
    assert agree == 11
